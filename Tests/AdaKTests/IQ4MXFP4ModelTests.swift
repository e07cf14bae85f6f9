import Foundation
import Testing
@testable import AdaK
import CAdaKKernels

/// Whole models in IQ4_NL, IQ4_XS and MXFP4 against llama.cpp (Tests/Fixtures/iq4mx, made by
/// Tests/Fixtures/tools/make_iq4_mxfp4_refs.py): SmolLM2-135M requantized by llama.cpp's quantizer
/// and the moe256 fixture with MXFP4 / IQ4_XS experts. The quantized files live in
/// $ADAK_CACHE/quant (`make quant-models`); a missing file is a failure.
@Suite(.serialized) struct IQ4MXFP4ModelTests {
    /// The references of `key` in models.json (nil if absent).
    static func entry(_ key: String) -> [String: Any]? {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: Fixtures.path("iq4mx/models.json"))),
              let info = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return nil }
        return (info["models"] as? [String: Any])?[key] as? [String: Any]
    }

    static func modelPath(_ key: String) -> String {
        (ProcessInfo.processInfo.environment["ADAK_CACHE"] ?? (Fixtures.repoRoot + "/.cache")) + "/quant/\(key).gguf"
    }
    /// The `pure` variants come only from llama.cpp's quantizer (`--pure`, which `adak quantize`
    /// does not offer), i.e. where make_iq4_mxfp4_refs.py ran; elsewhere (CI) they are skipped.
    static func havePure(_ type: String) -> Bool {
        FileManager.default.fileExists(atPath: modelPath("SmolLM2-135M-Instruct.\(type).pure"))
    }

    /// The quantized model `key` (e.g. "moe256.MXFP4_MOE"), or nil after recording why.
    static func model(_ key: String) throws -> Model? {
        let path = modelPath(key)
        guard FileManager.default.fileExists(atPath: path) else {
            Issue.record("\(path) is missing: run `make quant-models` (or Tests/Fixtures/tools/make_iq4_mxfp4_refs.py)")
            return nil
        }
        guard entry(key) != nil else {
            Issue.record("Tests/Fixtures/iq4mx/models.json has no references for \(key)")
            return nil
        }
        return try Model(path: path)
    }

    /// |Δ| statistics over the compared logits.
    struct Delta: CustomStringConvertible {
        var max: Float = 0, sum = 0.0, count = 0
        mutating func add(_ a: Float, _ b: Float) {
            let d = abs(a - b)
            max = Swift.max(max, d.isNaN ? .infinity : d)
            sum += Double(d)
            count += 1
        }
        var mean: Double { count > 0 ? sum / Double(count) : 0 }
        var description: String { "max |Δ| \(max), mean |Δ| \(String(format: "%.3g", mean)) over \(count)" }
    }

    /// The six prompts: 32 greedy steps (tokens and the stored top-32 logits of every step),
    /// teacher forcing of prompt + llama.cpp's greedy tokens in one batch, and perplexity on the
    /// fixture protocol (equal to 4 significant digits).
    func checkSmolLM2(_ type: String) throws -> (incremental: Delta, batch: Delta, ppl: Double)? {
        let key = "SmolLM2-135M-Instruct.\(type)"
        guard let m = try Self.model(key), let e = Self.entry(key) else { return nil }
        let refGreedy = e["greedy_ids"] as! [String: [Int]]
        let s = try SmolLM2Tests.session(m, ctx: 2048)
        let v = m.config.nVocab
        var inc = Delta(), bat = Delta()
        for c in try SmolLM2Tests.cases() {
            let stem = "iq4mx/\(key).\(c.name)"
            let want = refGreedy[c.name]!.map(Int32.init)
            let gi = try Fixtures.npy(stem + ".greedy_top32_ids.npy", as: Int32.self).values
            let gl = try Fixtures.npy(stem + ".greedy_top32_logits.npy", as: Float.self).values
            s.reset()
            try s.evaluate(c.ids)
            var ours: [Int32] = []
            for i in 0..<32 {
                let t = s.withLogits { l -> Int32 in
                    for j in 0..<32 { inc.add(l[Int(gi[i * 32 + j])], gl[i * 32 + j]) }
                    return SmolLM2Tests.argmax(l)
                }
                ours.append(t)
                if t != want[i] { break }  // past a different token the stored logits do not apply
                if i < 31 { try s.evaluate([t]) }
            }
            #expect(ours == want, "\(key) \(c.name): greedy tokens differ from llama.cpp's")
            let ti = try Fixtures.npy(stem + ".top32_ids.npy", as: Int32.self).values
            let tl = try Fixtures.npy(stem + ".top32_logits.npy", as: Float.self).values
            let all = c.ids + want
            s.reset()
            try s.evaluate(all, allLogits: true)
            s.withLogits { l in
                for pos in 0..<all.count { for j in 0..<32 { bat.add(l[pos * v + Int(ti[pos * 32 + j])], tl[pos * 32 + j]) } }
            }
        }
        print("\(key): incremental \(inc); teacher-forced \(bat)")
        #expect(inc.mean <= 1e-3 && bat.mean <= 1e-3, "\(key): incremental \(inc), batch \(bat)")
        // (the pure variants' references may come without a perplexity: it is slow to make)
        guard let refPPL = (e["perplexity"] as? [String: Any])?["ppl"] as? Double else { return (inc, bat, .nan) }
        let ppl = try Perplexity.evaluate(session: try SmolLM2Tests.session(m, ctx: 512),
                                          tokens: try Fixtures.npy("smollm2/ppl_tokens.npy", as: Int32.self).values, window: 512)
        print("\(key): perplexity \(ppl.ppl) ± \(ppl.stderr) (llama.cpp \(refPPL))")
        #expect(ppl.scoredTokens == 8160)
        let unit = pow(10, floor(log10(refPPL)) - 3)  // the 4th significant digit
        #expect(abs(ppl.ppl - refPPL) <= unit / 2, "\(key): perplexity \(ppl.ppl), llama.cpp \(refPPL)")
        return (inc, bat, ppl.ppl)
    }

    /// The references come from llama.cpp's AVX2 build (GGML_NATIVE=OFF GGML_AVX2=ON, 0.3.36),
    /// whose float order libadak follows (Tests/Fixtures/README.md, kquant section): every logit
    /// equal to the bit, token by token and teacher-forced.
    func exact(_ type: String) throws {
        guard let r = try checkSmolLM2(type) else { return }
        #expect(r.incremental.max == 0 && r.batch.max == 0, "SmolLM2 \(type): incremental \(r.incremental), batch \(r.batch)")
    }

    /// The references' llama.cpp build: the AVX2 one (an AVX-512 build sums its f32 attention in
    /// another order).
    @Test func referencesComeFromTheAVX2Build() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("iq4mx/models.json")))
        let info = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let sys = try #require(info["system_info"] as? String)
        #expect(sys.contains("AVX2 = 1") && !sys.contains("AVX512 = 1"), "\(sys)")
    }

    /// Every matrix IQ4_NL (llama.cpp's `pure` quantization).
    /// The pure variants (not in issue 16's list) differ from the AVX2 build in the last bits
    /// (max |Δ| ~1e-5, mean ~1.3e-6, token by token too, so not only a gemm order): checkSmolLM2's
    /// mean |Δ| <= 1e-3 and perplexity hold; the bit-exact claim is a known issue until found.
    @Test(.enabled(if: IQ4MXFP4ModelTests.havePure("IQ4_NL"), "no pure IQ4_NL model: made by llama.cpp's quantizer only (make_iq4_mxfp4_refs.py)"))
    func smolLM2PureIQ4NL() throws {
        guard let r = try checkSmolLM2("IQ4_NL.pure") else { return }
        withKnownIssue("SmolLM2 pure IQ4_NL: last-bit differences from the AVX2 build", isIntermittent: true) {
            #expect(r.incremental.max == 0 && r.batch.max == 0, "incremental \(r.incremental), batch \(r.batch)")
        }
    }
    /// IQ4_XS where rows are multiples of 256 (ffn_down), IQ4_NL elsewhere (`pure`).
    @Test(.enabled(if: IQ4MXFP4ModelTests.havePure("IQ4_XS"), "no pure IQ4_XS model: made by llama.cpp's quantizer only (make_iq4_mxfp4_refs.py)"))
    func smolLM2PureIQ4XS() throws {
        guard let r = try checkSmolLM2("IQ4_XS.pure") else { return }
        withKnownIssue("SmolLM2 pure IQ4_XS: last-bit differences from the AVX2 build", isIntermittent: true) {
            #expect(r.incremental.max == 0 && r.batch.max == 0, "incremental \(r.incremental), batch \(r.batch)")
        }
    }
    /// llama.cpp's default IQ4_NL / IQ4_XS mixes (a few matrices promoted to K-quants).
    @Test func smolLM2IQ4NL() throws { try exact("IQ4_NL") }
    @Test func smolLM2IQ4XS() throws { try exact("IQ4_XS") }

    /// moe256 (qwen3moe, rows of 256): full logits of two 32-token sequences, decoded in one batch
    /// (prefill, grouped experts) and one token at a time (decode).
    func checkMoE(_ type: String) throws -> Delta? {
        let key = "moe256.\(type)"
        guard let m = try Self.model(key), let e = Self.entry(key) else { return nil }
        let seqs = e["sequences"] as! [String: [Int]]
        let s = try SmolLM2Tests.session(m, ctx: 256)
        let v = m.config.nVocab
        var all = Delta()
        for (name, seq) in seqs.sorted(by: { $0.key < $1.key }) {
            let ids = seq.map(Int32.init)
            let batch = try Fixtures.npy("iq4mx/\(key).\(name).batch.logits.npy", as: Float.self).values
            let inc = try Fixtures.npy("iq4mx/\(key).\(name).incremental.logits.npy", as: Float.self).values
            var db = Delta(), di = Delta(), top1 = 0
            s.reset()
            try s.evaluate(ids, allLogits: true)
            s.withLogits { l in
                for p in 0..<ids.count {
                    for j in 0..<v { db.add(l[p * v + j], batch[p * v + j]) }
                    let ref = Array(batch[(p * v)..<((p + 1) * v)])
                    if SmolLM2Tests.argmax(UnsafeBufferPointer(rebasing: l[(p * v)..<((p + 1) * v)])) == ref.withUnsafeBufferPointer(SmolLM2Tests.argmax) { top1 += 1 }
                }
            }
            s.reset()
            for (p, t) in ids.enumerated() {
                try s.evaluate([t])
                s.withLogits { l in for j in 0..<v { di.add(l[j], inc[p * v + j]) } }
            }
            print("\(key) \(name): batch \(db), incremental \(di), top-1 \(top1)/\(ids.count)")
            #expect(db.mean <= 1e-3 && di.mean <= 1e-3, "\(key) \(name)")
            #expect(top1 == ids.count, "\(key) \(name)")
            all.max = max(all.max, db.max, di.max)
            all.sum += db.sum + di.sum
            all.count += db.count + di.count
        }
        // perplexity on kquant/moe256.ppl_tokens.npy (the moe256 K-quant protocol), to 4 digits
        let refPPL = (e["perplexity"] as? [String: Any])?["ppl"] as? Double
        #expect(refPPL != nil, "\(key): models.json has no perplexity")
        if let refPPL {
            let ppl = try Perplexity.evaluate(session: try SmolLM2Tests.session(m, ctx: 512),
                                              tokens: try Fixtures.npy("kquant/moe256.ppl_tokens.npy", as: Int32.self).values,
                                              window: 512)
            print("\(key): perplexity \(ppl.ppl) (llama.cpp \(refPPL))")
            let unit = pow(10, floor(log10(refPPL)) - 3)  // the 4th significant digit
            #expect(abs(ppl.ppl - refPPL) <= unit / 2, "\(key): perplexity \(ppl.ppl), llama.cpp \(refPPL)")
        }
        return all
    }

    /// Bit-identical: max |Δ| = 0 over both sequences, batch and incremental.
    @Test func moe256MXFP4IsLlamaCpps() throws {
        guard let d = try checkMoE("MXFP4_MOE") else { return }
        #expect(d.max == 0)
    }

    /// IQ4_XS experts with llama.cpp's Q6_K output head, used as stored (mean |Δ| ~2e-8, max 1e-6
    /// against the AVX-512 build's references; top-1 equal everywhere).
    /// Its IQ4_XS expert stacks are used repacked in 16-row groups (AKK_IQ4_XS_R16), which must
    /// not change a bit of the products.
    @Test func moe256IQ4XSIsLlamaCpps() throws {
        _ = try checkMoE("IQ4_XS")
        guard let m = try Self.model("moe256.IQ4_XS") else { return }
        var repacked = 0
        for (l, w) in m.layers.enumerated() {
            for (n, st) in [("ffn_gate_exps", w.gateExps), ("ffn_up_exps", w.upExps), ("ffn_down_exps", w.downExps)] {
                guard let st, let t = m.gguf.tensor("blk.\(l).\(n).weight"), t.type == AKK_IQ4_XS.rawValue else { continue }
                #expect(st.type == Int32(AKK_IQ4_XS_R16.rawValue) || st.rows % 16 != 0, "blk.\(l).\(n) as \(st.type)")
                repacked += st.type == Int32(AKK_IQ4_XS_R16.rawValue) ? 1 : 0
            }
        }
        #expect(repacked > 0)
    }
}

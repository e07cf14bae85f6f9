import Foundation
import Testing
@testable import AdaK
import CAdaKKernels

/// SmolLM2-135M and the moe256 fixture requantized by llama.cpp to K-quant mixes, run in their own
/// types, against llama.cpp's logits, greedy tokens and perplexity (Tests/Fixtures/kquant, made by
/// Tests/Fixtures/tools/make_kquant_refs.py). The models are read from
/// `$ADAK_CACHE/quant/<base>.<TYPE>.gguf` (`make quant-models`); a missing one is a failure.
@Suite(.serialized) struct KQuantModelTests {
    struct Case {
        var name: String
        var ids: [Int32]
        var greedy: [Int32]
    }

    struct Reference {
        var name: String
        var cases: [Case]
        var ppl: Double
        var pplTokens: [Int32]
        /// The reference was made by a llama.cpp built with AVX-512 (refused: see compare).
        var avx512: Bool
    }

    static func modelPath(_ name: String) -> String {
        let env = ProcessInfo.processInfo.environment
        let cache = env["ADAK_CACHE"] ?? (Fixtures.repoRoot + "/.cache")
        return cache + "/quant/\(name).gguf"
    }

    static func reference(_ name: String) throws -> Reference {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("kquant/\(name)/info.json")))
        let o = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let cases = (o["cases"] as! [[String: Any]]).map {
            Case(name: $0["name"] as! String, ids: ($0["ids"] as! [Int]).map(Int32.init),
                 greedy: ($0["greedy_ids"] as! [Int]).map(Int32.init))
        }
        let ppl = (o["perplexity"] as! [String: Any])["ppl"] as! Double
        let tokens = name.hasPrefix("moe256")
            ? try Fixtures.npy("kquant/moe256.ppl_tokens.npy", as: Int32.self).values
            : try Fixtures.npy("smollm2/ppl_tokens.npy", as: Int32.self).values
        let avx512 = (o["system_info"] as? String ?? "").contains("AVX512 = 1")
        return Reference(name: name, cases: cases, ppl: ppl, pplTokens: tokens, avx512: avx512)
    }

    static func load(_ name: String) throws -> Model? {
        let path = modelPath(name)
        guard FileManager.default.fileExists(atPath: path) else {
            Issue.record("missing \(path): run `make quant-models` (or Tests/Fixtures/tools/make_kquant_refs.py --quantize-only)")
            return nil
        }
        return try Model(path: path)
    }

    static func session(_ m: Model, ctx: Int) throws -> Session {
        var p = SessionParams()
        p.contextSize = ctx
        p.threads = 2
        p.sampling = .greedy
        return try Session(model: m, params: p)
    }

    static func argmax(_ row: UnsafeBufferPointer<Float>) -> Int32 {
        var best = 0
        for i in 1..<row.count where row[i] > row[best] { best = i }
        return Int32(best)
    }

    /// |ours - llama.cpp| over the stored top-32 logits of every row: (max, mean).
    struct Diff {
        var max: Float = 0, sum: Double = 0, count = 0
        var mean: Double { count > 0 ? sum / Double(count) : 0 }
        mutating func add(_ d: Float) { max = Swift.max(max, d); sum += Double(d); count += 1 }
    }

    static func compare(_ name: String, exact: Bool) throws {
        guard let m = try load(name) else { return }
        let ref = try reference(name)
        // Built with AVX-512, llama.cpp sums its f32 attention products in another order than its
        // AVX2 build, which libadak follows (Tests/Fixtures/README.md, kquant/ "Which build").
        #expect(!ref.avx512, "\(name): reference made by an AVX-512 llama.cpp build; remake it with the AVX2 one")
        try checkUsedAsStored(m, name)
        let s = try session(m, ctx: 2048)
        let v = m.config.nVocab
        var inc = Diff(), batch = Diff(), first = Diff(), greedySame = 0
        for c in ref.cases {
            let dir = "kquant/\(name)/\(c.name)"
            let gi = try Fixtures.npy("\(dir).greedy_top32_ids.npy", as: Int32.self).values
            let gl = try Fixtures.npy("\(dir).greedy_top32_logits.npy", as: Float.self).values
            // incremental: our argmax each step, llama.cpp's token fed back (the rows stay aligned)
            s.reset()
            try s.evaluate(c.ids)
            var ours: [Int32] = []
            for i in 0..<c.greedy.count {
                s.withLogits { l in
                    for j in 0..<32 { inc.add(abs(l[Int(gi[i * 32 + j])] - gl[i * 32 + j])) }
                    ours.append(argmax(l))
                }
                try s.evaluate([c.greedy[i]])
            }
            if ours == c.greedy { greedySame += 1 }
            let differs = zip(ours, c.greedy).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            #expect(ours == c.greedy, "\(name) \(c.name): greedy differs from step \(differs ?? -1)")
            // teacher forcing in one batch
            let all = c.ids + c.greedy
            let ti = try Fixtures.npy("\(dir).top32_ids.npy", as: Int32.self).values
            let tl = try Fixtures.npy("\(dir).top32_logits.npy", as: Float.self).values
            s.reset()
            try s.evaluate(all, allLogits: true)
            s.withLogits { l in
                for pos in 0..<all.count {
                    for j in 0..<32 {
                        let d = abs(l[pos * v + Int(ti[pos * 32 + j])] - tl[pos * 32 + j])
                        batch.add(d)
                        if pos == 0 { first.add(d) }
                    }
                }
            }
        }
        print("\(name): max|Δ| incremental \(inc.max) batch \(batch.max), mean|Δ| \(inc.mean) / \(batch.mean), first position \(first.max); greedy identical \(greedySame)/\(ref.cases.count)")
        // The first position of a batch involves every weight kernel but no attention over other
        // positions.
        #expect(first.max <= (exact ? 0 : 1e-5), "\(name): first-position logits differ from llama.cpp's")
        if exact {
            #expect(inc.max <= 1e-4 && batch.max <= 1e-4, "\(name): not llama.cpp's logits")
        } else {
            #expect(inc.mean <= 1e-3 && batch.mean <= 1e-3, "\(name): mean |Δ| above 1e-3")
        }
        // perplexity, equal to 4 significant digits
        let ps = try session(m, ctx: 512)
        let r = try Perplexity.evaluate(session: ps, tokens: ref.pplTokens, window: 512)
        let unit = pow(10, floor(log10(ref.ppl)) - 3)
        print("\(name): perplexity \(r.ppl) over \(r.scoredTokens) tokens (llama.cpp \(ref.ppl))")
        #expect(abs(r.ppl - ref.ppl) <= unit / 2, "\(name): perplexity \(r.ppl) vs llama.cpp \(ref.ppl)")
    }

    /// Every Q5_x / K-quant matrix is used in its own type, the file's bytes as they are (copied
    /// to huge pages: WeightLoader.allocateWeights); Q4_K matrices of whole 8-row groups repacked
    /// (the same bits, its own copy): AKK_Q4_K_R8_DENSE for dense matrices (llama.cpp's gemm
    /// order), AKK_Q4_K_R8 for expert stacks (its gemv).
    static func checkUsedAsStored(_ m: Model, _ name: String) throws {
        var seen = 0
        func check(_ tensor: String, _ type: Int32?, _ data: UnsafeRawPointer?) {
            guard let t = m.gguf.tensor(tensor), kquantTypes.contains(Int32(bitPattern: t.type)) else { return }
            let r8 = tensor.contains("_exps") ? AKK_Q4_K_R8 : AKK_Q4_K_R8_DENSE
            #expect(type != Int32((tensor.contains("_exps") ? AKK_Q4_K_R8_DENSE : AKK_Q4_K_R8).rawValue), "\(name): \(tensor)")
            if type == Int32(r8.rawValue) {
                #expect(t.type == AKK_Q4_K.rawValue, "\(name): \(tensor) repacked from \(t.typeName)")
                seen += 1
                return
            }
            #expect(type == Int32(bitPattern: t.type) && data.map { memcmp($0, m.gguf.data(t), t.byteCount) == 0 } == true,
                    "\(name): \(tensor) converted at load")
            seen += 1
        }
        for (l, w) in m.layers.enumerated() {
            let p = "blk.\(l)."
            for (n, mat) in [("attn_q", w.wq), ("attn_k", w.wk), ("attn_v", w.wv), ("attn_output", w.wo)] {
                check(p + n + ".weight", mat?.type, mat?.data)
            }
            for (n, mat) in [("ffn_gate", w.ffnGate), ("ffn_up", w.ffnUp), ("ffn_down", w.ffnDown)] {
                check(p + n + ".weight", mat?.type, mat?.data)
            }
            for (n, st) in [("ffn_gate_exps", w.gateExps), ("ffn_up_exps", w.upExps), ("ffn_down_exps", w.downExps)] {
                check(p + n + ".weight", st?.type, st?.data)
            }
        }
        #expect(seen > 0, "\(name): no K-quant or Q5_x matrix found")
    }

    /// A corrupted block: a NaN or infinite scale is a clear load error; huge finite scales load
    /// and run (garbage, no crash).
    @Test func corruptedBlocks() throws {
        let path = Self.modelPath("moe256.Q4_K_M")
        guard FileManager.default.fileExists(atPath: path) else {
            Issue.record("missing \(path): run `make quant-models`")
            return
        }
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        let info = try GGUFFile(path: path)
        let t = try #require(info.tensor("blk.1.ffn_gate_exps.weight"))
        #expect(t.type == UInt32(AKK_Q4_K.rawValue))
        let tmp = NSTemporaryDirectory() + "adak-kquant-corrupt-\(getpid()).gguf"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        for (d, fails) in [(UInt16(0x7e00), true), (0xfc00, true), (0x7bff, false)] {
            var bytes = [UInt8](original)
            let block = t.fileOffset + 144 * 37          // d of block 37
            bytes[block] = UInt8(d & 0xff); bytes[block + 1] = UInt8(d >> 8)
            bytes[block + 146] = 0xff; bytes[block + 147] = 0x7b   // dmin of block 38: 65504
            try Data(bytes).write(to: URL(fileURLWithPath: tmp))
            if fails {
                #expect(throws: AdaKError.self) { _ = try Model(path: tmp) }
            } else {
                let m = try Model(path: tmp)
                let sess = try Self.session(m, ctx: 64)
                try sess.evaluate([1, 2, 3, 4], allLogits: true)
                try sess.evaluate([5])
            }
        }
    }

    @Test func smolLM2Q6_K() throws { try Self.compare("SmolLM2-135M-Instruct.Q6_K", exact: true) }
    @Test func smolLM2Q5_K_M() throws { try Self.compare("SmolLM2-135M-Instruct.Q5_K_M", exact: true) }
    @Test func smolLM2Q4_K_M() throws { try Self.compare("SmolLM2-135M-Instruct.Q4_K_M", exact: true) }
    @Test func smolLM2Q3_K_M() throws { try Self.compare("SmolLM2-135M-Instruct.Q3_K_M", exact: true) }
    @Test func smolLM2Q2_K() throws { try Self.compare("SmolLM2-135M-Instruct.Q2_K", exact: true) }
    @Test func moe256Q4_K_M() throws { try Self.compare("moe256.Q4_K_M", exact: false) }
    @Test func moe256Q2_K() throws { try Self.compare("moe256.Q2_K", exact: false) }
}

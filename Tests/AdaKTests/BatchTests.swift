import Testing
@testable import AdaK

/// Batched decoding (Engine/Batch.swift): each session's logits in a batch equal the same
/// session's logits when the same tokens are evaluated alone, with different routing policies,
/// allocators and budgets in one batch and prompt chunks of newcomers mixed with decode rows.
@Suite struct BatchTests {
    /// Routing settings of the sessions of one batch (cycled): static Top-K, a dithered Top-K
    /// budget, top-p and skip under budgets, entropy, and Ada-K with the identity allocator at a price.
    static func routings(_ m: Model) -> [(RoutingConfig, Bool)] {
        guard m.config.isMoE else { return [(RoutingConfig(), false)] }
        var topK = RoutingConfig(); topK.budget = 0.5
        var topP = RoutingConfig(policy: .topP); topP.p = 0.6; topP.budget = 0.7
        var skip = RoutingConfig(policy: .skip); skip.beta = 0.3; skip.budget = 0.6
        var entropy = RoutingConfig(policy: .entropy); entropy.tau = 0.8
        var adak = RoutingConfig(policy: .adak); adak.price = 0.05
        return [(RoutingConfig(), false), (topK, false), (topP, false), (skip, false), (entropy, false), (adak, true)]
    }

    static func session(_ m: Model, _ r: (RoutingConfig, Bool)) throws -> Session {
        var p = SessionParams()
        p.contextSize = 96
        p.threads = 2
        p.sampling = .greedy
        let s = try Session(model: m, params: p)
        if r.1 { try s.setAllocator(Allocator.identity(for: m)) }
        try s.setRouting(r.0)
        return s
    }

    /// Runs `prompts` as a server would: every step takes one token of each session that is
    /// decoding, then prompt tokens of newcomers up to `chunk` rows (a newcomer joins every other
    /// step). Then replays each session's feeds alone and returns the largest logit difference.
    static func batchedVersusAlone(_ m: Model, prompts: [[Int32]], decode: Int, chunk: Int) throws -> Float {
        let rs = routings(m)
        let batched = try prompts.indices.map { try session(m, rs[$0 % rs.count]) }
        var fed = prompts.map { _ in [[Int32]]() }                 // per session: the tokens of each step
        var seen = prompts.map { _ in [[Float]]() }                // and its logits after it
        var left = prompts                                          // prompt tokens still to evaluate
        var made = prompts.map { _ in 0 }
        var step = 0
        while made.contains(where: { $0 < decode }) {
            var entries: [(session: Session, tokens: [Int32])] = []
            var budget = chunk
            for i in prompts.indices where left[i].isEmpty && made[i] < decode {
                entries.append((batched[i], [batched[i].sample()]))
                made[i] += 1
            }
            for i in prompts.indices where !left[i].isEmpty && i <= step / 2 && budget > 0 {
                let n = min(budget, left[i].count)
                entries.append((batched[i], Array(left[i].prefix(n))))
                left[i].removeFirst(n)
                budget -= n
            }
            step += 1
            guard !entries.isEmpty else { continue }
            try Session.evaluate(batch: entries)
            for (s, toks) in entries {
                let i = batched.firstIndex { $0 === s }!
                fed[i].append(toks)
                seen[i].append(s.withLogits { Array($0) })
            }
        }
        var worst: Float = 0
        for i in prompts.indices {
            let alone = try session(m, rs[i % rs.count])
            for (toks, want) in zip(fed[i], seen[i]) {
                try alone.evaluate(toks)
                let got = alone.withLogits { Array($0) }
                worst = max(worst, TinyModelTests.maxAbs(got, want))
            }
            #expect(alone.stats.tokens == batched[i].stats.tokens)
            #expect(alone.stats.expertFlops == batched[i].stats.expertFlops)
        }
        return worst
    }

    static let prompts: [[Int32]] = [
        [1, 17, 42, 99, 7, 3, 250, 12, 5],
        [1, 300, 8],
        [1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20],
        [1, 77],
        [1, 123, 45, 67, 89, 10, 11],
    ]

    @Test(arguments: TinyModelTests.models.flatMap { ["\($0).f32", "\($0).q8_0", "\($0).q4_0"] } + ["tiny-gptoss.mxfp4"])
    func tinyBatchEqualsAlone(file: String) throws {
        let m = try Model(path: Fixtures.path("models/\(file).gguf"))
        let vocab = Int32(m.config.nVocab)
        let prompts = Self.prompts.map { $0.map { $0 % vocab } }
        let d = try Self.batchedVersusAlone(m, prompts: prompts, decode: 6, chunk: 5)
        print("\(file): batched vs alone max |Δ| = \(d)")
        #expect(d == 0)
    }

    @Test func smolLM2BatchEqualsAlone() throws {
        guard let m = try SmolLM2Tests.model() else { return }
        let prompts: [[Int32]] = [
            m.tokenizer.tokenize("The capital of France is", addSpecial: true, parseSpecial: false),
            m.tokenizer.tokenize("Once upon a time, in a small village by the sea, there lived", addSpecial: true, parseSpecial: false),
            m.tokenizer.tokenize("def fibonacci(n):", addSpecial: true, parseSpecial: false),
            m.tokenizer.tokenize("1, 2, 3, 4,", addSpecial: true, parseSpecial: false),
        ]
        let d = try Self.batchedVersusAlone(m, prompts: prompts, decode: 8, chunk: 8)
        print("SmolLM2: batched vs alone max |Δ| = \(d)")
        #expect(d == 0)
    }

    @Test func badBatchesChangeNothing() throws {
        let m = try Model(path: Fixtures.path("models/tiny-mixtral.f32.gguf"))
        let other = try Model(path: Fixtures.path("models/tiny-olmoe.f32.gguf"))
        let a = try Self.session(m, (RoutingConfig(), false)), b = try Self.session(m, (RoutingConfig(), false))
        let c = try Self.session(other, (RoutingConfig(), false))
        #expect(throws: AdaKError.self) { try Session.evaluate(batch: []) }
        #expect(throws: AdaKError.self) { try Session.evaluate(batch: [(a, [1]), (a, [2])]) }
        #expect(throws: AdaKError.self) { try Session.evaluate(batch: [(a, [1]), (c, [2])]) }
        #expect(throws: AdaKError.self) { try Session.evaluate(batch: [(a, [1]), (b, [])]) }
        #expect(throws: AdaKError.self) { try Session.evaluate(batch: [(a, [1]), (b, [-1])]) }
        #expect(throws: AdaKError.self) { try Session.evaluate(batch: [(a, [1]), (b, [Int32](repeating: 1, count: 97))]) }
        #expect(a.position == 0 && b.position == 0)
        let mla = try Model(path: Fixtures.path("models/tiny-deepseek2.f32.gguf"))
        let d1 = try Self.session(mla, (RoutingConfig(), false)), d2 = try Self.session(mla, (RoutingConfig(), false))
        #expect(throws: AdaKError.self) { try Session.evaluate(batch: [(d1, [1]), (d2, [2])]) }
        try Session.evaluate(batch: [(d1, [1, 2])])   // one session: its own evaluate
        #expect(d1.position == 2)
    }
}

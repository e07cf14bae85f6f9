import Testing
@testable import AdaK

/// Dynamic-k routing against the transformers references of the tiny fixtures, allocators with
/// hand-built gates, the FLOPs meter and the budget controller.
@Suite struct RoutingTests {
    static let models = TinyModelTests.models

    static func session(_ name: String, ctx: Int = 128, routing: RoutingConfig = RoutingConfig()) throws -> Session {
        let m = try Model(path: Fixtures.path("models/\(name).f32.gguf"))
        var p = SessionParams()
        p.contextSize = ctx
        p.threads = 2
        p.routing = routing
        return try Session(model: m, params: p)
    }

    static func inputIds(_ name: String) throws -> [Int32] {
        try Fixtures.npy("reference/\(name).input_ids.npy", as: Int32.self).values
    }

    @Test(arguments: models)
    func forcedKReproducesTransformers(name: String) throws {
        let k = try Fixtures.npy("reference/\(name).forced_k.npy", as: Int32.self)
        #expect(k.shape == [2, 64])
        var r = RoutingConfig()
        let table = k.values
        r.forcedK = { layer, pos in Int(table[layer * 64 + pos]) }
        let s = try Self.session(name, routing: r)
        try s.evaluate(try Self.inputIds(name), allLogits: true)
        let ref = try Fixtures.npy("reference/\(name).forced_k.logits.npy", as: Float.self).values
        let diff = s.withLogits { TinyModelTests.maxAbs(Array($0), ref) }
        print("\(name) forced k: max |Δ| = \(diff)")
        #expect(diff <= 1e-4)
        #expect(s.router.batchK[0].map(Int32.init) == Array(table[0..<64]))
    }

    @Test(arguments: models)
    func topPReproducesTransformers(name: String) throws {
        var r = RoutingConfig(policy: .topP)
        r.p = 0.5
        r.kMax = 4
        let s = try Self.session(name, routing: r)
        try s.evaluate(try Self.inputIds(name), allLogits: true)
        let refK = try Fixtures.npy("reference/\(name).top_p0.5_kmax4.k.npy", as: Int32.self).values
        let ours = s.router.batchK.flatMap { $0.map(Int32.init) }
        #expect(ours == refK)
        let ref = try Fixtures.npy("reference/\(name).top_p0.5_kmax4.logits.npy", as: Float.self).values
        let diff = s.withLogits { TinyModelTests.maxAbs(Array($0), ref) }
        print("\(name) top_p 0.5: max |Δ| = \(diff)")
        #expect(diff <= 1e-4)
    }

    @Test(arguments: models)
    func identityAllocatorIsTopK(name: String) throws {
        let base = try Self.session(name)
        let ids = try Self.inputIds(name)
        try base.evaluate(ids, allLogits: true)
        let s = try Self.session(name)
        try s.setAllocator(Allocator.identity(for: s.model))
        try s.setRouting(RoutingConfig(policy: .adak))
        try s.evaluate(ids, allLogits: true)
        let a = base.withLogits { Array($0) }, b = s.withLogits { Array($0) }
        #expect(a == b)
        #expect(s.stats.meanK == 2)
    }

    /// A hand-built gate: layer 0's allocator reads one hidden coordinate and encodes
    /// k = 1 where it is negative, k = 3 where it is positive; layer 1 always picks 4.
    @Test func oneHotAllocatorGivesItsK() throws {
        let s = try Self.session("tiny-mixtral")
        let a = Allocator.identity(for: s.model)
        let d = a.nEmbd, E = a.nExpert
        a.weights[0] = [Float](repeating: 0, count: E * d)
        a.biases[0] = [Float](repeating: 0, count: E)
        a.weights[0][0 * d + 5] = -100   // action k=1 wins when h[5] < 0
        a.weights[0][2 * d + 5] = 100    // action k=3 wins when h[5] > 0
        a.weights[1] = [Float](repeating: 0, count: E * d)
        a.biases[1] = (0..<E).map { $0 == 3 ? 1 : 0 }
        try s.setAllocator(a)
        try s.setRouting(RoutingConfig(policy: .adak))
        let ids = try Self.inputIds("tiny-mixtral")
        try s.evaluate(ids, allLogits: true)
        let ks0 = s.router.batchK[0], ks1 = s.router.batchK[1]
        #expect(Set(ks0).isSubset(of: [1, 3]))
        #expect(ks0.contains(1) && ks0.contains(3))
        #expect(ks1.allSatisfy { $0 == 4 })
        #expect(s.stats.kHistogram[1] == 0 && s.stats.kHistogram[3] == 64)
    }

    /// FLOPs by hand for tiny-qwen2moe (d 64, 4 heads × 16, 4 kv heads, 8 experts of FFN 32,
    /// shared FFN 96, 2 layers, vocab 256): 3 tokens, static top-2, logits for the last only.
    @Test func flopsMeterByHand() throws {
        let s = try Self.session("tiny-qwen2moe")
        try s.evaluate([1, 65, 66])
        let d = 64.0, hd = 16.0, heads = 4.0
        let proj = 2 * d * (heads * hd * 3) + 2 * heads * hd * d          // q,k,v and o
        let router = 2 * d * 8, expert = 6 * d * 32, shared = 6 * d * 96 + 2 * d
        let lmHead = 2 * d * 256
        var total = 0.0
        for pos in 0..<3 {
            let scores = 4 * hd * heads * Double(pos + 1)
            total += 2 * (proj + scores + router + shared + 2 * expert)
        }
        total += lmHead
        let st = s.stats
        #expect(st.tokens == 3)
        #expect(st.totalFlops == total)
        #expect(st.expertFlops == 3 * 2 * 2 * expert)
        #expect(st.expertFraction == 1)
        #expect(st.meanKPerLayer == [2, 2])
    }

    /// Over 512 sampled decode tokens the achieved expert-FLOPs fraction is within ±2% of the
    /// target, for Ada-K (identity allocator + budget) and Top-P.
    @Test(arguments: [("tiny-mixtral", RoutingPolicy.adak), ("tiny-mixtral", .topP),
                      ("tiny-qwen3moe", .adak), ("tiny-qwen3moe", .topP),
                      ("tiny-olmoe", .adak), ("tiny-olmoe", .topP)])
    func budgetIsMet(name: String, policy: RoutingPolicy) throws {
        for target: Float in [0.5, 0.75, 1.0] {
            let s = try Self.samplingSession(name)
            if policy == .adak { try s.setAllocator(Allocator.identity(for: s.model)) }
            var r = RoutingConfig(policy: policy)
            if policy == .topP { r.p = 0.9; r.kMax = 4 }
            r.budget = target
            try s.setRouting(r)
            try s.evaluate(Array(try Self.inputIds(name).prefix(16)))
            s.resetStats()
            for _ in 0..<512 { try s.evaluate([s.sample()]) }
            let got = s.stats.expertFraction
            print("\(name) \(policy.rawValue) budget \(target): achieved \(got)")
            #expect(s.stats.tokens == 512)
            #expect(abs(got - Double(target)) <= 0.02 * Double(target))
        }
    }

    /// A session on `NAME.f32.gguf` that samples at temperature 1 (seed 7) over a 600-token context.
    static func samplingSession(_ name: String) throws -> Session {
        try Session(model: try Model(path: Fixtures.path("models/\(name).f32.gguf")), params: samplingParams(contextSize: 600))
    }

    /// Two threads, sampling at temperature 1 from the full distribution, seed 7.
    static func samplingParams(contextSize: Int) -> SessionParams {
        var p = SessionParams()
        p.contextSize = contextSize
        p.threads = 2
        p.sampling.temperature = 1.0
        p.sampling.topK = 0
        p.sampling.topP = 1
        p.sampling.minP = 0
        p.sampling.seed = 7
        return p
    }

    @Test func badSettingsAreRejectedAndLeaveTheSessionAlone() throws {
        let s = try Self.session("tiny-olmoe")
        let before = s.routing
        for bad: Float in [.nan, -1, 0, .infinity] {
            #expect(throws: AdaKError.self) { try s.setBudget(bad) }
        }
        var r = RoutingConfig(policy: .topP)
        r.p = .nan
        #expect(throws: AdaKError.self) { try s.setRouting(r) }
        r = RoutingConfig(policy: .topK)
        r.k = 9
        #expect(throws: AdaKError.self) { try s.setRouting(r) }
        #expect(throws: AdaKError.self) { try s.setRouting(RoutingConfig(policy: .adak)) }   // no allocator
        let other = try Model(path: Fixtures.path("models/tiny-mixtral.f32.gguf"))
        #expect(throws: AdaKError.self) { try s.setAllocator(Allocator.identity(for: other)) }
        #expect(s.routing == before)
        #expect(s.allocator == nil)
    }

    @Test func allocatorFileRoundTripAndMismatch() throws {
        let m = try Model(path: Fixtures.path("models/tiny-qwen3moe.f32.gguf"))
        let a = Allocator.identity(for: m)
        a.weights[1][7] = 0.25
        a.trainingInfo["adak.train.lambda"] = .float32(0.1)
        let path = "/tmp/adak-test-alloc-\(getpid()).gguf"
        try a.write(to: path)
        let b = try Allocator(path: path, model: m)
        #expect(b.weights == a.weights && b.biases == a.biases)
        #expect(b.trainingInfo["adak.train.lambda"] == .float32(0.1))
        let other = try Model(path: Fixtures.path("models/tiny-olmoe.f32.gguf"))
        #expect(throws: AdaKError.self) { _ = try Allocator(path: path, model: other) }
        #expect(throws: AdaKError.self) { _ = try Allocator(path: Fixtures.path("models/tiny-olmoe.f32.gguf"), model: m) }
        unlink(path)
    }

    /// The experts' ranking: descending router probability, ties by ascending index, for rows
    /// with many ties, sorted and reversed rows, and the 128 experts of Qwen3-MoE.
    @Test func expertRankingIsStableDescending() {
        var rng = SplitMix64(seed: 3)
        var rows: [[Float]] = [[0.5, 0.5, 0.5, 0.5], [1, 2, 3, 4, 5, 6, 7, 8], [8, 7, 6, 5, 4, 3, 2, 1], [0.25]]
        for n in [8, 60, 64, 128] {
            rows.append((0..<n).map { _ in Float(Int.random(in: 0..<5, using: &rng)) / 4 })   // many ties
            rows.append((0..<n).map { _ in Float.random(in: 0..<1, using: &rng) })
        }
        for key in rows {
            var idx = [Int32](repeating: -1, count: key.count)
            MoEScratch.rank(key, key.count, into: &idx)
            let expected = (0..<key.count).sorted { key[$0] > key[$1] || (key[$0] == key[$1] && $0 < $1) }
            #expect(idx.map(Int.init) == expected, "\(key)")
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

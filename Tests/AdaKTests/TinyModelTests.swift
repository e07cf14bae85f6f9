import Testing
@testable import AdaK

/// The four tiny random-weight MoE fixtures against transformers and llama.cpp (fixtures README §1-2).
@Suite struct TinyModelTests {
    static let models = ["tiny-mixtral", "tiny-olmoe", "tiny-qwen2moe", "tiny-qwen3moe"]

    static func logits(model name: String, file: String, params: ModelParams = ModelParams()) throws -> [Float] {
        let model = try Model(path: Fixtures.path("models/\(file)"), params: params)
        var p = SessionParams()
        p.contextSize = 128
        p.threads = 2
        let s = try Session(model: model, params: p)
        let ids = try Fixtures.npy("reference/\(name).input_ids.npy", as: Int32.self).values
        try s.evaluate(ids, allLogits: true)
        return s.withLogits { Array($0) }
    }

    static func maxAbs(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
    }

    static func meanAbs(_ a: [Float], _ b: [Float]) -> Double {
        zip(a, b).map { Double(abs($0 - $1)) }.reduce(0, +) / Double(a.count)
    }

    @Test(arguments: models)
    func f32MatchesTransformers(name: String) throws {
        let ours = try Self.logits(model: name, file: "\(name).f32.gguf")
        let hf = try Fixtures.npy("reference/\(name).hf.logits.npy", as: Float.self)
        #expect(hf.shape == [64, 256])
        let diff = Self.maxAbs(ours, hf.values)
        print("\(name) f32: max |Δ| vs transformers = \(diff)")
        #expect(diff <= 1e-4)
    }

    /// An f16 KV cache on the f32 models: the transformers reference within the error of rounding
    /// K, V, q and the attention probabilities to fp16 (11-bit mantissa: ~5e-4 relative), checked
    /// as 5e-3 absolute on logits of magnitude ~1 (measured 1.3e-3 to 1.9e-3) and the same argmax
    /// on nearly every row.
    @Test(arguments: models)
    func f16CacheStaysCloseToTransformers(name: String) throws {
        var p = SessionParams()
        p.kvType = .f16
        let model = try Model(path: Fixtures.path("models/\(name).f32.gguf"))
        p.contextSize = 128
        p.threads = 2
        let s = try Session(model: model, params: p)
        #expect(s.kvType == .f16)
        let ids = try Fixtures.npy("reference/\(name).input_ids.npy", as: Int32.self).values
        try s.evaluate(ids, allLogits: true)
        let ours = s.withLogits { Array($0) }
        let hf = try Fixtures.npy("reference/\(name).hf.logits.npy", as: Float.self).values
        let diff = Self.maxAbs(ours, hf)
        var agree = 0
        for r in 0..<64 {
            let a = ours[(r * 256)..<((r + 1) * 256)], b = hf[(r * 256)..<((r + 1) * 256)]
            if a.firstIndex(of: a.max()!)! - r * 256 == b.firstIndex(of: b.max()!)! - r * 256 { agree += 1 }
        }
        print("\(name) f32 weights, f16 KV: max |Δ| vs transformers = \(diff), argmax agreement \(agree)/64")
        #expect(diff <= 5e-3)
        #expect(diff > 1e-6)
        #expect(agree >= 62)
    }

    /// We compute what llama.cpp computes for quantised files (activations in Q8 blocks):
    /// mean |ours − llama.cpp(q)| ≤ ¼ · mean |llama.cpp(q) − llama.cpp(f32)|.
    @Test(arguments: models)
    func quantisedMatchesLlamaCpp(name: String) throws {
        let ref32 = try Fixtures.npy("reference/\(name).llamacpp.f32.logits.npy", as: Float.self).values
        for q in ["q8_0", "q4_0"] {
            let ours = try Self.logits(model: name, file: "\(name).\(q).gguf")
            let ref = try Fixtures.npy("reference/\(name).llamacpp.\(q).logits.npy", as: Float.self).values
            let ourDiff = Self.meanAbs(ours, ref), quantDiff = Self.meanAbs(ref, ref32)
            print("\(name) \(q): mean |ours − llama.cpp| = \(ourDiff), mean |llama.cpp q − f32| = \(quantDiff), ratio \(ourDiff / quantDiff)")
            #expect(ourDiff <= quantDiff / 4)
        }
        // The file's row layout (no 8-row repacking of Q4_0) is llama.cpp's plain x86 path: also
        // within the tolerance, and not the same numbers as the repacked run.
        var params = ModelParams()
        params.repack = false
        let plain = try Self.logits(model: name, file: "\(name).q4_0.gguf", params: params)
        let repacked = try Self.logits(model: name, file: "\(name).q4_0.gguf")
        let ref = try Fixtures.npy("reference/\(name).llamacpp.q4_0.logits.npy", as: Float.self).values
        #expect(Self.meanAbs(plain, ref) <= Self.meanAbs(ref, ref32) / 4)
        #expect(plain != repacked)
    }

    /// The decode phase clock: every one-token pass counted once (prefill batches not at all),
    /// each step timed where the model has it (a shared expert inside `experts`, no dense FFN in
    /// an MoE model), and the logits the same bits as without the clock.
    @Test(arguments: ["tiny-mixtral", "tiny-qwen2moe"])
    func phaseClockTimesEveryDecodeStep(name: String) throws {
        let model = try Model(path: Fixtures.path("models/\(name).q8_0.gguf"))
        var p = SessionParams()
        p.contextSize = 64
        p.threads = 2
        let ids = try Fixtures.npy("reference/\(name).input_ids.npy", as: Int32.self).values
        func run(clock: PhaseClock?) throws -> [Float] {
            let s = try Session(model: model, params: p)
            s.phaseClock = clock
            try s.evaluate(Array(ids.prefix(8)))
            for t in ids[8..<11] { try s.evaluate([t]) }
            s.phaseClock = nil
            try s.evaluate([ids[11]])
            return s.withLogits { Array($0) }
        }
        let clock = PhaseClock()
        let timed = try run(clock: clock), plain = try run(clock: nil)
        #expect(timed.map(\.bitPattern) == plain.map(\.bitPattern))
        #expect(clock.tokens == 3)
        for phase in PhaseClock.Phase.allCases {
            let us = clock.microsPerToken(phase)
            if phase == .ffn { #expect(us == 0, "\(phase)") } else { #expect(us > 0, "\(phase)") }
        }
        clock.reset()
        #expect(clock.tokens == 0 && clock.seconds.allSatisfy { $0 == 0 })
    }

    /// The bytes per step that `adak bench --phases` divides by a step's time: the experts' grow
    /// with k and nothing else does, the attention's are the KV cache's, and the steps' weights
    /// add up to weightBytesPerToken.
    @Test func bytesPerStepSplitTheWeights() throws {
        let model = try Model(path: Fixtures.path("models/tiny-mixtral.q8_0.gguf"))
        typealias Phase = PhaseClock.Phase
        let one = model.bytesPerStep(k: 1, position: 9), two = model.bytesPerStep(k: 2, position: 9)
        for p in Phase.allCases {
            if p == .experts { #expect(two[p.rawValue] == 2 * one[p.rawValue] && one[p.rawValue] > 0) }
            else { #expect(two[p.rawValue] == one[p.rawValue], "\(p)") }
        }
        #expect(one[Phase.attention.rawValue] == model.kvBytesPerToken(position: 9))
        #expect(one[Phase.ffn.rawValue] == 0 && one[Phase.qkv.rawValue] > 0 && one[Phase.router.rawValue] > 0)
        let qkv = model.layers.reduce(0) { $0 + $1.wq!.byteCount + $1.wk!.byteCount + $1.wv!.byteCount }
        #expect(one[Phase.qkv.rawValue] == Double(qkv))
        #expect(model.weightBytesPerToken(k: 2) == two.reduce(0, +) - two[Phase.attention.rawValue])
    }
}

import Foundation
import Testing
@testable import AdaK

/// Carving SmolLM2 into an adak-moe model (issue 5). Small carves (a few layers, a few hundred
/// calibration tokens) keep these fast; the full carve is `adak carve` (docs/CARVING.md).
@Suite(.serialized) struct CarvingTests {
    static let tmp = NSTemporaryDirectory() + "adak-carving-\(getpid())"

    static func calibration(_ bytes: Int = 40_000) throws -> String {
        let text = try String(contentsOfFile: Fixtures.path("text/train.txt"), encoding: .utf8)
        return String(text.utf8.prefix(bytes))!
    }

    static func options(layers: [Int], type: WeightType = .q8_0, seed: UInt64 = 7) throws -> CarveOptions {
        var o = CarveOptions()
        o.layers = layers
        o.expertType = type
        o.seed = seed
        o.maxTokens = 320
        o.window = 80
        o.kmeansIterations = 10
        o.threads = 2
        o.calibrationText = try calibration()
        return o
    }

    static func path(_ name: String) -> String {
        try? FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        return tmp + "/" + name
    }

    static func session(_ m: Model, k: Int? = nil) throws -> Session {
        var p = SessionParams()
        p.contextSize = 256
        p.threads = 2
        p.routing.k = k
        return try Session(model: m, params: p)
    }

    /// The dense file with every tensor exactly dequantised to f32 (llama.cpp's "f32dequant"):
    /// all activations then stay f32. With quantised attention a 1e-7 change of the residual
    /// can flip one rounding of the next layer's Q8_1 activations and grow through 30 layers
    /// (fixtures README §4), which would hide what this test checks.
    static func denseF32Copy(_ src: String, to out: String) throws {
        let g = try GGUFFile(path: src)
        var w = GGUFWriter()
        for k in g.metadataKeys { if let v = g.metadata[k] { w.set(k, v) } }
        for t in g.tensors { try w.addTensor(name: t.name, dims: t.dims, values: try g.dequantize(t)) }
        try w.write(to: out)
    }

    @Test func allExpertsReproduceDenseLogits() throws {
        guard let dense = Fixtures.smolLM2 else { return }
        let layers = [0, 14, 29]
        let carved = Self.path("keq.gguf"), ref = Self.path("dense-f32.gguf")
        defer { unlink(carved); unlink(ref) }
        try Self.denseF32Copy(dense, to: ref)
        try Carver.carve(dense: ref, output: carved, options: Self.options(layers: layers, type: .f32))

        let moe = try Model(path: carved), base = try Model(path: ref)
        #expect(moe.config.arch == "adak-moe")
        #expect(moe.config.traits.unitExpertWeights && moe.config.traits.router == .predictedNorm)
        #expect(moe.moeLayerIndices == layers)
        #expect(moe.config.nExpert == 16 && moe.config.nExpertUsed == 8 && moe.config.nFFExpert == 72 && moe.config.nFFShared == 384)
        let prompt = moe.tokenizer.tokenize("The kernel schedules tasks on each CPU and balances the load between run queues.",
                                            addSpecial: true, parseSpecial: false)
        let a = try Self.session(moe, k: 16), b = try Self.session(base)
        try a.evaluate(prompt, allLogits: true)
        try b.evaluate(prompt, allLogits: true)
        var maxDiff: Float = 0
        a.withLogits { la in b.withLogits { lb in for i in 0..<la.count { maxDiff = max(maxDiff, abs(la[i] - lb[i])) } } }
        print("K=E vs dense (all f32): max |Δlogit| = \(maxDiff) over \(prompt.count) positions")
        #expect(maxDiff <= 1e-3)
        #expect(a.stats.meanK == 16)

        // native K = 8 runs fewer experts and changes the logits; the threshold policies run on
        // the clamp-normalised scores
        let c = try Self.session(moe)
        try c.evaluate(prompt, allLogits: true)
        #expect(c.stats.meanK == 8)
        var r = RoutingConfig(policy: .topP)
        r.p = 0.6
        r.kMax = 16
        let d = try Self.session(moe)
        try d.setRouting(r)
        try d.evaluate(prompt)
        #expect(d.stats.meanK >= 1 && d.stats.meanK < 16)
    }

    @Test func carvingIsDeterministicAndPlansRebuildIt() throws {
        guard let dense = Fixtures.smolLM2 else { return }
        let o = try Self.options(layers: [3, 4])
        let out1 = Self.path("det1.gguf"), out2 = Self.path("det2.gguf"), out3 = Self.path("det3.gguf"), planPath = Self.path("plan.gguf")
        defer { for p in [out1, out2, out3, planPath] { unlink(p) } }
        let p1 = try Carver.carve(dense: dense, output: out1, options: o)
        let p2 = try Carver.carve(dense: dense, output: out2, options: o)
        #expect(p1 == p2)
        #expect(try p1.serialize() == p2.serialize())
        let b1 = try Data(contentsOf: URL(fileURLWithPath: out1)), b2 = try Data(contentsOf: URL(fileURLWithPath: out2))
        #expect(b1 == b2)

        // the plan round-trips and rebuilds the identical model without calibration
        try p1.write(to: planPath)
        let loaded = try CarvePlan(path: planPath)
        #expect(loaded == p1)
        var apply = CarveOptions()
        apply.plan = loaded
        try Carver.carve(dense: dense, output: out3, options: apply)
        #expect(try Data(contentsOf: URL(fileURLWithPath: out3)) == b1)

        // every plan layer is a permutation split into shared + equal experts
        for l in p1.layers {
            #expect(Set(l.order).count == p1.nFF)
            #expect(l.routerRecall > 0.5)
        }
        #expect(p1.sharedCount == 384 && p1.expertWidth == 72)

        // another seed clusters differently
        var o2 = o
        o2.seed = 8
        let p3 = try Carver.makePlan(model: Model(path: dense), options: o2)
        #expect(p3.layers.map(\.order) != p1.layers.map(\.order))
    }

    @Test func badInputsGiveClearErrors() throws {
        let out = Self.path("bad.gguf")
        defer { unlink(out) }
        var o = CarveOptions()
        o.calibrationText = "Some calibration text."
        // an MoE model (llama architecture with experts)
        let moe = Fixtures.path("models/tiny-mixtral.f32.gguf")
        #expect { try Carver.carve(dense: moe, output: out, options: o) } throws: { e in
            guard case AdaKError.unsupported(let m) = e else { return false }
            return m.contains("already a mixture-of-experts")
        }
        guard let dense = Fixtures.smolLM2 else { return }
        // E does not divide the FFN width (1536)
        var bad = o
        bad.experts = 7
        #expect { try Carver.carve(dense: dense, output: out, options: bad) } throws: { e in
            guard case AdaKError.invalidArgument(let m) = e else { return false }
            return m.contains("does not divide the FFN width 1536")
        }
        // empty (or blank) calibration text
        for text in ["", " \n\t "] {
            bad = o
            bad.calibrationText = text
            #expect { try Carver.carve(dense: dense, output: out, options: bad) } throws: { e in
                guard case AdaKError.invalidArgument(let m) = e else { return false }
                return m.contains("calibration text is empty")
            }
        }
        bad = o
        bad.calibrationText = nil
        #expect(throws: AdaKError.self) { try Carver.carve(dense: dense, output: out, options: bad) }
        // top-k and shared fraction out of range
        bad = o
        bad.topK = 17
        #expect(throws: AdaKError.self) { try Carver.carve(dense: dense, output: out, options: bad) }
        bad = o
        bad.sharedFraction = 1
        #expect(throws: AdaKError.self) { try Carver.carve(dense: dense, output: out, options: bad) }
        // a carved model cannot be carved again
        let plan = CarvePlan(experts: 16, expertUsed: 8, sharedCount: 0, expertWidth: 96, nEmbd: 576, nFF: 1536, nLayer: 30,
                             denseFingerprint: "0000000000000000", seed: 0, sharedFraction: 0, calibrationTokens: 0,
                             layers: [.init(index: 0, order: (0..<1536).map { Int32($0) }, routerWeight: [Float](repeating: 0, count: 16 * 576),
                                            routerBias: [Float](repeating: 1, count: 16), routerRecall: 0)])
        // a plan made from other weights
        var withPlan = CarveOptions()
        withPlan.plan = plan
        #expect { try Carver.carve(dense: dense, output: out, options: withPlan) } throws: { e in
            guard case AdaKError.invalidArgument(let m) = e else { return false }
            return m.contains("other dense weights")
        }
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func carvedModelIsRejectedAsDenseInput() throws {
        guard let dense = Fixtures.smolLM2 else { return }
        let carved = Self.path("twice.gguf"), again = Self.path("twice2.gguf")
        defer { unlink(carved); unlink(again) }
        try Carver.carve(dense: dense, output: carved, options: Self.options(layers: [0]))
        #expect { try Carver.carve(dense: carved, output: again, options: Self.options(layers: [0])) } throws: { e in
            guard case AdaKError.unsupported(let m) = e else { return false }
            return m.contains("already a mixture-of-experts")
        }
        // a bad plan file is a format error, not a crash
        let junk = Self.path("junk.gguf")
        defer { unlink(junk) }
        var w = GGUFWriter()
        w.set("general.architecture", .string(CarvePlan.architecture))
        try w.write(to: junk)
        #expect(throws: AdaKError.self) { try CarvePlan(path: junk) }
    }
}

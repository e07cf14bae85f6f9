import Foundation
import Testing
@testable import AdaK

/// granitemoe, deepseek2 (V2 with and without q_lora, V3 sigmoid/group routing) and gpt-oss against
/// transformers and llama.cpp (fixtures README §7, tools/make_arch_fixtures.py).
@Suite struct ArchitectureTests {
    static let models = ["tiny-granitemoe", "tiny-deepseek2", "tiny-deepseek2-qlora", "tiny-deepseek3", "tiny-gptoss"]

    static func session(_ file: String, ctx: Int = 128, routing: RoutingConfig = RoutingConfig(),
                        kvType: KVCacheType = .f32) throws -> Session {
        let model = try Model(path: Fixtures.path("models/\(file)"))
        var p = SessionParams()
        p.contextSize = ctx
        p.threads = 2
        p.routing = routing
        p.kvType = kvType
        return try Session(model: model, params: p)
    }

    static func logits(_ name: String, _ file: String, routing: RoutingConfig = RoutingConfig(),
                       kvType: KVCacheType = .f32) throws -> (Session, [Float]) {
        let s = try session(file, routing: routing, kvType: kvType)
        try s.evaluate(try Fixtures.npy("reference/\(name).input_ids.npy", as: Int32.self).values, allLogits: true)
        return (s, s.withLogits { Array($0) })
    }

    @Test(arguments: models)
    func f32MatchesTransformersAndLlamaCpp(name: String) throws {
        let (_, ours) = try Self.logits(name, "\(name).f32.gguf")
        let hf = try Fixtures.npy("reference/\(name).hf.logits.npy", as: Float.self)
        let ll = try Fixtures.npy("reference/\(name).llamacpp.f32.logits.npy", as: Float.self).values
        #expect(hf.shape == [64, 256])
        let dHF = TinyModelTests.maxAbs(ours, hf.values), dLL = TinyModelTests.maxAbs(ours, ll)
        print("\(name) f32: max |Δ| vs transformers = \(dHF), vs llama.cpp = \(dLL)")
        #expect(dHF <= 1e-4)
        #expect(dLL <= 1e-4)
    }
}

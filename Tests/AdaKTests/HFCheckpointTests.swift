import Foundation
import Testing
@testable import AdaK

/// Hugging Face checkpoint folders: direct load, shards, bf16, conversion to GGUF.
@Suite struct HFCheckpointTests {
    static let models = TinyModelTests.models

    static func logits(_ model: Model) throws -> [Float] {
        var p = SessionParams()
        p.contextSize = 128
        p.threads = 2
        let s = try Session(model: model, params: p)
        let ids = try Fixtures.npy("reference/tiny-mixtral.input_ids.npy", as: Int32.self).values
        try s.evaluate(ids, allLogits: true)
        return s.withLogits { Array($0) }
    }

    static func f32Params() -> ModelParams {
        var p = ModelParams()
        p.weightType = .f32
        return p
    }

    /// A fresh temporary folder (removed by the caller).
    static func tempDir(_ tag: String) throws -> String {
        let dir = NSTemporaryDirectory() + "adak-hf-\(tag)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Copies everything but the weights of a fixture folder.
    static func copyNonWeights(from src: String, to dst: String) throws {
        for f in ["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
            try FileManager.default.copyItem(atPath: src + "/" + f, toPath: dst + "/" + f)
        }
    }

    /// Writes a safetensors file: tensors in the given order, header keys sorted as the reference writer does.
    static func writeSafetensors(_ path: String, _ tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])]) throws {
        var header: [String: Any] = [:]
        var offset = 0
        var body = Data()
        for t in tensors {
            header[t.name] = ["dtype": t.dtype, "shape": t.shape, "data_offsets": [offset, offset + t.bytes.count]]
            offset += t.bytes.count
            body.append(contentsOf: t.bytes)
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        out.append(body)
        try out.write(to: URL(fileURLWithPath: path))
    }

    /// The fixture's tensors as (name, f32 values, shape).
    static func fixtureTensors(_ name: String) throws -> [(name: String, shape: [Int], values: [Float])] {
        let f = try SafetensorsFile(path: Fixtures.path("models/\(name)/model.safetensors"))
        return try f.tensors.map { ($0.name, $0.shape, try f.floats($0)) }
    }

    static func bf16(_ x: Float) -> UInt16 {
        let b = x.bitPattern
        let rounded = b &+ 0x7FFF &+ ((b >> 16) & 1)   // round to nearest, ties to even (finite inputs)
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }

    static func bytes(_ v: [Float]) -> [UInt8] { v.withUnsafeBytes { Array($0) } }

    // MARK: 1. direct load

    @Test(arguments: models)
    func folderLoadMatchesTransformers(name: String) throws {
        let model = try Model(path: Fixtures.path("models/\(name)"), params: Self.f32Params())
        let ours = try Self.logits(model)
        let hf = try Fixtures.npy("reference/\(name).hf.logits.npy", as: Float.self).values
        let diff = TinyModelTests.maxAbs(ours, hf)
        print("\(name) HF folder: max |Δ| vs transformers = \(diff)")
        #expect(diff <= 1e-4)
        // The same numbers as llama.cpp's own conversion of the folder.
        let viaGGUF = try Self.logits(Model(path: Fixtures.path("models/\(name).f32.gguf"), params: Self.f32Params()))
        #expect(ours == viaGGUF)
    }

    // MARK: 2. shards and bf16

    @Test func shardedCopyLoadsIdentically() throws {
        let name = "tiny-qwen2moe"
        let dir = try Self.tempDir("shard")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.copyNonWeights(from: Fixtures.path("models/\(name)"), to: dir)
        let all = try Self.fixtureTensors(name)
        // Three shards; tensors dealt round-robin so every layer spans files.
        var shards: [[(name: String, dtype: String, shape: [Int], bytes: [UInt8])]] = [[], [], []]
        var weightMap: [String: String] = [:]
        for (i, t) in all.enumerated() {
            shards[i % 3].append((t.name, "F32", t.shape, Self.bytes(t.values)))
            weightMap[t.name] = "model-0000\(i % 3 + 1)-of-00003.safetensors"
        }
        for (i, s) in shards.enumerated() {
            try Self.writeSafetensors(dir + "/model-0000\(i + 1)-of-00003.safetensors", s)
        }
        let index: [String: Any] = ["metadata": ["total_size": all.reduce(0) { $0 + $1.values.count * 4 }], "weight_map": weightMap]
        try JSONSerialization.data(withJSONObject: index).write(to: URL(fileURLWithPath: dir + "/model.safetensors.index.json"))

        let sharded = try Self.logits(Model(path: dir, params: Self.f32Params()))
        let single = try Self.logits(Model(path: Fixtures.path("models/\(name)"), params: Self.f32Params()))
        #expect(sharded == single)
        // The same GGUF tensors, byte for byte (their order follows the shards, as in llama.cpp's converter).
        let a = try HFCheckpoint.loadGGUF(directory: dir)
        let b = try HFCheckpoint.loadGGUF(directory: Fixtures.path("models/\(name)"))
        #expect(Set(a.tensors.map(\.name)) == Set(b.tensors.map(\.name)))
        for t in a.tensors {
            let u = try #require(b.tensor(t.name))
            #expect(t.dims == u.dims && t.type == u.type && memcmp(a.data(t), b.data(u), t.byteCount) == 0, "\(t.name)")
        }
    }

    /// A bf16 copy loads exactly as an f32 checkpoint holding the bf16-rounded values (bf16 → f32 is
    /// exact), so the only error is the rounding of the weights themselves. bf16 keeps 8 significant
    /// bits: each weight moves by ≤ 2⁻⁹ of itself, the same order as Q8_0 (≤ 1/254 of its block's
    /// largest weight). So the bf16 copy may be as far from transformers as llama.cpp's Q8_0 file is
    /// from its f32 file (fixture references) — bounded at 1.5× that, in the mean and in the median
    /// per-token max; not the max, which near-tie routing flips dominate (fixtures README §2).
    @Test(arguments: models)
    func bf16CopyMatches(name: String) throws {
        let dir16 = try Self.tempDir("bf16"), dir32 = try Self.tempDir("bf16r")
        defer {
            try? FileManager.default.removeItem(atPath: dir16)
            try? FileManager.default.removeItem(atPath: dir32)
        }
        for d in [dir16, dir32] { try Self.copyNonWeights(from: Fixtures.path("models/\(name)"), to: d) }
        let all = try Self.fixtureTensors(name)
        var t16: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])] = []
        var t32: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])] = []
        for t in all {
            let h = t.values.map(Self.bf16)
            t16.append((t.name, "BF16", t.shape, h.withUnsafeBytes { Array($0) }))
            t32.append((t.name, "F32", t.shape, Self.bytes(h.map { Float(bitPattern: UInt32($0) << 16) })))
        }
        try Self.writeSafetensors(dir16 + "/model.safetensors", t16)
        try Self.writeSafetensors(dir32 + "/model.safetensors", t32)
        let m16 = try Model(path: dir16, params: Self.f32Params())
        #expect(m16.gguf.tensor("blk.0.attn_q.weight")?.type == 30)   // kept BF16 until the engine converts it
        let l16 = try Self.logits(m16)
        let l32 = try Self.logits(Model(path: dir32, params: Self.f32Params()))
        #expect(l16 == l32)

        let hf = try Fixtures.npy("reference/\(name).hf.logits.npy", as: Float.self).values
        let mean = TinyModelTests.meanAbs(l16, hf)
        var perToken: [Float] = (0..<64).map { t in TinyModelTests.maxAbs(Array(l16[t * 256..<(t + 1) * 256]), Array(hf[t * 256..<(t + 1) * 256])) }
        perToken.sort()
        print("\(name) bf16: mean |Δ| = \(mean), median per-token max = \(perToken[32]), max = \(perToken[63])")
        let q8 = try Fixtures.npy("reference/\(name).llamacpp.q8_0.logits.npy", as: Float.self).values
        let f32 = try Fixtures.npy("reference/\(name).llamacpp.f32.logits.npy", as: Float.self).values
        var q8PerToken: [Float] = (0..<64).map { t in TinyModelTests.maxAbs(Array(q8[t * 256..<(t + 1) * 256]), Array(f32[t * 256..<(t + 1) * 256])) }
        q8PerToken.sort()
        let q8Mean = TinyModelTests.meanAbs(q8, f32)
        print("\(name) q8_0 reference: mean |Δ| = \(q8Mean), median per-token max = \(q8PerToken[32])")
        #expect(mean <= 1.5 * q8Mean)
        #expect(perToken[32] <= 1.5 * q8PerToken[32])

        // The default load option quantises the bf16 weights (int8 blocks) at load.
        let q = try Model(path: dir16)
        #expect(q.layers[0].wq?.type == 8)
    }

    // MARK: 3. conversion = llama.cpp's converter

    /// Our GGUF of each folder against llama.cpp's `convert_hf_to_gguf.py --outtype f32` output:
    /// identical tensors (names, order, types, shapes, bytes) and metadata. Two keys differ by
    /// construction: the fixture was converted with a patched `tokenizer.ggml.pre = "default"` and a
    /// dummy merge "Ġ Ġ" (fixtures README §1); we write the tokenizer's real (empty) merges and pick
    /// "default" because, with no merges, splitting cannot change a byte tokenizer's output.
    @Test(arguments: models)
    func convertedMatchesLlamaCppConverter(name: String) throws {
        let ref = try GGUFFile(path: Fixtures.path("models/\(name).f32.gguf"))
        var o = HFConvertOptions()
        o.name = ref.string("general.name")
        let bytes = try HFCheckpoint.gguf(directory: Fixtures.path("models/\(name)"), options: o).serialize()
        let ours = try bytes.withUnsafeBytes { try GGUFFile(storage: MappedFile(copying: $0)) }
        #expect(ours.tensors.map(\.name) == ref.tensors.map(\.name))
        for (a, b) in zip(ours.tensors, ref.tensors) {
            #expect(a.dims == b.dims && a.type == b.type, "\(a.name)")
            let same = memcmp(ours.data(a), ref.data(b), a.byteCount) == 0 && a.byteCount == b.byteCount
            #expect(same, "\(a.name) bytes differ")
        }
        var keys = ours.metadataKeys.filter { $0 != "tokenizer.ggml.merges" }
        var refKeys = ref.metadataKeys.filter { $0 != "tokenizer.ggml.merges" }
        #expect(keys == refKeys)
        keys.sort(); refKeys.sort()
        for k in keys where ref.metadata[k] != nil {
            #expect(ours.metadata[k] == ref.metadata[k], "\(k)")
        }
        #expect(ours.stringArray("tokenizer.ggml.merges") == [])
    }

    // MARK: config.json forms

    /// Rewrites a fixture's config.json and loads the folder (weights linked, not copied).
    static func withConfig(_ name: String, _ edit: (inout [String: Any]) -> Void) throws -> Model {
        let dir = try tempDir("cfg")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = Fixtures.path("models/\(name)")
        for f in ["tokenizer.json", "tokenizer_config.json", "model.safetensors"] {
            try FileManager.default.createSymbolicLink(atPath: dir + "/" + f, withDestinationPath: src + "/" + f)
        }
        var cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: src + "/config.json"))) as! [String: Any]
        edit(&cfg)
        try JSONSerialization.data(withJSONObject: cfg).write(to: URL(fileURLWithPath: dir + "/config.json"))
        return try Model(path: dir, params: f32Params())
    }

    @Test func hubConfigFormsLoadTheSameModel() throws {
        // Older hub form: rope_theta at the top level, num_experts instead of num_local_experts, no head_dim.
        let m = try Self.withConfig("tiny-mixtral") { c in
            c["rope_parameters"] = nil
            c["rope_theta"] = 10000.0
            c["num_experts"] = c["num_local_experts"]
            c["num_local_experts"] = nil
            c["head_dim"] = nil
        }
        let hf = try Fixtures.npy("reference/tiny-mixtral.hf.logits.npy", as: Float.self).values
        #expect(TinyModelTests.maxAbs(try Self.logits(m), hf) <= 1e-4)
    }

    @Test func configThatLlamaCppCannotRepresentIsRejected() throws {
        #expect(throws: AdaKError.self) {
            _ = try Self.withConfig("tiny-qwen3moe") { $0["norm_topk_prob"] = false }
        }
        do {
            _ = try Self.withConfig("tiny-olmoe") { $0["norm_topk_prob"] = true }
            Issue.record("expected an error")
        } catch let e as AdaKError {
            guard case .unsupported(let m) = e else { Issue.record("wrong error \(e)"); return }
            #expect(m.contains("norm_topk_prob"))
        }
        #expect(throws: AdaKError.self) {
            _ = try Self.withConfig("tiny-mixtral") { $0["architectures"] = ["GPT2LMHeadModel"] }
        }
        #expect(throws: AdaKError.self) {
            _ = try Self.withConfig("tiny-mixtral") { $0["rope_parameters"] = ["rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0] }
        }
    }

    @Test func mlpOnlyLayersNeedDenseWeights() throws {
        // Layer 1 declared dense: the checkpoint has experts there, which is an error, not a silent drop.
        #expect(throws: AdaKError.self) {
            _ = try Self.withConfig("tiny-qwen3moe") { $0["mlp_only_layers"] = [1] }
        }
    }
}

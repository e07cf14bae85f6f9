import CAdaKKernels

/// Ada-K allocators: per MoE layer a linear map from the router's input h to N_e logits,
/// π(k | h) = softmax(A·h + b), action k = index + 1. Stored as a GGUF file:
///   metadata `adak.allocator.*` (format version, base architecture, shapes, MoE layer list,
///   a fingerprint of the base model's routers, free-form training settings);
///   tensors `alloc.<layer>.weight` (ne [n_embd, n_expert], f32) and `alloc.<layer>.bias`.
public final class Allocator: @unchecked Sendable {
    public static let formatVersion = 1
    public let nEmbd: Int
    public let nExpert: Int
    /// MoE layer indices, in order.
    public let layers: [Int]
    /// Row-major [nExpert × nEmbd] per entry of `layers`.
    public var weights: [[Float]]
    public var biases: [[Float]]
    public let architecture: String
    public let fingerprint: UInt64
    /// Extra `adak.train.*` metadata (training settings), kept when saving.
    public var trainingInfo: [String: GGUFValue] = [:]

    init(nEmbd: Int, nExpert: Int, layers: [Int], weights: [[Float]], biases: [[Float]],
         architecture: String, fingerprint: UInt64) {
        self.nEmbd = nEmbd
        self.nExpert = nExpert
        self.layers = layers
        self.weights = weights
        self.biases = biases
        self.architecture = architecture
        self.fingerprint = fingerprint
    }

    /// The allocator whose argmax is the model's native K for every input: zero weights and a
    /// concave bias −sharpness·(k − K)², so that a price μ moves the argmax smoothly and a
    /// policy sampled from it explores the neighbours of K.
    public static func identity(for model: Model, sharpness: Float = 1) -> Allocator {
        let c = model.config
        let moe = model.moeLayerIndices
        let kNative = c.nExpertUsed
        let bias = (1...max(c.nExpert, 1)).map { k in -sharpness * Float((k - kNative) * (k - kNative)) }
        return Allocator(nEmbd: c.nEmbd, nExpert: c.nExpert, layers: moe,
                         weights: moe.map { _ in [Float](repeating: 0, count: c.nExpert * c.nEmbd) },
                         biases: moe.map { _ in bias },
                         architecture: c.arch, fingerprint: model.routerFingerprint)
    }

    /// Loads an allocator file and checks it against `model`.
    public convenience init(path: String, model: Model) throws {
        try self.init(gguf: GGUFFile(path: path), model: model)
    }

    public init(gguf g: GGUFFile, model: Model) throws {
        let c = model.config
        guard let version = g.int("adak.allocator.version") else {
            throw AdaKError.format("not an allocator file (adak.allocator.version missing)")
        }
        guard version == Allocator.formatVersion else {
            throw AdaKError.unsupported("allocator format version \(version) (supported: \(Allocator.formatVersion))")
        }
        let arch = g.string("adak.allocator.base_architecture") ?? ""
        let nE = g.int("adak.allocator.n_expert") ?? -1
        let nEmbd = g.int("adak.allocator.n_embd") ?? -1
        let layers = g.intArray("adak.allocator.layers") ?? []
        let fpString = g.string("adak.allocator.router_fingerprint") ?? ""
        guard arch == c.arch, nE == c.nExpert, nEmbd == c.nEmbd, layers == model.moeLayerIndices else {
            throw AdaKError.invalidArgument("allocator is for a different model (\(arch), \(nE) experts, n_embd \(nEmbd), \(layers.count) MoE layers; model: \(c.arch), \(c.nExpert), \(c.nEmbd), \(model.moeLayerIndices.count))")
        }
        guard fpString == Allocator.hex(model.routerFingerprint) else {
            throw AdaKError.invalidArgument("allocator was trained on other router weights (fingerprint \(fpString), model \(Allocator.hex(model.routerFingerprint)))")
        }
        var ws: [[Float]] = [], bs: [[Float]] = []
        for l in layers {
            guard let w = g.tensor("alloc.\(l).weight"), w.dims == [nEmbd, nE], w.type == 0,
                  let b = g.tensor("alloc.\(l).bias"), b.dims == [nE], b.type == 0 else {
                throw AdaKError.format("allocator tensors of layer \(l) are missing or misshapen (f32 [\(nEmbd), \(nE)] and [\(nE)] expected)")
            }
            let wv = try g.dequantize(w), bv = try g.dequantize(b)
            guard wv.allSatisfy(\.isFinite), bv.allSatisfy(\.isFinite) else {
                throw AdaKError.format("allocator layer \(l) contains NaN or infinity")
            }
            ws.append(wv)
            bs.append(bv)
        }
        self.nEmbd = nEmbd
        self.nExpert = nE
        self.layers = layers
        weights = ws
        biases = bs
        architecture = arch
        fingerprint = model.routerFingerprint
        for k in g.metadataKeys where k.hasPrefix("adak.train.") { trainingInfo[k] = g.metadata[k] }
    }

    /// Writes the allocator as GGUF.
    public func write(to path: String) throws {
        var w = GGUFWriter()
        w.set("general.architecture", .string("adak-allocator"))
        w.set("adak.allocator.version", .uint32(UInt32(Allocator.formatVersion)))
        w.set("adak.allocator.base_architecture", .string(architecture))
        w.set("adak.allocator.n_expert", .uint32(UInt32(nExpert)))
        w.set("adak.allocator.n_embd", .uint32(UInt32(nEmbd)))
        w.set("adak.allocator.layers", .array(layers.map { .int32(Int32($0)) }))
        w.set("adak.allocator.router_fingerprint", .string(Allocator.hex(fingerprint)))
        for k in trainingInfo.keys.sorted() { w.set(k, trainingInfo[k]!) }
        for (i, l) in layers.enumerated() {
            try w.addTensor(name: "alloc.\(l).weight", dims: [nEmbd, nExpert], values: weights[i])
            try w.addTensor(name: "alloc.\(l).bias", dims: [nExpert], values: biases[i])
        }
        try w.write(to: path)
    }

    /// logits[k-1] for k = 1…N_e of MoE layer slot `slot` (index into `layers`) for input h.
    /// (akk_vec_dot takes the SIMD path where there is one; its f32 dot equals the scalar
    /// reference to the bit, so an allocator decides alike on every machine.)
    func logits(slot: Int, hidden h: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        weights[slot].withUnsafeBufferPointer { w in
            for e in 0..<nExpert {
                out[e] = biases[slot][e] + akk_vec_dot(Int32(AKK_F32.rawValue), Int64(nEmbd), w.baseAddress! + e * nEmbd, h)
            }
        }
    }

    static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}

extension Model {
    /// Indices of the layers that have a router.
    public var moeLayerIndices: [Int] { layers.indices.filter { layers[$0].isMoE } }

    /// FNV-1a (64-bit) over the bytes of every router matrix, in layer order.
    public var routerFingerprint: UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for l in layers {
            guard let r = l.router else { continue }
            let bytes = UnsafeRawBufferPointer(start: r.data, count: r.byteCount)
            for b in bytes {
                h ^= UInt64(b)
                h = h &* 0x0000_0100_0000_01b3
            }
        }
        return h
    }
}

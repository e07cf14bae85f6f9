/// Everything a carve decided, enough to rebuild the MoE from the dense file in seconds without
/// calibration: per carved layer the neuron order (shared neurons first, then expert 0's,
/// expert 1's, …) and the router. Stored as a small GGUF (`adak.plan.*` metadata, f32 tensors
/// `blk.N.order` [n_ff], `blk.N.ffn_gate_inp.weight` [d, E], `blk.N.ffn_gate_inp.bias` [E]).
public struct CarvePlan: Sendable, Equatable {
    public struct Layer: Sendable, Equatable {
        public var index: Int
        /// A permutation of 0..<nFF: [0, sharedCount) the shared expert, then `experts` runs of
        /// `expertWidth` neurons.
        public var order: [Int32]
        /// Router rows, E × d row-major, and bias (E): score_e = w_e · x + b_e ≈ ‖y_e‖.
        public var routerWeight: [Float]
        public var routerBias: [Float]
        /// Fraction of the oracle's top-K experts (by true ‖y_e‖) the router picks at K =
        /// `expertUsed`, on the calibration tokens (a diagnostic).
        public var routerRecall: Float
    }

    public static let architecture = "adak-carve-plan"
    public static let version = 1

    public var experts: Int
    public var expertUsed: Int
    public var sharedCount: Int
    public var expertWidth: Int
    public var nEmbd: Int
    public var nFF: Int
    public var nLayer: Int
    /// `Carver.fingerprint` of the dense file the plan was made from.
    public var denseFingerprint: String
    public var seed: UInt64
    public var sharedFraction: Float
    public var calibrationTokens: Int
    public var layers: [Layer]

    /// The plan as GGUF bytes (deterministic).
    public func serialize() throws -> [UInt8] {
        var w = GGUFWriter()
        let p = "adak.plan."
        w.set("general.architecture", .string(Self.architecture))
        w.set(p + "version", .uint32(UInt32(Self.version)))
        w.set(p + "expert_count", .uint32(UInt32(experts)))
        w.set(p + "expert_used_count", .uint32(UInt32(expertUsed)))
        w.set(p + "shared_count", .uint32(UInt32(sharedCount)))
        w.set(p + "expert_width", .uint32(UInt32(expertWidth)))
        w.set(p + "embedding_length", .uint32(UInt32(nEmbd)))
        w.set(p + "feed_forward_length", .uint32(UInt32(nFF)))
        w.set(p + "block_count", .uint32(UInt32(nLayer)))
        w.set(p + "dense_fingerprint", .string(denseFingerprint))
        w.set(p + "seed", .uint64(seed))
        w.set(p + "shared_fraction", .float32(sharedFraction))
        w.set(p + "calibration_tokens", .uint32(UInt32(calibrationTokens)))
        w.set(p + "layers", .array(layers.map { .int32(Int32($0.index)) }))
        w.set(p + "router_recall", .array(layers.map { .float32($0.routerRecall) }))
        for l in layers {
            try w.addTensor(name: "blk.\(l.index).order", dims: [nFF], values: l.order.map { Float($0) })
            try w.addTensor(name: "blk.\(l.index).ffn_gate_inp.weight", dims: [nEmbd, experts], values: l.routerWeight)
            try w.addTensor(name: "blk.\(l.index).ffn_gate_inp.bias", dims: [experts], values: l.routerBias)
        }
        return w.serialize()
    }

    public func write(to path: String) throws {
        let bytes = try serialize()
        try writeFileAtomically(bytes, to: path)
    }

    public init(experts: Int, expertUsed: Int, sharedCount: Int, expertWidth: Int, nEmbd: Int, nFF: Int, nLayer: Int,
                denseFingerprint: String, seed: UInt64, sharedFraction: Float, calibrationTokens: Int, layers: [Layer]) {
        self.experts = experts
        self.expertUsed = expertUsed
        self.sharedCount = sharedCount
        self.expertWidth = expertWidth
        self.nEmbd = nEmbd
        self.nFF = nFF
        self.nLayer = nLayer
        self.denseFingerprint = denseFingerprint
        self.seed = seed
        self.sharedFraction = sharedFraction
        self.calibrationTokens = calibrationTokens
        self.layers = layers
    }

    /// Reads and validates a plan file.
    public init(path: String) throws {
        try self.init(gguf: GGUFFile(path: path))
    }

    public init(gguf g: GGUFFile) throws {
        guard g.string("general.architecture") == Self.architecture else {
            throw AdaKError.format("not a carving plan (general.architecture is '\(g.string("general.architecture") ?? "")', expected '\(Self.architecture)')")
        }
        let p = "adak.plan."
        func req(_ k: String, _ range: ClosedRange<Int>) throws -> Int {
            guard let v = g.int(p + k), range.contains(v) else { throw AdaKError.format("carving plan: \(p)\(k) missing or out of range") }
            return v
        }
        guard g.int(p + "version") == Self.version else { throw AdaKError.unsupported("carving plan version \(g.int(p + "version") ?? -1) is not supported") }
        experts = try req("expert_count", 2...ModelConfig.maxExperts)
        expertUsed = try req("expert_used_count", 1...experts)
        nFF = try req("feed_forward_length", 1...(1 << 20))
        nEmbd = try req("embedding_length", 1...ModelConfig.maxEmbd)
        nLayer = try req("block_count", 1...ModelConfig.maxLayers)
        sharedCount = try req("shared_count", 0...nFF)
        expertWidth = try req("expert_width", 1...nFF)
        guard sharedCount + experts * expertWidth == nFF else { throw AdaKError.format("carving plan: shared + experts × width != n_ff") }
        guard let fp = g.string(p + "dense_fingerprint") else { throw AdaKError.format("carving plan: dense_fingerprint missing") }
        denseFingerprint = fp
        seed = UInt64(truncatingIfNeeded: g.metadata[p + "seed"]?.intValue ?? 0)
        sharedFraction = Float(g.double(p + "shared_fraction") ?? 0)
        calibrationTokens = g.int(p + "calibration_tokens") ?? 0
        let nL = nLayer, nF = nFF, d = nEmbd, nE = experts
        guard let idx = g.intArray(p + "layers"), !idx.isEmpty, idx.count <= nL,
              idx.allSatisfy({ $0 >= 0 && $0 < nL }), idx == idx.sorted(), Set(idx).count == idx.count else {
            throw AdaKError.format("carving plan: bad layer list")
        }
        let recall = g.floatArray(p + "router_recall") ?? []
        var layers: [Layer] = []
        for (i, l) in idx.enumerated() {
            func tensor(_ name: String, _ dims: [Int]) throws -> [Float] {
                guard let t = g.tensor("blk.\(l).\(name)"), t.type == 0, t.dims == dims else {
                    throw AdaKError.format("carving plan: tensor blk.\(l).\(name) missing or not f32 \(dims)")
                }
                let v = try g.dequantize(t)
                guard v.allSatisfy({ $0.isFinite }) else { throw AdaKError.format("carving plan: blk.\(l).\(name) has NaN or infinity") }
                return v
            }
            let orderF = try tensor("order", [nF])
            var seen = [Bool](repeating: false, count: nF)
            var order: [Int32] = []
            order.reserveCapacity(nF)
            for v in orderF {
                guard v >= 0, v < Float(nF), v == v.rounded(), !seen[Int(v)] else {
                    throw AdaKError.format("carving plan: blk.\(l).order is not a permutation of 0..<\(nF)")
                }
                seen[Int(v)] = true
                order.append(Int32(v))
            }
            layers.append(Layer(index: l, order: order,
                                routerWeight: try tensor("ffn_gate_inp.weight", [d, nE]),
                                routerBias: try tensor("ffn_gate_inp.bias", [nE]),
                                routerRecall: i < recall.count ? recall[i] : 0))
        }
        self.layers = layers
    }
}

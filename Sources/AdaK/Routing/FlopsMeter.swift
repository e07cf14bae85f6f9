/// FLOPs of one token's forward pass (multiply-add = 2 FLOPs), by part (docs/DESIGN.md §4).
/// Counted: attention projections (Q, K, V, O), attention scores and the weighted sum over the
/// context, router, allocator, each activated expert (gate, up, down), shared experts with their
/// gate, dense FFNs, LM head. Not counted: norms, RoPE, softmax, activation functions (O(d)).
public struct FlopsModel: Sendable {
    public let attentionProjections: Double   // per layer
    public let scoresPerContextToken: Double  // per layer, × context length
    public let router: Double                 // per MoE layer
    public let allocator: Double              // per MoE layer, when an allocator runs
    public let expert: Double                 // per activated expert
    public let shared: Double                 // per MoE layer with a shared expert
    public let dense: Double                  // per dense layer
    public let lmHead: Double                 // per token whose logits are computed
    public let nLayer: Int
    public let nMoE: Int
    public let nShared: Int
    public let kNative: Int
    /// Layers whose attention sees only the last `slidingWindow` positions (gpt-oss).
    public let slidingWindow: Int
    public let nSlidingLayers: Int

    public init(model: Model) {
        let c = model.config
        let d = Double(c.nEmbd), hd = Double(c.headDim)
        let q = Double(c.nHead) * hd, kv = Double(c.nHeadKV) * hd
        if let m = c.mla {
            // MLA as run (absorbed): q (direct or low-rank), kv_a, per-head k_b and v_b, output;
            // scores over [c, k_pe] and the weighted sum over c (Models/DeepSeek2.swift)
            let h = Double(c.nHead), r = Double(m.kvLoraRank), rope = Double(m.ropeDim)
            let qr = Double(m.qLoraRank), dk = Double(m.headDimK), dv = Double(m.headDimV)
            let qProj = m.qLoraRank > 0 ? 2 * d * qr + 2 * qr * h * dk : 2 * d * h * dk
            attentionProjections = qProj + 2 * d * (r + rope) + 2 * h * Double(m.nopeDim) * r + 2 * h * r * dv + 2 * h * dv * d
            scoresPerContextToken = 2 * h * (r + rope) + 2 * h * r
        } else {
            attentionProjections = 2 * d * (q + 2 * kv) + 2 * q * d
            scoresPerContextToken = 4 * hd * Double(c.nHead)
        }
        slidingWindow = c.slidingWindow
        nSlidingLayers = c.swaLayers.filter { $0 }.count
        router = 2 * d * Double(c.nExpert)
        allocator = 2 * d * Double(c.nExpert)
        expert = 6 * d * Double(c.nFFExpert)
        let fs = Double(model.layers.first { $0.sharedUp != nil }?.sharedUp?.rows ?? 0)
        let gated = model.layers.contains { $0.sharedGateInp != nil }
        shared = fs > 0 ? 6 * d * fs + (gated ? 2 * d : 0) : 0
        dense = 6 * d * Double(c.nFF)
        lmHead = 2 * d * Double(c.nVocab)
        nLayer = c.nLayer
        nMoE = model.moeLayerIndices.count
        nShared = model.layers.filter { $0.sharedUp != nil }.count
        kNative = c.nExpertUsed
    }

    /// FLOPs of everything but the routed experts, for a token at `position` (0-based).
    public func fixedPart(position: Int, allocatorUsed: Bool, logits: Bool) -> Double {
        let seen = Double(position + 1), seenSWA = slidingWindow > 0 ? min(seen, Double(slidingWindow)) : seen
        var f = Double(nLayer) * attentionProjections
        f += scoresPerContextToken * (Double(nLayer - nSlidingLayers) * seen + Double(nSlidingLayers) * seenSWA)
        f += Double(nMoE) * (router + (allocatorUsed ? allocator : 0)) + Double(nShared) * shared
        f += Double(nLayer - nMoE) * dense
        if logits { f += lmHead }
        return f
    }
}

/// Routing statistics of a session since its last reset: what each MoE layer spent.
public struct RoutingStats: Sendable {
    public private(set) var tokens = 0
    /// Σ k per MoE layer (in `Model.moeLayerIndices` order).
    public private(set) var kSum: [Int]
    /// Token-layers that used k experts, at index k − 1.
    public private(set) var kHistogram: [Int]
    public private(set) var expertFlops: Double = 0
    public private(set) var expertFlopsTopK: Double = 0
    public private(set) var totalFlops: Double = 0
    public private(set) var totalFlopsTopK: Double = 0

    public init(nMoE: Int, nExpert: Int) {
        kSum = [Int](repeating: 0, count: nMoE)
        kHistogram = [Int](repeating: 0, count: max(nExpert, 1))
    }

    public var meanKPerLayer: [Double] { kSum.map { tokens > 0 ? Double($0) / Double(tokens) : 0 } }
    public var meanK: Double {
        tokens > 0 && !kSum.isEmpty ? Double(kSum.reduce(0, +)) / Double(tokens * kSum.count) : 0
    }
    /// Expert FLOPs relative to static Top-K with the native K (1 when nothing ran).
    public var expertFraction: Double { expertFlopsTopK > 0 ? expertFlops / expertFlopsTopK : 1 }
    public var totalFraction: Double { totalFlopsTopK > 0 ? totalFlops / totalFlopsTopK : 1 }

    /// Adds one token: `ks[i]` experts at MoE layer i.
    mutating func add(position: Int, ks: ArraySlice<Int>, flops m: FlopsModel, allocatorUsed: Bool, logits: Bool) {
        tokens += 1
        var kt = 0
        for (i, k) in ks.enumerated() {
            kSum[i] += k
            kHistogram[min(max(k, 1), kHistogram.count) - 1] += 1
            kt += k
        }
        let e = Double(kt) * m.expert, eTop = Double(m.nMoE * m.kNative) * m.expert
        expertFlops += e
        expertFlopsTopK += eTop
        totalFlops += e + m.fixedPart(position: position, allocatorUsed: allocatorUsed, logits: logits)
        totalFlopsTopK += eTop + m.fixedPart(position: position, allocatorUsed: false, logits: logits)
    }
}

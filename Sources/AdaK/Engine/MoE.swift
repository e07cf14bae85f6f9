import CAdaKKernels

/// The MoE feed-forward of one layer for a batch: router → k per token (routing policy) →
/// `[tokens × kMax]` expert table → each expert runs once over the rows routed to it → results
/// weighted and summed per token in slot order (as llama.cpp adds them), plus the shared expert.
final class MoEScratch {
    let config: ModelConfig
    let probs: FloatBuffer        // tokens × n_expert
    let sorted: FloatBuffer       // the same, each row in descending order
    let shared: FloatBuffer
    /// Per token: experts the router may choose (group-limited routing) and the factor that turns
    /// the policy distribution back into raw sigmoid scores (ExpertGating).
    private var eligible: [Int] = []
    private var rawScale: [Float] = []
    private let groupScratch: UnsafeMutablePointer<Float>
    private let order: UnsafeMutablePointer<Int32>   // tokens × n_expert: each row's experts, ranked
    private let experts: ExpertRun
    /// The routing of the last batch (for statistics and tests).
    private(set) var table = ExpertTable(tokens: 0, kMax: 1)

    init(config c: ModelConfig, batchSize b: Int) throws {
        config = c
        let f = max(c.nFFExpert, 1)
        probs = try FloatBuffer(b * c.nExpert)
        sorted = try FloatBuffer(b * c.nExpert)
        shared = try FloatBuffer(b * c.nEmbd)
        order = .allocate(capacity: max(b * c.nExpert, 1))
        groupScratch = .allocate(capacity: max(c.gating.nGroup, 1))
        experts = try ExpertRun(nExpert: c.nExpert, nEmbd: c.nEmbd, nFF: f, rows: b * max(c.nExpertUsed, 1))
    }

    deinit {
        order.deallocate()
        groupScratch.deallocate()
    }

    /// idx[0..<n] = 0..<n ordered by descending key, ties by ascending index (a stable insertion
    /// sort: n is the expert count, and a decoded token ranks one row per layer).
    static func rank(_ key: UnsafePointer<Float>, _ n: Int, into idx: UnsafeMutablePointer<Int32>) {
        for i in 0..<n {
            let v = key[i]
            var j = i
            while j > 0 && key[Int(idx[j - 1])] < v {
                idx[j] = idx[j - 1]
                j -= 1
            }
            idx[j] = Int32(i)
        }
    }

    func run(layer L: LayerWeights, index il: Int, state s: ForwardState, rows n: Int,
             segments: [ForwardState.Segment], out: UnsafeMutablePointer<Float>, clock: PhaseClock?) {
        let c = config
        let d = c.nEmbd, nE = c.nExpert
        guard let router = L.router, let gateExps = L.gateExps, let upExps = L.upExps, let downExps = L.downExps else { return }

        // router probabilities: softmax over all experts, f32; each row's experts by descending
        // probability (stable: ties keep the lower index). Carved models (`predictedNorm`) rank
        // by the raw scores and derive the probabilities from them (CarvedArchitecture).
        s.linear(router, s.inA, out: probs.p, outStride: nE)
        clock?.end(.router)
        // a router bias (gpt-oss, carved models) shifts the logits before any scoring
        if let b = L.routerBias {
            for t in 0..<n { for e in 0..<nE { probs.p[t * nE + e] += b[e] } }
        }
        let byScore = c.traits.router == .predictedNorm
        // sigmoid / selection-bias / group-limited routers rank by a separate key (ExpertGating)
        let gated = !byScore && c.gating.needsScoring(bias: L.expProbsBias != nil)
        if eligible.count < n {
            eligible = [Int](repeating: nE, count: n)
            rawScale = [Float](repeating: 1, count: n)
        }
        if byScore {
            sorted.p.update(from: probs.p, count: n * nE)   // raw scores, ranked below
        } else if gated {
            for t in 0..<n {
                (eligible[t], rawScale[t]) = c.gating.score(probs.p + t * nE, key: sorted.p + t * nE, n: nE,
                                                            bias: L.expProbsBias, groupScratch: groupScratch)
            }
        } else {
            for t in 0..<n { akk_softmax(probs.p + t * nE, Int64(nE)) }
        }
        for t in 0..<n {
            let idx = order + t * nE
            Self.rank((byScore || gated ? sorted.p : probs.p) + t * nE, nE, into: idx)
            if byScore { CarvedArchitecture.probabilities(probs.p + t * nE, nE) }
            let p = probs.p + t * nE
            for j in 0..<nE { sorted.p[t * nE + j] = p[Int(idx[j])] }
        }

        // k per token from each segment's routing policy, then one expert table for all rows
        let x = s.inA.src!
        var ks: [Int] = []
        for g in segments {
            let o = g.start
            let part = g.router.decide(layer: il, pos0: g.pos0, n: g.count, probs: probs.p + o * nE,
                                       sorted: sorted.p + o * nE, hidden: x + o * d, nEmbd: d)
            ks += part
        }
        // group-limited routers never pick outside the chosen groups
        if gated { for t in 0..<n where ks[t] > eligible[t] { ks[t] = eligible[t] } }
        let kMax = ks.max() ?? 1
        table = ExpertTable(tokens: n, kMax: kMax)
        let scale = c.gating.weightsScale
        for t in 0..<n {
            var sum: Float = 0
            for j in 0..<ks[t] { sum += sorted.p[t * nE + j] }
            // llama.cpp clamps the sum of the kept weights at the smallest normal f16
            if gated { sum = max(sum, 6.103515625e-5 / rawScale[t]) }
            for j in 0..<ks[t] {
                table.ids[t * kMax + j] = order[t * nE + j]
                let w = sorted.p[t * nE + j] * (gated ? rawScale[t] : 1)
                let v = c.traits.unitExpertWeights ? 1 : c.traits.normalizeTopK ? w / (sum * (gated ? rawScale[t] : 1)) : w
                table.weights[t * kMax + j] = scale == 1 ? v : v * scale
            }
        }
        clock?.end(.routing)
        // group rows by expert and run all active experts in one parallel region
        if L.gateExpsBias != nil {
            GptOss.experts(table: table, ks: ks, tokens: n, layer: L, state: s, out: out)
        } else {
            experts.run(table: table, ks: ks, tokens: n, input: s.inA, gate: gateExps, up: upExps,
                        down: downExps, threads: s.threads, out: out)
        }

        // shared expert (qwen2moe): gated by sigmoid(x · w_gate_inp_shexp)
        if let sg = L.sharedGate, let su = L.sharedUp, let sd = L.sharedDown {
            s.swiGLU(gate: sg, up: su, down: sd, input: s.inA, rows: n, out: shared.p)
            for t in 0..<n {
                var gate: Float = 1
                if let gi = L.sharedGateInp {
                    var dot: Float = 0
                    for i in 0..<d { dot += x[t * d + i] * gi[i] }
                    gate = akk_sigmoid(dot)
                }
                let o = out + t * d, sh = shared.p + t * d
                for i in 0..<d { o[i] += sh[i] * gate }
            }
        }
        clock?.end(.experts)
    }
}

/// The routing decision of one MoE layer for a batch: a `[tokens × kMax]` table of expert ids
/// (−1 = unused slot) with their weights, in descending router probability.
public struct ExpertTable {
    public var kMax: Int
    public var ids: [Int32]
    public var weights: [Float]

    public init(tokens: Int, kMax: Int) {
        self.kMax = kMax
        ids = [Int32](repeating: -1, count: tokens * kMax)
        weights = [Float](repeating: 0, count: tokens * kMax)
    }
}

import CAdaKKernels

/// The MoE feed-forward of one layer for a batch: router → k per token (routing policy) →
/// `[tokens × kMax]` expert table → each expert runs once over the rows routed to it → results
/// weighted and summed per token in slot order (as llama.cpp adds them), plus the shared expert.
final class MoEScratch {
    let config: ModelConfig
    let probs: FloatBuffer        // tokens × n_expert
    let sorted: FloatBuffer       // the same, each row in descending order
    let gathered: FloatBuffer     // rows routed to one expert (f32 hidden states)
    let gatheredIn: ActivationRows
    let gateOut, upOut: FloatBuffer
    let hiddenIn: ActivationRows
    let downOut: FloatBuffer
    let shared: FloatBuffer
    private var slots: FloatBuffer
    /// The routing of the last batch (for statistics and tests).
    private(set) var table = ExpertTable(tokens: 0, kMax: 1)

    init(config c: ModelConfig, batchSize b: Int) throws {
        config = c
        let f = max(c.nFFExpert, 1)
        probs = try FloatBuffer(b * c.nExpert)
        sorted = try FloatBuffer(b * c.nExpert)
        gathered = try FloatBuffer(b * c.nEmbd)
        gatheredIn = try ActivationRows(capacity: b * c.nEmbd)
        gateOut = try FloatBuffer(b * f)
        upOut = try FloatBuffer(b * f)
        hiddenIn = try ActivationRows(capacity: b * f)
        downOut = try FloatBuffer(b * c.nEmbd)
        shared = try FloatBuffer(b * c.nEmbd)
        slots = try FloatBuffer(b * c.nEmbd * max(c.nExpertUsed, 1))
    }

    func run(layer L: LayerWeights, index il: Int, state s: ForwardState, rows n: Int, pos0: Int,
             router routing: RouterState, out: UnsafeMutablePointer<Float>) {
        let c = config
        let d = c.nEmbd, nE = c.nExpert
        guard let router = L.router, let gateExps = L.gateExps, let upExps = L.upExps, let downExps = L.downExps else { return }

        // router probabilities: softmax over all experts, f32; each row's experts by descending
        // probability (stable: ties keep the lower index). Carved models (`predictedNorm`) rank
        // by the raw scores and derive the probabilities from them (CarvedArchitecture).
        s.linear(router, s.inA, out: probs.p, outStride: nE)
        let byScore = c.traits.router == .predictedNorm
        if byScore {
            if let b = L.routerBias {
                for t in 0..<n { for e in 0..<nE { probs.p[t * nE + e] += b[e] } }
            }
            sorted.p.update(from: probs.p, count: n * nE)   // raw scores, ranked below
        } else {
            for t in 0..<n { akk_softmax(probs.p + t * nE, Int64(nE)) }
        }
        var order = [Int](repeating: 0, count: n * nE)
        for t in 0..<n {
            let key = (byScore ? sorted.p : probs.p) + t * nE
            let idx = (0..<nE).sorted { key[$0] > key[$1] || (key[$0] == key[$1] && $0 < $1) }
            if byScore { CarvedArchitecture.probabilities(probs.p + t * nE, nE) }
            let p = probs.p + t * nE
            for j in 0..<nE {
                order[t * nE + j] = idx[j]
                sorted.p[t * nE + j] = p[idx[j]]
            }
        }

        // k per token from the routing policy, then the expert table
        let x = s.inA.src!
        let ks = routing.decide(layer: il, pos0: pos0, n: n, probs: probs.p, sorted: sorted.p, hidden: x, nEmbd: d)
        let kMax = ks.max() ?? 1
        table = ExpertTable(tokens: n, kMax: kMax)
        for t in 0..<n {
            var sum: Float = 0
            for j in 0..<ks[t] { sum += sorted.p[t * nE + j] }
            for j in 0..<ks[t] {
                table.ids[t * kMax + j] = Int32(order[t * nE + j])
                let w = sorted.p[t * nE + j]
                table.weights[t * kMax + j] = c.traits.unitExpertWeights ? 1 : c.traits.normalizeTopK ? w / sum : w
            }
        }
        if slots.count < n * kMax * d, let bigger = try? FloatBuffer(n * kMax * d) { slots = bigger }

        // group rows by expert and run each expert once
        var rowsOf = [[Int]](repeating: [], count: nE)   // slot indices t*kMax+j
        for i in 0..<(n * kMax) where table.ids[i] >= 0 { rowsOf[Int(table.ids[i])].append(i) }
        for e in 0..<nE where !rowsOf[e].isEmpty {
            let rows = rowsOf[e]
            for (r, slot) in rows.enumerated() {
                (gathered.p + r * d).update(from: x + (slot / kMax) * d, count: d)
            }
            gatheredIn.set(gathered.p, rows: rows.count, cols: d)
            let gate = gateExps.expert(e), up = upExps.expert(e), down = downExps.expert(e)
            let f = gate.rows
            s.linear(gate, gatheredIn, out: gateOut.p, outStride: f)
            s.linear(up, gatheredIn, out: upOut.p, outStride: f)
            for r in 0..<rows.count {   // per row, as llama.cpp applies it
                akk_swiglu(gateOut.p + r * f, upOut.p + r * f, gateOut.p + r * f, Int64(f))
            }
            hiddenIn.set(gateOut.p, rows: rows.count, cols: f)
            s.linear(down, hiddenIn, out: downOut.p, outStride: d)
            for (r, slot) in rows.enumerated() {
                let w = table.weights[slot]
                let src = downOut.p + r * d, dst = slots.p + slot * d
                for i in 0..<d { dst[i] = src[i] * w }
            }
        }

        // sum the slots of each token in slot order
        for t in 0..<n {
            let o = out + t * d
            let k = ks[t]
            let first = slots.p + (t * kMax) * d
            o.update(from: first, count: d)
            for j in 1..<max(k, 1) {
                let sj = slots.p + (t * kMax + j) * d
                for i in 0..<d { o[i] += sj[i] }
            }
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

#if canImport(Glibc)
import Glibc
#endif

/// The per-session routing state: settings, allocator, the budget controller's knob per MoE
/// layer, and statistics. The MoE layer asks it for k per token.
///
/// Budget control: each MoE layer l has a knob u_l that makes its policy spend less as it grows,
/// moved by dual ascent while decoding and solved by bisection over a batch, so every layer's
/// mean k/K tracks the target f (the knobs per policy and why: docs/DESIGN.md §4).
final class RouterState {
    var config: RoutingConfig
    var allocator: Allocator?
    let nExpert: Int
    let kNative: Int
    let moeSlot: [Int: Int]      // layer index → slot in moe order
    var knob: [Float]
    var dither: [Float]
    var stats: RoutingStats
    let flops: FlopsModel

    /// k chosen per MoE slot for each token of the current batch: [slot][token].
    var batchK: [[Int]]
    /// Records every decision; a sampling trace makes `adak` sample k (PPO rollouts, Training/).
    var trace: RoutingTrace?

    init(model: Model, config: RoutingConfig) {
        self.config = config
        nExpert = model.config.nExpert
        kNative = model.config.nExpertUsed
        let moe = model.moeLayerIndices
        moeSlot = Dictionary(uniqueKeysWithValues: moe.enumerated().map { ($1, $0) })
        knob = [Float](repeating: 0, count: moe.count)
        dither = [Float](repeating: 0, count: moe.count)
        stats = RoutingStats(nMoE: moe.count, nExpert: nExpert)
        flops = FlopsModel(model: model)
        batchK = [[Int]](repeating: [], count: moe.count)
    }

    func resetStats() { stats = RoutingStats(nMoE: moeSlot.count, nExpert: nExpert) }

    /// Controller state goes back to zero (new settings, session reset).
    func resetControl() {
        for i in knob.indices { knob[i] = 0; dither[i] = 0 }
    }

    var bounds: (lo: Int, hi: Int) {
        let hi = config.upperBound(nExpert: nExpert, kNative: kNative)
        return (min(config.kMin, hi), hi)
    }

    /// Gain of the decode controller per policy (knob units per unit of cost error).
    private var gain: Float {
        switch config.policy {
        case .adak: 1.0
        case .topP, .skip: 0.1
        case .entropy: 0.3
        case .topK: 0
        }
    }

    /// Decides k for `n` tokens at one MoE layer. probs: n × E softmax rows; sorted: the same
    /// rows in descending order; hidden: n × d router inputs.
    func decide(layer: Int, pos0: Int, n: Int, probs: UnsafePointer<Float>, sorted: UnsafePointer<Float>,
                hidden: UnsafePointer<Float>, nEmbd: Int) -> [Int] {
        guard let slot = moeSlot[layer] else { return [Int](repeating: kNative, count: n) }
        let (lo, hi) = bounds
        let E = nExpert
        var allocLogits: [Float] = []
        if config.policy == .adak, let a = allocator, let aslot = a.layers.firstIndex(of: layer) {
            allocLogits = [Float](repeating: 0, count: n * E)
            allocLogits.withUnsafeMutableBufferPointer { out in
                for t in 0..<n { a.logits(slot: aslot, hidden: hidden + t * nEmbd, out: out.baseAddress! + t * E) }
            }
        }
        func rule(_ t: Int, _ u: Float) -> Int {
            let k: Int
            switch config.policy {
            case .topK: k = config.k ?? kNative
            case .adak:
                if allocLogits.isEmpty { k = kNative } else {
                    k = allocLogits.withUnsafeBufferPointer { KRule.adak(logits: $0.baseAddress! + t * E, lo: lo, hi: hi, mu: u) }
                }
            case .topP: k = KRule.topP(sorted: sorted + t * E, count: E, threshold: min(max(config.p - u, 1e-6), 1))
            case .skip: k = KRule.skip(sorted: sorted + t * E, count: E, beta: min(max(config.beta + u, 0), 1))
            case .entropy: k = KRule.entropy(probs: probs + t * E, count: E, tau: config.tau * exp(-u))
            }
            return min(max(k, lo), hi)
        }

        if let tr = trace, tr.sampling, config.forcedK == nil, !allocLogits.isEmpty {
            // PPO rollout: k ~ π(·|h) within [lo, hi], recorded with log π_old (Training/RoutingTrace.swift)
            // (slots outside `sampledSlots` take the argmax: single-layer perturbation)
            let ks = allocLogits.withUnsafeBufferPointer { l in
                tr.samples(slot: slot) ? tr.sample(slot: slot, logits: l.baseAddress!, nExpert: E, n: n, lo: lo, hi: hi)
                                       : tr.argmax(slot: slot, logits: l.baseAddress!, nExpert: E, n: n, lo: lo, hi: hi)
            }
            tr.record(slot: slot, ks: ks, hidden: hidden, n: n)
            batchK[slot] = ks
            return ks
        }
        var ks = [Int](repeating: 0, count: n)
        if let f = config.budget, config.forcedK == nil {
            if config.policy == .topK {
                // dithering: the running mean of k is exactly f·K
                let want = f * Float(kNative)
                for t in 0..<n {
                    let k = min(max(Int((want + dither[slot]).rounded(.down)), lo), hi)
                    dither[slot] += want - Float(k)
                    ks[t] = k
                }
            } else if n > 1 {
                let target = Double(f) * Double(kNative) * Double(n)
                let u = solveKnob(target: target) { u in (0..<n).reduce(0) { $0 + rule($1, u) } }
                knob[slot] = u
                for t in 0..<n { ks[t] = rule(t, u) }
            } else {
                ks[0] = rule(0, knob[slot])
                let err = Float(ks[0]) / Float(kNative) - f
                knob[slot] = min(max(knob[slot] + gain * err, -64), 64)
            }
        } else {
            for t in 0..<n {
                ks[t] = config.forcedK?(layer, pos0 + t).map { min(max($0, 1), E) } ?? rule(t, config.policy == .adak ? config.price : 0)
            }
        }
        trace?.record(slot: slot, ks: ks, hidden: hidden, n: n)
        batchK[slot] = ks
        return ks
    }

    /// Bisection on a knob whose spend is non-increasing: the u whose total is closest to
    /// `target` (ties: the smaller spend that does not exceed it).
    private func solveKnob(target: Double, spend: (Float) -> Int) -> Float {
        var lo: Float = -64, hi: Float = 64
        if Double(spend(lo)) <= target { return lo }
        if Double(spend(hi)) >= target { return hi }
        for _ in 0..<50 {
            let mid = (lo + hi) / 2
            if Double(spend(mid)) > target { lo = mid } else { hi = mid }
        }
        let sLo = Double(spend(lo)), sHi = Double(spend(hi))
        return abs(sLo - target) < abs(sHi - target) ? lo : hi
    }

    /// Adds the tokens of the last batch to the statistics.
    func record(pos0: Int, n: Int, logitsFor: (Int) -> Bool) {
        let used = config.policy == .adak && allocator != nil
        for t in 0..<n {
            let ks = batchK.map { $0.count > t ? $0[t] : 0 }
            stats.add(position: pos0 + t, ks: ks[...], flops: flops, allocatorUsed: used, logits: logitsFor(t))
        }
    }
}

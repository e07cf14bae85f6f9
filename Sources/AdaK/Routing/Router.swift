#if canImport(Glibc)
import Glibc
#endif

/// The per-session routing state: settings, allocator, the budget controller's knobs, and
/// statistics. The MoE layer asks it for k per token.
///
/// Budget control (docs/DESIGN.md §4): a knob u makes a policy spend less as it grows (Ada-K's
/// price μ in argmax(logit_k − μ·k), the threshold policies' threshold).
/// - `global` (default): one u for every layer, so the policy's per-layer and per-token shares
///   survive. Decoding moves it by dual ascent on each token's expert cost over all layers; a
///   batch (or the first token after the settings changed) is first measured at the current u
///   (`beginProbe`/`endProbe`, a forward pass that only records), u is then solved by bisection
///   over every layer's rows of the batch, and the batch runs with it.
/// - `perLayer`: one u per layer, moved and solved the same way within each layer, so every
///   layer's mean k/K tracks the target.
/// - `schedule`: as `perLayer`, but layer l's mean k tracks its own target (`layerTargets[l]`).
final class RouterState {
    var config: RoutingConfig
    var allocator: Allocator?
    let nExpert: Int
    let kNative: Int
    let moeSlot: [Int: Int]      // layer index → slot in moe order
    /// The knob per MoE slot (`global`: every entry holds the shared price).
    var knob: [Float]
    var dither: [Float]
    /// False until the controller has set its knob for the current settings: the first token
    /// is then solved like a batch instead of starting from u = 0 (which overspent the first
    /// tokens after a one-token prompt).
    var calibrated = false
    var stats: RoutingStats
    let flops: FlopsModel

    /// k chosen per MoE slot for each token of the current batch: [slot][token].
    var batchK: [[Int]]
    /// Records every decision; a sampling trace makes `adak` sample k (PPO rollouts, Training/).
    var trace: RoutingTrace?

    /// What a measuring pass saw at one MoE slot: the rows its policy reads, n tokens.
    private struct ProbeRows {
        var n = 0
        var logits: [Float] = [], sorted: [Float] = [], probs: [Float] = []
    }
    /// Non-nil during a measuring pass (global budget), one entry per MoE slot.
    private var probe: [ProbeRows]? = nil

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
        calibrated = false
    }

    var bounds: (lo: Int, hi: Int) {
        let hi = config.upperBound(nExpert: nExpert, kNative: kNative)
        return (min(config.kMin, hi), hi)
    }

    /// The bounds of MoE slot `slot`: with `layerTargets` and `layerBand` d, narrowed to
    /// [⌊t⌋ − d, ⌈t⌉ + d] around the slot's target t (an experiment: the schedule anchors each
    /// layer's k, the policy moves it by at most d).
    func bounds(slot: Int) -> (lo: Int, hi: Int) {
        let (lo, hi) = bounds
        guard let d = config.layerBand, let t = config.layerTargets, slot < t.count else { return (lo, hi) }
        let l = min(max(lo, Int(t[slot].rounded(.down)) - d), hi)
        return (l, max(l, min(hi, Int(t[slot].rounded(.up)) + d)))
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

    /// Whether a budget is set: a fraction, or (`schedule`) per-layer targets.
    private var hasBudget: Bool {
        config.budget != nil || (config.budgetMode == .schedule && config.layerTargets != nil)
    }

    /// The mean k MoE slot `slot` should spend under the budget: its own target (`schedule`),
    /// else budget × K (in Double as before the schedule mode, so per_layer decides alike).
    private func targetK(slot: Int) -> Double {
        if config.budgetMode == .schedule, let t = config.layerTargets { return Double(t[slot]) }
        return Double(config.budget ?? 1) * Double(kNative)
    }

    /// The same as a fraction of K (exactly the budget outside `schedule`: budget × K / K in Double).
    private func targetFraction(slot: Int) -> Float { Float(targetK(slot: slot) / Double(kNative)) }

    /// A budget is being met by moving a knob (not Top-K's dithering, forced k or PPO sampling).
    private var controlsKnob: Bool {
        hasBudget && config.policy != .topK && config.forcedK == nil && !(trace?.sampling ?? false)
    }

    /// Whether the next `n` tokens need a measuring pass first: a global budget's batch, or its
    /// first token after the settings changed.
    func needsProbe(n: Int) -> Bool {
        controlsKnob && config.budgetMode == .global && (n > 1 || !calibrated)
            && !(config.policy == .adak && allocator == nil)
    }

    /// Starts a measuring pass: `decide` records the rows and answers at the current price.
    func beginProbe() { probe = [ProbeRows](repeating: ProbeRows(), count: knob.count) }

    /// Ends a measuring pass: the shared price whose spend over all layers' rows is closest to
    /// budget × K per token-layer.
    func endProbe() {
        guard let rows = probe else { return }
        probe = nil
        guard let f = config.budget else { return }
        let count = rows.reduce(0) { $0 + $1.n }
        let slotBounds = rows.indices.map { bounds(slot: $0) }
        let u = solveKnob(target: Double(f) * Double(kNative) * Double(count)) { u in
            zip(rows, slotBounds).reduce(0) { total, rb in
                let (r, (lo, hi)) = rb
                return r.logits.withUnsafeBufferPointer { l in
                    r.sorted.withUnsafeBufferPointer { s in
                        r.probs.withUnsafeBufferPointer { p in
                            (0..<r.n).reduce(total) {
                                $0 + rule($1, u, logits: l.isEmpty ? nil : l.baseAddress, sorted: s.baseAddress, probs: p.baseAddress, lo: lo, hi: hi)
                            }
                        }
                    }
                }
            }
        }
        for i in knob.indices { knob[i] = u }
        calibrated = true
    }

    /// k of token t under knob u, from its allocator logits (nil: none for this layer), sorted
    /// router probabilities and probabilities (rows of nExpert), within [lo, hi].
    private func rule(_ t: Int, _ u: Float, logits: UnsafePointer<Float>?, sorted: UnsafePointer<Float>?,
                      probs: UnsafePointer<Float>?, lo: Int, hi: Int) -> Int {
        let E = nExpert
        let k: Int
        switch config.policy {
        case .topK: k = config.k ?? kNative
        case .adak: k = logits.map { KRule.adak(logits: $0 + t * E, lo: lo, hi: hi, mu: u) } ?? kNative
        case .topP: k = KRule.topP(sorted: sorted! + t * E, count: E, threshold: min(max(config.p - u, 1e-6), 1))
        // β may pass 1 under a budget: on a biased sigmoid router a later expert can outweigh
        // the first (ExpertGating), and only β > 1 then brings k down to 1
        case .skip: k = KRule.skip(sorted: sorted! + t * E, count: E, beta: max(config.beta + u, 0))
        case .entropy: k = KRule.entropy(probs: probs! + t * E, count: E, tau: config.tau * exp(-u))
        }
        return min(max(k, lo), hi)
    }

    /// Decides k for `n` tokens at one MoE layer. probs: n × E softmax rows; sorted: the same
    /// rows in descending order; hidden: n × d router inputs.
    func decide(layer: Int, pos0: Int, n: Int, probs: UnsafePointer<Float>, sorted: UnsafePointer<Float>,
                hidden: UnsafePointer<Float>, nEmbd: Int) -> [Int] {
        guard let slot = moeSlot[layer] else { return [Int](repeating: kNative, count: n) }
        let (lo, hi) = bounds(slot: slot)
        let E = nExpert
        var allocLogits: [Float] = []
        if config.policy == .adak, let a = allocator, let aslot = a.layers.firstIndex(of: layer) {
            allocLogits = [Float](repeating: 0, count: n * E)
            allocLogits.withUnsafeMutableBufferPointer { out in
                for t in 0..<n { a.logits(slot: aslot, hidden: hidden + t * nEmbd, out: out.baseAddress! + t * E) }
            }
        }
        func rule(_ t: Int, _ u: Float) -> Int {
            allocLogits.withUnsafeBufferPointer { l in
                self.rule(t, u, logits: l.isEmpty ? nil : l.baseAddress, sorted: sorted, probs: probs, lo: lo, hi: hi)
            }
        }

        if probe != nil {
            // measuring pass: keep what the policy reads, answer at the current price
            var r = ProbeRows(n: n, logits: allocLogits)
            if config.policy == .topP || config.policy == .skip { r.sorted = Array(UnsafeBufferPointer(start: sorted, count: n * E)) }
            if config.policy == .entropy { r.probs = Array(UnsafeBufferPointer(start: probs, count: n * E)) }
            probe![slot] = r
            let ks = (0..<n).map { rule($0, knob[slot]) }
            batchK[slot] = ks
            return ks
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
        if hasBudget, config.forcedK == nil {
            if config.policy == .topK {
                let want = Float(targetK(slot: slot))
                // dithering: the running mean of k is exactly the target
                for t in 0..<n {
                    let k = min(max(Int((want + dither[slot]).rounded(.down)), lo), hi)
                    dither[slot] += want - Float(k)
                    ks[t] = k
                }
            } else if config.budgetMode == .global {
                // the shared price, solved over the batch (endProbe) or moved per token (record)
                for t in 0..<n { ks[t] = rule(t, knob[slot]) }
            } else if n > 1 || !calibrated {
                // per_layer / schedule: this layer's own knob, solved over its rows of the batch
                let target = targetK(slot: slot) * Double(n)
                let u = solveKnob(target: target) { u in (0..<n).reduce(0) { $0 + rule($1, u) } }
                knob[slot] = u
                for t in 0..<n { ks[t] = rule(t, u) }
            } else {
                ks[0] = rule(0, knob[slot])
                let err = Float(ks[0]) / Float(kNative) - targetFraction(slot: slot)
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

    /// Adds the tokens of the last batch to the statistics; after one decoded token under a
    /// global budget, moves the shared price by the token's cost error over all layers.
    func record(pos0: Int, n: Int, logitsFor: (Int) -> Bool) {
        let used = config.policy == .adak && allocator != nil
        if controlsKnob {
            if config.budgetMode == .global, n == 1, calibrated, let f = config.budget, !knob.isEmpty {
                let spent = batchK.reduce(0) { $0 + ($1.first ?? 0) }
                let err = Float(spent) / Float(kNative * knob.count) - f
                let u = min(max(knob[0] + gain * err, -64), 64)
                for i in knob.indices { knob[i] = u }
            }
            calibrated = true
        }
        for t in 0..<n {
            let ks = batchK.map { $0.count > t ? $0[t] : 0 }
            stats.add(position: pos0 + t, ks: ks[...], flops: flops, allocatorUsed: used, logits: logitsFor(t))
        }
    }
}

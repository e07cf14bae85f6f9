import CAdaKKernels
#if canImport(Glibc)
import Glibc
#endif

/// One batch of allocator decisions for PPO: for every allocator slot (MoE layer) the same `count`
/// samples i — input h_i, action k_i, log π_old(k_i | h_i) and advantage A_i.
public struct PPOBatch {
    public let nEmbd: Int
    public let nExpert: Int
    /// Actions range over k ∈ [lo, hi]; the policy is the allocator softmax restricted to it.
    public let lo: Int
    public let hi: Int
    public var hidden: [[Float]]
    public var k: [[Int32]]
    public var logProbOld: [[Float]]
    public var advantage: [[Float]]
    /// Per slot and sample: whether the sample takes part (empty row: all do). Slots a rollout did
    /// not perturb carry no information about their action and are left out of the loss and of
    /// the advantage normalisation.
    public var active: [[Bool]]
    /// Per sample (token, shared by the slots): the price μ its rollout ran at (empty: 0 for all);
    /// the policy of the ratio and the entropy bonus is then softmax(logit_k − μ·k).
    public var price: [Float] = []
    /// Radius w of the rollouts' sampling window (0: none) and, per slot and sample, its centre:
    /// the greedy k at the rollout (`RoutingTrace.center`). With w > 0 the policy of the ratio
    /// and of the entropy bonus is the (priced) softmax restricted to [centre − w, centre + w]
    /// and renormalised, the distribution the action was drawn from.
    public var sampleWindow = 0
    public var center: [[Int32]]

    public init(nEmbd: Int, nExpert: Int, slots: Int, lo: Int, hi: Int) {
        self.nEmbd = nEmbd
        self.nExpert = nExpert
        self.lo = lo
        self.hi = hi
        hidden = [[Float]](repeating: [], count: slots)
        k = [[Int32]](repeating: [], count: slots)
        logProbOld = [[Float]](repeating: [], count: slots)
        advantage = [[Float]](repeating: [], count: slots)
        active = [[Bool]](repeating: [], count: slots)
        center = [[Int32]](repeating: [], count: slots)
    }

    @inline(__always) func isActive(_ slot: Int, _ i: Int) -> Bool { active[slot].isEmpty || active[slot][i] }

    /// Active samples over all slots.
    public var activeCount: Int {
        (0..<slots).reduce(0) { n, s in n + (active[s].isEmpty ? k[s].count : active[s].reduce(0) { $0 + ($1 ? 1 : 0) }) }
    }

    public var slots: Int { k.count }
    /// Samples per slot.
    public var count: Int { k.first?.count ?? 0 }

    /// Advantages of the active samples of all slots shifted and scaled to mean 0 and standard
    /// deviation 1 (inactive ones are set to 0).
    public mutating func normalizeAdvantages() {
        var n = 0.0, s = 0.0, s2 = 0.0
        for (i, a) in advantage.enumerated() {
            for (j, v) in a.enumerated() where isActive(i, j) { n += 1; s += Double(v); s2 += Double(v) * Double(v) }
        }
        guard n > 1 else { return }
        let mean = s / n
        let sd = max((s2 / n - mean * mean).squareRoot(), 1e-8)
        for i in advantage.indices {
            for j in advantage[i].indices { advantage[i][j] = isActive(i, j) ? Float((Double(advantage[i][j]) - mean) / sd) : 0 }
        }
    }
}

/// PPO settings of the optimiser (the rollout settings live in `AllocatorTrainingSettings`).
public struct PPOSettings: Sendable, Equatable {
    /// Clip range ε of the probability ratio.
    public var clip: Double = 0.2
    /// Passes over each batch.
    public var epochs = 4
    /// Samples (tokens) per minibatch; every slot's samples of those tokens go into it.
    public var minibatch = 256
    public var learningRate: Double = 3e-3
    /// Learning rate of the allocator weights as a multiple of `learningRate` (the biases use
    /// `learningRate` itself); < 1 lets the per-layer allocation move faster than the noisier
    /// per-token part (docs/DESIGN.md §8.4).
    public var weightLRScale: Double = 1
    /// Weight of the entropy bonus (0: none).
    public var entropyCoef: Double = 0
    /// Global L2 norm the gradient is clipped to (0: no clipping).
    public var maxGradNorm: Double = 1.0
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var adamEps: Double = 1e-8
    public init() {}

    public func validate() throws {
        func bad(_ m: String) -> AdaKError { .invalidArgument(m) }
        guard clip.isFinite, clip > 0, clip < 1 else { throw bad("clip ε must be in (0, 1)") }
        guard epochs >= 1, epochs <= 100 else { throw bad("epochs must be in 1...100") }
        guard minibatch >= 1, minibatch <= Int(Int32.max) else { throw bad("minibatch must be in 1...\(Int32.max)") }
        guard learningRate.isFinite, learningRate > 0, learningRate < 1 else { throw bad("learning rate must be in (0, 1)") }
        guard weightLRScale.isFinite, weightLRScale >= 0, weightLRScale <= 100 else { throw bad("weight lr scale must be in [0, 100]") }
        guard entropyCoef.isFinite, entropyCoef >= 0, entropyCoef <= 1e6 else { throw bad("entropy_coef must be in [0, 1e6]") }
        guard maxGradNorm.isFinite, maxGradNorm >= 0, maxGradNorm <= 1e12 else { throw bad("max_grad_norm must be in [0, 1e12] (0: no clipping)") }
        guard beta1 >= 0, beta1 < 1, beta2 >= 0, beta2 < 1, adamEps > 0 else { throw bad("bad Adam settings") }
    }
}

/// What one PPO update did, measured over its last epoch.
public struct PPOUpdateStats: Sendable {
    /// Approximate KL(π_old ‖ π_new), the estimator mean((r − 1) − log r) (Schulman 2020).
    public var approxKL = 0.0
    /// Fraction of samples whose ratio left [1 − ε, 1 + ε].
    public var clipFraction = 0.0
    /// Mean entropy of π(·|h) over the samples (nats).
    public var entropy = 0.0
    /// Mean gradient norm before clipping.
    public var gradNorm = 0.0
    /// Mean clipped-surrogate objective (to be maximised).
    public var surrogate = 0.0
}

/// Gradients of the PPO loss with respect to an allocator's parameters, [slot][...].
struct AllocatorGradient {
    var w: [[Float]]
    var b: [[Float]]

    init(slots: Int, nExpert: Int, nEmbd: Int) {
        w = [[Float]](repeating: [Float](repeating: 0, count: nExpert * nEmbd), count: slots)
        b = [[Float]](repeating: [Float](repeating: 0, count: nExpert), count: slots)
    }

    var norm: Double {
        var s = 0.0
        for g in w { for v in g { s += Double(v) * Double(v) } }
        for g in b { for v in g { s += Double(v) * Double(v) } }
        return s.squareRoot()
    }

    mutating func scale(_ f: Float) {
        for i in w.indices { for j in w[i].indices { w[i][j] *= f } }
        for i in b.indices { for j in b[i].indices { b[i][j] *= f } }
    }
}

enum PPOMath {
    /// ∂ log π(k | h) / ∂ logits over the restricted range: onehot(k) − π (zero outside [lo, hi]).
    static func logProbGradient(logits: [Float], k: Int, lo: Int, hi: Int) -> [Double] {
        var lp = [Double](repeating: 0, count: hi - lo + 1)
        logits.withUnsafeBufferPointer { l in lp.withUnsafeMutableBufferPointer { MaskedPolicy.logProbs(logits: l.baseAddress!, lo: lo, hi: hi, out: $0.baseAddress!) } }
        var g = [Double](repeating: 0, count: logits.count)
        for j in lo...hi { g[j - 1] = (j == k ? 1 : 0) - exp(lp[j - lo]) }
        return g
    }

    /// The PPO loss −mean[min(r·A, clip(r, 1±ε)·A) + c·H(π)] over samples `tokens` of every slot,
    /// and (when `gradient` is given) its gradient with respect to the allocator parameters:
    /// ∂/∂z_j of r·A is r·A·(onehot(k) − π)_j on the unclipped branch, 0 on the clipped one;
    /// ∂H/∂z_j = −π_j (log π_j + H); z = A·h + b, so ∂/∂A_j = (∂/∂z_j)·h and ∂/∂b_j = ∂/∂z_j.
    ///
    /// With a sampling window (batch.sampleWindow = w > 0) π is π_W(k) = π(k)/π(W) on the
    /// sample's window W = [g − w, g + w] ∩ [lo, hi], g the greedy k at the rollout (kept in
    /// batch.center), and 0 outside: the behaviour policy the action was drawn from, so the
    /// ratio π_W,new(k)/π_W,old(k) is a correct importance weight. W is part of the sample (like
    /// h and μ), fixed while θ moves: g is a piecewise-constant function of θ, so this is the
    /// exact gradient of the windowed objective almost everywhere. Both formulas above hold with
    /// π_W in place of π (log π_W = z_k − logsumexp_W z: onehot(k) − π_W on W, 0 off it); the
    /// logits outside W get no gradient, the ones inside learn the order of the nearby k.
    static func loss(allocator a: Allocator, batch: PPOBatch, tokens: ArraySlice<Int>, settings s: PPOSettings,
                     gradient: UnsafeMutablePointer<AllocatorGradient>?, stats: UnsafeMutablePointer<PPOUpdateStats>?) -> Double {
        let d = batch.nEmbd, E = batch.nExpert, lo = batch.lo, hi = batch.hi
        let nk = hi - lo + 1
        var active = 0
        for slot in 0..<batch.slots {
            if batch.active[slot].isEmpty { active += tokens.count } else { for i in tokens where batch.active[slot][i] { active += 1 } }
        }
        let count = Double(active)
        guard count > 0 else { return 0 }
        let eps = s.clip, c = s.entropyCoef
        var total = 0.0, kl = 0.0, clipped = 0.0, ent = 0.0
        var z = [Float](repeating: 0, count: E)
        var lp = [Double](repeating: 0, count: nk)
        var gz = [Float](repeating: 0, count: nk)
        for slot in 0..<batch.slots {
            batch.hidden[slot].withUnsafeBufferPointer { hAll in
                a.weights[slot].withUnsafeBufferPointer { w in
                    for i in tokens where batch.isActive(slot, i) {
                        let h = hAll.baseAddress! + i * d
                        for j in lo...hi {
                            z[j - 1] = a.biases[slot][j - 1] + akk_vec_dot(Int32(AKK_F32.rawValue), Int64(d), w.baseAddress! + (j - 1) * d, h)
                        }
                        let mu = batch.price.isEmpty ? 0 : batch.price[i]
                        let g = batch.sampleWindow > 0 ? Int(batch.center[slot][i]) : lo
                        z.withUnsafeBufferPointer { zb in lp.withUnsafeMutableBufferPointer {
                            MaskedPolicy.windowLogProbs(logits: zb.baseAddress!, lo: lo, hi: hi, price: mu, center: g,
                                                        radius: batch.sampleWindow, out: $0.baseAddress!) } }
                        let k = Int(batch.k[slot][i])
                        let adv = Double(batch.advantage[slot][i])
                        let logRatio = lp[k - lo] - Double(batch.logProbOld[slot][i])
                        let r = exp(logRatio)
                        let rc = min(max(r, 1 - eps), 1 + eps)
                        let surr = min(r * adv, rc * adv)
                        var h0 = 0.0
                        for j in 0..<nk where lp[j] > -.infinity { h0 -= exp(lp[j]) * lp[j] }
                        total += surr + c * h0
                        kl += (r - 1) - logRatio
                        if abs(r - 1) > eps { clipped += 1 }
                        ent += h0
                        guard gradient != nil else { continue }
                        // coefficient of ∂log π(k)/∂z: r·A unless the clipped branch is the minimum
                        let coef = r * adv <= rc * adv ? r * adv : 0
                        for j in 0..<nk {
                            let p = exp(lp[j])
                            let dlogp = (j + lo == k ? 1 : 0) - p
                            let dH = p > 0 ? -p * (lp[j] + h0) : 0
                            gz[j] = Float(-(coef * dlogp + c * dH) / count)
                        }
                        gradient!.pointee.w[slot].withUnsafeMutableBufferPointer { gw in
                            for j in 0..<nk where gz[j] != 0 {
                                let row = gw.baseAddress! + (j + lo - 1) * d
                                let g = gz[j]
                                for x in 0..<d { row[x] += g * h[x] }
                            }
                        }
                        for j in 0..<nk { gradient!.pointee.b[slot][j + lo - 1] += gz[j] }
                    }
                }
            }
        }
        if let stats {
            stats.pointee.approxKL += kl / count
            stats.pointee.clipFraction += clipped / count
            stats.pointee.entropy += ent / count
            stats.pointee.surrogate += total / count
        }
        return -total / count
    }
}

/// Adam over an allocator's parameters, with the PPO update loop: `epochs` passes over the batch
/// in shuffled minibatches of tokens, global gradient-norm clipping.
public final class PPOOptimizer {
    public var settings: PPOSettings
    /// Adam moments, [slot][...] like the allocator.
    var mW: [[Float]], vW: [[Float]], mB: [[Float]], vB: [[Float]]
    /// Adam steps taken.
    public internal(set) var step = 0

    public init(allocator a: Allocator, settings: PPOSettings) {
        self.settings = settings
        let zw = [Float](repeating: 0, count: a.nExpert * a.nEmbd), zb = [Float](repeating: 0, count: a.nExpert)
        mW = a.layers.map { _ in zw }
        vW = mW
        mB = a.layers.map { _ in zb }
        vB = mB
    }

    /// One PPO update on `batch`; the allocator's parameters change in place.
    public func update(allocator a: Allocator, batch: PPOBatch, rng: inout TrainingRNG) -> PPOUpdateStats {
        let n = batch.count
        var order = Array(0..<n)
        var last = PPOUpdateStats()
        var steps = 0
        for epoch in 0..<settings.epochs {
            // Fisher–Yates with the training generator
            for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, rng.below(i + 1)) }
            var st = PPOUpdateStats()
            var mbs = 0, gnorm = 0.0
            var start = 0
            while start < n {
                let mb = order[start..<min(start + settings.minibatch, n)]
                start += settings.minibatch
                var g = AllocatorGradient(slots: batch.slots, nExpert: batch.nExpert, nEmbd: batch.nEmbd)
                _ = PPOMath.loss(allocator: a, batch: batch, tokens: mb, settings: settings, gradient: &g, stats: &st)
                let norm = g.norm
                gnorm += norm
                if settings.maxGradNorm > 0, norm > settings.maxGradNorm { g.scale(Float(settings.maxGradNorm / norm)) }
                adamStep(a, g)
                mbs += 1
                steps += 1
            }
            if epoch == settings.epochs - 1, mbs > 0 {
                let f = 1 / Double(mbs)
                last = PPOUpdateStats(approxKL: st.approxKL * f, clipFraction: st.clipFraction * f, entropy: st.entropy * f,
                                      gradNorm: gnorm * f, surrogate: st.surrogate * f)
            }
        }
        return last
    }

    private func adamStep(_ a: Allocator, _ g: AllocatorGradient) {
        step += 1
        let b1 = Float(settings.beta1), b2 = Float(settings.beta2), e = Float(settings.adamEps)
        let c1 = 1 - pow(settings.beta1, Double(step)), c2 = 1 - pow(settings.beta2, Double(step))
        let lr = Float(settings.learningRate * c2.squareRoot() / c1)
        let lrW = lr * Float(settings.weightLRScale)
        func apply(_ p: UnsafeMutablePointer<Float>, _ gr: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>,
                   _ v: UnsafeMutablePointer<Float>, _ count: Int, _ lr: Float) {
            for i in 0..<count {
                m[i] = b1 * m[i] + (1 - b1) * gr[i]
                v[i] = b2 * v[i] + (1 - b2) * gr[i] * gr[i]
                p[i] -= lr * m[i] / (v[i].squareRoot() + e)
            }
        }
        for s in 0..<a.layers.count {
            let cw = a.weights[s].count, cb = a.biases[s].count
            a.weights[s].withUnsafeMutableBufferPointer { p in g.w[s].withUnsafeBufferPointer { gr in
                mW[s].withUnsafeMutableBufferPointer { m in vW[s].withUnsafeMutableBufferPointer { v in
                    apply(p.baseAddress!, gr.baseAddress!, m.baseAddress!, v.baseAddress!, cw, lrW) } } } }
            a.biases[s].withUnsafeMutableBufferPointer { p in g.b[s].withUnsafeBufferPointer { gr in
                mB[s].withUnsafeMutableBufferPointer { m in vB[s].withUnsafeMutableBufferPointer { v in
                    apply(p.baseAddress!, gr.baseAddress!, m.baseAddress!, v.baseAddress!, cb, lr) } } } }
        }
    }
}

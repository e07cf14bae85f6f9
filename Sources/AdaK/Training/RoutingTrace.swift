#if canImport(Glibc)
import Glibc
#endif

/// The policy of one allocator layer restricted to k ∈ [lo, hi]: log π(k | h) for every k in range
/// from the logits (index k−1), in double for a stable softmax. Out-of-range actions get −∞.
/// With a price μ the policy is the priced one, softmax(logit_k − μ·k): the stochastic version of
/// the budget's rule argmax(logit_k − μ·k) (training under a global price, docs/DESIGN.md §8.5).
enum MaskedPolicy {
    /// Writes log-probabilities of k = lo…hi into `logp[0..<hi-lo+1]`.
    static func logProbs(logits: UnsafePointer<Float>, lo: Int, hi: Int, price: Float = 0, out logp: UnsafeMutablePointer<Double>) {
        let mu = Double(price)
        var mx = -Double.infinity
        for k in lo...hi { mx = max(mx, Double(logits[k - 1]) - mu * Double(k)) }
        var s = 0.0
        for k in lo...hi { s += exp(Double(logits[k - 1]) - mu * Double(k) - mx) }
        let lse = mx + log(s)
        for k in lo...hi { logp[k - lo] = Double(logits[k - 1]) - mu * Double(k) - lse }
    }

    /// The actions of the sampling window of radius w around `center` (the greedy k):
    /// [center − w, center + w] ∩ [lo, hi]; w = 0: no window, all of [lo, hi].
    static func window(lo: Int, hi: Int, center: Int, radius w: Int) -> ClosedRange<Int> {
        w > 0 ? max(lo, center - w)...min(hi, center + w) : lo...hi
    }

    /// Like `logProbs` (hi − lo + 1 entries), but the policy restricted to the sampling window
    /// around `center` and renormalised over it: −∞ outside (training with a sampling window).
    static func windowLogProbs(logits: UnsafePointer<Float>, lo: Int, hi: Int, price: Float, center: Int, radius: Int,
                               out logp: UnsafeMutablePointer<Double>) {
        let w = window(lo: lo, hi: hi, center: center, radius: radius)
        for k in lo...hi { logp[k - lo] = -.infinity }
        logProbs(logits: logits, lo: w.lowerBound, hi: w.upperBound, price: price, out: logp + (w.lowerBound - lo))
    }
}

/// What the routing did, token by token: k per (MoE layer, token) for any policy, and for PPO
/// rollouts also the allocator input h and log π_old(k | h). Attach one to a session with
/// `Session.trace`; with `sampling` on, the `adak` policy *samples* k ~ π(·|h) (restricted to the
/// session's [k_min, k_max]) from the trace's seeded generator instead of taking the argmax.
/// Tokens are appended in evaluation order, so index i of every layer is the same token.
public final class RoutingTrace {
    /// Sample k from the allocator instead of its argmax (adak policy only; no budget control).
    public let sampling: Bool
    /// Keep the allocator inputs (needed for training; n_embd floats per layer and token).
    public let recordHidden: Bool
    public var rng: TrainingRNG
    public let nEmbd: Int
    /// k per MoE layer slot (model order) and token.
    public internal(set) var k: [[Int32]]
    /// log π_old(k | h) of the sampled k, per slot and token (sampling only).
    public internal(set) var logProb: [[Float]]
    /// Allocator inputs, per slot: token-major rows of n_embd floats (recordHidden only).
    public internal(set) var hidden: [[Float]]
    /// With `sampling`: the slots whose k is sampled (nil: all). The other slots take the
    /// allocator's argmax (its log π is still recorded), so a rollout can perturb a few layers
    /// and be compared token by token with the all-argmax pass (`perturbLayers` in training).
    public var sampledSlots: Set<Int>? = nil
    /// With `sampling`: the shared price μ of the rollout (training under a global budget); k is
    /// sampled from softmax(logit_k − μ·k) and the unsampled slots take argmax(logit_k − μ·k).
    public var price: Float = 0
    /// With `sampling`: radius w of the sampling window (0: none). k is then drawn from the
    /// priced policy restricted to [g − w, g + w], g = argmax(logit_k − μ·k) at the same input,
    /// renormalised; log π_old is that restricted policy's and g is kept in `center`, so that PPO
    /// evaluates the new policy on the same window (PPOBatch.center).
    public var sampleWindow = 0
    /// With `sampling`: the greedy k, argmax(logit_k − μ·k), per slot and token: the centre of
    /// the sampling window.
    public internal(set) var center: [[Int32]]

    public convenience init(model: Model, sampling: Bool, recordHidden: Bool, seed: UInt64 = 0) {
        self.init(slots: model.moeLayerIndices.count, nEmbd: model.config.nEmbd, sampling: sampling,
                  recordHidden: recordHidden, seed: seed)
    }

    /// A trace for `slots` allocator layers of inputs of width `nEmbd` (also for synthetic tests).
    public init(slots n: Int, nEmbd: Int, sampling: Bool, recordHidden: Bool, seed: UInt64 = 0) {
        self.sampling = sampling
        self.recordHidden = recordHidden
        rng = TrainingRNG(seed: seed)
        self.nEmbd = nEmbd
        k = [[Int32]](repeating: [], count: n)
        logProb = [[Float]](repeating: [], count: n)
        hidden = [[Float]](repeating: [], count: n)
        center = [[Int32]](repeating: [], count: n)
    }

    /// Tokens recorded (per layer).
    public var tokens: Int { k.first?.count ?? 0 }

    /// Forgets the recorded decisions (the generator carries on).
    public func clear() {
        for i in k.indices {
            k[i].removeAll(keepingCapacity: true)
            logProb[i].removeAll(keepingCapacity: true)
            hidden[i].removeAll(keepingCapacity: true)
            center[i].removeAll(keepingCapacity: true)
        }
    }

    /// The greedy k of token t (recorded as the window's centre) and log π(·) of the rollout's
    /// policy: priced, restricted to the sampling window around it.
    private func policy(slot: Int, row: UnsafePointer<Float>, lo: Int, hi: Int, into lp: inout [Double]) -> Int {
        let g = KRule.adak(logits: row, lo: lo, hi: hi, mu: price)
        center[slot].append(Int32(g))
        lp.withUnsafeMutableBufferPointer {
            MaskedPolicy.windowLogProbs(logits: row, lo: lo, hi: hi, price: price, center: g, radius: sampleWindow, out: $0.baseAddress!)
        }
        return g
    }

    /// Samples k for `n` tokens of one layer from allocator logits (n × E) within [lo, hi] (and
    /// the sampling window).
    func sample(slot: Int, logits: UnsafePointer<Float>, nExpert E: Int, n: Int, lo: Int, hi: Int) -> [Int] {
        var ks = [Int](repeating: lo, count: n)
        var lp = [Double](repeating: 0, count: hi - lo + 1)
        for t in 0..<n {
            let g = policy(slot: slot, row: logits + t * E, lo: lo, hi: hi, into: &lp)
            let range = MaskedPolicy.window(lo: lo, hi: hi, center: g, radius: sampleWindow)
            var u = rng.uniform(), chosen = range.upperBound
            for k in range {
                u -= exp(lp[k - lo])
                if u < 0 { chosen = k; break }
            }
            ks[t] = chosen
            logProb[slot].append(Float(lp[chosen - lo]))
        }
        return ks
    }

    /// The argmax k (ties: the smaller) of `n` tokens of one layer within [lo, hi], recording its
    /// log π like `sample` does (for the slots a rollout does not perturb).
    func argmax(slot: Int, logits: UnsafePointer<Float>, nExpert E: Int, n: Int, lo: Int, hi: Int) -> [Int] {
        var ks = [Int](repeating: lo, count: n)
        var lp = [Double](repeating: 0, count: hi - lo + 1)
        for t in 0..<n {
            let k = policy(slot: slot, row: logits + t * E, lo: lo, hi: hi, into: &lp)
            ks[t] = k
            logProb[slot].append(Float(lp[k - lo]))
        }
        return ks
    }

    /// Whether `slot` is sampled in the current rollout.
    func samples(slot: Int) -> Bool { sampling && (sampledSlots?.contains(slot) ?? true) }

    /// Records the decisions of one layer for `n` tokens.
    func record(slot: Int, ks: [Int], hidden h: UnsafePointer<Float>, n: Int) {
        for v in ks { k[slot].append(Int32(v)) }
        if recordHidden { hidden[slot].append(contentsOf: UnsafeBufferPointer(start: h, count: n * nEmbd)) }
    }
}

extension Session {
    /// The routing trace being recorded (nil: none). Rollouts for PPO use a sampling trace.
    public var trace: RoutingTrace? {
        get { router.trace }
        set { router.trace = newValue }
    }
}

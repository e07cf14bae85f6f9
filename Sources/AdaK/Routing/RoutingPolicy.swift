#if canImport(Glibc)
import Glibc
#endif

/// How each MoE layer chooses k, the number of experts a token activates. Whatever the policy,
/// the engine then takes the k most probable experts and renormalises as the architecture does
/// (docs/DESIGN.md §4). Every knob is validated by `RoutingConfig.validate`.
public enum RoutingPolicy: String, Sendable, CaseIterable {
    /// Static Top-K: every token uses `k` experts (default: the model's native K).
    case topK = "topk"
    /// Ada-K: a trained per-layer allocator picks k = argmax(logit_k − μ·k).
    case adak
    /// Top-P (Huang et al. 2024): the smallest prefix of the sorted router probabilities whose
    /// sum reaches `p`.
    case topP = "top_p"
    /// Dynamic skipping (Lu et al. 2024): keep the j-th expert only while w_j ≥ β·w_1.
    case skip
    /// Entropy-guided: k = ⌈τ · exp(H(p))⌉, the router's effective number of experts scaled by τ.
    case entropy
}

/// How a budget spreads over the MoE layers (docs/DESIGN.md §4).
public enum BudgetMode: String, Sendable, CaseIterable {
    /// One price (knob) shared by every layer: the policy's per-layer and per-token shares
    /// survive and only the model's total meets the budget. The default.
    case global
    /// One knob per layer: every layer's mean k/K meets the budget on its own.
    case perLayer = "per_layer"
    /// One knob per layer, each meeting that layer's own target mean k (`layerTargets`, e.g. a
    /// calibrated per-layer schedule): the schedule sets how much each layer spends, the policy
    /// which tokens within the layer get more or fewer experts. The budget is the targets' mean / K.
    case schedule
}

/// The routing settings of a session.
public struct RoutingConfig: Sendable, Equatable {
    public var policy: RoutingPolicy = .topK
    /// k for `topK` (nil: native K).
    public var k: Int? = nil
    /// Threshold of `topP`.
    public var p: Float = 0.5
    /// Ratio of `skip`.
    public var beta: Float = 0.5
    /// Scale of `entropy`.
    public var tau: Float = 1.0
    /// Bounds on k for every policy (kMax nil: the number of experts for `topK`/`adak`,
    /// native K for the threshold policies).
    public var kMin: Int = 1
    public var kMax: Int? = nil
    /// Expert-FLOPs budget as a fraction of static Top-K (nil: no budget).
    public var budget: Float? = nil
    /// Fixed price μ per expert for `adak` without a budget: k = argmax(logit_k − μ·k), the same μ
    /// in every layer, so the allocator's per-layer shares survive (docs/DESIGN.md §4).
    public var price: Float = 0
    /// How the budget is spread over the layers.
    public var budgetMode: BudgetMode = .global
    /// Target mean k per MoE layer (in MoE-layer order) for `budgetMode == .schedule`; fractional
    /// values are allowed. `budget`, when set, must be their mean / K (`scheduleBudget`).
    public var layerTargets: [Float]? = nil
    /// With `layerTargets` (any budget mode): layer l's k stays within [⌊t_l⌋ − band, ⌈t_l⌉ + band]
    /// (and kMin...kMax). Under `global` the shared price then trades experts between layers only
    /// within those bands (an experiment anchoring a learned policy to a calibrated schedule).
    public var layerBand: Int? = nil

    public init(policy: RoutingPolicy = .topK) { self.policy = policy }

    /// Per-(layer, position) k that overrides the policy (experiments, tests): returns nil to
    /// let the policy decide.
    public var forcedK: (@Sendable (_ layer: Int, _ position: Int) -> Int?)? = nil

    public static func == (a: RoutingConfig, b: RoutingConfig) -> Bool {
        a.policy == b.policy && a.k == b.k && a.p == b.p && a.beta == b.beta && a.tau == b.tau
            && a.kMin == b.kMin && a.kMax == b.kMax && a.budget == b.budget && a.price == b.price
            && a.budgetMode == b.budgetMode && a.layerTargets == b.layerTargets && a.layerBand == b.layerBand
            && (a.forcedK == nil) == (b.forcedK == nil)
    }

    /// The effective upper bound on k for a model with `nExpert` experts and native `kNative`.
    public func upperBound(nExpert: Int, kNative: Int) -> Int {
        if let kMax { return min(kMax, nExpert) }
        switch policy {
        case .topK, .adak: return nExpert
        case .topP, .skip, .entropy: return kNative
        }
    }

    /// The budget the schedule's targets spend (their mean / K), nil without targets.
    public func scheduleBudget(kNative: Int) -> Float? {
        guard let t = layerTargets, !t.isEmpty, kNative > 0 else { return nil }
        return t.reduce(0, +) / Float(t.count) / Float(kNative)
    }

    /// Throws `invalidArgument` when a setting is out of range for this model (nMoE: its MoE
    /// layers, checked against `layerTargets` when given).
    public func validate(nExpert: Int, kNative: Int, nMoE: Int? = nil) throws {
        func bad(_ m: String) -> AdaKError { .invalidArgument(m) }
        guard nExpert > 0 || policy == .topK else { throw bad("routing policy '\(policy.rawValue)' needs an MoE model") }
        let e = max(nExpert, 1)
        if let k { guard k >= 1, k <= e else { throw bad("k = \(k) out of range 1...\(e)") } }
        guard p.isFinite, p > 0, p <= 1 else { throw bad("top_p threshold must be in (0, 1]") }
        guard beta.isFinite, beta >= 0, beta <= 1 else { throw bad("skip beta must be in [0, 1]") }
        guard tau.isFinite, tau > 0, tau <= 64 else { throw bad("entropy tau must be in (0, 64]") }
        guard kMin >= 1, kMin <= e else { throw bad("k_min = \(kMin) out of range 1...\(e)") }
        if let kMax { guard kMax >= kMin, kMax <= e else { throw bad("k_max = \(kMax) out of range \(kMin)...\(e)") } }
        if let budget {
            guard budget.isFinite, budget > 0, budget <= 16 else { throw bad("flops budget \(budget) is not in (0, 16]") }
            guard nExpert > 0 else { throw bad("the model has no MoE layers: there are no expert FLOPs to budget") }
        }
        guard price.isFinite, abs(price) <= 64 else { throw bad("price must be in [-64, 64]") }
        if let layerBand {
            guard layerBand >= 0, layerBand <= e else { throw bad("layer band \(layerBand) out of range 0...\(e)") }
            guard layerTargets != nil else { throw bad("a layer band needs layer targets") }
        }
        if let t = layerTargets, budgetMode != .schedule {
            if let nMoE { guard t.count == nMoE else { throw bad("\(t.count) layer targets for \(nMoE) MoE layers") } }
            guard layerBand != nil else { throw bad("layer targets outside budget mode 'schedule' need a layer band") }
        }
        if budgetMode == .schedule {
            guard let t = layerTargets else { throw bad("budget mode 'schedule' needs a target k per MoE layer") }
            if let nMoE { guard t.count == nMoE else { throw bad("\(t.count) layer targets for \(nMoE) MoE layers") } }
            let hi = Float(upperBound(nExpert: e, kNative: kNative)), lo = Float(min(kMin, e))
            guard t.allSatisfy({ $0.isFinite && $0 >= lo && $0 <= hi }) else {
                throw bad("layer targets must be within the k bounds \(Int(lo))...\(Int(hi))")
            }
            if let budget, let sb = scheduleBudget(kNative: kNative), abs(budget - sb) > 1e-3 * sb {
                throw bad("flops budget \(budget) differs from the layer targets' mean / K = \(sb)")
            }
        }
    }
}

/// The decision rules, each a pure function of one token's sorted router probabilities (and,
/// for Ada-K, its allocator logits) and a scalar knob the budget controller may move.
enum KRule {
    /// Smallest n with p₍₁₎+…+p₍ₙ₎ ≥ threshold (sum in f32, in descending order).
    static func topP(sorted: UnsafePointer<Float>, count: Int, threshold: Float) -> Int {
        var cum: Float = 0
        for n in 0..<count {
            cum += sorted[n]
            if cum >= threshold { return n + 1 }
        }
        return count
    }

    /// Number of leading experts with weight ≥ β × the top weight.
    static func skip(sorted: UnsafePointer<Float>, count: Int, beta: Float) -> Int {
        var n = 1
        while n < count && sorted[n] >= beta * sorted[0] { n += 1 }
        return n
    }

    /// ⌈τ · exp(H)⌉ with H the entropy of the full distribution (natural log).
    static func entropy(probs: UnsafePointer<Float>, count: Int, tau: Float) -> Int {
        var h: Double = 0
        for i in 0..<count where probs[i] > 0 { h -= Double(probs[i]) * log(Double(probs[i])) }
        let k = (Double(tau) * exp(h)).rounded(.up)
        return k >= Double(count) ? count : max(1, Int(k))
    }

    /// argmax over k ∈ [lo, hi] of logits[k−1] − μ·k (ties: the smaller k).
    static func adak(logits: UnsafePointer<Float>, lo: Int, hi: Int, mu: Float) -> Int {
        var best = lo
        var bv = logits[lo - 1] - mu * Float(lo)
        if hi > lo {
            for k in (lo + 1)...hi {
                let v = logits[k - 1] - mu * Float(k)
                if v > bv { bv = v; best = k }
            }
        }
        return best
    }
}

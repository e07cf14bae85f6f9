#if canImport(Glibc)
import Glibc
#endif
import CAdaKKernels

/// How a router's logits become the experts' ranking and weights (llama.cpp's `build_moe_ffn`),
/// for the routers that are not a plain softmax-then-top-k:
/// - `sigmoid` (DeepSeek-V3, GLM-4.x: `expert_gating_func` = 2): s_e = σ(logit_e);
/// - a selection bias (`exp_probs_b`) that moves the ranking but not the weights;
/// - group-limited selection (`expert_group_count` > 1): the experts form groups, a group scores
///   the sum of its two best selection scores, and only the `expert_group_used_count` best groups
///   stay eligible;
/// - `expert_weights_norm` (traits.normalizeTopK) and `expert_weights_scale` on the chosen weights.
///
/// Dynamic k on these routers (docs/DESIGN.md §4.4): the policies see the distribution the
/// architecture's own normalisation gives, p_e = s_e / Σ_{eligible} s (0 for ineligible experts),
/// listed in the router's selection order (by s_e + bias). Top-P sums p in that order, skip compares
/// p_j with β·p_1 in that order, entropy is H(p) over the eligible experts.
public struct ExpertGating: Sendable, Equatable {
    public enum Function: Int, Sendable { case softmax = 1, sigmoid = 2 }
    public var function: Function = .softmax
    /// Multiplies the chosen experts' weights (`expert_weights_scale`, DeepSeek's routed_scaling_factor).
    public var weightsScale: Float = 1
    public var nGroup = 1
    public var nGroupUsed = 1

    public init() {}

    /// True when the router needs `score` instead of the softmax path.
    func needsScoring(bias: Bool) -> Bool { function != .softmax || nGroup > 1 || bias }

    /// Reads `expert_gating_func`, `expert_weights_scale`, the group counts. Unknown functions are
    /// refused (clear error), as are group counts that do not divide the experts.
    static func read(_ g: GGUFFile, arch: String, nExpert: Int, defaultFunction: Function = .softmax) throws -> ExpertGating {
        var r = ExpertGating()
        if let f = g.int("\(arch).expert_gating_func") {
            guard let fn = Function(rawValue: f) else {
                throw AdaKError.unsupported("\(arch).expert_gating_func \(f) is not supported (1 = softmax, 2 = sigmoid)")
            }
            r.function = fn
        } else {
            r.function = defaultFunction
        }
        if let s = g.double("\(arch).expert_weights_scale"), s != 0 {
            guard s.isFinite, s > 0, s <= 1e4 else { throw AdaKError.format("\(arch).expert_weights_scale \(s) out of range") }
            r.weightsScale = Float(s)
        }
        r.nGroup = g.int("\(arch).expert_group_count") ?? 1
        r.nGroupUsed = g.int("\(arch).expert_group_used_count") ?? r.nGroup
        if r.nGroup > 1 {
            guard nExpert % r.nGroup == 0, nExpert / r.nGroup >= 2, r.nGroupUsed >= 1, r.nGroupUsed <= r.nGroup else {
                throw AdaKError.format("\(arch): \(nExpert) experts cannot form \(r.nGroup) groups of ≥ 2 with \(r.nGroupUsed) used")
            }
        } else {
            r.nGroup = 1
            r.nGroupUsed = 1
        }
        return r
    }

    /// One token's router row: `logits` (n) becomes the policy distribution p (in place), `key`
    /// gets the selection scores (−∞ for ineligible experts). Returns (eligible experts, Σ s over
    /// the eligible ones: p·that sum = the raw score the weights start from).
    func score(_ logits: UnsafeMutablePointer<Float>, key: UnsafeMutablePointer<Float>, n: Int,
               bias: UnsafePointer<Float>?, groupScratch: UnsafeMutablePointer<Float>) -> (eligible: Int, rawSum: Float) {
        switch function {
        case .softmax: akk_softmax(logits, Int64(n))
        case .sigmoid: for e in 0..<n { logits[e] = 1 / (1 + expf(-logits[e])) }
        }
        for e in 0..<n { key[e] = logits[e] + (bias?[e] ?? 0) }
        var eligible = n
        if nGroup > 1 {
            let per = n / nGroup
            for g in 0..<nGroup {
                var a = -Float.infinity, b = -Float.infinity
                for e in (g * per)..<((g + 1) * per) {
                    let v = key[e]
                    if v > a { b = a; a = v } else if v > b { b = v }
                }
                groupScratch[g] = a + b
            }
            // keep the nGroupUsed best groups (ties: the lower group), mask the rest
            var keep = [Bool](repeating: false, count: nGroup)
            for _ in 0..<nGroupUsed {
                var best = -1
                for g in 0..<nGroup where !keep[g] && (best < 0 || groupScratch[g] > groupScratch[best]) { best = g }
                keep[best] = true
            }
            for g in 0..<nGroup where !keep[g] {
                // sigmoid: ineligible experts leave the policy distribution; softmax keeps its own
                for e in (g * per)..<((g + 1) * per) {
                    key[e] = -.infinity
                    if function == .sigmoid { logits[e] = 0 }
                }
            }
            eligible = nGroupUsed * per
        }
        guard function == .sigmoid else { return (eligible, 1) }
        var sum: Float = 0
        for e in 0..<n { sum += logits[e] }
        let s = max(sum, 1e-30)
        for e in 0..<n { logits[e] /= s }
        return (eligible, s)
    }
}


/// How each MoE layer chooses how many experts a token activates. The engine asks the policy
/// for k per (layer, token) and always takes the k most probable experts (DESIGN.md §4).
public enum RoutingPolicy: Sendable, Equatable {
    /// Static Top-K: every token uses k experts (nil: the model's native `expert_used_count`).
    case topK(Int?)
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

    /// Experts used by token t (its first k slots).
    public func k(of t: Int) -> Int {
        var n = 0
        while n < kMax && ids[t * kMax + n] >= 0 { n += 1 }
        return n
    }
}

/// Picks the `k` most probable experts (ties: lower index first, like a stable descending sort)
/// and writes them into `table` row t, renormalising the kept weights when `normalize`.
func selectTopExperts(probs: UnsafePointer<Float>, nExpert: Int, k: Int, normalize: Bool,
                      table: inout ExpertTable, row t: Int) {
    var chosen = [Int](repeating: -1, count: k)
    var used = [Bool](repeating: false, count: nExpert)
    for s in 0..<k {
        var best = -1
        for e in 0..<nExpert where !used[e] && (best < 0 || probs[e] > probs[best]) { best = e }
        used[best] = true
        chosen[s] = best
    }
    var sum: Float = 0
    for s in 0..<k { sum += probs[chosen[s]] }
    for s in 0..<table.kMax {
        if s < k {
            table.ids[t * table.kMax + s] = Int32(chosen[s])
            table.weights[t * table.kMax + s] = normalize ? probs[chosen[s]] / sum : probs[chosen[s]]
        } else {
            table.ids[t * table.kMax + s] = -1
            table.weights[t * table.kMax + s] = 0
        }
    }
}

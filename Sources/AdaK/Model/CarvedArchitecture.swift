/// `adak-moe`: a dense model whose FFN was carved into experts (Sources/AdaK/Carving).
///
/// It is our own GGUF architecture so that no other runtime silently misreads it: its experts
/// are combined by a *plain sum* and its router predicts each expert's output norm, neither of
/// which any llama.cpp MoE architecture does. Keys are llama's under the `adak-moe.` prefix plus:
///
/// | key | value |
/// |---|---|
/// | `adak-moe.base_architecture` | the dense architecture it was carved from (`llama`, `qwen2`, `qwen3`): attention follows it |
/// | `adak-moe.rope.type` | `norm` (pairs 2i, 2i+1) or `neox` (pairs i, i + n_rot/2) |
/// | `adak-moe.expert_weighting` | `unit`: every chosen expert's output is added with weight 1 |
/// | `adak-moe.router_type` | `predicted_norm`: score_e = w_e · x + b_e predicts ‖y_e‖ |
/// | `adak-moe.expert_shared_always_on` | true: the shared expert has no gate (weight 1) |
/// | `adak-moe.expert_count`, `expert_used_count`, `expert_feed_forward_length`, `expert_shared_feed_forward_length` | as qwen2moe |
///
/// Tensors per carved layer: `ffn_gate_inp.weight` [d, E] and `ffn_gate_inp.bias` [E] (f32),
/// `ffn_{gate,up,down}_exps`, `ffn_{gate,up,down}_shexp`; uncarved layers keep `ffn_{gate,up,down}`.
///
/// Routing with `predicted_norm`: experts are ranked by their score s_e (largest predicted
/// output first) and static Top-K takes the K largest. The threshold policies (`top_p`, `skip`,
/// `entropy`) see "probabilities" p_e = max(s_e, 0) / Σ_j max(s_j, 0) — the share of the
/// layer's predicted output mass each expert carries (uniform when no score is positive). They
/// rank experts the same way as the scores. With K = E the layer is the dense FFN exactly.
public enum CarvedArchitecture {
    public static let name = "adak-moe"
    /// Dense architectures that can be carved (their attention is reused unchanged).
    public static let bases = ["llama", "qwen2", "qwen3"]

    static func traits(gguf g: GGUFFile, arch: String) throws -> ArchitectureTraits? {
        guard arch == name else { return nil }
        guard let base = g.string("\(name).base_architecture") else {
            throw AdaKError.format("missing \(name).base_architecture")
        }
        guard bases.contains(base), var t = ArchitectureTraits.forArchitecture(base) else {
            throw AdaKError.unsupported("\(name): base architecture '\(base)' is not supported (supported: \(bases.joined(separator: ", ")))")
        }
        switch g.string("\(name).rope.type") {
        case "norm": t.ropeNeoX = false
        case "neox": t.ropeNeoX = true
        case let other: throw AdaKError.format("\(name).rope.type must be 'norm' or 'neox', got \(other.map { "'\($0)'" } ?? "nothing")")
        }
        guard g.string("\(name).expert_weighting") == "unit" else {
            throw AdaKError.unsupported("\(name).expert_weighting must be 'unit'")
        }
        guard g.string("\(name).router_type") == "predicted_norm" else {
            throw AdaKError.unsupported("\(name).router_type must be 'predicted_norm'")
        }
        if let on = g.bool("\(name).expert_shared_always_on"), !on {
            throw AdaKError.unsupported("\(name): a gated shared expert is not supported")
        }
        t.router = .predictedNorm
        t.unitExpertWeights = true
        t.normalizeTopK = false
        return t
    }

    /// The probabilities the threshold policies see: p_e = max(s_e, 0) / Σ max(s_j, 0),
    /// uniform when no score is positive. In place over one row of `n` scores.
    static func probabilities(_ s: UnsafeMutablePointer<Float>, _ n: Int) {
        var sum: Float = 0
        for i in 0..<n {
            let v = s[i] > 0 ? s[i] : 0
            s[i] = v
            sum += v
        }
        if sum > 0 {
            for i in 0..<n { s[i] /= sum }
        } else {
            for i in 0..<n { s[i] = 1 / Float(n) }
        }
    }
}

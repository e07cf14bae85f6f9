/// IBM Granite MoE (`granitemoe`, GraniteMoeForCausalLM; llama.cpp src/models/granite.cpp):
/// the Mixtral pass (RMSNorm, NORM-mode RoPE on permuted q/k, softmax top-k renormalised, SwiGLU
/// experts, optional shared expert) with four multipliers:
///
///     h₀ = embed(token) · embedding_multiplier
///     scores = q·kᵀ · attention_multiplier                  (instead of 1/√head_dim)
///     h ← h + residual_multiplier · attn(norm(h))
///     h ← h + residual_multiplier · moe(norm(h))
///     logits = lm_head(norm(h)) / logits_scaling
///
/// The engine applies them from `ModelConfig` (embeddingScale, attentionScale, residualScale,
/// logitScale); this file reads them.
enum GraniteMoE {
    static let arch = "granitemoe"

    static func readConfig(_ g: GGUFFile, into c: inout ModelConfig) throws {
        func scale(_ key: String, required: Bool = false) throws -> Float? {
            guard let v = g.double("\(arch).\(key)") else {
                if required { throw AdaKError.format("missing \(arch).\(key)") }
                return nil
            }
            guard v.isFinite, v != 0, abs(v) <= 1e6 else { throw AdaKError.format("\(arch).\(key) = \(v) out of range") }
            return Float(v)
        }
        c.logitScale = try scale("logit_scale", required: true) ?? 1
        c.residualScale = try scale("residual_scale") ?? 1
        c.embeddingScale = try scale("embedding_scale") ?? 1
        c.attentionScale = try scale("attention.scale")
    }
}

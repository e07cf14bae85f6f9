#if canImport(Glibc)
import Glibc
#endif
import CAdaKKernels

/// RoPE frequency scaling as llama.cpp applies it (`ggml_rope_ext`): none, or YaRN.
/// YaRN (deepseek2, gpt-oss): θ_i = mix(θ_i / factor, θ_i) with a ramp between the pairs whose
/// wavelength fits `beta_fast` and `beta_slow` times into the original context, and cos/sin scaled
/// by `attnFactor · (1 + 0.1 ln factor)`. llama.cpp fixes beta_fast = 32, beta_slow = 1 for these
/// architectures (it does not read the GGUF keys), and so do we.
public struct RopeScaling: Sendable, Equatable {
    public var freqScale: Float = 1
    public var extFactor: Float = 0
    public var attnFactor: Float = 1
    public var corrLow: Float = 0
    public var corrHigh: Float = 0
    /// DeepSeek's `mscale_all_dim` (GGUF `rope.scaling.yarn_log_multiplier` / 0.1), 0 if absent.
    public var yarnLogMul: Float = 0
    public var isYaRN: Bool { extFactor != 0 }

    public init() {}

    /// Reads `<arch>.rope.scaling.*`. Unknown scaling types are refused.
    static func read(_ g: GGUFFile, arch: String, nRot: Int, freqBase: Float, contextLength: Int) throws -> RopeScaling {
        var r = RopeScaling()
        let type = g.string("\(arch).rope.scaling.type") ?? "none"
        switch type {
        case "none":
            return r
        case "yarn":
            guard let factor = g.double("\(arch).rope.scaling.factor"), factor.isFinite, factor >= 1, factor <= 1024 else {
                throw AdaKError.format("\(arch): rope.scaling.factor must be in [1, 1024] for YaRN")
            }
            let f = Float(factor)
            let orig = g.int("\(arch).rope.scaling.original_context_length") ?? contextLength
            guard orig >= 1, orig <= ModelConfig.maxContext else {
                throw AdaKError.format("\(arch): rope.scaling.original_context_length \(orig) out of range")
            }
            r.freqScale = 1 / f
            r.extFactor = 1
            var dims: [Float] = [0, 0]
            akk_rope_yarn_corr_dims(Int32(nRot), Int32(orig), freqBase, 32, 1, &dims)
            r.corrLow = dims[0]
            r.corrHigh = dims[1]
            // llama_context: attn_factor = mscale(f, m) / mscale(f, m_all) / (1 + 0.1 ln f), so that
            // rope_yarn's own (1 + 0.1 ln f) cancels; DeepSeek-V2 takes m = m_all when m_all ≠ 1.
            func mscale(_ m: Float) -> Float { f <= 1 ? 1 : 0.1 * m * logf(f) + 1 }
            if let lm = g.double("\(arch).rope.scaling.yarn_log_multiplier"), lm != 0 {
                r.yarnLogMul = Float(lm) / 0.1
                let m: Float = arch == "deepseek2" && r.yarnLogMul != 1 ? r.yarnLogMul : 1
                r.attnFactor = mscale(m) / mscale(r.yarnLogMul)
            } else {
                r.attnFactor = mscale(1)
            }
            r.attnFactor /= 1 + 0.1 * logf(f)
            r.attnFactor *= Float(g.double("\(arch).rope.scaling.attn_factor") ?? 1)
            return r
        default:
            throw AdaKError.unsupported("rope scaling '\(type)' is not supported")
        }
    }

    /// Rotates the first `nRot` floats of `nHead` heads `headStride` floats apart at `pos`.
    func apply(_ x: UnsafeMutablePointer<Float>, nHead: Int, headStride: Int, nRot: Int, pos: Int,
               freqBase: Float, neox: Bool) {
        akk_rope_ext(x, Int32(nHead), Int64(headStride), Int32(nRot), Int32(pos), freqBase, freqScale,
                     extFactor, attnFactor, corrLow, corrHigh, neox ? 1 : 0)
    }
}

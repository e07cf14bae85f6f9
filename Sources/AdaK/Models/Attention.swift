import CAdaKKernels

/// Attention variants beyond llama.cpp's plain causal softmax (`akk_attention`), on the engine's
/// KV cache layout (K rows, V transposed):
/// - sinks (gpt-oss): a learned logit per head that joins the softmax denominator, so a head may
///   attend to "nothing"; softmax_j = exp(s_j − m) / (Σ_i exp(s_i − m) + exp(sink − m));
/// - a sliding window: position p sees p − window + 1 … p (llama.cpp's standard SWA mask).
/// Multi-head latent attention (deepseek2) runs the same kernel over its latent rows
/// (Models/DeepSeek2.swift).
extension ForwardState {
    func attendWithSinks(q: UnsafePointer<Float>, k: UnsafePointer<Float>, vt: UnsafePointer<Float>,
                         out: UnsafeMutablePointer<Float>, rows n: Int, pos0: Int, scale: Float,
                         sinks: UnsafePointer<Float>?, window: Int) {
        let c = config, hd = c.headDim
        let qDim = c.nHead * hd, kvDim = c.nHeadKV * hd
        akk_attention_ext(q, Int64(qDim), Int32(c.nHead), Int32(hd), Int32(hd),
                          k, Int64(kvDim), Int64(hd), Int32(c.nHeadKV),
                          vt, 1, Int64(nCtx), Int64(hd * nCtx),
                          out, Int64(qDim), Int32(n), Int32(pos0), scale, sinks, Int32(window),
                          kvType.ggmlType, attnScratch.p, Int32(threads))
    }
}

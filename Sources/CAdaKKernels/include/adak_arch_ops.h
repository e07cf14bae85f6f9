/*
 * adak_arch_ops.h — operations only some architectures need (f32): RoPE with YaRN scaling and a
 * head-stride, attention with separate K/V head sizes, attention sinks and a sliding window, and
 * gpt-oss's clamped SwiGLU. Internal to libadak. Formulas follow ggml's CPU backend (read, not
 * copied): RoPE angles by repeated multiplication with theta_scale, YaRN's ramp and magnitude.
 */
#ifndef ADAK_ARCH_OPS_H
#define ADAK_ARCH_OPS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* YaRN-capable RoPE (ggml_rope_ext) on n_head heads that start head_stride floats apart, rotating
 * the first n_rot floats of each. freq_scale = 1/factor; ext_factor 0 disables the ramp (then this
 * is plain RoPE scaled by attn_factor); corr_low/high: ggml_rope_yarn_corr_dims. neox as akk_rope. */
void akk_rope_ext(float *x, int n_head, int64_t head_stride, int n_rot, int pos, float freq_base,
                  float freq_scale, float ext_factor, float attn_factor, float corr_low, float corr_high,
                  int neox);

/* ggml_rope_yarn_corr_dims: the first and last rotated pair YaRN ramps between. */
void akk_rope_yarn_corr_dims(int n_rot, int n_ctx_orig, float freq_base, float beta_fast, float beta_slow,
                             float dims[2]);

/*
 * Causal attention of n_tok query tokens at positions pos0.. over a cache of f32 or f16 (kv_type
 * AKK_F32 / AKK_F16) elements. Head h reads kv head h / (n_head / n_head_kv).
 * q: rows of n_head heads, head h at q + t*q_stride + h*dk.
 * K of position j, kv head g: k + j*k_stride + g*k_head_stride (dk elements).
 * V dimension i of position j, kv head g: v + j*v_pos_stride + i*v_dim_stride + g*v_head_stride
 *   (row layout: v_pos_stride = row, v_dim_stride = 1; llama.cpp's transposed V: 1 and n_ctx).
 * out: n_tok rows, head h at out + t*out_stride + h*dv.
 * sinks (n_head floats, may be NULL): a logit per head that joins the softmax's denominator only.
 * window > 0: query at position p sees positions p-window+1 .. p (llama.cpp's standard SWA).
 * scratch: n_threads * (pos0 + n_tok) floats.
 */
void akk_attention_ext(const float *q, int64_t q_stride, int n_head, int dk, int dv,
                       const void *k, int64_t k_stride, int64_t k_head_stride, int n_head_kv,
                       const void *v, int64_t v_pos_stride, int64_t v_dim_stride, int64_t v_head_stride,
                       float *out, int64_t out_stride, int n_tok, int pos0, float scale,
                       const float *sinks, int window, int kv_type, float *scratch, int nthreads);

/* gpt-oss's SwiGLU (ggml_swiglu_oai): g' = min(g, limit), u' = clamp(u, -limit, limit),
 * y = g' * sigmoid(alpha * g') * (u' + 1). */
void akk_swiglu_oai(const float *g, const float *u, float *y, int64_t n, float alpha, float limit);

#ifdef __cplusplus
}
#endif
#endif

/*
 * adak_ops.h — the element-wise and attention operations of the forward pass (f32).
 * Internal to libadak. Numerics follow GGML's CPU backend where it matters for matching
 * llama.cpp: double accumulation in RMSNorm and softmax, RoPE angles computed by repeated
 * multiplication with theta_scale.
 */
#ifndef ADAK_OPS_H
#define ADAK_OPS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* y = (x / sqrt(mean(x^2) + eps)) * w   (w may be NULL: no scaling). x and y may alias. */
void akk_rmsnorm(const float *x, const float *w, float *y, int64_t n, float eps);

/* In-place RoPE on n_head heads of head_dim floats each (contiguous), rotating the first n_rot
 * dims at position pos. neox = 0: adjacent pairs (2i, 2i+1); neox = 1: pairs (i, i + n_rot/2). */
void akk_rope(float *x, int n_head, int head_dim, int n_rot, int pos, float freq_base, int neox);

/* In-place softmax over n values (max-subtracted, double sum). */
void akk_softmax(float *x, int64_t n);

/* y[i] = silu(g[i]) * u[i]. */
void akk_swiglu(const float *g, const float *u, float *y, int64_t n);

/* omp_get_num_procs(): the default thread count. */
int akk_default_threads(void);

/* 1 / (1 + exp(-x)) */
float akk_sigmoid(float x);

/*
 * Causal attention for n_tok query tokens at positions pos0 .. pos0+n_tok-1 of one sequence.
 * q:   n_tok rows of n_head*head_dim (row stride q_stride floats)
 * k,v: the cache, rows of n_head_kv*head_dim floats (stride kv_stride), rows 0 .. pos0+n_tok-1
 *      already filled.
 * out: n_tok rows of n_head*head_dim (stride out_stride).
 * scratch: n_threads * n_ctx floats (n_ctx >= pos0 + n_tok).
 * Head h uses kv head h / (n_head / n_head_kv). Scores are scaled by `scale` before softmax.
 */
void akk_attention(const float *q, int64_t q_stride, const float *k, const float *v, int64_t kv_stride,
                   float *out, int64_t out_stride, int n_tok, int pos0, int n_head, int n_head_kv,
                   int head_dim, float scale, float *scratch, int n_ctx, int nthreads);

#ifdef __cplusplus
}
#endif
#endif

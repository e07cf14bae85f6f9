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

/* akk_rmsnorm of `rows` rows (x row r at x + r * ldx, y row r at y + r * ldy; x and y may be the
 * same rows), the rows split over up to nthreads threads (0: all; few rows run on the caller).
 * Each row's bits are akk_rmsnorm's. */
void akk_rmsnorm_rows(const float *x, int64_t ldx, const float *w, float *y, int64_t ldy, int64_t rows, int64_t n,
                      float eps, int nthreads);

/* x[i] += b[i] (scale == 1) or x[i] += b[i] * scale (the product rounded first), i < count, split
 * over up to nthreads threads when count is large. */
void akk_add_scaled(float *x, const float *b, float scale, int64_t count, int nthreads);

/* akk_rope on `rows` rows of q (n_head_q heads, row stride ldq) and of k (n_head_k heads, stride
 * ldk; k may be NULL), row t at position pos0 + t, the rows split over up to nthreads threads. */
void akk_rope_rows(float *q, int64_t ldq, int n_head_q, float *k, int64_t ldk, int n_head_k, int64_t rows,
                   int head_dim, int n_rot, int pos0, float freq_base, int neox, int nthreads);

/* In-place RoPE on n_head heads of head_dim floats each (contiguous), rotating the first n_rot
 * dims at position pos. neox = 0: adjacent pairs (2i, 2i+1); neox = 1: pairs (i, i + n_rot/2). */
void akk_rope(float *x, int n_head, int head_dim, int n_rot, int pos, float freq_base, int neox);

/* In-place softmax over n values as GGML's soft_max computes it (ggml_v_expf on chunks of 8 with a
 * float horizontal sum per chunk added into a double, libm expf for the n % 8 tail, then
 * x *= (float)(1 / sum)). Masked entries may be -INFINITY (they become exactly 0). */
void akk_softmax(float *x, int64_t n);
void akk_softmax_scalar(float *x, int64_t n);

/* y[i] = silu(g[i]) * u[i] for one GGML row of n values (ggml_vec_swiglu_f32: chunks of 8 use
 * x / (1 + ggml_v_expf(0 - x)), the n % 8 tail x / (1 + expf(-x))). Call once per row. */
void akk_swiglu(const float *g, const float *u, float *y, int64_t n);
void akk_swiglu_scalar(const float *g, const float *u, float *y, int64_t n);

/* One lane of GGML's AVX2 ggml_v_expf (max error 1.45358 + 0.5 ulp; flushes to 0 below -103.97,
 * to +inf above 88.38), and a row of it (SIMD when available, bit-identical). */
float akk_expf_ggml_ref(float x);
void akk_expf_ggml_row(const float *x, float *y, int64_t n);

/* Dot product with one 8-lane FMA accumulator over steps of 8 (n % 8 == 0), then the AVX2 hsum:
 * llamafile tinyBLAS's per-output arithmetic for f32. */
float akk_dot_f32_1acc(int64_t n, const float *a, const float *b);
float akk_dot_f32_1acc_scalar(int64_t n, const float *a, const float *b);

/* omp_get_num_procs(): the default thread count. */
int akk_default_threads(void);

/* 1 / (1 + exp(-x)) */
float akk_sigmoid(float x);

/* The number of KV cells llama.cpp attends over: used cells rounded up to a multiple of 256
 * (at least 256), capped at the cache size. */
int akk_attn_n_kv(int n_used, int n_ctx);

/*
 * Causal attention for n_tok query tokens at positions pos0 .. pos0+n_tok-1 of one sequence,
 * with llama.cpp's non-flash-attention numerics (see ops.c), for a KV cache of kv_type AKK_F32
 * or AKK_F16 (elements of that type; strides count elements).
 * q:   n_tok rows of n_head*head_dim floats (row stride q_stride floats)
 * k:   the K cache, rows of n_head_kv*head_dim elements (stride k_stride), rows 0 .. pos0+n_tok-1 filled.
 * vt:  the V cache TRANSPOSED: n_head_kv*head_dim rows of vt_stride (>= n_ctx) elements, row r holds
 *      dimension r of every position; cells past the filled ones must be finite (zero-initialised).
 * out: n_tok rows of n_head*head_dim (stride out_stride).
 * scratch: max(n_threads, n_head) * n_ctx floats. (A decode with an f16 cache allocates an
 * fp16-rounded copy of q, a prefill (n_tok > 1) each thread's q and score rows; where that
 * fails, out is left unwritten.)
 * Head h uses kv head h / (n_head / n_head_kv). Scores are scaled by `scale` before softmax.
 */
void akk_attention(const float *q, int64_t q_stride, const void *k, int64_t k_stride,
                   const void *vt, int64_t vt_stride, float *out, int64_t out_stride,
                   int n_tok, int pos0, int n_head, int n_head_kv, int head_dim, float scale,
                   float *scratch, int n_ctx, int kv_type, int nthreads);

/* One sequence of akk_attention_seqs: its q/out rows, its cache, positions and scratch. */
typedef struct akk_attn_seq {
    const float *q;
    float *out;
    const void *k;
    const void *vt;
    int64_t vt_stride;
    float *scratch;      /* max(1, n_head) * n_ctx floats */
    int n_tok, pos0, n_ctx, kv_type;
} akk_attn_seq;

/* akk_attention for n_seqs sequences (batched decoding: each its own cache) in ONE parallel
 * region, a sequence per thread at a time (one fork/join instead of one per sequence). Strides,
 * heads and scale are shared. The values are akk_attention's: they do not depend on threads. */
void akk_attention_seqs(const akk_attn_seq *seqs, int n_seqs, int64_t q_stride, int64_t k_stride,
                        int64_t out_stride, int n_head, int n_head_kv, int head_dim, float scale, int nthreads);

/* The fp16 dots of the F16 cache: one_acc = 0: ggml_vec_dot_f16 (4 x 8 lanes, the n % 32 tail in
 * double), 1: tinyBLAS on fp16 (one 8-lane accumulator, n % 8 == 0). SIMD or scalar reference,
 * bit-identical. */
float akk_dot_f16(int one_acc, int64_t n, const uint16_t *a, const uint16_t *b);

#ifdef __cplusplus
}
#endif
#endif

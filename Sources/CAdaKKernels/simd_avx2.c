/*
 * AVX2 + FMA + F16C kernels. Compiled per function with target attributes (no -march flags), so
 * the library stays portable; dispatch.c selects them at run time.
 *
 * Each kernel is paired with a scalar reference that defines its exact float results:
 *   q8_block / quantize_row_q8_{0,1}   <->  quantize_block_q8 / akk_quantize_row_q8_{0,1}_scalar (quant.c)
 *   tile (Q8_0, Q4_0, Q4_1 weights)    <->  dot_q8_0_q8_0_scalar, dot_q4_0_q8_0_scalar,
 *                                           dot_q4_1_q8_1_scalar                             (quant.c)
 *   dot_f32                            <->  dot_f32_scalar                                   (quant.c)
 *   fp16 rows (vcvtph2ps / vcvtps2ph)  <->  akk_fp16_to_fp32 / akk_fp32_to_fp16              (formats.c)
 * Accumulation orders are documented in quant.c; tiles of several weight rows x several tokens
 * keep one accumulator per (row, token), so every output sees exactly the single-dot sequence.
 * The set's Q8_0 / Q4_0 / Q4_1 / Q5_0 / Q5_1 rows run the prefill tiles of simd_avx2_bias.c
 * (weights unpacked once per row tile) from a few tokens on, and the tiles here below that.
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include "akk_avx2.h"
#include "akk_attn_dots.h"
#include <stdlib.h>

/* Register tiles (rows x tokens, one 8-lane accumulator each) and the token chunk whose
 * activations stay in L2 while a thread's row tiles pass over them. Per (row, token, block) the
 * kernel needs ~6 vector ops (maddubs, madd, cvt, fma, sign or sub, and the scale product)
 * whatever the tile, so tiles mainly amortise the weight-side work (unpack, |w|, scale). Measured
 * on Zen 3, 1 thread, in-cache, 64 tokens, with prefill scales unpacked to floats (GMAC/s):
 * Q8_0 2x4 48 (2x2 45, 4x1 42, 4x2 37), Q4_0 3x2 46 (2x2 43, 4x1 42), Q4_1 2x2 41 (4x1 38);
 * before unpacking the scales every shape gave 36-39. Decode (n_tok = 1) uses 4x1 and is bound
 * by memory bandwidth (~39 GB/s of Q8_0 weights per core in cache, ~21-23 for Q4_0/Q4_1).
 * (TILE_MAX, TOK_CHUNK and the tiles themselves: akk_quant_tiles.h, shared with the AVX-512 set.) */


/* ---- fp16 rows ---- */

AVX2_FN void fp16_to_fp32_row(const uint16_t *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++) y[i] = _cvtsh_ss(x[i]);
}

AVX2_FN void fp32_to_fp16_row(const float *x, uint16_t *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT);
}

/* ---- activation quantisation: one block of 32 floats -> 32 int8 (element order) ---- */

#define RND (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

AVX2_INLINE float q8_block(const float *x, int8_t *qs, int *sum) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
    __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, absmask), _mm256_and_ps(v1, absmask)),
                             _mm256_max_ps(_mm256_and_ps(v2, absmask), _mm256_and_ps(v3, absmask)));
    __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float d = amax / 127.0f;
    const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
    __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, id), RND));
    __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, id), RND));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, id), RND));
    __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, id), RND));
    if (sum) {
        __m256i s = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        s4 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 1));
        *sum = _mm_cvtsi128_si32(s4);
    }
    /* packs work per 128-bit half: bytes come out as dwords 0,2,4,6,1,3,5,7 of the element order. */
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)qs, p);
    return d;
}

AKK_Q8_ROWS(AVX2_FN, q8_block)

/* ---- quantised tiles ---- */

/* fp16 -> fp32 of every half (filled by akk_avx2_prepare before the AVX2 set is published). A
 * broadcast from this table costs one load and no vector ALU op, unlike vcvtph2ps on a scalar. */
float akk_fp16_lut[65536];

void akk_avx2_prepare(void) {
    for (int h = 0; h < 65536; h++) akk_fp16_lut[h] = akk_fp16_to_fp32((uint16_t)h);
}

/* 8 int32 lanes, lane l = sum of u[j]*x[j] over j in 4l..4l+3 (u unsigned bytes, x signed; exact
 * while pair sums fit int16: true for nibbles u <= 15, and for the sign trick's u = |w| <= 128
 * with |x| <= 127). */
AVX2_INLINE __m256i lanes_u8s8(__m256i u, __m256i x) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1));
}
AVX2_INLINE __m256i u8s8_acc(__m256i acc, __m256i u, __m256i x) { return _mm256_add_epi32(acc, lanes_u8s8(u, x)); }

/* Int32 lane i = acc + sum over the 32 quants q of nibble(row i) * q: the 8 unpacked vectors of a
 * repacked block (r8_tile) against 4 quants each, int16 pair sums (|15*127*2| * 8 chunks = 30480
 * < 32768, exact), then one madd. */
AVX2_INLINE __m256i r8_isum(const __m256i w[8], const int8_t *q, __m256i acc) {
    __m256i p = _mm256_maddubs_epi16(w[0], bcast4(q));
    p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w[1], bcast4(q + 16)));
    p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w[2], bcast4(q + 4)));
    p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w[3], bcast4(q + 20)));
    p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w[4], bcast4(q + 8)));
    p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w[5], bcast4(q + 24)));
    p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w[6], bcast4(q + 12)));
    p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w[7], bcast4(q + 28)));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

#define QT_FN AVX2_FN
#define QT_INLINE AVX2_INLINE
#define QT_TILE_Q8_0 2, 4
#define QT_TILE_Q4_0 3, 2
#define QT_TILE_Q4_1 2, 2

/* ---- f32: ggml_vec_dot_f32's order (4 x 8 lanes, steps of 32, fma tail); see quant.c ---- */

/* 4 x 8 lanes of fma over steps of 32, combined as (a0+a2)+(a1+a3) into one 8-lane register;
 * LOAD(p) gives 8 floats. The n % 32 tail is the caller's. */
#define ACC_4X8(LOAD, w, x, np, out)                                                               \
    do {                                                                                           \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                \
        for (int64_t k_ = 0; k_ < (np); k_ += 32) {                                                \
            a0 = _mm256_fmadd_ps(LOAD((w) + k_), LOAD((x) + k_), a0);                              \
            a1 = _mm256_fmadd_ps(LOAD((w) + k_ + 8), LOAD((x) + k_ + 8), a1);                      \
            a2 = _mm256_fmadd_ps(LOAD((w) + k_ + 16), LOAD((x) + k_ + 16), a2);                    \
            a3 = _mm256_fmadd_ps(LOAD((w) + k_ + 24), LOAD((x) + k_ + 24), a3);                    \
        }                                                                                          \
        (out) = _mm256_add_ps(_mm256_add_ps(a0, a2), _mm256_add_ps(a1, a3));                       \
    } while (0)
/* GGML_F32x8_REDUCE's last steps (akk_reduce_4x8_ref's order): lo + hi, then two hadds. */
AVX2_INLINE float reduce_4x8(__m256 a) {
    const __m128 t = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    const __m128 h = _mm_hadd_ps(t, t);
    return _mm_cvtss_f32(_mm_hadd_ps(h, h));
}

AVX2_FN float dot_f32(int64_t n, const float *w, const float *x) {
    const int64_t np = n & ~(int64_t)31;
    __m256 a;
    ACC_4X8(LOAD_F32, w, x, np, a);
    return tail_f32(reduce_4x8(a), w, x, np, n);
}

/* ggml_vec_dot_f16 (AVX2 + F16C): dot_f32's lanes on converted halves, the tail in double.
 * Scalar reference: dot4_f16_scalar (ops.c). */
__attribute__((target("avx2,fma,f16c")))
float akk_dot4_f16_avx2(int64_t n, const uint16_t *a, const uint16_t *b) {
    const int64_t np = n & ~(int64_t)31;
    __m256 acc;
    ACC_4X8(LOAD_F16, a, b, np, acc);
    return tail_f16(reduce_4x8(acc), a, b, np, n);
}

/* ---- decode attention products (akk_attn_dots.h): 16 registers hold 8 to 12 accumulators ---- */

#define A2_FN static __attribute__((target("avx2,fma,f16c")))
#define A2_BLOCKS(T, LOAD, P)                                                                      \
    ATTN_BLOCK8(P##1x4, A2_FN, T, LOAD, 1, 4, 2)                                                   \
    ATTN_BLOCK8(P##1x3, A2_FN, T, LOAD, 1, 3, 4)                                                   \
    ATTN_BLOCK8(P##1x2, A2_FN, T, LOAD, 1, 2, 4)                                                   \
    ATTN_BLOCK8(P##1x1, A2_FN, T, LOAD, 1, 1, 4)                                                   \
    ATTN_BLOCK8(P##2x2, A2_FN, T, LOAD, 2, 2, 2)                                                   \
    ATTN_BLOCK8(P##2x1, A2_FN, T, LOAD, 2, 1, 4)
A2_BLOCKS(float, LOAD_F32, a2_f32_)
A2_BLOCKS(uint16_t, LOAD_F16, a2_f16_)

__attribute__((target("avx2,fma,f16c")))
void akk_attn_rows_f32_avx2(AKK_ATTN_ROWS_ARGS(float)) {
    typedef float A_T;
    ATTN_ROWS(a2_f32_, tail_f32, 1, 1, 2, 2)
}

__attribute__((target("avx2,fma,f16c")))
void akk_attn_rows_f16_avx2(AKK_ATTN_ROWS_ARGS(uint16_t)) {
    typedef uint16_t A_T;
    ATTN_ROWS(a2_f16_, tail_f16f, 1, 1, 2, 2)
}

/* ---- prefill attention products (akk_attn_dots.h): blocks of 2 rows x 4 vectors, 8 accumulators
 * (of the 16 registers) in flight ---- */

#define A2_PF(T, LOAD, P)                                                                          \
    PF_BLOCKS(P##1_, A2_FN, T, __m256, 8, 1, LOAD, _mm256_loadu_ps, _mm256_fmadd_ps, _mm256_setzero_ps, FOLD1, 2) \
    PF_BLOCKS(P##4_, A2_FN, T, __m256, 8, 4, LOAD, _mm256_loadu_ps, _mm256_fmadd_ps, _mm256_setzero_ps, fold8, 2)
A2_PF(float, LOAD_F32, a2pf_f32)
A2_PF(uint16_t, LOAD_F16, a2pf_f16)

__attribute__((target("avx2,fma,f16c")))
void akk_attn_prefill_f32_avx2(AKK_ATTN_PF_ARGS(float)) {
    typedef float A_T;
    ATTN_PREFILL(a2pf_f321_, 2, a2pf_f324_, 2, tail_f32)
}

__attribute__((target("avx2,fma,f16c")))
void akk_attn_prefill_f16_avx2(AKK_ATTN_PF_ARGS(uint16_t)) {
    typedef uint16_t A_T;
    ATTN_PREFILL(a2pf_f161_, 2, a2pf_f164_, 2, tail_f16f)
}

static void rows_f32(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                     const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    for (int64_t o = r0; o < r1; o++)
        for (int64_t t = 0; t < n_tok; t++)
            Y[t * ys + o] = dot_f32(n_in, (const float *)(W + o * wrow), (const float *)(X + t * xs));
}


#define QT_STREAM_PF 1
#include "akk_quant_tiles.h"

static float vec_dot(int wtype, int64_t n, const void *w, const void *x) {
    float y = 0.0f;
    switch (wtype) {
    case AKK_F32: return dot_f32(n, (const float *)w, (const float *)x);
    case AKK_Q8_0: tile_q8_0_any(1, 1, (const uint8_t *)w, 0, n / 32, (const uint8_t *)x, 0, &y, 0, 1, 0, 0, 0); break;
    case AKK_Q4_0: tile_q4_0_any(1, 1, (const uint8_t *)w, 0, n / 32, (const uint8_t *)x, 0, &y, 0, 1, 0, 0, 0); break;
    case AKK_Q4_1: tile_q4_1_any(1, 1, (const uint8_t *)w, 0, n / 32, (const uint8_t *)x, 0, &y, 0, 1, 0, 0, 0); break;
    case AKK_IQ4_NL: case AKK_IQ4_XS: case AKK_MXFP4: case AKK_IQ4_NL_X8: case AKK_MXFP4_X8:
        return akk_vec_dot_iq4mx_avx2(wtype, n, w, x);
    default: return akk_vec_dot_kq_avx2(wtype, n, w, x);
    }
    return y;
}

/* The tile rows of Q8_0, Q4_0, Q4_1: decode and few tokens of the AVX2 set (its prefill:
 * simd_avx2_bias.c). */
void akk_rows_q8_0_avx2(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X,
                        int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    rows_q8_0(W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}
void akk_rows_q4_0_avx2(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X,
                        int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    rows_q4_0(W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}
void akk_rows_q4_1_avx2(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X,
                        int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    rows_q4_1(W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}

/* Rows [r0, r1) x tokens of a type without a row kernel of its own: one dot per output. */
void akk_rows_by_dot_avx2(int wtype, const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                          const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    for (int64_t o = r0; o < r1; o++)
        for (int64_t t = 0; t < n_tok; t++) Y[t * ystride + o] = vec_dot(wtype, n_in, W + o * wrow, X + t * xstride);
}

/* ---- bandwidth probe: one sequential stream per thread, as the decode products read their
 * repacked row groups. (Four streams a quarter of the part apart, the probe before, read 0-37%
 * below one stream at 2 threads and ~2x below at 1 on a Zen 4 host: docs/BENCHMARKS.md.) ---- */

/* p 32-byte aligned, bytes a multiple of 128 (akk_bw_probe_create: parts of 256-byte multiples) */
AVX2_FN uint64_t read_bytes(const uint8_t *p, size_t bytes) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 128 <= bytes; i += 128) {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    const __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out, s);
    return out[0] + out[1] + out[2] + out[3];
}

const struct akk_impl akk_impl_avx2 = {
    .quantize_q8_0 = quantize_row_q8_0,
    .quantize_q8_1 = quantize_row_q8_1,
    .quantize_q8_K = akk_quantize_row_q8_K_avx2,
    .dot = vec_dot,
    .rows_f32 = rows_f32,
    .rows_q8_0 = akk_rows_q8_0_pf_avx2,
    .rows_q4_0 = akk_rows_q4_0_pf_avx2,
    .rows_q4_1 = akk_rows_q4_1_pf_avx2,
    .rows_q4_0_r8 = rows_q4_0_r8,
    .rows_iq4_nl = akk_rows_iq4_nl_avx2,
    .rows_iq4_xs = akk_rows_iq4_xs_avx2,
    .rows_mxfp4 = akk_rows_mxfp4_avx2,
    .rows_iq4_nl_x8 = akk_rows_iq4_nl_x8_avx2,
    .rows_mxfp4_x8 = akk_rows_mxfp4_x8_avx2,
    .rows_q5_0 = akk_rows_q5_0_pf_avx2,
    .rows_q5_1 = akk_rows_q5_1_pf_avx2,
    .rows_q2_k = akk_rows_q2_k_avx2,
    .rows_q3_k = akk_rows_q3_k_avx2,
    .rows_q4_k = akk_rows_q4_k_avx2,
    .rows_q5_k = akk_rows_q5_k_avx2,
    .rows_q6_k = akk_rows_q6_k_avx2,
    .rows_q2_k_tl = akk_rows_q2_k_tl_avx2,
    .rows_q3_k_tl = akk_rows_q3_k_tl_avx2,
    .rows_q5_k_tl = akk_rows_q5_k_tl_avx2,
    .rows_q6_k_tl = akk_rows_q6_k_tl_avx2,
    .rows_iq4_xs_tl = akk_rows_iq4_xs_tl_avx2,
    .rows_dot = akk_rows_by_dot_avx2,
    .fp16_to_fp32_row = fp16_to_fp32_row,
    .fp32_to_fp16_row = fp32_to_fp16_row,
    .attn_rows_f32 = akk_attn_rows_f32_avx2,
    .attn_rows_f16 = akk_attn_rows_f16_avx2,
    .read_bytes = read_bytes,
    .rows_q4_k_r8 = akk_rows_q4_k_r8_avx2,
    .rows_iq4_nl_r8 = akk_rows_iq4_nl_r8_avx2,
    .rows_mxfp4_r8 = akk_rows_mxfp4_r8_avx2,
    .rows_q4_k_r8_dense = akk_rows_q4_k_r8_dense_avx2,
    .rows_iq4_xs_r16 = akk_rows_iq4_xs_r16_avx2,
    .rows_iq4_xs_r16_tl = akk_rows_iq4_xs_r16_tl_avx2,
    .attn_prefill_f32 = akk_attn_prefill_f32_avx2,
    .attn_prefill_f16 = akk_attn_prefill_f16_avx2,
};

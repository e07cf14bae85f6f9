/*
 * AVX2 + FMA + F16C kernels. Compiled per function with target attributes (no -march flags), so
 * the library stays portable; dispatch.c selects them at run time.
 *
 * Each kernel is paired with a scalar reference that defines its exact float results:
 *   q8_block / quantize_row_q8_{0,1}   <->  quantize_block_q8 / akk_quantize_row_q8_{0,1}_scalar (quant.c)
 *   tile_sym (Q8_0 and Q4_0 weights)   <->  dot_q8_0_q8_0_scalar, dot_q4_0_q8_0_scalar       (quant.c)
 *   tile_q4_1                          <->  dot_q4_1_q8_1_scalar                             (quant.c)
 *   dot_f32                            <->  dot_f32_scalar                                   (quant.c)
 *   fp16 rows (vcvtph2ps / vcvtps2ph)  <->  akk_fp16_to_fp32 / akk_fp32_to_fp16              (formats.c)
 * Accumulation orders are documented in quant.c; tiles of several weight rows x several tokens
 * keep one accumulator per (row, token), so every output sees exactly the single-dot sequence.
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include <immintrin.h>

#define AVX2_FN static __attribute__((target("avx2,fma,f16c")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

/* Register tile for the quantised matmul: TILE_R weight rows x TILE_T tokens (8 accumulators),
 * and TOK_CHUNK tokens whose activations stay in L2 while all row tiles of a thread pass over them. */
#ifndef AKK_TILE_R
#define AKK_TILE_R 4
#endif
#ifndef AKK_TILE_T
#define AKK_TILE_T 2
#endif
#define TOK_CHUNK 64

AVX2_INLINE float hsum8(__m256 v) {
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

AVX2_INLINE float h2f(const uint8_t *p) { return _cvtsh_ss(akk_load_u16(p)); }

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
#define RND (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
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

AVX2_FN void quantize_row_q8_0(const float *x, void *y, int64_t n) {
    uint8_t *p = (uint8_t *)y;
    for (int64_t b = 0; b < n / 32; b++, p += 34) {
        const float d = q8_block(x + b * 32, (int8_t *)(p + 2), 0);
        const uint16_t h = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        memcpy(p, &h, 2);
    }
}

AVX2_FN void quantize_row_q8_1(const float *x, void *y, int64_t n) {
    uint8_t *p = (uint8_t *)y;
    for (int64_t b = 0; b < n / 32; b++, p += 36) {
        int s;
        const float d = q8_block(x + b * 32, (int8_t *)(p + 4), &s);
        const uint16_t hd = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        const uint16_t hs = _cvtss_sh(d * (float)s, _MM_FROUND_TO_NEAREST_INT);
        memcpy(p, &hd, 2);
        memcpy(p + 2, &hs, 2);
    }
}

/* ---- quantised tiles ---- */

/* 16 packed bytes -> 32 bytes: low nibbles (elements 0..15), then high nibbles (16..31). */
AVX2_INLINE __m256i unpack_nibbles(const uint8_t *qs) {
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    const __m256i b = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0f));
}

/*
 * Symmetric weights (Q8_0 {d, qs[32]} or Q4_0 {d, qs[16]} as nibble-8) x Q8_0 activations.
 * Per block and (row r, token t): |w| (maddubs needs an unsigned operand) times x signed by w gives
 * 16 exact pair sums, madd with ones gives lane l = sum over elements 4l..4l+3, converted to float;
 * acc[r][t] = fma(d_w*d_x, lanes, acc[r][t]). Output = hsum8(acc).
 */
AVX2_INLINE void tile_sym(const int type, const int R, const int T, const uint8_t *w, int64_t wrow,
                          int64_t nb, const uint8_t *x, int64_t xstride, float *y, int64_t ystride) {
    const int wbs = type == AKK_Q8_0 ? 34 : 18;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[AKK_TILE_R][AKK_TILE_T];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i wq[AKK_TILE_R], wa[AKK_TILE_R];
        __m256 wd[AKK_TILE_R];
        for (int r = 0; r < R; r++) {
            const uint8_t *wb = w + r * wrow + b * wbs;
            wd[r] = _mm256_set1_ps(h2f(wb));
            if (type == AKK_Q8_0)
                wq[r] = _mm256_loadu_si256((const __m256i *)(wb + 2));
            else
                wq[r] = _mm256_sub_epi8(unpack_nibbles(wb + 2), _mm256_set1_epi8(8));
            wa[r] = _mm256_sign_epi8(wq[r], wq[r]);
        }
        for (int t = 0; t < T; t++) {
            const uint8_t *xb = x + t * xstride + b * 34;
            const __m256 xd = _mm256_set1_ps(h2f(xb));
            const __m256i xq = _mm256_loadu_si256((const __m256i *)(xb + 2));
            for (int r = 0; r < R; r++) {
                const __m256i p16 = _mm256_maddubs_epi16(wa[r], _mm256_sign_epi8(xq, wq[r]));
                const __m256 q = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
                acc[r][t] = _mm256_fmadd_ps(_mm256_mul_ps(wd[r], xd), q, acc[r][t]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) y[t * ystride + r] = hsum8(acc[r][t]);
}

/*
 * Q4_1 weights {d, m, qs[16]} x Q8_1 activations {d, s, qs[32]}: nibbles are unsigned, so maddubs
 * takes them directly; lanes as in tile_sym; summs[r][t] = fma(m_w, s_x, summs[r][t]);
 * output = hsum8(acc) + summs.
 */
AVX2_INLINE void tile_q4_1(const int R, const int T, const uint8_t *w, int64_t wrow, int64_t nb,
                           const uint8_t *x, int64_t xstride, float *y, int64_t ystride) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[AKK_TILE_R][AKK_TILE_T];
    float summs[AKK_TILE_R][AKK_TILE_T];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) { acc[r][t] = _mm256_setzero_ps(); summs[r][t] = 0.0f; }
    for (int64_t b = 0; b < nb; b++) {
        __m256i wq[AKK_TILE_R];
        __m256 wd[AKK_TILE_R];
        float wm[AKK_TILE_R];
        for (int r = 0; r < R; r++) {
            const uint8_t *wb = w + r * wrow + b * 20;
            wd[r] = _mm256_set1_ps(h2f(wb));
            wm[r] = h2f(wb + 2);
            wq[r] = unpack_nibbles(wb + 4);
        }
        for (int t = 0; t < T; t++) {
            const uint8_t *xb = x + t * xstride + b * 36;
            const __m256 xd = _mm256_set1_ps(h2f(xb));
            const float xs = h2f(xb + 2);
            const __m256i xq = _mm256_loadu_si256((const __m256i *)(xb + 4));
            for (int r = 0; r < R; r++) {
                summs[r][t] = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(wm[r]), _mm_set_ss(xs), _mm_set_ss(summs[r][t])));
                const __m256 q = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(wq[r], xq), ones));
                acc[r][t] = _mm256_fmadd_ps(_mm256_mul_ps(wd[r], xd), q, acc[r][t]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) y[t * ystride + r] = hsum8(acc[r][t]) + summs[r][t];
}

/* ---- f32: ggml_vec_dot_f32's order (4 x 8 lanes, steps of 32, fma tail); see quant.c ---- */

AVX2_FN float dot_f32(int64_t n, const float *w, const float *x) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    const int64_t np = n & ~(int64_t)31;
    for (int64_t i = 0; i < np; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
    }
    const __m256 a = _mm256_add_ps(_mm256_add_ps(a0, a2), _mm256_add_ps(a1, a3));
    const __m128 t = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    const __m128 h = _mm_hadd_ps(t, t);
    float s = _mm_cvtss_f32(_mm_hadd_ps(h, h));
    for (int64_t i = np; i < n; i++)
        s = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(w[i]), _mm_set_ss(x[i]), _mm_set_ss(s)));
    return s;
}

/* ---- tile dispatch with compile-time tile shapes ---- */

#define TILE_CASES(CALL)                                                                           \
    switch (R * 8 + T) {                                                                           \
    case 1 * 8 + 1: CALL(1, 1); break;                                                             \
    case 1 * 8 + 2: CALL(1, 2); break;                                                             \
    case 2 * 8 + 1: CALL(2, 1); break;                                                             \
    case 2 * 8 + 2: CALL(2, 2); break;                                                             \
    case 3 * 8 + 1: CALL(3, 1); break;                                                             \
    case 3 * 8 + 2: CALL(3, 2); break;                                                             \
    case 4 * 8 + 1: CALL(4, 1); break;                                                             \
    case 4 * 8 + 2: CALL(4, 2); break;                                                             \
    default: break;                                                                                \
    }

#if AKK_TILE_R != 4 || AKK_TILE_T != 2
#error "TILE_CASES enumerates the 4x2 tile shapes"
#endif

AVX2_FN void tile_q8_0_any(int R, int T, const uint8_t *w, int64_t wrow, int64_t nb,
                           const uint8_t *x, int64_t xs, float *y, int64_t ys) {
#define CALL_Q8_0(r, t) tile_sym(AKK_Q8_0, r, t, w, wrow, nb, x, xs, y, ys)
    TILE_CASES(CALL_Q8_0)
}

AVX2_FN void tile_q4_0_any(int R, int T, const uint8_t *w, int64_t wrow, int64_t nb,
                           const uint8_t *x, int64_t xs, float *y, int64_t ys) {
#define CALL_Q4_0(r, t) tile_sym(AKK_Q4_0, r, t, w, wrow, nb, x, xs, y, ys)
    TILE_CASES(CALL_Q4_0)
}

AVX2_FN void tile_q4_1_any(int R, int T, const uint8_t *w, int64_t wrow, int64_t nb,
                           const uint8_t *x, int64_t xs, float *y, int64_t ys) {
#define CALL_Q4_1(r, t) tile_q4_1(r, t, w, wrow, nb, x, xs, y, ys)
    TILE_CASES(CALL_Q4_1)
}

typedef void (*tile_fn)(int R, int T, const uint8_t *w, int64_t wrow, int64_t nb,
                        const uint8_t *x, int64_t xs, float *y, int64_t ys);

/* Rows [r0, r1) x all tokens: token chunks outermost, then row tiles, then token tiles. */
static void rows_tiled(tile_fn tile, const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1,
                       int64_t n_in, const uint8_t *X, int64_t xstride, int64_t n_tok,
                       float *Y, int64_t ystride) {
    const int64_t nb = n_in / 32;
    for (int64_t c0 = 0; c0 < n_tok; c0 += TOK_CHUNK) {
        const int64_t c1 = c0 + TOK_CHUNK < n_tok ? c0 + TOK_CHUNK : n_tok;
        for (int64_t r = r0; r < r1; r += AKK_TILE_R) {
            const int R = (int)(r1 - r < AKK_TILE_R ? r1 - r : AKK_TILE_R);
            for (int64_t t = c0; t < c1; t += AKK_TILE_T) {
                const int T = (int)(c1 - t < AKK_TILE_T ? c1 - t : AKK_TILE_T);
                tile(R, T, W + r * wrow, wrow, nb, X + t * xstride, xstride, Y + t * ystride + r, ystride);
            }
        }
    }
}

static void rows_q8_0(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                      const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    rows_tiled(tile_q8_0_any, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}
static void rows_q4_0(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                      const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    rows_tiled(tile_q4_0_any, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}
static void rows_q4_1(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                      const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    rows_tiled(tile_q4_1_any, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}

static void rows_f32(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                     const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    for (int64_t o = r0; o < r1; o++)
        for (int64_t t = 0; t < n_tok; t++)
            Y[t * ys + o] = dot_f32(n_in, (const float *)(W + o * wrow), (const float *)(X + t * xs));
}

static float vec_dot(int wtype, int64_t n, const void *w, const void *x) {
    float y = 0.0f;
    switch (wtype) {
    case AKK_F32: return dot_f32(n, (const float *)w, (const float *)x);
    case AKK_Q8_0: tile_q8_0_any(1, 1, (const uint8_t *)w, 0, n / 32, (const uint8_t *)x, 0, &y, 0); break;
    case AKK_Q4_0: tile_q4_0_any(1, 1, (const uint8_t *)w, 0, n / 32, (const uint8_t *)x, 0, &y, 0); break;
    case AKK_Q4_1: tile_q4_1_any(1, 1, (const uint8_t *)w, 0, n / 32, (const uint8_t *)x, 0, &y, 0); break;
    default: break;
    }
    return y;
}

/* ---- bandwidth probe: stream `bytes` through 4 independent 256-bit accumulators ---- */

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
    .dot = vec_dot,
    .rows_f32 = rows_f32,
    .rows_q8_0 = rows_q8_0,
    .rows_q4_0 = rows_q4_0,
    .rows_q4_1 = rows_q4_1,
    .fp16_to_fp32_row = fp16_to_fp32_row,
    .fp32_to_fp16_row = fp32_to_fp16_row,
    .read_bytes = read_bytes,
};

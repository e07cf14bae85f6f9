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
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include "akk_avx2.h"
#include <stdlib.h>

/* Register tiles (rows x tokens, one 8-lane accumulator each) and the token chunk whose
 * activations stay in L2 while a thread's row tiles pass over them. Per (row, token, block) the
 * kernel needs ~6 vector ops (maddubs, madd, cvt, fma, sign or sub, and the scale product)
 * whatever the tile, so tiles mainly amortise the weight-side work (unpack, |w|, scale). Measured
 * on Zen 3, 1 thread, in-cache, 64 tokens, with prefill scales unpacked to floats (GMAC/s):
 * Q8_0 2x4 48 (2x2 45, 4x1 42, 4x2 37), Q4_0 3x2 46 (2x2 43, 4x1 42), Q4_1 2x2 41 (4x1 38);
 * before unpacking the scales every shape gave 36-39. Decode (n_tok = 1) uses 4x1 and is bound
 * by memory bandwidth (~39 GB/s of Q8_0 weights per core in cache, ~21-23 for Q4_0/Q4_1). */
#define TILE_MAX 4
#define TOK_CHUNK 64


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

/* fp16 -> fp32 of every half (filled by akk_avx2_prepare before the AVX2 set is published). A
 * broadcast from this table costs one load and no vector ALU op, unlike vcvtph2ps on a scalar. */
static float fp16_lut[65536];

void akk_avx2_prepare(void) {
    for (int h = 0; h < 65536; h++) fp16_lut[h] = akk_fp16_to_fp32((uint16_t)h);
}

static inline float lut(const uint8_t *p) { return fp16_lut[akk_load_u16(p)]; }

/* 16 packed bytes -> 32 bytes: low nibbles (elements 0..15), then high nibbles (16..31).
 * Broadcast the 16 bytes to both halves, shift the upper half right by 4, mask. */
AVX2_INLINE __m256i unpack_nibbles(const uint8_t *qs) {
    const __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
    const __m256i s = _mm256_srlv_epi32(b, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
    return _mm256_and_si256(s, _mm256_set1_epi8(0x0f));
}

/* 8 int32 lanes, lane l = sum of u[j]*x[j] over j in 4l..4l+3 (u unsigned bytes, x signed; exact
 * while pair sums fit int16: true for nibbles u <= 15, and for the sign trick's u = |w| <= 128
 * with |x| <= 127). */
AVX2_INLINE __m256i lanes_u8s8(__m256i u, __m256i x) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1));
}

/*
 * One register tile: R weight rows x T tokens, one 8-lane accumulator per (row, token).
 * Per block the integer lane sums are exact and equal to the scalar reference's:
 *   Q8_0 {d, int8 qs[32]}:   maddubs(|w|, x signed by w)            = sum w*x
 *   Q4_0 {d, uint8 qs[16]}:  maddubs(nibble, x) - 8*sum(x) per lane  = sum (nibble-8)*x
 *   Q4_1 {d, m, uint8 qs[16]} x Q8_1 {d, s, qs}: maddubs(nibble, x)  = sum nibble*x,
 *                            plus summs[r][t] = fma(m_w, s_x, summs[r][t])
 * then acc[r][t] = fma(d_w*d_x, (float)lanes, acc[r][t]); output hsum8(acc) (+ summs).
 *
 * The scale product d_w*d_x (a float multiply) comes either from the fp16 table per block
 * (PRE = 0), or (PRE = 1, prefill) from float scales the caller unpacked once: wsc[r*scs + b]
 * and xsc[t*scs + b], padded to a multiple of 8 blocks, so one vector multiply yields the
 * products of 8 blocks for a (row, token) pair and the block loop only broadcasts them.
 */
AVX2_INLINE void tile(const int type, const int PRE, const int R, const int T, const uint8_t *w,
                      int64_t wrow, int64_t nb, const uint8_t *x, int64_t xstride, float *y,
                      int64_t ystride, int64_t yrow, const float *wsc, const float *xsc, int64_t scs) {
    const int wbs = type == AKK_Q8_0 ? 34 : type == AKK_Q4_0 ? 18 : 20;
    const int xbs = type == AKK_Q4_1 ? 36 : 34, xoff = xbs - 32;
    __m256 acc[TILE_MAX][TILE_MAX];
    float summs[TILE_MAX][TILE_MAX];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) { acc[r][t] = _mm256_setzero_ps(); summs[r][t] = 0.0f; }
    for (int64_t b0 = 0; b0 < nb; b0 += 8) {
        float dp[TILE_MAX][TILE_MAX][8] __attribute__((aligned(32)));
        if (PRE)
            for (int r = 0; r < R; r++)
                for (int t = 0; t < T; t++)
                    _mm256_store_ps(dp[r][t], _mm256_mul_ps(_mm256_loadu_ps(wsc + r * scs + b0),
                                                            _mm256_loadu_ps(xsc + t * scs + b0)));
        const int64_t b1 = b0 + 8 < nb ? b0 + 8 : nb;
        for (int64_t b = b0; b < b1; b++) {
            __m256i wq[TILE_MAX], wa[TILE_MAX];
            __m256 wd[TILE_MAX];
            for (int r = 0; r < R; r++) {
                const uint8_t *wb = w + r * wrow + b * wbs;
                if (!PRE) wd[r] = _mm256_set1_ps(lut(wb));
                if (type == AKK_Q8_0) {
                    wq[r] = _mm256_loadu_si256((const __m256i *)(wb + 2));
                    wa[r] = _mm256_sign_epi8(wq[r], wq[r]);
                } else {
                    wq[r] = unpack_nibbles(wb + (type == AKK_Q4_0 ? 2 : 4));
                }
            }
            for (int t = 0; t < T; t++) {
                const uint8_t *xb = x + t * xstride + b * xbs;
                const __m256 xd = PRE ? _mm256_setzero_ps() : _mm256_set1_ps(lut(xb));
                const __m256i xq = _mm256_loadu_si256((const __m256i *)(xb + xoff));
                __m256i xsum8 = _mm256_setzero_si256();
                if (type == AKK_Q4_0) xsum8 = lanes_u8s8(_mm256_set1_epi8(8), xq);
                for (int r = 0; r < R; r++) {
                    __m256i li;
                    if (type == AKK_Q8_0) {
                        li = lanes_u8s8(wa[r], _mm256_sign_epi8(xq, wq[r]));
                    } else if (type == AKK_Q4_0) {
                        li = _mm256_sub_epi32(lanes_u8s8(wq[r], xq), xsum8);
                    } else {
                        li = lanes_u8s8(wq[r], xq);
                        const float m = lut(w + r * wrow + b * wbs + 2), s = lut(xb + 2);
                        summs[r][t] = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(m), _mm_set_ss(s), _mm_set_ss(summs[r][t])));
                    }
                    const __m256 d = PRE ? _mm256_set1_ps(dp[r][t][b - b0]) : _mm256_mul_ps(wd[r], xd);
                    acc[r][t] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(li), acc[r][t]);
                }
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            y[t * ystride + r * yrow] = type == AKK_Q4_1 ? hsum8(acc[r][t]) + summs[r][t] : hsum8(acc[r][t]);
}

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
#define LOAD_F32(p) _mm256_loadu_ps(p)
#define LOAD_F16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))

/* GGML_F32x8_REDUCE's last steps (akk_reduce_4x8_ref's order): lo + hi, then two hadds. */
AVX2_INLINE float reduce_4x8(__m256 a) {
    const __m128 t = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    const __m128 h = _mm_hadd_ps(t, t);
    return _mm_cvtss_f32(_mm_hadd_ps(h, h));
}

/* The tails past the steps of 32: dot_f32's fma chain; ggml_vec_dot_f16's sum in double of
 * products rounded to float. */
AVX2_INLINE float tail_f32(float s, const float *w, const float *x, int64_t np, int64_t n) {
    for (int64_t i = np; i < n; i++) s = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(w[i]), _mm_set_ss(x[i]), _mm_set_ss(s)));
    return s;
}

AVX2_INLINE float tail_f16(float s, const uint16_t *w, const uint16_t *x, int64_t np, int64_t n) {
    double sum = (double)s;
    for (int64_t i = np; i < n; i++) sum += (double)(_cvtsh_ss(w[i]) * _cvtsh_ss(x[i]));
    return (float)sum;
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

/* ---- decode attention: four dots at a time ----
 * Each dot keeps ACC_4X8's lanes; the four 8-lane results are reduced together: [lo+hi] of two
 * dots per register, then two hadds, which pair the lanes exactly as reduce_4x8 does for one.
 * A decode dot of one head is 64-128 elements, so one at a time the call and the reduction's
 * latency cost more than its 8-16 fmas. Scalar reference: the single dots in ops.c (dots_cache). */

/* [reduce_4x8(A), reduce_4x8(B), reduce_4x8(C), reduce_4x8(D)] */
AVX2_INLINE __m128 reduce_4x4x8(__m256 A, __m256 B, __m256 C, __m256 D) {
    const __m256 ab = _mm256_add_ps(_mm256_permute2f128_ps(A, B, 0x20), _mm256_permute2f128_ps(A, B, 0x31));
    const __m256 cd = _mm256_add_ps(_mm256_permute2f128_ps(C, D, 0x20), _mm256_permute2f128_ps(C, D, 0x31));
    const __m256 h = _mm256_hadd_ps(ab, cd);
    const __m256 h2 = _mm256_hadd_ps(h, h); /* lane 0: A C A C, lane 1: B D B D */
    return _mm_unpacklo_ps(_mm256_castps256_ps128(h2), _mm256_extractf128_ps(h2, 1));
}

/* out[i] = TAIL(reduced dot of a[i], b[i]) * scale for i < m, four at a time; T the element type. */
#define ATTN_DOTS(T, LOAD, TAIL)                                                                   \
    const int64_t np = n & ~(int64_t)31;                                                           \
    for (int i = 0; i < m; i += 4) {                                                               \
        __m256 v[4];                                                                               \
        for (int r = 0; r < 4; r++) {                                                              \
            v[r] = _mm256_setzero_ps();                                                            \
            if (i + r < m) {                                                                       \
                const T *w = a[i + r], *x = b[i + r];                                              \
                ACC_4X8(LOAD, w, x, np, v[r]);                                                     \
            }                                                                                      \
        }                                                                                          \
        float s[4];                                                                                \
        _mm_storeu_ps(s, reduce_4x4x8(v[0], v[1], v[2], v[3]));                                    \
        for (int r = 0; r < 4 && i + r < m; r++) out[i + r] = TAIL(s[r], a[i + r], b[i + r], np, n) * scale; \
    }

__attribute__((target("avx2,fma,f16c")))
void akk_attn_dots_f32_avx2(int64_t n, int m, const float *const *a, const float *const *b, float scale, float *out) {
    ATTN_DOTS(float, LOAD_F32, tail_f32)
}

__attribute__((target("avx2,fma,f16c")))
void akk_attn_dots_f16_avx2(int64_t n, int m, const uint16_t *const *a, const uint16_t *const *b, float scale, float *out) {
    ATTN_DOTS(uint16_t, LOAD_F16, tail_f16)
}

/* ---- tile dispatch with compile-time tile shapes ---- */

#define TILE_ROW(CALL, r)                                                                          \
    case r * 8 + 1: CALL(r, 1); break;                                                             \
    case r * 8 + 2: CALL(r, 2); break;                                                             \
    case r * 8 + 3: CALL(r, 3); break;                                                             \
    case r * 8 + 4: CALL(r, 4); break;
#define TILE_CASES(CALL)                                                                           \
    switch (R * 8 + T) {                                                                           \
    TILE_ROW(CALL, 1) TILE_ROW(CALL, 2) TILE_ROW(CALL, 3) TILE_ROW(CALL, 4)                        \
    default: break;                                                                                \
    }

#if TILE_MAX != 4
#error "TILE_CASES enumerates tiles up to 4x4"
#endif

/* Tiles of any shape up to TILE_MAX x TILE_MAX; wsc == NULL selects the per-block table path. */
#define CALL_TILE(r, t)                                                                            \
    (wsc ? tile(TYPE, 1, r, t, w, wrow, nb, x, xs, y, ys, yr, wsc, xsc, scs)                       \
         : tile(TYPE, 0, r, t, w, wrow, nb, x, xs, y, ys, yr, 0, 0, 0))

#define TYPE AKK_Q8_0
AVX2_FN void tile_q8_0_any(int R, int T, const uint8_t *w, int64_t wrow, int64_t nb, const uint8_t *x,
                           int64_t xs, float *y, int64_t ys, int64_t yr, const float *wsc,
                           const float *xsc, int64_t scs) {
    TILE_CASES(CALL_TILE)
}
#undef TYPE
#define TYPE AKK_Q4_0
AVX2_FN void tile_q4_0_any(int R, int T, const uint8_t *w, int64_t wrow, int64_t nb, const uint8_t *x,
                           int64_t xs, float *y, int64_t ys, int64_t yr, const float *wsc,
                           const float *xsc, int64_t scs) {
    TILE_CASES(CALL_TILE)
}
#undef TYPE
#define TYPE AKK_Q4_1
AVX2_FN void tile_q4_1_any(int R, int T, const uint8_t *w, int64_t wrow, int64_t nb, const uint8_t *x,
                           int64_t xs, float *y, int64_t ys, int64_t yr, const float *wsc,
                           const float *xsc, int64_t scs) {
    TILE_CASES(CALL_TILE)
}
#undef TYPE

typedef void (*tile_fn)(int R, int T, const uint8_t *w, int64_t wrow, int64_t nb, const uint8_t *x,
                        int64_t xs, float *y, int64_t ys, int64_t yr, const float *wsc,
                        const float *xsc, int64_t scs);

/* Rows [r0, r1) x all tokens. The range is cut into tr equal parts and a row tile takes row i of
 * every part, so each of its tr weight streams is one long sequential read (tr short interleaved
 * streams from adjacent rows defeat the hardware prefetcher: decode was 2x slower from DRAM).
 * Decode (n_tok = 1) uses TILE_MAX x 1 tiles with table scales. Prefill: token chunks of
 * TOK_CHUNK (their activations stay in L2) whose block scales are unpacked to floats once, then
 * row tiles (their scales unpacked once per chunk), then token tiles of tt tokens; leftover rows
 * (fewer than tr) and tokens use smaller tiles. wbs/xbs: weight/activation block bytes. */
static void rows_tiled(tile_fn tile, int wbs, int xbs, int tr, int tt, const uint8_t *W,
                       int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X,
                       int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    const int64_t nb = n_in / 32, scs = (nb + 7) & ~(int64_t)7;
    float *xsc = NULL, *wsc = NULL;
    if (n_tok == 1) {
        tr = TILE_MAX, tt = 1;
    } else if (n_tok >= 8) { /* fewer tokens do not repay unpacking the scales */
        xsc = calloc((size_t)(TOK_CHUNK + TILE_MAX) * (size_t)scs, sizeof(float));
        wsc = xsc ? xsc + TOK_CHUNK * scs : NULL; /* without scratch: the table path */
    }
    const int64_t part = (r1 - r0) / tr, rest = r0 + tr * part;
    for (int64_t c0 = 0; c0 < n_tok; c0 += TOK_CHUNK) {
        const int64_t c1 = c0 + TOK_CHUNK < n_tok ? c0 + TOK_CHUNK : n_tok;
        if (xsc)
            for (int64_t t = c0; t < c1; t++)
                for (int64_t b = 0; b < nb; b++) xsc[(t - c0) * scs + b] = lut(X + t * xstride + b * xbs);
        for (int64_t i = 0; i < part + (r1 - rest); i++) {
            /* Row tile i: row i of each part, or one leftover row once the parts are done. */
            const int R = i < part ? tr : 1;
            const int64_t r = i < part ? r0 + i : rest + (i - part);
            const int64_t rstride = i < part ? part * wrow : wrow;
            if (wsc)
                for (int k = 0; k < R; k++)
                    for (int64_t b = 0; b < nb; b++) wsc[k * scs + b] = lut(W + r * wrow + k * rstride + b * wbs);
            for (int64_t t = c0; t < c1; t += tt) {
                const int T = (int)(c1 - t < tt ? c1 - t : tt);
                tile(R, T, W + r * wrow, rstride, nb, X + t * xstride, xstride, Y + t * ystride + r, ystride,
                     i < part ? part : 1, wsc, xsc ? xsc + (t - c0) * scs : NULL, scs);
            }
        }
    }
    free(xsc);
}

static void rows_q8_0(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                      const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    rows_tiled(tile_q8_0_any, 34, 34, 2, 4, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}
static void rows_q4_0(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                      const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    rows_tiled(tile_q4_0_any, 18, 34, 3, 2, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}
static void rows_q4_1(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                      const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    rows_tiled(tile_q4_1_any, 20, 36, 2, 2, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}

static void rows_f32(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                     const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    for (int64_t o = r0; o < r1; o++)
        for (int64_t t = 0; t < n_tok; t++)
            Y[t * ys + o] = dot_f32(n_in, (const float *)(W + o * wrow), (const float *)(X + t * xs));
}


/* ---- Q4_0 repacked in groups of 8 rows (layout and numerics: repack.c) ---- */

AVX2_INLINE __m256i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* The 8 rows of one group x T tokens over all nb blocks. xd[t*scs + b]: the activation scale of
 * token t, block b, as float; xs8[t*scs + b]: 8 * (sum of its 32 quants) (the -8 offset of the
 * nibbles, taken out once per block). Output: y[t*ystride + i], rows i = 0..7 of the group. */
AVX2_INLINE void r8_tile(const int T, const uint8_t *grp, int64_t nb, const uint8_t *x, int64_t xstride,
                         const float *xd, const int32_t *xs8, int64_t scs, float *y, int64_t ystride) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    __m256 acc[4];
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = grp + b * 144;
        const __m256 ws = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk));
        __m256i w[8];
        for (int m = 0; m < 4; m++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * m));
            w[2 * m] = _mm256_and_si256(v, m4);
            w[2 * m + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        }
        for (int t = 0; t < T; t++) {
            const int8_t *q = (const int8_t *)(x + t * xstride + b * 34 + 2);
            /* int16 pair sums: |15*127*2| * 8 chunks = 30480 < 32768, exact */
            __m256i p = _mm256_maddubs_epi16(w[0], bcast4(q));
            p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w[1], bcast4(q + 16)));
            p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w[2], bcast4(q + 4)));
            p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w[3], bcast4(q + 20)));
            p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w[4], bcast4(q + 8)));
            p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w[5], bcast4(q + 24)));
            p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w[6], bcast4(q + 12)));
            p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w[7], bcast4(q + 28)));
            const __m256i isum = _mm256_sub_epi32(_mm256_madd_epi16(p, ones), _mm256_set1_epi32(xs8[t * scs + b]));
            const __m256 d = _mm256_mul_ps(ws, _mm256_set1_ps(xd[t * scs + b]));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc[t]);
        }
    }
    for (int t = 0; t < T; t++) _mm256_storeu_ps(y + t * ystride, acc[t]);
}

/* Decode: two groups from two distant places at once (ya, yb: their 8 outputs). Two sequential
 * weight streams per core keep more reads in flight than one; the values are r8_tile's. */
AVX2_FN void r8_decode2(const uint8_t *ga, const uint8_t *gb, int64_t nb, const uint8_t *x,
                        const float *xd, const int32_t *xs8, float *ya, float *yb) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    __m256 acca = _mm256_setzero_ps(), accb = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *ba = ga + b * 144, *bb = gb + b * 144;
        const int8_t *q = (const int8_t *)(x + b * 34 + 2);
        __m256i pa = _mm256_setzero_si256(), pb = _mm256_setzero_si256();
        for (int m = 0; m < 4; m++) {
            const __m256i xl = bcast4(q + 4 * m), xh = bcast4(q + 16 + 4 * m);
            const __m256i va = _mm256_loadu_si256((const __m256i *)(ba + 16 + 32 * m));
            const __m256i vb = _mm256_loadu_si256((const __m256i *)(bb + 16 + 32 * m));
            pa = _mm256_add_epi16(pa, _mm256_maddubs_epi16(_mm256_and_si256(va, m4), xl));
            pb = _mm256_add_epi16(pb, _mm256_maddubs_epi16(_mm256_and_si256(vb, m4), xl));
            pa = _mm256_add_epi16(pa, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(va, 4), m4), xh));
            pb = _mm256_add_epi16(pb, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(vb, 4), m4), xh));
        }
        const __m256i s8 = _mm256_set1_epi32(xs8[b]);
        const __m256 dx = _mm256_set1_ps(xd[b]);
        const __m256i ia = _mm256_sub_epi32(_mm256_madd_epi16(pa, ones), s8);
        const __m256i ib = _mm256_sub_epi32(_mm256_madd_epi16(pb, ones), s8);
        acca = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia), _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)ba)), dx), acca);
        accb = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ib), _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)bb)), dx), accb);
    }
    _mm256_storeu_ps(ya, acca);
    _mm256_storeu_ps(yb, accb);
}

AVX2_FN void r8_tile_any(int T, const uint8_t *grp, int64_t nb, const uint8_t *x, int64_t xstride,
                         const float *xd, const int32_t *xs8, int64_t scs, float *y, int64_t ystride) {
    switch (T) {
    case 1: r8_tile(1, grp, nb, x, xstride, xd, xs8, scs, y, ystride); break;
    case 2: r8_tile(2, grp, nb, x, xstride, xd, xs8, scs, y, ystride); break;
    case 3: r8_tile(3, grp, nb, x, xstride, xd, xs8, scs, y, ystride); break;
    default: r8_tile(4, grp, nb, x, xstride, xd, xs8, scs, y, ystride); break;
    }
}

/* Block scale (float) and 8 * block sum of one token's Q8_0 activations. */
AVX2_FN void r8_prepare(const uint8_t *x, int64_t nb, float *xd, int32_t *xs8) {
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *xb = x + b * 34;
        xd[b] = lut(xb);
        const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, _mm256_loadu_si256((const __m256i *)(xb + 2))), ones16);
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        s4 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 1));
        xs8[b] = 8 * _mm_cvtsi128_si32(s4);
    }
}

/* Rows [r0, r1) (multiples of 8) x all tokens. Tokens go in chunks of TOK_CHUNK whose scales and
 * sums are prepared once; per group of 8 rows, token tiles of 4 pass over the group's weights
 * (8 rows x n_in/2 bytes, in L1/L2). Decode reads each group once, one sequential stream. */
static void rows_q4_0_r8(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                         const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    const int64_t nb = n_in / 32;
    const int64_t chunk = n_tok < TOK_CHUNK ? n_tok : TOK_CHUNK;
    float xd_small[1024];
    int32_t xs_small[1024];
    float *xd = xd_small;
    int32_t *xs = xs_small;
    if (chunk * nb > 1024) {
        xd = malloc((size_t)(chunk * nb) * (sizeof(float) + sizeof(int32_t)));
        if (!xd) { /* no scratch: the scalar reference gives the same values */
            akk_rows_q4_0_r8_scalar(W, wrow, r0, r1, n_in, X, xstride, n_tok, Y, ystride);
            return;
        }
        xs = (int32_t *)(xd + chunk * nb);
    }
    for (int64_t c0 = 0; c0 < n_tok; c0 += chunk) {
        const int64_t c1 = c0 + chunk < n_tok ? c0 + chunk : n_tok;
        for (int64_t t = c0; t < c1; t++) r8_prepare(X + t * xstride, nb, xd + (t - c0) * nb, xs + (t - c0) * nb);
        if (n_tok == 1) { /* decode: group i of each half of the range together, then an odd one */
            const int64_t g0 = r0 / 8, half = (r1 / 8 - g0) / 2;
            for (int64_t i = 0; i < half; i++)
                r8_decode2(W + (g0 + i) * 8 * wrow, W + (g0 + half + i) * 8 * wrow, nb, X, xd, xs,
                           Y + (g0 + i) * 8, Y + (g0 + half + i) * 8);
            if ((r1 / 8 - g0) % 2)
                r8_tile_any(1, W + (r1 / 8 - 1) * 8 * wrow, nb, X, xstride, xd, xs, nb, Y + (r1 / 8 - 1) * 8, ystride);
            continue;
        }
        for (int64_t g = r0 / 8; g < r1 / 8; g++)
            for (int64_t t = c0; t < c1; t += 4) {
                const int T = (int)(c1 - t < 4 ? c1 - t : 4);
                r8_tile_any(T, W + g * 8 * wrow, nb, X + t * xstride, xstride, xd + (t - c0) * nb,
                            xs + (t - c0) * nb, nb, Y + t * ystride + g * 8, ystride);
            }
    }
    if (xd != xd_small) free(xd);
}

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

/* Rows [r0, r1) x tokens of a type without a row kernel of its own: one dot per output. */
void akk_rows_by_dot_avx2(int wtype, const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                          const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    for (int64_t o = r0; o < r1; o++)
        for (int64_t t = 0; t < n_tok; t++) Y[t * ystride + o] = vec_dot(wtype, n_in, W + o * wrow, X + t * xstride);
}

/* ---- bandwidth probe: 4 sequential streams (quarters of the part), as decode reads 4 rows ---- */

AVX2_FN uint64_t read_bytes(const uint8_t *p, size_t bytes) {
    const size_t q = bytes / 4 / 64 * 64;
    const uint8_t *p0 = p, *p1 = p + q, *p2 = p + 2 * q, *p3 = p + 3 * q;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 64 <= q; i += 64) {
        a0 = _mm256_add_epi64(a0, _mm256_add_epi64(_mm256_load_si256((const __m256i *)(p0 + i)), _mm256_load_si256((const __m256i *)(p0 + i + 32))));
        a1 = _mm256_add_epi64(a1, _mm256_add_epi64(_mm256_load_si256((const __m256i *)(p1 + i)), _mm256_load_si256((const __m256i *)(p1 + i + 32))));
        a2 = _mm256_add_epi64(a2, _mm256_add_epi64(_mm256_load_si256((const __m256i *)(p2 + i)), _mm256_load_si256((const __m256i *)(p2 + i + 32))));
        a3 = _mm256_add_epi64(a3, _mm256_add_epi64(_mm256_load_si256((const __m256i *)(p3 + i)), _mm256_load_si256((const __m256i *)(p3 + i + 32))));
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
    .rows_q8_0 = rows_q8_0,
    .rows_q4_0 = rows_q4_0,
    .rows_q4_1 = rows_q4_1,
    .rows_q4_0_r8 = rows_q4_0_r8,
    .rows_iq4_nl = akk_rows_iq4_nl_avx2,
    .rows_iq4_xs = akk_rows_iq4_xs_avx2,
    .rows_mxfp4 = akk_rows_mxfp4_avx2,
    .rows_iq4_nl_x8 = akk_rows_iq4_nl_x8_avx2,
    .rows_mxfp4_x8 = akk_rows_mxfp4_x8_avx2,
    .rows_q5_0 = akk_rows_q5_0_avx2,
    .rows_q5_1 = akk_rows_q5_1_avx2,
    .rows_q2_k = akk_rows_q2_k_avx2,
    .rows_q3_k = akk_rows_q3_k_avx2,
    .rows_q4_k = akk_rows_q4_k_avx2,
    .rows_q5_k = akk_rows_q5_k_avx2,
    .rows_q6_k = akk_rows_q6_k_avx2,
    .rows_dot = akk_rows_by_dot_avx2,
    .fp16_to_fp32_row = fp16_to_fp32_row,
    .fp32_to_fp16_row = fp32_to_fp16_row,
    .read_bytes = read_bytes,
};

/*
 * AVX-512 (F/BW/VL + VNNI) K-quant kernels: the AKK_Q4_K_R8 tiles of akk_kquant_r8.h with
 * vpdpbusd (u8 x s8 dots straight into int32) and vpdpwssd, on 256-bit registers (VL). The
 * integer sums are exact, so the results are the AVX2 and scalar paths' bits. Installed into
 * akk_impl_avx512 by akk_avx512_kquant_prepare (called from akk_avx512_prepare).
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include "akk_avx2.h"
#include <math.h>

#define KR8_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define KR8_FN static __attribute__((target(KR8_TARGET)))
#define KR8_INLINE static inline __attribute__((always_inline, target(KR8_TARGET)))
#define KR8_TT 4

KR8_INLINE __m256i kr8_scale(const uint8_t *p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)); }
/* two independent vpdpbusd chains, then the scale (vpmulld: the dot exceeds int16) */
KR8_INLINE __m256i kr8_sub(__m256i acc, const __m256i w[8], const int8_t *x, __m256i sc) {
    __m256i a = _mm256_dpbusd_epi32(_mm256_setzero_si256(), w[0], bcast4(x));
    __m256i b = _mm256_dpbusd_epi32(_mm256_setzero_si256(), w[1], bcast4(x + 4));
    for (int j = 2; j < 8; j += 2) {
        a = _mm256_dpbusd_epi32(a, w[j], bcast4(x + 4 * j));
        b = _mm256_dpbusd_epi32(b, w[j + 1], bcast4(x + 4 * j + 4));
    }
    return _mm256_add_epi32(acc, _mm256_mullo_epi32(_mm256_add_epi32(a, b), sc));
}
KR8_INLINE __m256i kr8_pairs(__m256i acc, __m256i mp, __m256i bp) { return _mm256_dpwssd_epi32(acc, mp, bp); }
#include "akk_kquant_r8.h"

/* ---- Q6_K x Q8_K: two rows in one 512-bit register ----
 * The AVX2 tile (simd_avx2_kquant.c) spends maddubs + madd + add per 32-byte chunk and token;
 * here the chunks of two rows share a zmm (row A low half, row B high half) and multiply the
 * token's chunk broadcast to both halves with maddubs + vpdpwssd: half the instructions per
 * product. Lanes, scales and float steps per row are those of dot_q6_K (kquant_dot.c): the int32
 * lanes are exact, acc = fma(d_x*d_w, lanes - 32*(scale-weighted bsums), acc), hsum8 at the end. */

#define Q6_BYTES 210

/* vpermw indices: for chunk c, words 0-7 = scale 2c, 8-15 = scale 2c+1 of row A (words 0-15 of
 * the register of both rows' 16 scales), 16-31 the same of row B (words 16-31). */
static short q6_scale_idx[8][32] __attribute__((aligned(64)));

static void q6_prepare(void) {
    for (int c = 0; c < 8; c++)
        for (int k = 0; k < 32; k++) q6_scale_idx[c][k] = (short)(16 * (k / 16) + 2 * c + (k % 16) / 8);
}

/* 32 bytes at a (low half) and b (high half). */
KR8_INLINE __m512i pair256(const uint8_t *a, const uint8_t *b) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a)),
                              _mm256_loadu_si256((const __m256i *)b), 1);
}

/* Rows wa and wb x T tokens over nb blocks; outputs of token t at ya[t*ys] and yb[t*ys] (yb NULL:
 * row b is a copy of row a, not stored). */
KR8_INLINE void q6_tile(const int T, const uint8_t *wa, const uint8_t *wb, int64_t nb,
                        const uint8_t *x, int64_t xs, float *ya, float *yb, int64_t ys) {
    const __m512i m4 = _mm512_set1_epi8(0x0f), m3 = _mm512_set1_epi8(3);
    __m512 acc[8];
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        {
            const uint8_t *a = wa + b * Q6_BYTES, *bb = wb + b * Q6_BYTES;
            const __m512i s16 = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(a + 192)))),
                _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(bb + 192))), 1);
            __m512i sum[8];
            for (int t = 0; t < T; t++) sum[t] = _mm512_setzero_si512();
            for (int h = 0; h < 2; h++) {
                const __m512i l0 = pair256(a + 64 * h, bb + 64 * h), l1 = pair256(a + 64 * h + 32, bb + 64 * h + 32);
                const __m512i hb = pair256(a + 128 + 32 * h, bb + 128 + 32 * h);
                for (int s = 0; s < 4; s++) {
                    const int c = 4 * h + s;
                    const __m512i lo = s & 1 ? l1 : l0;
                    const __m512i nib = _mm512_and_si512(s < 2 ? lo : _mm512_srli_epi16(lo, 4), m4);
                    const __m512i q = _mm512_or_si512(nib, _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(hb, 2 * s), m3), 4));
                    const __m512i sv = _mm512_permutexvar_epi16(_mm512_load_si512(q6_scale_idx[c]), s16);
                    for (int t = 0; t < T; t++) {
                        const __m512i xq = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(x + t * xs + b * 292 + 4 + 32 * c)));
                        sum[t] = _mm512_dpwssd_epi32(sum[t], _mm512_maddubs_epi16(q, xq), sv);
                    }
                }
            }
            const __m512 dw2 = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(akk_fp16_lut[akk_load_u16(a + 208)]),
                                                    _mm512_set1_ps(akk_fp16_lut[akk_load_u16(bb + 208)]));
            for (int t = 0; t < T; t++) {
                const uint8_t *xb = x + t * xs + b * 292;
                const __m512i bs = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(xb + 260)));
                const __m512i corr = _mm512_slli_epi32(_mm512_madd_epi16(bs, s16), 5);
                const __m512 d = _mm512_mul_ps(_mm512_set1_ps(akk_load_f32(xb)), dw2);
                acc[t] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(_mm512_sub_epi32(sum[t], corr)), acc[t]);
            }
        }
    }
    for (int t = 0; t < T; t++) {
        ya[t * ys] = hsum8(_mm512_castps512_ps256(acc[t]));
        if (yb) yb[t * ys] = hsum8(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[t]), 1)));
    }
}

/* A row-pair tile as akk_tile_fn (R = 2 rows rs bytes apart, or 1: run in both halves, one kept;
 * T in {1, 2, 4, 8}) and its rows_fn in the vec_dot order: tiles 2 x 1 (decode: two streams) and
 * 2 x 8. */
#define PAIR_ROWS(tile_fn, rows_fn, pair_tile)                                                      \
    KR8_FN void tile_fn(int R, int T, const uint8_t *w, int64_t rs, int64_t nb, const uint8_t *x, int64_t xs, \
                        float *y, int64_t ys, int64_t yr) {                                         \
        const uint8_t *wb = R > 1 ? w + rs : w;                                                     \
        float *yb = R > 1 ? y + yr : NULL;                                                          \
        switch (T) {                                                                                \
        case 1: pair_tile(1, w, wb, nb, x, xs, y, yb, ys); break;                                   \
        case 2: pair_tile(2, w, wb, nb, x, xs, y, yb, ys); break;                                   \
        case 4: pair_tile(4, w, wb, nb, x, xs, y, yb, ys); break;                                   \
        default: pair_tile(8, w, wb, nb, x, xs, y, yb, ys); break;                                  \
        }                                                                                           \
    }                                                                                               \
    static void rows_fn(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X, \
                        int64_t xs, int64_t n_tok, float *Y, int64_t ys) {                          \
        akk_rows_tiled_avx2(tile_fn, AKK_QK_K, 2, 2, 8, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys); \
    }

/* The vec_dot order (products of fewer than AKK_TILED_MIN_ROWS rows; the tiled order is in
 * simd_avx512_tiled.c). Zen 4, 1 thread, 1024 x 2048, GMAC/s: 64 tokens 70 (2 x 4: 62, 4 x 4: 64,
 * 4 x 8: 68; AVX2's 1 x 8: 50), 1 token 35 (AVX2: 32). */
PAIR_ROWS(tile_q6_k_avx512, rows_q6_k, q6_tile)

/* ---- Q5_K x Q8_K: two rows in one 512-bit register, as Q6_K ----
 * Per 32-element chunk c and row pair: the nibbles, bit c of each qh byte as a byte mask
 * (vptestmb) that adds 16, maddubs with the token's chunk in both halves, vpdpwssd with the
 * chunk's scale (the AVX2 tile: and/shift/and/or for the high bit, maddubs, madd, add). Lanes and
 * float steps per row are dot_q5_K's (kquant_dot.c): acc = fma(d_x*d_w, lanes, acc), summs =
 * fma(-d_x*dmin_w, (float)M, summs) with M the block's exact mins total; hsum8(acc) + summs. */

#define Q5K_BYTES 176

/* vpermw indices: for chunk c, words 0-15 = scale c of row A (word c of the pair register),
 * 16-31 = scale c of row B (word 16 + c). */
static short q5k_scale_idx[8][32] __attribute__((aligned(64)));

/* A block's 8 scales as words 0-7 of a 256-bit half, and its mins each twice (words for the 16
 * bsums), from akk_k4_scale_words. */
KR8_INLINE __m256i q5k_scales(const uint32_t u[4]) { return _mm256_cvtepu8_epi16(_mm_setr_epi32((int)u[0], (int)u[1], 0, 0)); }
KR8_INLINE __m256i q5k_mins(const uint32_t u[4]) {
    const __m128i m8 = _mm_setr_epi32((int)u[2], (int)u[3], 0, 0);
    return _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
}

KR8_INLINE void q5k_tile(const int T, const uint8_t *wa, const uint8_t *wb, int64_t nb,
                         const uint8_t *x, int64_t xs, float *ya, float *yb, int64_t ys) {
    const __m512i m4 = _mm512_set1_epi8(0x0f), b4 = _mm512_set1_epi8(0x10);
    __m512 acc[8];
    float sa[8], sb[8];
    for (int t = 0; t < T; t++) {
        acc[t] = _mm512_setzero_ps();
        sa[t] = sb[t] = 0.0f;
    }
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *a = wa + b * Q5K_BYTES, *bb = wb + b * Q5K_BYTES;
        uint32_t ua[4], ub[4];
        akk_k4_scale_words(a + 4, ua);
        akk_k4_scale_words(bb + 4, ub);
        const __m512i s16 = _mm512_inserti64x4(_mm512_castsi256_si512(q5k_scales(ua)), q5k_scales(ub), 1);
        const __m512i hb = pair256(a + 16, bb + 16);
        __m512i sum[8];
        for (int t = 0; t < T; t++) sum[t] = _mm512_setzero_si512();
        for (int h = 0; h < 4; h++) {
            const __m512i l = pair256(a + 48 + 32 * h, bb + 48 + 32 * h);
            for (int s = 0; s < 2; s++) {
                const int c = 2 * h + s;
                const __m512i nib = _mm512_and_si512(s ? _mm512_srli_epi16(l, 4) : l, m4);
                const __m512i q = _mm512_mask_add_epi8(nib, _mm512_test_epi8_mask(hb, _mm512_set1_epi8((char)(1 << c))), nib, b4);
                const __m512i sv = _mm512_permutexvar_epi16(_mm512_load_si512(q5k_scale_idx[c]), s16);
                for (int t = 0; t < T; t++) {
                    const __m512i xq = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(x + t * xs + b * 292 + 4 + 32 * c)));
                    sum[t] = _mm512_dpwssd_epi32(sum[t], _mm512_maddubs_epi16(q, xq), sv);
                }
            }
        }
        const float da = akk_fp16_lut[akk_load_u16(a)], dma = akk_fp16_lut[akk_load_u16(a + 2)];
        const float db = akk_fp16_lut[akk_load_u16(bb)], dmb = akk_fp16_lut[akk_load_u16(bb + 2)];
        const __m256i ma = q5k_mins(ua), mb = q5k_mins(ub);
        for (int t = 0; t < T; t++) {
            const uint8_t *xb = x + t * xs + b * 292;
            const float dx = akk_load_f32(xb);
            const __m256i bs = _mm256_loadu_si256((const __m256i *)(xb + 260));
            sa[t] = fmaf(-dx * dma, (float)hsum8_epi32(_mm256_madd_epi16(ma, bs)), sa[t]);
            sb[t] = fmaf(-dx * dmb, (float)hsum8_epi32(_mm256_madd_epi16(mb, bs)), sb[t]);
            const __m512 d = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(dx * da), _mm512_set1_ps(dx * db));
            acc[t] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(sum[t]), acc[t]);
        }
    }
    for (int t = 0; t < T; t++) {
        ya[t * ys] = hsum8(_mm512_castps512_ps256(acc[t])) + sa[t];
        if (yb) yb[t * ys] = hsum8(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[t]), 1))) + sb[t];
    }
}

PAIR_ROWS(tile_q5_k_avx512, rows_q5_k, q5k_tile)

/* ---- Q3_K x Q8_K: two rows in one 512-bit register, as Q6_K ----
 * The quants (-4..3) enter maddubs as unsigned q + 4 (the 2 low bits, + 4 where the hmask bit is
 * set: vptestmb + masked add); maddubs of 4 with the token's chunk, once per token and chunk for
 * the pair, is subtracted from the int16 pair sums, which leaves sum q*x exactly (the AVX2 tile
 * gets the same words from maddubs(|q|, x signed by q)); then vpdpwssd with the 16-element
 * scales (Q6_K's index table). Float steps per row are dot_q3_K's: acc = fma(d_x*d_w, lanes, acc),
 * hsum8. */

#define Q3K_BYTES 110

KR8_INLINE void q3k_tile(const int T, const uint8_t *wa, const uint8_t *wb, int64_t nb,
                         const uint8_t *x, int64_t xs, float *ya, float *yb, int64_t ys) {
    const __m512i m3 = _mm512_set1_epi8(3), b4 = _mm512_set1_epi8(4);
    __m512 acc[8];
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *a = wa + b * Q3K_BYTES, *bb = wb + b * Q3K_BYTES;
        const __m512i s16 = _mm512_inserti64x4(_mm512_castsi256_si512(akk_q3_k_scales16(a + 96)), akk_q3_k_scales16(bb + 96), 1);
        const __m512i hm = pair256(a, bb);
        __m512i sum[8];
        for (int t = 0; t < T; t++) sum[t] = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++) {
            const __m512i l = pair256(a + 32 + 32 * h, bb + 32 + 32 * h);
            for (int s = 0; s < 4; s++) {
                const int c = 4 * h + s;
                const __m512i lo = _mm512_and_si512(_mm512_srli_epi16(l, 2 * s), m3);
                const __m512i u = _mm512_mask_add_epi8(lo, _mm512_test_epi8_mask(hm, _mm512_set1_epi8((char)(1 << c))), lo, b4);
                const __m512i sv = _mm512_permutexvar_epi16(_mm512_load_si512(q6_scale_idx[c]), s16);
                for (int t = 0; t < T; t++) {
                    const __m512i xq = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(x + t * xs + b * 292 + 4 + 32 * c)));
                    const __m512i p = _mm512_sub_epi16(_mm512_maddubs_epi16(u, xq), _mm512_maddubs_epi16(b4, xq));
                    sum[t] = _mm512_dpwssd_epi32(sum[t], p, sv);
                }
            }
        }
        const float da = akk_fp16_lut[akk_load_u16(a + 108)], db = akk_fp16_lut[akk_load_u16(bb + 108)];
        for (int t = 0; t < T; t++) {
            const float dx = akk_load_f32(x + t * xs + b * 292);
            const __m512 d = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(dx * da), _mm512_set1_ps(dx * db));
            acc[t] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(sum[t]), acc[t]);
        }
    }
    for (int t = 0; t < T; t++) {
        ya[t * ys] = hsum8(_mm512_castps512_ps256(acc[t]));
        if (yb) yb[t * ys] = hsum8(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[t]), 1)));
    }
}

PAIR_ROWS(tile_q3_k_avx512, rows_q3_k, q3k_tile)

void akk_avx512_kquant_prepare(struct akk_impl *impl) {
    impl->rows_q3_k = rows_q3_k;
    q6_prepare();
    for (int c = 0; c < 8; c++)
        for (int k = 0; k < 32; k++) q5k_scale_idx[c][k] = (short)(16 * (k / 16) + c);
    impl->rows_q5_k = rows_q5_k;
    impl->rows_q4_k_r8 = rows_q4_k_r8;
    impl->rows_q4_k_r8_dense = rows_q4_k_r8_dense;
    impl->rows_q6_k = rows_q6_k;
}

/*
 * AVX-512 (F/BW/VL + VNNI) prefill kernels of the 8-row views IQ4_NL_X8 and MXFP4_X8 (x Q8_0).
 * Same float operations as the scalar references (iq4mx.c), so the results are bit-identical to them and to the AVX2 kernels (simd_avx2_iq4mx.c); only the exact integer sums
 * are formed differently.
 *
 * _X8: groups of 8 adjacent rows. Per block the 16 packed bytes of the 8 rows are transposed on
 *   the fly (two vpermt2d) so that one 32-byte register holds elements 4m..4m+3 of all 8 rows, as
 *   in the repacked Q4_0 layout (repack.c); the grid is looked up biased by +128 (unsigned), and
 *   vpdpbusd with 4 broadcast activation bytes accumulates each row's block sum in its own lane,
 *   starting from -128 * (sum of the block's activation quants): lane k = the exact block sum of
 *   row k, without horizontal adds. The 8 rows' float chains then run in one register as in
 *   llama.cpp's repacked 8-row kernels: acc = fma((float)sum, d_w * d_x, acc).
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include "akk_avx2.h"
#include <stdlib.h>

#define Z_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define Z_FN static __attribute__((target(Z_TARGET)))
#define Z_INLINE static inline __attribute__((always_inline, target(Z_TARGET)))

/* Activations of TOK_CHUNK tokens stay in L2 while a thread's rows pass over them. */
#define TOK_CHUNK 64

/* ---- IQ4_NL_X8, MXFP4_X8 ---- */

/* Block scale (float) and -128 * (sum of the 32 quants) of each Q8_0 block of one token. */
Z_FN void x8_prepare(const uint8_t *x, int64_t nb, float *xd, int32_t *xc) {
    const __m256i ones = _mm256_set1_epi8(1);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *xb = x + b * 34;
        xd[b] = akk_lut16(xb);
        const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, _mm256_loadu_si256((const __m256i *)(xb + 2)));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        s4 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 1));
        xc[b] = -128 * _mm_cvtsi128_si32(s4);
    }
}

/* dword indices of the 8x4 transpose: elements 4m..4m+3 of rows 0..7 for m = j (low 256 bits)
 * and m = j + 1 (high), from rows 0..3 (first operand) and 4..7 (second). */
static const int32_t x8_tr_idx[2][16] __attribute__((aligned(64))) = {
    {0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29},
    {2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31},
};

/* The grid values (+128) of one block of 8 rows (rows rs bytes apart, packed bytes at q):
 * wv[m] = elements 4m..4m+3 of rows 0..7 (m < 4), wv[4 + m] = elements 16 + 4m..16 + 4m + 3. */
Z_INLINE void x8_weights(const uint8_t *q, int64_t rs, __m512i table, __m256i wv[8]) {
    __m512i a = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)q));
    a = _mm512_inserti32x4(a, _mm_loadu_si128((const __m128i *)(q + rs)), 1);
    a = _mm512_inserti32x4(a, _mm_loadu_si128((const __m128i *)(q + 2 * rs)), 2);
    a = _mm512_inserti32x4(a, _mm_loadu_si128((const __m128i *)(q + 3 * rs)), 3);
    __m512i b = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(q + 4 * rs)));
    b = _mm512_inserti32x4(b, _mm_loadu_si128((const __m128i *)(q + 5 * rs)), 1);
    b = _mm512_inserti32x4(b, _mm_loadu_si128((const __m128i *)(q + 6 * rs)), 2);
    b = _mm512_inserti32x4(b, _mm_loadu_si128((const __m128i *)(q + 7 * rs)), 3);
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int j = 0; j < 2; j++) {
        const __m512i c = _mm512_permutex2var_epi32(a, _mm512_load_si512((const void *)x8_tr_idx[j]), b);
        const __m512i lo = _mm512_shuffle_epi8(table, _mm512_and_si512(c, m4));
        const __m512i hi = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(c, 4), m4));
        wv[2 * j] = _mm512_castsi512_si256(lo);
        wv[2 * j + 1] = _mm512_extracti64x4_epi64(lo, 1);
        wv[4 + 2 * j] = _mm512_castsi512_si256(hi);
        wv[4 + 2 * j + 1] = _mm512_extracti64x4_epi64(hi, 1);
    }
}

/* Lane k: the exact block sum of row k (x: the token's 32 quants, c: -128 * their sum). */
Z_INLINE __m256i x8_isum(const __m256i wv[8], const uint8_t *x, int32_t c) {
    __m256i s0 = _mm256_set1_epi32(c), s1 = _mm256_setzero_si256();
    for (int m = 0; m < 4; m++) {
        s0 = _mm256_dpbusd_epi32(s0, wv[m], bcast4((const int8_t *)x + 4 * m));
        s1 = _mm256_dpbusd_epi32(s1, wv[4 + m], bcast4((const int8_t *)x + 16 + 4 * m));
    }
    return _mm256_add_epi32(s0, s1);
}

/* The scales of one block of 8 rows (rows wrow bytes apart, blk: row 0's block) as floats, by a
 * gather of each row's first 4 bytes: MXFP4's e8m0 (akk_e8m0_to_fp32_half) or IQ4_NL's fp16. */
Z_INLINE __m256 x8_scales(const int MX, const uint8_t *blk, __m256i rows) {
    const __m256i g = _mm256_i32gather_epi32((const int *)(const void *)blk, rows, 1);
    if (!MX) return _mm256_cvtph_ps(_mm256_cvtepi32_epi16(g));
    const __m256i e = _mm256_and_si256(g, _mm256_set1_epi32(0xff));
    const __m256i normal = _mm256_slli_epi32(_mm256_sub_epi32(e, _mm256_set1_epi32(1)), 23);
    const __m256i sub = _mm256_sllv_epi32(_mm256_set1_epi32(0x00200000), e); /* e = 0, 1 */
    return _mm256_castsi256_ps(_mm256_blendv_epi8(normal, sub, _mm256_cmpgt_epi32(_mm256_set1_epi32(2), e)));
}

/* 8 adjacent rows (wrow bytes apart) x T tokens over nb blocks; xd/xc: x8_prepare's of each
 * token (scs apart). Output y[t*ystride + k]. */
Z_INLINE void x8_tile(const int MX, const int T, const uint8_t *w, int64_t wrow, int64_t nb, const uint8_t *x,
                      int64_t xstride, const float *xd, const int32_t *xc, int64_t scs, float *y, int64_t ystride) {
    const int wbs = MX ? 17 : 18, qoff = MX ? 1 : 2;
    int8_t biased[16];
    const int8_t *kv = MX ? akk_kvalues_mxfp4 : akk_kvalues_iq4nl;
    for (int i = 0; i < 16; i++) biased[i] = (int8_t)(kv[i] + 128);
    const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)biased));
    const __m256i rows = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)wrow));
    __m256 acc[8];
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i wv[8];
        x8_weights(w + b * wbs + qoff, wrow, table, wv);
        const __m256 ws = x8_scales(MX, w + b * wbs, rows);
        for (int t = 0; t < T; t++) {
            const __m256i s = x8_isum(wv, x + t * xstride + b * 34 + 2, xc[t * scs + b]);
            const __m256 d = _mm256_mul_ps(ws, _mm256_set1_ps(xd[t * scs + b]));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), d, acc[t]);
        }
    }
    for (int t = 0; t < T; t++) _mm256_storeu_ps(y + t * ystride, acc[t]);
}

#define X8_TT 8 /* prefill tile tokens */

Z_FN void x8_tile_any(int MX, int T, const uint8_t *w, int64_t wrow, int64_t nb, const uint8_t *x, int64_t xstride,
                      const float *xd, const int32_t *xc, int64_t scs, float *y, int64_t ystride) {
#define X8_CASE(t)                                                                                 \
    case t:                                                                                        \
        if (MX) x8_tile(1, t, w, wrow, nb, x, xstride, xd, xc, scs, y, ystride);                   \
        else x8_tile(0, t, w, wrow, nb, x, xstride, xd, xc, scs, y, ystride);                      \
        break;
    switch (T) { X8_CASE(1) X8_CASE(2) X8_CASE(3) X8_CASE(4) X8_CASE(5) X8_CASE(6) X8_CASE(7) X8_CASE(8) default: break; }
#undef X8_CASE
}

/* Rows [r0, r1) x n_tok >= 2 tokens: groups of 8 adjacent rows (leftover rows by the AVX2 kernel,
 * the same values). Token chunks of TOK_CHUNK whose scales and sums are prepared once; per group,
 * token tiles of X8_TT over the group's weights. Zen 4, 1 thread, GMAC/s AVX-512 / AVX2:
 * MXFP4_X8 3584 x 1024 x 32 tokens 88 / 29, 512 x 1024 x 16 100 / 31, x 8 92 / 31. Decode stays
 * on the AVX2 kernel: from DRAM (14336 x 4096) this tile read 8 (two groups at once: 16) row
 * streams and ran at 19 (21.5) against AVX2's 22 GMAC/s; a repacked layout (2 streams, as
 * AKK_Q4_0_R8) is what would pay there. */
static void rows_x8(int MX, const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                    const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    const int64_t nb = n_in / 32;
    const int64_t chunk = n_tok < TOK_CHUNK ? n_tok : TOK_CHUNK, g1 = r0 + (r1 - r0) / 8 * 8;
    akk_rows_fn plain = MX ? akk_rows_mxfp4_x8_avx2 : akk_rows_iq4_nl_x8_avx2;
    float xd_small[256];
    int32_t xc_small[256];
    float *xd = n_tok == 1 ? NULL : chunk * nb <= 256 ? xd_small : malloc((size_t)(chunk * nb) * (sizeof(float) + sizeof(int32_t)));
    if (!xd || wrow > INT32_MAX / 8) { /* decode, no scratch, or rows too long for the gather: the
                                         * AVX2 kernel, the same values */
        plain(W, wrow, r0, r1, n_in, X, xstride, n_tok, Y, ystride);
        return;
    }
    int32_t *xc = xd == xd_small ? xc_small : (int32_t *)(xd + chunk * nb);
    for (int64_t c0 = 0; c0 < n_tok; c0 += chunk) {
        const int64_t c1 = c0 + chunk < n_tok ? c0 + chunk : n_tok;
        for (int64_t t = c0; t < c1; t++) x8_prepare(X + t * xstride, nb, xd + (t - c0) * nb, xc + (t - c0) * nb);
        for (int64_t g = r0; g < g1; g += 8)
            for (int64_t t = c0; t < c1; t += X8_TT) {
                const int T = (int)(c1 - t < X8_TT ? c1 - t : X8_TT);
                x8_tile_any(MX, T, W + g * wrow, wrow, nb, X + t * xstride, xstride, xd + (t - c0) * nb, xc + (t - c0) * nb, nb,
                            Y + t * ystride + g, ystride);
            }
    }
    if (xd != xd_small) free(xd);
    if (g1 < r1) plain(W, wrow, g1, r1, n_in, X, xstride, n_tok, Y, ystride);
}

void akk_rows_iq4_nl_x8_avx512(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X,
                               int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    rows_x8(0, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}

void akk_rows_mxfp4_x8_avx512(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X,
                              int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    rows_x8(1, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}

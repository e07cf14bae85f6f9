/*
 * AVX2 + FMA + F16C kernels of the repacked AKK_IQ4_XS_R16 (x Q8_K; layout and numerics:
 * repack_iq4xs.c), both orders, on 8-row halves of a group: int32 lane i = row i of the half.
 *
 * Integers: the grid values by vpshufb from one 32-byte load per 4 elements of the 8 rows (no
 * gathers, no transposes), products in the sign trick maddubs(|w|, x signed by w) (int16 pair
 * sums <= 2 * 127 * 127, exact) and vpmaddwd against the sub-block's scale in both int16 halves of
 * each lane (= scale x the 4 products, exact), so a lane holds ls x the products of 4 elements.
 *   tiled order: all of them added up per super-block (S), then res = d_w * (float)S and
 *     acc = fma(res, d_x, acc), lane = row;
 *   vec_dot order: lane l of the plain kernel (elements 4l..4l+3 of every sub-block: chunk l % 4,
 *     low nibbles for l < 4) kept apart, acc_l = fma(d_w * d_x, (float)lane_l, acc_l), then the
 *     hsum8 tree of iq4mx.c across the 8 accumulators, lane = row.
 * Decode reads two whole groups (from two parts of the range) at once, each block's bytes in order
 * (xr_decode): half-group tiles striding through a block streamed at ~9 GB/s from DRAM, this ~18.
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include "akk_avx2.h"

#define XR_BLOCK (16 * 136)
#define XR_TT 4          /* tokens per tile */
#define XR_TOK_CHUNK 64  /* tokens whose activations stay in L1/L2 while the rows pass */

/* Sub-block ib's scales of the 8 rows of half h of a group's block, as (ls, ls) int16 pairs. */
AVX2_INLINE __m256i xr_ls16(const uint8_t *blk, int h, int ib) {
    const __m256i l = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(blk + 32 + 16 * (ib / 2) + 8 * h)));
    const __m256i hi = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(blk + 96 + 16 * (ib / 4) + 8 * h)));
    const __m256i s = _mm256_sub_epi32(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(l, 4 * (ib % 2)), _mm256_set1_epi32(15)),
                                                       _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(hi, 2 * (ib % 4)), _mm256_set1_epi32(3)), 4)),
                                       _mm256_set1_epi32(32));
    return _mm256_or_si256(_mm256_and_si256(s, _mm256_set1_epi32(0xffff)), _mm256_slli_epi32(s, 16));
}

/* ls x (products of the 4 elements of each lane): w grid values, a = |w|, x4 the token's 4 quants. */
AVX2_INLINE __m256i xr_prod(__m256i a, __m256i w, const int8_t *xq, __m256i ls) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(a, _mm256_sign_epi8(bcast4(xq), w)), ls);
}

/* Chunk (ib, m) of half h of a group's block: the grid values of its low (w[0]) and high (w[1])
 * nibbles and their magnitudes (a[0], a[1]). */
AVX2_INLINE void xr_chunk(const uint8_t *blk, int ib, int m, int h, __m256i table, __m256i w[2], __m256i a[2]) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i v = _mm256_loadu_si256((const __m256i *)(blk + 128 + 256 * ib + 64 * m + 32 * h));
    w[0] = _mm256_shuffle_epi8(table, _mm256_and_si256(v, m4));
    w[1] = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
    a[0] = _mm256_sign_epi8(w[0], w[0]);
    a[1] = _mm256_sign_epi8(w[1], w[1]);
}

/* Half h (8 rows) of the group at grp x T tokens (xs bytes apart) over nb super-blocks; output of
 * row i, token t at y[t*ys + i]. TL: the tiled order, else the vec_dot order. */
AVX2_INLINE void xr_tile(const int TL, const int T, const uint8_t *grp, int h, int64_t nb, const uint8_t *x,
                         int64_t xs, float *y, int64_t ys) {
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)akk_kvalues_iq4nl));
    __m256 acc[XR_TT][8];
    for (int t = 0; t < T; t++)
        for (int l = 0; l < (TL ? 1 : 8); l++) acc[t][l] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = grp + b * XR_BLOCK;
        const uint8_t *xb = x + b * 292;
        __m256i ls[8];
        for (int ib = 0; ib < 8; ib++) ls[ib] = xr_ls16(blk, h, ib);
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + 16 * h)));
        float dx[XR_TT];
        for (int t = 0; t < T; t++) memcpy(&dx[t], xb + t * xs, 4);
        if (TL) {
            __m256i S[XR_TT];
            for (int t = 0; t < T; t++) S[t] = _mm256_setzero_si256();
            for (int ib = 0; ib < 8; ib++)
                for (int m = 0; m < 4; m++) {
                    __m256i w[2], a[2];
                    xr_chunk(blk, ib, m, h, table, w, a);
                    for (int t = 0; t < T; t++) {
                        const int8_t *xq = (const int8_t *)(xb + t * xs + 4 + 32 * ib + 4 * m);
                        S[t] = _mm256_add_epi32(S[t], _mm256_add_epi32(xr_prod(a[0], w[0], xq, ls[ib]), xr_prod(a[1], w[1], xq + 16, ls[ib])));
                    }
                }
            for (int t = 0; t < T; t++)
                acc[t][0] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_cvtepi32_ps(S[t])), _mm256_set1_ps(dx[t]), acc[t][0]);
        } else {
            for (int m = 0; m < 4; m++) {
                __m256i L0[XR_TT], L1[XR_TT];
                for (int t = 0; t < T; t++) L0[t] = L1[t] = _mm256_setzero_si256();
                for (int ib = 0; ib < 8; ib++) {
                    __m256i w[2], a[2];
                    xr_chunk(blk, ib, m, h, table, w, a);
                    for (int t = 0; t < T; t++) {
                        const int8_t *xq = (const int8_t *)(xb + t * xs + 4 + 32 * ib + 4 * m);
                        L0[t] = _mm256_add_epi32(L0[t], xr_prod(a[0], w[0], xq, ls[ib]));
                        L1[t] = _mm256_add_epi32(L1[t], xr_prod(a[1], w[1], xq + 16, ls[ib]));
                    }
                }
                for (int t = 0; t < T; t++) {
                    const __m256 d = _mm256_mul_ps(dw, _mm256_set1_ps(dx[t]));
                    acc[t][m] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(L0[t]), acc[t][m]);
                    acc[t][m + 4] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(L1[t]), acc[t][m + 4]);
                }
            }
        }
    }
    for (int t = 0; t < T; t++) {
        __m256 r = acc[t][0];
        if (!TL) { /* akk_hsum8_ref's tree over the 8 lanes, row by row */
            const __m256 s0 = _mm256_add_ps(acc[t][4], acc[t][0]), s1 = _mm256_add_ps(acc[t][5], acc[t][1]);
            const __m256 s2 = _mm256_add_ps(acc[t][6], acc[t][2]), s3 = _mm256_add_ps(acc[t][7], acc[t][3]);
            r = _mm256_add_ps(_mm256_add_ps(s0, s2), _mm256_add_ps(s1, s3));
        }
        _mm256_storeu_ps(y + t * ys, r);
    }
}

#define XR_CASE(TL, t) case t: xr_tile(TL, t, grp, h, nb, x, xs, y, ys); break;
#define XR_ANY(NAME, TL)                                                                           \
    AVX2_FN void NAME(int T, const uint8_t *grp, int h, int64_t nb, const uint8_t *x, int64_t xs, float *y, int64_t ys) { \
        switch (T) {                                                                               \
        XR_CASE(TL, 1) XR_CASE(TL, 2) XR_CASE(TL, 3)                                               \
        default: xr_tile(TL, XR_TT, grp, h, nb, x, xs, y, ys); break;                              \
        }                                                                                          \
    }
XR_ANY(xr_tile_vd, 0)
XR_ANY(xr_tile_tl, 1)

/* Decode (vec_dot order, 1 token): XR_G whole groups (grp + k * gstride) at once, both halves of
 * each block in turn and its bytes in order (the tiles above run the chunks of one lane across
 * the sub-blocks, which strides through memory); output of group k's row i at y[k * ystride + i]. */
#define XR_G 2
AVX2_INLINE void xr_decode(const uint8_t *grp, int64_t gstride, int64_t nb, const uint8_t *x, float *y, int64_t ystride) {
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)akk_kvalues_iq4nl));
    __m256 acc[XR_G][2][8];
    for (int k = 0; k < XR_G; k++)
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 8; l++) acc[k][h][l] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *xb = x + b * 292;
        float dx;
        memcpy(&dx, xb, 4);
        for (int k = 0; k < XR_G; k++) {
            const uint8_t *blk = grp + k * gstride + b * XR_BLOCK;
            akk_stream_pf(blk, XR_BLOCK);
            for (int h = 0; h < 2; h++) {
                __m256i L[8]; /* lane l: chunk l % 4, low nibbles for l < 4 */
                for (int l = 0; l < 8; l++) L[l] = _mm256_setzero_si256();
                for (int ib = 0; ib < 8; ib++) {
                    const __m256i ls = xr_ls16(blk, h, ib);
                    for (int m = 0; m < 4; m++) {
                        __m256i w[2], a[2];
                        xr_chunk(blk, ib, m, h, table, w, a);
                        const int8_t *xq = (const int8_t *)(xb + 4 + 32 * ib + 4 * m);
                        L[m] = _mm256_add_epi32(L[m], xr_prod(a[0], w[0], xq, ls));
                        L[m + 4] = _mm256_add_epi32(L[m + 4], xr_prod(a[1], w[1], xq + 16, ls));
                    }
                }
                const __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + 16 * h))), _mm256_set1_ps(dx));
                for (int l = 0; l < 8; l++) acc[k][h][l] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(L[l]), acc[k][h][l]);
            }
        }
    }
    for (int k = 0; k < XR_G; k++)
        for (int h = 0; h < 2; h++) {
            const __m256 *a = acc[k][h];
            const __m256 s0 = _mm256_add_ps(a[4], a[0]), s1 = _mm256_add_ps(a[5], a[1]);
            const __m256 s2 = _mm256_add_ps(a[6], a[2]), s3 = _mm256_add_ps(a[7], a[3]);
            _mm256_storeu_ps(y + k * ystride + 8 * h, _mm256_add_ps(_mm256_add_ps(s0, s2), _mm256_add_ps(s1, s3)));
        }
}
AVX2_FN void xr_decode_g(const uint8_t *grp, int64_t gstride, int64_t nb, const uint8_t *x, float *y, int64_t ystride) {
    xr_decode(grp, gstride, nb, x, y, ystride);
}

/* Rows [r0, r1) (multiples of 8) x all tokens: token chunks of XR_TOK_CHUNK, each half-group
 * over the chunk in tiles of XR_TT tokens. */
static void xr_rows(void (*tile)(int, const uint8_t *, int, int64_t, const uint8_t *, int64_t, float *, int64_t),
                    const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X,
                    int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    const int64_t nb = n_in / 256;
    for (int64_t c0 = 0; c0 < n_tok; c0 += XR_TOK_CHUNK) {
        const int64_t c1 = c0 + XR_TOK_CHUNK < n_tok ? c0 + XR_TOK_CHUNK : n_tok;
        for (int64_t r = r0; r < r1; r += 8)
            for (int64_t t = c0; t < c1; t += XR_TT) {
                const int T = c1 - t < XR_TT ? (int)(c1 - t) : XR_TT;
                tile(T, W + (r / 16) * 16 * wrow, (int)((r / 8) % 2), nb, X + t * xs, xs, Y + t * ys + r, ys);
            }
    }
}

void akk_rows_iq4_xs_r16_avx2(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                              const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    /* decode: the whole groups of the range in XR_G equal parts, group i of each part at once;
     * half groups at the ends and groups left over by the tiles */
    const int64_t g0 = (r0 + 15) / 16, part = n_tok == 1 ? (r1 / 16 - g0) / XR_G : 0;
    if (part > 0) {
        for (int64_t g = g0; g < g0 + part; g++)
            xr_decode_g(W + g * 16 * wrow, part * 16 * wrow, n_in / 256, X, Y + g * 16, part * 16);
        if (r0 < g0 * 16) xr_rows(xr_tile_vd, W, wrow, r0, g0 * 16, n_in, X, xs, 1, Y, ys);
        r0 = (g0 + XR_G * part) * 16;
    }
    if (r0 < r1) xr_rows(xr_tile_vd, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}

void akk_rows_iq4_xs_r16_tl_avx2(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                                 const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    xr_rows(xr_tile_tl, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}

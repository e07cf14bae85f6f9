/*
 * AVX-512 (F/BW/VL + VNNI) kernel of the repacked AKK_IQ4_XS_R16 (x Q8_K) in the vec_dot order
 * (decode, and products of fewer than AKK_TILED_MIN_ROWS activation rows; layout and numerics:
 * repack_iq4xs.c; the tiled order is in simd_avx512_tiled.c): a whole group of 16 rows per zmm,
 * int32 lane i = row i, up to XV_TT tokens per pass over the weights.
 *
 * Integers: per 64-byte chunk (4 quant bytes of each of the 16 rows) the magnitudes of the grid
 * values by vpshufb from |grid| and their signs as a mask (a grid value is negative exactly when
 * bit 3 of its nibble is clear), the token's 4 quants negated under that mask (vpsubb, an ALU op
 * where vpsignb would take a multiply pipe), vpmaddubsw (int16 pair sums <= 2 * 127 * 127, exact)
 * and vpdpwssd against the sub-block's scales in both int16 halves of each lane: += ls x the 4
 * products, exact. Lane l of the plain kernel (elements 4l..4l+3 of every sub-block) is one
 * accumulator of its own; floats as the plain kernel's, lane = row: acc_l = fma(d_w * d_x,
 * (float)lane_l, acc_l) per super-block, then iq4mx.c's hsum8 tree across the 8 accumulators.
 * Decode (1 token) takes the whole groups of the range from XV_G = 2 parts at once and reads each
 * block's bytes in order (lanes in 8 accumulators): the token tiles run one lane's chunks across
 * the sub-blocks (256-byte strides), which from DRAM streamed at ~14 GB/s on one core where the
 * ordered two-stream reads reach ~21 (kernel_bench, 65536 x 2048; 3 streams ~ the same, 4 spill).
 * With AVX-512 VBMI the lookups are one vpermb each (the 16-entry table repeats in the 64 bytes,
 * so the index needs no mask), under akk_iq4_xs_vbmi as the plain type's decode.
 * A range that starts or ends in the middle of a group computes the whole group and stores its
 * rows only.
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include <immintrin.h>
#include <string.h>

#define XV_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define XV_FN static __attribute__((target(XV_TARGET)))
#define XV_INLINE static inline __attribute__((always_inline, target(XV_TARGET)))

#define XR_BLOCK (16 * 136)
#define XV_TT 4          /* tokens per tile */
#define XV_TOK_CHUNK 64
#ifndef XV_G
#define XV_G 2 /* decode: weight streams (groups from XV_G parts of the range) in flight */
#endif  /* tokens whose activations stay in L1/L2 while the groups pass */

#define XVV_TARGET XV_TARGET ",avx512vbmi"
#define XVV_FN static __attribute__((target(XVV_TARGET)))
#define XVV_INLINE static inline __attribute__((always_inline, target(XVV_TARGET)))

/* Sub-block ib's scales of the group's 16 rows (block at blk) as (ls, ls) int16 pairs. */
XV_INLINE __m512i xv_ls16(const uint8_t *blk, int ib) {
    const __m512i l = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(blk + 32 + 16 * (ib / 2))));
    const __m512i hi = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(blk + 96 + 16 * (ib / 4))));
    const __m512i s = _mm512_sub_epi32(_mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(l, 4 * (ib % 2)), _mm512_set1_epi32(15)),
                                                       _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(hi, 2 * (ib % 4)), _mm512_set1_epi32(3)), 4)),
                                       _mm512_set1_epi32(32));
    /* the low int16 of each lane into both halves */
    return _mm512_shuffle_epi8(s, _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13)));
}

/* |grid values| of the low (*a0) and high (*a1) nibbles of the 64 bytes v (table: |grid| in
 * every 16 bytes). */
XV_INLINE void xv_lookup(__m512i v, __m512i table, __m512i *a0, __m512i *a1) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    *a0 = _mm512_shuffle_epi8(table, _mm512_and_si512(v, m4));
    *a1 = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(v, 4), m4));
}
XVV_INLINE void xv_lookup_vbmi(__m512i v, __m512i table, __m512i *a0, __m512i *a1) {
    *a0 = _mm512_permutexvar_epi8(v, table);
    *a1 = _mm512_permutexvar_epi8(_mm512_srli_epi16(v, 4), table);
}

/* acc + ls x (products of each lane's 4 elements): a = |grid|, neg their signs, xq the 4 quants. */
XV_INLINE __m512i xv_prod(__m512i acc, __m512i a, __mmask64 neg, const uint8_t *xq, __m512i ls) {
    int32_t v;
    memcpy(&v, xq, 4);
    const __m512i x = _mm512_set1_epi32(v);
    return _mm512_dpwssd_epi32(acc, _mm512_maddubs_epi16(a, _mm512_mask_sub_epi8(x, neg, _mm512_setzero_si512(), x)), ls);
}

/* The group at grp x T tokens (xs bytes apart) over nb super-blocks; output of row i, token t at
 * y[t*ys + i] for the rows of `mask`. */
#define XV_TILE(NAME, INLINE, LOOKUP)                                                              \
    INLINE void NAME(const int T, const uint8_t *grp, int64_t nb, const uint8_t *x, int64_t xs, float *y, \
                     int64_t ys, __mmask16 mask) {                                                 \
        const __m512i table = _mm512_broadcast_i32x4(_mm_abs_epi8(_mm_loadu_si128((const __m128i *)akk_kvalues_iq4nl))); \
        __m512 acc[XV_TT][8];                                                                      \
        for (int t = 0; t < T; t++)                                                                \
            for (int l = 0; l < 8; l++) acc[t][l] = _mm512_setzero_ps();                           \
        for (int64_t b = 0; b < nb; b++) {                                                         \
            const uint8_t *blk = grp + b * XR_BLOCK, *xb = x + b * 292;                            \
            __m512i ls[8];                                                                         \
            for (int ib = 0; ib < 8; ib++) ls[ib] = xv_ls16(blk, ib);                              \
            const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));           \
            for (int m = 0; m < 4; m++) {                                                          \
                __m512i L0[XV_TT], L1[XV_TT];                                                      \
                for (int t = 0; t < T; t++) L0[t] = L1[t] = _mm512_setzero_si512();                \
                for (int ib = 0; ib < 8; ib++) {                                                   \
                    const __m512i v = _mm512_loadu_si512((const void *)(blk + 128 + 256 * ib + 64 * m)); \
                    __m512i a0, a1;                                                                \
                    LOOKUP(v, table, &a0, &a1);                                                    \
                    const __mmask64 n0 = _mm512_testn_epi8_mask(v, _mm512_set1_epi8(0x08));        \
                    const __mmask64 n1 = _mm512_testn_epi8_mask(v, _mm512_set1_epi8((char)0x80));  \
                    for (int t = 0; t < T; t++) {                                                  \
                        const uint8_t *xq = xb + t * xs + 4 + 32 * ib + 4 * m;                     \
                        L0[t] = xv_prod(L0[t], a0, n0, xq, ls[ib]);                                \
                        L1[t] = xv_prod(L1[t], a1, n1, xq + 16, ls[ib]);                           \
                    }                                                                              \
                }                                                                                  \
                for (int t = 0; t < T; t++) {                                                      \
                    float dx;                                                                      \
                    memcpy(&dx, xb + t * xs, 4);                                                   \
                    const __m512 d = _mm512_mul_ps(dw, _mm512_set1_ps(dx));                        \
                    acc[t][m] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(L0[t]), acc[t][m]);          \
                    acc[t][m + 4] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(L1[t]), acc[t][m + 4]);  \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        for (int t = 0; t < T; t++) { /* akk_hsum8_ref's tree over the 8 lanes, row by row */      \
            const __m512 s0 = _mm512_add_ps(acc[t][4], acc[t][0]), s1 = _mm512_add_ps(acc[t][5], acc[t][1]); \
            const __m512 s2 = _mm512_add_ps(acc[t][6], acc[t][2]), s3 = _mm512_add_ps(acc[t][7], acc[t][3]); \
            _mm512_mask_storeu_ps(y + t * ys, mask, _mm512_add_ps(_mm512_add_ps(s0, s2), _mm512_add_ps(s1, s3))); \
        }                                                                                          \
    }
XV_TILE(xv_tile, XV_INLINE, xv_lookup)
XV_TILE(xv_tile_vbmi, XVV_INLINE, xv_lookup_vbmi)

/* Decode: G groups (grp + k * gstride) x 1 token, their blocks in turn (G weight streams in
 * flight); output of group k's row i at y[k * ystride + i], all 16 rows. */
#define XV_DECODE(NAME, INLINE, LOOKUP)                                                            \
    INLINE void NAME(const int G, const uint8_t *grp, int64_t gstride, int64_t nb, const uint8_t *x, float *y, \
                     int64_t ystride) {                                                            \
        const __m512i table = _mm512_broadcast_i32x4(_mm_abs_epi8(_mm_loadu_si128((const __m128i *)akk_kvalues_iq4nl))); \
        __m512 acc[XV_G][8];                                                                       \
        for (int k = 0; k < G; k++)                                                                \
            for (int l = 0; l < 8; l++) acc[k][l] = _mm512_setzero_ps();                           \
        for (int64_t b = 0; b < nb; b++) {                                                         \
            const uint8_t *xb = x + b * 292;                                                       \
            float dx;                                                                              \
            memcpy(&dx, xb, 4);                                                                    \
            for (int k = 0; k < G; k++) {                                                          \
                const uint8_t *blk = grp + k * gstride + b * XR_BLOCK;                             \
                const __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk)), _mm512_set1_ps(dx)); \
                __m512i L[8]; /* lane l: chunk l % 4, low nibbles for l < 4 */                      \
                for (int l = 0; l < 8; l++) L[l] = _mm512_setzero_si512();                         \
                for (int ib = 0; ib < 8; ib++) {                                                   \
                    const __m512i ls = xv_ls16(blk, ib);                                           \
                    for (int m = 0; m < 4; m++) { /* the block's bytes in order */                 \
                        const __m512i v = _mm512_loadu_si512((const void *)(blk + 128 + 256 * ib + 64 * m)); \
                        __m512i a0, a1;                                                            \
                        LOOKUP(v, table, &a0, &a1);                                                \
                        const uint8_t *xq = xb + 4 + 32 * ib + 4 * m;                              \
                        L[m] = xv_prod(L[m], a0, _mm512_testn_epi8_mask(v, _mm512_set1_epi8(0x08)), xq, ls); \
                        L[m + 4] = xv_prod(L[m + 4], a1, _mm512_testn_epi8_mask(v, _mm512_set1_epi8((char)0x80)), xq + 16, ls); \
                    }                                                                              \
                }                                                                                  \
                for (int l = 0; l < 8; l++) acc[k][l] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(L[l]), acc[k][l]); \
            }                                                                                      \
        }                                                                                          \
        for (int k = 0; k < G; k++) {                                                              \
            const __m512 s0 = _mm512_add_ps(acc[k][4], acc[k][0]), s1 = _mm512_add_ps(acc[k][5], acc[k][1]); \
            const __m512 s2 = _mm512_add_ps(acc[k][6], acc[k][2]), s3 = _mm512_add_ps(acc[k][7], acc[k][3]); \
            _mm512_storeu_ps(y + k * ystride, _mm512_add_ps(_mm512_add_ps(s0, s2), _mm512_add_ps(s1, s3))); \
        }                                                                                          \
    }
XV_DECODE(xv_decode, XV_INLINE, xv_lookup)
XV_DECODE(xv_decode_vbmi, XVV_INLINE, xv_lookup_vbmi)
XV_FN void xv_decode_g(const uint8_t *grp, int64_t gstride, int64_t nb, const uint8_t *x, float *y, int64_t ystride) {
    xv_decode(XV_G, grp, gstride, nb, x, y, ystride);
}
XVV_FN void xv_decode_g_vbmi(const uint8_t *grp, int64_t gstride, int64_t nb, const uint8_t *x, float *y, int64_t ystride) {
    xv_decode_vbmi(XV_G, grp, gstride, nb, x, y, ystride);
}

#define XV_CASE(TILE, t) case t: TILE(t, grp, nb, x, xs, y, ys, mask); break;
#define XV_ANY(ANY, TILE, FN)                                                                      \
    FN void ANY(int T, const uint8_t *grp, int64_t nb, const uint8_t *x, int64_t xs, float *y, int64_t ys, \
                __mmask16 mask) {                                                                  \
        switch (T) {                                                                               \
        XV_CASE(TILE, 1) XV_CASE(TILE, 2) XV_CASE(TILE, 3)                                         \
        default: TILE(XV_TT, grp, nb, x, xs, y, ys, mask); break;                                  \
        }                                                                                          \
    }
XV_ANY(xv_tile_any, xv_tile, XV_FN)
XV_ANY(xv_tile_any_vbmi, xv_tile_vbmi, XVV_FN)

/* Rows [r0, r1) (multiples of 8) x all tokens: token chunks of XV_TOK_CHUNK, each group over the
 * chunk in tiles of XV_TT tokens. */
void akk_rows_iq4_xs_r16_avx512(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                                const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    const int64_t nb = n_in / 256;
    const int vbmi = akk_iq4_xs_vbmi_in_force();
    /* decode: the whole groups of the range in XV_G equal parts, group i of each part at once */
    const int64_t g0 = (r0 + 15) / 16, part = n_tok == 1 ? (r1 / 16 - g0) / XV_G : 0;
    if (part > 0) {
        for (int64_t i = 0; i < part; i++) {
            const int64_t g = g0 + i;
            if (vbmi) xv_decode_g_vbmi(W + g * 16 * wrow, part * 16 * wrow, nb, X, Y + g * 16, part * 16);
            else xv_decode_g(W + g * 16 * wrow, part * 16 * wrow, nb, X, Y + g * 16, part * 16);
        }
        /* the rest (half groups at the ends, groups left over) below */
        if (r0 < g0 * 16) akk_rows_iq4_xs_r16_avx512(W, wrow, r0, g0 * 16, n_in, X, xs, 1, Y, ys);
        r0 = (g0 + XV_G * part) * 16;
        if (r0 >= r1) return;
    }
    for (int64_t c0 = 0; c0 < n_tok; c0 += XV_TOK_CHUNK) {
        const int64_t c1 = c0 + XV_TOK_CHUNK < n_tok ? c0 + XV_TOK_CHUNK : n_tok;
        for (int64_t g0 = r0 / 16 * 16; g0 < r1; g0 += 16) {
            const int lo = r0 > g0 ? (int)(r0 - g0) : 0, hi = r1 < g0 + 16 ? (int)(r1 - g0) : 16;
            const __mmask16 mask = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
            for (int64_t t = c0; t < c1; t += XV_TT) {
                const int T = c1 - t < XV_TT ? (int)(c1 - t) : XV_TT;
                if (vbmi) xv_tile_any_vbmi(T, W + g0 * wrow, nb, X + t * xs, xs, Y + t * ys + g0, ys, mask);
                else xv_tile_any(T, W + g0 * wrow, nb, X + t * xs, xs, Y + t * ys + g0, ys, mask);
            }
        }
    }
}

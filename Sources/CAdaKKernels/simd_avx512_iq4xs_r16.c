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
 * With VBMI, decode moves the signs to the weights' side (xv_prep_token, below): 26.8 -> 33.6 GB/s
 * from cache on one Zen 4 core (kernel_bench 4096 x 2048); from DRAM one core streams ~22-29 GB/s
 * either way.
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

/* The 8 sub-blocks' scales of the group's 16 rows (block at blk) as (ls, ls) int16 pairs, from the
 * packed 6-bit scales in one pass: bytes of the even and of the odd sub-blocks, then widened. */
XV_INLINE void xv_ls_block(const uint8_t *blk, __m512i ls[8]) {
    const __m512i m4 = _mm512_set1_epi8(0x0f), m3 = _mm512_set1_epi8(3), b32 = _mm512_set1_epi8(32);
    const __m512i sl = _mm512_loadu_si512((const void *)(blk + 32)); /* sl[j][i]: sub-blocks 2j, 2j+1 */
    /* quarter j: sh[j/2] >> 4 (j % 2), whose bits 0-1 / 2-3 are sub-block 2j's / 2j+1's high bits */
    __m512i h = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3),
                                         _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(blk + 96))));
    h = _mm512_srlv_epi16(h, _mm512_setr_epi64(0, 0, 0x0004000400040004ll, 0x0004000400040004ll, 0, 0,
                                               0x0004000400040004ll, 0x0004000400040004ll));
    const __m512i ev = _mm512_sub_epi8(_mm512_or_si512(_mm512_and_si512(sl, m4), _mm512_slli_epi16(_mm512_and_si512(h, m3), 4)), b32);
    const __m512i od = _mm512_sub_epi8(_mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(sl, 4), m4),
                                                       _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(h, 2), m3), 4)), b32);
    const __m512i lo = _mm512_setr_epi32(0x00000000, 0x00010001, 0x00020002, 0x00030003, 0x00040004, 0x00050005, 0x00060006, 0x00070007,
                                         0x00080008, 0x00090009, 0x000a000a, 0x000b000b, 0x000c000c, 0x000d000d, 0x000e000e, 0x000f000f);
    const __m512i hi = _mm512_add_epi16(lo, _mm512_set1_epi16(16));
    const __m512i e01 = _mm512_cvtepi8_epi16(_mm512_castsi512_si256(ev)), e23 = _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(ev, 1));
    const __m512i o01 = _mm512_cvtepi8_epi16(_mm512_castsi512_si256(od)), o23 = _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(od, 1));
    ls[0] = _mm512_permutexvar_epi16(lo, e01); ls[2] = _mm512_permutexvar_epi16(hi, e01);
    ls[4] = _mm512_permutexvar_epi16(lo, e23); ls[6] = _mm512_permutexvar_epi16(hi, e23);
    ls[1] = _mm512_permutexvar_epi16(lo, o01); ls[3] = _mm512_permutexvar_epi16(hi, o01);
    ls[5] = _mm512_permutexvar_epi16(lo, o23); ls[7] = _mm512_permutexvar_epi16(hi, o23);
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
            xv_ls_block(blk, ls);                                                                  \
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

/* Decode without VBMI: XV_G groups (grp + k * gstride) x 1 token, their blocks in turn (XV_G weight
 * streams in flight), the sign tests on the weights; output of group k's row i at
 * y[k * ystride + i], all 16 rows. */
XV_FN void xv_decode_g(const uint8_t *grp, int64_t gstride, int64_t nb, const uint8_t *x, float *y, int64_t ystride) {
    const __m512i table = _mm512_broadcast_i32x4(_mm_abs_epi8(_mm_loadu_si128((const __m128i *)akk_kvalues_iq4nl)));
    __m512 acc[XV_G][8];
    for (int k = 0; k < XV_G; k++)
        for (int l = 0; l < 8; l++) acc[k][l] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *xb = x + b * 292;
        float dx;
        memcpy(&dx, xb, 4);
        for (int k = 0; k < XV_G; k++) {
            const uint8_t *blk = grp + k * gstride + b * XR_BLOCK;
            const __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk)), _mm512_set1_ps(dx));
            __m512i L[8]; /* lane l: chunk l % 4, low nibbles for l < 4 */
            __m512i ls[8];
            xv_ls_block(blk, ls);
            for (int l = 0; l < 8; l++) L[l] = _mm512_setzero_si512();
            for (int ib = 0; ib < 8; ib++)
                for (int m = 0; m < 4; m++) { /* the block's bytes in order */
                    const __m512i v = _mm512_loadu_si512((const void *)(blk + 128 + 256 * ib + 64 * m));
                    __m512i a0, a1;
                    xv_lookup(v, table, &a0, &a1);
                    const uint8_t *xq = xb + 4 + 32 * ib + 4 * m;
                    L[m] = xv_prod(L[m], a0, _mm512_testn_epi8_mask(v, _mm512_set1_epi8(0x08)), xq, ls[ib]);
                    L[m + 4] = xv_prod(L[m + 4], a1, _mm512_testn_epi8_mask(v, _mm512_set1_epi8((char)0x80)), xq + 16, ls[ib]);
                }
            for (int l = 0; l < 8; l++) acc[k][l] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(L[l]), acc[k][l]);
        }
    }
    for (int k = 0; k < XV_G; k++) {
        const __m512 s0 = _mm512_add_ps(acc[k][4], acc[k][0]), s1 = _mm512_add_ps(acc[k][5], acc[k][1]);
        const __m512 s2 = _mm512_add_ps(acc[k][6], acc[k][2]), s3 = _mm512_add_ps(acc[k][7], acc[k][3]);
        _mm512_storeu_ps(y + k * ystride, _mm512_add_ps(_mm512_add_ps(s0, s2), _mm512_add_ps(s1, s3)));
    }
}

/* Decode works on the token prepared once per call (xv_prep_token): per super-block its 256 |quants|
 * and 256 bytes that are 16 where the quant is negative, 0 elsewhere, in the quants' order. The
 * sign then goes on the weights: the lookup's index is the nibble plus that 16, into a table of the
 * grid and its negation, and maddubs(|x|, grid negated where x < 0) gives the same pair sums as
 * maddubs(|grid|, x negated where grid < 0). The weights' two sign tests and masked negations per
 * chunk leave the loop (one vpternlogd per nibble half puts the sign in the index), and each
 * block's scales come out of one pass (xv_ls_block). */
#define XV_PREP_BYTES 512 /* per super-block: 256 |quants|, then 256 sign bytes */

XV_FN void xv_prep_token(const uint8_t *x, int64_t nb, uint8_t *prep) {
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *q = x + b * 292 + 4;
        uint8_t *out = prep + b * XV_PREP_BYTES;
        for (int i = 0; i < 4; i++) {
            const __m512i v = _mm512_loadu_si512((const void *)(q + 64 * i));
            _mm512_storeu_si512((void *)(out + 64 * i), _mm512_abs_epi8(v));
            _mm512_storeu_si512((void *)(out + 256 + 64 * i), _mm512_maskz_mov_epi8(_mm512_movepi8_mask(v), _mm512_set1_epi8(16)));
        }
    }
}

/* acc + ls x (products of each lane's 4 elements): v the 64-byte chunk, shifted so that the
 * nibble is in bits 0-3; ax the slice's 4 |quants|, sx its 4 sign bytes; table: the grid at 0..15
 * and its negation at 16..31. vpshufb would drop index bit 4, hence vpermb (VBMI) only. */
XVV_INLINE __m512i xv_prod_x(__m512i acc, __m512i v, __m512i table, const uint8_t *ax, const uint8_t *sx, __m512i ls) {
    int32_t a, s;
    memcpy(&a, ax, 4);
    memcpy(&s, sx, 4);
    /* (v & 15) | sign byte */
    const __m512i idx = _mm512_ternarylogic_epi32(v, _mm512_set1_epi32(0x0f0f0f0f), _mm512_set1_epi32(s), 0xEA);
    return _mm512_dpwssd_epi32(acc, _mm512_maddubs_epi16(_mm512_set1_epi32(a), _mm512_permutexvar_epi8(idx, table)), ls);
}

/* Decode: XV_G groups (grp + k * gstride) x 1 prepared token, their blocks in turn (XV_G weight streams
 * in flight); output of group k's row i at y[k * ystride + i], all 16 rows. */
XVV_FN void xv_decode_g_vbmi(const uint8_t *grp, int64_t gstride, int64_t nb, const uint8_t *x, const uint8_t *prep,
                             float *y, int64_t ystride) {
    const __m128i gr = _mm_loadu_si128((const __m128i *)akk_kvalues_iq4nl);
    const __m512i table = _mm512_broadcast_i64x4(_mm256_setr_m128i(gr, _mm_sub_epi8(_mm_setzero_si128(), gr)));
    __m512 acc[XV_G][8];
    for (int k = 0; k < XV_G; k++)
        for (int l = 0; l < 8; l++) acc[k][l] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *ax = prep + b * XV_PREP_BYTES, *sx = ax + 256;
        float dx;
        memcpy(&dx, x + b * 292, 4);
        for (int k = 0; k < XV_G; k++) {
            const uint8_t *blk = grp + k * gstride + b * XR_BLOCK;
            const __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk)), _mm512_set1_ps(dx));
            __m512i ls[8];
            xv_ls_block(blk, ls);
            __m512i L[8]; /* lane l: chunk l % 4, low nibbles for l < 4 */
            for (int l = 0; l < 8; l++) L[l] = _mm512_setzero_si512();
            for (int ib = 0; ib < 8; ib++)
                for (int m = 0; m < 4; m++) { /* the block's bytes in order */
                    const __m512i v = _mm512_loadu_si512((const void *)(blk + 128 + 256 * ib + 64 * m));
                    const int o = 32 * ib + 4 * m;
                    L[m] = xv_prod_x(L[m], v, table, ax + o, sx + o, ls[ib]);
                    L[m + 4] = xv_prod_x(L[m + 4], _mm512_srli_epi16(v, 4), table, ax + o + 16, sx + o + 16, ls[ib]);
                }
            for (int l = 0; l < 8; l++) acc[k][l] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(L[l]), acc[k][l]);
        }
    }
    for (int k = 0; k < XV_G; k++) {
        const __m512 s0 = _mm512_add_ps(acc[k][4], acc[k][0]), s1 = _mm512_add_ps(acc[k][5], acc[k][1]);
        const __m512 s2 = _mm512_add_ps(acc[k][6], acc[k][2]), s3 = _mm512_add_ps(acc[k][7], acc[k][3]);
        _mm512_storeu_ps(y + k * ystride, _mm512_add_ps(_mm512_add_ps(s0, s2), _mm512_add_ps(s1, s3)));
    }
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
    uint8_t *prep = part > 0 && vbmi ? akk_thread_scratch((size_t)nb * XV_PREP_BYTES) : NULL;
    if (part > 0) {
        if (prep) xv_prep_token(X, nb, prep);
        for (int64_t i = 0; i < part; i++) {
            const int64_t g = g0 + i;
            if (prep) xv_decode_g_vbmi(W + g * 16 * wrow, part * 16 * wrow, nb, X, prep, Y + g * 16, part * 16);
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

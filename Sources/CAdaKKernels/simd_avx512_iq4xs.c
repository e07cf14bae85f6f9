/*
 * AVX-512VL + VNNI kernel of IQ4_XS x Q8_K in the vec_dot order (akk_rows_iq4_xs_avx512: decode,
 * and products of fewer than AKK_TILED_MIN_ROWS activation rows; the tiled order is in
 * simd_avx512_tiled.c): one weight row against up to XS_T = 8 tokens at once.
 *
 * Why: a qwen3-30b-a3b-shaped prefill routes ~8 tokens to each of 128 experts, so many expert
 * products have 1..7 tokens, and there the AVX2 1 x 4 tiles (tokens halved at the edge) unpacked
 * every sub-block again for each group of <= 4 tokens. 32 vector registers hold 8 tokens'
 * accumulators, so a row's sub-block is unpacked once for all of them, and vpdpwssd does madd + add
 * in one instruction.
 *
 * Integers: as tile_xs (simd_avx2_iq4mx.c): the grid values by vpshufb, products in the sign trick
 * maddubs(|w|, x signed by w) (int16 pair sums, exact), and vpdpwssd with the sub-block's scale
 * (= madd + add, not saturating: exact) into 8 int32 lanes; lane l gathers elements 4l..4l+3 of
 * every sub-block, as llama.cpp's AVX2 vec_dot. Floats: per block acc_t = fma(d_w * d_x,
 * (float)lanes, acc_t), then hsum8 (iq4mx.c's order). (The tiled order did not gain from these
 * tiles: 1 x 8 of them took 1.8x the time of the transposed VNNI tiles at 8 tokens.)
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include "akk_avx2.h"

#define XS_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define XS_FN static __attribute__((target(XS_TARGET)))
#define XS_INLINE static inline __attribute__((always_inline, target(XS_TARGET)))

#define XS_T 8           /* tokens per tile */
#define XS_TOK_CHUNK 64  /* tokens whose activations stay in L1/L2 while the rows pass */

/* One row (nb super-blocks at w) x T <= XS_T tokens (xs bytes apart); output of token t at
 * y[t*ys]. */
XS_INLINE void row_xs(const int T, const uint8_t *w, int64_t nb, const uint8_t *x, int64_t xs,
                      float *y, int64_t ys) {
    const __m256i table2 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)akk_kvalues_iq4nl));
    __m256 acc[XS_T];
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *wb = w + b * 136;
        const __m256i sc = akk_xs_scales16(wb);
        __m256i sumi[XS_T];
        for (int t = 0; t < T; t++) sumi[t] = _mm256_setzero_si256();
        for (int ib = 0; ib < 8; ib++) {
            const __m256i wq = akk_xs_grid32(wb + 8 + 16 * ib, table2), aw = _mm256_sign_epi8(wq, wq);
            const __m256i ls = akk_xs_scale_of(sc, ib);
            for (int t = 0; t < T; t++) {
                const __m256i xq = _mm256_loadu_si256((const __m256i *)(x + t * xs + b * 292 + 4 + 32 * ib));
                sumi[t] = _mm256_dpwssd_epi32(sumi[t], _mm256_maddubs_epi16(aw, _mm256_sign_epi8(xq, wq)), ls);
            }
        }
        const float wd = _cvtsh_ss(akk_load_u16(wb));
        for (int t = 0; t < T; t++) {
            float xd;
            __builtin_memcpy(&xd, x + t * xs + b * 292, 4);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(wd * xd), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
        }
    }
    for (int t = 0; t < T; t++) y[t * ys] = hsum8(acc[t]);
}

#define XS_CASE(t) case t: row_xs(t, w, nb, x, xs, y, ys); break;
XS_FN void row_any(int T, const uint8_t *w, int64_t nb, const uint8_t *x, int64_t xs, float *y, int64_t ys) {
    switch (T) {
    XS_CASE(1) XS_CASE(2) XS_CASE(3) XS_CASE(4) XS_CASE(5) XS_CASE(6) XS_CASE(7)
    default: row_xs(XS_T, w, nb, x, xs, y, ys); break;
    }
}

/* ---- decode (1 token): XD_R rows at once, vpdpbusd on unsigned grid bytes ----
 * Integers: the grid + 128 (unsigned) by one lookup, vpdpbusd against the token's quants starting
 * each lane from -128 x the sum of its 4 quants (xd_offsets, once per call), so a lane holds the
 * exact sum of its 4 products; vpmulld by the sub-block's scale and vpaddd over the 8 sub-blocks
 * give the lanes of the 1 x 8 tiles above (same integers, so the same floats follow). Why: the sign
 * trick costs two vpsignb, which run on the two multiply pipes of Zen 4 as vpmaddubsw and vpdpwssd
 * do: 4 of the 8 vector ops per 32 elements went to 2 pipes. Here 5 ops (srlv, lookup, dpbusd,
 * mulld, add) + 2 loads per row and sub-block; XD_R rows share the activation and offset loads,
 * and the scales come from memory as embedded broadcasts (docs/BENCHMARKS.md, kernel section).
 * With AVX-512 VBMI the lookup is one vpermb on a 32-byte table (bits 4..7 of the index are
 * ignored or repeat the table) and the scales are one vpmultishiftqb + vpternlogd + vpdpbusd;
 * without it vpshufb after a mask, and shifts. */
#define XD_R 8
#define XSV_TARGET XS_TARGET ",avx512vbmi"
#define XSV_FN static __attribute__((target(XSV_TARGET)))
#define XSV_INLINE static inline __attribute__((always_inline, target(XSV_TARGET)))

/* -128 x the sums of the 4 quants of each lane of each sub-block of one Q8_K row (nb blocks). */
XS_FN void xd_offsets(const uint8_t *x, int64_t nb, __m256i *c) {
    const __m256i ones = _mm256_set1_epi8(1), m128 = _mm256_set1_epi16(-128);
    for (int64_t b = 0; b < nb; b++)
        for (int ib = 0; ib < 8; ib++) {
            const __m256i xq = _mm256_loadu_si256((const __m256i *)(x + b * 292 + 4 + 32 * ib));
            c[b * 8 + ib] = _mm256_madd_epi16(_mm256_maddubs_epi16(ones, xq), m128);
        }
}

/* The 8 scales of a block (akk_iq4_xs_scale) as int32 lanes 0..7. */
XS_INLINE __m256i xd_scales(const uint8_t *blk) {
    uint32_t l;
    __builtin_memcpy(&l, blk + 4, 4);
    const __m256i lo = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)l), _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28)), _mm256_set1_epi32(15));
    const __m256i hi = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)akk_load_u16(blk + 2) << 4), _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)), _mm256_set1_epi32(0x30));
    return _mm256_sub_epi32(_mm256_or_si256(lo, hi), _mm256_set1_epi32(32));
}

/* The same by VBMI: lane ib gets the bytes [scales_l bits 4ib.., scales_h bits 2ib.., 1, 0] of the
 * block's first 8 bytes (masked to 4 and 2 bits), then dot [1, 16, -32, 0]. */
XSV_INLINE __m256i xd_scales_vbmi(const uint8_t *blk) {
    uint64_t v;
    __builtin_memcpy(&v, blk, 8);
    const __m256i ctl = _mm256_setr_epi8(32, 16, 0, 0, 36, 18, 0, 0, 40, 20, 0, 0, 44, 22, 0, 0, 48, 24, 0, 0, 52, 26, 0, 0, 56, 28, 0, 0, 60, 30, 0, 0);
    const __m256i f = _mm256_multishift_epi64_epi8(ctl, _mm256_set1_epi64x((long long)v));
    const __m256i a = _mm256_ternarylogic_epi32(f, _mm256_set1_epi32(0x030f), _mm256_set1_epi32(0x10000), 0xea); /* (f & m) | o */
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), a, _mm256_set1_epi32((int)0x00e01001));
}

/* 32 grid values + 128 of sub-block bytes q (broadcast to both halves; sh shifts the high half's
 * dwords by 4): tab holds the grid + 128 in both 16-byte halves. */
XS_INLINE __m256i xd_grid(__m256i q, __m256i sh, __m256i tab) {
    return _mm256_shuffle_epi8(tab, _mm256_and_si256(_mm256_srlv_epi32(q, sh), _mm256_set1_epi8(0x0f)));
}
XSV_INLINE __m256i xd_grid_vbmi(__m256i q, __m256i sh, __m256i tab) {
    return _mm256_permutexvar_epi8(_mm256_srlv_epi32(q, sh), tab);
}

/* R <= XD_R rows (wrow bytes apart) x 1 token (quants x, offsets c); outputs y[r * ys]. */
#define XD_TILE(NAME, INLINE, GRID, SCALES)                                                        \
    INLINE void NAME(const int R, const uint8_t *w, int64_t wrow, int64_t nb, const uint8_t *x,   \
                     const __m256i *c, float *y, int64_t ys) {                                     \
        const __m256i tab = _mm256_add_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)akk_kvalues_iq4nl)), _mm256_set1_epi8(-128)); \
        const __m256i sh = _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4);                             \
        __m256 acc[XD_R];                                                                          \
        for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();                                  \
        for (int64_t b = 0; b < nb; b++) {                                                         \
            int32_t ls[XD_R][8] __attribute__((aligned(32)));                                      \
            __m256i sumi[XD_R];                                                                    \
            for (int r = 0; r < R; r++) {                                                          \
                _mm256_store_si256((__m256i *)ls[r], SCALES(w + r * wrow + b * 136));              \
                sumi[r] = _mm256_setzero_si256();                                                  \
            }                                                                                      \
            __asm__ volatile("" ::: "memory"); /* keep ls in memory: embedded broadcasts, no extracts */ \
            for (int ib = 0; ib < 8; ib++) {                                                       \
                const __m256i xq = _mm256_loadu_si256((const __m256i *)(x + b * 292 + 4 + 32 * ib)), cb = c[b * 8 + ib]; \
                for (int r = 0; r < R; r++) {                                                      \
                    const __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(w + r * wrow + b * 136 + 8 + 16 * ib))); \
                    const __m256i t = _mm256_dpbusd_epi32(cb, GRID(q, sh, tab), xq);               \
                    sumi[r] = _mm256_add_epi32(sumi[r], _mm256_mullo_epi32(t, _mm256_set1_epi32(ls[r][ib]))); \
                }                                                                                  \
            }                                                                                      \
            float xd;                                                                              \
            __builtin_memcpy(&xd, x + b * 292, 4);                                                 \
            for (int r = 0; r < R; r++)                                                            \
                acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(akk_load_u16(w + r * wrow + b * 136)) * xd), \
                                         _mm256_cvtepi32_ps(sumi[r]), acc[r]);                      \
        }                                                                                          \
        for (int r = 0; r < R; r++) y[r * ys] = hsum8(acc[r]);                                          \
    }
XD_TILE(xd_tile, XS_INLINE, xd_grid, xd_scales)
XD_TILE(xd_tile_vbmi, XSV_INLINE, xd_grid_vbmi, xd_scales_vbmi)

#define XD_CASE(NAME, r) case r: NAME(r, w, wrow, nb, x, c, y, ys); break;
#define XD_ANY(ANY, TILE, FN)                                                                      \
    FN void ANY(int R, const uint8_t *w, int64_t wrow, int64_t nb, const uint8_t *x, const __m256i *c, float *y, \
                int64_t ys) {                                                                      \
        switch (R) {                                                                               \
        XD_CASE(TILE, 1) XD_CASE(TILE, 2) XD_CASE(TILE, 3) XD_CASE(TILE, 4)                        \
        XD_CASE(TILE, 5) XD_CASE(TILE, 6) XD_CASE(TILE, 7)                                         \
        default: TILE(XD_R, w, wrow, nb, x, c, y, ys); break;                                          \
        }                                                                                          \
    }
XD_ANY(xd_any, xd_tile, XS_FN)
XD_ANY(xd_any_vbmi, xd_tile_vbmi, XSV_FN)

static int g_vbmi; /* set at init (akk_avx512_prepare) and by tests */

int akk_iq4_xs_vbmi(int on) {
    if (on < 0) {
        __builtin_cpu_init();
        on = __builtin_cpu_supports("avx512vbmi");
    }
    g_vbmi = on && __builtin_cpu_supports("avx512vbmi");
    return g_vbmi;
}

int akk_iq4_xs_vbmi_in_force(void) { return g_vbmi; }

/* Rows [r0, r1) x all tokens. One token (decode) with thread scratch for the offsets: tiles of
 * XD_R rows; else token chunks of XS_TOK_CHUNK, each row over the chunk in tiles of XS_T tokens
 * and one of the rest. */
void akk_rows_iq4_xs_avx512(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                            const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    const int64_t nb = n_in / 256;
    __m256i *c = n_tok == 1 ? akk_thread_scratch((size_t)(nb * 8) * sizeof(__m256i)) : NULL;
    if (c) {
        xd_offsets(X, nb, c);
        /* tile i: row i of each of XD_R equal parts (XD_R sequential weight streams), then the rest */
        const int64_t part = (r1 - r0) / XD_R, rest = r0 + XD_R * part;
        for (int64_t i = 0; i < part + (r1 - rest); i++) {
            const int R = i < part ? XD_R : 1;
            const int64_t r = i < part ? r0 + i : rest + (i - part), stride = i < part ? part : 1;
            if (g_vbmi) xd_any_vbmi(R, W + r * wrow, stride * wrow, nb, X, c, Y + r, stride);
            else xd_any(R, W + r * wrow, stride * wrow, nb, X, c, Y + r, stride);
        }
        return;
    }
    for (int64_t c0 = 0; c0 < n_tok; c0 += XS_TOK_CHUNK) {
        const int64_t c1 = c0 + XS_TOK_CHUNK < n_tok ? c0 + XS_TOK_CHUNK : n_tok;
        for (int64_t r = r0; r < r1; r++)
            for (int64_t t = c0; t < c1; t += XS_T) {
                const int T = c1 - t < XS_T ? (int)(c1 - t) : XS_T;
                row_any(T, W + r * wrow, nb, X + t * xs, xs, Y + t * ys + r, ys);
            }
    }
}

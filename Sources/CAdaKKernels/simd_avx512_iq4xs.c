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

/* Rows [r0, r1) x all tokens: token chunks of XS_TOK_CHUNK, each row over the chunk in tiles of
 * XS_T tokens and one of the rest. */
void akk_rows_iq4_xs_avx512(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                            const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    const int64_t nb = n_in / 256;
    for (int64_t c0 = 0; c0 < n_tok; c0 += XS_TOK_CHUNK) {
        const int64_t c1 = c0 + XS_TOK_CHUNK < n_tok ? c0 + XS_TOK_CHUNK : n_tok;
        for (int64_t r = r0; r < r1; r++)
            for (int64_t t = c0; t < c1; t += XS_T) {
                const int T = c1 - t < XS_T ? (int)(c1 - t) : XS_T;
                row_any(T, W + r * wrow, nb, X + t * xs, xs, Y + t * ys + r, ys);
            }
    }
}

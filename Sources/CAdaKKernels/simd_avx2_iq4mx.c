/*
 * AVX2 + FMA + F16C kernels of IQ4_NL and MXFP4 (x Q8_0) and IQ4_XS (x Q8_K). The scalar
 * references and the float order they share (llama.cpp's ggml_vec_dot_{iq4_nl_q8_0, mxfp4_q8_0,
 * iq4_xs_q8_K} on x86 AVX2) are in iq4mx.c; both give bit-identical results.
 *
 * A block's 16 packed bytes go through the 16-entry grid with pshufb (low nibbles: elements 0..15
 * in the low 128 bits, high nibbles: 16..31 in the high 128 bits), then the products with the
 * activations in the sign trick maddubs(|w|, x signed by w) (exact: |w| <= 127, |x| <= 127) and a
 * madd into 8 int32 lanes. Tiles of R rows x T tokens keep one set of accumulators per (row,
 * token), so every output sees exactly the single-dot sequence whatever the tiling.
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include "akk_avx2.h"
#include <math.h>

/* The activations of TOK_CHUNK tokens stay in L2 while a thread's row tiles pass over them. */
#define TOK_CHUNK 64

AVX2_INLINE float half(const uint8_t *p) { return _cvtsh_ss(akk_load_u16(p)); }

/* 16 packed bytes -> 32 grid values in element order. */
AVX2_INLINE __m256i grid32(const uint8_t *qs, __m128i table) {
    const __m128i q = _mm_loadu_si128((const __m128i *)qs), m4 = _mm_set1_epi8(0x0f);
    const __m128i lo = _mm_shuffle_epi8(table, _mm_and_si128(q, m4));
    const __m128i hi = _mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(q, 4), m4));
    return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
}

/* int16 pair sums of w*x (w: grid values, x: quants, both in [-127, 127]). */
AVX2_INLINE __m256i pairs16(__m256i w, __m256i x) {
    return _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
}

/*
 * IQ4_NL (MX = 0) or MXFP4 (MX = 1) x Q8_0: R rows (rstride bytes apart) x T tokens (xstride apart)
 * over nb blocks; output of row r, token t at y[t*ystride + r*yrow].
 */
AVX2_INLINE void tile_nl(const int MX, const int R, const int T, const uint8_t *w, int64_t rstride, int64_t nb,
                         const uint8_t *x, int64_t xstride, float *y, int64_t ystride, int64_t yrow) {
    const int wbs = MX ? 17 : 18, qoff = MX ? 1 : 2;
    const __m128i table = _mm_loadu_si128((const __m128i *)(MX ? akk_kvalues_mxfp4 : akk_kvalues_iq4nl));
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[4][4][2];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t][0] = acc[r][t][1] = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 1 < nb; b += 2)
        for (int k = 0; k < 2; k++) {
            __m256i wq[4];
            float wd[4];
            for (int r = 0; r < R; r++) {
                const uint8_t *wb = w + r * rstride + (b + k) * wbs;
                wq[r] = grid32(wb + qoff, table);
                wd[r] = MX ? akk_e8m0_to_fp32_half(wb[0]) : half(wb);
            }
            for (int t = 0; t < T; t++) {
                const uint8_t *xb = x + t * xstride + (b + k) * 34;
                const __m256i xq = _mm256_loadu_si256((const __m256i *)(xb + 2));
                const float xd = half(xb);
                for (int r = 0; r < R; r++) {
                    const __m256i li = _mm256_madd_epi16(pairs16(wq[r], xq), ones);
                    acc[r][t][k] = _mm256_fmadd_ps(_mm256_set1_ps(xd * wd[r]), _mm256_cvtepi32_ps(li), acc[r][t][k]);
                }
            }
        }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) {
            float s = hsum8(_mm256_add_ps(acc[r][t][0], acc[r][t][1]));
            if (b < nb) { /* odd last block: its integer sum, times d, added */
                const uint8_t *wb = w + r * rstride + b * wbs, *xb = x + t * xstride + b * 34;
                const __m256i li = _mm256_madd_epi16(pairs16(grid32(wb + qoff, table), _mm256_loadu_si256((const __m256i *)(xb + 2))), ones);
                __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(li), _mm256_extracti128_si256(li, 1));
                s4 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
                s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 1));
                const float d = half(xb) * (MX ? akk_e8m0_to_fp32_half(wb[0]) : half(wb));
                s = _mm_cvtss_f32(_mm_add_ss(_mm_set_ss(s), _mm_mul_ss(_mm_set_ss(d), _mm_set_ss((float)_mm_cvtsi128_si32(s4)))));
            }
            y[t * ystride + r * yrow] = s;
        }
}

/* IQ4_XS x Q8_K, shaped as tile_nl (nb super-blocks of 256). TL = 1: llama.cpp's tiled order
 * (akk_vec_dot_kq_tiled_scalar): acc = fma(d_w * (exact block total), d_x, acc). */
AVX2_INLINE void tile_xs(const int TL, const int R, const int T, const uint8_t *w, int64_t rstride, int64_t nb,
                         const uint8_t *x, int64_t xstride, float *y, int64_t ystride, int64_t yrow) {
    const __m256i table2 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)akk_kvalues_iq4nl));
    __m256 acc[4][4];
    float acc1[4][4];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) { acc[r][t] = _mm256_setzero_ps(); acc1[r][t] = 0.0f; }
    for (int64_t b = 0; b < nb; b++) {
        __m256i sumi[4][4], sc[4];
        for (int r = 0; r < R; r++) {
            sc[r] = akk_xs_scales16(w + r * rstride + b * 136);
            for (int t = 0; t < T; t++) sumi[r][t] = _mm256_setzero_si256();
        }
        for (int ib = 0; ib < 8; ib++) {
            __m256i wq[4], ls[4];
            for (int r = 0; r < R; r++) {
                wq[r] = akk_xs_grid32(w + r * rstride + b * 136 + 8 + 16 * ib, table2);
                ls[r] = akk_xs_scale_of(sc[r], ib);
            }
            for (int t = 0; t < T; t++) {
                const __m256i xq = _mm256_loadu_si256((const __m256i *)(x + t * xstride + b * 292 + 4 + 32 * ib));
                for (int r = 0; r < R; r++)
                    sumi[r][t] = _mm256_add_epi32(sumi[r][t], _mm256_madd_epi16(pairs16(wq[r], xq), ls[r]));
            }
        }
        for (int r = 0; r < R; r++) {
            const float wd = half(w + r * rstride + b * 136);
            for (int t = 0; t < T; t++) {
                float xd;
                memcpy(&xd, x + t * xstride + b * 292, 4);
                if (TL) {
                    acc1[r][t] = fmaf(wd * (float)hsum8_epi32(sumi[r][t]), xd, acc1[r][t]);
                    continue;
                }
                acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(wd * xd), _mm256_cvtepi32_ps(sumi[r][t]), acc[r][t]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) y[t * ystride + r * yrow] = TL ? acc1[r][t] : hsum8(acc[r][t]);
}

/* Tiles of R in {1, 2, 4} rows x T in {1, 2} tokens, and 1 x 4, per type (KIND 0 IQ4_NL, 1 MXFP4,
 * 2 IQ4_XS, 3 IQ4_XS in the tiled order). */
AVX2_INLINE void tile_kind(const int KIND, const int R, const int T, const uint8_t *w, int64_t rs, int64_t nb,
                           const uint8_t *x, int64_t xs, float *y, int64_t ys, int64_t yr) {
    if (KIND >= 2) tile_xs(KIND == 3, R, T, w, rs, nb, x, xs, y, ys, yr);
    else tile_nl(KIND, R, T, w, rs, nb, x, xs, y, ys, yr);
}

#define TILE_SWITCH(KIND)                                                                          \
    switch (R * 4 + T) {                                                                           \
    case 4 + 1: tile_kind(KIND, 1, 1, w, rs, nb, x, xs, y, ys, yr); break;                         \
    case 4 + 2: tile_kind(KIND, 1, 2, w, rs, nb, x, xs, y, ys, yr); break;                         \
    case 4 + 4: tile_kind(KIND, 1, 4, w, rs, nb, x, xs, y, ys, yr); break;                         \
    case 8 + 1: tile_kind(KIND, 2, 1, w, rs, nb, x, xs, y, ys, yr); break;                         \
    case 8 + 2: tile_kind(KIND, 2, 2, w, rs, nb, x, xs, y, ys, yr); break;                         \
    case 16 + 1: tile_kind(KIND, 4, 1, w, rs, nb, x, xs, y, ys, yr); break;                        \
    default: tile_kind(KIND, 4, 2, w, rs, nb, x, xs, y, ys, yr); break;                            \
    }

AVX2_FN void tile_iq4_nl(int R, int T, const uint8_t *w, int64_t rs, int64_t nb, const uint8_t *x, int64_t xs,
                         float *y, int64_t ys, int64_t yr) { TILE_SWITCH(0) }
AVX2_FN void tile_mxfp4(int R, int T, const uint8_t *w, int64_t rs, int64_t nb, const uint8_t *x, int64_t xs,
                        float *y, int64_t ys, int64_t yr) { TILE_SWITCH(1) }
AVX2_FN void tile_iq4_xs(int R, int T, const uint8_t *w, int64_t rs, int64_t nb, const uint8_t *x, int64_t xs,
                         float *y, int64_t ys, int64_t yr) { TILE_SWITCH(2) }
AVX2_FN void tile_iq4_xs_tl(int R, int T, const uint8_t *w, int64_t rs, int64_t nb, const uint8_t *x, int64_t xs,
                            float *y, int64_t ys, int64_t yr) { TILE_SWITCH(3) }

/* ---- the _X8 views: one exact integer per block and row, a float fma chain per row ----
 * Eight rows (rstride bytes apart) at once: their 8-lane block sums are folded with hadd into one
 * vector (lane k = row k's block sum), so the fma chain of the 8 rows runs in one register as in
 * llama.cpp's repacked kernels. R = 1 (leftover rows): the block sum by a horizontal add, then a
 * scalar fma. Output of row k, token t at y[t*ystride + k*yrow]. */
AVX2_INLINE void tile_x8(const int MX, const int R, const int T, const uint8_t *w, int64_t rstride, int64_t nb,
                         const uint8_t *x, int64_t xstride, float *y, int64_t ystride, int64_t yrow) {
    const int wbs = MX ? 17 : 18, qoff = MX ? 1 : 2;
    const __m128i table = _mm_loadu_si128((const __m128i *)(MX ? akk_kvalues_mxfp4 : akk_kvalues_iq4nl));
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[4];
    float acc1[4];
    for (int t = 0; t < T; t++) { acc[t] = _mm256_setzero_ps(); acc1[t] = 0.0f; }
    for (int64_t b = 0; b < nb; b++) {
        __m256i wq[8];
        float wd[8];
        for (int k = 0; k < R; k++) {
            const uint8_t *wb = w + k * rstride + b * wbs;
            wq[k] = grid32(wb + qoff, table);
            wd[k] = MX ? akk_e8m0_to_fp32_half(wb[0]) : half(wb);
        }
        for (int t = 0; t < T; t++) {
            const uint8_t *xb = x + t * xstride + b * 34;
            const __m256i xq = _mm256_loadu_si256((const __m256i *)(xb + 2));
            const float xd = half(xb);
            __m256i li[8];
            for (int k = 0; k < R; k++) li[k] = _mm256_madd_epi16(pairs16(wq[k], xq), ones);
            if (R == 8) {
                const __m256i h0 = _mm256_hadd_epi32(_mm256_hadd_epi32(li[0], li[1]), _mm256_hadd_epi32(li[2], li[3]));
                const __m256i h1 = _mm256_hadd_epi32(_mm256_hadd_epi32(li[4], li[5]), _mm256_hadd_epi32(li[6], li[7]));
                const __m256i sums = _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20), _mm256_permute2x128_si256(h0, h1, 0x31));
                const __m256 d = _mm256_mul_ps(_mm256_loadu_ps(wd), _mm256_set1_ps(xd));
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), d, acc[t]);
            } else {
                __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(li[0]), _mm256_extracti128_si256(li[0], 1));
                s4 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
                s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 1));
                acc1[t] = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss((float)_mm_cvtsi128_si32(s4)), _mm_set_ss(wd[0] * xd), _mm_set_ss(acc1[t])));
            }
        }
    }
    for (int t = 0; t < T; t++) {
        if (R == 8) {
            float out[8];
            _mm256_storeu_ps(out, acc[t]);
            for (int k = 0; k < 8; k++) y[t * ystride + k * yrow] = out[k];
        } else {
            y[t * ystride] = acc1[t];
        }
    }
}

#define TILE_X8_SWITCH(MX)                                                                         \
    switch (R * 8 + T) {                                                                           \
    case 8 + 1: tile_x8(MX, 1, 1, w, rs, nb, x, xs, y, ys, yr); break;                             \
    case 8 + 2: tile_x8(MX, 1, 2, w, rs, nb, x, xs, y, ys, yr); break;                             \
    case 64 + 1: tile_x8(MX, 8, 1, w, rs, nb, x, xs, y, ys, yr); break;                            \
    default: tile_x8(MX, 8, 2, w, rs, nb, x, xs, y, ys, yr); break;                                \
    }

AVX2_FN void tile_iq4_nl_x8(int R, int T, const uint8_t *w, int64_t rs, int64_t nb, const uint8_t *x, int64_t xs,
                            float *y, int64_t ys, int64_t yr) { TILE_X8_SWITCH(0) }
AVX2_FN void tile_mxfp4_x8(int R, int T, const uint8_t *w, int64_t rs, int64_t nb, const uint8_t *x, int64_t xs,
                           float *y, int64_t ys, int64_t yr) { TILE_X8_SWITCH(1) }

float akk_vec_dot_iq4mx_avx2(int wtype, int64_t n, const void *w, const void *x) {
    float y = 0.0f;
    const uint8_t *wb = (const uint8_t *)w, *xb = (const uint8_t *)x;
    switch (wtype) {
    case AKK_IQ4_NL: tile_iq4_nl(1, 1, wb, 0, n / 32, xb, 0, &y, 0, 1); break;
    case AKK_MXFP4: tile_mxfp4(1, 1, wb, 0, n / 32, xb, 0, &y, 0, 1); break;
    case AKK_IQ4_XS: tile_iq4_xs(1, 1, wb, 0, n / 256, xb, 0, &y, 0, 1); break;
    case AKK_IQ4_NL_X8: tile_iq4_nl_x8(1, 1, wb, 0, n / 32, xb, 0, &y, 0, 1); break;
    case AKK_MXFP4_X8: tile_mxfp4_x8(1, 1, wb, 0, n / 32, xb, 0, &y, 0, 1); break;
    default: break;
    }
    return y;
}

/* Rows [r0, r1) x all tokens by tiles (akk_internal.h). The range is cut into tr equal parts and a
 * row tile takes row i of every part (tr long sequential weight streams, which the hardware
 * prefetcher follows; adjacent rows would interleave tr short ones); leftover rows go one at a
 * time. Decode: tr1 x 1 tiles (from distant rows when tr1 > 1); prefill: token chunks of TOK_CHUNK, tr x tt tiles (tt a power of
 * two; the chunk's last tokens in tiles of the smaller powers). */
void akk_rows_tiled_avx2(akk_tile_fn tile, int64_t be, int tr1, int tr, int tt, const uint8_t *W, int64_t wrow,
                         int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X, int64_t xstride, int64_t n_tok,
                         float *Y, int64_t ystride) {
    const int64_t nb = n_in / be;
    if (n_tok == 1) tr = tr1, tt = 1;
    const int64_t part = (r1 - r0) / tr, rest = r0 + tr * part;
    for (int64_t c0 = 0; c0 < n_tok; c0 += TOK_CHUNK) {
        const int64_t c1 = c0 + TOK_CHUNK < n_tok ? c0 + TOK_CHUNK : n_tok;
        for (int64_t i = 0; i < part + (r1 - rest); i++) {
            const int R = i < part ? tr : 1;
            const int64_t r = i < part ? r0 + i : rest + (i - part);
            const int64_t rstride = i < part ? part * wrow : wrow;
            for (int64_t t = c0; t < c1;) {
                int T = tt;
                while (T > c1 - t) T /= 2;
                tile(R, T, W + r * wrow, rstride, nb, X + t * xstride, xstride, Y + t * ystride + r, ystride,
                     i < part ? part : 1);
                t += T;
            }
        }
    }
}

/* akk_rows_fn of each type (akk_internal.h). */
#define ROWS_FN(name, tile, be, tr1, tr, tt)                                                       \
    void name(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X, \
              int64_t xs, int64_t n_tok, float *Y, int64_t ys) {                                   \
        akk_rows_tiled_avx2(tile, be, tr1, tr, tt, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);    \
    }
/* IQ4_XS: 1 x 1 and 1 x 4 tiles, measured single-threaded on 1024 x 2048 (thread CPU time):
 * prefill of 64 tokens 43 GMAC/s (2 x 2: 32), decode 24.7 (4 x 1: 21.7). */
ROWS_FN(akk_rows_iq4_nl_avx2, tile_iq4_nl, 32, 4, 2, 2)
ROWS_FN(akk_rows_mxfp4_avx2, tile_mxfp4, 32, 4, 2, 2)
ROWS_FN(akk_rows_iq4_xs_avx2, tile_iq4_xs, 256, 1, 1, 4)
ROWS_FN(akk_rows_iq4_xs_tl_avx2, tile_iq4_xs_tl, 256, 1, 1, 4)
ROWS_FN(akk_rows_iq4_nl_x8_avx2, tile_iq4_nl_x8, 32, 8, 8, 2)
ROWS_FN(akk_rows_mxfp4_x8_avx2, tile_mxfp4_x8, 32, 8, 8, 2)

/*
 * AVX2 prefill tiles of the 32-element block types Q8_0, Q5_0, Q4_0 (x Q8_0 activations) and
 * Q4_1, Q5_1 (x Q8_1), bit-identical to the scalar references (quant.c, kquant_dot.c): the AVX2
 * counterpart of simd_avx512_bias.c for CPUs without VNNI (Zen 3 and older).
 *
 * Every output keeps llama.cpp's AVX2 float order: per block 8 exact int32 lanes (lane l = sum of
 * w*x over elements 4l..4l+3), acc = fma(d_w*d_x, (float)lanes, acc), then hsum8 (+ summs, the
 * chain summs = fma(m_w, s_x, summs) of Q4_1/Q5_1). Without vpdpbusd a lane costs vpmaddubsw
 * (unsigned x signed bytes -> int16 pair sums) and vpmaddwd by ones; the pair sums must not
 * saturate, so:
 *  - Q5_0 / Q4_0: weights + 16 / + 8 (unsigned, <= 31: pair sums <= 2*31*127 < 32768), lanes
 *    start from -bias x the sum of the lane's 4 activation quants (laid out once per token chunk);
 *  - Q4_1 / Q5_1: the unsigned quants as they are (no start);
 *  - Q8_0: w + 128 would saturate (2*255*127) and the sign trick costs a third multiply-pipe op
 *    per output-block, so both sides are widened to int16 once (weights per row tile, activations
 *    per token chunk; q8_widen) and a lane is vpmaddwd + vpmaddwd + vpaddd, exact for any int8s
 *    (Zen 3, one core: 2.09 -> 1.78 cycles per output-block in a loop of the tile's ops alone).
 * Each row tile's weights are unpacked once per token chunk, so the block loop only loads them;
 * the d_w*d_x products of a tile (R*T per block) are computed together and read back as
 * broadcasts (a load, no vector ALU op), and the Q4_1/Q5_1 min chains run on 8 outputs at once.
 * Tile shape and numbers: see B_R / B_T below; the row kernels of fewer tokens (decode)
 * stay the tile rows of simd_avx2.c / simd_avx2_kquant.c (see ROWS_FN).
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include "akk_avx2.h"

/* The register tile (rows x tokens, one 8-lane accumulator each): 4 x 2 for every type. Zen 4
 * with ADAK_CPU=avx2, 1 thread, 576 x 576, 128 tokens, cycles per output-block (Q4_0 / Q8_0): 4x2
 * 2.23 / 2.40, 4x3 2.35 / 2.56 (its 12 accumulators spill), 3x3 2.41 / 2.63, 2x4 2.35 / 2.55, 3x2
 * 2.37 / 2.62, 1x4 3.11 / 3.06 (Q8_0 with the sign trick then). B_NTT: the token tiles of a
 * chunk (64 tokens whose activations are laid out once; Zen 3, 1536 x 576: 16 or 8 tokens cost
 * 3-10% more, 128 the same). */
#define B_R 4
#define B_T 2
#define B_NTT 32
/* per block, the R*T products of a tile (one 8-float vector) */
#define B_P (B_R * B_T)

static inline int wbias(int type) { return type == AKK_Q5_0 ? 16 : type == AKK_Q4_0 ? 8 : 0; }

/* One weight block (not Q8_0) as 32 unsigned bytes in element order: value + wbias. */
AVX2_INLINE __m256i w_unsigned(const int type, const uint8_t *wb) {
    const int qs = type == AKK_Q5_0 ? 6 : type == AKK_Q4_0 ? 2 : type == AKK_Q4_1 ? 4 : 8;
    const __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(wb + qs)));
    const __m256i v = _mm256_and_si256(_mm256_srlv_epi64(b, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0f));
    if (type == AKK_Q4_0 || type == AKK_Q4_1) return v;
    /* Q5_x: + 16 where bit j of qh (the 4 bytes before the quants) is set */
    return _mm256_or_si256(v, _mm256_and_si256(akk_bits_to_bytes(wb + qs - 4), _mm256_set1_epi8(0x10)));
}

/* A Q8_0 block's 32 quants q as int16 halves for vpmaddwd: h[0] holds elements 4l, 4l+1 and h[1]
 * elements 4l+2, 4l+3 for l = 0..7, so madd(h[0], .) + madd(h[1], .) has lane l's 4 products. */
AVX2_INLINE void q8_widen(const uint8_t *q, __m256i *h) {
    const __m256i pick = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,
                                          0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
    /* qwords (0..15 pairs 4l,4l+1 | 0..15 pairs 4l+2,4l+3 | the same of 16..31) -> (0, 2, 1, 3) */
    const __m256i p = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)q), pick), 0xd8);
    h[0] = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(p));
    h[1] = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(p, 1));
}

/* 8 int32 lanes of u (unsigned bytes) x q (signed): lane l = sum over bytes 4l..4l+3. */
AVX2_INLINE __m256i lanes(__m256i u, __m256i q) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, q), _mm256_set1_epi16(1));
}

/* The hsum8s of a 4 x 2 tile's accumulators (akk_hsum8_ref's adds, 8 outputs per instruction):
 * lane t*4 + r of the result is hsum8(a[r][t]). */
AVX2_INLINE __m256 hsum8_4x2(__m256 a[B_R][B_T]) {
    __m256 s[4];
    for (int r = 0; r < 4; r++) /* hi + lo of a[r][0] | of a[r][1] */
        s[r] = _mm256_add_ps(_mm256_permute2f128_ps(a[r][0], a[r][1], 0x31), _mm256_permute2f128_ps(a[r][0], a[r][1], 0x20));
    /* u0 + u2, u1 + u3 (movehl): [r0: v0 v1, r1: v0 v1 | the same of token 1] */
    const __m256 c01 = _mm256_add_ps(_mm256_shuffle_ps(s[0], s[1], 0x44), _mm256_shuffle_ps(s[0], s[1], 0xee));
    const __m256 c23 = _mm256_add_ps(_mm256_shuffle_ps(s[2], s[3], 0x44), _mm256_shuffle_ps(s[2], s[3], 0xee));
    /* v0 + v1 (movehdup): rows 0..3 of token 0 | of token 1 */
    return _mm256_add_ps(_mm256_shuffle_ps(c01, c23, 0x88), _mm256_shuffle_ps(c01, c23, 0xdd));
}

/*
 * R rows x T tokens (R <= B_R, T <= B_T) over nb blocks.
 * Row tile (laid out once per chunk): wu[(b*B_R + r)*32] row r's block b as unsigned bytes (Q8_0:
 * its int16 h[0], and ws[...] its h[1]; q8_widen); wd[b*B_P + r*B_T + t] its d (for every t),
 * wm[...] its m (min types). Token tile: x + t*xs its tokens' activation rows, xa[(b*B_T + t)*XA]
 * their lane starts (biased types, XA = 8 int32) or their quants' int16 h[0], h[1] (Q8_0, XA = 16;
 * x unused), xd[b*B_P + r*B_T + t] token t's d (for every r), xm[...] its
 * s (min types). dp: scratch of nb*B_P floats. Output of row r, token t: y[t*ys + r].
 */
AVX2_INLINE void tile(const int type, const int R, const int T, const uint8_t *wu, const uint8_t *ws,
                      const float *wd, const float *wm, const uint8_t *x, int64_t xs, const int32_t *xa,
                      const float *xd, const float *xm, int64_t nb, float *dp, float *y, int64_t ys) {
    const int xb = akk_dense_has_min(type) ? 36 : 34, xq = xb - 32;
    for (int64_t b = 0; b < nb; b++)
        _mm256_store_ps(dp + b * B_P, _mm256_mul_ps(_mm256_load_ps(wd + b * B_P), _mm256_load_ps(xd + b * B_P)));
    __asm__ volatile("" ::: "memory"); /* keep the broadcasts as loads */
    __m256 acc[B_R][B_T];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i xv[B_T][2];
        for (int t = 0; t < T; t++) {
            if (type == AKK_Q8_0) {
                xv[t][0] = _mm256_load_si256((const __m256i *)(xa + (b * B_T + t) * 16));
                xv[t][1] = _mm256_load_si256((const __m256i *)(xa + (b * B_T + t) * 16 + 8));
            } else
                xv[t][0] = _mm256_loadu_si256((const __m256i *)(x + t * xs + b * xb + xq));
        }
        for (int r = 0; r < R; r++) {
            const __m256i wq = _mm256_load_si256((const __m256i *)(wu + (b * B_R + r) * 32));
            const __m256i wq1 = type == AKK_Q8_0 ? _mm256_load_si256((const __m256i *)(ws + (b * B_R + r) * 32)) : wq;
            for (int t = 0; t < T; t++) {
                __m256i l;
                if (type == AKK_Q8_0)
                    l = _mm256_add_epi32(_mm256_madd_epi16(wq, xv[t][0]), _mm256_madd_epi16(wq1, xv[t][1]));
                else
                    l = lanes(wq, xv[t][0]);
                if (wbias(type)) l = _mm256_add_epi32(l, _mm256_load_si256((const __m256i *)(xa + (b * B_T + t) * 8)));
                acc[r][t] = _mm256_fmadd_ps(_mm256_broadcast_ss(dp + b * B_P + r * B_T + t), _mm256_cvtepi32_ps(l), acc[r][t]);
            }
        }
    }
    float sm[B_P] __attribute__((aligned(32)));
    if (akk_dense_has_min(type)) {
        __m256 s0 = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; b++) s0 = _mm256_fmadd_ps(_mm256_load_ps(wm + b * B_P), _mm256_load_ps(xm + b * B_P), s0);
        _mm256_store_ps(sm, s0);
    }
    if (R == 4 && T == 2) {
        __m256 h = hsum8_4x2(acc);
        if (akk_dense_has_min(type)) h = _mm256_add_ps(h, _mm256_setr_ps(sm[0], sm[2], sm[4], sm[6], sm[1], sm[3], sm[5], sm[7]));
        _mm_storeu_ps(y, _mm256_castps256_ps128(h));
        _mm_storeu_ps(y + ys, _mm256_extractf128_ps(h, 1));
        return;
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) y[t * ys + r] = akk_dense_has_min(type) ? hsum8(acc[r][t]) + sm[r * B_T + t] : hsum8(acc[r][t]);
}

typedef void (*tile_fn)(int R, int T, const uint8_t *wu, const uint8_t *ws, const float *wd, const float *wm,
                        const uint8_t *x, int64_t xs, const int32_t *xa, const float *xd, const float *xm, int64_t nb,
                        float *dp, float *y, int64_t ys);

/* One type's tile for R in 1..4, T in 1..2 as compile-time shapes. */
#define TILE_CASE(R, T) case R * 8 + T: tile(TYPE, R, T, wu, ws, wd, wm, x, xs, xa, xd, xm, nb, dp, y, ys); break;
#define TILE_ROWS(R) TILE_CASE(R, 1) TILE_CASE(R, 2)
#define TILE_FN(name, TYPE_)                                                                        \
    AVX2_FN void name(int R, int T, const uint8_t *wu, const uint8_t *ws, const float *wd, const float *wm, \
                      const uint8_t *x, int64_t xs, const int32_t *xa, const float *xd, const float *xm,     \
                      int64_t nb, float *dp, float *y, int64_t ys) {                                 \
        enum { TYPE = TYPE_ };                                                                      \
        switch (R * 8 + T) {                                                                        \
        TILE_ROWS(1) TILE_ROWS(2) TILE_ROWS(3) TILE_ROWS(4)                                         \
        default: break;                                                                             \
        }                                                                                           \
    }
TILE_FN(tile_q8_0, AKK_Q8_0)
TILE_FN(tile_q5_0, AKK_Q5_0)
TILE_FN(tile_q4_0, AKK_Q4_0)
TILE_FN(tile_q4_1, AKK_Q4_1)
TILE_FN(tile_q5_1, AKK_Q5_1)

/* Rows [r0, r1) x n_tok tokens: token chunks of B_NTT token tiles, whose lane starts and scales
 * are laid out once per chunk; row tiles of B_R adjacent rows, unpacked once per chunk; token
 * tiles of B_T. Scratch: the thread's (without it, `fallback`). */
AVX2_INLINE void rows_bias(const int type, tile_fn tile_odd, akk_rows_fn fallback, const uint8_t *W, int64_t wrow,
                           int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X, int64_t xstride, int64_t n_tok,
                           float *Y, int64_t ystride) {
    const int64_t nb = n_in / 32, chunk = (int64_t)B_NTT * B_T;
    const int wbs = akk_dense_block_bytes(type), xb = akk_dense_has_min(type) ? 36 : 34, bias = wbias(type);
    /* per chunk: lane starts or Q8_0's int16 quants (B_NTT*nb*B_T*xaw int32), d and s
     * (B_NTT*nb*B_P floats each); per row tile: unpacked quants (Q8_0: both int16 halves,
     * 2 * nb*B_R*32 bytes), d, m (nb*B_P floats each); dp */
    const int xaw = type == AKK_Q8_0 ? 16 : 8; /* int32 per token and block in xa */
    const size_t xa_n = (size_t)(B_NTT * nb * B_T * xaw), xp_n = (size_t)(B_NTT * nb * B_P);
    const size_t wu_n = (size_t)(nb * B_R * 32), wp_n = (size_t)(nb * B_P);
    uint8_t *scr = akk_thread_scratch(4 * (xa_n + 2 * xp_n) + 2 * wu_n + 4 * 3 * wp_n);
    if (!scr) {
        fallback(W, wrow, r0, r1, n_in, X, xstride, n_tok, Y, ystride);
        return;
    }
    int32_t *xa = (int32_t *)(void *)scr;
    float *xd = (float *)(void *)(xa + xa_n), *xm = xd + xp_n;
    uint8_t *wu = (uint8_t *)(xm + xp_n), *ws = wu + wu_n;
    float *wd = (float *)(void *)(ws + wu_n), *wm = wd + wp_n, *dp = wm + wp_n;
    const __m256i vbias = _mm256_set1_epi8((char)bias), ones = _mm256_set1_epi16(1);
    for (int64_t c0 = 0; c0 < n_tok; c0 += chunk) {
        const int64_t c1 = c0 + chunk < n_tok ? c0 + chunk : n_tok;
        for (int64_t t = 0; t < c1 - c0; t++) {
            const int64_t tt = t / B_T, k = t % B_T;
            const uint8_t *xr = X + (c0 + t) * xstride;
            float *dt = xd + tt * nb * B_P + k, *st = xm + tt * nb * B_P + k;
            int32_t *at = xa + tt * nb * B_T * xaw + k * xaw;
            for (int64_t b = 0; b < nb; b++) {
                const float d = akk_lut16(xr + b * xb), s = akk_dense_has_min(type) ? akk_lut16(xr + b * xb + 2) : 0.0f;
                for (int r = 0; r < B_R; r++) {
                    dt[b * B_P + r * B_T] = d;
                    if (akk_dense_has_min(type)) st[b * B_P + r * B_T] = s;
                }
                if (bias) {
                    const __m256i q = _mm256_loadu_si256((const __m256i *)(xr + b * xb + xb - 32));
                    const __m256i l = _mm256_madd_epi16(_mm256_maddubs_epi16(vbias, q), ones);
                    _mm256_store_si256((__m256i *)(void *)(at + b * B_T * xaw), _mm256_sub_epi32(_mm256_setzero_si256(), l));
                } else if (type == AKK_Q8_0) {
                    __m256i h[2];
                    q8_widen(xr + b * xb + 2, h);
                    _mm256_store_si256((__m256i *)(void *)(at + b * B_T * xaw), h[0]);
                    _mm256_store_si256((__m256i *)(void *)(at + b * B_T * xaw + 8), h[1]);
                }
            }
        }
        for (int64_t r = r0; r < r1; r += B_R) {
            const int R = (int)(r1 - r < B_R ? r1 - r : B_R);
            /* the row tile after next into the cache: with few tokens per chunk the unpacking of a
             * matrix streamed from memory (the 49152-row head) otherwise waits on every line */
            if (r + 2 * B_R < r1) {
                const int64_t nr = r1 - (r + 2 * B_R) < B_R ? r1 - (r + 2 * B_R) : B_R;
                const char *next = (const char *)(W + (r + 2 * B_R) * wrow);
                for (int64_t l = 0; l < (nr * wrow + 63) / 64; l++) _mm_prefetch(next + 64 * l, _MM_HINT_T0);
            }
            for (int64_t b = 0; b < nb; b++)
                for (int k = 0; k < R; k++) {
                    const uint8_t *wb = W + (r + k) * wrow + b * wbs;
                    if (type == AKK_Q8_0) {
                        __m256i h[2];
                        q8_widen(wb + 2, h);
                        _mm256_store_si256((__m256i *)(void *)(wu + (b * B_R + k) * 32), h[0]);
                        _mm256_store_si256((__m256i *)(void *)(ws + (b * B_R + k) * 32), h[1]);
                    } else
                        _mm256_store_si256((__m256i *)(void *)(wu + (b * B_R + k) * 32), w_unsigned(type, wb));
                    const float d = akk_lut16(wb), m = akk_dense_has_min(type) ? akk_lut16(wb + 2) : 0.0f;
                    for (int t = 0; t < B_T; t++) {
                        wd[b * B_P + k * B_T + t] = d;
                        if (akk_dense_has_min(type)) wm[b * B_P + k * B_T + t] = m;
                    }
                }
            for (int64_t t = c0; t < c1; t += B_T) {
                const int T = (int)(c1 - t < B_T ? c1 - t : B_T);
                const int64_t tt = (t - c0) / B_T;
                if (R == B_R && T == B_T) /* the full tile inline, odd shapes through tile_odd */
                    tile(type, B_R, B_T, wu, ws, wd, wm, X + t * xstride, xstride, xa + tt * nb * B_T * xaw,
                         xd + tt * nb * B_P, xm + tt * nb * B_P, nb, dp, Y + t * ystride + r, ystride);
                else
                    tile_odd(R, T, wu, ws, wd, wm, X + t * xstride, xstride, xa + tt * nb * B_T * xaw,
                             xd + tt * nb * B_P, xm + tt * nb * B_P, nb, dp, Y + t * ystride + r, ystride);
            }
        }
    }
}

/* From how many tokens the tiles beat the tile rows of simd_avx2.c / simd_avx2_kquant.c (Zen 4,
 * ADAK_CPU=avx2, 1 thread, 1536 x 576; the old rows decode better). A slice of more than
 * B_BIG_BYTES of weights (streamed from memory, e.g. the 49152 x 576 head) takes the tiles from
 * B_BIG_TOK tokens only: with fewer, unpacking it cost more than it saved (Q8_0, 16 tokens: 3.4
 * against 3.1 cycles per output-block; Q5_1, 2 tokens: 8.6 against 6.2). */
#define B_BIG_BYTES ((int64_t)4 << 20)
#define B_BIG_TOK 32
#define ROWS_FN(name, TYPE_, tile_odd, fallback, min_tok)                                           \
    AVX2_FN void rows_##name(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,   \
                             const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {    \
        rows_bias(TYPE_, tile_odd, fallback, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);            \
    }                                                                                               \
    void name(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X, \
              int64_t xs, int64_t n_tok, float *Y, int64_t ys) {                                    \
        if (n_tok < (min_tok) || (n_tok < B_BIG_TOK && (r1 - r0) * wrow > B_BIG_BYTES))               \
            fallback(W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);                                   \
        else rows_##name(W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);                                \
    }
ROWS_FN(akk_rows_q8_0_pf_avx2, AKK_Q8_0, tile_q8_0, akk_rows_q8_0_avx2, 6)
ROWS_FN(akk_rows_q5_0_pf_avx2, AKK_Q5_0, tile_q5_0, akk_rows_q5_0_avx2, 2)
ROWS_FN(akk_rows_q4_0_pf_avx2, AKK_Q4_0, tile_q4_0, akk_rows_q4_0_avx2, 3)
ROWS_FN(akk_rows_q4_1_pf_avx2, AKK_Q4_1, tile_q4_1, akk_rows_q4_1_avx2, 3)
ROWS_FN(akk_rows_q5_1_pf_avx2, AKK_Q5_1, tile_q5_1, akk_rows_q5_1_avx2, 2)

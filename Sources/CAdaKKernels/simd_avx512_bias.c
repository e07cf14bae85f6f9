/*
 * AVX-512VL + VNNI prefill tiles of Q8_0 and Q5_0 (x Q8_0 activations), bit-identical to the
 * scalar references (quant.c, kquant_dot.c).
 *
 * Every output keeps llama.cpp's AVX2 float order: per block 8 exact int32 lanes (lane l = sum of
 * w*x over elements 4l..4l+3), acc = fma(d_w*d_x, (float)lanes, acc), then hsum8. On Zen 4
 * vpdpbusd and the fma share two pipes (FP0/FP1, two 256-bit operations per cycle between them),
 * so an output costs at least one cycle per block; the tiles keep everything else off those pipes
 * and spend few other instructions per output:
 *  - the weights become unsigned bytes once per (row, block), shared by the tile's tokens: Q8_0
 *    w + 128 (an xor), Q5_0 the nibbles + 16 * the high bit (a masked add);
 *  - each lane starts from that bias taken back out: -128 (Q8_0) or -16 (Q5_0) times the sum of
 *    the lane's 4 activation quants, prepared once per token chunk (`corr`), so one vpdpbusd on a
 *    copy of it gives the lane (Q8_0's 256-bit VNNI tile in akk_quant_tiles.h spends a vpsignb per
 *    output, which runs on the same two pipes; Q5_0's 512-bit pair tile a 64-bit broadcast that
 *    does too; Q4_0's tile there already works this way, with the lane starts made per tile);
 *  - d_w*d_x: one 16-wide multiply per (row, token) and 16 blocks, from scales unpacked once per
 *    chunk / row tile, then a broadcast load inside the fma;
 *  - the tile's final hsum8s run 8 outputs at a time (the same adds, transposed).
 * Numbers: docs/BENCHMARKS.md "Q8_0 / Q5_0 prefill tiles without vpsignb".
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include "akk_avx2.h"

#define L_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define L_FN static __attribute__((target(L_TARGET)))
#define L_INLINE static inline __attribute__((always_inline, target(L_TARGET)))

/* Token chunk whose lane starts and scales are prepared once for all rows; tiles of up to
 * L_MAXR rows x L_MAXT tokens (1 thread, 1536 x 576 Q8_0, 64 tokens: 4x4 ~4% faster than 4x3,
 * 3x4 ~7% slower; chunks of 16 or 32 tokens no faster). */
#define L_CHUNK 64
#define L_MAXR 4
#define L_MAXT 4
/* Blocks whose scale products a tile prepares at once (a multiple of 16). */
#define L_SEG 64

static inline float lut16(const uint8_t *p) { return akk_fp16_lut[akk_load_u16(p)]; }

static inline int wblock(int type) { return type == AKK_Q8_0 ? 34 : 22; }
/* The bias that makes a type's weights unsigned bytes. */
static inline int wbias(int type) { return type == AKK_Q8_0 ? 128 : 16; }

/* One weight block as 32 unsigned bytes in element order (value + wbias). */
L_INLINE __m256i w_unsigned(const int type, const uint8_t *wb) {
    if (type == AKK_Q8_0)
        return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(wb + 2)), _mm256_set1_epi8((char)0x80));
    /* Q5_0: low 128 bits the low nibbles (elements 0..15), high the high nibbles (16..31), + 16
     * where bit j of qh is set (element j) */
    const __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(wb + 6)));
    const __m256i v = _mm256_and_si256(_mm256_srlv_epi64(b, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0f));
    return _mm256_mask_add_epi8(v, (__mmask32)(akk_load_u16(wb + 2) | (uint32_t)akk_load_u16(wb + 4) << 16), v,
                                _mm256_set1_epi8(0x10));
}

/* The 8 hsum8s of a[0..7] (akk_hsum8_ref's adds, 8 outputs per instruction): out[i] = hsum8(a[i]). */
L_INLINE void hsum8x8(const __m256 a[8], float out[8]) {
    /* lo + hi halves: [a0 s0..s3 | a1 s0..s3], ... */
    __m256 p[4];
    for (int i = 0; i < 4; i++)
        p[i] = _mm256_add_ps(_mm256_permute2f128_ps(a[2 * i + 1], a[2 * i], 0x02),
                             _mm256_permute2f128_ps(a[2 * i + 1], a[2 * i], 0x13));
    /* s0 + s2, s1 + s3 (movehl): [a0 u0 u1, a2 u0 u1 | a1 .., a3 ..] */
    __m256 q[2];
    for (int i = 0; i < 2; i++)
        q[i] = _mm256_add_ps(_mm256_shuffle_ps(p[2 * i], p[2 * i + 1], 0x44), _mm256_shuffle_ps(p[2 * i], p[2 * i + 1], 0xee));
    /* u0 + u1 (movehdup): [a0, a2, a4, a6 | a1, a3, a5, a7] */
    const __m256 r = _mm256_add_ps(_mm256_shuffle_ps(q[0], q[1], 0x88), _mm256_shuffle_ps(q[0], q[1], 0xdd));
    float s[8];
    _mm256_storeu_ps(s, r);
    for (int i = 0; i < 4; i++) {
        out[2 * i] = s[i];
        out[2 * i + 1] = s[4 + i];
    }
}

/*
 * R rows (rs bytes apart) x T tokens (xs apart) over nb blocks. Prepared by the driver: corr[(t *
 * nb + b) * 8] the lane starts of token t, block b; xd[t*scs + b] token t's d as float; wd[r*scs +
 * b] row r's (both zero from nb to scs). Output of row r, token t: y[t*ys + r*yr].
 */
L_INLINE void tile(const int type, const int R, const int T, const uint8_t *w, int64_t rs, int64_t nb,
                   const uint8_t *x, int64_t xs, const int32_t *corr, float *y, int64_t ys, int64_t yr,
                   const float *wd, const float *xd, int64_t scs) {
    const int wbs = wblock(type);
    __m256 acc[L_MAXR][L_MAXT];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
    for (int64_t s0 = 0; s0 < nb; s0 += L_SEG) {
        const int64_t s1 = s0 + L_SEG < nb ? s0 + L_SEG : nb;
        /* d_w*d_x of every (row, token) and block of the segment, 16 blocks per multiply */
        float dp[L_MAXR][L_MAXT][L_SEG] __attribute__((aligned(64)));
        for (int r = 0; r < R; r++)
            for (int t = 0; t < T; t++)
                for (int64_t b = s0; b < s1; b += 16)
                    _mm512_store_ps(dp[r][t] + (b - s0), _mm512_mul_ps(_mm512_load_ps(wd + r * scs + b), _mm512_load_ps(xd + t * scs + b)));
        __asm__ volatile("" ::: "memory"); /* keep the broadcasts as loads */
        for (int64_t b = s0; b < s1; b++) {
            __m256i wq[L_MAXR], xq[L_MAXT], c0[L_MAXT];
            for (int r = 0; r < R; r++) wq[r] = w_unsigned(type, w + r * rs + b * wbs);
            for (int t = 0; t < T; t++) {
                xq[t] = _mm256_loadu_si256((const __m256i *)(x + t * xs + b * 34 + 2));
                c0[t] = _mm256_load_si256((const __m256i *)(corr + (t * nb + b) * 8));
            }
            for (int r = 0; r < R; r++)
                for (int t = 0; t < T; t++) {
                    const __m256 lf = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(c0[t], wq[r], xq[t]));
                    acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(dp[r][t][b - s0]), lf, acc[r][t]);
                }
        }
    }
    /* outputs i = r*T + t, 8 at a time, the rest one by one */
    __m256 a[L_MAXR * L_MAXT];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) a[r * T + t] = acc[r][t];
    float s[L_MAXR * L_MAXT];
    int i = 0;
    for (; i + 8 <= R * T; i += 8) hsum8x8(a + i, s + i);
    for (; i < R * T; i++) s[i] = hsum8(a[i]);
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) y[t * ys + r * yr] = s[r * T + t];
}

typedef void (*tile_fn)(int R, int T, const uint8_t *w, int64_t rs, int64_t nb, const uint8_t *x, int64_t xs,
                        const int32_t *corr, float *y, int64_t ys, int64_t yr, const float *wd, const float *xd,
                        int64_t scs);

/* The tile of one type for R, T in 1..4 (compile-time shapes). */
#define TILE_CASE(R, T) case R * 8 + T: tile(TYPE, R, T, w, rs, nb, x, xs, corr, y, ys, yr, wd, xd, scs); break;
#define TILE_ROWS(R) TILE_CASE(R, 1) TILE_CASE(R, 2) TILE_CASE(R, 3) TILE_CASE(R, 4)
#define TILE_FN(name, TYPE_)                                                                        \
    L_FN void name(int R, int T, const uint8_t *w, int64_t rs, int64_t nb, const uint8_t *x, int64_t xs,  \
                   const int32_t *corr, float *y, int64_t ys, int64_t yr, const float *wd, const float *xd, \
                   int64_t scs) {                                                                   \
        enum { TYPE = TYPE_ };                                                                      \
        switch (R * 8 + T) {                                                                        \
        TILE_ROWS(1) TILE_ROWS(2) TILE_ROWS(3) TILE_ROWS(4)                                         \
        default: break;                                                                             \
        }                                                                                           \
    }
TILE_FN(tile_q8_0, AKK_Q8_0)
TILE_FN(tile_q5_0, AKK_Q5_0)

/* Lane starts of one activation block: -bias * (sum of each lane's 4 quants). */
L_INLINE __m256i lane_corr(const uint8_t *q, int bias) {
    const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), _mm256_loadu_si256((const __m256i *)q));
    return _mm256_mullo_epi32(s, _mm256_set1_epi32(-bias));
}

/* Rows [r0, r1) x n_tok tokens: token chunks of L_CHUNK (lane starts and scales prepared once per
 * chunk), row tiles of L_MAXR rows taken one from each of L_MAXR equal parts of the range (long
 * sequential weight streams, as rows_tiled in akk_quant_tiles.h), token tiles of L_MAXT. Scratch:
 * the thread's (without it, `fallback`). */
L_FN void rows_bias(const int type, tile_fn tile, akk_rows_fn fallback, const uint8_t *W, int64_t wrow, int64_t r0,
                    int64_t r1, int64_t n_in, const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y,
                    int64_t ystride) {
    const int64_t nb = n_in / 32, scs = (nb + 15) & ~(int64_t)15;
    const int wbs = wblock(type), bias = wbias(type);
    const size_t corr_bytes = (size_t)(L_CHUNK * nb * 32);
    uint8_t *scr = akk_thread_scratch(corr_bytes + sizeof(float) * (size_t)(scs * (L_CHUNK + L_MAXR)));
    if (!scr) {
        fallback(W, wrow, r0, r1, n_in, X, xstride, n_tok, Y, ystride);
        return;
    }
    int32_t *corr = (int32_t *)(void *)scr;
    float *xd = (float *)(void *)(scr + corr_bytes), *wd = xd + scs * L_CHUNK;
    const int64_t part = (r1 - r0) / L_MAXR, rest = r0 + L_MAXR * part;
    for (int64_t c0 = 0; c0 < n_tok; c0 += L_CHUNK) {
        const int64_t c1 = c0 + L_CHUNK < n_tok ? c0 + L_CHUNK : n_tok;
        for (int64_t t = 0; t < c1 - c0; t++) {
            const uint8_t *xt = X + (c0 + t) * xstride;
            for (int64_t b = 0; b < scs; b++) xd[t * scs + b] = b < nb ? lut16(xt + b * 34) : 0.0f;
            for (int64_t b = 0; b < nb; b++)
                _mm256_store_si256((__m256i *)(void *)(corr + (t * nb + b) * 8), lane_corr(xt + b * 34 + 2, bias));
        }
        for (int64_t i = 0; i < part + (r1 - rest); i++) {
            /* row tile i: row i of each part, or one leftover row once the parts are done */
            const int R = i < part ? L_MAXR : 1;
            const int64_t r = i < part ? r0 + i : rest + (i - part);
            const int64_t rstride = i < part ? part * wrow : wrow;
            for (int k = 0; k < R; k++)
                for (int64_t b = 0; b < scs; b++) wd[k * scs + b] = b < nb ? lut16(W + r * wrow + k * rstride + b * wbs) : 0.0f;
            for (int64_t t = c0; t < c1; t += L_MAXT) {
                const int T = (int)(c1 - t < L_MAXT ? c1 - t : L_MAXT);
                tile(R, T, W + r * wrow, rstride, nb, X + t * xstride, xstride, corr + (t - c0) * nb * 8,
                     Y + t * ystride + r, ystride, i < part ? part : 1, wd, xd + (t - c0) * scs, scs);
            }
        }
    }
}


/* ---- decode: one token (and scratch-less calls), the same biased weights and lane starts ----
 * The row kernel before this (akk_quant_tiles.h / simd_avx2_kquant.c) took one row at a time,
 * whose 8-lane accumulator is one fma chain across the blocks; here D_ROWS consecutive rows run
 * side by side (independent chains, one sequential weight stream), the lane starts and d_x are
 * prepared once per token for every row, and a (row, block) costs: the unsigned weights (Q8_0 an
 * xor, Q5_0 a shift, an and and a masked add), one vpdpbusd on a copy of the lane starts, the
 * conversion, d_w * d_x, the fma. */
#define D_ROWS 4

L_INLINE void dec_tile(const int type, const int R, const uint8_t *w, int64_t rs, int64_t nb, const uint8_t *x,
                       const int32_t *corr, const float *xd, float *y, int64_t yr) {
    const int wbs = wblock(type);
    __m256 acc[D_ROWS];
    for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const __m256i xq = _mm256_loadu_si256((const __m256i *)(x + b * 34 + 2));
        const __m256i c0 = _mm256_load_si256((const __m256i *)(corr + b * 8));
        for (int r = 0; r < R; r++) {
            const uint8_t *wb = w + r * rs + b * wbs;
            const __m256 lf = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(c0, w_unsigned(type, wb), xq));
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(lut16(wb) * xd[b]), lf, acc[r]);
        }
    }
    for (int r = 0; r < R; r++) y[r * yr] = hsum8(acc[r]);
}

/* The row tiles of one type: D_ROWS rows, or one. */
#define DEC_FN(name, TYPE)                                                                          \
    L_FN void name(int R, const uint8_t *w, int64_t rs, int64_t nb, const uint8_t *x, const int32_t *corr, \
                   const float *xd, float *y, int64_t yr) {                                         \
        if (R == D_ROWS) dec_tile(TYPE, D_ROWS, w, rs, nb, x, corr, xd, y, yr);                     \
        else dec_tile(TYPE, 1, w, rs, nb, x, corr, xd, y, yr);                                      \
    }
DEC_FN(dec_q8_0, AKK_Q8_0)
DEC_FN(dec_q5_0, AKK_Q5_0)

/* Rows [r0, r1) x n_tok tokens, token by token: lane starts and d_x of the token, then the rows
 * D_ROWS at a time. Scratch: the thread's (without it, `fallback`). */
L_FN void rows_bias_dec(const int type, akk_rows_fn fallback, const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1,
                        int64_t n_in, const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    const int64_t nb = n_in / 32;
    uint8_t *scr = akk_thread_scratch((size_t)nb * (32 + sizeof(float)));
    if (!scr) {
        fallback(W, wrow, r0, r1, n_in, X, xstride, n_tok, Y, ystride);
        return;
    }
    int32_t *corr = (int32_t *)(void *)scr;
    float *xd = (float *)(void *)(scr + nb * 32);
    const int64_t part = (r1 - r0) / D_ROWS, rest = r0 + D_ROWS * part;
    for (int64_t t = 0; t < n_tok; t++) {
        const uint8_t *xt = X + t * xstride;
        for (int64_t b = 0; b < nb; b++) {
            xd[b] = lut16(xt + b * 34);
            _mm256_store_si256((__m256i *)(void *)(corr + b * 8), lane_corr(xt + b * 34 + 2, wbias(type)));
        }
        for (int64_t i = 0; i < part + (r1 - rest); i++) {
            /* row tile i: row i of each part, or one leftover row once the parts are done */
            const int R = i < part ? D_ROWS : 1;
            const int64_t r = i < part ? r0 + i : rest + (i - part);
            (type == AKK_Q8_0 ? dec_q8_0 : dec_q5_0)(R, W + r * wrow, i < part ? part * wrow : wrow, nb, xt, corr, xd,
                                                     Y + t * ystride + r, i < part ? part : 1);
        }
    }
}

void akk_rows_bias_avx512(int type, akk_rows_fn fallback, const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1,
                          int64_t n_in, const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    tile_fn tile = type == AKK_Q8_0 ? tile_q8_0 : type == AKK_Q5_0 ? tile_q5_0 : NULL;
    if (!tile) fallback(W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
    else if (n_tok < 2) rows_bias_dec(type, fallback, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
    else rows_bias(type, tile, fallback, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}

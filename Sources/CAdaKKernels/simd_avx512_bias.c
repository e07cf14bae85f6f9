/*
 * AVX-512VL + VNNI prefill tiles of the 32-element block types Q8_0, Q5_0, Q4_0 (x Q8_0
 * activations) and Q4_1, Q5_1 (x Q8_1), bit-identical to the scalar references (quant.c,
 * kquant_dot.c).
 *
 * Every output keeps llama.cpp's AVX2 float order: per block 8 exact int32 lanes (lane l = sum of
 * w*x over elements 4l..4l+3), acc = fma(d_w*d_x, (float)lanes, acc), then hsum8 (+ summs, the
 * chain summs = fma(m_w, s_x, summs) of Q4_1/Q5_1). On Zen 4 vpdpbusd and the fma share two pipes
 * (FP0/FP1), so an output costs at least one cycle per block; the tiles (4 rows x 4 tokens) keep
 * nearly everything else off those pipes and out of the block loop:
 *  - each row tile's weights are unpacked once per token chunk to unsigned bytes (Q8_0 w + 128,
 *    Q5_0 / Q4_0 the quants + 16 / + 8, Q4_1 / Q5_1 as they are), so the loop only loads them;
 *  - the lanes of the biased types start from that bias taken back out (-bias x the sum of the
 *    lane's 4 activation quants, laid out once per token chunk), so one vpdpbusd on a copy of the
 *    start gives the lane; Q4_1 / Q5_1 start from zero;
 *  - d_w*d_x: 16 (row, token) products per block in two 8-wide multiplies, stored, then read back
 *    as a broadcast inside the fma (a vector store costs FP-pipe time on Zen 4, a 256-bit one
 *    less than a 512-bit one; a broadcast from a register costs a shuffle per output);
 *  - the min chains run on the 16 outputs at once (one 512-bit fma per block), and the 16 hsum8s
 *    of a tile are done together (the same adds, transposed), 4 rows per store.
 * Numbers: docs/BENCHMARKS.md "Dense prefill tiles: cycles per output-block".
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include "akk_avx2.h"

#define L_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define L_FN static __attribute__((target(L_TARGET)))
#define L_INLINE static inline __attribute__((always_inline, target(L_TARGET)))

/* Token chunk whose activations are laid out once for all rows (and each row tile's weights
 * unpacked once for all its tokens); tiles of L_R rows x L_T tokens. */
#define L_CHUNK 64
#define L_R 4
#define L_T 4

/* The bias that makes a type's weights unsigned bytes (0: they are). */
static inline int wbias(int type) {
    return type == AKK_Q8_0 ? 128 : type == AKK_Q5_0 ? 16 : type == AKK_Q4_0 ? 8 : 0;
}

/* One weight block as 32 unsigned bytes in element order (value + wbias). */
L_INLINE __m256i w_unsigned(const int type, const uint8_t *wb) {
    if (type == AKK_Q8_0)
        return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(wb + 2)), _mm256_set1_epi8((char)0x80));
    /* low 128 bits the low nibbles (elements 0..15), high the high nibbles (16..31) */
    const int qs = type == AKK_Q5_0 ? 6 : type == AKK_Q4_0 ? 2 : type == AKK_Q4_1 ? 4 : 8;
    const __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(wb + qs)));
    const __m256i v = _mm256_and_si256(_mm256_srlv_epi64(b, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0f));
    if (type == AKK_Q4_0 || type == AKK_Q4_1) return v;
    /* Q5_x: + 16 where bit j of qh (4 bytes before the quants) is set */
    return _mm256_mask_add_epi8(v, (__mmask32)(akk_load_u16(wb + qs - 4) | (uint32_t)akk_load_u16(wb + qs - 2) << 16), v,
                                _mm256_set1_epi8(0x10));
}

/* Lane starts of one activation block q of a biased type: -bias x the sum of each lane's 4 quants
 * (vbias: the bias in every byte), so a vpdpbusd of the unsigned weights on a copy gives the lane. */
L_INLINE __m256i lane_starts(__m256i vbias, __m256i q) {
    return _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_dpbusd_epi32(_mm256_setzero_si256(), vbias, q));
}

/* [lo | hi] (AVX-512F's 64-bit insert: no AVX512DQ needed). */
L_INLINE __m512 join(__m256 lo, __m256 hi) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lo)), _mm256_castps_pd(hi), 1));
}

/* The hsum8s of a 4 x 4 tile's accumulators (akk_hsum8_ref's adds, 16 outputs per instruction):
 * lane t*4 + r of the result is hsum8(a[r][t]). */
L_INLINE __m512 hsum8_4x4(const __m256 a[L_R][L_T]) {
    __m512 s[L_R];
    for (int r = 0; r < L_R; r++) {
        /* lo + hi of a[r][0..3]: 128-bit lane t = row r, token t */
        const __m512 z0 = join(a[r][0], a[r][1]), z1 = join(a[r][2], a[r][3]);
        s[r] = _mm512_add_ps(_mm512_shuffle_f32x4(z0, z1, 0x88), _mm512_shuffle_f32x4(z0, z1, 0xdd));
    }
    /* u0 + u2, u1 + u3 (movehl): lane t = [r0: v0 v1, r1: v0 v1], [r2 .., r3 ..] */
    const __m512 c01 = _mm512_add_ps(_mm512_shuffle_ps(s[0], s[1], 0x44), _mm512_shuffle_ps(s[0], s[1], 0xee));
    const __m512 c23 = _mm512_add_ps(_mm512_shuffle_ps(s[2], s[3], 0x44), _mm512_shuffle_ps(s[2], s[3], 0xee));
    /* v0 + v1 (movehdup): lane t = rows 0..3 */
    return _mm512_add_ps(_mm512_shuffle_ps(c01, c23, 0x88), _mm512_shuffle_ps(c01, c23, 0xdd));
}

/*
 * R rows x T tokens over nb blocks.
 * Row tile (prepared once per chunk): wu[(b*L_R + r)*32] row r's block b as unsigned bytes,
 * wd[b*16 + r*4 + t] its d (for every t), wm[b*4 + r] its m (min types). Token tile: x + t*xs its
 * tokens' activation rows, xa[b*L_T*8 + t*8] their lane starts (biased types), xd[b*4 + t] token
 * t's d, xs16[b*16 + t*4 + r] its s (for every r; min types). dp: scratch of nb*16 floats.
 * Output of row r, token t: y[t*ys + r].
 */
L_INLINE void tile(const int type, const int R, const int T, const uint8_t *wu, const float *wd, const float *wm,
                   const uint8_t *x, int64_t xs, const int32_t *xa, const float *xd, const float *xs16, int64_t nb,
                   float *dp, float *y, int64_t ys) {
    const int xb = akk_dense_has_min(type) ? 36 : 34, xq = xb - 32;
    /* d_w*d_x of the tile (lane r*4 + t), 16 products per block, read back as broadcasts */
    for (int64_t b = 0; b < nb; b++) {
        const __m256 x4 = _mm256_broadcast_ps((const __m128 *)(xd + b * 4));
        _mm256_store_ps(dp + b * 16, _mm256_mul_ps(_mm256_load_ps(wd + b * 16), x4));
        _mm256_store_ps(dp + b * 16 + 8, _mm256_mul_ps(_mm256_load_ps(wd + b * 16 + 8), x4));
    }
    __asm__ volatile("" ::: "memory"); /* keep the broadcasts as loads */
    __m256 acc[L_R][L_T];
    __m512 summs = _mm512_setzero_ps();
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i wq[L_R], xv[L_T], c0[L_T];
        for (int r = 0; r < R; r++) wq[r] = _mm256_load_si256((const __m256i *)(wu + (b * L_R + r) * 32));
        for (int t = 0; t < T; t++) {
            xv[t] = _mm256_loadu_si256((const __m256i *)(x + t * xs + b * xb + xq));
            c0[t] = wbias(type) ? _mm256_load_si256((const __m256i *)(xa + (b * L_T + t) * 8)) : _mm256_setzero_si256();
        }
        for (int r = 0; r < R; r++)
            for (int t = 0; t < T; t++) {
                const __m256 lf = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(c0[t], wq[r], xv[t]));
                acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(dp[b * 16 + r * 4 + t]), lf, acc[r][t]);
            }
        if (akk_dense_has_min(type))
            summs = _mm512_fmadd_ps(_mm512_broadcast_f32x4(_mm_load_ps(wm + b * 4)), _mm512_load_ps(xs16 + b * 16), summs);
    }
    if (R == L_R && T == L_T) {
        __m512 h = hsum8_4x4(acc);
        if (akk_dense_has_min(type)) h = _mm512_add_ps(h, summs);
        _mm_storeu_ps(y, _mm512_castps512_ps128(h));
        _mm_storeu_ps(y + ys, _mm512_extractf32x4_ps(h, 1));
        _mm_storeu_ps(y + 2 * ys, _mm512_extractf32x4_ps(h, 2));
        _mm_storeu_ps(y + 3 * ys, _mm512_extractf32x4_ps(h, 3));
    } else {
        float sm[16];
        _mm512_storeu_ps(sm, summs);
        for (int r = 0; r < R; r++)
            for (int t = 0; t < T; t++) y[t * ys + r] = akk_dense_has_min(type) ? hsum8(acc[r][t]) + sm[t * 4 + r] : hsum8(acc[r][t]);
    }
}

typedef void (*tile_fn)(int R, int T, const uint8_t *wu, const float *wd, const float *wm, const uint8_t *x,
                        int64_t xs, const int32_t *xa, const float *xd, const float *xs16, int64_t nb, float *dp,
                        float *y, int64_t ys);

/* One type's tile for R, T in 1..4 as compile-time shapes. */
#define TILE_CASE(R, T) case R * 8 + T: tile(TYPE, R, T, wu, wd, wm, x, xs, xa, xd, xs16, nb, dp, y, ys); break;
#define TILE_ROWS(R) TILE_CASE(R, 1) TILE_CASE(R, 2) TILE_CASE(R, 3) TILE_CASE(R, 4)
#define TILE_FN(name, TYPE_)                                                                        \
    L_FN void name(int R, int T, const uint8_t *wu, const float *wd, const float *wm, const uint8_t *x, int64_t xs, \
                   const int32_t *xa, const float *xd, const float *xs16, int64_t nb, float *dp, float *y,  \
                   int64_t ys) {                                                                    \
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

/* Rows [r0, r1) x n_tok tokens: token chunks of L_CHUNK, whose lane starts and scales are laid
 * out once per chunk, token tile by token tile; row tiles of L_R adjacent rows, unpacked once per
 * chunk; token tiles of L_T. Scratch: the thread's (without it, `fallback`). */
L_INLINE void rows_bias(const int type, tile_fn tile_odd, akk_rows_fn fallback, const uint8_t *W, int64_t wrow, int64_t r0,
                    int64_t r1, int64_t n_in, const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y,
                    int64_t ystride) {
    const int64_t nb = n_in / 32, ntt = L_CHUNK / L_T;
    const int wbs = akk_dense_block_bytes(type), xb = akk_dense_has_min(type) ? 36 : 34, bias = wbias(type);
    /* per chunk: lane starts (ntt*nb*L_T*8 int32), d and s of the tokens (ntt*nb*4, ntt*nb*16
     * floats); per row tile: unpacked quants (nb*L_R*32 bytes), d and m (nb*16, nb*4 floats);
     * dp (nb*16) */
    const size_t xa_n = (size_t)(ntt * nb * L_T * 8), x16_n = (size_t)(ntt * nb * 16);
    uint8_t *scr = akk_thread_scratch(4 * (xa_n + x16_n + x16_n / 4) + (size_t)(nb * L_R * 32) + 4 * (size_t)(nb * 36));
    if (!scr) {
        fallback(W, wrow, r0, r1, n_in, X, xstride, n_tok, Y, ystride);
        return;
    }
    int32_t *xa = (int32_t *)(void *)scr;
    float *xs16 = (float *)(void *)(xa + xa_n), *xd = xs16 + x16_n;
    uint8_t *wu = (uint8_t *)(xd + x16_n / 4);
    float *wd = (float *)(void *)(wu + nb * L_R * 32), *dp = wd + nb * 16, *wm = dp + nb * 16;
    const __m512i rep4 = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m256i vbias = _mm256_set1_epi8((char)bias);
    for (int64_t c0 = 0; c0 < n_tok; c0 += L_CHUNK) {
        const int64_t c1 = c0 + L_CHUNK < n_tok ? c0 + L_CHUNK : n_tok;
        for (int64_t t = 0; t < ((c1 - c0 + L_T - 1) & ~(int64_t)(L_T - 1)); t++) {
            const int64_t tt = t / L_T, k = t % L_T;
            int32_t *at = xa + tt * nb * L_T * 8 + k * 8;
            float *dt = xd + tt * nb * 4 + k, *st = xs16 + tt * nb * 16 + k * 4;
            const uint8_t *xr = c0 + t < c1 ? X + (c0 + t) * xstride : NULL; /* NULL: past the end, zeros */
            for (int64_t b = 0; b < nb; b++) {
                const float d = xr ? akk_lut16(xr + b * xb) : 0.0f, s = xr && akk_dense_has_min(type) ? akk_lut16(xr + b * xb + 2) : 0.0f;
                dt[b * 4] = d;
                if (akk_dense_has_min(type)) _mm_store_ps(st + b * 16, _mm_set1_ps(s));
                if (bias) {
                    const __m256i q = xr ? _mm256_loadu_si256((const __m256i *)(xr + b * xb + xb - 32)) : _mm256_setzero_si256();
                    _mm256_store_si256((__m256i *)(void *)(at + b * L_T * 8), lane_starts(vbias, q));
                }
            }
        }
        for (int64_t r = r0; r < r1; r += L_R) {
            const int R = (int)(r1 - r < L_R ? r1 - r : L_R);
            for (int64_t b = 0; b < nb; b++) {
                float d4[4];
                for (int k = 0; k < L_R; k++) {
                    const uint8_t *wb = W + (r + k) * wrow + b * wbs;
                    _mm256_store_si256((__m256i *)(void *)(wu + (b * L_R + k) * 32), k < R ? w_unsigned(type, wb) : _mm256_setzero_si256());
                    d4[k] = k < R ? akk_lut16(wb) : 0.0f;
                    wm[b * 4 + k] = k < R && akk_dense_has_min(type) ? akk_lut16(wb + 2) : 0.0f;
                }
                _mm512_store_ps(wd + b * 16, _mm512_permutexvar_ps(rep4, _mm512_castps128_ps512(_mm_loadu_ps(d4))));
            }
            /* the next row tile's weights (adjacent bytes) into the cache a slice per token tile:
             * their first touch is otherwise a stall of the next unpacking */
            const int64_t nr = r1 - (r + L_R) < L_R ? r1 - (r + L_R) : L_R, lines = nr > 0 ? (nr * wrow + 63) / 64 : 0;
            const int64_t per = (lines + ntt - 1) / ntt;
            const char *next = (const char *)(W + (r + L_R) * wrow);
            for (int64_t t = c0; t < c1; t += L_T) {
                const int T = (int)(c1 - t < L_T ? c1 - t : L_T);
                const int64_t tt = (t - c0) / L_T;
                for (int64_t l = tt * per; l < (tt + 1) * per && l < lines; l++) _mm_prefetch(next + 64 * l, _MM_HINT_T0);
                if (R == L_R && T == L_T) /* the full tile inline, odd shapes through tile_odd */
                    tile(type, L_R, L_T, wu, wd, wm, X + t * xstride, xstride, xa + tt * nb * L_T * 8, xd + tt * nb * 4,
                         xs16 + tt * nb * 16, nb, dp, Y + t * ystride + r, ystride);
                else
                    tile_odd(R, T, wu, wd, wm, X + t * xstride, xstride, xa + tt * nb * L_T * 8, xd + tt * nb * 4,
                             xs16 + tt * nb * 16, nb, dp, Y + t * ystride + r, ystride);
            }
        }
    }
}

/* One type's row driver (rows_bias compiled for it). */
#define ROWS_FN(name, TYPE_, tile_odd)                                                              \
    L_FN void name(akk_rows_fn fallback, const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, \
                   const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {             \
        rows_bias(TYPE_, tile_odd, fallback, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);            \
    }
ROWS_FN(rows_q8_0, AKK_Q8_0, tile_q8_0)
ROWS_FN(rows_q5_0, AKK_Q5_0, tile_q5_0)
ROWS_FN(rows_q4_0, AKK_Q4_0, tile_q4_0)
ROWS_FN(rows_q4_1, AKK_Q4_1, tile_q4_1)
ROWS_FN(rows_q5_1, AKK_Q5_1, tile_q5_1)

/* ---- Q8_0 / Q5_0 products of fewer than L_MIN_TOK tokens (decode), the same biased weights and
 * lane starts ----
 * The AVX2 row kernels took one row at a time, whose 8-lane accumulator is one fma chain across
 * the blocks; here D_ROWS rows, one from each of D_ROWS equal parts of the range (independent
 * chains, sequential weight streams), run side by side for up to D_TOK tokens; the lane starts
 * and d_x are prepared once per token group for every row, and each (row, block) is made unsigned
 * once for the group (Q8_0 an xor, Q5_0 a shift, an and and a masked add). */
#define D_ROWS 4
#define D_TOK 4
#define L_MIN_TOK 8

L_INLINE void dec_tile(const int type, const int R, const int T, const uint8_t *w, int64_t rs, int64_t nb,
                       const uint8_t *x, int64_t xs, const int32_t *corr, const float *xd, float *y, int64_t yr,
                       int64_t ys) {
    const int wbs = akk_dense_block_bytes(type);
    __m256 acc[D_ROWS][D_TOK];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i wq[D_ROWS];
        float wd[D_ROWS];
        for (int r = 0; r < R; r++) {
            wq[r] = w_unsigned(type, w + r * rs + b * wbs);
            wd[r] = akk_lut16(w + r * rs + b * wbs);
        }
        for (int t = 0; t < T; t++) {
            const __m256i xq = _mm256_loadu_si256((const __m256i *)(x + t * xs + b * 34 + 2));
            const __m256i c0 = _mm256_load_si256((const __m256i *)(corr + (t * nb + b) * 8));
            for (int r = 0; r < R; r++) {
                const __m256 lf = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(c0, wq[r], xq));
                acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(wd[r] * xd[t * nb + b]), lf, acc[r][t]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) y[t * ys + r * yr] = hsum8(acc[r][t]);
}

/* The row tiles of one type: D_ROWS rows or one, x 1..D_TOK tokens. */
#define DEC_CASE(R, T) case R * 8 + T: dec_tile(TYPE, R, T, w, rs, nb, x, xs, corr, xd, y, yr, ys); break;
#define DEC_FN(name, TYPE_)                                                                         \
    L_FN void name(int R, int T, const uint8_t *w, int64_t rs, int64_t nb, const uint8_t *x, int64_t xs, \
                   const int32_t *corr, const float *xd, float *y, int64_t yr, int64_t ys) {         \
        enum { TYPE = TYPE_ };                                                                      \
        switch ((R == D_ROWS ? D_ROWS : 1) * 8 + T) {                                               \
        DEC_CASE(D_ROWS, 1) DEC_CASE(D_ROWS, 2) DEC_CASE(D_ROWS, 3) DEC_CASE(D_ROWS, 4)             \
        DEC_CASE(1, 1) DEC_CASE(1, 2) DEC_CASE(1, 3) DEC_CASE(1, 4)                                 \
        default: break;                                                                             \
        }                                                                                           \
    }
DEC_FN(dec_q8_0, AKK_Q8_0)
DEC_FN(dec_q5_0, AKK_Q5_0)

/* Rows [r0, r1) x n_tok tokens, D_TOK tokens at a time: lane starts and d_x of those tokens, then
 * the rows D_ROWS at a time (each weight block made unsigned once for the tokens). Scratch: the
 * thread's (without it, `fallback`). */
L_FN void rows_bias_dec(const int type, akk_rows_fn fallback, const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1,
                        int64_t n_in, const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    const int64_t nb = n_in / 32;
    uint8_t *scr = akk_thread_scratch((size_t)(nb * D_TOK) * (32 + sizeof(float)));
    if (!scr) {
        fallback(W, wrow, r0, r1, n_in, X, xstride, n_tok, Y, ystride);
        return;
    }
    int32_t *corr = (int32_t *)(void *)scr;
    float *xd = (float *)(void *)(scr + nb * D_TOK * 32);
    const int64_t part = (r1 - r0) / D_ROWS, rest = r0 + D_ROWS * part;
    const __m256i vbias = _mm256_set1_epi8((char)wbias(type));
    for (int64_t t0 = 0; t0 < n_tok; t0 += D_TOK) {
        const int T = (int)(n_tok - t0 < D_TOK ? n_tok - t0 : D_TOK);
        for (int t = 0; t < T; t++) {
            const uint8_t *xt = X + (t0 + t) * xstride;
            for (int64_t b = 0; b < nb; b++) {
                xd[t * nb + b] = akk_lut16(xt + b * 34);
                const __m256i q = _mm256_loadu_si256((const __m256i *)(xt + b * 34 + 2));
                _mm256_store_si256((__m256i *)(void *)(corr + (t * nb + b) * 8), lane_starts(vbias, q));
            }
        }
        for (int64_t i = 0; i < part + (r1 - rest); i++) {
            /* row tile i: row i of each part, or one leftover row once the parts are done */
            const int R = i < part ? D_ROWS : 1;
            const int64_t r = i < part ? r0 + i : rest + (i - part);
            (type == AKK_Q8_0 ? dec_q8_0 : dec_q5_0)(R, T, W + r * wrow, i < part ? part * wrow : wrow, nb,
                                                     X + t0 * xstride, xstride, corr, xd, Y + t0 * ystride + r,
                                                     i < part ? part : 1, ystride);
        }
    }
}

void akk_rows_bias_avx512(int type, akk_rows_fn fallback, const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1,
                          int64_t n_in, const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    void (*rows)(akk_rows_fn, const uint8_t *, int64_t, int64_t, int64_t, int64_t, const uint8_t *, int64_t, int64_t,
                 float *, int64_t) = type == AKK_Q8_0 ? rows_q8_0 : type == AKK_Q5_0 ? rows_q5_0
                                   : type == AKK_Q4_0 ? rows_q4_0 : type == AKK_Q4_1 ? rows_q4_1
                                   : type == AKK_Q5_1 ? rows_q5_1 : NULL;
    /* below L_MIN_TOK tokens the chunk's layouts do not pay (1 thread, 1536 x 576, 2 tokens: the
     * tile 15-17 GMAC/s, the decode path or the 256-bit tiles 26-48) */
    if (n_tok < L_MIN_TOK && (type == AKK_Q8_0 || type == AKK_Q5_0))
        rows_bias_dec(type, fallback, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
    else if (n_tok < L_MIN_TOK || !rows) fallback(W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
    else rows(fallback, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}

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

/* Token chunk whose activations are prepared once for all rows (and each row tile's weights
 * unpacked once for all its tokens); tiles of L_R rows x L_T tokens. */
#define L_CHUNK 64
#define L_R 4
#define L_T 4
/* Bytes of one token tile's block in the prepared activations: L_T x 32 quants, L_T x 8 lane starts. */
#define L_XA (L_T * 32)

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

/* [lo | hi] (AVX-512F's 64-bit insert: no AVX512DQ needed). */
L_INLINE __m512 join(__m256 lo, __m256 hi) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lo)), _mm256_castps_pd(hi), 1));
}

/* The hsum8s of a 4 x 4 tile's accumulators (akk_hsum8_ref's adds, 16 outputs per instruction):
 * 128-bit lane t of the result holds tokens t's 4 rows. */
L_INLINE __m512 hsum8_4x4(const __m256 a[L_R][L_T]) {
    __m512 s[L_R];
    for (int r = 0; r < L_R; r++) {
        /* [a[r][0] | a[r][1]], [a[r][2] | a[r][3]] -> lo + hi of each: lane t = row r, token t */
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
 * R rows x T tokens over nb blocks, from the prepared operands: wu[(b*L_R + r)*32] row r's block b
 * as unsigned bytes, wd16[b*16 + r*L_T + t] its d (for every t), xa[b*L_XA] the token tile's quants
 * and lane starts of block b, xd[b*L_T + t] token t's d; dp: scratch of nb*16 floats. Output of
 * row r, token t: y[t*ys + r].
 */
L_INLINE void tile(const int R, const int T, const uint8_t *wu, const float *wd16, const uint8_t *xa,
                   const float *xd, const uint8_t *x, int64_t xs, int64_t nb, float *dp, float *y, int64_t ys) {
    /* d_w*d_x of the whole tile, 16 (row, token) pairs per multiply, read back as broadcasts */
    for (int64_t b = 0; b < nb; b++) {
        const __m256 x4 = _mm256_broadcast_ps((const __m128 *)(xd + b * L_T));
        _mm256_store_ps(dp + b * 16, _mm256_mul_ps(_mm256_load_ps(wd16 + b * 16), x4));
        _mm256_store_ps(dp + b * 16 + 8, _mm256_mul_ps(_mm256_load_ps(wd16 + b * 16 + 8), x4));
    }
    __asm__ volatile("" ::: "memory"); /* keep the broadcasts as loads */
    __m256 acc[L_R][L_T];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i wq[L_R], xq[L_T], c0[L_T];
        for (int r = 0; r < R; r++) wq[r] = _mm256_load_si256((const __m256i *)(wu + (b * L_R + r) * 32));
        for (int t = 0; t < T; t++) {
            xq[t] = _mm256_loadu_si256((const __m256i *)(x + t * xs + b * 34 + 2));
            c0[t] = _mm256_load_si256((const __m256i *)(xa + b * L_XA + t * 32));
        }
        for (int r = 0; r < R; r++)
            for (int t = 0; t < T; t++) {
                const __m256 lf = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(c0[t], wq[r], xq[t]));
                acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(dp[b * 16 + r * L_T + t]), lf, acc[r][t]);
            }
    }
    if (R == L_R && T == L_T) {
        const __m512 h = hsum8_4x4(acc);
        _mm_storeu_ps(y, _mm512_castps512_ps128(h));
        _mm_storeu_ps(y + ys, _mm512_extractf32x4_ps(h, 1));
        _mm_storeu_ps(y + 2 * ys, _mm512_extractf32x4_ps(h, 2));
        _mm_storeu_ps(y + 3 * ys, _mm512_extractf32x4_ps(h, 3));
    } else {
        for (int r = 0; r < R; r++)
            for (int t = 0; t < T; t++) y[t * ys + r] = hsum8(acc[r][t]);
    }
}



/* R, T in 1..4 as compile-time shapes. */
#define TILE_CASE(R, T) case R * 8 + T: tile(R, T, wu, wd16, xa, xd, x, xs, nb, dp, y, ys); break;
#define TILE_ROWS(R) TILE_CASE(R, 1) TILE_CASE(R, 2) TILE_CASE(R, 3) TILE_CASE(R, 4)
L_FN void tile_any(int R, int T, const uint8_t *wu, const float *wd16, const uint8_t *xa, const float *xd,
                   const uint8_t *x, int64_t xs, int64_t nb, float *dp, float *y, int64_t ys) {
    switch (R * 8 + T) {
    TILE_ROWS(1) TILE_ROWS(2) TILE_ROWS(3) TILE_ROWS(4)
    default: break;
    }
}

/* Rows [r0, r1) x n_tok tokens: token chunks of L_CHUNK, whose quants, lane starts (-bias x the
 * sum of each lane's 4 quants) and scales are laid out once per chunk, token tile by token tile;
 * row tiles of L_R adjacent rows, unpacked to unsigned bytes once per chunk; token tiles of L_T.
 * Scratch: the thread's (without it, `fallback`). */
L_FN void rows_bias(const int type, akk_rows_fn fallback, const uint8_t *W, int64_t wrow, int64_t r0,
                    int64_t r1, int64_t n_in, const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y,
                    int64_t ystride) {
    const int64_t nb = n_in / 32, ntt = L_CHUNK / L_T;
    const int wbs = wblock(type);
    const size_t xa_bytes = (size_t)(ntt * nb * L_XA), xd_bytes = sizeof(float) * (size_t)(ntt * nb * L_T);
    const size_t wu_bytes = (size_t)(nb * L_R * 32), f16_bytes = sizeof(float) * (size_t)(nb * 16);
    uint8_t *xa = akk_thread_scratch(xa_bytes + xd_bytes + wu_bytes + 2 * f16_bytes);
    if (!xa) {
        fallback(W, wrow, r0, r1, n_in, X, xstride, n_tok, Y, ystride);
        return;
    }
    float *xd = (float *)(void *)(xa + xa_bytes);
    uint8_t *wu = (uint8_t *)(xd + ntt * nb * L_T);
    float *wd16 = (float *)(void *)(wu + wu_bytes), *dp = wd16 + nb * 16;
    const __m256i bias = _mm256_set1_epi8((char)wbias(type));
    const __m512i rep4 = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    for (int64_t c0 = 0; c0 < n_tok; c0 += L_CHUNK) {
        const int64_t c1 = c0 + L_CHUNK < n_tok ? c0 + L_CHUNK : n_tok;
        for (int64_t t = 0; t < ((c1 - c0 + L_T - 1) & ~(int64_t)(L_T - 1)); t++) {
            uint8_t *xt = xa + (t / L_T) * nb * L_XA + (t % L_T) * 32;
            float *dt = xd + (t / L_T) * nb * L_T + t % L_T;
            if (c0 + t >= c1) { /* past the end: zeros */
                for (int64_t b = 0; b < nb; b++) {
                    _mm256_store_si256((__m256i *)(void *)(xt + b * L_XA), _mm256_setzero_si256());
                    dt[b * L_T] = 0.0f;
                }
                continue;
            }
            const uint8_t *xr = X + (c0 + t) * xstride;
            for (int64_t b = 0; b < nb; b++) {
                const __m256i q = _mm256_loadu_si256((const __m256i *)(xr + b * 34 + 2));
                _mm256_store_si256((__m256i *)(void *)(xt + b * L_XA),
                                   _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_dpbusd_epi32(_mm256_setzero_si256(), bias, q)));
                dt[b * L_T] = lut16(xr + b * 34);
            }
        }
        for (int64_t r = r0; r < r1; r += L_R) {
            const int R = (int)(r1 - r < L_R ? r1 - r : L_R);
            for (int64_t b = 0; b < nb; b++) {
                float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
                for (int k = 0; k < R; k++) {
                    const uint8_t *wb = W + (r + k) * wrow + b * wbs;
                    _mm256_store_si256((__m256i *)(void *)(wu + (b * L_R + k) * 32), w_unsigned(type, wb));
                    d[k] = lut16(wb);
                }
                _mm512_store_ps(wd16 + b * 16, _mm512_permutexvar_ps(rep4, _mm512_castps128_ps512(_mm_loadu_ps(d))));
            }
            for (int64_t t = c0; t < c1; t += L_T) {
                const int T = (int)(c1 - t < L_T ? c1 - t : L_T);
                const int64_t tt = (t - c0) / L_T;
                tile_any(R, T, wu, wd16, xa + tt * nb * L_XA, xd + tt * nb * L_T, X + t * xstride, xstride, nb, dp,
                         Y + t * ystride + r, ystride);
            }
        }
    }
}

void akk_rows_bias_avx512(int type, akk_rows_fn fallback, const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1,
                          int64_t n_in, const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    if (n_tok < 2 || (type != AKK_Q8_0 && type != AKK_Q5_0)) fallback(W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
    else rows_bias(type, fallback, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}

/*
 * AVX-512 (F/BW/VL + VNNI) prefill tiles of Q4_1 and Q5_1 (x Q8_1 activations): two
 * (row, token) pairs per 512-bit register, the same bits as the scalar references.
 *
 * Every output keeps llama.cpp's float order (quant.c, kquant_dot.c): 8 int32 lanes per block
 * (lane l = sum of w*x over elements 4l..4l+3, exact), acc = fma(d_w*d_x, (float)lanes, acc) per
 * block in one 8-lane accumulator, then hsum8 + summs (summs = fma(m_w, s_x, summs) block by
 * block). Here one register holds the lanes of two tokens t, t+1 of one row, interleaved
 * (lane 2l: token t's lane l, 2l+1: token t+1's): the quants of token pairs are interleaved by
 * dwords once per token chunk and each weight dword doubled, so one vpdpbusd, one float subtract
 * and one fma serve both (row, token) pairs, per lane the operations of the 256-bit kernels:
 *  - lanes also start at the bits of 1.5 * 2^23, so the lane as a float minus 1.5 * 2^23 is the
 *    exact lane sum (|sum| < 2^22): a subtract, which runs beside the fma, for the convert;
 *  - d_w*d_x: one multiply per 8 blocks gives 16 products in the lanes' interleaved order, and
 *    block b's pair [d_t, d_t+1] is one 64-bit broadcast load (a vpermps per pair cost ~10%);
 *  - the min chains run across the tokens of a tile (lane = token), each in block order;
 *  - at the end the even / odd lanes are gathered and summed in hsum8's order.
 * Numbers (Zen 4): docs/BENCHMARKS.md "Q4_1 / Q5_x prefill tiles at the avx512 level". Q8_0 and
 * Q4_0 measured no faster this way than their 256-bit VNNI tiles (akk_quant_tiles.h); Q8_0 and Q5_0
 * now run simd_avx512_bias.c's 256-bit tiles, through which Q4_1 measured no faster in the model.
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include "akk_avx2.h"

#define P_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define P_FN static __attribute__((target(P_TARGET)))
#define P_INLINE static inline __attribute__((always_inline, target(P_TARGET)))

/* Token chunk whose activations and unpacked scales stay in L2 while the rows pass over them. */
#define P_CHUNK 64
/* Stride of the transposed activation mins: a chunk's tokens and 8 zeros (a tile loads 8). */
#define P_XST (P_CHUNK + 8)
/* Tiles: up to P_MAXR rows x P_MAXP token pairs. */
#define P_MAXR 4
#define P_MAXP 4

static inline float lut16(const uint8_t *p) { return akk_fp16_lut[akk_load_u16(p)]; }

/* Bytes per weight block. */
static inline int wblock(int type) { return type == AKK_Q4_1 ? 20 : 24; }

/* One weight block as 32 unsigned bytes (element order), each dword twice: dword 2k and 2k+1 of
 * the result = dword k, against the two tokens' interleaved quants (pair_quants). */
P_INLINE __m512i w_unsigned(const int type, const uint8_t *wb) {
    const int qs = type == AKK_Q4_1 ? 4 : 8;
    /* low 128 bits: low nibbles (elements 0..15), high: high nibbles (16..31) */
    const __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(wb + qs)));
    __m256i v = _mm256_and_si256(_mm256_srlv_epi64(b, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0f));
    if (type == AKK_Q5_1) /* + 16 where bit j of qh is set (element j) */
        v = _mm256_mask_add_epi8(v, (__mmask32)(akk_load_u16(wb + qs - 4) | (uint32_t)akk_load_u16(wb + qs - 2) << 16), v,
                                 _mm256_set1_epi8(0x10));
    return _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7), _mm512_castsi256_si512(v));
}

/* The 32 quants of two tokens' blocks interleaved by dwords: dword 2k = token a's dword k,
 * 2k+1 = token b's. */
P_INLINE __m512i pair_quants(const uint8_t *a, const uint8_t *b) {
    return _mm512_permutex2var_epi32(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a)),
                                     _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23),
                                     _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)b)));
}

/* Sum of the even (k = 0) or odd (k = 1) lanes of v, as hsum8 of those 8 lanes in order. */
P_INLINE float hsum8_of(__m512 v, int k) {
    const __m512i idx = _mm512_add_epi32(_mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 0, 0, 0, 0, 0, 0, 0), _mm512_set1_epi32(k));
    return hsum8(_mm512_castps512_ps256(_mm512_permutexvar_ps(idx, v)));
}

/*
 * R rows (rs bytes apart) x P token pairs over nb blocks. The row driver prepares, per pair p of
 * tokens (2p, 2p+1): xq[(p*nb + b)*64] the interleaved quants of block b (pair_quants) and
 * xd2[p*2*scs + 2b + k] token 2p+k's d as float; per row r: wd2[r*2*scs + 2b + k] = d_w (twice),
 * and for Q4_1/Q5_1 wm[r*scs + b] (m_w) and xsT[b*P_XST + t] (s_x, the tile's tokens
 * contiguous, zero past the chunk's tokens). With odd, the last pair's second token is its first
 * again and its output is not written. Output of row r, token t: y[t*ys + r*yr].
 */
P_INLINE void tile2(const int type, const int R, const int P, int odd, const uint8_t *w, int64_t rs, int64_t nb,
                    const uint8_t *xq, float *y, int64_t ys, int64_t yr, const float *wd2, const float *xd2,
                    const float *wm, const float *xsT, int64_t scs) {
    const int wbs = wblock(type);
    /* lanes start at 1.5 * 2^23 as int bits: the float of such a lane minus 1.5 * 2^23 is the
     * exact lane sum (|sum| < 2^22), a float subtract in place of a convert */
    const __m512i magic_i = _mm512_set1_epi32(0x4B400000);
    const __m512 magic_f = _mm512_set1_ps(12582912.0f);
    __m512 acc[P_MAXR][P_MAXP];
    __m256 sm[P_MAXR];
    for (int r = 0; r < R; r++) {
        sm[r] = _mm256_setzero_ps();
        for (int p = 0; p < P; p++) acc[r][p] = _mm512_setzero_ps();
    }
    for (int64_t b0 = 0; b0 < nb; b0 += 8) {
        /* d_w*d_x of 8 blocks for each (row, pair), interleaved like the lanes: [b0 token 2p,
         * b0 token 2p+1, b0+1 token 2p, ...]; block b's pair is one 64-bit broadcast load away */
        float dp[P_MAXR][P_MAXP][16] __attribute__((aligned(64)));
        for (int r = 0; r < R; r++)
            for (int p = 0; p < P; p++)
                _mm512_store_ps(dp[r][p], _mm512_mul_ps(_mm512_loadu_ps(wd2 + r * 2 * scs + 2 * b0), _mm512_loadu_ps(xd2 + p * 2 * scs + 2 * b0)));
        __asm__ volatile("" ::: "memory"); /* keep the broadcasts as loads, not shuffles */
        const int64_t b1 = b0 + 8 < nb ? b0 + 8 : nb;
        for (int64_t b = b0; b < b1; b++) {
            __m512i wq[P_MAXR], xv[P_MAXP];
            for (int r = 0; r < R; r++) wq[r] = w_unsigned(type, w + r * rs + b * wbs);
            for (int p = 0; p < P; p++) xv[p] = _mm512_load_si512(xq + (p * nb + b) * 64);
            for (int r = 0; r < R; r++) {
                for (int p = 0; p < P; p++) {
                    const __m512i li = _mm512_dpbusd_epi32(magic_i, wq[r], xv[p]);
                    const __m512 lf = _mm512_sub_ps(_mm512_castsi512_ps(li), magic_f);
                    double d2;
                    __builtin_memcpy(&d2, &dp[r][p][2 * (b - b0)], 8);
                    acc[r][p] = _mm512_fmadd_ps(_mm512_castpd_ps(_mm512_set1_pd(d2)), lf, acc[r][p]);
                }
                sm[r] = _mm256_fmadd_ps(_mm256_set1_ps(wm[r * scs + b]), _mm256_loadu_ps(xsT + b * P_XST), sm[r]);
            }
        }
    }
    for (int r = 0; r < R; r++) {
        float s[8];
        _mm256_storeu_ps(s, sm[r]);
        for (int p = 0; p < P; p++) {
            const float lo = hsum8_of(acc[r][p], 0);
            y[2 * p * ys + r * yr] = lo + s[2 * p];
            if (!(odd && p == P - 1)) {
                const float hi = hsum8_of(acc[r][p], 1);
                y[(2 * p + 1) * ys + r * yr] = hi + s[2 * p + 1];
            }
        }
    }
}

typedef void (*tile2_fn)(int R, int P, int odd, const uint8_t *w, int64_t rs, int64_t nb, const uint8_t *xq,
                         float *y, int64_t ys, int64_t yr, const float *wd2, const float *xd2, const float *wm,
                         const float *xsT, int64_t scs);

/* The tile of one type for R in {1, TR} and P in 1..4 (compile-time shapes). */
#define TILE2_CASE(R, P) case R * 8 + P: tile2(TYPE, R, P, odd, w, rs, nb, xq, y, ys, yr, wd2, xd2, wm, xsT, scs); break;
#define TILE2_FN(name, TYPE_, TR)                                                                   \
    P_FN void name(int R, int P, int odd, const uint8_t *w, int64_t rs, int64_t nb, const uint8_t *xq, \
                   float *y, int64_t ys, int64_t yr, const float *wd2, const float *xd2, const float *wm, \
                   const float *xsT, int64_t scs) {                                                 \
        enum { TYPE = TYPE_ };                                                                      \
        switch (R * 8 + P) {                                                                        \
        TILE2_CASE(1, 1) TILE2_CASE(1, 2) TILE2_CASE(1, 3) TILE2_CASE(1, 4)                         \
        TILE2_CASE(TR, 1) TILE2_CASE(TR, 2) TILE2_CASE(TR, 3) TILE2_CASE(TR, 4)                     \
        default: break;                                                                             \
        }                                                                                           \
    }

/* tiles (rows x token pairs), 1 thread, 1536 x 576, 64 tokens, ms: Q4_1 2x4 0.95 (4x3 1.03,
 * 3x4 1.02, 4x2 1.06), Q5_0 (then here, the shape Q5_1 keeps) 4x3 1.06 (2x4 1.04, 4x4 1.06, 4x2 1.10) */
#define Q41_TR 2
#define Q41_TP 4
#define Q5_TR 4
#define Q5_TP 3
TILE2_FN(tile2_q4_1, AKK_Q4_1, Q41_TR)
TILE2_FN(tile2_q5_1, AKK_Q5_1, Q5_TR)

/* Rows [r0, r1) x n_tok >= 2 tokens: token chunks of P_CHUNK (quants interleaved by pairs and
 * scales unpacked once per chunk), row tiles of tr rows taken one from each of tr equal parts of
 * the range (tr long sequential weight streams, as rows_tiled in akk_quant_tiles.h), token tiles
 * of tp pairs. Scratch: the thread's (without it, the AVX2-level kernel `fallback`). */
P_FN void rows_pairs(const int type, tile2_fn tile, akk_rows_fn fallback, int tr, int tp, const uint8_t *W,
                     int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X, int64_t xstride,
                     int64_t n_tok, float *Y, int64_t ystride) {
    const int64_t nb = n_in / 32, scs = (nb + 7) & ~(int64_t)7, npair = P_CHUNK / 2;
    const int wbs = wblock(type), xbs = 36;
    uint8_t *xq = akk_thread_scratch((size_t)(npair * nb * 64) +
                                     sizeof(float) * (size_t)(2 * scs * (npair + tr) + tr * scs + nb * P_XST));
    if (!xq) {
        fallback(W, wrow, r0, r1, n_in, X, xstride, n_tok, Y, ystride);
        return;
    }
    float *xd2 = (float *)(void *)(xq + npair * nb * 64), *wd2 = xd2 + 2 * scs * npair, *wm = wd2 + 2 * scs * tr;
    float *xsT = wm + tr * scs;
    const int64_t part = (r1 - r0) / tr, rest = r0 + tr * part;
    for (int64_t c0 = 0; c0 < n_tok; c0 += P_CHUNK) {
        const int64_t c1 = c0 + P_CHUNK < n_tok ? c0 + P_CHUNK : n_tok;
        for (int64_t p = 0; 2 * p < c1 - c0; p++) {
            const uint8_t *a = X + (c0 + 2 * p) * xstride, *b = c0 + 2 * p + 1 < c1 ? a + xstride : a;
            for (int64_t k = 0; k < nb; k++) {
                _mm512_store_si512(xq + (p * nb + k) * 64, pair_quants(a + k * xbs + xbs - 32, b + k * xbs + xbs - 32));
                xd2[p * 2 * scs + 2 * k] = lut16(a + k * xbs);
                xd2[p * 2 * scs + 2 * k + 1] = lut16(b + k * xbs);
            }
        }
        for (int64_t b = 0; b < nb; b++)
            for (int64_t t = 0; t < P_XST; t++)
                xsT[b * P_XST + t] = c0 + t < c1 ? lut16(X + (c0 + t) * xstride + b * xbs + 2) : 0.0f;
        for (int64_t i = 0; i < part + (r1 - rest); i++) {
            const int R = i < part ? tr : 1;
            const int64_t r = i < part ? r0 + i : rest + (i - part);
            const int64_t rstride = i < part ? part * wrow : wrow;
            for (int k = 0; k < R; k++)
                for (int64_t b = 0; b < nb; b++) {
                    const uint8_t *wb = W + r * wrow + k * rstride + b * wbs;
                    wd2[k * 2 * scs + 2 * b] = wd2[k * 2 * scs + 2 * b + 1] = lut16(wb);
                    wm[k * scs + b] = lut16(wb + 2);
                }
            for (int64_t t = c0; t < c1; t += 2 * tp) {
                const int T = (int)(c1 - t < 2 * tp ? c1 - t : 2 * tp), p0 = (int)(t - c0) / 2;
                tile(R, (T + 1) / 2, T & 1, W + r * wrow, rstride, nb, xq + p0 * nb * 64, Y + t * ystride + r, ystride,
                     i < part ? part : 1, wd2, xd2 + p0 * 2 * scs, wm, xsT + (t - c0), scs);
            }
        }
    }
}

void akk_rows_pairs_avx512(int type, akk_rows_fn fallback, const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1,
                           int64_t n_in, const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    if (n_tok < 2 || (type != AKK_Q4_1 && type != AKK_Q5_1))
        fallback(W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
    else if (type == AKK_Q4_1)
        rows_pairs(type, tile2_q4_1, fallback, Q41_TR, Q41_TP, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
    else
        rows_pairs(type, tile2_q5_1, fallback, Q5_TR, Q5_TP, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}

/*
 * The quantised matmul tiles (Q8_0, Q4_0, Q4_1 weights; Q4_0 repacked in groups of 8 rows) and
 * their row drivers, included by simd_avx2.c and simd_avx512.c. Each includer defines first:
 *   QT_FN, QT_INLINE   the function attributes (its target features)
 *   u8s8_acc(acc,u,x)  acc + 8 int32 lanes, lane l = sum of u[j]*x[j] over j in 4l..4l+3
 *                      (u unsigned bytes, x signed; AVX2: maddubs + madd, VNNI: vpdpbusd)
 *   r8_isum(w, q, acc) acc + the 8 row sums of one repacked block (see r8_tile)
 *   QT_TILE_Q8_0, QT_TILE_Q4_0, QT_TILE_Q4_1   the prefill tile shape of a type: rows, tokens
 * and uses the fp16 table akk_fp16_lut (filled by akk_avx2_prepare).
 * The integer sums are exact either way, so every includer gives the same bits.
 */
#ifndef AKK_QUANT_TILES_H
#define AKK_QUANT_TILES_H
#ifndef QT_STREAM_PF
#define QT_STREAM_PF 0 /* 1: the Q4_0_R8 decode prefetches its weight streams (akk_stream_pf) */
#endif

/* Register tiles up to TILE_MAX x TILE_MAX; token chunks of TOK_CHUNK (measurements: simd_avx2.c). */
#define TILE_MAX 4
#define TOK_CHUNK 64

static inline float lut(const uint8_t *p) { return akk_fp16_lut[akk_load_u16(p)]; }

/* 16 packed bytes -> 32 bytes: low nibbles (elements 0..15), then high nibbles (16..31).
 * Broadcast the 16 bytes to both halves, shift the upper half right by 4, mask. */
AVX2_INLINE __m256i unpack_nibbles(const uint8_t *qs) {
    const __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
    const __m256i s = _mm256_srlv_epi32(b, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
    return _mm256_and_si256(s, _mm256_set1_epi8(0x0f));
}

/*
 * One register tile: R weight rows x T tokens, one 8-lane accumulator per (row, token).
 * Per block the integer lane sums are exact and equal to the scalar reference's:
 *   Q8_0 {d, int8 qs[32]}:   maddubs(|w|, x signed by w)            = sum w*x
 *   Q4_0 {d, uint8 qs[16]}:  maddubs(nibble, x) - 8*sum(x) per lane  = sum (nibble-8)*x
 *   Q4_1 {d, m, uint8 qs[16]} x Q8_1 {d, s, qs}: maddubs(nibble, x)  = sum nibble*x,
 *                            plus summs[r][t] = fma(m_w, s_x, summs[r][t])
 * then acc[r][t] = fma(d_w*d_x, (float)lanes, acc[r][t]); output hsum8(acc) (+ summs).
 *
 * The scale product d_w*d_x (a float multiply) comes either from the fp16 table per block
 * (PRE = 0), or (PRE = 1, prefill) from float scales the caller unpacked once: wsc[r*scs + b]
 * and xsc[t*scs + b], padded to a multiple of 8 blocks, so one vector multiply yields the
 * products of 8 blocks for a (row, token) pair and the block loop only broadcasts them.
 */
QT_INLINE void tile(const int type, const int PRE, const int R, const int T, const uint8_t *w,
                      int64_t wrow, int64_t nb, const uint8_t *x, int64_t xstride, float *y,
                      int64_t ystride, int64_t yrow, const float *wsc, const float *xsc, int64_t scs) {
    const int wbs = type == AKK_Q8_0 ? 34 : type == AKK_Q4_0 ? 18 : 20;
    const int xbs = type == AKK_Q4_1 ? 36 : 34, xoff = xbs - 32;
    __m256 acc[TILE_MAX][TILE_MAX];
    float summs[TILE_MAX][TILE_MAX];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) { acc[r][t] = _mm256_setzero_ps(); summs[r][t] = 0.0f; }
    for (int64_t b0 = 0; b0 < nb; b0 += 8) {
        float dp[TILE_MAX][TILE_MAX][8] __attribute__((aligned(32)));
        if (PRE)
            for (int r = 0; r < R; r++)
                for (int t = 0; t < T; t++)
                    _mm256_store_ps(dp[r][t], _mm256_mul_ps(_mm256_loadu_ps(wsc + r * scs + b0),
                                                            _mm256_loadu_ps(xsc + t * scs + b0)));
        const int64_t b1 = b0 + 8 < nb ? b0 + 8 : nb;
        for (int64_t b = b0; b < b1; b++) {
            __m256i wq[TILE_MAX], wa[TILE_MAX];
            __m256 wd[TILE_MAX];
            for (int r = 0; r < R; r++) {
                const uint8_t *wb = w + r * wrow + b * wbs;
                if (!PRE) wd[r] = _mm256_set1_ps(lut(wb));
                if (type == AKK_Q8_0) {
                    wq[r] = _mm256_loadu_si256((const __m256i *)(wb + 2));
                    wa[r] = _mm256_sign_epi8(wq[r], wq[r]);
                } else {
                    wq[r] = unpack_nibbles(wb + (type == AKK_Q4_0 ? 2 : 4));
                }
            }
            for (int t = 0; t < T; t++) {
                const uint8_t *xb = x + t * xstride + b * xbs;
                const __m256 xd = PRE ? _mm256_setzero_ps() : _mm256_set1_ps(lut(xb));
                const __m256i xq = _mm256_loadu_si256((const __m256i *)(xb + xoff));
                const __m256i zero = _mm256_setzero_si256();
                /* Q4_0: the lanes start from -8 * (sum of x) */
                const __m256i xneg8 = type == AKK_Q4_0 ? _mm256_sub_epi32(zero, u8s8_acc(zero, _mm256_set1_epi8(8), xq)) : zero;
                for (int r = 0; r < R; r++) {
                    __m256i li;
                    if (type == AKK_Q8_0) {
                        li = u8s8_acc(zero, wa[r], _mm256_sign_epi8(xq, wq[r]));
                    } else if (type == AKK_Q4_0) {
                        li = u8s8_acc(xneg8, wq[r], xq);
                    } else {
                        li = u8s8_acc(zero, wq[r], xq);
                        const float m = lut(w + r * wrow + b * wbs + 2), s = lut(xb + 2);
                        summs[r][t] = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(m), _mm_set_ss(s), _mm_set_ss(summs[r][t])));
                    }
                    const __m256 d = PRE ? _mm256_set1_ps(dp[r][t][b - b0]) : _mm256_mul_ps(wd[r], xd);
                    acc[r][t] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(li), acc[r][t]);
                }
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            y[t * ystride + r * yrow] = type == AKK_Q4_1 ? hsum8(acc[r][t]) + summs[r][t] : hsum8(acc[r][t]);
}

/* ---- tile dispatch with compile-time tile shapes ---- */

#define TILE_ROW(CALL, r)                                                                          \
    case r * 8 + 1: CALL(r, 1); break;                                                             \
    case r * 8 + 2: CALL(r, 2); break;                                                             \
    case r * 8 + 3: CALL(r, 3); break;                                                             \
    case r * 8 + 4: CALL(r, 4); break;
#define TILE_CASES(CALL)                                                                           \
    switch (R * 8 + T) {                                                                           \
    TILE_ROW(CALL, 1) TILE_ROW(CALL, 2) TILE_ROW(CALL, 3) TILE_ROW(CALL, 4)                        \
    default: break;                                                                                \
    }

#if TILE_MAX != 4
#error "TILE_CASES enumerates tiles up to 4x4"
#endif

/* Tiles of any shape up to TILE_MAX x TILE_MAX; wsc == NULL selects the per-block table path. */
#define CALL_TILE(r, t)                                                                            \
    (wsc ? tile(TILE_TYPE, 1, r, t, w, wrow, nb, x, xs, y, ys, yr, wsc, xsc, scs)                  \
         : tile(TILE_TYPE, 0, r, t, w, wrow, nb, x, xs, y, ys, yr, 0, 0, 0))

/* tile_<type>_any: the tile of weight type TYPE, any shape */
#define TILE_ANY(name, TYPE)                                                                       \
    QT_FN void name(int R, int T, const uint8_t *w, int64_t wrow, int64_t nb, const uint8_t *x,    \
                    int64_t xs, float *y, int64_t ys, int64_t yr, const float *wsc,                \
                    const float *xsc, int64_t scs) {                                               \
        enum { TILE_TYPE = TYPE };                                                                 \
        TILE_CASES(CALL_TILE)                                                                      \
    }
TILE_ANY(tile_q8_0_any, AKK_Q8_0)
TILE_ANY(tile_q4_0_any, AKK_Q4_0)
TILE_ANY(tile_q4_1_any, AKK_Q4_1)

typedef void (*tile_fn)(int R, int T, const uint8_t *w, int64_t wrow, int64_t nb, const uint8_t *x,
                        int64_t xs, float *y, int64_t ys, int64_t yr, const float *wsc,
                        const float *xsc, int64_t scs);

/* Rows [r0, r1) x all tokens. The range is cut into tr equal parts and a row tile takes row i of
 * every part, so each of its tr weight streams is one long sequential read (tr short interleaved
 * streams from adjacent rows defeat the hardware prefetcher: decode was 2x slower from DRAM).
 * Decode (n_tok = 1) uses TILE_MAX x 1 tiles with table scales. Prefill: token chunks of
 * TOK_CHUNK (their activations stay in L2) whose block scales are unpacked to floats once, then
 * row tiles (their scales unpacked once per chunk), then token tiles of tt tokens; leftover rows
 * (fewer than tr) and tokens use smaller tiles. wbs/xbs: weight/activation block bytes. */
static void rows_tiled(tile_fn tile, int wbs, int xbs, int tr, int tt, const uint8_t *W,
                       int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X,
                       int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    const int64_t nb = n_in / 32, scs = (nb + 7) & ~(int64_t)7;
    float *xsc = NULL, *wsc = NULL;
    if (n_tok == 1) {
        tr = TILE_MAX, tt = 1;
    } else if (n_tok >= 8) { /* fewer tokens do not repay unpacking the scales */
        xsc = calloc((size_t)(TOK_CHUNK + TILE_MAX) * (size_t)scs, sizeof(float));
        wsc = xsc ? xsc + TOK_CHUNK * scs : NULL; /* without scratch: the table path */
    }
    const int64_t part = (r1 - r0) / tr, rest = r0 + tr * part;
    for (int64_t c0 = 0; c0 < n_tok; c0 += TOK_CHUNK) {
        const int64_t c1 = c0 + TOK_CHUNK < n_tok ? c0 + TOK_CHUNK : n_tok;
        if (xsc)
            for (int64_t t = c0; t < c1; t++)
                for (int64_t b = 0; b < nb; b++) xsc[(t - c0) * scs + b] = lut(X + t * xstride + b * xbs);
        for (int64_t i = 0; i < part + (r1 - rest); i++) {
            /* Row tile i: row i of each part, or one leftover row once the parts are done. */
            const int R = i < part ? tr : 1;
            const int64_t r = i < part ? r0 + i : rest + (i - part);
            const int64_t rstride = i < part ? part * wrow : wrow;
            if (wsc)
                for (int k = 0; k < R; k++)
                    for (int64_t b = 0; b < nb; b++) wsc[k * scs + b] = lut(W + r * wrow + k * rstride + b * wbs);
            for (int64_t t = c0; t < c1; t += tt) {
                const int T = (int)(c1 - t < tt ? c1 - t : tt);
                tile(R, T, W + r * wrow, rstride, nb, X + t * xstride, xstride, Y + t * ystride + r, ystride,
                     i < part ? part : 1, wsc, xsc ? xsc + (t - c0) * scs : NULL, scs);
            }
        }
    }
    free(xsc);
}

static void rows_q8_0(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                      const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    rows_tiled(tile_q8_0_any, 34, 34, QT_TILE_Q8_0, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}
static void rows_q4_0(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                      const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    rows_tiled(tile_q4_0_any, 18, 34, QT_TILE_Q4_0, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}
static void rows_q4_1(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                      const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    rows_tiled(tile_q4_1_any, 20, 36, QT_TILE_Q4_1, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}

/* ---- Q4_0 repacked in groups of 8 rows (layout and numerics: repack.c) ---- */

/* The 8 rows of one group x T tokens over all nb blocks. xd[t*scs + b]: the activation scale of
 * token t, block b, as float; xs8[t*scs + b]: 8 * (sum of its 32 quants) (the -8 offset of the
 * nibbles, taken out once per block). Output: y[t*ystride + i], rows i = 0..7 of the group. */
/* The nibbles of a repacked block as r8_isum takes them: w[2m] the low nibbles of its 32-byte
 * chunk m (quants 4m..4m+3 of each row), w[2m+1] the high ones (quants 16+4m..). */
QT_INLINE void r8_unpack(const uint8_t *blk, __m256i w[8]) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    for (int m = 0; m < 4; m++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * m));
        w[2 * m] = _mm256_and_si256(v, m4);
        w[2 * m + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    }
}

QT_INLINE void r8_tile(const int T, const uint8_t *grp, int64_t nb, const uint8_t *x, int64_t xstride,
                         const float *xd, const int32_t *xs8, int64_t scs, float *y, int64_t ystride) {
    __m256 acc[4];
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = grp + b * 144;
        const __m256 ws = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk));
        __m256i w[8];
        r8_unpack(blk, w);
        for (int t = 0; t < T; t++) {
            const int8_t *q = (const int8_t *)(x + t * xstride + b * 34 + 2);
            const __m256i isum = r8_isum(w, q, _mm256_set1_epi32(-xs8[t * scs + b]));
            const __m256 d = _mm256_mul_ps(ws, _mm256_set1_ps(xd[t * scs + b]));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc[t]);
        }
    }
    for (int t = 0; t < T; t++) _mm256_storeu_ps(y + t * ystride, acc[t]);
}

/* Decode: two groups from two distant places at once (ya, yb: their 8 outputs). Two sequential
 * weight streams per core keep more reads in flight than one; the values are r8_tile's. */
QT_FN void r8_decode2(const uint8_t *ga, const uint8_t *gb, int64_t nb, const uint8_t *x,
                        const float *xd, const int32_t *xs8, float *ya, float *yb) {
    __m256 acca = _mm256_setzero_ps(), accb = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *ba = ga + b * 144, *bb = gb + b * 144;
        const int8_t *q = (const int8_t *)(x + b * 34 + 2);
        if (QT_STREAM_PF) {
            akk_stream_pf(ba, 144);
            akk_stream_pf(bb, 144);
        }
        __m256i wa[8], wb[8];
        r8_unpack(ba, wa);
        r8_unpack(bb, wb);
        const __m256i s8 = _mm256_set1_epi32(-xs8[b]);
        const __m256 dx = _mm256_set1_ps(xd[b]);
        const __m256i ia = r8_isum(wa, q, s8), ib = r8_isum(wb, q, s8);
        acca = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia), _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)ba)), dx), acca);
        accb = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ib), _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)bb)), dx), accb);
    }
    _mm256_storeu_ps(ya, acca);
    _mm256_storeu_ps(yb, accb);
}

QT_FN void r8_tile_any(int T, const uint8_t *grp, int64_t nb, const uint8_t *x, int64_t xstride,
                         const float *xd, const int32_t *xs8, int64_t scs, float *y, int64_t ystride) {
    switch (T) {
    case 1: r8_tile(1, grp, nb, x, xstride, xd, xs8, scs, y, ystride); break;
    case 2: r8_tile(2, grp, nb, x, xstride, xd, xs8, scs, y, ystride); break;
    case 3: r8_tile(3, grp, nb, x, xstride, xd, xs8, scs, y, ystride); break;
    default: r8_tile(4, grp, nb, x, xstride, xd, xs8, scs, y, ystride); break;
    }
}

/* Block scale (float) and 8 * block sum of one token's Q8_0 activations. */
QT_FN void r8_prepare(const uint8_t *x, int64_t nb, float *xd, int32_t *xs8) {
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *xb = x + b * 34;
        xd[b] = lut(xb);
        const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, _mm256_loadu_si256((const __m256i *)(xb + 2))), ones16);
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        s4 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 1));
        xs8[b] = 8 * _mm_cvtsi128_si32(s4);
    }
}

/* Rows [r0, r1) (multiples of 8) x all tokens (akk_rows_r8): per group of 8 rows, token tiles of
 * 4 pass over the group's weights (8 rows x n_in/2 bytes, in L1/L2). Decode reads each group
 * once, two groups' streams at a time. */
static void rows_q4_0_r8(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                         const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    static const struct akk_r8_kernel k = {32, 1, 4, r8_prepare, r8_tile_any, r8_decode2, akk_rows_q4_0_r8_scalar};
    akk_rows_r8(&k, W, wrow, r0, r1, n_in, X, xstride, n_tok, Y, ystride);
}

#endif

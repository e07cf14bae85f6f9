/*
 * AVX2 + FMA kernels of Q5_0, Q5_1 and the K-quants with their activation formats: register tiles
 * of R weight rows x T tokens, one dot per (row, token) that performs the float operations of its
 * scalar reference in kquant_dot.c in the same order (the lane layout and accumulation are
 * described there), so results are bit-identical whatever the tile; the single dot is the 1 x 1
 * tile. The integer lanes come from maddubs (unsigned quant x signed activation, pair sums that fit
 * int16) and madd with the sub-block scales, which is exact.
 *
 * Why tiles: a K-quant block's unpacking (nibbles, high bits, 6-bit scales) costs about as much as
 * its products with one token; a tile unpacks each weight chunk once for its T tokens (prefill and
 * the grouped expert path), and R rows from R distant places keep R weight streams in flight
 * (decode). Compiled per function with target attributes, as simd_avx2.c.
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include "akk_avx2.h"
#include <math.h>
#include <string.h>

AVX2_INLINE float half(const uint8_t *p) { return _cvtsh_ss(akk_load_u16(p)); }


/* 16 packed bytes -> 32: low nibbles (elements 0..15), then high nibbles (16..31). */
AVX2_INLINE __m256i nibbles32(const uint8_t *qs) {
    const __m128i v = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0f));
}

/* ---- Q5_0 x Q8_0, Q5_1 x Q8_1 (blocks of 32) ---- */

/* Q5_0 (Q51 = 0) or Q5_1 (Q51 = 1): R rows (rs bytes apart) x T tokens (xs apart) over nb blocks;
 * output of row r, token t at y[t*ys + r*yr]. Per block: acc = fma(d_w*d_x, lanes, acc) (Q5_1:
 * and summs = fma(m_w, s_x, summs)); result hsum8(acc) (+ summs). */
AVX2_INLINE void tile_q5(const int Q51, const int R, const int T, const uint8_t *w, int64_t rs, int64_t nb,
                         const uint8_t *x, int64_t xs, float *y, int64_t ys, int64_t yr) {
    const int wbs = Q51 ? 24 : 22, xbs = Q51 ? 36 : 34, xoff = Q51 ? 4 : 2;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[4][8];
    float summs[4][8];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) { acc[r][t] = _mm256_setzero_ps(); summs[r][t] = 0.0f; }
    for (int64_t b = 0; b < nb; b++) {
        __m256i q[4], qa[4];
        float wd[4];
        for (int r = 0; r < R; r++) {
            const uint8_t *wb = w + r * rs + b * wbs;
            wd[r] = half(wb);
            if (Q51) { /* nibble | fifth bit << 4, unsigned */
                q[r] = _mm256_or_si256(nibbles32(wb + 8), _mm256_and_si256(akk_bits_to_bytes(wb + 4), _mm256_set1_epi8(0x10)));
            } else { /* q - 16 as signed bytes: nibble | 0xF0 where the fifth bit is clear */
                q[r] = _mm256_or_si256(nibbles32(wb + 6), _mm256_andnot_si256(akk_bits_to_bytes(wb + 2), _mm256_set1_epi8((char)0xF0)));
                qa[r] = _mm256_sign_epi8(q[r], q[r]);
            }
        }
        for (int t = 0; t < T; t++) {
            const uint8_t *xb = x + t * xs + b * xbs;
            const __m256i xq = _mm256_loadu_si256((const __m256i *)(xb + xoff));
            const float xd = half(xb);
            for (int r = 0; r < R; r++) {
                const __m256i p = Q51 ? _mm256_maddubs_epi16(q[r], xq) : _mm256_maddubs_epi16(qa[r], _mm256_sign_epi8(xq, q[r]));
                if (Q51) summs[r][t] = fmaf(half(w + r * rs + b * wbs + 2), half(xb + 2), summs[r][t]);
                acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(wd[r] * xd), _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones)), acc[r][t]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) y[t * ys + r * yr] = Q51 ? hsum8(acc[r][t]) + summs[r][t] : hsum8(acc[r][t]);
}

/* ---- K-quants x Q8_K (super-blocks of 256) ---- */

/* Chunk c (elements 32c..32c+31) of a block of `type` as bytes for maddubs: unsigned quants, or
 * for Q3_K the signed quants (-4..3; the caller multiplies with the sign trick). */
AVX2_INLINE __m256i chunk_q(const int type, const uint8_t *wb, int c) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(3);
    switch (type) {
    case AKK_Q2_K:
        return _mm256_and_si256(_mm256_srli_epi16(_mm256_loadu_si256((const __m256i *)(wb + 16 + 32 * (c / 4))), 2 * (c % 4)), m3);
    case AKK_Q3_K: {
        const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(_mm256_loadu_si256((const __m256i *)(wb + 32 + 32 * (c / 4))), 2 * (c % 4)), m3);
        /* 4 where hmask bit c is clear, else 0 */
        const __m256i bit = _mm256_set1_epi8((char)(1 << c));
        const __m256i hm = _mm256_loadu_si256((const __m256i *)wb);
        const __m256i hi = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), _mm256_setzero_si256()), _mm256_set1_epi8(4));
        return _mm256_sub_epi8(lo, hi);
    }
    case AKK_Q4_K: {
        const __m256i bits = _mm256_loadu_si256((const __m256i *)(wb + 16 + 32 * (c / 2)));
        return _mm256_and_si256(c % 2 ? _mm256_srli_epi16(bits, 4) : bits, m4);
    }
    case AKK_Q5_K: {
        const __m256i bits = _mm256_loadu_si256((const __m256i *)(wb + 48 + 32 * (c / 2)));
        const __m256i hb = _mm256_loadu_si256((const __m256i *)(wb + 16));
        /* bit c of qh moved to bit 4 */
        const __m256i h = _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(hb, c), 4), _mm256_set1_epi8(0x10));
        return _mm256_or_si256(_mm256_and_si256(c % 2 ? _mm256_srli_epi16(bits, 4) : bits, m4), h);
    }
    default: { /* Q6_K: unsigned 0..63 */
        const int h = c / 4, s = c % 4;
        const __m256i lo = _mm256_loadu_si256((const __m256i *)(wb + 64 * h + 32 * (s & 1)));
        const __m256i hb = _mm256_loadu_si256((const __m256i *)(wb + 128 + 32 * h));
        const __m256i nib = _mm256_and_si256(s < 2 ? lo : _mm256_srli_epi16(lo, 4), m4);
        return _mm256_or_si256(nib, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * s), m3), 4));
    }
    }
}

/* vpshufb masks: for Q2_K/Q3_K/Q6_K (16 scales of 16 elements, chunk c < 4 from the low 8 and
 * c >= 4 from the high 8, each set of 8 in both 128-bit halves) word 2c%8 to the low half and
 * word (2c+1)%8 to the high half; for Q4_K/Q5_K (8 scales of 32, in both halves) word c to all. */
#define W2(k) (char)(2 * (k)), (char)(2 * (k) + 1)
#define W8(k) W2(k), W2(k), W2(k), W2(k), W2(k), W2(k), W2(k), W2(k)
static const char scale_shuf[16][32] __attribute__((aligned(32))) = {
    {W8(0), W8(1)}, {W8(2), W8(3)}, {W8(4), W8(5)}, {W8(6), W8(7)},
    {W8(0), W8(1)}, {W8(2), W8(3)}, {W8(4), W8(5)}, {W8(6), W8(7)},
    {W8(0), W8(0)}, {W8(1), W8(1)}, {W8(2), W8(2)}, {W8(3), W8(3)},
    {W8(4), W8(4)}, {W8(5), W8(5)}, {W8(6), W8(6)}, {W8(7), W8(7)},
};

/* Per block and row: the sub-block scales as 16-bit words (lo, hi: see scale_shuf), the mins and
 * the fp16 super-block scales. */
struct kq_row {
    __m256i lo, hi;
    __m256i mins16; /* Q2_K: the 16 mins; Q6_K: the 16 scales */
    __m256i m;      /* Q4_K, Q5_K: the 8 mins, each twice (word k: min k/2, for bsums k) */
    float d, dmin;  /* fp16 super-block scale (and min scale) */
};

/* The 16-bit scales of chunk c: the first 16 bytes' in the low 128 bits, the last 16's high. */
AVX2_INLINE __m256i chunk_scales(const int type, const struct kq_row *k, int c) {
    if (type == AKK_Q4_K || type == AKK_Q5_K)
        return _mm256_shuffle_epi8(k->lo, _mm256_load_si256((const __m256i *)scale_shuf[8 + c]));
    return _mm256_shuffle_epi8(c < 4 ? k->lo : k->hi, _mm256_load_si256((const __m256i *)scale_shuf[c]));
}

AVX2_INLINE void kq_row_prepare(const int type, const uint8_t *wb, struct kq_row *k) {
    __m256i s16; /* Q2_K, Q3_K, Q6_K: the 16 scales in order */
    switch (type) {
    case AKK_Q2_K: {
        const __m128i sm = _mm_loadu_si128((const __m128i *)wb), m4 = _mm_set1_epi8(0x0f);
        s16 = _mm256_cvtepu8_epi16(_mm_and_si128(sm, m4));
        k->mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sm, 4), m4));
        k->d = half(wb + 80);
        k->dmin = half(wb + 82);
        break;
    }
    case AKK_Q3_K:
        s16 = akk_q3_k_scales16(wb + 96);
        k->d = half(wb + 108);
        break;
    case AKK_Q4_K: case AKK_Q5_K: {
        uint32_t u[4];
        akk_k4_scale_words(wb + 4, u);
        k->lo = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_setr_epi32((int)u[0], (int)u[1], 0, 0)));
        const __m128i m8 = _mm_setr_epi32((int)u[2], (int)u[3], 0, 0);
        k->m = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
        k->d = half(wb);
        k->dmin = half(wb + 2);
        return;
    }
    default: /* Q6_K */
        s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wb + 192)));
        k->mins16 = s16;
        k->d = half(wb + 208);
        break;
    }
    k->lo = _mm256_permute2x128_si256(s16, s16, 0x00);
    k->hi = _mm256_permute2x128_si256(s16, s16, 0x11);
}

/* Q4_K/Q5_K mins as 8 int32 lanes (lane j: m[j] * (bsums[2j] + bsums[2j+1])), and the exact
 * totals [S, M] of the block's lanes S and those mins, as floats (two hadds: both in one go). */
AVX2_INLINE __m256i mins_k4(const uint8_t *xb, __m256i m) {
    return _mm256_madd_epi16(m, _mm256_loadu_si256((const __m256i *)(xb + 260)));
}
AVX2_INLINE __m128 totals2(__m256i s, __m256i m) {
    __m256i h = _mm256_hadd_epi32(s, m);
    h = _mm256_hadd_epi32(h, h);
    return _mm_cvtepi32_ps(_mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
}

/* The totals of 4 vectors' 8 int32 lanes, lane j = a[j]'s (exact: any order gives the same). */
AVX2_INLINE __m128i hsum4x8_epi32(const __m256i a[4]) {
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3]));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/*
 * K-quant `type` x Q8_K: R rows (rs bytes apart) x T tokens (xs apart) over nb super-blocks;
 * output of row r, token t at y[t*ys + r*yr]. Per super-block the exact int32 lanes (kquant_dot.c)
 * for every (row, token), then per type:
 *   Q2_K  acc = fma(-d_x*dmin_w, mins lanes, acc); acc = fma(d_x*d_w, lanes, acc)
 *   Q3_K  acc = fma(d_x*d_w, lanes, acc)
 *   Q4_K  acc1 = fmaf(S, d_w*d_x, acc1); accm = fmaf(M, dmin_w*d_x, accm)   (S, M exact totals)
 *   Q5_K  summs = fmaf(-d_x*dmin_w, M, summs); acc = fma(d_x*d_w, lanes, acc)
 *   Q6_K  acc = fma(d_x*d_w, lanes - 32*(scale lanes of bsums), acc)
 * result hsum8(acc) (+ summs), or acc1 - accm.
 */

/* TL = 1: llama.cpp's tiled order instead (akk_vec_dot_kq_tiled_scalar, kquant_dot.c): the
 * block's exact totals S (and M) from the same lanes, res = d_w*S (fma(-dmin_w, M, res)),
 * acc = fma(res, d_x, acc). Q2_K, Q3_K, Q5_K, Q6_K. The totals of up to 4 tokens come from one
 * hadd reduction and their float steps run as one 4-lane vector (the same operations lane by lane,
 * so the same bits; Zen 3, 1 thread, 1024 x 2048, 128 tokens, GMAC/s, against a scalar tail per
 * token: Q2_K 38-41 -> 45-46, Q5_K 34-35 -> 36, Q6_K 47.5-48 -> 54-55). */
AVX2_INLINE void tile_kq(const int type, const int TL, const int R, const int T, const uint8_t *w, int64_t rs, int64_t nb,
                         const uint8_t *x, int64_t xs, float *y, int64_t ys, int64_t yr) {
    const int wbs = type == AKK_Q2_K ? 84 : type == AKK_Q3_K ? 110 : type == AKK_Q4_K ? 144 : type == AKK_Q5_K ? 176 : 210;
    __m256 acc[4][8];
    float acc1[4][8], accm[4][8];
    __m128 acc4[4][2]; /* TL: tokens 4g..4g+3 in acc4[r][g] */
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) { acc[r][t] = _mm256_setzero_ps(); acc1[r][t] = accm[r][t] = 0.0f; }
    for (int r = 0; r < R; r++) acc4[r][0] = acc4[r][1] = _mm_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        struct kq_row k[4];
        for (int r = 0; r < R; r++) {
            if (T == 1) akk_stream_pf(w + r * rs + b * wbs, wbs);
            kq_row_prepare(type, w + r * rs + b * wbs, &k[r]);
        }
        __m256i sum[4][8];
        for (int r = 0; r < R; r++)
            for (int t = 0; t < T; t++) sum[r][t] = _mm256_setzero_si256();
        for (int c = 0; c < 8; c++) {
            __m256i q[4], qa[4], sv[4];
            for (int r = 0; r < R; r++) {
                sv[r] = chunk_scales(type, &k[r], c);
                q[r] = chunk_q(type, w + r * rs + b * wbs, c);
                if (type == AKK_Q3_K) qa[r] = _mm256_sign_epi8(q[r], q[r]);
            }
            for (int t = 0; t < T; t++) {
                const __m256i xq = _mm256_loadu_si256((const __m256i *)(x + t * xs + b * 292 + 4 + 32 * c));
                for (int r = 0; r < R; r++) {
                    const __m256i p = type == AKK_Q3_K ? _mm256_maddubs_epi16(qa[r], _mm256_sign_epi8(xq, q[r]))
                                                       : _mm256_maddubs_epi16(q[r], xq);
                    sum[r][t] = _mm256_add_epi32(sum[r][t], _mm256_madd_epi16(p, sv[r]));
                }
            }
        }
        if (TL) {
            for (int r = 0; r < R; r++)
                for (int t0 = 0; t0 < T; t0 += 4) {
                    __m256i S[4], M[4];
                    float dx[4] = {0.0f, 0.0f, 0.0f, 0.0f};
                    for (int j = 0; j < 4; j++) {
                        S[j] = M[j] = _mm256_setzero_si256(); /* lanes past T: zeros, never stored */
                        if (t0 + j >= T) continue;
                        const uint8_t *xb = x + (t0 + j) * xs + b * 292;
                        const __m256i bs = _mm256_loadu_si256((const __m256i *)(xb + 260));
                        dx[j] = akk_load_f32(xb);
                        S[j] = sum[r][t0 + j];
                        if (type == AKK_Q6_K) S[j] = _mm256_sub_epi32(S[j], _mm256_slli_epi32(_mm256_madd_epi16(bs, k[r].mins16), 5));
                        if (type == AKK_Q2_K) M[j] = _mm256_madd_epi16(k[r].mins16, bs);
                        if (type == AKK_Q5_K) M[j] = mins_k4(xb, k[r].m);
                    }
                    __m128 res = _mm_mul_ps(_mm_set1_ps(k[r].d), _mm_cvtepi32_ps(hsum4x8_epi32(S)));
                    if (type == AKK_Q2_K || type == AKK_Q5_K)
                        res = _mm_fmadd_ps(_mm_set1_ps(-k[r].dmin), _mm_cvtepi32_ps(hsum4x8_epi32(M)), res);
                    acc4[r][t0 / 4] = _mm_fmadd_ps(res, _mm_loadu_ps(dx), acc4[r][t0 / 4]);
                }
            continue;
        }
        for (int t = 0; t < T; t++) {
            const uint8_t *xb = x + t * xs + b * 292;
            const float dx = akk_load_f32(xb);
            for (int r = 0; r < R; r++) {
                const float d = dx * k[r].d;
                switch (type) {
                case AKK_Q2_K: {
                    const __m256i pm = _mm256_madd_epi16(k[r].mins16, _mm256_loadu_si256((const __m256i *)(xb + 260)));
                    acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(-dx * k[r].dmin), _mm256_cvtepi32_ps(pm), acc[r][t]);
                    acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sum[r][t]), acc[r][t]);
                    break;
                }
                case AKK_Q4_K: {
                    const __m128 sm = totals2(sum[r][t], mins_k4(xb, k[r].m));
                    acc1[r][t] = fmaf(_mm_cvtss_f32(sm), k[r].d * dx, acc1[r][t]);
                    accm[r][t] = fmaf(_mm_cvtss_f32(_mm_movehdup_ps(sm)), k[r].dmin * dx, accm[r][t]);
                    break;
                }
                case AKK_Q5_K:
                    acc1[r][t] = fmaf(-dx * k[r].dmin, _mm_cvtss_f32(_mm_movehdup_ps(totals2(sum[r][t], mins_k4(xb, k[r].m)))), acc1[r][t]);
                    acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sum[r][t]), acc[r][t]);
                    break;
                case AKK_Q6_K: {
                    const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(xb + 260)), k[r].mins16), 5);
                    acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_sub_epi32(sum[r][t], corr)), acc[r][t]);
                    break;
                }
                default: /* Q3_K */
                    acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sum[r][t]), acc[r][t]);
                }
            }
        }
    }
    if (TL)
        for (int r = 0; r < R; r++)
            for (int g = 0; g < 2; g++) _mm_storeu_ps(&acc1[r][4 * g], acc4[r][g]);
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            y[t * ys + r * yr] = TL ? acc1[r][t] : type == AKK_Q4_K ? acc1[r][t] - accm[r][t]
                               : type == AKK_Q5_K ? hsum8(acc[r][t]) + acc1[r][t] : hsum8(acc[r][t]);
}

/* One function per type over the tile shapes the row kernels use: 1 row x T in {1, 2, 4, 8}
 * tokens (R > 1 measured slower, see KQ_ROWS). */
#define KQ_TILES(name, CALL)                                                                       \
    AVX2_FN void name(int R, int T, const uint8_t *w, int64_t rs, int64_t nb, const uint8_t *x,    \
                      int64_t xs, float *y, int64_t ys, int64_t yr) {                              \
        (void)R;                                                                                   \
        switch (T) {                                                                               \
        case 1: CALL(1, 1); break;                                                                 \
        case 2: CALL(1, 2); break;                                                                 \
        case 4: CALL(1, 4); break;                                                                 \
        default: CALL(1, 8); break;                                                                \
        }                                                                                          \
    }
#define CALL_Q5_0(R, T) tile_q5(0, R, T, w, rs, nb, x, xs, y, ys, yr)
#define CALL_Q5_1(R, T) tile_q5(1, R, T, w, rs, nb, x, xs, y, ys, yr)
#define CALL_Q2_K(R, T) tile_kq(AKK_Q2_K, 0, R, T, w, rs, nb, x, xs, y, ys, yr)
#define CALL_Q3_K(R, T) tile_kq(AKK_Q3_K, 0, R, T, w, rs, nb, x, xs, y, ys, yr)
#define CALL_Q4_K(R, T) tile_kq(AKK_Q4_K, 0, R, T, w, rs, nb, x, xs, y, ys, yr)
#define CALL_Q5_K(R, T) tile_kq(AKK_Q5_K, 0, R, T, w, rs, nb, x, xs, y, ys, yr)
#define CALL_Q6_K(R, T) tile_kq(AKK_Q6_K, 0, R, T, w, rs, nb, x, xs, y, ys, yr)
KQ_TILES(tile_q5_0, CALL_Q5_0)
KQ_TILES(tile_q5_1, CALL_Q5_1)
KQ_TILES(tile_q2_K, CALL_Q2_K)
KQ_TILES(tile_q3_K, CALL_Q3_K)
KQ_TILES(tile_q4_K, CALL_Q4_K)
KQ_TILES(tile_q5_K, CALL_Q5_K)
KQ_TILES(tile_q6_K, CALL_Q6_K)
#define CALL_Q2_K_TL(R, T) tile_kq(AKK_Q2_K, 1, R, T, w, rs, nb, x, xs, y, ys, yr)
#define CALL_Q3_K_TL(R, T) tile_kq(AKK_Q3_K, 1, R, T, w, rs, nb, x, xs, y, ys, yr)
#define CALL_Q5_K_TL(R, T) tile_kq(AKK_Q5_K, 1, R, T, w, rs, nb, x, xs, y, ys, yr)
#define CALL_Q6_K_TL(R, T) tile_kq(AKK_Q6_K, 1, R, T, w, rs, nb, x, xs, y, ys, yr)
KQ_TILES(tile_q2_K_tl, CALL_Q2_K_TL)
KQ_TILES(tile_q3_K_tl, CALL_Q3_K_TL)
KQ_TILES(tile_q5_K_tl, CALL_Q5_K_TL)
KQ_TILES(tile_q6_K_tl, CALL_Q6_K_TL)

static akk_tile_fn tile_for(int wtype) {
    switch (wtype) {
    case AKK_Q5_0: return tile_q5_0;
    case AKK_Q5_1: return tile_q5_1;
    case AKK_Q2_K: return tile_q2_K;
    case AKK_Q3_K: return tile_q3_K;
    case AKK_Q4_K: return tile_q4_K;
    case AKK_Q5_K: return tile_q5_K;
    case AKK_Q6_K: return tile_q6_K;
    default: return NULL;
    }
}

float akk_vec_dot_kq_avx2(int wtype, int64_t n, const void *w, const void *x) {
    const akk_tile_fn tile = tile_for(wtype);
    float y = 0.0f;
    if (tile) tile(1, 1, (const uint8_t *)w, 0, n / akk_block_elems(wtype), (const uint8_t *)x, 0, &y, 0, 1);
    return y;
}

/* Tile shapes, measured single-threaded on 1024 x 2048 matrices (thread CPU time, so the shared
 * host's load does not count), GMAC/s: decode R = 1 (Q4_K 29, Q6_K 32; R = 2 or 4 are slower,
 * also from DRAM: the kernel is bound by its unpacking, not by the stream), prefill of 64 tokens
 * 1 x 4 (Q4_K 47, Q5_K 46, Q6_K 43; 2 x 4 42-45; one dot per output 24-30) and 1 x 8 for Q6_K
 * (50; Q4_K drops to 37). */
#define KQ_ROWS(name, type, tile, tt)                                                              \
    void name(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X, \
              int64_t xs, int64_t n_tok, float *Y, int64_t ys) {                                   \
        akk_rows_tiled_avx2(tile, akk_block_elems(type), 1, 1, tt, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys); \
    }
KQ_ROWS(akk_rows_q5_0_avx2, AKK_Q5_0, tile_q5_0, 4)
KQ_ROWS(akk_rows_q5_1_avx2, AKK_Q5_1, tile_q5_1, 4)
KQ_ROWS(akk_rows_q2_k_avx2, AKK_Q2_K, tile_q2_K, 4)
KQ_ROWS(akk_rows_q3_k_avx2, AKK_Q3_K, tile_q3_K, 4)
KQ_ROWS(akk_rows_q4_k_avx2, AKK_Q4_K, tile_q4_K, 4)
KQ_ROWS(akk_rows_q5_k_avx2, AKK_Q5_K, tile_q5_K, 4)
KQ_ROWS(akk_rows_q6_k_avx2, AKK_Q6_K, tile_q6_K, 8)
KQ_ROWS(akk_rows_q2_k_tl_avx2, AKK_Q2_K, tile_q2_K_tl, 4)
KQ_ROWS(akk_rows_q3_k_tl_avx2, AKK_Q3_K, tile_q3_K_tl, 4)
KQ_ROWS(akk_rows_q5_k_tl_avx2, AKK_Q5_K, tile_q5_K_tl, 4)
KQ_ROWS(akk_rows_q6_k_tl_avx2, AKK_Q6_K, tile_q6_K_tl, 8)

/* ---- Q8_K activations (akk_quantize_row_q8_K's results, kquant_dot.c) ----
 * |x| max with NaN skipped (vmaxps returns its second operand when the first is NaN, as the
 * scalar `a > amax` skips it), the first element of that magnitude as the signed max, then per
 * element the same float multiply and magic-number add (no fma), the same integer steps, and the
 * low byte stored (packus of values masked to 0..255, no saturation). */
__attribute__((target("avx2,fma,f16c")))
void akk_quantize_row_q8_K_avx2(const float *x, void *y, int64_t n) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    uint8_t *p = (uint8_t *)y;
    for (int64_t b = 0; b < n / AKK_QK_K; b++, p += 292, x += AKK_QK_K) {
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < AKK_QK_K; j += 8) m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + j), absmask), m);
        __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        int8_t *qs = (int8_t *)(p + 4);
        if (amax == 0.0f) {
            memset(p, 0, 292);
            continue;
        }
        int first = 0;
        while (fabsf(x[first]) != amax) first++;
        const float iscale = -127.0f / x[first];
        const __m256 vs = _mm256_set1_ps(iscale), magic = _mm256_set1_ps(12582912.0f);
        const __m256i low23 = _mm256_set1_epi32(0x007fffff), bias = _mm256_set1_epi32(0x00400000);
        const __m256i i127 = _mm256_set1_epi32(127), byte = _mm256_set1_epi32(0xff);
        for (int j = 0; j < AKK_QK_K; j += 32) {
            __m256i v[4];
            for (int k = 0; k < 4; k++) {
                const __m256 t = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * k), vs), magic);
                const __m256i i = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(t), low23), bias);
                v[k] = _mm256_and_si256(_mm256_min_epi32(i, i127), byte);
            }
            __m256i q = _mm256_packus_epi16(_mm256_packus_epi32(v[0], v[1]), _mm256_packus_epi32(v[2], v[3]));
            q = _mm256_permutevar8x32_epi32(q, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(qs + j), q);
            const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
            for (int h = 0; h < 2; h++) {
                __m128i s4 = h ? _mm256_extracti128_si256(s, 1) : _mm256_castsi256_si128(s);
                s4 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
                const int16_t bs = (int16_t)_mm_cvtsi128_si32(_mm_add_epi32(s4, _mm_shuffle_epi32(s4, 1)));
                memcpy(p + 260 + 2 * (j / 16 + h), &bs, 2);
            }
        }
        const float d = 1.0f / iscale;
        memcpy(p, &d, 4);
    }
}

/* ---- Q4_K repacked in groups of 8 rows (AKK_Q4_K_R8, repack_q4_k.c) ----
 * AVX2 has no u8 x s8 dot into int32: the 8 maddubs of a sub-block (each pair sum <= 2*15*128)
 * add up in int16 (<= 30720) and one madd with the scale in both halves of the lane gives
 * sc * dot exactly. */
#define KR8_FN AVX2_FN
#define KR8_STREAM_PF 1
#define KR8_INLINE AVX2_INLINE
#define KR8_TT 4
AVX2_INLINE __m256i kr8_scale(const uint8_t *p) {
    const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
    return _mm256_or_si256(v, _mm256_slli_epi32(v, 16));
}
AVX2_INLINE __m256i kr8_sub(__m256i acc, const __m256i w[8], const int8_t *x, __m256i sc) {
    __m256i p = _mm256_maddubs_epi16(w[0], bcast4(x));
    for (int j = 1; j < 8; j++) p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w[j], bcast4(x + 4 * j)));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, sc));
}
AVX2_INLINE __m256i kr8_pairs(__m256i acc, __m256i mp, __m256i bp) { return _mm256_add_epi32(acc, _mm256_madd_epi16(mp, bp)); }
#include "akk_kquant_r8.h"

void akk_rows_q4_k_r8_avx2(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X,
                           int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    rows_q4_k_r8(W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}

void akk_rows_q4_k_r8_dense_avx2(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X,
                                 int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    rows_q4_k_r8_dense(W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}

/* The decode attention products of the AVX2 set (simd_avx2.c) and the AVX-512 set
 * (simd_avx512_rowops.c): out[i * os + r] = dot(a + (i / group) * ag + r * as, b + i * bs) * scale
 * for rows r of the cache (K rows for the scores, rows of V^T for the V product) and vectors i of
 * heads (their q, their probabilities) in GQA groups of `group`, every dot in ggml_vec_dot_f32's / ggml_vec_dot_f16's order:
 * four 8-lane accumulators over steps of 32, (a0+a2)+(a1+a3), GGML_F32x8_REDUCE's last steps, the
 * n % 32 tail. Scalar reference: akk_attn_rows_*_scalar (ops.c); KernelTests checks every level.
 *
 * b is f32 for either cache type. For an f16 cache it holds the fp16 values llama.cpp converts q
 * and the probabilities to, as floats (fp16 -> f32 is exact), so only the cache side is converted:
 * the same products, without the 4 of 5 conversions that loading b as fp16 cost.
 *
 * A block of R rows x H vectors keeps R*H dots' accumulators in registers: each cache chunk is
 * loaded (and converted) once for the H vectors, each b chunk once for the R rows; ymm (AVX2) or
 * a dot's accumulators as two zmm halves (AVX-512, half the instructions).
 * A product's two factors commute exactly in fma, so which side is a and which b changes no bit. */
#ifndef AKK_ATTN_DOTS_H
#define AKK_ATTN_DOTS_H
#include "akk_avx2.h"

#define LOAD_F32(p) _mm256_loadu_ps(p)
#define LOAD_F16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define LOAD16_F32(p) _mm512_loadu_ps(p)
#define LOAD16_F16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))

/* The tails past the steps of 32: dot_f32's fma chain; ggml_vec_dot_f16's sum in double of
 * products rounded to float (tail_f16f: x holds the fp16 values as floats). */
AVX2_INLINE float tail_f32(float s, const float *w, const float *x, int64_t np, int64_t n) {
    for (int64_t i = np; i < n; i++) s = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(w[i]), _mm_set_ss(x[i]), _mm_set_ss(s)));
    return s;
}

AVX2_INLINE float tail_f16(float s, const uint16_t *w, const uint16_t *x, int64_t np, int64_t n) {
    double sum = (double)s;
    for (int64_t i = np; i < n; i++) sum += (double)(_cvtsh_ss(w[i]) * _cvtsh_ss(x[i]));
    return (float)sum;
}

AVX2_INLINE float tail_f16f(float s, const uint16_t *w, const float *x, int64_t np, int64_t n) {
    double sum = (double)s;
    for (int64_t i = np; i < n; i++) sum += (double)(_cvtsh_ss(w[i]) * x[i]);
    return (float)sum;
}

/* [reduce_4x8(A), ..., reduce_4x8(D)] (hs = 0) or [hsum8(A), ..., hsum8(D)] (hs = 1): [lo+hi] of
 * two dots per register (t0..t3 = l0+l4, ..., l3+l7), then (t0+t1)+(t2+t3) by two hadds, which
 * pair the lanes exactly as reduce_4x8 (simd_avx2.c) does for one, or (t0+t2)+(t1+t3) by two
 * shuffles and one hadd, as hsum8 does. */
AVX2_INLINE __m128 reduce_4x4x8(__m256 A, __m256 B, __m256 C, __m256 D, int hs) {
    const __m256 ab = _mm256_add_ps(_mm256_permute2f128_ps(A, B, 0x20), _mm256_permute2f128_ps(A, B, 0x31));
    const __m256 cd = _mm256_add_ps(_mm256_permute2f128_ps(C, D, 0x20), _mm256_permute2f128_ps(C, D, 0x31));
    const __m256 h = hs ? _mm256_add_ps(_mm256_shuffle_ps(ab, cd, 0x44), _mm256_shuffle_ps(ab, cd, 0xee)) : _mm256_hadd_ps(ab, cd);
    const __m256 h2 = _mm256_hadd_ps(h, h); /* lane 0: A C A C, lane 1: B D B D */
    return _mm_unpacklo_ps(_mm256_castps256_ps128(h2), _mm256_extractf128_ps(h2, 1));
}

/* s[d] = reduce_4x8(v[d]) (hs = 0) or hsum8(v[d]) (hs = 1) for d < nd, four at a time. */
AVX2_INLINE void reduce_dots(int nd, const __m256 *v, float *s, int hs) {
    for (int d = 0; d < nd; d += 4) {
        float t[4];
        _mm_storeu_ps(t, reduce_4x4x8(v[d], v[d + 1 < nd ? d + 1 : d], v[d + 2 < nd ? d + 2 : d], v[d + 3 < nd ? d + 3 : d], hs));
        for (int k = 0; k < 4 && d + k < nd; k++) s[d + k] = t[k];
    }
}

/* A block function NAME(a, as, b, bs, np, v, pf): v[r * H + h] = (a0+a2)+(a1+a3) of dot (r, h)
 * over np elements (a multiple of 32), a's rows prefetched pf elements ahead. VEC: W lanes per
 * accumulator, 32 / W accumulators per dot (LOAD / LOADB / FMA / ZERO its operations), CP of them
 * per pass over the row; FOLD(acc) gives the dot's (a0+a2)+(a1+a3). */
#define ATTN_BLOCK(NAME, ATTR, T, VEC, W, LOAD, LOADB, FMA, ZERO, FOLD, R, H, CP)                  \
    ATTR void NAME(const T *a, int64_t as, const float *b, int64_t bs, int64_t np, __m256 *v, int64_t pf) { \
        VEC acc[R][H][32 / (W)];                                                                   \
        for (int c0 = 0; c0 < 32 / (W); c0 += (CP)) {                                              \
            for (int r = 0; r < (R); r++)                                                          \
                for (int h = 0; h < (H); h++)                                                      \
                    for (int c = c0; c < c0 + (CP); c++) acc[r][h][c] = ZERO();                    \
            for (int64_t k = 0; k < np; k += 32)                                                   \
                for (int c = c0; c < c0 + (CP); c++) {                                             \
                    if (c0 == 0 && c * (W) * sizeof(T) % 64 == 0) /* each cache line once */       \
                        for (int r = 0; r < (R); r++) _mm_prefetch((const char *)(a + pf + r * as + k + (W) * c), _MM_HINT_T1); \
                    VEC x[R];                                                                      \
                    for (int r = 0; r < (R); r++) x[r] = LOAD(a + r * as + k + (W) * c);           \
                    for (int h = 0; h < (H); h++) {                                                \
                        const VEC y = LOADB(b + h * bs + k + (W) * c);                             \
                        for (int r = 0; r < (R); r++) acc[r][h][c] = FMA(x[r], y, acc[r][h][c]);   \
                    }                                                                              \
                }                                                                                  \
        }                                                                                          \
        for (int r = 0; r < (R); r++)                                                              \
            for (int h = 0; h < (H); h++) v[r * (H) + h] = FOLD(acc[r][h]);                        \
    }

/* ggml's four 8-lane accumulators as they are (ymm), CP = 2: two passes (acc 0-1, then 2-3) halve
 * the registers a block needs; every accumulator still sees its own products in order. */
AVX2_INLINE __m256 fold8(const __m256 *a) {
    return _mm256_add_ps(_mm256_add_ps(a[0], a[2]), _mm256_add_ps(a[1], a[3]));
}
#define ATTN_BLOCK8(NAME, ATTR, T, LOAD, R, H, CP)                                                 \
    ATTN_BLOCK(NAME, ATTR, T, __m256, 8, LOAD, _mm256_loadu_ps, _mm256_fmadd_ps, _mm256_setzero_ps, fold8, R, H, CP)

/* Accumulators 0|1 and 2|3 of a dot as the two halves of one zmm over 16 consecutive elements
 * (the same lanes, the same order): [a0+a2 | a1+a3], then lo + hi. */
#define FOLD16(a)                                                                                  \
    ({                                                                                             \
        const __m512 s_ = _mm512_add_ps((a)[0], (a)[1]);                                           \
        _mm256_add_ps(_mm512_castps512_ps256(s_), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s_), 1))); \
    })
#define ATTN_BLOCK16(NAME, ATTR, T, LOAD16, R, H)                                                  \
    ATTN_BLOCK(NAME, ATTR, T, __m512, 16, LOAD16, _mm512_loadu_ps, _mm512_fmadd_ps, _mm512_setzero_ps, FOLD16, R, H, 2)

/* The block call for hb vectors: any of 1-4 (H = 0) or always H. */
#define ATTN_CALL_0(BLOCK, R, hb, args)                                                            \
    if (hb == 4) BLOCK##R##x4 args;                                                                \
    else if (hb == 3) BLOCK##R##x3 args;                                                           \
    else if (hb == 2) BLOCK##R##x2 args;                                                           \
    else BLOCK##R##x1 args;
#define ATTN_CALL_1(BLOCK, R, hb, args) BLOCK##R##x1 args;
#define ATTN_CALL_2(BLOCK, R, hb, args) BLOCK##R##x2 args;
#define ATTN_CALL_3(BLOCK, R, hb, args) BLOCK##R##x3 args;

/* [reduce_4x8(v[0]), reduce_4x8(v[st]), ..., reduce_4x8(v[7 * st])] in one register: lo + hi
 * of two dots per register, then hadds that pair the lanes exactly as reduce_4x8 does for one. */
AVX2_INLINE __m256 reduce_8x4x8(const __m256 *v, int st) {
    __m256 t[4];
    for (int i = 0; i < 4; i++)
        t[i] = _mm256_add_ps(_mm256_permute2f128_ps(v[i * st], v[(i + 4) * st], 0x20),
                             _mm256_permute2f128_ps(v[i * st], v[(i + 4) * st], 0x31));
    return _mm256_hadd_ps(_mm256_hadd_ps(t[0], t[1]), _mm256_hadd_ps(t[2], t[3]));
}

/* The rows in chunks of 8 (the rest in one block of R rows, else one at a time), each against all
 * m vectors, a group's in blocks of up to 4 (H = 0; else always H) by block functions
 * BLOCK<R>x<H>, BLOCK1x<H>; reduce, tail, scale, store (a chunk's 8 outputs of a vector in one
 * store). Rows outer: a K row's groups are read one after another (the whole row), so the cache
 * streams; `pf` (elements) ahead of each row being read is prefetched, which the hardware
 * prefetchers leave ~2x slower from memory. */
#define ATTN_SWEEP(BLOCK, TAIL, R, H)                                                              \
    for (int64_t r0 = 0; r0 < rows;) {                                                             \
        const int rb = rows - r0 >= 8 ? 8 : rows - r0 >= (R) ? (R) : 1;                            \
        for (int i0 = 0; i0 < m;) {                                                                \
            const int g = i0 / group, hb = (g + 1) * group - i0 < 4 ? (g + 1) * group - i0 : 4;    \
            const float *bi = b + (int64_t)i0 * bs;                                                \
            const A_T *ai = a + g * ag + r0 * as;                                                  \
            __m256 v_[32];                                                                         \
            if (rb == 8) {                                                                         \
                for (int rs = 0; rs < 8; rs += (R)) {                                              \
                    ATTN_CALL_##H(BLOCK, R, hb, (ai + rs * as, as, bi, bs, np, v_ + rs * hb, pf))  \
                }                                                                                  \
                for (int h = 0; h < hb; h++) {                                                     \
                    float *o = out + (i0 + h) * os + r0;                                           \
                    const __m256 d = reduce_8x4x8(v_ + h, hb);                                     \
                    if (np == n) _mm256_storeu_ps(o, _mm256_mul_ps(d, _mm256_set1_ps(scale)));     \
                    else {                                                                         \
                        float s_[8];                                                               \
                        _mm256_storeu_ps(s_, d);                                                   \
                        for (int r = 0; r < 8; r++) o[r] = TAIL(s_[r], ai + r * as, bi + h * bs, np, n) * scale; \
                    }                                                                              \
                }                                                                                  \
            } else {                                                                               \
                float s_[32];                                                                      \
                if (rb == (R)) { ATTN_CALL_##H(BLOCK, R, hb, (ai, as, bi, bs, np, v_, pf)) }       \
                else { ATTN_CALL_##H(BLOCK, 1, hb, (ai, as, bi, bs, np, v_, pf)) }                 \
                reduce_dots(rb * hb, v_, s_, 0);                                                   \
                for (int r = 0; r < rb; r++)                                                       \
                    for (int h = 0; h < hb; h++)                                                   \
                        out[(i0 + h) * os + r0 + r] = TAIL(s_[r * hb + h], ai + r * as, bi + h * bs, np, n) * scale; \
            }                                                                                      \
            i0 += hb;                                                                              \
        }                                                                                          \
        r0 += rb;                                                                                  \
    }

/* How far ahead the rows are prefetched (into L2: into L1 they evict the vectors b, 1.3-1.7x
 * slower): ~16 KB of what is read, 2 to 16 rows. Decode at 1024 positions from memory, 1 thread:
 * 16 KB ran as fast as from cache, 8 or 32 KB up to 1.2x slower, no prefetch ~2x. */
#define ATTN_PF_BYTES 16384

/* The body of an attn_rows kernel for cache elements A_T: R4..R1 rows per block (1, 2, 4 or 8) for
 * GQA groups of >= 4 (vectors in fours, the rest of a group in a three, two or one), 3, 2, 1. */
#define ATTN_ROWS(BLOCK, TAIL, R4, R3, R2, R1)                                                     \
    const int64_t np = n & ~(int64_t)31;                                                           \
    const int64_t row_bytes = ((m - 1) / group + 1) * n * (int64_t)sizeof(A_T); /* read per row */  \
    const int64_t pf = (row_bytes >= ATTN_PF_BYTES / 2 ? 2 : row_bytes <= ATTN_PF_BYTES / 16 ? 16      \
                        : ATTN_PF_BYTES / row_bytes) * as;                                          \
    if (group >= 4) { ATTN_SWEEP(BLOCK, TAIL, R4, 0) }                                             \
    else if (group == 3) { ATTN_SWEEP(BLOCK, TAIL, R3, 3) }                                        \
    else if (group == 2) { ATTN_SWEEP(BLOCK, TAIL, R2, 2) }                                        \
    else { ATTN_SWEEP(BLOCK, TAIL, R1, 1) }

/* ---- prefill products (akk_impl.attn_prefill_*): out[i][r] = dot(n[i], a + r * as, b + i * bs)
 * * scale for vectors i < m (a token's q of one head, or its probabilities) and rows r < rows[i]
 * (K rows, rows of V^T). Each dot in tinyBLAS's order (one 8-lane accumulator over steps of 8,
 * then hsum8's lanes; one_acc) or ggml_vec_dot's (as above). One block keeps R rows x H vectors'
 * accumulators in registers: R*H independent fma chains (a single one-accumulator dot waits on
 * its own chain's latency), each cache chunk loaded and converted once for the H vectors, each b
 * chunk once for the R rows. ---- */

/* The one-accumulator dot has no tail (tinyBLAS reads whole steps of 8 only). */
#define TAIL_NONE(s, w, x, np, n) (s)

/* A prefill block function NAME(a, as, b, bs, np, v): v[r * H + h] = FOLD of dot (r, h)'s A
 * accumulators (W lanes each, one step = A * W elements) over its first np[h] elements (a
 * multiple of a step). The steps all H vectors have run in one loop, each vector's further ones
 * (a later token's longer probability row) after it on the same accumulators, in order. One
 * accumulator of each dot per pass (c), so a block needs R*H registers of them. */
#define PF_BLOCK(NAME, ATTR, T, VEC, W, A, LOAD, LOADB, FMA, ZERO, FOLD, R, H)                     \
    ATTR void NAME(const T *a, int64_t as, const float *b, int64_t bs, const int64_t *np, __m256 *v) { \
        int64_t n0 = np[0];                                                                        \
        for (int h = 1; h < (H); h++) n0 = np[h] < n0 ? np[h] : n0;                                \
        VEC acc[R][H][A];                                                                          \
        for (int c = 0; c < (A); c++) {                                                            \
            for (int r = 0; r < (R); r++)                                                          \
                for (int h = 0; h < (H); h++) acc[r][h][c] = ZERO();                               \
            for (int64_t k = (W) * c; k < n0; k += (A) * (W)) {                                    \
                VEC x[R];                                                                          \
                for (int r = 0; r < (R); r++) x[r] = LOAD(a + r * as + k);                         \
                for (int h = 0; h < (H); h++) {                                                    \
                    const VEC y = LOADB(b + h * bs + k);                                           \
                    for (int r = 0; r < (R); r++) acc[r][h][c] = FMA(x[r], y, acc[r][h][c]);       \
                }                                                                                  \
            }                                                                                      \
            for (int h = 0; h < (H); h++)                                                          \
                for (int64_t k = n0 + (W) * c; k < np[h]; k += (A) * (W)) {                        \
                    const VEC y = LOADB(b + h * bs + k);                                           \
                    for (int r = 0; r < (R); r++) acc[r][h][c] = FMA(LOAD(a + r * as + k), y, acc[r][h][c]); \
                }                                                                                  \
        }                                                                                          \
        for (int r = 0; r < (R); r++)                                                              \
            for (int h = 0; h < (H); h++) v[r * (H) + h] = FOLD(acc[r][h]);                        \
    }
#define FOLD1(a) ((a)[0])
/* The blocks R x 1..4 and 1 x 1..4 of one order (P: name prefix). */
#define PF_BLOCKS(P, ATTR, T, VEC, W, A, LOAD, LOADB, FMA, ZERO, FOLD, R)                          \
    PF_BLOCK(P##R##x4, ATTR, T, VEC, W, A, LOAD, LOADB, FMA, ZERO, FOLD, R, 4)                     \
    PF_BLOCK(P##R##x3, ATTR, T, VEC, W, A, LOAD, LOADB, FMA, ZERO, FOLD, R, 3)                     \
    PF_BLOCK(P##R##x2, ATTR, T, VEC, W, A, LOAD, LOADB, FMA, ZERO, FOLD, R, 2)                     \
    PF_BLOCK(P##R##x1, ATTR, T, VEC, W, A, LOAD, LOADB, FMA, ZERO, FOLD, R, 1)                     \
    PF_BLOCK(P##1x4, ATTR, T, VEC, W, A, LOAD, LOADB, FMA, ZERO, FOLD, 1, 4)                       \
    PF_BLOCK(P##1x3, ATTR, T, VEC, W, A, LOAD, LOADB, FMA, ZERO, FOLD, 1, 3)                       \
    PF_BLOCK(P##1x2, ATTR, T, VEC, W, A, LOAD, LOADB, FMA, ZERO, FOLD, 1, 2)                       \
    PF_BLOCK(P##1x1, ATTR, T, VEC, W, A, LOAD, LOADB, FMA, ZERO, FOLD, 1, 1)

/* [hsum8(v[0]), hsum8(v[st]), ..., hsum8(v[7 * st])] in one register, as reduce_4x4x8 for each. */
AVX2_INLINE __m256 hsum_8x8(const __m256 *v, int st) {
    __m256 t[4];
    for (int i = 0; i < 4; i++)
        t[i] = _mm256_add_ps(_mm256_permute2f128_ps(v[i * st], v[(i + 4) * st], 0x20),
                             _mm256_permute2f128_ps(v[i * st], v[(i + 4) * st], 0x31));
    const __m256 w01 = _mm256_add_ps(_mm256_shuffle_ps(t[0], t[1], 0x44), _mm256_shuffle_ps(t[0], t[1], 0xee));
    const __m256 w23 = _mm256_add_ps(_mm256_shuffle_ps(t[2], t[3], 0x44), _mm256_shuffle_ps(t[2], t[3], 0xee));
    return _mm256_hadd_ps(w01, w23);
}

/* The vectors in blocks of up to 4; for each, its rows in chunks of 8 (blocks of R rows; the rest
 * in blocks of R, then one at a time) up to the block's longest; reduce (RED8: a chunk's 8 dots
 * of a vector into one register; else reduce_dots, hsum8's lanes when HS), the tail past the
 * steps (STEP elements; TAIL), scale, and store the outputs each vector asks for (a chunk's 8 in
 * one store). */
#define PF_SWEEP(BLOCK, R, STEP, RED8, HS, TAIL)                                                  \
    for (int i0 = 0; i0 < m; i0 += 4) {                                                            \
        const int hb = m - i0 < 4 ? m - i0 : 4;                                                    \
        int rmax = 0;                                                                              \
        int64_t np[4];                                                                             \
        for (int h = 0; h < hb; h++) {                                                             \
            rmax = rows[i0 + h] > rmax ? rows[i0 + h] : rmax;                                      \
            np[h] = n[i0 + h] / (STEP) * (STEP);                                                   \
        }                                                                                          \
        const float *bi = b + (int64_t)i0 * bs;                                                    \
        for (int r0 = 0; r0 < rmax;) {                                                             \
            const int rb = rmax - r0 >= 8 ? 8 : rmax - r0 >= (R) ? (R) : 1;                        \
            const A_T *ar = a + r0 * as;                                                           \
            __m256 v_[32];                                                                         \
            if (rb == 8) {                                                                         \
                for (int rs = 0; rs < 8; rs += (R)) {                                              \
                    ATTN_CALL_0(BLOCK, R, hb, (ar + rs * as, as, bi, bs, np, v_ + rs * hb))        \
                }                                                                                  \
                for (int h = 0; h < hb; h++) {                                                     \
                    float *o = out[i0 + h] + r0;                                                   \
                    const __m256 d = RED8(v_ + h, hb);                                             \
                    if (np[h] == n[i0 + h] && r0 + 8 <= rows[i0 + h])                              \
                        _mm256_storeu_ps(o, _mm256_mul_ps(d, _mm256_set1_ps(scale)));              \
                    else {                                                                         \
                        float s_[8];                                                               \
                        _mm256_storeu_ps(s_, d);                                                   \
                        for (int r = 0; r < 8 && r0 + r < rows[i0 + h]; r++)                       \
                            o[r] = TAIL(s_[r], ar + r * as, bi + h * bs, np[h], n[i0 + h]) * scale; \
                    }                                                                              \
                }                                                                                  \
            } else {                                                                               \
                float s_[4 * (R)];                                                                 \
                if (rb == (R)) { ATTN_CALL_0(BLOCK, R, hb, (ar, as, bi, bs, np, v_)) }             \
                else { ATTN_CALL_0(BLOCK, 1, hb, (ar, as, bi, bs, np, v_)) }                       \
                reduce_dots(rb * hb, v_, s_, HS);                                                  \
                for (int r = 0; r < rb; r++)                                                       \
                    for (int h = 0; h < hb; h++)                                                   \
                        if (r0 + r < rows[i0 + h])                                                 \
                            out[i0 + h][r0 + r] = TAIL(s_[r * hb + h], ar + r * as, bi + h * bs, np[h], n[i0 + h]) * scale; \
            }                                                                                      \
            r0 += rb;                                                                              \
        }                                                                                          \
    }

/* The body of an attn_prefill kernel for cache elements A_T: one-accumulator blocks B1 of R1 rows,
 * ggml_vec_dot blocks B4 of R4 rows (S4 elements per step). */
#define ATTN_PREFILL(B1, R1, B4, R4, TAIL4)                                                        \
    if (one_acc) { PF_SWEEP(B1, R1, 8, hsum_8x8, 1, TAIL_NONE) }                                  \
    else { PF_SWEEP(B4, R4, 32, reduce_8x4x8, 0, TAIL4) }

#endif

/*
 * AVX-512 VNNI GEMM tiles in llama.cpp's tiled order (akk_vec_dot_kq_tiled_scalar, kquant_dot.c)
 * for Q2_K, Q3_K, Q5_K, Q6_K and IQ4_XS: the rows_*_tl entries of the avx512 set, which
 * dispatch.c takes for products of >= AKK_TILED_MIN_ROWS activation rows. Per super-block only
 * the exact int32 totals S = sum of scale x quant x activation (and M = sum of min x bsum) enter
 * the float steps (res = d_w*S, res = fma(-dmin_w, M, res), acc = fma(res, d_x, acc)), so any
 * exact way of forming them gives the scalar reference's bits. Here:
 *   - weights are unpacked to unsigned bytes (Q6_K q+32, Q3_K q+4; Q2_K, Q5_K as they are), once
 *     per group of 4 rows and 64-token chunk;
 *   - products with the signed Q8_K activations by vpdpbusd, 64 per instruction, in a lane order
 *     where each int32 lane gathers one 16-element span (below); the offsets come back out by
 *     starting each lane at -offset x the span's bsum, the scales by one vpmulld per block;
 *   - a tile is R rows x T tokens (R*T <= 16): the R*T lane vectors are reduced together (a
 *     transposed add tree) to one vector of 16 block totals, and the float steps run on those 16
 *     lanes at once (vector mul and fma = the scalar ones lane by lane).
 * IQ4_XS (no mins, one scale per 32 elements) takes row groups instead: 16 rows in the 16 lanes,
 * no lane reduction (at the end of this file).
 * Measurements: docs/BENCHMARKS.md ("Tiled-order GEMM at the avx512 level").
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#define TL_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define TL_FN static __attribute__((target(TL_TARGET)))
#define TL_INLINE static inline __attribute__((always_inline, target(TL_TARGET)))

TL_INLINE float half(const uint8_t *p) { return _cvtsh_ss(akk_load_u16(p)); }

/* Lane p of the result = sum of the 16 int32 lanes of v[p] (v[p] for p >= n taken as zero). */
TL_INLINE __m512i reduce16(const int n, const __m512i *v) {
    __m512i a[16], b[8], c[4], d[2];
    for (int p = 0; p < 16; p++) a[p] = p < n ? v[p] : _mm512_setzero_si512();
    for (int p = 0; p < 8; p++) /* per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3] */
        b[p] = _mm512_add_epi32(_mm512_unpacklo_epi32(a[2 * p], a[2 * p + 1]), _mm512_unpackhi_epi32(a[2 * p], a[2 * p + 1]));
    for (int p = 0; p < 4; p++) /* per 128-bit lane: partial totals of v[4p..4p+3] */
        c[p] = _mm512_add_epi32(_mm512_unpacklo_epi64(b[2 * p], b[2 * p + 1]), _mm512_unpackhi_epi64(b[2 * p], b[2 * p + 1]));
    for (int p = 0; p < 2; p++)
        d[p] = _mm512_add_epi32(_mm512_shuffle_i32x4(c[2 * p], c[2 * p + 1], 0x88), _mm512_shuffle_i32x4(c[2 * p], c[2 * p + 1], 0xdd));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(d[0], d[1], 0x88), _mm512_shuffle_i32x4(d[0], d[1], 0xdd));
}

/* Q6_K elements 64c..64c+63 of block wb as unsigned bytes q+32 (kquants.c's layout: low nibbles
 * of ql[64h..64h+63], shifted by 4 for the second pair of 32-element groups of a half h = c/2;
 * two high bits of qh[32h..32h+31] at bits 2s, s = 2(c%2) for the first 32, 2(c%2)+1 after). */
TL_INLINE __m512i q6_chunk(const uint8_t *wb, int c) {
    const int h = c / 2, s = 2 * (c % 2);
    __m512i lo = _mm512_loadu_si512((const void *)(wb + 64 * h));
    if (c % 2) lo = _mm512_srli_epi16(lo, 4);
    const __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(wb + 128 + 32 * h)));
    /* bits 2s (first 32 bytes) or 2s+2 (last 32) down to bits 0..1, then up to 4..5 */
    const __m512i cnt = _mm512_mask_blend_epi64(0xf0, _mm512_set1_epi16((short)(2 * s)), _mm512_set1_epi16((short)(2 * s + 2)));
    const __m512i hi = _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(hb, cnt), _mm512_set1_epi8(3)), 4);
    return _mm512_or_si512(_mm512_and_si512(lo, _mm512_set1_epi8(0x0f)), hi);
}

/* Bytes 64c..64c+63 of 2-bit fields: the 32 bytes at p shifted right by s (first 32 elements) and
 * s+2 (last 32), masked to 2 bits. Q2_K and Q3_K's low bits. */
TL_INLINE __m512i two_bits(const uint8_t *p, int s) {
    const __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p));
    const __m512i cnt = _mm512_mask_blend_epi64(0xf0, _mm512_set1_epi16((short)s), _mm512_set1_epi16((short)(s + 2)));
    return _mm512_and_si512(_mm512_srlv_epi16(v, cnt), _mm512_set1_epi8(3));
}

/* Bit j (first 32 elements) and j+1 (last 32) of the 32 bytes at p, at bit position `to`. */
TL_INLINE __m512i one_bit(const uint8_t *p, int j, int to) {
    const __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p));
    const __m512i cnt = _mm512_mask_blend_epi64(0xf0, _mm512_set1_epi16((short)j), _mm512_set1_epi16((short)(j + 1)));
    return _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(v, cnt), _mm512_set1_epi8(1)), to);
}

/* Q5_K elements 64c..64c+63: low nibbles of qs[32c..32c+31], then their high nibbles, with bit 2c
 * (2c+1) of qh[0..31] as bit 4. */
TL_INLINE __m512i q5_chunk(const uint8_t *wb, int c) {
    const __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(wb + 48 + 32 * c)));
    const __m512i lo = _mm512_and_si512(_mm512_mask_blend_epi64(0xf0, v, _mm512_srli_epi16(v, 4)), _mm512_set1_epi8(0x0f));
    return _mm512_or_si512(lo, one_bit(wb + 16, 2 * c, 4));
}

/*
 * Both operands are stored "transposed": chunk c, dword lane l holds dword 4l + c of the block's
 * 256 bytes, i.e. elements 16l + 4c .. 16l + 4c + 3. So lane l of every chunk belongs to the 16
 * elements 16l..16l+15: sub-block l of Q2_K, Q3_K, Q6_K (16 elements), half of sub-block l/2 of
 * Q5_K (32), the span of the activations' bsum l. The four vpdpbusd of a block then
 * accumulate into one register whose lane l is that span's integer sum, and one vpmulld by the
 * lane's scale finishes the block. The weights are transposed once when unpacked, the activations
 * once per token chunk.
 */
TL_INLINE void transpose64(const __m512i in[4], __m512i out[4]) {
    /* a: lanes [in0 4j+c, in1 4j+c (j < 4)] for c = 0 then 1 (b: 2, 3); then the halves of c */
    const __m512i i0 = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
    const __m512i i1 = _mm512_add_epi32(i0, _mm512_set1_epi32(2));
    const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
    const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
    const __m512i a01 = _mm512_permutex2var_epi32(in[0], i0, in[1]), b01 = _mm512_permutex2var_epi32(in[0], i1, in[1]);
    const __m512i a23 = _mm512_permutex2var_epi32(in[2], i0, in[3]), b23 = _mm512_permutex2var_epi32(in[2], i1, in[3]);
    out[0] = _mm512_permutex2var_epi32(a01, lo, a23);
    out[1] = _mm512_permutex2var_epi32(a01, hi, a23);
    out[2] = _mm512_permutex2var_epi32(b01, lo, b23);
    out[3] = _mm512_permutex2var_epi32(b01, hi, b23);
}

/* One row's super-block for the tiles: the transposed unsigned quants, each lane's scale and min
 * (Q2_K, Q5_K), d_w and dmin_w. */
struct tl_pack {
    __m512i q[4], sc, m;
    float d, dmin;
};

/* A token's super-block: the transposed activation quants, per lane l -off*bsum_l (off = the
 * weight type's unsigned offset) where that lane's sum starts, and bsum_l (for the mins). */
struct tl_act {
    __m512i q[4], off, bs;
};

TL_INLINE int tl_offset(int type) {
    return type == AKK_Q6_K ? 32 : type == AKK_Q3_K ? 4 : 0;
}
TL_INLINE int tl_block_bytes(int type) {
    return type == AKK_Q2_K ? 84 : type == AKK_Q3_K ? 110 : type == AKK_Q5_K ? 176 : 210;
}

/* Block wb of `type` into *pk (layouts as tiled_block in kquant_dot.c). */
TL_INLINE void tl_unpack(const int type, const uint8_t *wb, struct tl_pack *pk) {
    const __m512i pairs = _mm512_srli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 1);
    __m512i q[4];
    pk->m = _mm512_setzero_si512();
    pk->dmin = 0.0f;
    switch (type) {
    case AKK_Q2_K: {
        for (int c = 0; c < 4; c++) q[c] = two_bits(wb + 16 + 32 * (c / 2), 4 * (c % 2));
        const __m512i sm = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)wb));
        pk->sc = _mm512_and_si512(sm, _mm512_set1_epi32(15));
        pk->m = _mm512_srli_epi32(sm, 4);
        pk->d = half(wb + 80);
        pk->dmin = half(wb + 82);
        break;
    }
    case AKK_Q3_K: { /* q + 4 = low 2 bits | hmask bit << 2 */
        int s16[16];
        for (int c = 0; c < 4; c++) q[c] = _mm512_or_si512(two_bits(wb + 32 + 32 * (c / 2), 4 * (c % 2)), one_bit(wb, 2 * c, 2));
        akk_q3_k_scales(wb + 96, s16);
        pk->sc = _mm512_loadu_si512((const void *)s16);
        pk->d = half(wb + 108);
        break;
    }
    case AKK_Q5_K: {
        int s8[8], m8[8];
        for (int c = 0; c < 4; c++) q[c] = q5_chunk(wb, c);
        akk_k4_scales_mins(wb + 4, s8, m8);
        pk->sc = _mm512_permutexvar_epi32(pairs, _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)s8)));
        pk->m = _mm512_permutexvar_epi32(pairs, _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)m8)));
        pk->d = half(wb);
        pk->dmin = half(wb + 2);
        break;
    }
    default: /* Q6_K */
        for (int c = 0; c < 4; c++) q[c] = q6_chunk(wb, c);
        pk->sc = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(wb + 192)));
        pk->d = half(wb + 208);
    }
    transpose64(q, pk->q);
}

TL_INLINE void tl_act_prepare(const int type, const uint8_t *xb, struct tl_act *a) {
    __m512i q[4];
    for (int c = 0; c < 4; c++) q[c] = _mm512_loadu_si512((const void *)(xb + 4 + 64 * c));
    transpose64(q, a->q);
    a->bs = _mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)(xb + 260)));
    a->off = _mm512_mullo_epi32(a->bs, _mm512_set1_epi32(-tl_offset(type)));
}

/*
 * R unpacked rows x T prepared tokens over nb super-blocks: pk[b*R + r] is block b of row r,
 * act[t*nb + b] block b of token t, x the raw activations (for d_x); R*T <= 16; output of row r,
 * token t at y[t*ys + r]. Lane p = r*T + t of the 16-lane float accumulator belongs to (r, t).
 * MIN: the types with mins.
 */
TL_INLINE void tile_tl(const int MIN, const int R, const int T, const struct tl_pack *pk, const struct tl_act *act,
                       int64_t nb, const uint8_t *x, int64_t xs, float *y, int64_t ys) {
    const int n = R * T;
    int ridx[16], tidx[16];
    for (int p = 0; p < 16; p++) { ridx[p] = p < n ? p / T : 0; tidx[p] = p < n ? p % T : 0; }
    const __m512i vr = _mm512_loadu_si512((const void *)ridx), vt = _mm512_loadu_si512((const void *)tidx);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++, pk += R) {
        __m512i S[16];
        float dw[16], dm[16], dx[16];
        for (int r = 0; r < R; r++) { dw[r] = pk[r].d; dm[r] = -pk[r].dmin; }
        for (int t = 0; t < T; t++) {
            memcpy(&dx[t], x + t * xs + b * 292, 4);
            for (int r = 0; r < R; r++) S[r * T + t] = act[t * nb + b].off;
        }
        for (int c = 0; c < 4; c++)
            for (int t = 0; t < T; t++) {
                const __m512i xq = act[t * nb + b].q[c];
                for (int r = 0; r < R; r++) S[r * T + t] = _mm512_dpbusd_epi32(S[r * T + t], pk[r].q[c], xq);
            }
        for (int r = 0; r < R; r++)
            for (int t = 0; t < T; t++) S[r * T + t] = _mm512_mullo_epi32(S[r * T + t], pk[r].sc);
        const __m512 tot = _mm512_cvtepi32_ps(reduce16(n, S));
        const __m512 vdw = _mm512_permutexvar_ps(vr, _mm512_loadu_ps(dw));
        const __m512 vdx = _mm512_permutexvar_ps(vt, _mm512_loadu_ps(dx));
        __m512 res = _mm512_mul_ps(vdw, tot);
        if (MIN) {
            for (int r = 0; r < R; r++)
                for (int t = 0; t < T; t++) S[r * T + t] = _mm512_mullo_epi32(act[t * nb + b].bs, pk[r].m);
            res = _mm512_fmadd_ps(_mm512_permutexvar_ps(vr, _mm512_loadu_ps(dm)), _mm512_cvtepi32_ps(reduce16(n, S)), res);
        }
        acc = _mm512_fmadd_ps(res, vdx, acc);
    }
    float out[16];
    _mm512_storeu_ps(out, acc);
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) y[t * ys + r] = out[r * T + t];
}

/* Tiles of TL_TR rows x TL_TT tokens, and the edges: fewer rows, tokens halved. */
#define TL_TR 4
#define TL_TT 4
#define TL_T(MIN, R)                                                                               \
    switch (T) {                                                                                   \
    case 4: tile_tl(MIN, R, 4, pk, act, nb, x, xs, y, ys); break;                                  \
    case 2: tile_tl(MIN, R, 2, pk, act, nb, x, xs, y, ys); break;                                  \
    default: tile_tl(MIN, R, 1, pk, act, nb, x, xs, y, ys); break;                                 \
    }
#define TL_ANY(name, MIN)                                                                          \
    TL_FN void name(int R, int T, const struct tl_pack *pk, const struct tl_act *act, int64_t nb,  \
                    const uint8_t *x, int64_t xs, float *y, int64_t ys) {                          \
        switch (R) {                                                                               \
        case 4: TL_T(MIN, 4) break;                                                                \
        case 3: TL_T(MIN, 3) break;                                                                \
        case 2: TL_T(MIN, 2) break;                                                                \
        default: TL_T(MIN, 1) break;                                                               \
        }                                                                                          \
    }
TL_ANY(tile_plain, 0)
TL_ANY(tile_min, 1)

/* Rows W[r*wrow], r < R, all nb blocks into pk; T tokens X[t*xs] into act (R or T 0: only the other). */
#define TL_PREP(name, type)                                                                        \
    TL_FN void name(int R, const uint8_t *W, int64_t wrow, int64_t T, const uint8_t *X, int64_t xs, \
                    int64_t nb, struct tl_pack *pk, struct tl_act *act) {                          \
        for (int64_t b = 0; b < nb; b++)                                                           \
            for (int r = 0; r < R; r++) tl_unpack(type, W + r * wrow + b * tl_block_bytes(type), &pk[b * R + r]); \
        for (int64_t t = 0; t < T; t++)                                                            \
            for (int64_t b = 0; b < nb; b++) tl_act_prepare(type, X + t * xs + b * 292, &act[t * nb + b]); \
    }
TL_PREP(prep_q2_k, AKK_Q2_K)
TL_PREP(prep_q3_k, AKK_Q3_K)
TL_PREP(prep_q5_k, AKK_Q5_K)
TL_PREP(prep_q6_k, AKK_Q6_K)
typedef void (*tl_prep_fn)(int R, const uint8_t *W, int64_t wrow, int64_t T, const uint8_t *X, int64_t xs,
                           int64_t nb, struct tl_pack *pk, struct tl_act *act);

/* Token chunks of TL_TOK_CHUNK: their prepared activations stay in L2 while the row groups pass
 * over them; each group of TL_TR rows is unpacked once per chunk (into a buffer of TL_TR x nb
 * blocks) for all its tokens. Both buffers are the thread's scratch (kept between calls: no heap
 * allocation per product); without memory, the AVX2 tiled-order kernel (the same bits). */
#define TL_TOK_CHUNK 64
static void rows_tl(int type, tl_prep_fn prep, akk_rows_fn avx2, const uint8_t *W, int64_t wrow, int64_t r0,
                    int64_t r1, int64_t n_in, const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    const int64_t nb = n_in / 256, chunk = n_tok < TL_TOK_CHUNK ? n_tok : TL_TOK_CHUNK;
    const size_t pk_bytes = (size_t)(TL_TR * nb) * sizeof(struct tl_pack);
    uint8_t *scratch = akk_thread_scratch(pk_bytes + (size_t)(chunk * nb) * sizeof(struct tl_act));
    if (!scratch) {
        avx2(W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
        return;
    }
    struct tl_pack *pk = (struct tl_pack *)(void *)scratch;
    struct tl_act *act = (struct tl_act *)(void *)(scratch + pk_bytes);
    const int min = type == AKK_Q2_K || type == AKK_Q5_K;
    for (int64_t c0 = 0; c0 < n_tok; c0 += chunk) {
        const int64_t c1 = c0 + chunk < n_tok ? c0 + chunk : n_tok;
        prep(0, W, wrow, c1 - c0, X + c0 * xs, xs, nb, pk, act);
        for (int64_t r = r0; r < r1; r += TL_TR) {
            const int R = r1 - r < TL_TR ? (int)(r1 - r) : TL_TR;
            prep(R, W + r * wrow, wrow, 0, X, xs, nb, pk, act);
            for (int64_t t = c0; t < c1;) {
                int T = TL_TT;
                while (T > c1 - t) T /= 2;
                (min ? tile_min : tile_plain)(R, T, pk, act + (t - c0) * nb, nb, X + t * xs, xs, Y + t * ys + r, ys);
                t += T;
            }
        }
    }
}

/* Row kernels (akk_rows_fn, akk_internal.h). */
#define TL_ROWS(name, type, prep, avx2)                                                            \
    void name(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X, \
              int64_t xs, int64_t n_tok, float *Y, int64_t ys) {                                   \
        rows_tl(type, prep, avx2, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);                     \
    }
TL_ROWS(akk_rows_q2_k_tl_avx512, AKK_Q2_K, prep_q2_k, akk_rows_q2_k_tl_avx2)
TL_ROWS(akk_rows_q3_k_tl_avx512, AKK_Q3_K, prep_q3_k, akk_rows_q3_k_tl_avx2)
TL_ROWS(akk_rows_q5_k_tl_avx512, AKK_Q5_K, prep_q5_k, akk_rows_q5_k_tl_avx2)
TL_ROWS(akk_rows_q6_k_tl_avx512, AKK_Q6_K, prep_q6_k, akk_rows_q6_k_tl_avx2)

/*
 * IQ4_XS in the tiled order with 16 weight rows in the 16 int32 lanes (row groups) instead of one
 * row's 16 spans: then no lane reduction is needed (reduce16 above) and one vpmulld scales a
 * sub-block of 16 rows, so a (row, token, block) costs 4 vpdpbusd + 1/2 vpmulld + 1/2 add where
 * the per-row tiles spent 4 + 1 + ~3. The activations enter by 4-byte broadcasts.
 * Unpacked per group of 16 rows and token chunk (xg_prep): sub-block j, dword k: lane r = the 4
 * grid values + 128 of row r at elements 32j+4k..32j+4k+3 (k < 4: low nibbles of qs bytes
 * 16j+4k.., k >= 4: high nibbles of 16j+4(k-4)..), the 16 rows' scales of sub-block j, their d.
 * Per sub-block each lane starts at -128 x the token's sum of the 32 activations (bsums), so
 * after 8 vpdpbusd it holds the exact sum of grid value x activation; times the scale, added up
 * over the sub-blocks: S of llama.cpp's tiled order, and the float steps as above, lane = row.
 */
#define XG_ROWS 16
#define XG_TT 8
struct xg_block {
    __m512i q[8][8], sc[8];
    __m512 d;
};

/* Block b of rows W[r*wrow], r < n (n <= 16; the missing lanes repeat row n-1) into *out. */
TL_INLINE void xg_prep(const uint8_t *W, int64_t wrow, int n, int64_t b, struct xg_block *out) {
    const uint8_t *rp[XG_ROWS];
    uint64_t hdr[XG_ROWS];
    for (int r = 0; r < XG_ROWS; r++) {
        rp[r] = W + (r < n ? r : n - 1) * wrow + b * 136;
        memcpy(&hdr[r], rp[r], 8);
    }
    const __m512i h0 = _mm512_loadu_si512((const void *)hdr), h1 = _mm512_loadu_si512((const void *)(hdr + 8));
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i dh = _mm512_permutex2var_epi32(h0, even, h1);                                   /* d | scales_h << 16 */
    const __m512i sl = _mm512_permutex2var_epi32(h0, _mm512_add_epi32(even, _mm512_set1_epi32(1)), h1); /* scales_l */
    out->d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dh));
    const __m512i table = _mm512_broadcast_i32x4(_mm_xor_si128(_mm_loadu_si128((const __m128i *)akk_kvalues_iq4nl), _mm_set1_epi8((char)0x80)));
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int j = 0; j < 8; j++) {
        const __m512i l = _mm512_and_si512(_mm512_srli_epi32(sl, 4 * j), _mm512_set1_epi32(15));
        const __m512i h = _mm512_and_si512(_mm512_srli_epi32(dh, 16 + 2 * j), _mm512_set1_epi32(3));
        out->sc[j] = _mm512_sub_epi32(_mm512_or_si512(l, _mm512_slli_epi32(h, 4)), _mm512_set1_epi32(32));
        __m512i z[4], v[4]; /* z[g] lane 4i+k: row 4g+i's dword k of sub-block j; v[k] lane r: row r's */
        for (int g = 0; g < 4; g++) {
            z[g] = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(rp[4 * g] + 8 + 16 * j)));
            z[g] = _mm512_inserti32x4(z[g], _mm_loadu_si128((const __m128i *)(rp[4 * g + 1] + 8 + 16 * j)), 1);
            z[g] = _mm512_inserti32x4(z[g], _mm_loadu_si128((const __m128i *)(rp[4 * g + 2] + 8 + 16 * j)), 2);
            z[g] = _mm512_inserti32x4(z[g], _mm_loadu_si128((const __m128i *)(rp[4 * g + 3] + 8 + 16 * j)), 3);
        }
        transpose64(z, v);
        for (int k = 0; k < 4; k++) {
            out->q[j][k] = _mm512_shuffle_epi8(table, _mm512_and_si512(v[k], m4));
            out->q[j][k + 4] = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(v[k], 4), m4));
        }
    }
}

/* One group (pk: its nb blocks) x T tokens; off[t*nb*8 + b*8 + j]: -128 x token t's sum of the
 * activations of sub-block j of block b. Output of the group's row r, token t at y[t*ys + r]. */
TL_INLINE void xg_tile(const int T, const struct xg_block *pk, int64_t nb, const uint8_t *x, int64_t xs,
                       const int32_t *off, float *y, int64_t ys, __mmask16 mask) {
    __m512 acc[XG_TT];
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const struct xg_block *p = pk + b;
        __m512i S[XG_TT];
        for (int t = 0; t < T; t++) S[t] = _mm512_setzero_si512();
        for (int j = 0; j < 8; j++) {
            __m512i a[XG_TT];
            for (int t = 0; t < T; t++) a[t] = _mm512_set1_epi32(off[t * nb * 8 + b * 8 + j]);
            for (int k = 0; k < 8; k++) {
                const __m512i w = _mm512_load_si512((const void *)&p->q[j][k]);
                for (int t = 0; t < T; t++) {
                    int32_t xv;
                    memcpy(&xv, x + t * xs + b * 292 + 4 + 32 * j + 4 * k, 4);
                    a[t] = _mm512_dpbusd_epi32(a[t], w, _mm512_set1_epi32(xv));
                }
            }
            for (int t = 0; t < T; t++) S[t] = _mm512_add_epi32(S[t], _mm512_mullo_epi32(a[t], p->sc[j]));
        }
        for (int t = 0; t < T; t++) {
            float xd;
            memcpy(&xd, x + t * xs + b * 292, 4);
            acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(p->d, _mm512_cvtepi32_ps(S[t])), _mm512_set1_ps(xd), acc[t]);
        }
    }
    for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(y + t * ys, mask, acc[t]);
}

#define XG_CASE(t) case t: xg_tile(t, pk, nb, x, xs, off, y, ys, mask); break;
TL_FN void xg_tile_any(int T, const struct xg_block *pk, int64_t nb, const uint8_t *x, int64_t xs, const int32_t *off,
                       float *y, int64_t ys, __mmask16 mask) {
    switch (T) {
    XG_CASE(1) XG_CASE(2) XG_CASE(3) XG_CASE(4) XG_CASE(5) XG_CASE(6) XG_CASE(7)
    default: xg_tile(XG_TT, pk, nb, x, xs, off, y, ys, mask); break;
    }
}

TL_FN void xg_prep_rows(const uint8_t *W, int64_t wrow, int n, int64_t nb, struct xg_block *pk) {
    for (int64_t b = 0; b < nb; b++) xg_prep(W, wrow, n, b, &pk[b]);
}

/* off[((t - c0) * nb + b) * 8 + j]: -128 x token t's sum of the activations of sub-block j of block
 * b (two bsums), for the tokens [c0, c1). */
static void xg_offsets(const uint8_t *X, int64_t xs, int64_t nb, int64_t c0, int64_t c1, int32_t *off) {
    for (int64_t t = c0; t < c1; t++)
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *bs = X + t * xs + b * 292 + 260;
            for (int j = 0; j < 8; j++) {
                int16_t s0, s1;
                memcpy(&s0, bs + 4 * j, 2);
                memcpy(&s1, bs + 4 * j + 2, 2);
                off[((t - c0) * nb + b) * 8 + j] = -128 * ((int32_t)s0 + s1);
            }
        }
}

/* Token chunks of TL_TOK_CHUNK; per chunk each group of 16 rows is unpacked once (thread scratch,
 * as rows_tl) and passes over the chunk's tokens in tiles of XG_TT. */
void akk_rows_iq4_xs_tl_avx512(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                               const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    const int64_t nb = n_in / 256, chunk = n_tok < TL_TOK_CHUNK ? n_tok : TL_TOK_CHUNK;
    const size_t pk_bytes = (size_t)nb * sizeof(struct xg_block);
    uint8_t *scratch = akk_thread_scratch(pk_bytes + (size_t)(chunk * nb * 8) * sizeof(int32_t));
    if (!scratch) {
        akk_rows_iq4_xs_tl_avx2(W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
        return;
    }
    struct xg_block *pk = (struct xg_block *)(void *)scratch;
    int32_t *off = (int32_t *)(void *)(scratch + pk_bytes);
    for (int64_t c0 = 0; c0 < n_tok; c0 += chunk) {
        const int64_t c1 = c0 + chunk < n_tok ? c0 + chunk : n_tok;
        xg_offsets(X, xs, nb, c0, c1, off);
        for (int64_t r = r0; r < r1; r += XG_ROWS) {
            const int n = r1 - r < XG_ROWS ? (int)(r1 - r) : XG_ROWS;
            xg_prep_rows(W + r * wrow, wrow, n, nb, pk);
            for (int64_t t = c0; t < c1; t += XG_TT) {
                const int T = c1 - t < XG_TT ? (int)(c1 - t) : XG_TT;
                xg_tile_any(T, pk, nb, X + t * xs, xs, off + (t - c0) * nb * 8, Y + t * ys + r, ys,
                            (__mmask16)((1u << n) - 1));
            }
        }
    }
}

/* ---- AKK_IQ4_XS_R16 (repack_iq4xs.c) in the tiled order: the same integers and float steps as
 * xg_tile, read from the repacked group: its chunk (j, k) already holds dword k of sub-block j of
 * the 16 rows in the 16 lanes, so the tile looks the grid values up as it goes (one load and two
 * lookups per 4 elements of 16 rows; no gathers from 16 rows, no transposes, nothing stored);
 * only the lane-ordered scales and d of the group are unpacked once per token chunk. With
 * AVX-512 VBMI the lookups are one vpermb each (the 16-entry table repeats in the 64 bytes, so
 * the index needs no mask); without it vpshufb after a mask. ---- */

#define XRV_TARGET TL_TARGET ",avx512vbmi"
#define XRV_FN static __attribute__((target(XRV_TARGET)))
#define XRV_INLINE static inline __attribute__((always_inline, target(XRV_TARGET)))

struct xr_scales {
    __m512i sc[8];
    __m512 d;
};

TL_FN void xr_scales_group(const uint8_t *grp, int64_t nb, struct xr_scales *ps) {
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = grp + b * 16 * 136;
        ps[b].d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
        for (int j = 0; j < 8; j++) {
            const __m512i l = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(blk + 32 + 16 * (j / 2))));
            const __m512i h = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(blk + 96 + 16 * (j / 4))));
            ps[b].sc[j] = _mm512_sub_epi32(_mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(l, 4 * (j % 2)), _mm512_set1_epi32(15)),
                                                           _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(h, 2 * (j % 4)), _mm512_set1_epi32(3)), 4)),
                                           _mm512_set1_epi32(32));
        }
    }
}

/* Grid values + 128 of the low (*w0) and high (*w1) nibbles of the 64 bytes v. */
TL_INLINE void xr_lookup(__m512i v, __m512i table, __m512i *w0, __m512i *w1) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    *w0 = _mm512_shuffle_epi8(table, _mm512_and_si512(v, m4));
    *w1 = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(v, 4), m4));
}
XRV_INLINE void xr_lookup_vbmi(__m512i v, __m512i table, __m512i *w0, __m512i *w1) {
    *w0 = _mm512_permutexvar_epi8(v, table);
    *w1 = _mm512_permutexvar_epi8(_mm512_srli_epi16(v, 4), table);
}

/* One group (grp; ps: its scales) x T tokens, as xg_tile. */
#define XR_TILE(NAME, INLINE, LOOKUP)                                                              \
    INLINE void NAME(const int T, const uint8_t *grp, const struct xr_scales *ps, int64_t nb, const uint8_t *x, \
                     int64_t xs, const int32_t *off, float *y, int64_t ys, __mmask16 mask) {        \
        const __m512i table = _mm512_broadcast_i32x4(_mm_xor_si128(_mm_loadu_si128((const __m128i *)akk_kvalues_iq4nl), _mm_set1_epi8((char)0x80))); \
        __m512 acc[XG_TT];                                                                         \
        for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();                                  \
        for (int64_t b = 0; b < nb; b++) {                                                         \
            const uint8_t *blk = grp + b * 16 * 136;                                               \
            __m512i S[XG_TT];                                                                      \
            for (int t = 0; t < T; t++) S[t] = _mm512_setzero_si512();                             \
            for (int j = 0; j < 8; j++) {                                                          \
                __m512i a[XG_TT];                                                                  \
                for (int t = 0; t < T; t++) a[t] = _mm512_set1_epi32(off[t * nb * 8 + b * 8 + j]); \
                for (int k = 0; k < 4; k++) {                                                      \
                    __m512i w0, w1;                                                                \
                    LOOKUP(_mm512_loadu_si512((const void *)(blk + 128 + 256 * j + 64 * k)), table, &w0, &w1); \
                    for (int t = 0; t < T; t++) {                                                  \
                        int32_t x0, x1;                                                            \
                        memcpy(&x0, x + t * xs + b * 292 + 4 + 32 * j + 4 * k, 4);                 \
                        memcpy(&x1, x + t * xs + b * 292 + 20 + 32 * j + 4 * k, 4);                \
                        a[t] = _mm512_dpbusd_epi32(a[t], w0, _mm512_set1_epi32(x0));               \
                        a[t] = _mm512_dpbusd_epi32(a[t], w1, _mm512_set1_epi32(x1));               \
                    }                                                                              \
                }                                                                                  \
                for (int t = 0; t < T; t++) S[t] = _mm512_add_epi32(S[t], _mm512_mullo_epi32(a[t], ps[b].sc[j])); \
            }                                                                                      \
            for (int t = 0; t < T; t++) {                                                          \
                float xd;                                                                          \
                memcpy(&xd, x + t * xs + b * 292, 4);                                              \
                acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(ps[b].d, _mm512_cvtepi32_ps(S[t])), _mm512_set1_ps(xd), acc[t]); \
            }                                                                                      \
        }                                                                                          \
        for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(y + t * ys, mask, acc[t]);               \
    }
XR_TILE(xr_tile, TL_INLINE, xr_lookup)
XR_TILE(xr_tile_vbmi, XRV_INLINE, xr_lookup_vbmi)

#define XR_CASE(TILE, t) case t: TILE(t, grp, ps, nb, x, xs, off, y, ys, mask); break;
#define XR_ANY(ANY, TILE, FN)                                                                      \
    FN void ANY(int T, const uint8_t *grp, const struct xr_scales *ps, int64_t nb, const uint8_t *x, int64_t xs, \
                const int32_t *off, float *y, int64_t ys, __mmask16 mask) {                        \
        switch (T) {                                                                               \
        XR_CASE(TILE, 1) XR_CASE(TILE, 2) XR_CASE(TILE, 3) XR_CASE(TILE, 4)                        \
        XR_CASE(TILE, 5) XR_CASE(TILE, 6) XR_CASE(TILE, 7)                                         \
        default: TILE(XG_TT, grp, ps, nb, x, xs, off, y, ys, mask); break;                          \
        }                                                                                          \
    }
XR_ANY(xr_tile_any, xr_tile, TL_FN)
XR_ANY(xr_tile_any_vbmi, xr_tile_vbmi, XRV_FN)

/* As akk_rows_iq4_xs_tl_avx512, per group of 16 rows of the range (multiples of 8: a half group
 * is computed whole and stored in part). */
void akk_rows_iq4_xs_r16_tl_avx512(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                                   const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    const int64_t nb = n_in / 256, chunk = n_tok < TL_TOK_CHUNK ? n_tok : TL_TOK_CHUNK;
    const size_t ps_bytes = (size_t)nb * sizeof(struct xr_scales);
    uint8_t *scratch = akk_thread_scratch(ps_bytes + (size_t)(chunk * nb * 8) * sizeof(int32_t));
    if (!scratch) {
        akk_rows_iq4_xs_r16_tl_avx2(W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
        return;
    }
    const int vbmi = akk_iq4_xs_vbmi_in_force();
    struct xr_scales *ps = (struct xr_scales *)(void *)scratch;
    int32_t *off = (int32_t *)(void *)(scratch + ps_bytes);
    for (int64_t c0 = 0; c0 < n_tok; c0 += chunk) {
        const int64_t c1 = c0 + chunk < n_tok ? c0 + chunk : n_tok;
        xg_offsets(X, xs, nb, c0, c1, off);
        for (int64_t g0 = r0 / 16 * 16; g0 < r1; g0 += 16) {
            const int lo = r0 > g0 ? (int)(r0 - g0) : 0, hi = r1 < g0 + 16 ? (int)(r1 - g0) : 16;
            const __mmask16 mask = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
            xr_scales_group(W + g0 * wrow, nb, ps);
            for (int64_t t = c0; t < c1; t += XG_TT) {
                const int T = c1 - t < XG_TT ? (int)(c1 - t) : XG_TT;
                if (vbmi) xr_tile_any_vbmi(T, W + g0 * wrow, ps, nb, X + t * xs, xs, off + (t - c0) * nb * 8, Y + t * ys + g0, ys, mask);
                else xr_tile_any(T, W + g0 * wrow, ps, nb, X + t * xs, xs, off + (t - c0) * nb * 8, Y + t * ys + g0, ys, mask);
            }
        }
    }
}

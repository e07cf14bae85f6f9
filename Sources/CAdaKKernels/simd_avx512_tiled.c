/*
 * AVX-512 VNNI GEMM tiles in llama.cpp's tiled order (akk_vec_dot_kq_tiled_scalar, kquant_dot.c),
 * taken by products of >= AKK_TILED_MIN_ROWS activation rows; fewer rows keep the AVX2 set's
 * kernels. Per super-block only the exact int32 total S = sum of scale x quant x activation enters
 * the float steps (res = d_w*S, acc = fma(res, d_x, acc)), so any exact way of forming S gives the
 * scalar reference's bits. Here:
 *   - a tile is R rows x T tokens (R*T <= 16); each row's block is unpacked once for its T tokens
 *     into unsigned bytes (Q6_K: q+32; IQ4_XS: grid value+128 by a vpshufb table), multiplied by
 *     the signed Q8_K activations with vpdpbusd, 64 elements per instruction;
 *   - the offsets come back out through the activations' bsums: Q6_K S -= 32*sum(sc_j*bsum_j),
 *     IQ4_XS S -= 128*sum(sc_ib*(bsum_2ib + bsum_2ib+1)), one vpdpwssd per (row, token, block);
 *   - the sub-block scales: Q6_K lane sums (4 x 63 x 128 < 2^15) fit int16, so vpdpwssd with the
 *     scale in the low word; IQ4_XS lane sums do not, so vpmulld;
 *   - the R*T lane vectors are reduced together (a transposed add tree) to one vector of 16 block
 *     totals, and the float steps run on those 16 lanes at once (vector fma = fmaf lane by lane).
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

/* The 16-byte vector [s0 x4, s1 x4, s2 x4, s3 x4] of the 4 bytes at p, as dwords whose low word is
 * the signed byte and high word 0 (the scale operand of vpdpwssd against int16-sized lanes). */
TL_INLINE __m512i scale_words4(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    const __m128i rep = _mm_shuffle_epi8(_mm_cvtsi32_si128((int)v), _mm_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3));
    return _mm512_cvtepu16_epi32(_mm256_cvtepi8_epi16(rep));
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

/* IQ4_XS elements 64c..64c+63 (sub-blocks 2c, 2c+1: low nibbles of their 16 bytes, then high) as
 * the grid values + 128, unsigned. */
TL_INLINE __m512i xs_chunk(const uint8_t *wb, int c, __m512i table) {
    const __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(wb + 8 + 32 * c)));
    const __m512i rep = _mm512_shuffle_i64x2(v, v, 0x50); /* 128-bit lanes [A, A, B, B] */
    const __m512i n = _mm512_and_si512(_mm512_srlv_epi16(rep, _mm512_setr_epi64(0, 0, 0x0004000400040004ll, 0x0004000400040004ll,
                                                                                 0, 0, 0x0004000400040004ll, 0x0004000400040004ll)),
                                       _mm512_set1_epi8(0x0f));
    return _mm512_shuffle_epi8(table, n);
}

/* The 8 IQ4_XS sub-block scales of block wb as int32 (akk_iq4_xs_scale: low 4 bits from bytes
 * 4..7, high 2 from the 16-bit word at 2, minus 32). */
TL_INLINE __m256i xs_scales8(const uint8_t *wb) {
    uint32_t lo;
    memcpy(&lo, wb + 4, 4);
    const __m256i l = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)lo), _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28)), _mm256_set1_epi32(15));
    const __m256i h = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(akk_load_u16(wb + 2)), _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)), _mm256_set1_epi32(3));
    return _mm256_sub_epi32(_mm256_or_si256(l, _mm256_slli_epi32(h, 4)), _mm256_set1_epi32(32));
}

/* One row's super-block, unpacked for the tiles: the 4 chunks of 64 unsigned quants, their scales
 * as the dword operand of vpdpwssd (Q6_K) or vpmulld (IQ4_XS), the offset correction's words
 * (against the 16 bsums) and d_w. */
struct tl_pack {
    __m512i q[4], sc[4];
    __m256i k;
    float d;
};

/* Q6_K (XS = 0) or IQ4_XS (XS = 1) block wb into *pk. */
TL_INLINE void tl_unpack(const int XS, const uint8_t *wb, struct tl_pack *pk) {
    if (XS) {
        const __m512i table = _mm512_broadcast_i32x4(_mm_xor_si128(_mm_loadu_si128((const __m128i *)akk_kvalues_iq4nl), _mm_set1_epi8((char)0x80)));
        const __m256i s8 = xs_scales8(wb);
        const __m512i half16 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
        for (int c = 0; c < 4; c++) {
            pk->q[c] = xs_chunk(wb, c, table);
            pk->sc[c] = _mm512_permutexvar_epi32(_mm512_add_epi32(_mm512_set1_epi32(2 * c), half16), _mm512_zextsi256_si512(s8));
        }
        /* words 2j, 2j+1: -128*sc_j */
        const __m256i v = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(s8, 7));
        pk->k = _mm256_or_si256(_mm256_and_si256(v, _mm256_set1_epi32(0xffff)), _mm256_slli_epi32(v, 16));
        pk->d = half(wb);
    } else {
        for (int c = 0; c < 4; c++) {
            pk->q[c] = q6_chunk(wb, c);
            pk->sc[c] = scale_words4(wb + 192 + 4 * c);
        }
        /* word j: -32*sc_j */
        pk->k = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wb + 192))), 5));
        pk->d = half(wb + 208);
    }
}

/*
 * R unpacked rows x T tokens (xs bytes apart) over nb super-blocks, pk[b*R + r] the block b of row
 * r; R*T <= 16; output of row r, token t at y[t*ys + r]. Lane p = r*T + t of the 16-lane float
 * accumulator belongs to (r, t).
 */
TL_INLINE void tile_tl(const int XS, const int R, const int T, const struct tl_pack *pk, int64_t nb,
                       const uint8_t *x, int64_t xs, float *y, int64_t ys) {
    const int n = R * T;
    int ridx[16], tidx[16];
    for (int p = 0; p < 16; p++) { ridx[p] = p < n ? p / T : 0; tidx[p] = p < n ? p % T : 0; }
    const __m512i vr = _mm512_loadu_si512((const void *)ridx), vt = _mm512_loadu_si512((const void *)tidx);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++, pk += R) {
        __m512i S[16];
        float dw[16], dx[16];
        for (int r = 0; r < R; r++) {
            dw[r] = pk[r].d;
            for (int t = 0; t < T; t++) { /* the offset: -32*sum(sc_j*bsum_j), -128*sum(sc_ib*(bsum_2ib + bsum_2ib+1)) */
                const __m512i bs = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)(x + t * xs + b * 292 + 260)));
                S[r * T + t] = _mm512_dpwssd_epi32(_mm512_setzero_si512(), bs, _mm512_zextsi256_si512(pk[r].k));
            }
        }
        for (int t = 0; t < T; t++) memcpy(&dx[t], x + t * xs + b * 292, 4);
        for (int c = 0; c < 4; c++)
            for (int t = 0; t < T; t++) {
                const __m512i xq = _mm512_loadu_si512((const void *)(x + t * xs + b * 292 + 4 + 64 * c));
                for (int r = 0; r < R; r++) {
                    const __m512i l = _mm512_dpbusd_epi32(_mm512_setzero_si512(), pk[r].q[c], xq);
                    S[r * T + t] = XS ? _mm512_add_epi32(S[r * T + t], _mm512_mullo_epi32(l, pk[r].sc[c]))
                                      : _mm512_dpwssd_epi32(S[r * T + t], l, pk[r].sc[c]);
                }
            }
        const __m512 tot = _mm512_cvtepi32_ps(reduce16(n, S));
        const __m512 vdw = _mm512_permutexvar_ps(vr, _mm512_loadu_ps(dw));
        const __m512 vdx = _mm512_permutexvar_ps(vt, _mm512_loadu_ps(dx));
        acc = _mm512_fmadd_ps(_mm512_mul_ps(vdw, tot), vdx, acc);
    }
    float out[16];
    _mm512_storeu_ps(out, acc);
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) y[t * ys + r] = out[r * T + t];
}

/* Tiles of TL_TR rows x TL_TT tokens, and the edges: fewer rows, tokens halved. */
#ifndef TL_TR
#define TL_TR 4
#define TL_TT 4
#endif
#define TL_T(XS, R)                                                                                \
    switch (T) {                                                                                   \
    case 4: tile_tl(XS, R, 4, pk, nb, x, xs, y, ys); break;                                        \
    case 2: tile_tl(XS, R, 2, pk, nb, x, xs, y, ys); break;                                        \
    default: tile_tl(XS, R, 1, pk, nb, x, xs, y, ys); break;                                       \
    }
#define TL_SWITCH(XS)                                                                              \
    switch (R) {                                                                                   \
    case 4: TL_T(XS, 4) break;                                                                     \
    case 3: TL_T(XS, 3) break;                                                                     \
    case 2: TL_T(XS, 2) break;                                                                     \
    default: TL_T(XS, 1) break;                                                                    \
    }
TL_FN void tile_q6_k_tl(int R, int T, const struct tl_pack *pk, int64_t nb, const uint8_t *x, int64_t xs, float *y,
                        int64_t ys) { TL_SWITCH(0) }
TL_FN void tile_iq4_xs_tl(int R, int T, const struct tl_pack *pk, int64_t nb, const uint8_t *x, int64_t xs, float *y,
                          int64_t ys) { TL_SWITCH(1) }
TL_FN void unpack_rows(const int XS, int R, const uint8_t *W, int64_t wrow, int64_t nb, struct tl_pack *pk) {
    for (int64_t b = 0; b < nb; b++)
        for (int r = 0; r < R; r++) {
            if (XS) tl_unpack(1, W + r * wrow + b * 136, &pk[b * R + r]);
            else tl_unpack(0, W + r * wrow + b * 210, &pk[b * R + r]);
        }
}

/* The activations of TL_TOK_CHUNK tokens stay in L2 while the row groups pass over them; each
 * group of TL_TR rows is unpacked once per chunk (into a buffer of TL_TR x nb blocks) for all its
 * tokens. NULL from the allocation: the AVX2 kernel instead (same bits). */
#define TL_TOK_CHUNK 64
static void rows_tl(const int XS, const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                    const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    const int64_t nb = n_in / 256;
    struct tl_pack *pk = aligned_alloc(64, (size_t)(TL_TR * nb) * sizeof(struct tl_pack));
    if (!pk) {
        (XS ? akk_rows_iq4_xs_avx2 : akk_rows_q6_k_avx2)(W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
        return;
    }
    for (int64_t c0 = 0; c0 < n_tok; c0 += TL_TOK_CHUNK) {
        const int64_t c1 = c0 + TL_TOK_CHUNK < n_tok ? c0 + TL_TOK_CHUNK : n_tok;
        for (int64_t r = r0; r < r1; r += TL_TR) {
            const int R = r1 - r < TL_TR ? (int)(r1 - r) : TL_TR;
            unpack_rows(XS, R, W + r * wrow, wrow, nb, pk);
            for (int64_t t = c0; t < c1;) {
                int T = TL_TT;
                while (T > c1 - t) T /= 2;
                (XS ? tile_iq4_xs_tl : tile_q6_k_tl)(R, T, pk, nb, X + t * xs, xs, Y + t * ys + r, ys);
                t += T;
            }
        }
    }
    free(pk);
}

/* Row kernels (akk_rows_fn): the tiles above from AKK_TILED_MIN_ROWS rows, else the AVX2 set's. */
void akk_rows_q6_k_avx512(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X,
                          int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    if (n_tok < AKK_TILED_MIN_ROWS) akk_rows_q6_k_avx2(W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
    else rows_tl(0, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}
void akk_rows_iq4_xs_avx512(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X,
                            int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    if (n_tok < AKK_TILED_MIN_ROWS) akk_rows_iq4_xs_avx2(W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
    else rows_tl(1, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}

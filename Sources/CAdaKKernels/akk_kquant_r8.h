/*
 * The AKK_Q4_K_R8 matmul (layout and numerics: repack_q4_k.c), included by simd_avx2_kquant.c
 * and simd_avx512_kquant.c. Each includer defines first:
 *   KR8_FN, KR8_INLINE   the function attributes (its target features)
 *   kr8_scale(p)         the 8 rows' scales of one sub-block (8 bytes at p) as kr8_sub takes them
 *   kr8_sub(acc, w, x, sc)  acc + sc * (sub-block dot) per row: w[j] = the 8 rows' 4 quants
 *                        (bytes 0..15) of group j of the sub-block, x its 32 activations
 *   kr8_pairs(acc, mp, bp)  acc + per 32-bit lane (mp.lo*bp.lo + mp.hi*bp.hi) (int16 halves)
 *   KR8_TT               the prefill token tile (1..4)
 * The integer S and M are exact either way, and the float steps are the same here, so every
 * includer gives the scalar reference's bits.
 */
#ifndef AKK_KQUANT_R8_H
#define AKK_KQUANT_R8_H

#define KR8_BLOCK 1152

/* The 64 scales (byte 8c+i) and 64 mins (byte 16k+2i+j: m[2k+j] of row i) of a packed block. */
KR8_INLINE void kr8_unpack_scales(const uint8_t *blk, uint8_t sc[64], uint8_t mn[64]) {
    const __m256i a0 = _mm256_loadu_si256((const __m256i *)(blk + 32));
    const __m256i a1 = _mm256_loadu_si256((const __m256i *)(blk + 64));
    const __m256i h = _mm256_loadu_si256((const __m256i *)(blk + 96));
    const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
    const __m256i lo0 = _mm256_and_si256(a0, m4), lo1 = _mm256_and_si256(a1, m4);
    const __m256i hi0 = _mm256_and_si256(_mm256_srli_epi16(a0, 4), m4), hi1 = _mm256_and_si256(_mm256_srli_epi16(a1, 4), m4);
    _mm256_storeu_si256((__m256i *)sc, _mm256_or_si256(lo0, _mm256_and_si256(_mm256_slli_epi16(h, 4), m30)));
    _mm256_storeu_si256((__m256i *)(sc + 32), _mm256_or_si256(lo1, _mm256_and_si256(h, m30)));
    _mm256_storeu_si256((__m256i *)mn, _mm256_or_si256(hi0, _mm256_and_si256(_mm256_slli_epi16(h, 2), m30)));
    _mm256_storeu_si256((__m256i *)(mn + 32), _mm256_or_si256(hi1, _mm256_and_si256(_mm256_srli_epi16(h, 2), m30)));
}

/*
 * G groups of 8 rows (ga, gb; G = 2 for decode: two weight streams in flight) x T tokens over nb
 * super-blocks. xd[t*scs + b]: the activation scale, bp[(t*scs + b)*4 + k]: its B pairs
 * (akk_q8_K_bpairs). Output: group a's 8 rows of token t at ya + t*ystride, group b's at yb + ...
 * PAIRS = 0: one fma per super-block (llama.cpp's gemv); 1: one per pair of sub-blocks (its
 * gemm, AKK_Q4_K_R8_DENSE).
 */
#ifndef KR8_STREAM_PF
#define KR8_STREAM_PF 0 /* 1: the decode tile (G = 2) prefetches its weight streams (akk_stream_pf) */
#endif
KR8_INLINE void kr8_tile(const int G, const int T, const int PAIRS, const uint8_t *ga, const uint8_t *gb, int64_t nb,
                         const uint8_t *x, int64_t xstride, const float *xd, const int32_t *bp, int64_t scs,
                         float *ya, float *yb, int64_t ystride) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 acc[2][4], accm[2][4];
    for (int k = 0; k < G; k++)
        for (int t = 0; t < T; t++) acc[k][t] = accm[k][t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        for (int k = 0; k < G; k++) {
            const uint8_t *blk = (k ? gb : ga) + b * KR8_BLOCK;
            if (KR8_STREAM_PF && G == 2) akk_stream_pf(blk, KR8_BLOCK);
            uint8_t sc[64] __attribute__((aligned(32))), mn[64] __attribute__((aligned(32)));
            kr8_unpack_scales(blk, sc, mn);
            const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk));
            const __m256 dm = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + 16)));
            __m256 dd[4], ddm[4];
            for (int t = 0; t < T; t++) {
                const __m256 dx = _mm256_set1_ps(xd[t * scs + b]);
                dd[t] = _mm256_mul_ps(d, dx);
                ddm[t] = _mm256_mul_ps(dm, dx);
            }
            __m256i S[4], M[4];
            for (int t = 0; t < T; t++) S[t] = M[t] = _mm256_setzero_si256();
            for (int p = 0; p < 4; p++) {
                const __m256i mp = _mm256_cvtepu8_epi16(_mm_load_si128((const __m128i *)(mn + 16 * p)));
                for (int t = 0; t < T; t++) M[t] = kr8_pairs(M[t], mp, _mm256_set1_epi32(bp[(t * scs + b) * 4 + p]));
                for (int c = 2 * p; c < 2 * p + 2; c++) {
                    __m256i w[8];
                    for (int j = 0; j < 8; j++) {
                        const __m256i v = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * (8 * p + j)));
                        w[j] = _mm256_and_si256(c % 2 ? _mm256_srli_epi16(v, 4) : v, m4);
                    }
                    const __m256i s = kr8_scale(sc + 8 * c);
                    for (int t = 0; t < T; t++)
                        S[t] = kr8_sub(S[t], w, (const int8_t *)(x + t * xstride + b * 292 + 4 + 32 * c), s);
                }
                if (PAIRS)
                    for (int t = 0; t < T; t++) {
                        acc[k][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(S[t]), dd[t], acc[k][t]);
                        accm[k][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(M[t]), ddm[t], accm[k][t]);
                        S[t] = M[t] = _mm256_setzero_si256();
                    }
            }
            if (!PAIRS)
                for (int t = 0; t < T; t++) {
                    acc[k][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(S[t]), dd[t], acc[k][t]);
                    accm[k][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(M[t]), ddm[t], accm[k][t]);
                }
        }
    }
    for (int k = 0; k < G; k++)
        for (int t = 0; t < T; t++) _mm256_storeu_ps((k ? yb : ya) + t * ystride, _mm256_sub_ps(acc[k][t], accm[k][t]));
}

/* One group x T in 1..4 tokens (the token tails of akk_rows_r8's chunks). */
KR8_INLINE void kr8_tile_t(int T, const int PAIRS, const uint8_t *grp, int64_t nb, const uint8_t *x, int64_t xstride,
                           const float *xd, const int32_t *bp, int64_t scs, float *y, int64_t ystride) {
    switch (T) {
    case 1: kr8_tile(1, 1, PAIRS, grp, grp, nb, x, xstride, xd, bp, scs, y, y, ystride); break;
    case 2: kr8_tile(1, 2, PAIRS, grp, grp, nb, x, xstride, xd, bp, scs, y, y, ystride); break;
    case 3: kr8_tile(1, 3, PAIRS, grp, grp, nb, x, xstride, xd, bp, scs, y, y, ystride); break;
    default: kr8_tile(1, 4, PAIRS, grp, grp, nb, x, xstride, xd, bp, scs, y, y, ystride); break;
    }
}

KR8_FN void kr8_tile_any(int T, const uint8_t *grp, int64_t nb, const uint8_t *x, int64_t xstride,
                         const float *xd, const int32_t *bp, int64_t scs, float *y, int64_t ystride) {
    kr8_tile_t(T, 0, grp, nb, x, xstride, xd, bp, scs, y, ystride);
}

/* The gemm order's tile (its token counts are multiples of 4: akk_q4_k_r8_dense_gemm_rows). */
KR8_FN void kr8_tile_pairs(int T, const uint8_t *grp, int64_t nb, const uint8_t *x, int64_t xstride,
                           const float *xd, const int32_t *bp, int64_t scs, float *y, int64_t ystride) {
    kr8_tile_t(T, 1, grp, nb, x, xstride, xd, bp, scs, y, ystride);
}

KR8_FN void kr8_decode2(const uint8_t *ga, const uint8_t *gb, int64_t nb, const uint8_t *x,
                        const float *xd, const int32_t *bp, float *ya, float *yb) {
    kr8_tile(2, 1, 0, ga, gb, nb, x, 0, xd, bp, nb, ya, yb, 0);
}

/* Block scale (float) and B pairs of one token's Q8_K activations. */
KR8_FN void kr8_prepare(const uint8_t *x, int64_t nb, float *xd, int32_t *bp) {
    for (int64_t b = 0; b < nb; b++) {
        xd[b] = akk_load_f32(x + b * 292);
        akk_q8_K_bpairs(x + b * 292, bp + 4 * b);
    }
}

/* Rows [r0, r1) (multiples of 8) x all tokens (akk_rows_r8): token tiles of KR8_TT per group. */
static void rows_q4_k_r8(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                         const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    static const struct akk_r8_kernel k = {AKK_QK_K, 4, KR8_TT, kr8_prepare, kr8_tile_any, kr8_decode2,
                                           akk_rows_q4_k_r8_scalar};
    akk_rows_r8(&k, W, wrow, r0, r1, n_in, X, xstride, n_tok, Y, ystride);
}

/* AKK_Q4_K_R8_DENSE: the first akk_q4_k_r8_dense_gemm_rows(n_tok) tokens in the gemm order, the
 * rest as AKK_Q4_K_R8 (repack_q4_k.c). akk_rows_r8 takes its decode path for 1 token only, so
 * decode2 is not reached from the gemm part. */
static void rows_q4_k_r8_dense(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                               const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    static const struct akk_r8_kernel k = {AKK_QK_K, 4, KR8_TT, kr8_prepare, kr8_tile_pairs, kr8_decode2,
                                           akk_rows_q4_k_r8_dense_scalar};
    const int64_t n4 = akk_q4_k_r8_dense_gemm_rows(n_tok);
    if (n4 > 0) akk_rows_r8(&k, W, wrow, r0, r1, n_in, X, xstride, n4, Y, ystride);
    if (n_tok > n4) rows_q4_k_r8(W, wrow, r0, r1, n_in, X + n4 * xstride, xstride, n_tok - n4, Y + n4 * ystride, ystride);
}

#endif

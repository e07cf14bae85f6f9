/*
 * The AKK_IQ4_NL_R8 / AKK_MXFP4_R8 matmuls (layout and numerics: repack_iq4mx.c), included by
 * simd_avx2_iq4mx_r8.c and simd_avx512_iq4mx_r8.c. Each includer defines first:
 *   IR8_FN, IR8_INLINE     the function attributes (its target features)
 *   IR8_BIAS(MX)           a bias added to the grid values (0..128) so that ir8_isum can take
 *                          them as unsigned bytes; the prepared activations carry -bias * (sum of
 *                          the block's quants), which takes it out again
 *   ir8_isum(MX, w, q, acc)  acc + per row (32-bit lane i = row i) the products of a block:
 *                          w[2m] = grid values (+ bias) of elements 4m..4m+3 of the 8 rows,
 *                          w[2m+1] those of 16+4m..16+4m+3, q the token's 32 quants
 *   IR8_TT                 the prefill token tile (1..8)
 *   IR8_LEVEL              the suffix of the row kernels it defines: akk_rows_{iq4_nl,mxfp4}_r8_<IR8_LEVEL>
 * The integer sums are exact either way and the float steps are the same here, so every includer
 * gives the scalar reference's bits.
 */
#ifndef AKK_IQ4MX_R8_H
#define AKK_IQ4MX_R8_H

#define IR8_SB(MX) ((MX) ? 1 : 2)            /* scale bytes per row */
#define IR8_BLOCK(MX) (8 * (IR8_SB(MX) + 16)) /* bytes of one block of the 8 rows */

/* The 16-entry grid (+ bias) in both 128-bit halves. */
IR8_INLINE __m256i ir8_table(const int MX) {
    const __m128i kv = _mm_loadu_si128((const __m128i *)(MX ? akk_kvalues_mxfp4 : akk_kvalues_iq4nl));
    return _mm256_broadcastsi128_si256(_mm_add_epi8(kv, _mm_set1_epi8((char)IR8_BIAS(MX))));
}

/* The grid values of a packed block's 4 chunks (q: the first): w[2m] low nibbles of chunk m,
 * w[2m+1] its high nibbles. */
IR8_INLINE void ir8_unpack(const uint8_t *q, __m256i table, __m256i w[8]) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    for (int m = 0; m < 4; m++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(q + 32 * m));
        w[2 * m] = _mm256_shuffle_epi8(table, _mm256_and_si256(v, m4));
        w[2 * m + 1] = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
    }
}

/* The 8 rows' scales of a block as floats: fp16 d, or e8m0 as akk_e8m0_to_fp32_half. */
IR8_INLINE __m256 ir8_scales(const int MX, const uint8_t *blk) {
    if (!MX) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk));
    const __m256i e = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)blk));
    const __m256i normal = _mm256_slli_epi32(_mm256_sub_epi32(e, _mm256_set1_epi32(1)), 23);
    const __m256i sub = _mm256_sllv_epi32(_mm256_set1_epi32(0x00200000), e); /* e = 0, 1 */
    return _mm256_castsi256_ps(_mm256_blendv_epi8(normal, sub, _mm256_cmpgt_epi32(_mm256_set1_epi32(2), e)));
}

/*
 * G groups of 8 rows (ga, gb; G = 2 for decode: two weight streams in flight) x T tokens over nb
 * blocks. xd[t*scs + b]: the activation scale, xc[t*scs + b]: -bias * (sum of its quants).
 * Output: group a's 8 rows of token t at ya + t*ystride, group b's at yb + t*ystride.
 */
#ifndef IR8_STREAM_PF
#define IR8_STREAM_PF 0 /* 1: the decode tile (G = 2) prefetches its weight streams (akk_stream_pf) */
#endif
IR8_INLINE void ir8_tile(const int MX, const int G, const int T, const uint8_t *ga, const uint8_t *gb, int64_t nb,
                         const uint8_t *x, int64_t xstride, const float *xd, const int32_t *xc, int64_t scs,
                         float *ya, float *yb, int64_t ystride) {
    const __m256i table = ir8_table(MX);
    __m256 acc[2][IR8_TT];
    for (int k = 0; k < G; k++)
        for (int t = 0; t < T; t++) acc[k][t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++)
        for (int k = 0; k < G; k++) {
            const uint8_t *blk = (k ? gb : ga) + b * IR8_BLOCK(MX);
            if (IR8_STREAM_PF && G == 2) akk_stream_pf(blk, IR8_BLOCK(MX));
            __m256i w[8];
            ir8_unpack(blk + 8 * IR8_SB(MX), table, w);
            const __m256 ws = ir8_scales(MX, blk);
            for (int t = 0; t < T; t++) {
                const __m256i s = ir8_isum(MX, w, (const int8_t *)(x + t * xstride + b * 34 + 2),
                                           _mm256_set1_epi32(xc[t * scs + b]));
                const __m256 d = _mm256_mul_ps(ws, _mm256_set1_ps(xd[t * scs + b]));
                acc[k][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), d, acc[k][t]);
            }
        }
    for (int k = 0; k < G; k++)
        for (int t = 0; t < T; t++) _mm256_storeu_ps((k ? yb : ya) + t * ystride, acc[k][t]);
}

/* Block scale (float) and -bias * (sum of the 32 quants) of each Q8_0 block of one token. */
IR8_INLINE void ir8_prepare(const int MX, const uint8_t *x, int64_t nb, float *xd, int32_t *xc) {
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    (void)MX; /* unused where the bias is the same for both types */
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *xb = x + b * 34;
        xd[b] = akk_fp16_lut[akk_load_u16(xb)];
        xc[b] = IR8_BIAS(MX) ? -IR8_BIAS(MX) * hsum8_epi32(_mm256_madd_epi16(
                                   _mm256_maddubs_epi16(ones8, _mm256_loadu_si256((const __m256i *)(xb + 2))), ones16))
                             : 0;
    }
}

#define IR8_CAT_(a, b) a##b
#define IR8_CAT(a, b) IR8_CAT_(a, b)

/* The akk_r8_kernel entries of one type (MX 0: IQ4_NL_R8, 1: MXFP4_R8) and its row kernel. */
#define IR8_TYPE(MX, suffix, scalar_ref)                                                           \
    IR8_FN void ir8_prepare_##suffix(const uint8_t *x, int64_t nb, float *xd, int32_t *xc) {       \
        ir8_prepare(MX, x, nb, xd, xc);                                                            \
    }                                                                                              \
    IR8_FN void ir8_tile_##suffix(int T, const uint8_t *grp, int64_t nb, const uint8_t *x, int64_t xstride, \
                                  const float *xd, const int32_t *xc, int64_t scs, float *y, int64_t ystride) { \
        switch (T) {                                                                               \
        IR8_TILE_CASES(MX)                                                                         \
        default: ir8_tile(MX, 1, IR8_TT, grp, grp, nb, x, xstride, xd, xc, scs, y, y, ystride); break; \
        }                                                                                          \
    }                                                                                              \
    IR8_FN void ir8_decode2_##suffix(const uint8_t *ga, const uint8_t *gb, int64_t nb, const uint8_t *x, \
                                     const float *xd, const int32_t *xc, float *ya, float *yb) {   \
        ir8_tile(MX, 2, 1, ga, gb, nb, x, 0, xd, xc, nb, ya, yb, 0);                               \
    }                                                                                              \
    void IR8_CAT(akk_rows_##suffix##_r8_, IR8_LEVEL)(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, \
                                   const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) { \
        static const struct akk_r8_kernel k = {32, 1, IR8_TT, ir8_prepare_##suffix, ir8_tile_##suffix, \
                                               ir8_decode2_##suffix, scalar_ref};                 \
        akk_rows_r8(&k, W, wrow, r0, r1, n_in, X, xstride, n_tok, Y, ystride);                     \
    }

/* Token tails 1..IR8_TT-1 (compile-time shapes). */
#define IR8_CASE(MX, t)                                                                            \
    case t: ir8_tile(MX, 1, t < IR8_TT ? t : IR8_TT, grp, grp, nb, x, xstride, xd, xc, scs, y, y, ystride); break;
#define IR8_TILE_CASES(MX)                                                                         \
    IR8_CASE(MX, 1) IR8_CASE(MX, 2) IR8_CASE(MX, 3) IR8_CASE(MX, 4) IR8_CASE(MX, 5) IR8_CASE(MX, 6) IR8_CASE(MX, 7)

IR8_TYPE(0, iq4_nl, akk_rows_iq4_nl_r8_scalar)
IR8_TYPE(1, mxfp4, akk_rows_mxfp4_r8_scalar)

#endif

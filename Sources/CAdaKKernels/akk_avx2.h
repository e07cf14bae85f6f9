/* Shared by the AVX2 kernel sources: per-function target attributes (no -march flags, so the
 * library stays portable; dispatch.c selects these kernels at run time) and the horizontal sums. */
#ifndef AKK_AVX2_H
#define AKK_AVX2_H
#include <immintrin.h>

#define AVX2_FN static __attribute__((target("avx2,fma,f16c")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

/* Sum of 8 lanes: extract-high + low, movehl, movehdup (akk_hsum8_ref's order, quant.c). */
AVX2_INLINE float hsum8(__m256 v) {
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

/* Sum of 8 int32 lanes (exact: any order gives the same total). */
AVX2_INLINE int32_t hsum8_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1)));
}

/* Q4_K/Q5_K's 6-bit scales and mins (the 12 bytes at p, akk_k4_scales_mins) on 32-bit words:
 * w[0..1] the 8 scales as bytes, w[2..3] the 8 mins. */
static inline void akk_k4_scale_words(const uint8_t *p, uint32_t w[4]) {
    uint32_t u[3];
    __builtin_memcpy(u, p, 12);
    w[0] = u[0] & 0x3f3f3f3f;
    w[1] = (u[2] & 0x0f0f0f0f) | ((u[0] >> 2) & 0x30303030);
    w[2] = u[1] & 0x3f3f3f3f;
    w[3] = ((u[2] >> 4) & 0x0f0f0f0f) | ((u[1] >> 2) & 0x30303030);
}

/* Q3_K's 16 6-bit scales (akk_q3_k_scales: low 4 bits from bytes 0..7, high 2 from bytes 8..11 of
 * the 12 at p) minus 32, as 16 int16 words in order. */
AVX2_INLINE __m256i akk_q3_k_scales16(const uint8_t *p) {
    uint32_t a;
    __builtin_memcpy(&a, p + 8, 4);
    const __m128i v = _mm_loadl_epi64((const __m128i *)p), m4 = _mm_set1_epi8(0x0f);
    const __m128i lo = _mm_and_si128(_mm_unpacklo_epi64(v, _mm_srli_epi16(v, 4)), m4);
    const __m128i hi = _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32((int)a), _mm_setr_epi32(0, 2, 4, 6)), _mm_set1_epi8(3));
    return _mm256_cvtepi8_epi16(_mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(hi, 4)), _mm_set1_epi8(32)));
}

/* 4 bytes at p in every 32-bit lane. */
AVX2_INLINE __m256i bcast4(const int8_t *p) {
    int32_t v;
    __builtin_memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* quantize_row_q8_0 / quantize_row_q8_1 (FN: the target attributes) from BLOCK(x, qs, sum), which
 * quantises 32 floats to qs and returns d (and the exact sum of the quants when sum != NULL). */
#define AKK_Q8_ROWS(FN, BLOCK)                                                                     \
    FN void quantize_row_q8_0(const float *x, void *y, int64_t n) {                                \
        uint8_t *p = (uint8_t *)y;                                                                 \
        for (int64_t b = 0; b < n / 32; b++, p += 34) {                                            \
            const float d = BLOCK(x + b * 32, (int8_t *)(p + 2), 0);                               \
            const uint16_t h = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);                            \
            __builtin_memcpy(p, &h, 2);                                                            \
        }                                                                                          \
    }                                                                                              \
    FN void quantize_row_q8_1(const float *x, void *y, int64_t n) {                                \
        uint8_t *p = (uint8_t *)y;                                                                 \
        for (int64_t b = 0; b < n / 32; b++, p += 36) {                                            \
            int s;                                                                                 \
            const float d = BLOCK(x + b * 32, (int8_t *)(p + 4), &s);                              \
            const uint16_t hd = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);                           \
            const uint16_t hs = _cvtss_sh(d * (float)s, _MM_FROUND_TO_NEAREST_INT);                \
            __builtin_memcpy(p, &hd, 2);                                                           \
            __builtin_memcpy(p + 2, &hs, 2);                                                       \
        }                                                                                          \
    }

/* ---- IQ4_XS (x Q8_K) pieces of the AVX2 and AVX-512VL kernels (akk_internal.h first) ---- */

/* 16 packed bytes -> 32 grid values in element order (table2: the grid in both 128-bit halves). */
AVX2_INLINE __m256i akk_xs_grid32(const uint8_t *qs, __m256i table2) {
    const __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
    const __m256i n = _mm256_and_si256(_mm256_srlv_epi32(b, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)), _mm256_set1_epi8(0x0f));
    return _mm256_shuffle_epi8(table2, n);
}

/* The 8 signed 6-bit sub-block scales (akk_iq4_xs_scale) as int16 words 0..7 of both 128-bit
 * halves: low 4 bits from the nibbles of bytes 4..7, high 2 from the fp16-sized word at 2. */
AVX2_INLINE __m256i akk_xs_scales16(const uint8_t *blk) {
    uint32_t l;
    __builtin_memcpy(&l, blk + 4, 4);
    const __m128i v = _mm_cvtsi32_si128((int)l), m4 = _mm_set1_epi8(0x0f);
    const __m128i lo = _mm_unpacklo_epi8(_mm_and_si128(v, m4), _mm_and_si128(_mm_srli_epi16(v, 4), m4));
    const __m256i h32 = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(akk_load_u16(blk + 2)),
                                                           _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)), _mm256_set1_epi32(3));
    const __m128i h16 = _mm_packus_epi32(_mm256_castsi256_si128(h32), _mm256_extracti128_si256(h32, 1));
    const __m128i s = _mm_sub_epi16(_mm_or_si128(_mm_cvtepu8_epi16(lo), _mm_slli_epi16(h16, 4)), _mm_set1_epi16(32));
    return _mm256_broadcastsi128_si256(s);
}

/* Scale ib of akk_xs_scales16 in every int16 word. */
AVX2_INLINE __m256i akk_xs_scale_of(__m256i sc, int ib) {
    return _mm256_shuffle_epi8(sc, _mm256_set1_epi16((short)(0x0100 + 0x0202 * ib)));
}

/* 32 bytes: 0xFF where bit j of the 4 bytes at p is set (byte j), else 0. */
AVX2_INLINE __m256i akk_bits_to_bytes(const uint8_t *p) {
    uint32_t v;
    __builtin_memcpy(&v, p, 4);
    const __m256i shuf = _mm256_setr_epi64x(0, 0x0101010101010101ll, 0x0202020202020202ll, 0x0303030303030303ll);
    const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)v), shuf);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201ll);
    return _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
}

#endif

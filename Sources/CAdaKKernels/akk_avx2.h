/* Shared by the AVX2 kernel sources: per-function target attributes (no -march flags, so the
 * library stays portable; dispatch.c selects these kernels at run time) and the horizontal sum. */
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

/* 4 bytes at p in every 32-bit lane. */
AVX2_INLINE __m256i bcast4(const int8_t *p) {
    int32_t v;
    __builtin_memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

#endif

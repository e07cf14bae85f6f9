/*
 * AVX2 + FMA + F16C kernels of the repacked IQ4_NL_R8 / MXFP4_R8 (x Q8_0): the tiles of
 * akk_iq4mx_r8.h with maddubs. Results: the scalar references' bits (repack_iq4mx.c).
 *   MXFP4: the doubled E2M1 grid (|v| <= 12) biased by 12 is unsigned (<= 24): maddubs pair sums
 *     <= 2 * 24 * 127 = 6096, four chunks of them add up in int16 (<= 24384) before one madd.
 *   IQ4_NL: the grid reaches -127, so the sign trick maddubs(|w|, x signed by w) (pair sums
 *     <= 2 * 127 * 127 < 32768) and a madd per chunk.
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include "akk_avx2.h"

#define IR8_FN AVX2_FN
#define IR8_STREAM_PF 1
#define IR8_INLINE AVX2_INLINE
#define IR8_BIAS(MX) ((MX) ? 12 : 0)
#define IR8_LEVEL avx2
#define IR8_TT 4

AVX2_INLINE __m256i ir8_isum(const int MX, const __m256i w[8], const int8_t *q, __m256i acc) {
    const __m256i ones = _mm256_set1_epi16(1);
    if (MX) {
        __m256i p0 = _mm256_maddubs_epi16(w[0], bcast4(q)), p1 = _mm256_maddubs_epi16(w[1], bcast4(q + 16));
        for (int m = 1; m < 4; m++) {
            p0 = _mm256_add_epi16(p0, _mm256_maddubs_epi16(w[2 * m], bcast4(q + 4 * m)));
            p1 = _mm256_add_epi16(p1, _mm256_maddubs_epi16(w[2 * m + 1], bcast4(q + 16 + 4 * m)));
        }
        return _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(p0, ones), _mm256_madd_epi16(p1, ones)));
    }
    for (int m = 0; m < 4; m++)
        for (int h = 0; h < 2; h++) {
            const __m256i v = w[2 * m + h], x = bcast4(q + 16 * h + 4 * m);
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(x, v)), ones));
        }
    return acc;
}

#include "akk_iq4mx_r8.h"

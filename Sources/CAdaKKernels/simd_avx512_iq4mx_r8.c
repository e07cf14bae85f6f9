/*
 * AVX-512 (F/BW/VL + VNNI) kernels of the repacked IQ4_NL_R8 / MXFP4_R8 (x Q8_0): the tiles of
 * akk_iq4mx_r8.h with the grid biased by 128 (unsigned bytes) and vpdpbusd, which adds 4 u8 x s8
 * products straight into each row's int32 lane (no int16 stage, exact), starting from
 * -128 * (sum of the block's quants). Results: the scalar references' bits (repack_iq4mx.c).
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include "akk_avx2.h"

#define IR8_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define IR8_FN static __attribute__((target(IR8_TARGET)))
#define IR8_INLINE static inline __attribute__((always_inline, target(IR8_TARGET)))
#define IR8_BIAS(MX) 128
#define IR8_LEVEL avx512
#define IR8_TT 8

/* two independent vpdpbusd chains (elements 0..15 and 16..31) */
IR8_INLINE __m256i ir8_isum(const int MX, const __m256i w[8], const int8_t *q, __m256i acc) {
    (void)MX;
    __m256i a = _mm256_dpbusd_epi32(acc, w[0], bcast4(q));
    __m256i b = _mm256_dpbusd_epi32(_mm256_setzero_si256(), w[1], bcast4(q + 16));
    for (int m = 1; m < 4; m++) {
        a = _mm256_dpbusd_epi32(a, w[2 * m], bcast4(q + 4 * m));
        b = _mm256_dpbusd_epi32(b, w[2 * m + 1], bcast4(q + 16 + 4 * m));
    }
    return _mm256_add_epi32(a, b);
}

#include "akk_iq4mx_r8.h"

/*
 * AVX-512 (F/BW/VL + VNNI) kernels. Compiled per function with target attributes, like the AVX2
 * set (simd_avx2.c); dispatch.c selects them at run time when CPUID reports all four features.
 *
 * akk_impl_avx512 starts as a copy of akk_impl_avx2 and replaces the kernels that are faster
 * here (measured on Zen 4, docs/PERFORMANCE.md): the quantised tiles of akk_quant_tiles.h with
 * vpdpbusd (VNNI on 256-bit registers) in place of AVX2's maddubs + madd (+ add); the K-quant
 * ones (Q4_K_R8, Q6_K) come from simd_avx512_kquant.c, the prefill tiles of Q8_0, Q5_0, Q4_0,
 * Q4_1 and Q5_1 (weights unpacked to unsigned bytes once per row tile) from simd_avx512_bias.c,
 * whose fallback (decode) is the tile here or AVX2's. The integer
 * sums of a block are exact either way and the float steps are the shared template's, so every
 * output is bit-identical to the AVX2 and scalar paths. The IQ4_NL/MXFP4 8-row-view prefill
 * kernels are in simd_avx512_iq4mx.c.
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include "akk_avx2.h"
#include <stdlib.h>

#define AVX512_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define QT_FN static __attribute__((target(AVX512_TARGET)))
#define QT_INLINE static inline __attribute__((always_inline, target(AVX512_TARGET)))

/* acc + lanes of 4 u8 x s8 products (exact int32). */
QT_INLINE __m256i u8s8_acc(__m256i acc, __m256i u, __m256i x) { return _mm256_dpbusd_epi32(acc, u, x); }

/* acc + the 8 row sums of a repacked Q4_0 block (r8_tile): two independent vpdpbusd chains. */
QT_INLINE __m256i r8_isum(const __m256i w[8], const int8_t *q, __m256i acc) {
    __m256i a = _mm256_dpbusd_epi32(acc, w[0], bcast4(q));
    __m256i b = _mm256_dpbusd_epi32(_mm256_setzero_si256(), w[1], bcast4(q + 16));
    a = _mm256_dpbusd_epi32(a, w[2], bcast4(q + 4));
    b = _mm256_dpbusd_epi32(b, w[3], bcast4(q + 20));
    a = _mm256_dpbusd_epi32(a, w[4], bcast4(q + 8));
    b = _mm256_dpbusd_epi32(b, w[5], bcast4(q + 24));
    a = _mm256_dpbusd_epi32(a, w[6], bcast4(q + 12));
    b = _mm256_dpbusd_epi32(b, w[7], bcast4(q + 28));
    return _mm256_add_epi32(a, b);
}

/* Prefill tiles (rows x tokens): AVX-512VL's 32 vector registers hold larger ones than AVX2's 16.
 * Zen 4, 1 thread, 1024 x 2048, 64 tokens, ms (AVX2's tiles 2x4 / 3x2 / 2x2 here: 2.20 / 2.12 /
 * 3.13): Q8_0 3x4 2.14-2.20 (4x4 2.15, 2x2 2.41); Q4_0 4x4 1.84 (3x4 1.94, 4x2 2.03); Q4_1 2x4 2.74-2.77
 * (4x2 2.75, 3x4 2.79). AVX2 at its own tiles: 2.83-2.96 / 2.88-2.93 / 3.51-3.60. */
#define QT_TILE_Q8_0 3, 4
#define QT_TILE_Q4_0 4, 4
#define QT_TILE_Q4_1 2, 4
#include "akk_quant_tiles.h"

/* Prefill through the tiles of simd_avx512_bias.c, decode and scratch-less calls through
 * `fallback`. */
#define PREFILL(name, TYPE, fallback)                                                              \
    static void name(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X, \
                     int64_t xs, int64_t n_tok, float *Y, int64_t ys) {                            \
        akk_rows_bias_avx512(TYPE, fallback, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);          \
    }
PREFILL(rows_q8_0_b, AKK_Q8_0, rows_q8_0)
PREFILL(rows_q4_0_b, AKK_Q4_0, rows_q4_0)
PREFILL(rows_q4_1_b, AKK_Q4_1, rows_q4_1)
PREFILL(rows_q5_0_b, AKK_Q5_0, akk_rows_q5_0_avx2)
PREFILL(rows_q5_1_b, AKK_Q5_1, akk_rows_q5_1_avx2)

struct akk_impl akk_impl_avx512;

void akk_avx512_prepare(void) {
    akk_impl_avx512 = akk_impl_avx2;
    akk_impl_avx512.rows_q8_0 = rows_q8_0_b;
    akk_impl_avx512.rows_q4_0 = rows_q4_0_b;
    akk_impl_avx512.rows_q4_1 = rows_q4_1_b;
    akk_impl_avx512.rows_q5_0 = rows_q5_0_b;
    akk_impl_avx512.rows_q5_1 = rows_q5_1_b;
    akk_impl_avx512.rows_q4_0_r8 = rows_q4_0_r8;
    akk_impl_avx512.rows_iq4_nl_x8 = akk_rows_iq4_nl_x8_avx512;
    akk_impl_avx512.rows_mxfp4_x8 = akk_rows_mxfp4_x8_avx512;
    akk_impl_avx512.rows_iq4_nl_r8 = akk_rows_iq4_nl_r8_avx512;
    akk_impl_avx512.rows_mxfp4_r8 = akk_rows_mxfp4_r8_avx512;
    akk_avx512_kquant_prepare(&akk_impl_avx512);
    akk_avx512_rowops_prepare(&akk_impl_avx512);
    akk_impl_avx512.rows_q2_k_tl = akk_rows_q2_k_tl_avx512;
    akk_impl_avx512.rows_q3_k_tl = akk_rows_q3_k_tl_avx512;
    akk_impl_avx512.rows_q5_k_tl = akk_rows_q5_k_tl_avx512;
    akk_impl_avx512.rows_q6_k_tl = akk_rows_q6_k_tl_avx512;
    akk_impl_avx512.rows_iq4_xs_tl = akk_rows_iq4_xs_tl_avx512;
    akk_impl_avx512.rows_iq4_xs = akk_rows_iq4_xs_avx512;
    akk_impl_avx512.rows_iq4_xs_r16 = akk_rows_iq4_xs_r16_avx512;
    akk_impl_avx512.rows_iq4_xs_r16_tl = akk_rows_iq4_xs_r16_tl_avx512;
    akk_iq4_xs_vbmi(-1);
}

/*
 * AVX-512 (F/BW/VL) kernels of the per-row operations: the activation quantisers (Q8_0, Q8_1,
 * Q8_K), the fp32 -> fp16 row conversion and the decode attention products. Each gives the bytes of
 * its AVX2 kernel and scalar reference by construction (the same float operations per element; integer steps exact;
 * conversions by the same instructions at another width). Installed into akk_impl_avx512 by
 * akk_avx512_rowops_prepare where measured faster than AVX2 (docs/BENCHMARKS.md).
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include "akk_avx2.h"
#include "akk_attn_dots.h"
#include <string.h>

#define RO_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl"
#define RO_FN static __attribute__((target(RO_TARGET)))
#define RO_INLINE static inline __attribute__((always_inline, target(RO_TARGET)))

/* ---- fp32 -> fp16 rows: 16 per step, the tail under a mask (fp16 -> fp32: AVX2's kernel, as fast
 * here: 0.98-1.02x, docs/BENCHMARKS.md) ---- */

RO_FN void fp32_to_fp16_row(const float *x, uint16_t *y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm256_mask_storeu_epi16(y + i, m, _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT));
    }
}

/* ---- Q8_0 / Q8_1: one block of 32 floats in two registers ----
 * As q8_block (simd_avx2.c): amax = max |x|, d = amax/127, id = 127/amax (0 for amax 0),
 * q = x*id rounded to nearest even (vcvtps2dq under the default rounding = round + convert),
 * saturated to int8 (vpmovsdb = packs); the sum of the quants exact. */
RO_INLINE float q8_block(const float *x, int8_t *qs, int *sum) {
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    const float d = amax / 127.0f;
    const __m512 id = _mm512_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
    const __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, id)), i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, id));
    if (sum) *sum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
    _mm_storeu_si128((__m128i *)qs, _mm512_cvtsepi32_epi8(i0));
    _mm_storeu_si128((__m128i *)(qs + 16), _mm512_cvtsepi32_epi8(i1));
    return d;
}

AKK_Q8_ROWS(RO_FN, q8_block)

/* ---- Q8_K (akk_quantize_row_q8_K, kquant_dot.c; AVX2: akk_quantize_row_q8_K_avx2) ----
 * |x| max with NaN skipped (vmaxps returns its second operand, the running max, for a NaN), the
 * first element of that magnitude as the signed max, iscale = -127/max; per element the float
 * multiply and magic-number add (no fma), the low 23 bits minus 2^22, min 127, the low byte stored
 * (vpmovdb truncates); bsums of the stored bytes as int8 (one register = one 16-element sum). */
RO_FN void quantize_row_q8_K(const float *x, void *y, int64_t n) {
    uint8_t *p = (uint8_t *)y;
    for (int64_t b = 0; b < n / AKK_QK_K; b++, p += 292, x += AKK_QK_K) {
        __m512 m = _mm512_setzero_ps();
        for (int j = 0; j < AKK_QK_K; j += 16) m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + j)), m);
        const float amax = _mm512_reduce_max_ps(m);
        if (amax == 0.0f) {
            memset(p, 0, 292);
            continue;
        }
        int first = 0;
        for (int j = 0; j < AKK_QK_K; j += 16) {
            const __mmask16 eq = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + j)), _mm512_set1_ps(amax), _CMP_EQ_OQ);
            if (eq) {
                first = j + __builtin_ctz(eq);
                break;
            }
        }
        const float iscale = -127.0f / x[first];
        const __m512 vs = _mm512_set1_ps(iscale), magic = _mm512_set1_ps(12582912.0f);
        const __m512i low23 = _mm512_set1_epi32(0x007fffff), bias = _mm512_set1_epi32(0x00400000);
        const __m512i i127 = _mm512_set1_epi32(127);
        int8_t *qs = (int8_t *)(p + 4);
        for (int j = 0; j < AKK_QK_K; j += 16) {
            const __m512 t = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(x + j), vs), magic);
            const __m512i v = _mm512_min_epi32(_mm512_sub_epi32(_mm512_and_si512(_mm512_castps_si512(t), low23), bias), i127);
            _mm_storeu_si128((__m128i *)(qs + j), _mm512_cvtepi32_epi8(v));
            const int16_t bs = (int16_t)_mm512_reduce_add_epi32(_mm512_srai_epi32(_mm512_slli_epi32(v, 24), 24));
            memcpy(p + 260 + 2 * (j / 16), &bs, 2);
        }
        const float d = 1.0f / iscale;
        memcpy(p, &d, 4);
    }
}

/* ---- decode attention products (akk_attn_dots.h): a dot's four 8-lane accumulators as two
 * zmm, blocks of 16 accumulators (of the 32 registers) ---- */

#define AZ_BLOCKS(T, LOAD16, P)                                                                    \
    ATTN_BLOCK16(P##1x4, RO_FN, T, LOAD16, 1, 4)                                                   \
    ATTN_BLOCK16(P##1x3, RO_FN, T, LOAD16, 1, 3)                                                   \
    ATTN_BLOCK16(P##1x2, RO_FN, T, LOAD16, 1, 2)                                                   \
    ATTN_BLOCK16(P##1x1, RO_FN, T, LOAD16, 1, 1)                                                   \
    ATTN_BLOCK16(P##2x4, RO_FN, T, LOAD16, 2, 4)                                                   \
    ATTN_BLOCK16(P##2x3, RO_FN, T, LOAD16, 2, 3)                                                   \
    ATTN_BLOCK16(P##2x2, RO_FN, T, LOAD16, 2, 2)                                                   \
    ATTN_BLOCK16(P##2x1, RO_FN, T, LOAD16, 2, 1)                                                   \
    ATTN_BLOCK16(P##4x2, RO_FN, T, LOAD16, 4, 2)                                                   \
    ATTN_BLOCK16(P##8x1, RO_FN, T, LOAD16, 8, 1)
AZ_BLOCKS(float, LOAD16_F32, az_f32_)
AZ_BLOCKS(uint16_t, LOAD16_F16, az_f16_)

RO_FN void attn_rows_f32(AKK_ATTN_ROWS_ARGS(float)) {
    typedef float A_T;
    ATTN_ROWS(az_f32_, tail_f32, 2, 2, 4, 8)
}

RO_FN void attn_rows_f16(AKK_ATTN_ROWS_ARGS(uint16_t)) {
    typedef uint16_t A_T;
    ATTN_ROWS(az_f16_, tail_f16f, 2, 2, 4, 8)
}

/* ---- prefill attention products (akk_attn_dots.h): blocks of 4 rows x 4 vectors, 16
 * accumulators of the 32 registers; one-accumulator dots in ymm (a dot is 8 lanes), ggml_vec_dot's
 * four as two zmm ---- */

#define AZ_PF(T, LOAD, LOAD16, P)                                                                  \
    PF_BLOCKS(P##1_, RO_FN, T, __m256, 8, 1, LOAD, _mm256_loadu_ps, _mm256_fmadd_ps, _mm256_setzero_ps, FOLD1, 4) \
    PF_BLOCKS(P##4_, RO_FN, T, __m512, 16, 2, LOAD16, _mm512_loadu_ps, _mm512_fmadd_ps, _mm512_setzero_ps, FOLD16, 4)
AZ_PF(float, LOAD_F32, LOAD16_F32, azpf_f32)
AZ_PF(uint16_t, LOAD_F16, LOAD16_F16, azpf_f16)

RO_FN void attn_prefill_f32(AKK_ATTN_PF_ARGS(float)) {
    typedef float A_T;
    ATTN_PREFILL(azpf_f321_, 4, azpf_f324_, 4, tail_f32)
}

RO_FN void attn_prefill_f16(AKK_ATTN_PF_ARGS(uint16_t)) {
    typedef uint16_t A_T;
    ATTN_PREFILL(azpf_f161_, 4, azpf_f164_, 4, tail_f16f)
}

void akk_avx512_rowops_prepare(struct akk_impl *impl) {
    impl->attn_prefill_f32 = attn_prefill_f32;
    impl->attn_prefill_f16 = attn_prefill_f16;
    impl->attn_rows_f32 = attn_rows_f32;
    impl->attn_rows_f16 = attn_rows_f16;
    impl->quantize_q8_0 = quantize_row_q8_0;
    impl->quantize_q8_1 = quantize_row_q8_1;
    impl->quantize_q8_K = quantize_row_q8_K;
    impl->fp32_to_fp16_row = fp32_to_fp16_row;
}

/*
 * IQ4_NL and IQ4_XS quantisers, giving the bytes of ggml's quantize_iq4_nl / quantize_iq4_xs
 * without an importance matrix (what llama.cpp's quantizer runs). Values are 4-bit indices into a
 * fixed non-linear table; per block of 32, with weights w = x^2:
 *   d0 = max/127 (max = the value of largest |x|), L = nearest table entry to x/d0, d = the
 *   weighted least-squares scale for L; then 15 trial scales (-127 + t)/max, t = -7..7, each kept
 *   when it raises (sum w q x)^2 / sum w q^2.
 * IQ4_NL stores d as fp16 and re-picks L with 1/d. IQ4_XS (8 blocks of 32 per 256) stores
 * D = -max_d/32 in fp16 (max_d = the block scale of largest |d|), a 6-bit l per block
 * (round(d/D) clamped to [-32, 31], +32) and re-picks L with 1/(D*l), D unrounded.
 */
#pragma STDC FP_CONTRACT OFF
#include "quantize_internal.h"

static const int8_t iq4_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* Index of the table entry nearest to x (the lower one on ties), by bisection as ggml's. */
static inline int iq4_nearest(float x) {
    if (x <= iq4_values[0]) return 0;
    if (x >= iq4_values[15]) return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (x < iq4_values[mid]) hi = mid;
        else lo = mid;
    }
    return x - iq4_values[hi - 1] < iq4_values[hi] - x ? hi - 1 : hi;
}

/* Sums of the 16 trials of one block (see the top): trial k quantises x with id[k] and gets
 * sumqx[k] = sum_j (w_j q_j) x_j and sumq2[k] = sum_j (w_j q_j) q_j, j ascending, as ggml's
 * separate trial loops do; the trials are independent, so running them side by side (j outer)
 * changes no bit. Scalar reference of iq4_trials_avx2. */
static void iq4_trials_scalar(const float *x, const float *w, const float *id, float *sumqx, float *sumq2) {
    for (int k = 0; k < 16; k++) sumqx[k] = sumq2[k] = 0;
    for (int j = 0; j < 32; j++) {
        for (int k = 0; k < 16; k++) {
            const float q = iq4_values[iq4_nearest(id[k] * x[j])];
            sumqx[k] += w[j] * q * x[j];
            sumq2[k] += w[j] * q * q;
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX2_FN static __attribute__((target("avx2")))

/* iq4_nearest on 8 lanes: hi = 1 + #{i in 1..14 : v_i <= a} is the bisection's upper end, then
 * the same tie test (a - v[hi-1] < v[hi] - a); a <= v0 -> 0, a >= v15 or NaN -> 15 (as the
 * bisection, whose every x < v[mid] test fails on NaN). Returns the table value. */
AVX2_FN __m256 iq4_nearest8(__m256 a, __m256 tlo, __m256 thi) {
    __m256i cnt = _mm256_set1_epi32(1);
    for (int i = 1; i < 15; i++)
        cnt = _mm256_sub_epi32(cnt, _mm256_castps_si256(_mm256_cmp_ps(_mm256_set1_ps(iq4_values[i]), a, _CMP_LE_OQ)));
    const __m256i seven = _mm256_set1_epi32(7);
    const __m256i lo_i = _mm256_sub_epi32(cnt, _mm256_set1_epi32(1));
#define IQ4_LOOKUP(idx) _mm256_blendv_ps(_mm256_permutevar8x32_ps(tlo, idx), _mm256_permutevar8x32_ps(thi, idx), \
                                         _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, seven)))
    const __m256 vhi = IQ4_LOOKUP(cnt);
    const __m256 vlo = IQ4_LOOKUP(lo_i);
#undef IQ4_LOOKUP
    const __m256 take_lo = _mm256_cmp_ps(_mm256_sub_ps(a, vlo), _mm256_sub_ps(vhi, a), _CMP_LT_OQ);
    __m256 q = _mm256_blendv_ps(vhi, vlo, take_lo);
    q = _mm256_blendv_ps(q, _mm256_set1_ps(iq4_values[0]), _mm256_cmp_ps(a, _mm256_set1_ps(iq4_values[0]), _CMP_LE_OQ));
    const __m256 top = _mm256_or_ps(_mm256_cmp_ps(a, _mm256_set1_ps(iq4_values[15]), _CMP_GE_OQ),
                                    _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
    return _mm256_blendv_ps(q, _mm256_set1_ps(iq4_values[15]), top);
}

AVX2_FN void iq4_trials_avx2(const float *x, const float *w, const float *id, float *sumqx, float *sumq2) {
    float tab[16];
    for (int i = 0; i < 16; i++) tab[i] = iq4_values[i];
    const __m256 tlo = _mm256_loadu_ps(tab), thi = _mm256_loadu_ps(tab + 8);
    const __m256 id0 = _mm256_loadu_ps(id), id1 = _mm256_loadu_ps(id + 8);
    __m256 sx0 = _mm256_setzero_ps(), sx1 = sx0, s20 = sx0, s21 = sx0;
    for (int j = 0; j < 32; j++) {
        const __m256 xj = _mm256_set1_ps(x[j]), wj = _mm256_set1_ps(w[j]);
        const __m256 q0 = iq4_nearest8(_mm256_mul_ps(id0, xj), tlo, thi);
        const __m256 q1 = iq4_nearest8(_mm256_mul_ps(id1, xj), tlo, thi);
        const __m256 wq0 = _mm256_mul_ps(wj, q0), wq1 = _mm256_mul_ps(wj, q1);
        sx0 = _mm256_add_ps(sx0, _mm256_mul_ps(wq0, xj));
        sx1 = _mm256_add_ps(sx1, _mm256_mul_ps(wq1, xj));
        s20 = _mm256_add_ps(s20, _mm256_mul_ps(wq0, q0));
        s21 = _mm256_add_ps(s21, _mm256_mul_ps(wq1, q1));
    }
    _mm256_storeu_ps(sumqx, sx0);
    _mm256_storeu_ps(sumqx + 8, sx1);
    _mm256_storeu_ps(sumq2, s20);
    _mm256_storeu_ps(sumq2 + 8, s21);
}
#endif

/* Scale search of one block of 32 (see the top). */
static float iq4_block_scale(const float *xb) {
    float w[32], id[16], sumqx[16], sumq2[16];
    for (int j = 0; j < 32; j++) w[j] = xb[j] * xb[j];
    float amax;
    const float peak = akq_abs_peak(xb, 32, &amax);
    if (amax < AKQ_GROUP_MAX_EPS) return 0;
    id[0] = 1 / (-peak / iq4_values[0]);
    for (int t = -7; t <= 7; t++) id[t + 8] = (t + iq4_values[0]) / peak;
#if defined(__x86_64__)
    if (akk_have_avx2()) iq4_trials_avx2(xb, w, id, sumqx, sumq2);
    else
#endif
        iq4_trials_scalar(xb, w, id, sumqx, sumq2);
    float d = sumq2[0] > 0 ? sumqx[0] / sumq2[0] : 0.f;
    float best = d * sumqx[0];
    for (int k = 1; k < 16; k++) {
        if (sumq2[k] > 0 && sumqx[k] * sumqx[k] > best * sumq2[k]) {
            d = sumqx[k] / sumq2[k];
            best = d * sumqx[k];
        }
    }
    return d;
}

/* Nibbles: qs[16 i + j] = L[32 i + j] | L[32 i + 16 + j] << 4. */
static void iq4_pack(const uint8_t *L, uint8_t *qs, int n) {
    for (int i = 0; i < n / 32; i++)
        for (int j = 0; j < 16; j++) qs[16 * i + j] = (uint8_t)(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
}

/* IQ4_NL { fp16 d; uint8 qs[16] } (18 bytes). */
void akq_row_iq4_nl(const float *x, uint8_t *y, int64_t k) {
    uint8_t L[32];
    for (int64_t b = 0; b < k / 32; b++, x += 32, y += 18) {
        const float d = iq4_block_scale(x);
        akq_put_f16(y, d);
        const float id = d != 0 ? 1 / d : 0;
        for (int j = 0; j < 32; j++) L[j] = (uint8_t)iq4_nearest(id * x[j]);
        iq4_pack(L, y + 2, 32);
    }
}

/* IQ4_XS { fp16 d; uint16 scales_h; uint8 scales_l[4]; uint8 qs[128] } (136 bytes): block ib's
 * 6-bit scale has its low nibble in scales_l[ib/2] (ib even: low half) and its top 2 bits in
 * scales_h bits 2ib..2ib+1. */
void akq_row_iq4_xs(const float *x, uint8_t *y, int64_t k) {
    uint8_t L[256];
    float scales[8];
    for (int64_t b = 0; b < k / 256; b++, x += 256, y += 136) {
        for (int ib = 0; ib < 8; ib++) scales[ib] = iq4_block_scale(x + 32 * ib);
        float amax_scale;
        const float max_scale = akq_abs_peak(scales, 8, &amax_scale);
        const float d = -max_scale / 32;
        akq_put_f16(y, d);
        const float id = d != 0 ? 1 / d : 0.f;
        uint16_t scales_h = 0;
        uint8_t *scales_l = y + 4;
        for (int ib = 0; ib < 8; ib++) {
            int l = akq_nearest_int(id * scales[ib]);
            l = l < -32 ? -32 : l > 31 ? 31 : l;
            const float dl = d * l;
            const float idl = dl != 0 ? 1 / dl : 0.f;
            for (int j = 0; j < 32; j++) L[32 * ib + j] = (uint8_t)iq4_nearest(idl * x[32 * ib + j]);
            l += 32;
            if (ib % 2 == 0) scales_l[ib / 2] = (uint8_t)(l & 0xf);
            else scales_l[ib / 2] |= (uint8_t)((l & 0xf) << 4);
            scales_h |= (uint16_t)((l >> 4) << (2 * ib));
        }
        y[2] = (uint8_t)scales_h;
        y[3] = (uint8_t)(scales_h >> 8);
        iq4_pack(L, y + 8, 256);
    }
}

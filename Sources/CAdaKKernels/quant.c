/*
 * Scalar reference kernels: activation quantisation and dot products.
 *
 * These references define the exact float results. The AVX2 kernels in simd_avx2.c perform the
 * same float operations in the same order, so both paths are bit-identical (tests check it).
 * Both follow llama.cpp's x86 AVX2 path (ggml-cpu/arch/x86/quants.c), so our results equal what
 * llama.cpp computes for the same blocks:
 *
 *  - quantize_row_q8_0/q8_1: amax = max|x|, d = amax/127, id = amax ? 127/amax : 0,
 *    q = round-half-even(x*id) (_mm256_round_ps(.., _MM_ROUND_NEAREST)); d stored as fp16 (RNE).
 *    q8_1 adds s = fp16(d * (float)sum(q)) with the integer sum exact.
 *  - q8_0.q8_0, q4_0.q8_0, q4_1.q8_1: one 8-lane float accumulator; lane l of a block holds the
 *    exact integer sum of the products of elements 4l..4l+3 (maddubs + madd), converted to float;
 *    acc[l] = fma(d_w*d_x, lanesum, acc[l]) with d_w*d_x rounded to float first. The row result is
 *    hsum8(acc) = ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)).
 *    q4_1 adds summs = fma(m_w, s_x, summs) per block (llama.cpp's `summs += m*s`, which GCC and
 *    clang contract to an FMA under -march=native) and returns hsum8(acc) + summs.
 *  - f32.f32 (ggml_vec_dot_f32 with AVX: 4 accumulators x 8 lanes over steps of 32 elements):
 *    acc[k][l] = fma(w, x, acc[k][l]) for element 32i + 8k + l; reduce (acc0+acc2)+(acc1+acc3)
 *    lane-wise, then t_l = a_l + a_{l+4}, result = (t0+t1)+(t2+t3); leftover elements (n % 32)
 *    are added one by one with fma.
 *
 * Integer products are exact here; the SIMD Q8_0 kernel (maddubs(|w|, x signed by w), as
 * llama.cpp) needs activation quants in [-127, 127], which our quantiser (and llama.cpp's)
 * guarantees.
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include <math.h>
#include <string.h>

/* ---- activation quantisation ---- */

/* One block of 32: writes the quants, returns d (float) and the exact sum of the quants. */
static void quantize_block_q8(const float *x, float *d_out, int8_t *q, int *sum) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) {
        float a = fabsf(x[j]);
        amax = a > amax ? a : amax;
    }
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int s = 0;
    for (int j = 0; j < 32; j++) {
        int v = (int)rintf(x[j] * id); /* default rounding mode: nearest, ties to even */
        q[j] = (int8_t)v;
        s += v;
    }
    *d_out = d;
    *sum = s;
}

void akk_quantize_row_q8_0_scalar(const float *x, void *y, int64_t n) {
    uint8_t *p = (uint8_t *)y;
    for (int64_t b = 0; b < n / 32; b++, p += 34) {
        float d;
        int s;
        quantize_block_q8(x + b * 32, &d, (int8_t *)(p + 2), &s);
        uint16_t h = akk_fp32_to_fp16(d);
        memcpy(p, &h, 2);
    }
}

void akk_quantize_row_q8_1_scalar(const float *x, void *y, int64_t n) {
    uint8_t *p = (uint8_t *)y;
    for (int64_t b = 0; b < n / 32; b++, p += 36) {
        float d;
        int s;
        quantize_block_q8(x + b * 32, &d, (int8_t *)(p + 4), &s);
        uint16_t hd = akk_fp32_to_fp16(d);
        uint16_t hs = akk_fp32_to_fp16(d * (float)s);
        memcpy(p, &hd, 2);
        memcpy(p + 2, &hs, 2);
    }
}

/* Weight quantiser (GGML's reference rule: d = max/-8 with the signed extreme, round half away). */
void akk_quantize_row_q4_0_ref(const float *x, void *y, int64_t n) {
    uint8_t *p = (uint8_t *)y;
    for (int64_t b = 0; b < n / 32; b++, p += 18) {
        const float *xb = x + b * 32;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++) {
            if (fabsf(xb[j]) > amax) { amax = fabsf(xb[j]); max = xb[j]; }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t h = akk_fp32_to_fp16(d);
        memcpy(p, &h, 2);
        for (int j = 0; j < 16; j++) {
            int a = (int)(xb[j] * id + 8.5f);
            int c = (int)(xb[j + 16] * id + 8.5f);
            if (a > 15) a = 15;
            if (c > 15) c = 15;
            p[2 + j] = (uint8_t)(a | (c << 4));
        }
    }
}

/* ---- scalar dot products (lane-exact emulation of the AVX2 kernels) ---- */

/* hsum of 8 lanes in the AVX2 order: extract-high + low, movehl, movehdup. */
float akk_hsum8_ref(const float a[8]) {
    const float s0 = a[4] + a[0], s1 = a[5] + a[1], s2 = a[6] + a[2], s3 = a[7] + a[3];
    return (s0 + s2) + (s1 + s3);
}

/* ggml's GGML_F32x8_REDUCE of 4 accumulators of 8 lanes, in the AVX2 kernels' order. */
float akk_reduce_4x8_ref(const float acc[4][8]) {
    float a[8], t[4];
    for (int l = 0; l < 8; l++) a[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
    for (int l = 0; l < 4; l++) t[l] = a[l] + a[l + 4];
    return (t[0] + t[1]) + (t[2] + t[3]);
}

static float dot_f32_scalar(int64_t n, const float *w, const float *x) {
    float acc[4][8] = {{0}};
    const int64_t np = n & ~(int64_t)31;
    for (int64_t i = 0; i < np; i += 32)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 8; l++)
                acc[k][l] = fmaf(w[i + 8 * k + l], x[i + 8 * k + l], acc[k][l]);
    float s = akk_reduce_4x8_ref(acc);
    for (int64_t i = np; i < n; i++) s = fmaf(w[i], x[i], s);
    return s;
}

/* Q8_0 { fp16 d; int8 qs[32] } . Q8_0: lane l = sum of w[j]*x[j] for j in 4l..4l+3. */
static float dot_q8_0_q8_0_scalar(int64_t n, const uint8_t *w, const uint8_t *x) {
    float acc[8] = {0};
    for (int64_t b = 0; b < n / 32; b++, w += 34, x += 34) {
        const int8_t *qw = (const int8_t *)(w + 2), *qx = (const int8_t *)(x + 2);
        const float d = akk_fp16_to_fp32(akk_load_u16(w)) * akk_fp16_to_fp32(akk_load_u16(x));
        for (int l = 0; l < 8; l++) {
            int s = 0;
            for (int j = 4 * l; j < 4 * l + 4; j++) s += qw[j] * qx[j];
            acc[l] = fmaf(d, (float)s, acc[l]);
        }
    }
    return akk_hsum8_ref(acc);
}

/* Q4_0 { fp16 d; uint8 qs[16] }: element j < 16 is the low nibble of qs[j], element j >= 16 the
 * high nibble of qs[j-16]; value nibble - 8. Lanes as Q8_0 over element indices. */
static inline int q4_nibble(const uint8_t *qs, int j) {
    return j < 16 ? (qs[j] & 0x0f) : (qs[j - 16] >> 4);
}

static float dot_q4_0_q8_0_scalar(int64_t n, const uint8_t *w, const uint8_t *x) {
    float acc[8] = {0};
    for (int64_t b = 0; b < n / 32; b++, w += 18, x += 34) {
        const int8_t *qx = (const int8_t *)(x + 2);
        const float d = akk_fp16_to_fp32(akk_load_u16(w)) * akk_fp16_to_fp32(akk_load_u16(x));
        for (int l = 0; l < 8; l++) {
            int s = 0;
            for (int j = 4 * l; j < 4 * l + 4; j++) s += (q4_nibble(w + 2, j) - 8) * qx[j];
            acc[l] = fmaf(d, (float)s, acc[l]);
        }
    }
    return akk_hsum8_ref(acc);
}

/* Q4_1 { fp16 d; fp16 m; uint8 qs[16] } . Q8_1 { fp16 d; fp16 s; int8 qs[32] }. */
static float dot_q4_1_q8_1_scalar(int64_t n, const uint8_t *w, const uint8_t *x) {
    float acc[8] = {0};
    float summs = 0.0f;
    for (int64_t b = 0; b < n / 32; b++, w += 20, x += 36) {
        const int8_t *qx = (const int8_t *)(x + 4);
        summs = fmaf(akk_fp16_to_fp32(akk_load_u16(w + 2)), akk_fp16_to_fp32(akk_load_u16(x + 2)), summs);
        const float d = akk_fp16_to_fp32(akk_load_u16(w)) * akk_fp16_to_fp32(akk_load_u16(x));
        for (int l = 0; l < 8; l++) {
            int s = 0;
            for (int j = 4 * l; j < 4 * l + 4; j++) s += q4_nibble(w + 4, j) * qx[j];
            acc[l] = fmaf(d, (float)s, acc[l]);
        }
    }
    return akk_hsum8_ref(acc) + summs;
}

float akk_vec_dot_scalar(int wtype, int64_t n, const void *w, const void *x) {
    switch (wtype) {
    case AKK_F32: return dot_f32_scalar(n, (const float *)w, (const float *)x);
    case AKK_Q8_0: return dot_q8_0_q8_0_scalar(n, (const uint8_t *)w, (const uint8_t *)x);
    case AKK_Q4_0: return dot_q4_0_q8_0_scalar(n, (const uint8_t *)w, (const uint8_t *)x);
    case AKK_Q4_1: return dot_q4_1_q8_1_scalar(n, (const uint8_t *)w, (const uint8_t *)x);
    case AKK_IQ4_NL: case AKK_IQ4_XS: case AKK_MXFP4: case AKK_IQ4_NL_X8: case AKK_MXFP4_X8:
        return akk_vec_dot_iq4mx_scalar(wtype, n, w, x);
    default: return akk_vec_dot_kq_scalar(wtype, n, w, x);
    }
}

int akk_vec_dot_type(int wtype) {
    switch (wtype) {
    case AKK_F32: return AKK_F32;
    case AKK_Q8_0: case AKK_Q4_0: case AKK_Q4_0_R8: return AKK_Q8_0;
    case AKK_Q4_1: case AKK_Q5_1: return AKK_Q8_1;
    case AKK_Q5_0: case AKK_IQ4_NL: case AKK_MXFP4: case AKK_IQ4_NL_X8: case AKK_MXFP4_X8: return AKK_Q8_0;
    case AKK_Q2_K: case AKK_Q3_K: case AKK_Q4_K: case AKK_Q5_K: case AKK_Q6_K: case AKK_IQ4_XS: return AKK_Q8_K;
    case AKK_Q4_K_R8: case AKK_Q4_K_R8_DENSE: return AKK_Q8_K;
    case AKK_IQ4_NL_R8: case AKK_MXFP4_R8: return AKK_Q8_0;
    case AKK_IQ4_XS_R16: return AKK_Q8_K;
    default: return -1;
    }
}

/*
 * Quantisers for the 32-element block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, MXFP4) and F16 rows,
 * giving the bytes of ggml's quantize_row_*_ref (what llama.cpp's quantizer runs for these types
 * without an importance matrix). Formulas, per block of 32 values x:
 *   Q4_0/Q5_0: m = the value of largest |x| (first one on ties), d = m / -8 (-16);
 *              q = min(15 (31), trunc(x/d + 8.5 (16.5)))
 *   Q4_1/Q5_1: d = (max - min) / 15 (31), q = trunc((x - min)/d + 0.5)
 *   Q8_0:      d = max|x| / 127, q = roundf(x/d)
 *   MXFP4:     e = floor(log2(max|x|)) - 2 + 127 (E8M0), each x -> the nearest of the 16 doubled
 *              E2M1 values times 2^(e-128) (lowest index on ties)
 * "x/d" is x times the float 1/d throughout, as in ggml.
 */
#pragma STDC FP_CONTRACT OFF
#include <float.h>
#include "quantize_internal.h"

/* Q4_1/Q5_1 block header: d = (max - min)/levels and m = min, as fp16 at y. Returns 1/d (0 when
 * d is 0); *lo gets min. */
static float affine_header(const float *x, float levels, uint8_t *y, float *lo) {
    float mn = FLT_MAX, mx = -FLT_MAX;
    for (int j = 0; j < 32; j++) {
        if (x[j] < mn) mn = x[j];
        if (x[j] > mx) mx = x[j];
    }
    const float d = (mx - mn) / levels;
    akq_put_f16(y, d);
    akq_put_f16(y + 2, mn);
    *lo = mn;
    return d != 0.0f ? 1.0f / d : 0.0f;
}

/* Q4_0/Q5_0 block header: d = peak/-half (peak: the value of largest |x|) as fp16 at y. Returns
 * 1/d (0 when d is 0). */
static float symmetric_header(const float *x, float half, uint8_t *y) {
    float amax;
    const float d = akq_abs_peak(x, 32, &amax) / -half;
    akq_put_f16(y, d);
    return d != 0.0f ? 1.0f / d : 0.0f;
}

/* Q4_0 { fp16 d; uint8 qs[16] }: element j in the low nibble of qs[j], j+16 in the high one. */
void akq_row_q4_0(const float *x, uint8_t *y, int64_t k) {
    for (int64_t b = 0; b < k / 32; b++, x += 32, y += 18) {
        const float id = symmetric_header(x, 8, y);
        for (int j = 0; j < 16; j++) {
            int8_t lo = (int8_t)akq_trunc(x[j] * id + 8.5f);
            int8_t hi = (int8_t)akq_trunc(x[j + 16] * id + 8.5f);
            uint8_t q0 = (uint8_t)(lo < 15 ? lo : 15);
            uint8_t q1 = (uint8_t)(hi < 15 ? hi : 15);
            y[2 + j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* Q4_1 { fp16 d; fp16 m; uint8 qs[16] }. */
void akq_row_q4_1(const float *x, uint8_t *y, int64_t k) {
    for (int64_t b = 0; b < k / 32; b++, x += 32, y += 20) {
        float lo;
        const float id = affine_header(x, 15, y, &lo);
        for (int j = 0; j < 16; j++) {
            int8_t a = (int8_t)akq_trunc((x[j] - lo) * id + 0.5f);
            int8_t c = (int8_t)akq_trunc((x[j + 16] - lo) * id + 0.5f);
            uint8_t q0 = (uint8_t)(a < 15 ? a : 15);
            uint8_t q1 = (uint8_t)(c < 15 ? c : 15);
            y[4 + j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* 5-bit values q[0..31] of Q5_0/Q5_1: low nibbles as Q4's (j low, j+16 high nibble of qs[j]),
 * bit 4 of q[j] in bit j of the little-endian qh. */
static void pack_q5(const uint8_t *q, uint8_t *qh_bytes, uint8_t *qs) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4));
        qh |= (uint32_t)((q[j] >> 4) & 1) << j;
        qh |= (uint32_t)((q[j + 16] >> 4) & 1) << (j + 16);
    }
    for (int i = 0; i < 4; i++) qh_bytes[i] = (uint8_t)(qh >> (8 * i));
}

/* Q5_0 { fp16 d; uint8 qh[4]; uint8 qs[16] }. */
void akq_row_q5_0(const float *x, uint8_t *y, int64_t k) {
    for (int64_t b = 0; b < k / 32; b++, x += 32, y += 22) {
        const float id = symmetric_header(x, 16, y);
        uint8_t q[32];
        for (int j = 0; j < 32; j++) {
            const int8_t v = (int8_t)akq_trunc(x[j] * id + 16.5f);
            q[j] = (uint8_t)(v < 31 ? v : 31);
        }
        pack_q5(q, y + 2, y + 6);
    }
}

/* Q5_1 { fp16 d; fp16 m; uint8 qh[4]; uint8 qs[16] }. */
void akq_row_q5_1(const float *x, uint8_t *y, int64_t k) {
    for (int64_t b = 0; b < k / 32; b++, x += 32, y += 24) {
        float lo;
        const float id = affine_header(x, 31, y, &lo);
        uint8_t q[32];
        for (int j = 0; j < 32; j++) q[j] = (uint8_t)akq_trunc((x[j] - lo) * id + 0.5f);
        pack_q5(q, y + 4, y + 8);
    }
}

/* Q8_0 { fp16 d; int8 qs[32] }. */
void akq_row_q8_0(const float *x, uint8_t *y, int64_t k) {
    for (int64_t b = 0; b < k / 32; b++, x += 32, y += 34) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) {
            const float a = fabsf(x[j]);
            amax = amax > a ? amax : a; /* ggml's MAX(): a NaN |x| replaces amax */
        }
        const float d = amax / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        akq_put_f16(y, d);
        for (int j = 0; j < 32; j++) y[2 + j] = (uint8_t)(int8_t)akq_trunc(roundf(x[j] * id));
    }
}

/* The E2M1 values doubled (ggml's kvalues_mxfp4): index = sign << 3 | magnitude code. */
static const int8_t mxfp4_values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

static inline int mxfp4_nearest(float x, float half_scale) {
    int best = 0;
    float best_err = fabsf(mxfp4_values[0] * half_scale - x);
    for (int i = 1; i < 16; i++) {
        const float err = fabsf(mxfp4_values[i] * half_scale - x);
        if (err < best_err) {
            best = i;
            best_err = err;
        }
    }
    return best;
}

/* E8M0 exponent e as a float, halved: 2^(e-128) (subnormal for e < 2). */
static inline float e8m0_half(uint8_t e) {
    uint32_t bits = e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* MXFP4 { uint8 e; uint8 qs[16] }: element j low nibble of qs[j], j+16 high nibble. */
void akq_row_mxfp4(const float *x, uint8_t *y, int64_t k) {
    for (int64_t b = 0; b < k / 32; b++, x += 32, y += 17) {
        float amax;
        (void)akq_abs_peak(x, 32, &amax);
        const uint8_t e = amax > 0.0f ? (uint8_t)akq_trunc(floorf(log2f(amax)) - 2 + 127) : 0;
        const float d = e8m0_half(e);
        y[0] = e;
        for (int j = 0; j < 16; j++) {
            const int q0 = mxfp4_nearest(x[j], d);
            const int q1 = mxfp4_nearest(x[j + 16], d);
            y[1 + j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* F16 rows (the fallback when a row fits no 32-element block). */
void akq_row_f16(const float *x, uint8_t *y, int64_t k) {
    for (int64_t i = 0; i < k; i++) akq_put_f16(y + 2 * i, x[i]);
}

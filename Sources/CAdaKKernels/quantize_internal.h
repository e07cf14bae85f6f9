/* Helpers shared by the quantize_*.c files (not part of any header). Every quantiser follows
 * ggml-quants.c's float operations in order: no FMA contraction (see the pragma in each file),
 * C's float/int conversions as GCC emits them on x86-64 (cvttss2si). */
#ifndef AKQ_INTERNAL_H
#define AKQ_INTERNAL_H
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "adak_kernels.h"
#include "adak_quantize.h"

/* Rounds to nearest (ties to even) through the 1.5*2^23 trick, as ggml's nearest_int; valid for
 * |x| <= 2^22 (larger values give what ggml's gives: the low mantissa bits). */
static inline int akq_nearest_int(float x) {
    float v = x + 12582912.f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

/* float -> int32 truncation as x86's cvttss2si: NaN and out-of-range give INT32_MIN. ggml's
 * (int8_t)/(uint8_t) casts of floats compile to this followed by keeping the low byte. */
static inline int32_t akq_trunc(float x) {
    if (!(x > -2147483904.0f && x < 2147483648.0f)) return INT32_MIN;
    return (int32_t)x;
}

static inline void akq_put_f16(uint8_t *p, float f) {
    uint16_t h = akk_fp32_to_fp16(f);
    memcpy(p, &h, 2);
}

static inline float akq_get_f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return akk_fp16_to_fp32(h);
}

#define AKQ_GROUP_MAX_EPS 1e-15f

/* The value of largest |x| (the first one on ties; NaNs never win) and, in *amax, its |x|. */
static inline float akq_abs_peak(const float *x, int n, float *amax) {
    float a = 0, peak = 0;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > a) {
            a = ax;
            peak = x[i];
        }
    }
    *amax = a;
    return peak;
}

/* Row quantisers: k elements (a multiple of the block) from x into y. */
void akq_row_q4_0(const float *x, uint8_t *y, int64_t k);
void akq_row_q4_1(const float *x, uint8_t *y, int64_t k);
void akq_row_q5_0(const float *x, uint8_t *y, int64_t k);
void akq_row_q5_1(const float *x, uint8_t *y, int64_t k);
void akq_row_q8_0(const float *x, uint8_t *y, int64_t k);
void akq_row_mxfp4(const float *x, uint8_t *y, int64_t k);
void akq_row_f16(const float *x, uint8_t *y, int64_t k);
void akq_row_q2_k(const float *x, uint8_t *y, int64_t k);
void akq_row_q3_k(const float *x, uint8_t *y, int64_t k);
void akq_row_q4_k(const float *x, uint8_t *y, int64_t k);
void akq_row_q5_k(const float *x, uint8_t *y, int64_t k);
void akq_row_q6_k(const float *x, uint8_t *y, int64_t k);
void akq_row_iq4_nl(const float *x, uint8_t *y, int64_t k);
void akq_row_iq4_xs(const float *x, uint8_t *y, int64_t k);

#endif

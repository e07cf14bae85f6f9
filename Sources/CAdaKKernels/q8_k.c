/*
 * Q8_K activations { float d; int8 qs[256]; int16 bsums[16]; } (292 bytes per 256 elements),
 * the vec-dot type of IQ4_XS (and of the K-quants).
 *
 * llama.cpp's x86 build quantises Q8_K with its reference rule (quantize_row_q8_K_ref, compiled in
 * ggml-base without FMA): max = the element of largest magnitude (first one on ties),
 * iscale = -127/max, q = min(127, nearest_int(iscale * x)) with nearest_int(v) the low mantissa
 * bits of v + 1.5*2^23 (round half to even; defined for any float, NaN included), d = 1/iscale,
 * bsums = sums of 16 quants. An all-zero block gets d = 0 and zero quants (and zero bsums here).
 *
 * NOTE for the merge: the K-quant helper (branch kquant) owns this quantiser; this file is the
 * IQ4_XS branch's copy, kept separate so one of the two can be dropped.
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include <math.h>
#include <string.h>

static inline int nearest_int(float v) {
    const float f = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &f, 4);
    return (i & 0x007fffff) - 0x00400000;
}

void akk_quantize_row_q8_K(const float *x, void *y, int64_t n) {
    uint8_t *p = (uint8_t *)y;
    for (int64_t b = 0; b < n / 256; b++, x += 256, p += 292) {
        float max = 0.0f, amax = 0.0f;
        for (int j = 0; j < 256; j++) {
            const float a = fabsf(x[j]);
            if (a > amax) { amax = a; max = x[j]; }
        }
        int8_t *qs = (int8_t *)(p + 4);
        int16_t bsums[16] = {0};
        float d = 0.0f;
        if (amax != 0.0f) {
            const float iscale = -127.0f / max;
            for (int j = 0; j < 256; j++) {
                const int v = nearest_int(iscale * x[j]);
                qs[j] = (int8_t)(v < 127 ? v : 127);
                bsums[j / 16] = (int16_t)(bsums[j / 16] + qs[j]);
            }
            d = 1.0f / iscale;
        } else {
            memset(qs, 0, 256);
        }
        memcpy(p, &d, 4);
        memcpy(p + 260, bsums, 32);
    }
}

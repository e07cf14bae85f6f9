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

/* Scale search of one block of 32 (see the top); L gets the indices of the first trial. */
static float iq4_block_scale(const float *xb, uint8_t *L) {
    float w[32];
    for (int j = 0; j < 32; j++) w[j] = xb[j] * xb[j];
    float amax = 0, peak = 0;
    for (int j = 0; j < 32; j++) {
        const float ax = fabsf(xb[j]);
        if (ax > amax) {
            amax = ax;
            peak = xb[j];
        }
    }
    if (amax < AKQ_GROUP_MAX_EPS) return 0;
    float d = -peak / iq4_values[0];
    float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < 32; j++) {
        const int l = iq4_nearest(id * xb[j]);
        L[j] = (uint8_t)l;
        const float q = iq4_values[l];
        sumqx += w[j] * q * xb[j];
        sumq2 += w[j] * q * q;
    }
    d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
    float best = d * sumqx;
    for (int t = -7; t <= 7; t++) {
        id = (t + iq4_values[0]) / peak;
        sumqx = sumq2 = 0;
        for (int j = 0; j < 32; j++) {
            const float q = iq4_values[iq4_nearest(id * xb[j])];
            sumqx += w[j] * q * xb[j];
            sumq2 += w[j] * q * q;
        }
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            d = sumqx / sumq2;
            best = d * sumqx;
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
        const float d = iq4_block_scale(x, L);
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
        float max_scale = 0, amax_scale = 0;
        for (int ib = 0; ib < 8; ib++) {
            scales[ib] = iq4_block_scale(x + 32 * ib, L + 32 * ib);
            const float a = fabsf(scales[ib]);
            if (a > amax_scale) {
                amax_scale = a;
                max_scale = scales[ib];
            }
        }
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

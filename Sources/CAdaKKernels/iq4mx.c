/*
 * IQ4_NL, IQ4_XS and MXFP4: dequantisation and the scalar reference dot products.
 *
 * Layouts (ggml-common.h, byte-compatible with GGUF):
 *   IQ4_NL  { fp16 d; uint8 qs[16]; }                       32 elements, 18 bytes
 *           x = d * kv[nibble]; low nibbles are elements 0..15, high nibbles 16..31 (as Q4_0)
 *   IQ4_XS  { fp16 d; uint16 scales_h; uint8 scales_l[4]; uint8 qs[128]; }   256 elements, 136 bytes
 *           8 sub-blocks of 32; sub-block ib has the 6-bit scale
 *           ls = (4 bits of scales_l[ib/2] at 4*(ib%2)) | (2 bits of scales_h at 2*ib) << 4,
 *           x = d * (ls - 32) * kv[nibble], nibbles of qs[16*ib..16*ib+15] as IQ4_NL
 *   MXFP4   { uint8 e; uint8 qs[16]; }                       32 elements, 17 bytes
 *           x = e8m0_half(e) * fp4x2[nibble], nibble order as IQ4_NL
 * kv is IQ4_NL's non-linear grid; fp4x2 the E2M1 values doubled (so they are integers), whence
 * the scale e8m0_half(e) = 2^(e-128) (2^-128 and 2^-127 as subnormals for e = 0, 1; e = 255
 * gives 2^127: no scale is NaN or infinite, though products may overflow to inf).
 *
 * Dot products (llama.cpp's x86 AVX2 ggml_vec_dot_{iq4_nl_q8_0, mxfp4_q8_0, iq4_xs_q8_K}); lane l
 * of a block of 32 is the exact integer sum of the products of elements 4l..4l+3:
 *   IQ4_NL . Q8_0, MXFP4 . Q8_0: two 8-lane accumulators, even blocks into a, odd into b:
 *     a[l] = fma(d_x * d_w, (float)lane_l, a[l]) (d_x * d_w rounded to float first);
 *     sum = hsum8(a + b lane-wise); an odd last block adds d * (float)block_sum (rounded, then
 *     added: no fma, as llama.cpp's kernels.bin shows).
 *   IQ4_XS . Q8_K: per super-block the lanes sum ls_ib * lane over the 8 sub-blocks (exact
 *     integers), then acc[l] = fma(d_w * d_x, (float)lane_l, acc[l]); result hsum8(acc).
 *   IQ4_NL_X8, MXFP4_X8 (the same bytes; llama.cpp's repacked 8-row kernels, which it uses for
 *     matrices with a multiple of 8 rows): acc = fma((float)block_sum, d_w * d_x, acc) per block.
 * The SIMD kernels (simd_avx2_iq4mx.c) perform exactly these float operations; activation quants
 * must lie in [-127, 127] (true for akk_quantize_row_q8_0 and akk_quantize_row_q8_K).
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include <math.h>
#include <string.h>

const int8_t akk_kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
const int8_t akk_kvalues_mxfp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

/* 32 elements of 16 packed bytes through a 16-entry table, times d. */
static void dequant32(const uint8_t *qs, const int8_t *kv, float d, float *y) {
    for (int j = 0; j < 16; j++) {
        y[j] = d * kv[qs[j] & 0xf];
        y[j + 16] = d * kv[qs[j] >> 4];
    }
}

int akk_dequantize_row_iq4mx(int type, const void *src, float *dst, int64_t n) {
    const uint8_t *p = (const uint8_t *)src;
    switch (type) {
    case AKK_IQ4_NL: case AKK_IQ4_NL_X8:
        for (int64_t b = 0; b < n / 32; b++, p += 18) dequant32(p + 2, akk_kvalues_iq4nl, akk_fp16_to_fp32(akk_load_u16(p)), dst + 32 * b);
        return 0;
    case AKK_MXFP4: case AKK_MXFP4_X8:
        for (int64_t b = 0; b < n / 32; b++, p += 17) dequant32(p + 1, akk_kvalues_mxfp4, akk_e8m0_to_fp32_half(p[0]), dst + 32 * b);
        return 0;
    case AKK_IQ4_XS:
        for (int64_t b = 0; b < n / 256; b++, p += 136) {
            const float d = akk_fp16_to_fp32(akk_load_u16(p));
            for (int ib = 0; ib < 8; ib++)
                dequant32(p + 8 + 16 * ib, akk_kvalues_iq4nl, d * (float)akk_iq4_xs_scale(p, ib), dst + 256 * b + 32 * ib);
        }
        return 0;
    default:
        return -1;
    }
}

/* Lane l (elements 4l..4l+3) of one block of 32: table values of the nibbles times the quants. */
static inline int lane4(const uint8_t *qs, const int8_t *kv, const int8_t *q, int l) {
    int s = 0;
    for (int j = 4 * l; j < 4 * l + 4; j++) s += kv[j < 16 ? qs[j] & 0xf : qs[j - 16] >> 4] * q[j];
    return s;
}

/* IQ4_NL and MXFP4 against Q8_0 { fp16 d; int8 qs[32] }; wbs: weight block bytes (18 or 17). */
static float dot_nl_q8_0(int64_t n, const uint8_t *w, const uint8_t *x, int mx) {
    const int wbs = mx ? 17 : 18, qoff = mx ? 1 : 2;
    const int8_t *kv = mx ? akk_kvalues_mxfp4 : akk_kvalues_iq4nl;
    const int64_t nb = n / 32;
    float acc[2][8] = {{0}};
    int64_t b = 0;
    for (; b + 1 < nb; b += 2)
        for (int k = 0; k < 2; k++) {
            const uint8_t *wb = w + (b + k) * wbs, *xb = x + (b + k) * 34;
            const float d = akk_fp16_to_fp32(akk_load_u16(xb)) * (mx ? akk_e8m0_to_fp32_half(wb[0]) : akk_fp16_to_fp32(akk_load_u16(wb)));
            for (int l = 0; l < 8; l++) acc[k][l] = fmaf(d, (float)lane4(wb + qoff, kv, (const int8_t *)(xb + 2), l), acc[k][l]);
        }
    float s8[8];
    for (int l = 0; l < 8; l++) s8[l] = acc[0][l] + acc[1][l];
    float sum = akk_hsum8_ref(s8);
    if (b < nb) {
        const uint8_t *wb = w + b * wbs, *xb = x + b * 34;
        const float d = akk_fp16_to_fp32(akk_load_u16(xb)) * (mx ? akk_e8m0_to_fp32_half(wb[0]) : akk_fp16_to_fp32(akk_load_u16(wb)));
        int s = 0;
        for (int l = 0; l < 8; l++) s += lane4(wb + qoff, kv, (const int8_t *)(xb + 2), l);
        sum = sum + d * (float)s; /* not fused: llama.cpp's build does not contract this one */
    }
    return sum;
}

/* The _X8 views: acc = fma((float)block_sum, d_w * d_x, acc) block after block. */
static float dot_x8_q8_0(int64_t n, const uint8_t *w, const uint8_t *x, int mx) {
    const int wbs = mx ? 17 : 18, qoff = mx ? 1 : 2;
    const int8_t *kv = mx ? akk_kvalues_mxfp4 : akk_kvalues_iq4nl;
    float acc = 0.0f;
    for (int64_t b = 0; b < n / 32; b++, w += wbs, x += 34) {
        const float d = (mx ? akk_e8m0_to_fp32_half(w[0]) : akk_fp16_to_fp32(akk_load_u16(w))) * akk_fp16_to_fp32(akk_load_u16(x));
        int s = 0;
        for (int l = 0; l < 8; l++) s += lane4(w + qoff, kv, (const int8_t *)(x + 2), l);
        acc = fmaf((float)s, d, acc);
    }
    return acc;
}

/* IQ4_XS against Q8_K { float d; int8 qs[256]; int16 bsums[16] }. */
static float dot_iq4_xs_q8_K(int64_t n, const uint8_t *w, const uint8_t *x) {
    float acc[8] = {0};
    for (int64_t b = 0; b < n / 256; b++, w += 136, x += 292) {
        int lanes[8] = {0};
        for (int ib = 0; ib < 8; ib++) {
            const int ls = akk_iq4_xs_scale(w, ib);
            for (int l = 0; l < 8; l++) lanes[l] += ls * lane4(w + 8 + 16 * ib, akk_kvalues_iq4nl, (const int8_t *)(x + 4 + 32 * ib), l);
        }
        float dx;
        memcpy(&dx, x, 4);
        const float d = akk_fp16_to_fp32(akk_load_u16(w)) * dx;
        for (int l = 0; l < 8; l++) acc[l] = fmaf(d, (float)lanes[l], acc[l]);
    }
    return akk_hsum8_ref(acc);
}

float akk_vec_dot_iq4mx_scalar(int wtype, int64_t n, const void *w, const void *x) {
    switch (wtype) {
    case AKK_IQ4_NL: return dot_nl_q8_0(n, (const uint8_t *)w, (const uint8_t *)x, 0);
    case AKK_MXFP4: return dot_nl_q8_0(n, (const uint8_t *)w, (const uint8_t *)x, 1);
    case AKK_IQ4_XS: return dot_iq4_xs_q8_K(n, (const uint8_t *)w, (const uint8_t *)x);
    case AKK_IQ4_NL_X8: return dot_x8_q8_0(n, (const uint8_t *)w, (const uint8_t *)x, 0);
    case AKK_MXFP4_X8: return dot_x8_q8_0(n, (const uint8_t *)w, (const uint8_t *)x, 1);
    default: return 0.0f;
    }
}

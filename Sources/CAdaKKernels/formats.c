/* Block formats, fp16/bf16 conversion, dequantisation (scalar). See adak_kernels.h.
 *
 * fp16 conversion is IEEE round-to-nearest-even, bit-identical to x86 F16C (_cvtss_sh(x, 0), which
 * is what llama.cpp's GGML_CPU_FP32_TO_FP16 uses on x86), including NaN payloads. */
#include "adak_kernels.h"
#include "akk_internal.h"
#include <math.h>
#include <string.h>

float akk_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while ((man & 0x400) == 0) { man <<= 1; exp--; }
            man &= 0x3ff;
            bits = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) { /* inf, or NaN made quiet with its payload kept (as F16C's vcvtph2ps) */
        bits = sign | 0x7f800000u | (man << 13) | (man != 0 ? 0x00400000u : 0);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t akk_fp32_to_fp16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) { /* inf, or NaN: quiet, top payload bits kept (as F16C's vcvtps2ph) */
        return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 | ((absx >> 13) & 0x3ff) : 0));
    }
    if (absx >= 0x477ff000u) { /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00);
    }
    if (absx < 0x38800000u) { /* below smallest normal half: subnormal or zero */
        if (absx < 0x33000000u) return (uint16_t)sign; /* < 2^-25 rounds to 0 */
        uint32_t e = absx >> 23;
        uint32_t m = (absx & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* 14 + (113 - e) */
        uint32_t half = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t e = (absx >> 23) - 127 + 15;
    uint32_t m = absx & 0x7fffff;
    uint32_t h = (e << 10) | (m >> 13);
    uint32_t rem = m & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* carry may bump exponent: correct */
    return (uint16_t)(sign | h);
}

float akk_bf16_to_fp32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

int64_t akk_block_elems(int type) {
    switch (type) {
    case AKK_F32: case AKK_F16: case AKK_BF16: return 1;
    case AKK_Q4_0: case AKK_Q4_0_R8: case AKK_Q4_1: case AKK_Q5_0: case AKK_Q5_1: case AKK_Q8_0: case AKK_Q8_1: return AKK_QK;
    case AKK_IQ4_NL: case AKK_MXFP4: case AKK_IQ4_NL_X8: case AKK_MXFP4_X8: return AKK_QK;
    case AKK_IQ4_NL_R8: case AKK_MXFP4_R8: return AKK_QK;
    case AKK_IQ4_XS: case AKK_IQ4_XS_R16: return AKK_QK_K;
    case AKK_Q2_K: case AKK_Q3_K: case AKK_Q4_K: case AKK_Q5_K: case AKK_Q6_K: case AKK_Q8_K: return AKK_QK_K;
    case AKK_Q4_K_R8: case AKK_Q4_K_R8_DENSE: return AKK_QK_K;
    default: return 0;
    }
}

int64_t akk_block_bytes(int type) {
    switch (type) {
    case AKK_F32: return 4;
    case AKK_F16: case AKK_BF16: return 2;
    case AKK_Q4_0: case AKK_Q4_0_R8: return 2 + 16;
    case AKK_Q4_1: return 4 + 16;
    case AKK_Q5_0: return 2 + 4 + 16;
    case AKK_Q5_1: return 4 + 4 + 16;
    case AKK_Q8_0: return 2 + 32;
    case AKK_Q8_1: return 4 + 32;
    case AKK_Q2_K: return 16 + 64 + 2 + 2;
    case AKK_Q3_K: return 32 + 64 + 12 + 2;
    case AKK_Q4_K: case AKK_Q4_K_R8: case AKK_Q4_K_R8_DENSE: return 2 + 2 + 12 + 128;
    case AKK_Q5_K: return 2 + 2 + 12 + 32 + 128;
    case AKK_Q6_K: return 128 + 64 + 16 + 2;
    case AKK_Q8_K: return 4 + 256 + 32;
    case AKK_IQ4_NL: case AKK_IQ4_NL_X8: case AKK_IQ4_NL_R8: return 2 + 16;
    case AKK_IQ4_XS: case AKK_IQ4_XS_R16: return 2 + 2 + 4 + 128;
    case AKK_MXFP4: case AKK_MXFP4_X8: case AKK_MXFP4_R8: return 1 + 16;
    default: return 0;
    }
}

int64_t akk_row_bytes(int type, int64_t n) {
    int64_t be = akk_block_elems(type);
    if (be <= 0 || n < 0 || n % be != 0) return 0;
    return (n / be) * akk_block_bytes(type);
}

const char *akk_type_name(int type) {
    switch (type) {
    case AKK_F32: return "f32";
    case AKK_F16: return "f16";
    case AKK_BF16: return "bf16";
    case AKK_Q4_0: return "q4_0";
    case AKK_Q4_0_R8: return "q4_0_r8";
    case AKK_Q4_1: return "q4_1";
    case AKK_Q5_0: return "q5_0";
    case AKK_Q5_1: return "q5_1";
    case AKK_Q8_0: return "q8_0";
    case AKK_Q8_1: return "q8_1";
    case AKK_Q2_K: return "q2_k";
    case AKK_Q3_K: return "q3_k";
    case AKK_Q4_K: return "q4_k";
    case AKK_Q5_K: return "q5_k";
    case AKK_Q6_K: return "q6_k";
    case AKK_Q8_K: return "q8_k";
    case AKK_IQ4_NL: return "iq4_nl";
    case AKK_IQ4_XS: return "iq4_xs";
    case AKK_MXFP4: return "mxfp4";
    case AKK_IQ4_NL_X8: return "iq4_nl_x8";
    case AKK_MXFP4_X8: return "mxfp4_x8";
    case AKK_Q4_K_R8: return "q4_k_r8";
    case AKK_IQ4_NL_R8: return "iq4_nl_r8";
    case AKK_MXFP4_R8: return "mxfp4_r8";
    case AKK_IQ4_XS_R16: return "iq4_xs_r16";
    case AKK_Q4_K_R8_DENSE: return "q4_k_r8_dense";
    default: return "unknown";
    }
}

int akk_dequantize_row(int type, const void *src, float *dst, int64_t n) {
    const uint8_t *p = (const uint8_t *)src;
    int64_t be = akk_block_elems(type);
    if (be <= 0 || n % be != 0) return -1;
    int64_t nb = n / be;
    switch (type) {
    case AKK_F32:
        memcpy(dst, src, (size_t)n * 4);
        return 0;
    case AKK_F16:
        if (((uintptr_t)src & 1) == 0) { /* F16C when available; same values as the scalar loop */
            akk_fp16_to_fp32_row((const uint16_t *)src, dst, n);
            return 0;
        }
        for (int64_t i = 0; i < n; i++) dst[i] = akk_fp16_to_fp32(akk_load_u16(p + 2 * i));
        return 0;
    case AKK_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = akk_bf16_to_fp32(akk_load_u16(p + 2 * i));
        return 0;
    case AKK_Q8_0:
        for (int64_t b = 0; b < nb; b++, p += 34) {
            float d = akk_fp16_to_fp32(akk_load_u16(p));
            const int8_t *q = (const int8_t *)(p + 2);
            for (int j = 0; j < 32; j++) dst[b * 32 + j] = d * q[j];
        }
        return 0;
    case AKK_Q4_0:
        for (int64_t b = 0; b < nb; b++, p += 18) {
            float d = akk_fp16_to_fp32(akk_load_u16(p));
            const uint8_t *q = p + 2;
            for (int j = 0; j < 16; j++) {
                dst[b * 32 + j] = d * (float)((q[j] & 0x0f) - 8);
                dst[b * 32 + j + 16] = d * (float)((q[j] >> 4) - 8);
            }
        }
        return 0;
    case AKK_Q4_1:
        for (int64_t b = 0; b < nb; b++, p += 20) {
            float d = akk_fp16_to_fp32(akk_load_u16(p));
            float m = akk_fp16_to_fp32(akk_load_u16(p + 2));
            const uint8_t *q = p + 4;
            for (int j = 0; j < 16; j++) {
                dst[b * 32 + j] = d * (float)(q[j] & 0x0f) + m;
                dst[b * 32 + j + 16] = d * (float)(q[j] >> 4) + m;
            }
        }
        return 0;
    case AKK_IQ4_NL: case AKK_IQ4_XS: case AKK_MXFP4: case AKK_IQ4_NL_X8: case AKK_MXFP4_X8:
        return akk_dequantize_row_iq4mx(type, src, dst, n);
    default:
        return akk_dequantize_row_k(type, src, dst, n);
    }
}

/*
 * Dequantisation of GGML's 5-bit legacy formats and K-quant super-blocks (scalar).
 * Layouts are GGUF's (ggml-common.h); the float operations are those of ggml's dequantize_row_*
 * and gguf-py (scale products first, e.g. (d*sc)*q - dmin*m, no fused multiply-add), so results
 * are bit-identical to both.
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"


/* Q5_0 { fp16 d; uint8 qh[4]; uint8 qs[16] } (22 bytes): element j < 16 = low nibble of qs[j] |
 * bit j of qh (as bit 4); element j+16 = high nibble of qs[j] | bit j+16 of qh; x = d*(q - 16). */
static void dequant_q5_0(const uint8_t *p, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, p += 22, y += 32) {
        const float d = akk_load_f16(p);
        const uint32_t qh = (uint32_t)p[2] | (uint32_t)p[3] << 8 | (uint32_t)p[4] << 16 | (uint32_t)p[5] << 24;
        const uint8_t *qs = p + 6;
        for (int j = 0; j < 16; j++) {
            const int lo = (qs[j] & 0x0f) | (int)((qh >> j) & 1) << 4;
            const int hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = d * (float)(lo - 16);
            y[j + 16] = d * (float)(hi - 16);
        }
    }
}

/* Q5_1 { fp16 d; fp16 m; uint8 qh[4]; uint8 qs[16] } (24 bytes): as Q5_0 unsigned, x = d*q + m. */
static void dequant_q5_1(const uint8_t *p, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, p += 24, y += 32) {
        const float d = akk_load_f16(p), m = akk_load_f16(p + 2);
        const uint32_t qh = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        const uint8_t *qs = p + 8;
        for (int j = 0; j < 16; j++) {
            const int lo = (qs[j] & 0x0f) | (int)((qh >> j) & 1) << 4;
            const int hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = d * (float)lo + m;
            y[j + 16] = d * (float)hi + m;
        }
    }
}

/* Q2_K { uint8 scales[16]; uint8 qs[64]; fp16 d; fp16 dmin } (84 bytes). 16 sub-blocks of 16:
 * scales[i] low nibble = scale, high nibble = min. Each 128-element half uses 32 bytes of qs; within
 * a half, shift s = 0,2,4,6 selects 2-bit fields for elements 32*(s/2) .. +31 (bytes 0..15 for the
 * first 16, 16..31 for the next). x = (d*sc)*q - dmin*m. */
static void dequant_q2_k(const uint8_t *p, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, p += 84) {
        const uint8_t *sc = p, *q = p + 16;
        const float d = akk_load_f16(p + 80), dmin = akk_load_f16(p + 82);
        int is = 0;
        for (int half = 0; half < 2; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int k = 0; k < 2; k++) {
                    const float dl = d * (float)(sc[is] & 0x0f), ml = dmin * (float)(sc[is] >> 4);
                    is++;
                    for (int l = 0; l < 16; l++) *y++ = dl * (float)((q[16 * k + l] >> shift) & 3) - ml;
                }
            }
        }
    }
}

/* Q3_K { uint8 hmask[32]; uint8 qs[64]; uint8 scales[12]; fp16 d } (110 bytes). 16 6-bit signed
 * scales (minus 32): low 4 bits from bytes 0..7 (low nibbles give scales 0..7, high nibbles 8..15),
 * high 2 bits from bytes 8..11 (byte 8+i, bits 2k..2k+1 -> scale i + 4k). Quants as Q2_K, minus 4
 * when the element's hmask bit is clear (bit j of hmask[l] for the j-th group of 32). x = (d*sc)*q. */
static void dequant_q3_k(const uint8_t *p, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, p += 110) {
        const uint8_t *hm = p, *q = p + 32, *s = p + 96;
        const float d = akk_load_f16(p + 108);
        int sc[16];
        for (int i = 0; i < 16; i++) {
            const int lo = i < 8 ? (s[i] & 0x0f) : (s[i - 8] >> 4);
            const int hi = (s[8 + (i & 3)] >> (2 * (i >> 2))) & 3;
            sc[i] = (lo | hi << 4) - 32;
        }
        int is = 0, bit = 0;
        for (int half = 0; half < 2; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, bit++) {
                for (int k = 0; k < 2; k++) {
                    const float dl = d * (float)sc[is++];
                    for (int l = 0; l < 16; l++) {
                        const int j = 16 * k + l;
                        const int v = ((q[j] >> shift) & 3) - ((hm[j] >> bit) & 1 ? 0 : 4);
                        *y++ = dl * (float)v;
                    }
                }
            }
        }
    }
}

/* 6-bit scale and min j (0..7) of Q4_K/Q5_K's 12 packed bytes (GGML's get_scale_min_k4):
 * j < 4: sc = q[j] & 63, m = q[j+4] & 63; else sc = (q[j+4] & 15) | (q[j-4] >> 6) << 4,
 * m = (q[j+4] >> 4) | (q[j] >> 6) << 4. */
static inline void scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Q4_K { fp16 d; fp16 dmin; uint8 scales[12]; uint8 qs[128] } (144 bytes). 8 sub-blocks of 32;
 * each 32 bytes of qs hold sub-block 2i (low nibbles) and 2i+1 (high nibbles). x = (d*sc)*q - dmin*m. */
static void dequant_q4_k(const uint8_t *p, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, p += 144) {
        const float d = akk_load_f16(p), dmin = akk_load_f16(p + 2);
        const uint8_t *s = p + 4, *q = p + 16;
        for (int i = 0; i < 4; i++, q += 32) {
            int sc, m;
            scale_min_k4(2 * i, s, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            scale_min_k4(2 * i + 1, s, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0x0f) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

/* Q5_K { fp16 d; fp16 dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128] } (176 bytes): as Q4_K
 * with bit 4 of element l of sub-block k taken from bit k of qh[l]. */
static void dequant_q5_k(const uint8_t *p, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, p += 176) {
        const float d = akk_load_f16(p), dmin = akk_load_f16(p + 2);
        const uint8_t *s = p + 4, *qh = p + 16, *q = p + 48;
        for (int i = 0; i < 4; i++, q += 32) {
            int sc, m;
            scale_min_k4(2 * i, s, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            scale_min_k4(2 * i + 1, s, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (float)((q[l] & 0x0f) | ((qh[l] >> (2 * i)) & 1) << 4) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (float)((q[l] >> 4) | ((qh[l] >> (2 * i + 1)) & 1) << 4) - m2;
        }
    }
}

/* Q6_K { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; fp16 d } (210 bytes). Per 128-element half
 * (ql += 64, qh += 32, scales += 8): for l < 32, elements l, l+32, l+64, l+96 take
 * ql[l] low, ql[l+32] low, ql[l] high, ql[l+32] high nibbles with 2 high bits from qh[l] bits 0-1,
 * 2-3, 4-5, 6-7; minus 32; scale index l/16 + 0, 2, 4, 6. x = (d*sc)*q. */
static void dequant_q6_k(const uint8_t *p, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, p += 210) {
        const float d = akk_load_f16(p + 208);
        const uint8_t *ql = p, *qh = p + 128;
        const int8_t *sc = (const int8_t *)(p + 192);
        for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, y += 128) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0x0f) | ((qh[l] >> 0) & 3) << 4) - 32;
                const int q2 = ((ql[l + 32] & 0x0f) | ((qh[l] >> 2) & 3) << 4) - 32;
                const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                y[l] = (d * (float)sc[is]) * (float)q1;
                y[l + 32] = (d * (float)sc[is + 2]) * (float)q2;
                y[l + 64] = (d * (float)sc[is + 4]) * (float)q3;
                y[l + 96] = (d * (float)sc[is + 6]) * (float)q4;
            }
        }
    }
}

int akk_dequantize_row_k(int type, const void *src, float *dst, int64_t n) {
    const uint8_t *p = (const uint8_t *)src;
    switch (type) {
    case AKK_Q5_0: dequant_q5_0(p, dst, n / 32); return 0;
    case AKK_Q5_1: dequant_q5_1(p, dst, n / 32); return 0;
    case AKK_Q2_K: dequant_q2_k(p, dst, n / 256); return 0;
    case AKK_Q3_K: dequant_q3_k(p, dst, n / 256); return 0;
    case AKK_Q4_K: dequant_q4_k(p, dst, n / 256); return 0;
    case AKK_Q5_K: dequant_q5_k(p, dst, n / 256); return 0;
    case AKK_Q6_K: dequant_q6_k(p, dst, n / 256); return 0;
    default: return -1;
    }
}

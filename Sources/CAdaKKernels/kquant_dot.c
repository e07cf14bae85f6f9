/*
 * Native dot products of Q5_0, Q5_1 and the K-quants (Q2_K..Q6_K) with their activation formats,
 * and the Q8_K activation quantiser. Scalar references: they define the exact float results, and
 * the AVX2 kernels (simd_avx2_kquant.c) perform the same float operations in the same order.
 *
 * Both follow llama.cpp's x86 CPU path (ggml-cpu/arch/x86/quants.c, AVX2 branches, and
 * ggml-quants.c's quantize_row_q8_K_ref, which x86 uses as is), read for the facts below:
 *
 *  - Q8_K { float d; int8 qs[256]; int16 bsums[16] } (292 bytes), per super-block of 256:
 *    max = the first element of largest |x| (signed); all zero -> d = 0, quants 0.
 *    iscale = -127/max, q = min(127, nearest(iscale*x)) with nearest(v) = the low 23 bits of
 *    (v + 12582912) minus 2^22 (round half to even; NaN -> 0), stored as int8; bsums[j] = sum of
 *    quants 16j..16j+15; d = 1/iscale. No fused multiply-add (ggml-base is built without -mfma).
 *  - Every K-quant dot keeps an 8-lane float accumulator; per super-block an exact int32 per lane
 *    is formed, converted to float and added with acc[l] = fma(d, lane, acc[l]) where
 *    d = d_x(Q8_K float) * d_w(fp16) rounded to float; the row result is hsum8(acc) in the order
 *    ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)). Integer lanes: the super-block's 256 elements go in
 *    32-byte chunks (in chunk order), lane l takes chunk bytes 4l..4l+3 times their sub-block
 *    scale. Specifics per type are next to each function.
 *  - Q5_0.Q8_0 and Q5_1.Q8_1 are Q4_0.Q8_0 and Q4_1.Q8_1 with a fifth bit (quant.c).
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include <math.h>
#include <string.h>



/* ---- Q8_K activations ---- */

/* ggml's nearest_int: exact for |v| <= 2^22; other values (inf, NaN) give defined garbage. */
static inline int nearest_int(float v) {
    float t = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &t, 4);
    return (i & 0x007fffff) - 0x00400000;
}

void akk_quantize_row_q8_K(const float *x, void *y, int64_t n) {
    uint8_t *p = (uint8_t *)y;
    for (int64_t b = 0; b < n / AKK_QK_K; b++, p += 292, x += AKK_QK_K) {
        float max = 0.0f, amax = 0.0f;
        for (int j = 0; j < AKK_QK_K; j++) {
            const float a = fabsf(x[j]);
            if (a > amax) { amax = a; max = x[j]; }
        }
        int8_t *qs = (int8_t *)(p + 4);
        float d = 0.0f;
        if (amax != 0.0f) {
            const float iscale = -127.0f / max;
            for (int j = 0; j < AKK_QK_K; j++) {
                const int v = nearest_int(iscale * x[j]);
                qs[j] = (int8_t)(uint8_t)(v < 127 ? v : 127);
            }
            d = 1.0f / iscale;
        } else {
            memset(qs, 0, AKK_QK_K);
        }
        memcpy(p, &d, 4);
        for (int j = 0; j < 16; j++) {
            int s = 0;
            for (int k = 0; k < 16; k++) s += qs[16 * j + k];
            const int16_t s16 = (int16_t)s;
            memcpy(p + 260 + 2 * j, &s16, 2);
        }
    }
}

static inline int16_t bsum(const uint8_t *x, int j) {
    int16_t s;
    memcpy(&s, x + 260 + 2 * j, 2);
    return s;
}

/* ---- Q5_0 . Q8_0, Q5_1 . Q8_1 (lanes and accumulation as Q4_0 / Q4_1 in quant.c) ---- */

static inline int q5_value(const uint8_t *qh4, const uint8_t *qs, int j) {
    const uint32_t qh = (uint32_t)qh4[0] | (uint32_t)qh4[1] << 8 | (uint32_t)qh4[2] << 16 | (uint32_t)qh4[3] << 24;
    const int nib = j < 16 ? (qs[j] & 0x0f) : (qs[j - 16] >> 4);
    return nib | (int)((qh >> j) & 1) << 4;
}

static float dot_q5_0_q8_0(int64_t n, const uint8_t *w, const uint8_t *x) {
    float acc[8] = {0};
    for (int64_t b = 0; b < n / 32; b++, w += 22, x += 34) {
        const int8_t *qx = (const int8_t *)(x + 2);
        const float d = akk_load_f16(w) * akk_load_f16(x);
        for (int l = 0; l < 8; l++) {
            int s = 0;
            for (int j = 4 * l; j < 4 * l + 4; j++) s += (q5_value(w + 2, w + 6, j) - 16) * qx[j];
            acc[l] = fmaf(d, (float)s, acc[l]);
        }
    }
    return akk_hsum8_ref(acc);
}

static float dot_q5_1_q8_1(int64_t n, const uint8_t *w, const uint8_t *x) {
    float acc[8] = {0}, summs = 0.0f;
    for (int64_t b = 0; b < n / 32; b++, w += 24, x += 36) {
        const int8_t *qx = (const int8_t *)(x + 4);
        summs = fmaf(akk_load_f16(w + 2), akk_load_f16(x + 2), summs);
        const float d = akk_load_f16(w) * akk_load_f16(x);
        for (int l = 0; l < 8; l++) {
            int s = 0;
            for (int j = 4 * l; j < 4 * l + 4; j++) s += q5_value(w + 4, w + 8, j) * qx[j];
            acc[l] = fmaf(d, (float)s, acc[l]);
        }
    }
    return akk_hsum8_ref(acc) + summs;
}

/* ---- K-quants . Q8_K ---- */

/* Lane l of one 32-element chunk c (elements 32c..32c+31 of the super-block): the exact sum of
 * q[e]*x[e] over e = 32c+4l..32c+4l+3, q given per element by the caller. */
static inline int lane4(const int *q, const int8_t *x, int c, int l) {
    const int e = 32 * c + 4 * l;
    return q[e] * x[e] + q[e + 1] * x[e + 1] + q[e + 2] * x[e + 2] + q[e + 3] * x[e + 3];
}

/* Q2_K: quant q in 0..3 (kquants.c's layout), scale sc = scales[s] & 15 per 16 elements,
 * min m = scales[s] >> 4. Lane l: sum over chunks of sc(16-group of the lane's bytes) * lane4.
 * First, per block, the mins: acc[l] = fma(-d_x*dmin_w, m[2l]*bsums[2l] + m[2l+1]*bsums[2l+1],
 * acc[l]); then acc[l] = fma(d_x*d_w, lane, acc[l]). */
static float dot_q2_K(int64_t n, const uint8_t *w, const uint8_t *x) {
    float acc[8] = {0};
    int q[256];
    for (int64_t b = 0; b < n / 256; b++, w += 84, x += 292) {
        const uint8_t *sc = w, *qs = w + 16;
        const int8_t *qx = (const int8_t *)(x + 4);
        const float dx = akk_load_f32(x);
        const float d = dx * akk_load_f16(w + 80), dmin = -dx * akk_load_f16(w + 82);
        for (int l = 0; l < 8; l++) {
            const int m = (sc[2 * l] >> 4) * bsum(x, 2 * l) + (sc[2 * l + 1] >> 4) * bsum(x, 2 * l + 1);
            acc[l] = fmaf(dmin, (float)m, acc[l]);
        }
        for (int e = 0; e < 256; e++) /* element e: half e/128, shift 2*((e%128)/32), byte e%32 */
            q[e] = (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
        for (int l = 0; l < 8; l++) {
            int s = 0;
            for (int c = 0; c < 8; c++) s += (sc[2 * c + l / 4] & 15) * lane4(q, qx, c, l);
            acc[l] = fmaf(d, (float)s, acc[l]);
        }
    }
    return akk_hsum8_ref(acc);
}

/* The 16 signed 6-bit scales of a Q3_K block (kquants.c); shared with the AVX2 file. */
void akk_q3_k_scales(const uint8_t *s, int sc[16]) {
    for (int i = 0; i < 16; i++) {
        const int lo = i < 8 ? (s[i] & 0x0f) : (s[i - 8] >> 4);
        const int hi = (s[8 + (i & 3)] >> (2 * (i >> 2))) & 3;
        sc[i] = (lo | hi << 4) - 32;
    }
}

/* Q3_K: quant (2 low bits as Q2_K) - 4 when the element's hmask bit is clear; 16 signed 6-bit
 * scales (kquants.c). Lanes as Q2_K without mins. */
static float dot_q3_K(int64_t n, const uint8_t *w, const uint8_t *x) {
    float acc[8] = {0};
    int q[256];
    for (int64_t b = 0; b < n / 256; b++, w += 110, x += 292) {
        const uint8_t *hm = w, *qs = w + 32, *s = w + 96;
        const int8_t *qx = (const int8_t *)(x + 4);
        const float d = akk_load_f32(x) * akk_load_f16(w + 108);
        int sc[16];
        akk_q3_k_scales(s, sc);
        for (int e = 0; e < 256; e++) {
            const int c = e / 32, byte = e % 32; /* chunk c: half c/4, shift 2*(c%4), hmask bit c */
            q[e] = ((qs[32 * (c / 4) + byte] >> (2 * (c % 4))) & 3) - ((hm[byte] >> c) & 1 ? 0 : 4);
        }
        for (int l = 0; l < 8; l++) {
            int t = 0;
            for (int c = 0; c < 8; c++) t += sc[2 * c + l / 4] * lane4(q, qx, c, l);
            acc[l] = fmaf(d, (float)t, acc[l]);
        }
    }
    return akk_hsum8_ref(acc);
}

/* 6-bit scales and mins of Q4_K/Q5_K (kquants.c's scale_min_k4); shared with the AVX2 file. */
void akk_k4_scales_mins(const uint8_t *q, int sc[8], int m[8]) {
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            sc[j] = q[j] & 63;
            m[j] = q[j + 4] & 63;
        } else {
            sc[j] = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
            m[j] = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
    }
}

/* Integer lanes of Q4_K/Q5_K: chunk c is sub-block c (scale sc[c]). */
static void lanes_k4(const int *q, const int8_t *qx, const int sc[8], int out[8]) {
    for (int l = 0; l < 8; l++) {
        int s = 0;
        for (int c = 0; c < 8; c++) s += sc[c] * lane4(q, qx, c, l);
        out[l] = s;
    }
}

/* Sum of the mins over 32-element sub-blocks, as 4 int32 lanes: lane k = m[2k]*B[2k] +
 * m[2k+1]*B[2k+1] with B[j] = bsums[2j] + bsums[2j+1]. */
static void mins_k4(const uint8_t *x, const int m[8], int out[4]) {
    for (int k = 0; k < 4; k++)
        out[k] = m[2 * k] * (bsum(x, 4 * k) + bsum(x, 4 * k + 1)) + m[2 * k + 1] * (bsum(x, 4 * k + 2) + bsum(x, 4 * k + 3));
}

/* Q4_K: sub-block c = low nibbles (c even) or high nibbles (c odd) of qs[32*(c/2)..+31].
 * llama.cpp's x86 build repacks Q4_K matrices (rows % 8 == 0, i.e. all in practice) into 8-row
 * groups and multiplies them with its q4_K_8x8 gemv/gemm kernels (arch/x86/repack.cpp, AVX2 and
 * AVX-512 alike), whose float order per output differs from its vec_dot: per super-block the exact
 * integer S = sum_c sc[c]*dot_c and mins M = sum_c m[c]*(bsums[2c]+bsums[2c+1]);
 * acc = fma((float)S, d_w*d_x, acc), accm = fma((float)M, dmin_w*d_x, accm); result acc - accm.
 * We follow that order (the one llama.cpp actually runs). */
static float dot_q4_K(int64_t n, const uint8_t *w, const uint8_t *x) {
    float acc = 0.0f, accm = 0.0f;
    int q[256];
    for (int64_t b = 0; b < n / 256; b++, w += 144, x += 292) {
        const int8_t *qx = (const int8_t *)(x + 4);
        const float dx = akk_load_f32(x);
        int sc[8], m[8], lm[4], li[8];
        akk_k4_scales_mins(w + 4, sc, m);
        mins_k4(x, m, lm);
        for (int e = 0; e < 256; e++) {
            const uint8_t v = w[16 + 32 * (e / 64) + e % 32];
            q[e] = (e / 32) % 2 ? v >> 4 : v & 0x0f;
        }
        lanes_k4(q, qx, sc, li);
        int S = 0;
        for (int l = 0; l < 8; l++) S += li[l];
        acc = fmaf((float)S, akk_load_f16(w) * dx, acc);
        accm = fmaf((float)(lm[0] + lm[1] + lm[2] + lm[3]), akk_load_f16(w + 2) * dx, accm);
    }
    return acc - accm;
}

/* Q5_K: Q4_K's quants plus bit c of qh[e%32] as bit 4 (c = sub-block). The mins are summed to one
 * exact integer per block: summs = fma(-d_x*dmin_w, (float)that, summs); result hsum8(acc) + summs. */
static float dot_q5_K(int64_t n, const uint8_t *w, const uint8_t *x) {
    float acc[8] = {0}, summs = 0.0f;
    int q[256];
    for (int64_t b = 0; b < n / 256; b++, w += 176, x += 292) {
        const int8_t *qx = (const int8_t *)(x + 4);
        const float dx = akk_load_f32(x);
        const float d = dx * akk_load_f16(w), dmin = -dx * akk_load_f16(w + 2);
        int sc[8], m[8], lm[4], li[8];
        akk_k4_scales_mins(w + 4, sc, m);
        mins_k4(x, m, lm);
        summs = fmaf(dmin, (float)(lm[0] + lm[1] + lm[2] + lm[3]), summs);
        const uint8_t *qh = w + 16;
        for (int e = 0; e < 256; e++) {
            const int c = e / 32;
            const uint8_t v = w[48 + 32 * (c / 2) + e % 32];
            q[e] = (c % 2 ? v >> 4 : v & 0x0f) | ((qh[e % 32] >> c) & 1) << 4;
        }
        lanes_k4(q, qx, sc, li);
        for (int l = 0; l < 8; l++) acc[l] = fmaf(d, (float)li[l], acc[l]);
    }
    return akk_hsum8_ref(acc) + summs;
}

/* Q6_K: unsigned quant u in 0..63 (kquants.c's layout, value u - 32), int8 scale per 16 elements.
 * Lane l = sum over chunks of sc * lane4(u) minus 32*(sc[2l]*bsums[2l] + sc[2l+1]*bsums[2l+1]). */
static float dot_q6_K(int64_t n, const uint8_t *w, const uint8_t *x) {
    float acc[8] = {0};
    int q[256];
    for (int64_t b = 0; b < n / 256; b++, w += 210, x += 292) {
        const uint8_t *ql = w, *qh = w + 128;
        const int8_t *sc = (const int8_t *)(w + 192), *qx = (const int8_t *)(x + 4);
        const float d = akk_load_f32(x) * akk_load_f16(w + 208);
        for (int e = 0; e < 256; e++) {
            const int h = e / 128, r = e % 128, s = r / 32, l = r % 32;
            const uint8_t lo = ql[64 * h + 32 * (s & 1) + l];
            q[e] = ((s < 2 ? lo & 0x0f : lo >> 4) | ((qh[32 * h + l] >> (2 * s)) & 3) << 4);
        }
        for (int l = 0; l < 8; l++) {
            int t = 0;
            for (int c = 0; c < 8; c++) t += sc[2 * c + l / 4] * lane4(q, qx, c, l);
            t -= 32 * (sc[2 * l] * bsum(x, 2 * l) + sc[2 * l + 1] * bsum(x, 2 * l + 1));
            acc[l] = fmaf(d, (float)t, acc[l]);
        }
    }
    return akk_hsum8_ref(acc);
}

/* ---- llama.cpp's tiled order (products of >= AKK_TILED_MIN_ROWS activation rows) ----
 * llama.cpp (ggml-cpu/tiled, AVX2 build) multiplies Q2_K, Q3_K, Q5_K, Q6_K and IQ4_XS weights it
 * does not repack by a tiled kernel when the product has >= 8 activation rows (tokens, or rows
 * routed to one expert); fewer rows take the vec_dot order above. Per super-block it forms the
 * exact int32 totals S = sum of sub-block scale x signed quant x activation quant and, for the
 * types with mins, M = sum of min x bsum; then res = d_w*S (res = fma(-dmin_w, M, res)) and
 * acc = fma(res, d_x, acc) from acc = 0, block after block. The integers are ours (layouts as in
 * kquants.c / iq4mx.c); only their totals enter the float steps, so any exact way to form them
 * gives these bits. */

/* Signed quant of element e, its scale, per-16 mins, d and dmin of one block of `type`. */
static int tiled_block(int type, const uint8_t *w, int q[256], int sc[256], int m16[16], float *d, float *dmin) {
    *dmin = 0.0f;
    switch (type) {
    case AKK_Q2_K:
        for (int e = 0; e < 256; e++) {
            q[e] = (w[16 + 32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
            sc[e] = w[e / 16] & 15;
        }
        for (int i = 0; i < 16; i++) m16[i] = w[i] >> 4;
        *d = akk_load_f16(w + 80);
        *dmin = akk_load_f16(w + 82);
        return 1;
    case AKK_Q3_K: {
        int s16[16];
        akk_q3_k_scales(w + 96, s16);
        for (int e = 0; e < 256; e++) {
            const int c = e / 32, byte = e % 32;
            q[e] = ((w[32 + 32 * (c / 4) + byte] >> (2 * (c % 4))) & 3) - ((w[byte] >> c) & 1 ? 0 : 4);
            sc[e] = s16[e / 16];
        }
        *d = akk_load_f16(w + 108);
        return 0;
    }
    case AKK_Q5_K: {
        int s8[8], m8[8];
        akk_k4_scales_mins(w + 4, s8, m8);
        for (int e = 0; e < 256; e++) {
            const int nib = (w[48 + 32 * (e / 64) + e % 32] >> (4 * ((e / 32) % 2))) & 15;
            q[e] = nib | ((w[16 + e % 32] >> (e / 32)) & 1) << 4;
            sc[e] = s8[e / 32];
        }
        for (int i = 0; i < 16; i++) m16[i] = m8[i / 2];
        *d = akk_load_f16(w);
        *dmin = akk_load_f16(w + 2);
        return 1;
    }
    case AKK_Q6_K:
        for (int e = 0; e < 256; e++) {
            const int h = e / 128, qq = (e % 128) / 32, l = e % 32;
            const int nib = (w[64 * h + l + 32 * (qq & 1)] >> (qq >= 2 ? 4 : 0)) & 15;
            q[e] = (nib | ((w[128 + 32 * h + l] >> (2 * qq)) & 3) << 4) - 32;
            sc[e] = (int8_t)w[192 + e / 16];
        }
        *d = akk_load_f16(w + 208);
        return 0;
    default: /* IQ4_XS */
        for (int e = 0; e < 256; e++) {
            const int ib = e / 32, j = e % 32;
            q[e] = akk_kvalues_iq4nl[j < 16 ? w[8 + 16 * ib + j] & 15 : w[8 + 16 * ib + j - 16] >> 4];
            sc[e] = akk_iq4_xs_scale(w, ib);
        }
        *d = akk_load_f16(w);
        return 0;
    }
}

float akk_vec_dot_kq_tiled_scalar(int wtype, int64_t n, const void *w, const void *x) {
    const int bytes = wtype == AKK_Q2_K ? 84 : wtype == AKK_Q3_K ? 110 : wtype == AKK_Q5_K ? 176
                    : wtype == AKK_Q6_K ? 210 : 136;
    const uint8_t *wb = (const uint8_t *)w, *xb = (const uint8_t *)x;
    int q[256], sc[256], m16[16];
    float acc = 0.0f;
    for (int64_t b = 0; b < n / 256; b++, wb += bytes, xb += 292) {
        float d, dmin;
        const int has_min = tiled_block(wtype, wb, q, sc, m16, &d, &dmin);
        const int8_t *qx = (const int8_t *)(xb + 4);
        int32_t S = 0, M = 0;
        for (int e = 0; e < 256; e++) S += sc[e] * q[e] * qx[e];
        float res = d * (float)S;
        if (has_min) {
            for (int i = 0; i < 16; i++) M += m16[i] * bsum(xb, i);
            res = fmaf(-dmin, (float)M, res);
        }
        acc = fmaf(res, akk_load_f32(xb), acc);
    }
    return acc;
}

float akk_vec_dot_kq_scalar(int wtype, int64_t n, const void *w, const void *x) {
    const uint8_t *a = (const uint8_t *)w, *b = (const uint8_t *)x;
    switch (wtype) {
    case AKK_Q5_0: return dot_q5_0_q8_0(n, a, b);
    case AKK_Q5_1: return dot_q5_1_q8_1(n, a, b);
    case AKK_Q2_K: return dot_q2_K(n, a, b);
    case AKK_Q3_K: return dot_q3_K(n, a, b);
    case AKK_Q4_K: return dot_q4_K(n, a, b);
    case AKK_Q5_K: return dot_q5_K(n, a, b);
    case AKK_Q6_K: return dot_q6_K(n, a, b);
    default: return 0.0f;
    }
}

/* Bytes per block and offsets of the fp16 scales (d, then dmin or m) of the types above. */
static int scale_layout(int type, int *bytes, int off[2]) {
    switch (type) {
    case AKK_Q5_0: *bytes = 22; off[0] = 0; return 1;
    case AKK_Q5_1: *bytes = 24; off[0] = 0; off[1] = 2; return 2;
    case AKK_Q2_K: *bytes = 84; off[0] = 80; off[1] = 82; return 2;
    case AKK_Q3_K: *bytes = 110; off[0] = 108; return 1;
    case AKK_Q4_K: *bytes = 144; off[0] = 0; off[1] = 2; return 2;
    case AKK_Q5_K: *bytes = 176; off[0] = 0; off[1] = 2; return 2;
    case AKK_Q6_K: *bytes = 210; off[0] = 208; return 1;
    default: return 0;
    }
}

int64_t akk_find_nonfinite_scale(int type, const void *data, int64_t n_blocks) {
    int bytes, off[2];
    const int k = scale_layout(type, &bytes, off);
    const uint8_t *p = (const uint8_t *)data;
    for (int64_t b = 0; b < n_blocks && k > 0; b++, p += bytes)
        for (int i = 0; i < k; i++)
            if ((akk_load_u16(p + off[i]) & 0x7c00) == 0x7c00) return b; /* fp16 inf or NaN */
    return -1;
}

/* Activation quantisation, dot products and the matmul driver (scalar references + dispatch). */
#include "adak_kernels.h"
#include "akk_internal.h"
#include <math.h>
#include <omp.h>
#include <string.h>

/* ---- activation quantisation (llama.cpp x86 semantics: id = 127/amax, round half to even) ---- */

static void quantize_block_q8(const float *x, float *d_out, int8_t *q, int *sum) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) {
        float a = fabsf(x[j]);
        if (a > amax) amax = a;
    }
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int s = 0;
    for (int j = 0; j < 32; j++) {
        int v = (int)nearbyintf(x[j] * id);
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

/* ---- scalar dot products ---- */

static float dot_f32_scalar(int64_t n, const float *w, const float *x) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += w[i] * x[i];
    return s;
}

static float dot_q8_0_q8_0_scalar(int64_t n, const uint8_t *w, const uint8_t *x) {
    float s = 0.0f;
    for (int64_t b = 0; b < n / 32; b++, w += 34, x += 34) {
        const int8_t *qw = (const int8_t *)(w + 2), *qx = (const int8_t *)(x + 2);
        int isum = 0;
        for (int j = 0; j < 32; j++) isum += qw[j] * qx[j];
        s += akk_fp16_to_fp32(akk_load_u16(w)) * akk_fp16_to_fp32(akk_load_u16(x)) * (float)isum;
    }
    return s;
}

static float dot_q4_0_q8_0_scalar(int64_t n, const uint8_t *w, const uint8_t *x) {
    float s = 0.0f;
    for (int64_t b = 0; b < n / 32; b++, w += 18, x += 34) {
        const uint8_t *qw = w + 2;
        const int8_t *qx = (const int8_t *)(x + 2);
        int isum = 0;
        for (int j = 0; j < 16; j++) {
            isum += ((qw[j] & 0x0f) - 8) * qx[j];
            isum += ((qw[j] >> 4) - 8) * qx[j + 16];
        }
        s += akk_fp16_to_fp32(akk_load_u16(w)) * akk_fp16_to_fp32(akk_load_u16(x)) * (float)isum;
    }
    return s;
}

static float dot_q4_1_q8_1_scalar(int64_t n, const uint8_t *w, const uint8_t *x) {
    float s = 0.0f, ms = 0.0f;
    for (int64_t b = 0; b < n / 32; b++, w += 20, x += 36) {
        const uint8_t *qw = w + 4;
        const int8_t *qx = (const int8_t *)(x + 4);
        int isum = 0;
        for (int j = 0; j < 16; j++) {
            isum += (qw[j] & 0x0f) * qx[j];
            isum += (qw[j] >> 4) * qx[j + 16];
        }
        s += akk_fp16_to_fp32(akk_load_u16(w)) * akk_fp16_to_fp32(akk_load_u16(x)) * (float)isum;
        ms += akk_fp16_to_fp32(akk_load_u16(w + 2)) * akk_fp16_to_fp32(akk_load_u16(x + 2));
    }
    return s + ms;
}

float akk_vec_dot_scalar(int wtype, int64_t n, const void *w, const void *x) {
    switch (wtype) {
    case AKK_F32: return dot_f32_scalar(n, (const float *)w, (const float *)x);
    case AKK_Q8_0: return dot_q8_0_q8_0_scalar(n, (const uint8_t *)w, (const uint8_t *)x);
    case AKK_Q4_0: return dot_q4_0_q8_0_scalar(n, (const uint8_t *)w, (const uint8_t *)x);
    case AKK_Q4_1: return dot_q4_1_q8_1_scalar(n, (const uint8_t *)w, (const uint8_t *)x);
    default: return 0.0f;
    }
}

/* ---- dispatch ---- */

typedef float (*akk_dot_fn)(int wtype, int64_t n, const void *w, const void *x);
typedef void (*akk_quant_fn)(const float *x, void *y, int64_t n);

static akk_dot_fn g_dot = akk_vec_dot_scalar;
static akk_quant_fn g_q8_0 = akk_quantize_row_q8_0_scalar;
static akk_quant_fn g_q8_1 = akk_quantize_row_q8_1_scalar;
static int g_avx2 = 0;
static int g_forced_scalar = 0;

int akk_init(void) {
    /* SIMD paths are registered by simd_avx2.c when available. */
    return g_avx2 && !g_forced_scalar;
}

int akk_have_avx2(void) { return g_avx2 && !g_forced_scalar; }
void akk_force_scalar(int on) { g_forced_scalar = on; }

int akk_vec_dot_type(int wtype) {
    switch (wtype) {
    case AKK_F32: return AKK_F32;
    case AKK_Q8_0: case AKK_Q4_0: return AKK_Q8_0;
    case AKK_Q4_1: return AKK_Q8_1;
    default: return -1;
    }
}

void akk_quantize_row_q8_0(const float *x, void *y, int64_t n) {
    (g_forced_scalar ? akk_quantize_row_q8_0_scalar : g_q8_0)(x, y, n);
}

void akk_quantize_row_q8_1(const float *x, void *y, int64_t n) {
    (g_forced_scalar ? akk_quantize_row_q8_1_scalar : g_q8_1)(x, y, n);
}

void akk_quantize_activation(int wtype, const float *x, void *y, int64_t n) {
    switch (akk_vec_dot_type(wtype)) {
    case AKK_F32: memcpy(y, x, (size_t)n * 4); break;
    case AKK_Q8_0: akk_quantize_row_q8_0(x, y, n); break;
    case AKK_Q8_1: akk_quantize_row_q8_1(x, y, n); break;
    default: break;
    }
}

float akk_vec_dot(int wtype, int64_t n, const void *w, const void *x) {
    return (g_forced_scalar ? akk_vec_dot_scalar : g_dot)(wtype, n, w, x);
}

void akk_matmul(int wtype, const void *W, int64_t n_out, int64_t n_in,
                const void *X, int64_t xstride, int64_t n_tok,
                float *Y, int64_t ystride, int nthreads) {
    const int64_t wrow = akk_row_bytes(wtype, n_in);
    const uint8_t *wb = (const uint8_t *)W;
    const uint8_t *xb = (const uint8_t *)X;
    akk_dot_fn dot = g_forced_scalar ? akk_vec_dot_scalar : g_dot;
    if (nthreads <= 0) nthreads = omp_get_max_threads();
    if (n_out * n_tok * n_in < 32768) nthreads = 1;
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t o = 0; o < n_out; o++) {
        const uint8_t *w = wb + o * wrow;
        for (int64_t t = 0; t < n_tok; t++) {
            Y[t * ystride + o] = dot(wtype, n_in, w, xb + t * xstride);
        }
    }
}

/*
 * arch_ops.c — see adak_arch_ops.h. Plain C (the compiler vectorises the inner loops); these ops
 * serve architectures whose tiny fixtures check them against transformers and llama.cpp.
 */
#include "adak_arch_ops.h"
#include "adak_kernels.h"
#include <math.h>
#include <omp.h>

static float yarn_ramp(float low, float high, int i0) {
    const float y = (float)(i0 / 2) - low;
    const float r = y / fmaxf(0.001f, high - low);
    return 1.0f - fminf(1.0f, fmaxf(0.0f, r));
}

void akk_rope_yarn_corr_dims(int n_rot, int n_ctx_orig, float freq_base, float beta_fast, float beta_slow,
                             float dims[2]) {
    /* the pair index whose wavelength fits n_ctx_orig / beta times in the original context */
    const float lo = n_rot * logf(n_ctx_orig / (beta_fast * 2 * (float)M_PI)) / (2 * logf(freq_base));
    const float hi = n_rot * logf(n_ctx_orig / (beta_slow * 2 * (float)M_PI)) / (2 * logf(freq_base));
    dims[0] = fmaxf(0.0f, floorf(lo));
    dims[1] = fminf((float)(n_rot - 1), ceilf(hi));
}

void akk_rope_ext(float *x, int n_head, int64_t head_stride, int n_rot, int pos, float freq_base,
                  float freq_scale, float ext_factor, float attn_factor, float corr_low, float corr_high,
                  int neox) {
    if (n_rot < 2 || n_rot > 1024) return;
    float cs[1024];
    const float theta_scale = powf(freq_base, -2.0f / (float)n_rot);
    float theta_extrap = (float)pos;
    for (int i0 = 0; i0 < n_rot; i0 += 2) {
        float theta = freq_scale * theta_extrap;
        float mscale = attn_factor;
        if (ext_factor != 0.0f) {
            const float mix = yarn_ramp(corr_low, corr_high, i0) * ext_factor;
            theta = theta * (1 - mix) + theta_extrap * mix;
            mscale *= 1.0f + 0.1f * logf(1.0f / freq_scale);
        }
        cs[i0] = cosf(theta) * mscale;
        cs[i0 + 1] = sinf(theta) * mscale;
        theta_extrap *= theta_scale;
    }
    const int half = n_rot / 2;
    for (int h = 0; h < n_head; h++) {
        float *p = x + h * head_stride;
        for (int i = 0; i < half; i++) {
            const float c = cs[2 * i], s = cs[2 * i + 1];
            float *a = neox ? p + i : p + 2 * i;
            float *b = neox ? p + i + half : p + 2 * i + 1;
            const float x0 = *a, x1 = *b;
            *a = x0 * c - x1 * s;
            *b = x0 * s + x1 * c;
        }
    }
}

static inline float elem(const void *base, int64_t i, int f16) {
    return f16 ? akk_fp16_to_fp32(((const uint16_t *)base)[i]) : ((const float *)base)[i];
}

void akk_attention_ext(const float *q, int64_t q_stride, int n_head, int dk, int dv,
                       const void *k, int64_t k_stride, int64_t k_head_stride, int n_head_kv,
                       const void *v, int64_t v_pos_stride, int64_t v_dim_stride, int64_t v_head_stride,
                       float *out, int64_t out_stride, int n_tok, int pos0, float scale,
                       const float *sinks, int window, int kv_type, float *scratch, int nthreads) {
    const int f16 = kv_type == AKK_F16;
    const int group = n_head / (n_head_kv > 0 ? n_head_kv : 1);
    const int n_kv = pos0 + n_tok;
    const int pairs = n_tok * n_head;
    #pragma omp parallel for num_threads(nthreads > 0 ? nthreads : 1) schedule(static)
    for (int job = 0; job < pairs; job++) {
        const int t = job / n_head, h = job % n_head, g = h / group;
        const int p = pos0 + t;
        const int lo = window > 0 && p - window + 1 > 0 ? p - window + 1 : 0;
        float *s = scratch + (int64_t)omp_get_thread_num() * n_kv;
        const float *qh = q + t * q_stride + (int64_t)h * dk;
        float mx = sinks ? sinks[h] : -INFINITY;
        for (int j = lo; j <= p; j++) {
            const int64_t kb = j * k_stride + g * k_head_stride;
            float dot = 0;
            for (int i = 0; i < dk; i++) dot += qh[i] * elem(k, kb + i, f16);
            s[j] = dot * scale;
            if (s[j] > mx) mx = s[j];
        }
        double sum = sinks ? exp((double)sinks[h] - mx) : 0.0;
        for (int j = lo; j <= p; j++) {
            s[j] = expf(s[j] - mx);
            sum += s[j];
        }
        const float inv = (float)(1.0 / sum);
        float *o = out + t * out_stride + (int64_t)h * dv;
        for (int i = 0; i < dv; i++) o[i] = 0;
        for (int j = lo; j <= p; j++) {
            const float w = s[j] * inv;
            const int64_t vb = j * v_pos_stride + g * v_head_stride;
            for (int i = 0; i < dv; i++) o[i] += w * elem(v, vb + i * v_dim_stride, f16);
        }
    }
}

void akk_swiglu_oai(const float *g, const float *u, float *y, int64_t n, float alpha, float limit) {
    for (int64_t i = 0; i < n; i++) {
        const float x = fminf(g[i], limit);
        const float up = fminf(fmaxf(u[i], -limit), limit);
        y[i] = x / (1.0f + expf(-alpha * x)) * (up + 1.0f);
    }
}

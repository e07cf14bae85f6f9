/* Element-wise ops and attention of the forward pass. See adak_ops.h. */
#include "adak_ops.h"
#include <math.h>
#include <omp.h>

void akk_rmsnorm(const float *x, const float *w, float *y, int64_t n, float eps) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    if (w) {
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
    } else {
        for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale;
    }
}

void akk_rope(float *x, int n_head, int head_dim, int n_rot, int pos, float freq_base, int neox) {
    const float theta_scale = powf(freq_base, -2.0f / (float)n_rot);
    float cache[2 * 512];
    float theta = (float)pos;
    const int half = n_rot / 2;
    for (int i = 0; i < half && i < 512; i++) {
        cache[2 * i] = cosf(theta);
        cache[2 * i + 1] = sinf(theta);
        theta *= theta_scale;
    }
    for (int h = 0; h < n_head; h++) {
        float *xh = x + (int64_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            const float c = cache[2 * i], s = cache[2 * i + 1];
            const int a = neox ? i : 2 * i;
            const int b = neox ? i + half : 2 * i + 1;
            const float x0 = xh[a], x1 = xh[b];
            xh[a] = x0 * c - x1 * s;
            xh[b] = x0 * s + x1 * c;
        }
    }
}

void akk_softmax(float *x, int64_t n) {
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++) if (x[i] > max) max = x[i];
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float e = expf(x[i] - max);
        x[i] = e;
        sum += (double)e;
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

void akk_swiglu(const float *g, const float *u, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const float s = g[i] / (1.0f + expf(-g[i]));
        y[i] = s * u[i];
    }
}

int akk_default_threads(void) { return omp_get_num_procs(); }

float akk_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

void akk_attention(const float *q, int64_t q_stride, const float *k, const float *v, int64_t kv_stride,
                   float *out, int64_t out_stride, int n_tok, int pos0, int n_head, int n_head_kv,
                   int head_dim, float scale, float *scratch, int n_ctx, int nthreads) {
    const int group = n_head / n_head_kv;
    const int64_t jobs = (int64_t)n_tok * n_head;
    if (nthreads <= 0) nthreads = omp_get_max_threads();
    if (jobs * (pos0 + n_tok) * head_dim < 65536) nthreads = 1;
#pragma omp parallel num_threads(nthreads)
    {
        float *sc = scratch + (int64_t)omp_get_thread_num() * n_ctx;
#pragma omp for schedule(static)
        for (int64_t job = 0; job < jobs; job++) {
            const int t = (int)(job / n_head);
            const int h = (int)(job % n_head);
            const int g = h / group;
            const int n_kv = pos0 + t + 1;
            const float *qh = q + t * q_stride + (int64_t)h * head_dim;
            for (int j = 0; j < n_kv; j++) {
                const float *kj = k + j * kv_stride + (int64_t)g * head_dim;
                float s = 0.0f;
                for (int d = 0; d < head_dim; d++) s += qh[d] * kj[d];
                sc[j] = s * scale;
            }
            akk_softmax(sc, n_kv);
            float *oh = out + t * out_stride + (int64_t)h * head_dim;
            for (int d = 0; d < head_dim; d++) oh[d] = 0.0f;
            for (int j = 0; j < n_kv; j++) {
                const float *vj = v + j * kv_stride + (int64_t)g * head_dim;
                const float p = sc[j];
                for (int d = 0; d < head_dim; d++) oh[d] += p * vj[d];
            }
        }
    }
}

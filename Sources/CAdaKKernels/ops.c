/*
 * Element-wise ops and attention of the forward pass. See adak_ops.h.
 *
 * Every op reproduces what GGML's x86 CPU backend (AVX2 + FMA build, as llama.cpp ships it)
 * computes, bit for bit, because the model amplifies single-ulp differences. Each SIMD path has a
 * scalar reference beside it that performs the same float operations lane by lane; the dispatch
 * (akk_have_avx2) picks the AVX2 path when available, and tests check both agree exactly.
 *
 * Facts these follow (llama.cpp ggml/src/ggml-cpu, late 2025):
 *  - exp: ggml_v_expf (vec.h, the AVX2+FMA variant of ARM's optimized-routines expf) on chunks of
 *    8; scalar libm expf for the n % 8 tail.
 *  - soft_max (ops.cpp ggml_compute_forward_soft_max_f32): w = x*scale; w += mask; max by
 *    ggml_vec_max_f32; ggml_vec_soft_max_f32 sums each 8-lane chunk horizontally in float
 *    ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)) and adds that to a double; y *= (float)(1.0/sum).
 *  - swiglu (vec.cpp ggml_vec_swiglu_f32): chunks of 8: (x / (1 + v_expf(0 - x))) * g;
 *    tail: (x / (1 + expf(-x))) * g, per ggml row.
 *  - KQ = mul_mat(k, q): ggml_vec_dot_f32 per (kv position, head) (q is a permuted view, so the
 *    llamafile sgemm is never taken; for one token sgemm is disabled anyway, n < 2).
 *  - KQV = mul_mat(v_trans, softmax) over the padded n_kv: one token -> ggml_vec_dot_f32;
 *    >= 2 tokens -> llamafile tinyBLAS (sgemm.cpp, AVX: one 8-lane FMA accumulator per output
 *    over k in steps of 8, then hsum), valid when n_kv % 8 == 0 and head_dim % 4 == 0.
 *  - n_kv (llama-kv-cache.cpp get_n_kv) = min(kv_size, max(256, roundup(used, 256))); cells
 *    past the used ones are masked with -inf (probability exactly 0) and the cache is zeroed.
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_ops.h"
#include "adak_grouped.h"
#include "adak_kernels.h"
#include "akk_internal.h"
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define AVX2_FN static __attribute__((target("avx2,fma,f16c")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

/* y = (x / sqrt(sum / n + eps)) * w for a row whose sum of squares (ggml's sequential double
 * sum) is `sum`: the second half of akk_rmsnorm. */
static void rms_apply(const float *x, const float *w, float *y, int64_t n, double sum, float eps) {
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    if (w) {
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
    } else {
        for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale;
    }
}

void akk_rmsnorm(const float *x, const float *w, float *y, int64_t n, float eps) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    rms_apply(x, w, y, n, sum, eps);
}

/* The rows of a prefill batch: each row computed as the one-row op computes it (same bits), the
 * rows split over threads (akk_rows_threads), and four rows' sums of squares interleaved so that
 * their sequential double chains (ggml's order) overlap instead of waiting on each other. */
int akk_rows_threads(int64_t rows, int64_t n, int nthreads) {
    if (nthreads <= 0) nthreads = omp_get_max_threads();
    /* a fork/join costs a few µs, a row of 1K ~0.5 µs: below ~16K elements it does not pay */
    if (rows < 8 || rows * n < 16384) return 1;
    return rows < nthreads ? (int)rows : nthreads;
}

static void rmsnorm_run(const float *x, int64_t ldx, const float *w, float *y, int64_t ldy, int64_t r0, int64_t r1,
                        int64_t n, float eps) {
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const float *x0 = x + r * ldx, *x1 = x0 + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
        double s[4] = {0.0, 0.0, 0.0, 0.0};
        for (int64_t i = 0; i < n; i++) {
            s[0] += (double)(x0[i] * x0[i]);
            s[1] += (double)(x1[i] * x1[i]);
            s[2] += (double)(x2[i] * x2[i]);
            s[3] += (double)(x3[i] * x3[i]);
        }
        for (int j = 0; j < 4; j++) rms_apply(x + (r + j) * ldx, w, y + (r + j) * ldy, n, s[j], eps);
    }
    for (; r < r1; r++) akk_rmsnorm(x + r * ldx, w, y + r * ldy, n, eps);
}

void akk_rmsnorm_rows(const float *x, int64_t ldx, const float *w, float *y, int64_t ldy, int64_t rows, int64_t n,
                      float eps, int nthreads) {
    nthreads = akk_rows_threads(rows, n, nthreads);
    if (nthreads <= 1) {
        rmsnorm_run(x, ldx, w, y, ldy, 0, rows, n, eps);
        return;
    }
#pragma omp parallel num_threads(nthreads)
    {
        const int64_t nt = omp_get_num_threads(), me = omp_get_thread_num();
        rmsnorm_run(x, ldx, w, y, ldy, rows * me / nt, rows * (me + 1) / nt, n, eps);
    }
}

static void add_run(float *x, const float *b, float scale, int64_t i0, int64_t i1) {
    if (scale == 1.0f) akk_vec_add(x + i0, b + i0, i1 - i0);
    else for (int64_t i = i0; i < i1; i++) x[i] += b[i] * scale; /* two roundings: FP_CONTRACT OFF */
}

void akk_add_scaled(float *x, const float *b, float scale, int64_t count, int nthreads) {
    nthreads = akk_rows_threads(count / 1024, 1024, nthreads);
    if (nthreads <= 1) {
        add_run(x, b, scale, 0, count);
        return;
    }
#pragma omp parallel num_threads(nthreads)
    {
        const int64_t nt = omp_get_num_threads(), me = omp_get_thread_num();
        add_run(x, b, scale, count * me / nt / 16 * 16, me + 1 == nt ? count : count * (me + 1) / nt / 16 * 16);
    }
}

/* cos/sin of the rotation angles of one position, as ggml's rope cache computes them; kept per
 * thread for the last (pos, n_rot, freq_base): every layer's q and k at one position use the
 * same angles (2 x n_layer calls per decoded token). */
struct rope_angles {
    int pos, n_rot;
    float freq_base;
    float cs[2 * 512];
};

static const float *rope_angles(int n_rot, int pos, float freq_base) {
    static _Thread_local struct rope_angles a = {-1, 0, 0.0f, {0}};
    if (a.pos == pos && a.n_rot == n_rot && a.freq_base == freq_base) return a.cs;
    const float theta_scale = powf(freq_base, -2.0f / (float)n_rot);
    float theta = (float)pos;
    const int half = n_rot / 2;
    for (int i = 0; i < half && i < 512; i++) {
        a.cs[2 * i] = cosf(theta);
        a.cs[2 * i + 1] = sinf(theta);
        theta *= theta_scale;
    }
    a.pos = pos;
    a.n_rot = n_rot;
    a.freq_base = freq_base;
    return a.cs;
}

/* ggml: x0*cos - x1*sin and x0*sin + x1*cos, contracted by the compiler (FMA build) into one fma
 * on the left product each. Verified on SmolLM2: the unfused form (x0*c - x1*s rounded twice)
 * breaks the llama.cpp match from the first prompt. fmaf is exact either way; the FMA-target
 * twin only inlines it instead of calling libm's. */
#define ROPE_BODY                                                                                  \
    for (int h = 0; h < n_head; h++) {                                                             \
        float *xh = x + (int64_t)h * head_dim;                                                     \
        for (int i = 0; i < half; i++) {                                                           \
            const float c = cs[2 * i], s = cs[2 * i + 1];                                          \
            const int a = neox ? i : 2 * i;                                                        \
            const int b = neox ? i + half : 2 * i + 1;                                             \
            const float x0 = xh[a], x1 = xh[b];                                                    \
            xh[a] = fmaf(x0, c, -(x1 * s));                                                        \
            xh[b] = fmaf(x0, s, x1 * c);                                                           \
        }                                                                                          \
    }

static void rope_rotate(float *x, int n_head, int head_dim, int half, const float *cs, int neox) { ROPE_BODY }

__attribute__((target("fma"))) static void rope_rotate_fma(float *x, int n_head, int head_dim, int half,
                                                          const float *cs, int neox) { ROPE_BODY }

void akk_rope(float *x, int n_head, int head_dim, int n_rot, int pos, float freq_base, int neox) {
    if (n_rot / 2 > 512) return; /* the loader refuses such models (n_rot <= head_dim <= 1024) */
    const float *cs = rope_angles(n_rot, pos, freq_base);
    (akk_have_avx2() ? rope_rotate_fma : rope_rotate)(x, n_head, head_dim, n_rot / 2, cs, neox);
}

static void rope_run(float *q, int64_t ldq, int n_head_q, float *k, int64_t ldk, int n_head_k, int64_t t0, int64_t t1,
                     int head_dim, int n_rot, int pos0, float freq_base, int neox) {
    for (int64_t t = t0; t < t1; t++) {
        akk_rope(q + t * ldq, n_head_q, head_dim, n_rot, pos0 + (int)t, freq_base, neox);
        if (k) akk_rope(k + t * ldk, n_head_k, head_dim, n_rot, pos0 + (int)t, freq_base, neox);
    }
}

void akk_rope_rows(float *q, int64_t ldq, int n_head_q, float *k, int64_t ldk, int n_head_k, int64_t rows,
                   int head_dim, int n_rot, int pos0, float freq_base, int neox, int nthreads) {
    nthreads = akk_rows_threads(rows, (int64_t)(n_head_q + n_head_k) * head_dim, nthreads);
    if (nthreads <= 1) {
        rope_run(q, ldq, n_head_q, k, ldk, n_head_k, 0, rows, head_dim, n_rot, pos0, freq_base, neox);
        return;
    }
#pragma omp parallel num_threads(nthreads)
    {
        const int64_t nt = omp_get_num_threads(), me = omp_get_thread_num();
        rope_run(q, ldq, n_head_q, k, ldk, n_head_k, rows * me / nt, rows * (me + 1) / nt, head_dim, n_rot, pos0,
                 freq_base, neox);
    }
}

/* ---- exp: one lane of ggml_v_expf (AVX2 + FMA) ---- */

static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float akk_expf_ggml_ref(float x) {
    const float r = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, r);
    const float n = z - r;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    const uint32_t e = f2u(z) << 23;
    const float k = u2f(e + f2u(1.0f));
    const float u = b * b;
    const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                         u, 0x1.ffffecp-1f * b);
    const float an = fabsf(n);
    if (!(an > 126.0f)) return fmaf(k, j, k);
    const uint32_t g = (n <= 0.0f) ? 0x82000000u : 0u;
    const float s1 = u2f(g + 0x7f000000u);
    const float s2 = u2f(e - g);
    if (an > 192.0f) return s1 * s1;
    return fmaf(s2, j, s2) * s1;
}

AVX2_INLINE __m256 v_expf(__m256 x) {
    const __m256 r = _mm256_set1_ps(0x1.8p23f);
    const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
    const __m256 n = _mm256_sub_ps(z, r);
    const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f),
                                      _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
    const __m256i e = _mm256_slli_epi32(_mm256_castps_si256(z), 23);
    const __m256 k = _mm256_castsi256_ps(_mm256_add_epi32(e, _mm256_castps_si256(_mm256_set1_ps(1.0f))));
    const __m256 an = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
    const __m256 c = _mm256_cmp_ps(an, _mm256_set1_ps(126.0f), _CMP_GT_OQ);
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 p = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
                        _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
        u, _mm256_mul_ps(_mm256_set1_ps(0x1.ffffecp-1f), b));
    const __m256 normal = _mm256_fmadd_ps(k, p, k);
    if (!_mm256_movemask_ps(c)) return normal;
    const __m256i g = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_LE_OQ)),
                                       _mm256_set1_epi32((int)0x82000000u));
    const __m256 s1 = _mm256_castsi256_ps(_mm256_add_epi32(g, _mm256_set1_epi32(0x7f000000)));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_sub_epi32(e, g));
    const __m256 d = _mm256_cmp_ps(an, _mm256_set1_ps(192.0f), _CMP_GT_OQ);
    const __m256 big = _mm256_mul_ps(_mm256_fmadd_ps(s2, p, s2), s1);
    const __m256 res = _mm256_blendv_ps(normal, big, c);
    return _mm256_blendv_ps(res, _mm256_mul_ps(s1, s1), d);
}

AVX2_INLINE float hsum8(__m256 v) {
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

AVX2_FN void expf8_avx2(const float *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, v_expf(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] = akk_expf_ggml_ref(x[i]);
}

void akk_expf_ggml_row(const float *x, float *y, int64_t n) {
    if (akk_have_avx2()) { expf8_avx2(x, y, n); return; }
    for (int64_t i = 0; i < n; i++) y[i] = akk_expf_ggml_ref(x[i]);
}

/* ---- softmax ---- */

static double softmax_exp_scalar(float *x, int64_t n, float max) {
    double sum = 0.0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float v[8];
        for (int l = 0; l < 8; l++) v[l] = x[i + l] = akk_expf_ggml_ref(x[i + l] - max);
        sum += (double)akk_hsum8_ref(v);
    }
    for (; i < n; i++) {
        const float e = expf(x[i] - max);
        x[i] = e;
        sum += (double)e;
    }
    return sum;
}

AVX2_FN double softmax_exp_avx2(float *x, int64_t n, float max) {
    double sum = 0.0;
    int64_t i = 0;
    const __m256 vm = _mm256_set1_ps(max);
    for (; i + 8 <= n; i += 8) {
        const __m256 v = v_expf(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, v);
        sum += (double)hsum8(v);
    }
    for (; i < n; i++) {
        const float e = expf(x[i] - max);
        x[i] = e;
        sum += (double)e;
    }
    return sum;
}

/* max(-inf, x...) with NaNs skipped, as the scalar loop of softmax_impl (vmaxps returns its
 * second operand, the running max, for a NaN); the sign of a zero max may differ, which no
 * x - max and no exp can tell apart. */
AVX2_FN float max_avx2(const float *x, int64_t n) {
    __m256 m = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) m = _mm256_max_ps(_mm256_loadu_ps(x + i), m);
    float l[8], max = -INFINITY;
    _mm256_storeu_ps(l, m);
    for (int k = 0; k < 8; k++) max = l[k] > max ? l[k] : max;
    for (; i < n; i++) max = x[i] > max ? x[i] : max;
    return max;
}

/* exp(x - max(x)) in place; returns 1 / their sum, the scale that makes them the softmax. */
static float softmax_exp(float *x, int64_t n, int simd) {
    float max = -INFINITY;
    if (simd) max = max_avx2(x, n);
    else for (int64_t i = 0; i < n; i++) max = x[i] > max ? x[i] : max;
    const double sum = simd ? softmax_exp_avx2(x, n, max) : softmax_exp_scalar(x, n, max);
    return (float)(1.0 / sum);
}

static void softmax_impl(float *x, int64_t n, int simd) {
    const float inv = softmax_exp(x, n, simd);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

void akk_softmax(float *x, int64_t n) { softmax_impl(x, n, akk_have_avx2()); }
void akk_softmax_scalar(float *x, int64_t n) { softmax_impl(x, n, 0); }

/* ---- SwiGLU ---- */

void akk_swiglu_scalar(const float *g, const float *u, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) {
            const float x = g[i + l];
            const float s = x / (1.0f + akk_expf_ggml_ref(0.0f - x));
            y[i + l] = s * u[i + l];
        }
    for (; i < n; i++) y[i] = (g[i] / (1.0f + expf(-g[i]))) * u[i];
}

AVX2_FN void swiglu_avx2(const float *g, const float *u, float *y, int64_t n) {
    int64_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        const __m256 e = v_expf(_mm256_sub_ps(_mm256_setzero_ps(), x));
        const __m256 s = _mm256_div_ps(x, _mm256_add_ps(one, e));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) y[i] = (g[i] / (1.0f + expf(-g[i]))) * u[i];
}

void akk_swiglu(const float *g, const float *u, float *y, int64_t n) {
    if (akk_have_avx2()) swiglu_avx2(g, u, y, n);
    else akk_swiglu_scalar(g, u, y, n);
}

int akk_default_threads(void) { return omp_get_num_procs(); }

float akk_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

/* ---- f32 dot with one 8-lane accumulator (llamafile tinyBLAS, AVX) ---- */

float akk_dot_f32_1acc_scalar(int64_t n, const float *a, const float *b) {
    float acc[8] = {0};
    for (int64_t i = 0; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[l] = fmaf(a[i + l], b[i + l], acc[l]);
    return akk_hsum8_ref(acc);
}

AVX2_FN float dot_f32_1acc_avx2(int64_t n, const float *a, const float *b) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i + 8 <= n; i += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    return hsum8(acc);
}

float akk_dot_f32_1acc(int64_t n, const float *a, const float *b) {
    return akk_have_avx2() ? dot_f32_1acc_avx2(n, a, b) : akk_dot_f32_1acc_scalar(n, a, b);
}

/* ---- f16 dots of the F16 KV cache (ggml_vec_dot_f16 and tinyBLAS on fp16, see below) ---- */

static inline float h2f(uint16_t h) { return akk_fp16_to_fp32(h); }

/* ggml_vec_dot_f16: 4 x 8 lanes of fma over steps of 32 (as the f32 dot), the f32x8 reduction,
 * then the n % 32 tail added in double, each product rounded to float first. The second operand
 * as fp16 (bh) or as the floats of fp16 values (bf; fp16 -> f32 is exact: the same products). */
static float dot4_f16_scalar_of(int64_t n, const uint16_t *a, const uint16_t *bh, const float *bf) {
#define B(i) (bh ? h2f(bh[i]) : bf[i])
    float acc[4][8] = {{0}};
    const int64_t np = n & ~(int64_t)31;
    for (int64_t i = 0; i < np; i += 32)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 8; l++)
                acc[k][l] = fmaf(h2f(a[i + 8 * k + l]), B(i + 8 * k + l), acc[k][l]);
    double sum = (double)akk_reduce_4x8_ref(acc);
    for (int64_t i = np; i < n; i++) sum += (double)(h2f(a[i]) * B(i));
    return (float)sum;
#undef B
}

static float dot4_f16_scalar(int64_t n, const uint16_t *a, const uint16_t *b) { return dot4_f16_scalar_of(n, a, b, NULL); }

/* tinyBLAS on fp16 x fp16 (AVX + F16C): one 8-lane fma accumulator over steps of 8, then hsum.
 * The second operand as for dot4_f16_scalar_of. */
static float dot1_f16_scalar_of(int64_t n, const uint16_t *a, const uint16_t *bh, const float *bf) {
    float acc[8] = {0};
    for (int64_t i = 0; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[l] = fmaf(h2f(a[i + l]), bh ? h2f(bh[i + l]) : bf[i + l], acc[l]);
    return akk_hsum8_ref(acc);
}

static float dot1_f16_scalar(int64_t n, const uint16_t *a, const uint16_t *b) { return dot1_f16_scalar_of(n, a, b, NULL); }

AVX2_FN float dot1_f16_avx2(int64_t n, const uint16_t *a, const uint16_t *b) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i + 8 <= n; i += 8)
        acc = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + i))),
                              _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i))), acc);
    return hsum8(acc);
}

/* ---- attention ---- */

int akk_attn_n_kv(int n_used, int n_ctx) {
    int padded = (n_used + 255) / 256 * 256;
    if (padded < 256) padded = 256;
    return padded < n_ctx ? padded : n_ctx;
}

/* The dots of one cache type. F32 (llama.cpp's f32 cache): q and the probabilities stay f32;
 * 4-accumulator dots are ggml_vec_dot_f32, 1-accumulator ones tinyBLAS. F16: llama.cpp converts
 * q and the probabilities to fp16 (vec_dot_type of F16) and uses ggml_vec_dot_f16, or tinyBLAS on
 * fp16 once the converted rows are contiguous (a multi-token batch, for KQ as well as KQV). */
struct attn_dots {
    int f16, simd;
};

static float dot_cache(const struct attn_dots *t, int one_acc, int64_t n, const void *c, const void *x) {
    if (t->f16) {
        const uint16_t *a = (const uint16_t *)c, *b = (const uint16_t *)x;
        return one_acc ? (t->simd ? dot1_f16_avx2(n, a, b) : dot1_f16_scalar(n, a, b))
                       : (t->simd ? akk_dot4_f16_avx2(n, a, b) : dot4_f16_scalar(n, a, b));
    }
    const float *a = (const float *)c, *b = (const float *)x;
    if (one_acc) return t->simd ? dot_f32_1acc_avx2(n, a, b) : akk_dot_f32_1acc_scalar(n, a, b);
    return (t->simd ? akk_vec_dot : akk_vec_dot_scalar)(AKK_F32, n, a, b);
}

/* The scalar references of the decode attention products (akk_impl.attn_rows_*): single dots. */
void akk_attn_rows_f32_scalar(AKK_ATTN_ROWS_ARGS(float)) {
    for (int i = 0; i < m; i++)
        for (int64_t r = 0; r < rows; r++)
            out[i * os + r] = akk_vec_dot_scalar(AKK_F32, n, a + i / group * ag + r * as, b + i * bs) * scale;
}
void akk_attn_rows_f16_scalar(AKK_ATTN_ROWS_ARGS(uint16_t)) {
    for (int i = 0; i < m; i++)
        for (int64_t r = 0; r < rows; r++)
            out[i * os + r] = dot4_f16_scalar_of(n, a + i / group * ag + r * as, NULL, b + i * bs) * scale;
}

/* The scalar references of the prefill attention products (akk_impl.attn_prefill_*): single dots. */
void akk_attn_prefill_f32_scalar(AKK_ATTN_PF_ARGS(float)) {
    for (int i = 0; i < m; i++)
        for (int r = 0; r < rows[i]; r++)
            out[i][r] = (one_acc ? akk_dot_f32_1acc_scalar(n[i], a + r * as, b + i * bs)
                                 : akk_vec_dot_scalar(AKK_F32, n[i], a + r * as, b + i * bs)) * scale;
}
void akk_attn_prefill_f16_scalar(AKK_ATTN_PF_ARGS(uint16_t)) {
    for (int i = 0; i < m; i++)
        for (int r = 0; r < rows[i]; r++)
            out[i][r] = (one_acc ? dot1_f16_scalar_of : dot4_f16_scalar_of)(n[i], a + r * as, NULL, b + i * bs) * scale;
}

/* out[i * os + r] = dot_cache(t, 0, n, a + (i / group) * ag + r * as, b + i * bs) * scale (a, as,
 * ag in cache elements; b: f32, for an f16 cache fp16 values) by the level in force (the SIMD
 * levels in register blocks, bit-identical). */
static void rows_cache(const struct attn_dots *t, int64_t n, int64_t rows, const void *a, int64_t as, int64_t ag,
                       int group, int m, const float *b, int64_t bs, float scale, float *out, int64_t os) {
    if (t->f16) akk_attn_rows_f16(n, rows, (const uint16_t *)a, as, ag, group, m, b, bs, scale, out, os);
    else akk_attn_rows_f32(n, rows, (const float *)a, as, ag, group, m, b, bs, scale, out, os);
}

float akk_dot_f16(int one_acc, int64_t n, const uint16_t *a, const uint16_t *b) {
    const struct attn_dots d = {1, akk_have_avx2()};
    return dot_cache(&d, one_acc, n, a, b);
}

/* x[i] * s, rounded to fp16 and back when `round` (as the decode products take an f16 cache's q
 * and probabilities: the fp16 values as floats), in place. */
static void scale_round_scalar(float *x, int64_t n, float s, int round) {
    for (int64_t i = 0; i < n; i++) x[i] = round ? akk_fp16_to_fp32(akk_fp32_to_fp16(x[i] * s)) : x[i] * s;
}

AVX2_FN void scale_round_avx2(float *x, int64_t n, float s, int round) {
    const __m256 vs = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), vs);
        if (round) v = _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
        _mm256_storeu_ps(x + i, v);
    }
    scale_round_scalar(x + i, n - i, s, round);
}

static void scale_round(const struct attn_dots *t, float *x, int64_t n, float s) {
    if (t->simd) scale_round_avx2(x, n, s, t->f16);
    else scale_round_scalar(x, n, s, t->f16);
}

/* One head's probabilities from its scores sc[0, n_valid): the padding up to n_use masked,
 * softmax, in place as the products take them: floats (of the fp16 values for an f16 cache). */
static void head_probs(const struct attn_dots *t, float *sc, int n_valid, int n_use) {
    for (int j = n_valid; j < n_use; j++) sc[j] = -INFINITY;
    scale_round(t, sc, n_use, softmax_exp(sc, n_use, t->simd));
}

/* out[i][r] = dot(n[i], a + r * as, b + i * bs) * scale for r < rows[i] (a, as in cache elements;
 * b as for rows_cache) in the order one_acc chooses, by the level in force. */
static void prefill_cache(const struct attn_dots *t, int one_acc, int m, const int32_t *n, const int32_t *rows,
                          const void *a, int64_t as, const float *b, int64_t bs, float scale, float *const *out) {
    if (t->f16) akk_attn_prefill_f16(one_acc, m, n, rows, (const uint16_t *)a, as, b, bs, scale, out);
    else akk_attn_prefill_f32(one_acc, m, n, rows, (const float *)a, as, b, bs, scale, out);
}

/* The prefill's chunk of (token, head) pairs of one kv head. */
#define PF_CHUNK 32

void akk_attention(const float *q, int64_t q_stride, const void *k, int64_t k_stride,
                   const void *vt, int64_t vt_stride, float *out, int64_t out_stride,
                   int n_tok, int pos0, int n_head, int n_head_kv, int head_dim, float scale,
                   float *scratch, int n_ctx, int kv_type, int nthreads) {
    const int group = n_head / n_head_kv;
    const int n_kv = akk_attn_n_kv(pos0 + n_tok, n_ctx);
    const struct attn_dots dots = {kv_type == AKK_F16, akk_have_avx2()};
    const int64_t es = dots.f16 ? 2 : 4; /* bytes per cache element */
    const uint8_t *kb = (const uint8_t *)k, *vb = (const uint8_t *)vt;
    /* llama.cpp's KQV: tinyBLAS for a multi-token batch when it accepts the shape, else vec_dot;
     * its KQ only with an fp16 cache (an f32 q is a permuted, non-contiguous view). */
    const int kqv_1acc = n_tok >= 2 && n_kv % 8 == 0 && head_dim % 4 == 0;
    const int kq_1acc = dots.f16 && n_tok >= 2 && head_dim % 8 == 0;
    const int64_t jobs = (int64_t)n_tok * n_head;
    if (nthreads <= 0) nthreads = omp_get_max_threads();
    if (jobs * (int64_t)n_kv * head_dim < 65536) nthreads = 1;
    /* ggml runs the softmax and the V product over all n_kv (padded) positions. Past the first
     * multiple of 32 after n_valid every probability is exactly 0, adding exact zeros to whole
     * 8-lane blocks and 32-wide steps: skipping them changes no bit. */
#define N_USE(n_valid) ((n_valid) + 31 < n_kv ? ((n_valid) + 31) / 32 * 32 : n_kv)
    if (n_tok == 1) {
        /* Decode: the scores, position by position (each K row's heads against the q of their
         * GQA group's heads, each loaded once for them); then softmax and the V product, each row
         * of V^T against the probabilities of its group's heads. Up to 256 positions each thread
         * takes a range of heads and makes their scores, probabilities and outputs with no barrier
         * (2 threads, 4 KV heads: each reads its half of every K row, 3-9% less time per layer at
         * 128-256 positions; 3 KV heads over 2 threads: 9.8-12.2 against 13.5-15.1 µs per layer
         * with the position split's two barriers). From ~400 positions on the halves of rows are
         * slower to stream than contiguous ranges of rows, so longer contexts split the scores by
         * positions, then the rest by groups (whole groups per thread) or by heads and rows of V^T.
         * The scores land in scratch rows of n_ctx per head; each value is the single dot's
         * (rows_cache). For an f16 cache q and the probabilities are rounded to fp16 as llama.cpp
         * converts them and kept as floats. */
        const int n_valid = pos0 + 1, n_use = N_USE(n_valid);
        const int64_t qdim = (int64_t)n_head * head_dim;
        float *qr = dots.f16 ? malloc((size_t)qdim * sizeof(float)) : NULL;
        if (dots.f16 && !qr) return;
        if (qr) {
            memcpy(qr, q, (size_t)qdim * sizeof(float));
            scale_round(&dots, qr, qdim, 1.0f);
        }
        const float *qf = qr ? qr : q;
#pragma omp parallel num_threads(nthreads)
        {
            const int64_t nt = omp_get_num_threads(), me = omp_get_thread_num();
            if (n_valid <= 256 && n_head >= nt) {
                /* Each thread a contiguous range of heads, from scores to outputs, with no barrier:
                 * with whole KV groups per thread (2 threads, 4 KV heads) its own groups, each K
                 * row's groups read in one sweep; where the groups do not divide (SmolLM2: 3 over
                 * 2) a group split between two threads has its K and V rows read by both. Pieces:
                 * the run of whole groups, or the part of one group at either end of the range. */
                const int64_t h0 = (int64_t)n_head * me / nt, h1 = (int64_t)n_head * (me + 1) / nt;
                for (int64_t hs = h0; hs < h1;) {
                    const int64_t g = hs / group, gend = (g + 1) * group < h1 ? (g + 1) * group : h1;
                    const int64_t he = hs % group == 0 && h1 - hs >= group ? hs + (h1 - hs) / group * group : gend;
                    const int cnt = (int)(he - hs), gp = cnt < group ? cnt : group; /* heads, per group */
                    rows_cache(&dots, head_dim, n_valid, kb + g * head_dim * es, k_stride, head_dim, gp, cnt, qf + hs * head_dim,
                               head_dim, scale, scratch + hs * n_ctx, n_ctx);
                    for (int64_t h = hs; h < he; h++) head_probs(&dots, scratch + h * n_ctx, n_valid, n_use);
                    for (int64_t v = hs; v < he; v += gp) /* a group's rows of V^T against its heads */
                        rows_cache(&dots, n_use, head_dim, vb + (v / group) * head_dim * vt_stride * es, vt_stride, 0, gp, gp,
                                   scratch + v * n_ctx, n_ctx, 1.0f, out + v * head_dim, head_dim);
                    hs = he;
                }
            } else { /* longer contexts: the scores split by positions, then by heads or groups */
                const int64_t vrows = (int64_t)n_head_kv * head_dim, v0 = vrows * me / nt, v1 = vrows * (me + 1) / nt;
                const int own = n_head_kv % nt == 0;                 /* [v0, v1) are whole groups */
                const int64_t g0 = v0 / head_dim, g1 = v1 / head_dim; /* (own) this thread's groups */
                const int64_t p0 = n_valid * me / nt, p1 = n_valid * (me + 1) / nt;
                if (p1 > p0)
                    rows_cache(&dots, head_dim, p1 - p0, kb + p0 * k_stride * es, k_stride, head_dim, group, n_head, qf,
                               head_dim, scale, scratch + p0, n_ctx);
#pragma omp barrier
                if (own)
                    for (int64_t h = g0 * group; h < g1 * group; h++) head_probs(&dots, scratch + h * n_ctx, n_valid, n_use);
                else {
                    for (int64_t h = n_head * me / nt; h < n_head * (me + 1) / nt; h++)
                        head_probs(&dots, scratch + h * n_ctx, n_valid, n_use);
#pragma omp barrier
                }
                for (int64_t r = v0; r < v1;) {
                    const int64_t g = r / head_dim, d = r % head_dim, nd = (v1 - r < head_dim - d ? v1 - r : head_dim - d);
                    rows_cache(&dots, n_use, nd, vb + (g * head_dim + d) * vt_stride * es, vt_stride, 0, group, group,
                               scratch + g * group * n_ctx, n_ctx, 1.0f, out + g * group * head_dim + d, head_dim);
                    r += nd;
                }
            }
        }
        free(qr);
        return;
    }
    /* Prefill: per kv head, its (token, head) pairs token-major in chunks of up to PF_CHUNK: the
     * chunk's scores (each K row against all its q), its probabilities, then its V product (each
     * row of V^T against all its probabilities), by akk_attn_prefill_* in register blocks. Token t
     * scores its n_valid = pos0 + t + 1 positions and weighs its N_USE(n_valid) probabilities,
     * every output its single dot's bits. For an f16 cache q and the probabilities are the floats
     * of their fp16 values (as the decode products). The threads claim the chunks one at a time
     * from a shared counter, the latest tokens' (the most work) first, each thread with its own q
     * and score rows: a split fixed in advance by estimated work left one thread waiting 6-11% of
     * the attention's time on a shared host (OMPT barrier waits, SmolLM2 prefill). */
    const int per_kv = n_tok * group, stride = N_USE(pos0 + n_tok);
    const int chunk = per_kv < PF_CHUNK ? per_kv : PF_CHUNK, per_g = (per_kv + chunk - 1) / chunk;
    const int64_t units = (int64_t)n_head_kv * per_g;
    int64_t next = 0; /* the next unit to claim, in the order below */
#pragma omp parallel num_threads(nthreads)
    {
        float *qb = malloc(sizeof(float) * (size_t)chunk * (size_t)(head_dim + stride)), *sc = qb + (int64_t)chunk * head_dim;
        int32_t nv[PF_CHUNK], nu[PF_CHUNK], hd[PF_CHUNK];
        float *so[PF_CHUNK], *vo[PF_CHUNK];
        for (int64_t k = qb ? __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED) : units; k < units;
             k = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED)) {
            /* claim k: chunk per_g - 1 - k / n_head_kv of kv head k % n_head_kv */
            const int g = (int)(k % n_head_kv), v0 = (per_g - 1 - (int)(k / n_head_kv)) * chunk;
            const int mv = per_kv - v0 < chunk ? per_kv - v0 : chunk;
            for (int i = 0; i < mv; i++) {
                const int t = (v0 + i) / group, h = g * group + (v0 + i) % group;
                memcpy(qb + (int64_t)i * head_dim, q + t * q_stride + (int64_t)h * head_dim, sizeof(float) * (size_t)head_dim);
                nv[i] = pos0 + t + 1;
                nu[i] = N_USE(nv[i]);
                hd[i] = head_dim;
                so[i] = sc + (int64_t)i * stride;
                vo[i] = out + t * out_stride + (int64_t)h * head_dim;
            }
            if (dots.f16) scale_round(&dots, qb, (int64_t)mv * head_dim, 1.0f);
            prefill_cache(&dots, kq_1acc, mv, hd, nv, kb + (int64_t)g * head_dim * es, k_stride, qb, head_dim, scale, so);
            for (int i = 0; i < mv; i++) head_probs(&dots, so[i], nv[i], nu[i]);
            prefill_cache(&dots, kqv_1acc, mv, nu, hd, vb + (int64_t)g * head_dim * vt_stride * es, vt_stride, sc, stride, 1.0f, vo);
        }
        free(qb);
    }
#undef N_USE
}

void akk_attention_seqs(const akk_attn_seq *seqs, int n_seqs, int64_t q_stride, int64_t k_stride,
                        int64_t out_stride, int n_head, int n_head_kv, int head_dim, float scale, int nthreads) {
    if (nthreads <= 0) nthreads = omp_get_max_threads();
    if (nthreads > n_seqs) nthreads = n_seqs;
    /* inside, each akk_attention runs on its calling thread (a nested region of one thread) */
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
    for (int i = 0; i < n_seqs; i++) {
        const akk_attn_seq *s = &seqs[i];
        akk_attention(s->q, q_stride, s->k, k_stride, s->vt, s->vt_stride, s->out, out_stride, s->n_tok, s->pos0,
                      n_head, n_head_kv, head_dim, scale, s->scratch, s->n_ctx, s->kv_type, 1);
    }
}

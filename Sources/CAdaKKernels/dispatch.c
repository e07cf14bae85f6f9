/*
 * Run-time selection between the scalar references, the AVX2+FMA+F16C kernels and the AVX-512
 * (F/BW/VL + VNNI) kernels, the matmul
 * driver (OpenMP over output rows) and the memory-bandwidth probe.
 *
 * akk_init() is idempotent and thread-safe (pthread_once); every dispatching entry point calls it
 * lazily, so the engine may but need not call it at load.
 */
#include "adak_kernels.h"
#include "akk_internal.h"
#include <omp.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- scalar implementation set ---- */

static void rows_scalar(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                        const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride,
                        int wtype, akk_dot_fn dot) {
    for (int64_t o = r0; o < r1; o++)
        for (int64_t t = 0; t < n_tok; t++) Y[t * ystride + o] = dot(wtype, n_in, W + o * wrow, X + t * xstride);
}

void akk_rows_by_dot_scalar(int wtype, const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                            const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    rows_scalar(W, wrow, r0, r1, n_in, X, xstride, n_tok, Y, ystride, wtype, akk_vec_dot_scalar);
}

/* Row kernels of one type: the vec_dot order (SCALAR_ROWS) or llama.cpp's tiled one (_TL). */
#define SCALAR_ROWS_BY(name, type, dot)                                                            \
    static void name(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,         \
                     const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {          \
        rows_scalar(W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys, type, dot);                        \
    }
#define SCALAR_ROWS(name, type) SCALAR_ROWS_BY(name, type, akk_vec_dot_scalar)
#define SCALAR_ROWS_TL(name, type) SCALAR_ROWS_BY(name, type, akk_vec_dot_kq_tiled_scalar)
SCALAR_ROWS(rows_f32_scalar, AKK_F32)
SCALAR_ROWS(rows_q8_0_scalar, AKK_Q8_0)
SCALAR_ROWS(rows_q4_0_scalar, AKK_Q4_0)
SCALAR_ROWS(rows_q4_1_scalar, AKK_Q4_1)
SCALAR_ROWS(rows_iq4_nl_scalar, AKK_IQ4_NL)
SCALAR_ROWS(rows_iq4_xs_scalar, AKK_IQ4_XS)
SCALAR_ROWS(rows_mxfp4_scalar, AKK_MXFP4)
SCALAR_ROWS(rows_iq4_nl_x8_scalar, AKK_IQ4_NL_X8)
SCALAR_ROWS(rows_mxfp4_x8_scalar, AKK_MXFP4_X8)
SCALAR_ROWS(rows_q5_0_scalar, AKK_Q5_0)
SCALAR_ROWS(rows_q5_1_scalar, AKK_Q5_1)
SCALAR_ROWS(rows_q2_k_scalar, AKK_Q2_K)
SCALAR_ROWS(rows_q3_k_scalar, AKK_Q3_K)
SCALAR_ROWS(rows_q4_k_scalar, AKK_Q4_K)
SCALAR_ROWS(rows_q5_k_scalar, AKK_Q5_K)
SCALAR_ROWS(rows_q6_k_scalar, AKK_Q6_K)
SCALAR_ROWS_TL(rows_q2_k_tl_scalar, AKK_Q2_K)
SCALAR_ROWS_TL(rows_q3_k_tl_scalar, AKK_Q3_K)
SCALAR_ROWS_TL(rows_q5_k_tl_scalar, AKK_Q5_K)
SCALAR_ROWS_TL(rows_q6_k_tl_scalar, AKK_Q6_K)
SCALAR_ROWS_TL(rows_iq4_xs_tl_scalar, AKK_IQ4_XS)

static void fp16_to_fp32_row_scalar(const uint16_t *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = akk_fp16_to_fp32(x[i]);
}

static void fp32_to_fp16_row_scalar(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = akk_fp32_to_fp16(x[i]);
}

static uint64_t read_bytes_scalar(const uint8_t *p, size_t bytes) {
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    const uint64_t *q = (const uint64_t *)(const void *)p;
    /* one sequential stream, as the AVX2 probe (bytes: a multiple of 128, as there) */
    for (size_t i = 0; i + 4 <= bytes / 8; i += 4) {
        s0 += q[i]; s1 += q[i + 1]; s2 += q[i + 2]; s3 += q[i + 3];
    }
    return s0 + s1 + s2 + s3;
}

static const struct akk_impl impl_scalar = {
    .quantize_q8_0 = akk_quantize_row_q8_0_scalar,
    .quantize_q8_1 = akk_quantize_row_q8_1_scalar,
    .quantize_q8_K = akk_quantize_row_q8_K,
    .dot = akk_vec_dot_scalar,
    .rows_f32 = rows_f32_scalar,
    .rows_q8_0 = rows_q8_0_scalar,
    .rows_q4_0 = rows_q4_0_scalar,
    .rows_q4_1 = rows_q4_1_scalar,
    .rows_q4_0_r8 = akk_rows_q4_0_r8_scalar,
    .rows_iq4_nl = rows_iq4_nl_scalar,
    .rows_iq4_xs = rows_iq4_xs_scalar,
    .rows_mxfp4 = rows_mxfp4_scalar,
    .rows_iq4_nl_x8 = rows_iq4_nl_x8_scalar,
    .rows_mxfp4_x8 = rows_mxfp4_x8_scalar,
    .rows_q5_0 = rows_q5_0_scalar,
    .rows_q5_1 = rows_q5_1_scalar,
    .rows_q2_k = rows_q2_k_scalar,
    .rows_q3_k = rows_q3_k_scalar,
    .rows_q4_k = rows_q4_k_scalar,
    .rows_q5_k = rows_q5_k_scalar,
    .rows_q6_k = rows_q6_k_scalar,
    .rows_q2_k_tl = rows_q2_k_tl_scalar,
    .rows_q3_k_tl = rows_q3_k_tl_scalar,
    .rows_q5_k_tl = rows_q5_k_tl_scalar,
    .rows_q6_k_tl = rows_q6_k_tl_scalar,
    .rows_iq4_xs_tl = rows_iq4_xs_tl_scalar,
    .rows_dot = akk_rows_by_dot_scalar,
    .fp16_to_fp32_row = fp16_to_fp32_row_scalar,
    .fp32_to_fp16_row = fp32_to_fp16_row_scalar,
    .attn_rows_f32 = akk_attn_rows_f32_scalar,
    .attn_rows_f16 = akk_attn_rows_f16_scalar,
    .read_bytes = read_bytes_scalar,
    .rows_q4_k_r8 = akk_rows_q4_k_r8_scalar,
    .rows_iq4_nl_r8 = akk_rows_iq4_nl_r8_scalar,
    .rows_mxfp4_r8 = akk_rows_mxfp4_r8_scalar,
    .rows_q4_k_r8_dense = akk_rows_q4_k_r8_dense_scalar,
    .rows_iq4_xs_r16 = akk_rows_iq4_xs_r16_scalar,
    .rows_iq4_xs_r16_tl = akk_rows_iq4_xs_r16_tl_scalar,
    .attn_prefill_f32 = akk_attn_prefill_f32_scalar,
    .attn_prefill_f16 = akk_attn_prefill_f16_scalar,
};

/* ---- selection: a ladder scalar < avx2 < avx512 ----
 * The CPU's best level (CPUID), capped once at init by ADAK_CPU=scalar|avx2|avx512 (a level the
 * CPU lacks falls back to the best it has, with a warning akk_cpu_warning() hands to the log);
 * akk_force_level overrides both until akk_force_level(-1). */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static const struct akk_impl *const g_impls[AKK_CPU_N_LEVELS] = {&impl_scalar, &akk_impl_avx2, &akk_impl_avx512};
static const char *const g_level_names[AKK_CPU_N_LEVELS] = {"scalar", "avx2", "avx512"};
static int g_max_level, g_env_level, g_bf16; /* set once by select_impl */
static char g_warning[160];
static _Atomic(const struct akk_impl *) g_cur = NULL; /* the set in force; NULL before init */
static atomic_int g_level = 0;                         /* its level */

static void set_level(int level) {
    atomic_store(&g_level, level);
    atomic_store_explicit(&g_cur, g_impls[level], memory_order_release);
}

static void select_impl(void) {
    __builtin_cpu_init();
    int max = AKK_CPU_SCALAR;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
        max = AKK_CPU_AVX2;
        akk_avx2_prepare();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni")) {
            max = AKK_CPU_AVX512;
            akk_avx512_prepare();
        }
    }
    g_max_level = max;
    g_bf16 = max == AKK_CPU_AVX512 && __builtin_cpu_supports("avx512bf16");
    int level = max;
    const char *env = getenv("ADAK_CPU");
    if (env && *env) {
        int want = -1;
        for (int l = 0; l < AKK_CPU_N_LEVELS; l++)
            if (strcmp(env, g_level_names[l]) == 0) want = l;
        if (want < 0)
            snprintf(g_warning, sizeof g_warning, "ADAK_CPU=%.32s is not scalar, avx2 or avx512; using %s",
                     env, g_level_names[max]);
        else if (want > max)
            snprintf(g_warning, sizeof g_warning, "ADAK_CPU=%s: this CPU lacks %s; using %s", env,
                     want == AKK_CPU_AVX512 ? "AVX-512 F/BW/VL/VNNI" : "AVX2/FMA/F16C", g_level_names[max]);
        else
            level = want;
    }
    g_env_level = level;
    set_level(level);
}

int akk_init(void) {
    pthread_once(&g_once, select_impl);
    return atomic_load(&g_level) >= AKK_CPU_AVX2;
}

/* The implementation in force for this call. */
static inline const struct akk_impl *impl(void) {
    const struct akk_impl *p = atomic_load_explicit(&g_cur, memory_order_acquire);
    if (__builtin_expect(p == NULL, 0)) {
        akk_init();
        p = atomic_load(&g_cur);
    }
    return p;
}

int akk_cpu_level(void) {
    akk_init();
    return atomic_load_explicit(&g_level, memory_order_relaxed);
}

int akk_cpu_max_level(void) {
    akk_init();
    return g_max_level;
}

int akk_cpu_has_bf16(void) {
    akk_init();
    return g_bf16;
}

const char *akk_cpu_level_name(int level) {
    return level >= 0 && level < AKK_CPU_N_LEVELS ? g_level_names[level] : "unknown";
}

const char *akk_cpu_warning(void) {
    akk_init();
    return g_warning[0] ? g_warning : NULL;
}

int akk_force_level(int level) {
    akk_init();
    const int l = level < 0 ? g_env_level : level > g_max_level ? g_max_level : level;
    set_level(l);
    return l;
}

int akk_have_avx2(void) { return impl() != &impl_scalar; }

/* ---- the kernel table: every function of struct akk_impl except rows_dot (one dot per output,
 * for a weight type without a row kernel: none has none now) and read_bytes (the probe) ---- */
#define KE(name, field) {name, offsetof(struct akk_impl, field)}
static const struct { const char *name; size_t off; } g_kernels[] = {
    KE("quantize q8_0", quantize_q8_0), KE("quantize q8_1", quantize_q8_1), KE("quantize q8_K", quantize_q8_K),
    KE("dot", dot), KE("rows f32", rows_f32), KE("rows q8_0", rows_q8_0), KE("rows q4_0", rows_q4_0),
    KE("rows q4_1", rows_q4_1), KE("rows q4_0_r8", rows_q4_0_r8), KE("rows q5_0", rows_q5_0),
    KE("rows q5_1", rows_q5_1), KE("rows q2_k", rows_q2_k), KE("rows q3_k", rows_q3_k), KE("rows q4_k", rows_q4_k),
    KE("rows q5_k", rows_q5_k), KE("rows q6_k", rows_q6_k), KE("rows q4_k_r8", rows_q4_k_r8),
    KE("rows q4_k_r8_dense", rows_q4_k_r8_dense),
    KE("rows iq4_xs_r16", rows_iq4_xs_r16), KE("rows iq4_xs_r16 tiled", rows_iq4_xs_r16_tl),
    KE("rows iq4_nl_r8", rows_iq4_nl_r8), KE("rows mxfp4_r8", rows_mxfp4_r8),
    KE("rows iq4_nl", rows_iq4_nl), KE("rows iq4_xs", rows_iq4_xs), KE("rows mxfp4", rows_mxfp4),
    KE("rows iq4_nl_x8", rows_iq4_nl_x8), KE("rows mxfp4_x8", rows_mxfp4_x8),
    KE("rows q2_k tiled", rows_q2_k_tl), KE("rows q3_k tiled", rows_q3_k_tl), KE("rows q5_k tiled", rows_q5_k_tl),
    KE("rows q6_k tiled", rows_q6_k_tl), KE("rows iq4_xs tiled", rows_iq4_xs_tl),
    KE("fp16->fp32 row", fp16_to_fp32_row), KE("fp32->fp16 row", fp32_to_fp16_row),
    KE("attention rows f32", attn_rows_f32), KE("attention rows f16", attn_rows_f16),
    KE("attention prefill f32", attn_prefill_f32), KE("attention prefill f16", attn_prefill_f16),
};
#undef KE
#define N_KERNELS ((int)(sizeof g_kernels / sizeof g_kernels[0]))
_Static_assert(sizeof(struct akk_impl) == (N_KERNELS + 2) * sizeof(void (*)(void)),
               "a function of struct akk_impl is missing from the kernel table");

static void (*kernel_ptr(int level, int i))(void) {
    void (*f)(void);
    memcpy(&f, (const char *)g_impls[level] + g_kernels[i].off, sizeof f);
    return f;
}

int akk_kernel_count(void) { return N_KERNELS; }

const char *akk_kernel_name(int i) { return i >= 0 && i < N_KERNELS ? g_kernels[i].name : NULL; }

int akk_kernel_origin(int i, int level) {
    akk_init();
    if (i < 0 || i >= N_KERNELS || level < 0 || level > g_max_level) return -1;
    int l = level;
    while (l > 0 && kernel_ptr(l - 1, i) == kernel_ptr(level, i)) l--;
    return l;
}

void akk_force_scalar(int on) { akk_force_level(on ? AKK_CPU_SCALAR : -1); }

/* ---- dispatching entry points ---- */

void akk_quantize_row_q8_0(const float *x, void *y, int64_t n) { impl()->quantize_q8_0(x, y, n); }
void akk_quantize_row_q8_1(const float *x, void *y, int64_t n) { impl()->quantize_q8_1(x, y, n); }

void akk_quantize_activation(int wtype, const float *x, void *y, int64_t n) {
    switch (akk_vec_dot_type(wtype)) {
    case AKK_F32: memcpy(y, x, (size_t)n * 4); break;
    case AKK_Q8_0: akk_quantize_row_q8_0(x, y, n); break;
    case AKK_Q8_1: akk_quantize_row_q8_1(x, y, n); break;
    case AKK_Q8_K: impl()->quantize_q8_K(x, y, n); break;
    default: break;
    }
}

void akk_quantize_activation_rows(int wtype, const float *x, int64_t ldx, void *y, int64_t ldy, int64_t rows, int64_t n,
                                  int nthreads) {
    nthreads = akk_rows_threads(rows, n, nthreads);
    if (nthreads <= 1) {
        for (int64_t r = 0; r < rows; r++) akk_quantize_activation(wtype, x + r * ldx, (uint8_t *)y + r * ldy, n);
        return;
    }
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t r = 0; r < rows; r++) akk_quantize_activation(wtype, x + r * ldx, (uint8_t *)y + r * ldy, n);
}

float akk_vec_dot(int wtype, int64_t n, const void *w, const void *x) {
    return impl()->dot(wtype, n, w, x);
}

void akk_fp16_to_fp32_row(const uint16_t *x, float *y, int64_t n) { impl()->fp16_to_fp32_row(x, y, n); }
void akk_fp32_to_fp16_row(const float *x, uint16_t *y, int64_t n) { impl()->fp32_to_fp16_row(x, y, n); }

void akk_attn_rows_f32(AKK_ATTN_ROWS_ARGS(float)) { impl()->attn_rows_f32(n, rows, a, as, ag, group, m, b, bs, scale, out, os); }
void akk_attn_rows_f16(AKK_ATTN_ROWS_ARGS(uint16_t)) { impl()->attn_rows_f16(n, rows, a, as, ag, group, m, b, bs, scale, out, os); }
void akk_attn_prefill_f32(AKK_ATTN_PF_ARGS(float)) { impl()->attn_prefill_f32(one_acc, m, n, rows, a, as, b, bs, scale, out); }
void akk_attn_prefill_f16(AKK_ATTN_PF_ARGS(uint16_t)) { impl()->attn_prefill_f16(one_acc, m, n, rows, a, as, b, bs, scale, out); }

/* Row kernel of a weight type: its own (rows) or one dot per output (dot_rows, for types
 * without one); neither when the type is no matmul weight. */
struct rows_kernel {
    akk_rows_fn rows;
    const struct akk_impl *dot_rows;
    int wtype;
};

static akk_rows_fn rows_for(const struct akk_impl *p, int wtype, int tiled);

/* n_tok: the product's whole activation row count, which chooses llama.cpp's tiled order from
 * AKK_TILED_MIN_ROWS rows (for the types that have one) however the rows are then split. */
static struct rows_kernel kernel_for(const struct akk_impl *p, int wtype, int64_t n_tok) {
    akk_rows_fn r = rows_for(p, wtype, n_tok >= AKK_TILED_MIN_ROWS);
    const int by_dot = !r && wtype != AKK_Q4_0_R8 && wtype != AKK_Q4_K_R8 && wtype != AKK_Q4_K_R8_DENSE &&
                       wtype != AKK_IQ4_NL_R8 && wtype != AKK_IQ4_XS_R16 &&
                       wtype != AKK_MXFP4_R8 && akk_vec_dot_type(wtype) >= 0;
    return (struct rows_kernel){r, by_dot ? p : NULL, wtype};
}

static inline void run_rows(const struct rows_kernel *k, const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1,
                            int64_t n_in, const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    if (k->rows) k->rows(W, wrow, r0, r1, n_in, X, xstride, n_tok, Y, ystride);
    else k->dot_rows->rows_dot(k->wtype, W, wrow, r0, r1, n_in, X, xstride, n_tok, Y, ystride);
}

static akk_rows_fn rows_for(const struct akk_impl *p, int wtype, int tiled) {
    switch (wtype) {
    case AKK_F32: return p->rows_f32;
    case AKK_Q8_0: return p->rows_q8_0;
    case AKK_Q4_0: return p->rows_q4_0;
    case AKK_Q4_1: return p->rows_q4_1;
    case AKK_Q4_0_R8: return p->rows_q4_0_r8;
    case AKK_IQ4_NL: return p->rows_iq4_nl;
    case AKK_IQ4_XS: return tiled ? p->rows_iq4_xs_tl : p->rows_iq4_xs;
    case AKK_MXFP4: return p->rows_mxfp4;
    case AKK_IQ4_NL_X8: return p->rows_iq4_nl_x8;
    case AKK_MXFP4_X8: return p->rows_mxfp4_x8;
    case AKK_Q5_0: return p->rows_q5_0;
    case AKK_Q5_1: return p->rows_q5_1;
    case AKK_Q2_K: return tiled ? p->rows_q2_k_tl : p->rows_q2_k;
    case AKK_Q3_K: return tiled ? p->rows_q3_k_tl : p->rows_q3_k;
    case AKK_Q4_K: return p->rows_q4_k;
    case AKK_Q5_K: return tiled ? p->rows_q5_k_tl : p->rows_q5_k;
    case AKK_Q6_K: return tiled ? p->rows_q6_k_tl : p->rows_q6_k;
    case AKK_Q4_K_R8: return p->rows_q4_k_r8;
    case AKK_IQ4_NL_R8: return p->rows_iq4_nl_r8;
    case AKK_MXFP4_R8: return p->rows_mxfp4_r8;
    case AKK_Q4_K_R8_DENSE: return p->rows_q4_k_r8_dense;
    case AKK_IQ4_XS_R16: return tiled ? p->rows_iq4_xs_r16_tl : p->rows_iq4_xs_r16;
    default: return NULL;
    }
}

int64_t akk_work_min_units(int64_t n_units, int64_t unit_bytes, int64_t n_tok, int nthreads) {
    int64_t m;
    if (n_tok <= 4) {
        const int64_t b = unit_bytes * n_tok;
        m = b > 0 ? (AKK_MIN_ITEM + b - 1) / b : 1;
    } else {
        m = n_units / ((int64_t)nthreads * 8);
    }
    return m < 1 ? 1 : m;
}

/* Units before the end of a range covered by its last j items: 0, m, 2m, 4m, ... */
static int64_t tail_units(int64_t m, int j) { return j == 0 ? 0 : j >= 40 ? INT64_MAX / 2 : m << (j - 1); }

void akk_work_init(akk_work_range *ranges, int nthreads, int64_t n_units, int64_t min_units) {
    if (min_units < 1) min_units = 1;
    for (int t = 0; t < nthreads; t++) {
        akk_work_range *r = &ranges[t];
        r->begin = n_units * t / nthreads;
        r->end = n_units * (t + 1) / nthreads;
        r->min_units = min_units;
        r->n_items = 0;
        while (tail_units(min_units, (int)r->n_items) < r->end - r->begin) r->n_items++;
        r->front_back = (uint64_t)r->n_items << 32;
    }
}

int akk_work_next(akk_work_range *ranges, int nthreads, int me, int64_t *u0, int64_t *u1) {
    for (int k = 0; k < nthreads; k++) {
        akk_work_range *r = &ranges[(me + k) % nthreads];
        uint64_t v = __atomic_load_n(&r->front_back, __ATOMIC_RELAXED);
        for (;;) {
            const uint64_t f = v & 0xffffffffu, b = v >> 32;
            if (f >= b) break;
            /* own range: from the front; another's: from the back */
            const uint64_t nv = k == 0 ? (f + 1) | b << 32 : f | (b - 1) << 32;
            if (__atomic_compare_exchange_n(&r->front_back, &v, nv, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
                /* item i counted from the front is item n_items-1-i counted from the back */
                const int j = (int)(r->n_items - 1 - (int64_t)(k == 0 ? f : b - 1));
                const int64_t lo = r->end - tail_units(r->min_units, j + 1);
                *u0 = lo > r->begin ? lo : r->begin;
                *u1 = r->end - tail_units(r->min_units, j);
                return 1;
            }
        }
    }
    return 0;
}


void akk_matmul_rows(int wtype, const void *W, int64_t row_begin, int64_t row_end, int64_t n_in,
                     const void *X, int64_t xstride, int64_t n_tok,
                     float *Y, int64_t ystride) {
    const struct rows_kernel k = kernel_for(impl(), wtype, n_tok);
    const int64_t wrow = akk_row_bytes(wtype, n_in);
    if ((!k.rows && !k.dot_rows) || wrow <= 0 || row_end <= row_begin || n_tok <= 0) return;
    run_rows(&k, (const uint8_t *)W, wrow, row_begin, row_end, n_in, (const uint8_t *)X, xstride, n_tok, Y, ystride);
}

void akk_matmul(int wtype, const void *W, int64_t n_out, int64_t n_in,
                const void *X, int64_t xstride, int64_t n_tok,
                float *Y, int64_t ystride, int nthreads) {
    const struct rows_kernel k = kernel_for(impl(), wtype, n_tok);
    const int64_t wrow = akk_row_bytes(wtype, n_in);
    if ((!k.rows && !k.dot_rows) || wrow <= 0 || n_out <= 0 || n_tok <= 0) return;
    const uint8_t *wb = (const uint8_t *)W, *xb = (const uint8_t *)X;
    const int64_t align = akk_row_unit(wtype);
    if (nthreads <= 0) nthreads = omp_get_max_threads();
    /* Below ~64K multiply-adds a fork/join costs more than it saves. */
    if (n_out * n_in * n_tok < 65536) nthreads = 1;
    /* Split rows (each chunk of rows streams its part of W once); when there are too few rows for
     * that (e.g. a router with 8 outputs over a prompt), split tokens instead. */
    const int by_tokens = n_out / align < nthreads && n_tok >= nthreads;
    if (!by_tokens && nthreads > n_out / align) nthreads = (int)(n_out / align);
    if (nthreads <= 1) {
        run_rows(&k, wb, wrow, 0, n_out, n_in, xb, xstride, n_tok, Y, ystride);
        return;
    }
    if (by_tokens) {
        /* a multiple of 4: AKK_Q4_K_R8_DENSE's groups of 4 rows stay in one call */
        const int64_t per = ((n_tok + nthreads - 1) / nthreads + 3) / 4 * 4;
#pragma omp parallel num_threads(nthreads)
        {
            const int64_t t0 = (int64_t)omp_get_thread_num() * per;
            const int64_t t1 = t0 + per < n_tok ? t0 + per : n_tok;
            if (t0 < t1)
                run_rows(&k, wb, wrow, 0, n_out, n_in, xb + t0 * xstride, xstride, t1 - t0, Y + t0 * ystride, ystride);
        }
        return;
    }
    /* Row chunks shared as akk_work_next does: each thread streams a contiguous part of W, and a
     * thread held up (preempted on a shared machine, or late to start) has the end of its part
     * taken by the others. (Not schedule(dynamic): some libomp builds format debug strings on
     * every dispatch. Not chunks handed out in turn: a thread's chunks would then not follow
     * each other in memory, and the hardware prefetcher ramps up anew at every jump; a 590 KB
     * projection cut into 16 pieces that way streamed at half the speed of 2.) */
    const int64_t n_units = (n_out + align - 1) / align;
    akk_work_range ranges[nthreads];
    akk_work_init(ranges, nthreads, n_units, akk_work_min_units(n_units, align * wrow, n_tok, nthreads));
#pragma omp parallel num_threads(nthreads)
    {
    const int me = omp_get_thread_num();
    for (int64_t u0, u1; akk_work_next(ranges, nthreads, me, &u0, &u1);) {
        const int64_t r0 = u0 * align, r1 = u1 * align < n_out ? u1 * align : n_out;
        run_rows(&k, wb, wrow, r0, r1, n_in, xb, xstride, n_tok, Y, ystride);
    }
    }
}

/* ---- STREAM-style read bandwidth ---- */

struct akk_bw_probe {
    uint8_t *buf;
    size_t bytes, per;
    int nthreads;
};

akk_bw_probe *akk_bw_probe_create(size_t bytes, int nthreads) {
    if (nthreads <= 0) nthreads = omp_get_max_threads();
    bytes = (bytes / ((size_t)nthreads * 256)) * ((size_t)nthreads * 256);
    if (bytes == 0) return NULL;
    akk_bw_probe *p = malloc(sizeof *p);
    /* 2 MB aligned, on transparent huge pages where the host offers them (as the weights:
     * MappedFile.allocateAligned), so the probe is not slowed by page walks the decode avoids */
    const size_t huge = (size_t)2 << 20;
    uint8_t *buf = aligned_alloc(huge, (bytes + huge - 1) / huge * huge);
    if (buf) madvise(buf, (bytes + huge - 1) / huge * huge, MADV_HUGEPAGE);
    if (!p || !buf) {
        free(p);
        free(buf);
        return NULL;
    }
    const size_t per = bytes / (size_t)nthreads;
    /* First touch by the thread that later reads the part (page placement), with distinct
     * pseudo-random content: pages of identical bytes may be merged by the host (KSM), and the
     * probe would then measure cache instead of DRAM. */
#pragma omp parallel num_threads(nthreads)
    {
        uint64_t *q = (uint64_t *)(void *)(buf + (size_t)omp_get_thread_num() * per);
        uint64_t z = 0x9E3779B97F4A7C15ull * (uint64_t)(omp_get_thread_num() + 1);
        for (size_t i = 0; i < per / 8; i++) {
            z ^= z << 13; z ^= z >> 7; z ^= z << 17;
            q[i] = z;
        }
    }
    *p = (akk_bw_probe){buf, bytes, per, nthreads};
    return p;
}

double akk_bw_probe_run(akk_bw_probe *probe, int passes) {
    if (!probe) return 0.0;
    const struct akk_impl *p = impl();
    double best = 0.0;
    volatile uint64_t sink = 0;
    for (int rep = 0; rep < passes; rep++) {
        uint64_t total = 0;
        const double t0 = omp_get_wtime();
#pragma omp parallel num_threads(probe->nthreads) reduction(+ : total)
        total += p->read_bytes(probe->buf + (size_t)omp_get_thread_num() * probe->per, probe->per);
        const double dt = omp_get_wtime() - t0;
        sink += total;
        const double gbs = (double)probe->bytes / dt / 1e9;
        if (gbs > best) best = gbs;
    }
    (void)sink;
    return best;
}

void akk_bw_probe_free(akk_bw_probe *probe) {
    if (!probe) return;
    free(probe->buf);
    free(probe);
}

double akk_measure_read_bandwidth(size_t bytes, int nthreads) {
    akk_bw_probe *probe = akk_bw_probe_create(bytes, nthreads);
    const double bw = akk_bw_probe_run(probe, 5);
    akk_bw_probe_free(probe);
    return bw;
}

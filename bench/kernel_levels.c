/*
 * Kernel levels side by side, one thread, thread CPU time (a shared, loaded host's waiting does
 * not count): akk_matmul of random weights of each type at decode (1 token) and prefill (64
 * tokens; tiled-order types: 64 rows take llama.cpp's tiled order, 4 rows the vec_dot one), the
 * activation quantisers, the fp16 row conversions and the decode attention products, at each level
 * (scalar, avx2, avx512), best of `reps` runs; whether the levels give the same bits; and which
 * level's kernel each level runs (akk_kernel_origin: "avx2" under avx512 = no AVX-512 kernel).
 *
 *   cd Sources/CAdaKKernels && mkdir -p /tmp/akk && for f in *.c; do \
 *     clang -O3 -fno-math-errno -fopenmp -idirafter /usr/lib/llvm-19/lib/clang/19/include -Iinclude \
 *       -c $f -o /tmp/akk/${f%.c}.o; done && \
 *   clang -O2 -fopenmp -idirafter /usr/lib/llvm-19/lib/clang/19/include -Iinclude -I. \
 *     ../../bench/kernel_levels.c /tmp/akk/[a-z]*.o -L/usr/lib/llvm-19/lib -Wl,-rpath,/usr/lib/llvm-19/lib \
 *     -lomp -lopenblas -lm -o /tmp/akk/kernel_levels && /tmp/akk/kernel_levels 1024 2048 5 [type|other ...]
 *
 * Arguments: rows, columns (a multiple of 256), repetitions, then what to measure: type names
 * (q4_0, q6_k, iq4_xs, ...) and "quant", "fp16", "attn" (default: all). AKK_BENCH_TOKS=1,8,12
 * sets the matmuls' token counts.
 */
#include "adak_kernels.h"
#include "akk_internal.h"
#include "bench_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t z = 88172645463325252ull;
static uint32_t rnd(void) { z ^= z << 13; z ^= z >> 7; z ^= z << 17; return (uint32_t)z; }
static float frand(void) { return (float)(rnd() >> 8) / 16777216.0f * 2 - 1; }
static void put_f16(uint8_t *p, float f) { uint16_t h = akk_fp32_to_fp16(f); memcpy(p, &h, 2); }

/* The plain type a repacked one is made from. */
static int base_type(int type) {
    return type == AKK_Q4_0_R8 ? AKK_Q4_0 : type == AKK_Q4_K_R8 || type == AKK_Q4_K_R8_DENSE ? AKK_Q4_K : type;
}

/* Byte offsets of a block's fp16 scales (d, then dmin / m). */
static int scale_offsets(int type, int off[2]) {
    switch (type) {
    case AKK_Q2_K: off[0] = 80; off[1] = 82; return 2;
    case AKK_Q3_K: off[0] = 108; return 1;
    case AKK_Q6_K: off[0] = 208; return 1;
    case AKK_Q4_1: case AKK_Q5_1: case AKK_Q4_K: case AKK_Q5_K: off[0] = 0; off[1] = 2; return 2;
    default: off[0] = 0; return 1;
    }
}

/* n_out rows of n_in random weights of `type`: random quants and sub-block scales, sane scales. */
static void random_rows(int type, uint8_t *w, int n_out, int n_in) {
    const int base = base_type(type);
    const int64_t rb = akk_row_bytes(base, n_in), bs = akk_block_bytes(base);
    if (base == AKK_F32) {
        for (int64_t i = 0; i < (int64_t)n_out * n_in; i++) ((float *)(void *)w)[i] = frand();
        return;
    }
    for (int64_t k = 0; k < rb * n_out; k++) w[k] = (uint8_t)rnd();
    int off[2];
    const int ns = scale_offsets(base, off);
    for (int64_t b = 0; b < rb * n_out / bs; b++) {
        uint8_t *blk = w + b * bs;
        if (base == AKK_MXFP4 || base == AKK_MXFP4_X8) blk[0] = (uint8_t)(118 + rnd() % 8);
        else
            for (int s = 0; s < ns; s++) put_f16(blk + off[s], (s ? 0.1f : 0.01f) * frand());
    }
    if (type != base) {
        uint8_t *packed = malloc((size_t)(rb * n_out));
        if (type == AKK_Q4_0_R8) akk_repack_q4_0_r8(w, packed, n_out, n_in);
        else akk_repack_q4_k_r8(w, packed, n_out, n_in);
        memcpy(w, packed, (size_t)(rb * n_out));
        free(packed);
    }
}

/* Best CPU time (ms) of `reps` runs of body(arg) at each level; the levels the CPU lacks: 0. */
static void time_levels(int reps, void (*body)(void *), void *arg, void (*after)(void *, int), double ms[AKK_CPU_N_LEVELS]) {
    for (int l = 0; l < AKK_CPU_N_LEVELS; l++) {
        ms[l] = 0;
        if (l > akk_cpu_max_level()) continue;
        akk_force_level(l);
        ms[l] = 1e9;
        for (int i = 0; i < (l == 0 ? 1 : reps); i++) {
            const double t0 = bench_cpu();
            body(arg);
            const double dt = (bench_cpu() - t0) * 1e3;
            if (dt < ms[l]) ms[l] = dt;
        }
        after(arg, l);
    }
    akk_force_level(-1);
}

static const char *origin(const char *kernel) {
    static char buf[32];
    for (int i = 0; i < akk_kernel_count(); i++)
        if (!strcmp(akk_kernel_name(i), kernel)) {
            const int o = akk_kernel_origin(i, akk_cpu_max_level());
            snprintf(buf, sizeof buf, "%s", o < 0 ? "-" : akk_cpu_level_name(o));
            return buf;
        }
    return "?";
}

static void report(const char *what, const char *kernel, const double ms[AKK_CPU_N_LEVELS], int same) {
    printf("%-22s scalar %9.3f  avx2 %8.3f  avx512 %8.3f ms  avx512/avx2 %.3f  %-13s avx512 runs %s\n", what, ms[0],
           ms[1], ms[2], ms[1] > 0 ? ms[2] / ms[1] : 0, same ? "bit-identical" : "MISMATCH", origin(kernel));
}

/* ---- matmul ---- */
struct mm {
    int type, n_out, n_in, nt;
    const uint8_t *w, *x;
    int64_t xs;
    float *y, *ys[AKK_CPU_N_LEVELS];
};
static void mm_run(void *a) {
    struct mm *m = a;
    akk_matmul(m->type, m->w, m->n_out, m->n_in, m->x, m->xs, m->nt, m->y, m->n_out, 1);
}
static void mm_keep(void *a, int l) {
    struct mm *m = a;
    memcpy(m->ys[l], m->y, sizeof(float) * (size_t)m->n_out * (size_t)m->nt);
}

static void bench_type(int type, int n_out, int n_in, int reps) {
    const int base = base_type(type), tiled = type == AKK_Q2_K || type == AKK_Q3_K || type == AKK_Q5_K ||
                                                   type == AKK_Q6_K || type == AKK_IQ4_XS;
    if (akk_row_bytes(base, n_in) <= 0 || akk_vec_dot_type(base) < 0) return;
    uint8_t *w = malloc((size_t)(akk_row_bytes(base, n_in) * n_out));
    random_rows(type, w, n_out, n_in);
    /* token counts: 1, 4 (tiled-order types), 64; or the list in AKK_BENCH_TOKS ("1,8,12") */
    int toks[16] = {1, 4, 64}, nk = 3;
    const char *env = getenv("AKK_BENCH_TOKS");
    if (env && *env)
        for (nk = 0; nk < 16 && *env;) {
            const int v = atoi(env);
            if (v > 0) toks[nk++] = v;
            env = strchr(env, ',');
            if (!env) break;
            env++;
        }
    for (int k = 0; k < nk; k++) {
        if (toks[k] == 4 && !tiled && !getenv("AKK_BENCH_TOKS")) continue;
        struct mm m = {type, n_out, n_in, toks[k], w, NULL, akk_row_bytes(akk_vec_dot_type(base), n_in), NULL, {0}};
        uint8_t *x = malloc((size_t)(m.xs * m.nt));
        float *xf = malloc(sizeof(float) * (size_t)n_in);
        for (int t = 0; t < m.nt; t++) {
            for (int i = 0; i < n_in; i++) xf[i] = frand();
            akk_quantize_activation(base, xf, x + t * m.xs, n_in);
        }
        m.x = x;
        const size_t bytes = sizeof(float) * (size_t)n_out * (size_t)m.nt;
        m.y = malloc(bytes);
        for (int l = 0; l < AKK_CPU_N_LEVELS; l++) m.ys[l] = calloc(1, bytes);
        double ms[AKK_CPU_N_LEVELS];
        time_levels(reps, mm_run, &m, mm_keep, ms);
        int same = 1;
        for (int l = 1; l <= akk_cpu_max_level(); l++) same &= !memcmp(m.ys[0], m.ys[l], bytes);
        char what[40], kernel[40];
        snprintf(what, sizeof what, "%s x %d tok", akk_type_name(type), m.nt);
        snprintf(kernel, sizeof kernel, "rows %s%s", akk_type_name(type), tiled && m.nt >= 8 ? " tiled" : "");
        report(what, kernel, ms, same);
        for (int l = 0; l < AKK_CPU_N_LEVELS; l++) free(m.ys[l]);
        free(m.y);
        free(x);
        free(xf);
    }
    free(w);
}

/* ---- activation quantisers and fp16 rows: n values, 64 rows per run ---- */
struct rowop {
    int kind; /* 0..2: q8_0, q8_1, q8_K (via a weight type of that activation); 3 fp16->fp32, 4 fp32->fp16 */
    int64_t n;
    const float *x;
    const uint16_t *h;
    uint8_t *out, *outs[AKK_CPU_N_LEVELS];
    size_t bytes;
};
static void rowop_run(void *a) {
    struct rowop *r = a;
    static const int wt[3] = {AKK_Q8_0, AKK_Q4_1, AKK_Q4_K};
    for (int k = 0; k < 64; k++) {
        if (r->kind < 3) akk_quantize_activation(wt[r->kind], r->x + k * r->n, r->out + k * (r->bytes / 64), r->n);
        else if (r->kind == 3) akk_fp16_to_fp32_row(r->h + k * r->n, (float *)(void *)r->out + k * r->n, r->n);
        else akk_fp32_to_fp16_row(r->x + k * r->n, (uint16_t *)(void *)r->out + k * r->n, r->n);
    }
}
static void rowop_keep(void *a, int l) {
    struct rowop *r = a;
    memcpy(r->outs[l], r->out, r->bytes);
}

static void bench_rowops(int n, int reps, int fp16) {
    static const char *names[5] = {"quantize q8_0", "quantize q8_1", "quantize q8_K", "fp16->fp32 row", "fp32->fp16 row"};
    static const int act[3] = {AKK_Q8_0, AKK_Q8_1, AKK_Q8_K};
    float *x = malloc(sizeof(float) * (size_t)n * 64);
    uint16_t *h = malloc(sizeof(uint16_t) * (size_t)n * 64);
    for (int64_t i = 0; i < (int64_t)n * 64; i++) { x[i] = frand() * (float)(1 + rnd() % 100); h[i] = akk_fp32_to_fp16(x[i]); }
    for (int kind = fp16 ? 3 : 0; kind < (fp16 ? 5 : 3); kind++) {
        struct rowop r = {kind, n, x, h, NULL, {0}, 0};
        r.bytes = kind < 3 ? (size_t)akk_row_bytes(act[kind], n) * 64 : (size_t)n * 64 * (kind == 3 ? 4 : 2);
        r.out = malloc(r.bytes);
        for (int l = 0; l < AKK_CPU_N_LEVELS; l++) r.outs[l] = calloc(1, r.bytes);
        double ms[AKK_CPU_N_LEVELS];
        time_levels(reps * 20, rowop_run, &r, rowop_keep, ms);
        int same = 1;
        for (int l = 1; l <= akk_cpu_max_level(); l++) same &= !memcmp(r.outs[0], r.outs[l], r.bytes);
        char what[40];
        snprintf(what, sizeof what, "%s %dx64", names[kind] + (kind < 3 ? 9 : 0), n);
        report(what, names[kind], ms, same);
        for (int l = 0; l < AKK_CPU_N_LEVELS; l++) free(r.outs[l]);
        free(r.out);
    }
    free(x);
    free(h);
}

/* ---- decode attention products: 2048 K rows of d elements against the q of a GQA group of 4
 * heads (as the scores), both cache types (b: the fp16 values as floats for f16) ---- */
struct attn {
    int f16;
    int64_t d, rows;
    const void *k;
    const float *q;
    float out[4 * 2048], outs[AKK_CPU_N_LEVELS][4 * 2048];
};
static void attn_run(void *p) {
    struct attn *t = p;
    for (int k = 0; k < 4; k++) {
        if (t->f16) akk_attn_rows_f16(t->d, t->rows, t->k, t->d, 0, 4, 4, t->q, t->d, 0.125f, t->out, t->rows);
        else akk_attn_rows_f32(t->d, t->rows, t->k, t->d, 0, 4, 4, t->q, t->d, 0.125f, t->out, t->rows);
    }
}
static void attn_keep(void *p, int l) {
    struct attn *t = p;
    memcpy(t->outs[l], t->out, sizeof(float) * (size_t)(4 * t->rows));
}

static void bench_attn(int reps) {
    const int rows = 2048;
    for (int f16 = 0; f16 < 2; f16++)
        for (int64_t d = 64; d <= 128; d += 64) {
            const size_t es = f16 ? 2 : 4;
            uint8_t *k = malloc(es * (size_t)(d * rows));
            float *q = malloc(sizeof(float) * (size_t)(4 * d));
            for (int64_t i = 0; i < d * rows; i++) {
                if (f16) ((uint16_t *)(void *)k)[i] = akk_fp32_to_fp16(frand());
                else ((float *)(void *)k)[i] = frand();
            }
            for (int64_t i = 0; i < 4 * d; i++) q[i] = f16 ? akk_fp16_to_fp32(akk_fp32_to_fp16(frand())) : frand();
            struct attn *t = calloc(1, sizeof *t);
            t->f16 = f16, t->rows = rows, t->d = d, t->k = k, t->q = q;
            double ms[AKK_CPU_N_LEVELS];
            time_levels(reps * 4, attn_run, t, attn_keep, ms);
            int same = 1;
            for (int l = 1; l <= akk_cpu_max_level(); l++) same &= !memcmp(t->outs[0], t->outs[l], sizeof(float) * 4 * rows);
            char what[40];
            snprintf(what, sizeof what, "attn %s d%d x%d x4", f16 ? "f16" : "f32", (int)d, rows);
            report(what, f16 ? "attention rows f16" : "attention rows f32", ms, same);
            free(t);
            free(k);
            free(q);
        }
}

int main(int argc, char **argv) {
    const int n_out = argc > 1 ? atoi(argv[1]) : 1024, n_in = argc > 2 ? atoi(argv[2]) : 2048;
    const int reps = argc > 3 ? atoi(argv[3]) : 5;
    static const int types[] = {AKK_F32, AKK_Q8_0, AKK_Q4_0, AKK_Q4_1, AKK_Q4_0_R8, AKK_Q5_0, AKK_Q5_1, AKK_Q2_K,
                                AKK_Q3_K, AKK_Q4_K, AKK_Q4_K_R8, AKK_Q4_K_R8_DENSE, AKK_Q5_K, AKK_Q6_K, AKK_IQ4_NL, AKK_IQ4_XS,
                                AKK_MXFP4, AKK_IQ4_NL_X8, AKK_MXFP4_X8};
    akk_init();
    printf("best level %s, BF16 %d; %d x %d, best of %d, CPU ms\n", akk_cpu_level_name(akk_cpu_max_level()),
           akk_cpu_has_bf16(), n_out, n_in, reps);
    for (int a = 4; a < (argc > 4 ? argc : 5); a++) {
        const char *want = a < argc ? argv[a] : NULL;
        for (int ti = 0; ti < (int)(sizeof types / sizeof types[0]); ti++)
            if (!want || !strcmp(want, akk_type_name(types[ti]))) bench_type(types[ti], n_out, n_in, reps);
        if (!want || !strcmp(want, "quant")) bench_rowops(n_in, reps, 0);
        if (!want || !strcmp(want, "fp16")) bench_rowops(n_in, reps, 1);
        if (!want || !strcmp(want, "attn")) bench_attn(reps);
    }
    return 0;
}

/*
 * Kernel-level timing of one weight type's row kernel (akk_matmul, 1 thread) against one vec_dot
 * per output (akk_rows_by_dot_avx2), in thread CPU time, so that a shared, loaded host's waiting
 * does not count (cache effects of neighbours still do). Random quants with fp16 scales of 0.01;
 * also checks the outputs against the single dots (vec_dot order) and against the same product at the
 * scalar level (the same order, vec_dot or tiled: every output).
 * Also prints cycles per output-block (one row x one token x one 32-element block: one vpdpbusd
 * and one fma in llama.cpp's block order) at the clock a dependent-add chain measures.
 *
 *   S=Sources/CAdaKKernels; cc -O3 -fopenmp -ffp-contract=off -I$S/include -I$S \
 *       -o kernel_bench bench/kernel_bench.c $S/[a-z]*.c -lm -lopenblas
 *   ./kernel_bench TYPE N_OUT N_IN N_TOK REPS      (TYPE: ggml type number, e.g. 12 = Q4_K)
 * TYPE 1123 (AKK_IQ4_XS_R16): IQ4_XS weights repacked; times the plain IQ4_XS product (before) and
 * the repacked one (after) of the same weights, and checks that they agree to the bit.
 * IQ4_XS_VBMI=0 turns the avx512 IQ4_XS kernels' VBMI lookups off (akk_iq4_xs_vbmi).
 */
#include "adak_kernels.h"
#include "akk_internal.h"
#include "bench_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return (uint32_t)rng; }

/* AKK_IQ4_XS_R16 against plain IQ4_XS (see the top). */
static int bench_r16(int64_t nout, int64_t nin, int ntok, int reps) {
    const int64_t wr = akk_row_bytes(AKK_IQ4_XS, nin), xr = akk_row_bytes(AKK_Q8_K, nin);
    uint8_t *W = malloc((size_t)(wr * nout)), *W2 = malloc((size_t)(wr * nout));
    for (int64_t i = 0; i < wr * nout; i++) W[i] = (uint8_t)rnd();
    const uint16_t h = akk_fp32_to_fp16(0.01f);
    for (int64_t b = 0; b < wr * nout / 136; b++) memcpy(W + b * 136, &h, 2);
    if (akk_repack_iq4_xs_r16(W, W2, nout, nin)) return 2;
    if (getenv("IQ4_XS_VBMI")) akk_iq4_xs_vbmi(atoi(getenv("IQ4_XS_VBMI")));
    float *x = malloc(sizeof(float) * (size_t)(nin * ntok));
    for (int64_t i = 0; i < nin * ntok; i++) x[i] = (float)((int)(rnd() % 2001) - 1000) / 1000.0f;
    uint8_t *X = malloc((size_t)(xr * ntok));
    for (int t = 0; t < ntok; t++) akk_quantize_activation(AKK_IQ4_XS, x + t * nin, X + t * xr, nin);
    float *Y = malloc(sizeof(float) * (size_t)(nout * ntok)), *Y1 = malloc(sizeof(float) * (size_t)(nout * ntok));
    double best_plain = 1e9, best_r16 = 1e9;
    for (int r = 0; r < reps; r++) {
        const double t0 = bench_cpu();
        akk_matmul(AKK_IQ4_XS, W, nout, nin, X, xr, ntok, Y, nout, 1);
        const double t1 = bench_cpu();
        akk_matmul(AKK_IQ4_XS_R16, W2, nout, nin, X, xr, ntok, Y1, nout, 1);
        const double t2 = bench_cpu();
        if (t1 - t0 < best_plain) best_plain = t1 - t0;
        if (t2 - t1 < best_r16) best_r16 = t2 - t1;
    }
    int diff = 0;
    for (int64_t i = 0; i < nout * ntok; i++) diff += memcmp(&Y[i], &Y1[i], 4) != 0;
    const double ns = 1e9 / ((double)nout * ntok);
    printf("iq4_xs %lldx%lld, %d tokens (%s): plain %.2f ns/output (%.1f GB/s), r16 %.2f ns/output (%.1f GB/s), "
           "r16/plain %.2f; outputs differing %d\n", (long long)nout, (long long)nin, ntok, akk_cpu_level_name(akk_cpu_level()),
           best_plain * ns, (double)(wr * nout) / best_plain / 1e9, best_r16 * ns, (double)(wr * nout) / best_r16 / 1e9,
           best_r16 / best_plain, diff);
    free(W); free(W2); free(x); free(X); free(Y); free(Y1);
    return diff != 0;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s TYPE N_OUT N_IN N_TOK REPS\n", argv[0]);
        return 2;
    }
    const int type = atoi(argv[1]), ntok = atoi(argv[4]), reps = atoi(argv[5]);
    const int64_t nout = atoll(argv[2]), nin = atoll(argv[3]);
    const int64_t wr = akk_row_bytes(type, nin), bb = akk_block_bytes(type);
    const int vt = akk_vec_dot_type(type);
    if (!akk_init() || wr <= 0 || vt < 0 || nout <= 0 || ntok <= 0 || reps <= 0) {
        fprintf(stderr, "no AVX2, or bad type/shape\n");
        return 2;
    }
    if (type == AKK_IQ4_XS_R16) return bench_r16(nout, nin, ntok, reps);
    uint8_t *W = malloc((size_t)(wr * nout));
    for (int64_t i = 0; i < wr * nout; i++) W[i] = (uint8_t)rnd();
    const int off = type == AKK_Q6_K ? 208 : type == AKK_Q3_K ? 108 : type == AKK_Q2_K ? 80 : 0;
    const uint16_t h = akk_fp32_to_fp16(0.01f);
    for (int64_t b = 0; b < wr * nout / bb; b++) memcpy(W + b * bb + off, &h, 2);
    float *x = malloc(sizeof(float) * (size_t)(nin * ntok));
    for (int64_t i = 0; i < nin * ntok; i++) x[i] = (float)((int)(rnd() % 2001) - 1000) / 1000.0f;
    const int64_t xr = akk_row_bytes(vt, nin);
    uint8_t *X = malloc((size_t)(xr * ntok));
    for (int t = 0; t < ntok; t++) akk_quantize_activation(type, x + t * nin, X + t * xr, nin);
    float *Y = malloc(sizeof(float) * (size_t)(nout * ntok)), *Y1 = malloc(sizeof(float) * (size_t)(nout * ntok));
    double best_rows = 1e9, best_dot = 1e9;
    for (int r = 0; r < reps; r++) {
        const double t0 = bench_cpu();
        akk_matmul(type, W, nout, nin, X, xr, ntok, Y, nout, 1);
        const double t1 = bench_cpu();
        akk_rows_by_dot_avx2(type, W, wr, 0, nout, nin, X, xr, ntok, Y1, nout);
        const double t2 = bench_cpu();
        if (t1 - t0 < best_rows) best_rows = t1 - t0;
        if (t2 - t1 < best_dot) best_dot = t2 - t1;
    }
    /* the reference: the same product at the scalar level, which takes the same float order
     * (vec_dot's, or llama.cpp's tiled one for the types that use it from AKK_TILED_MIN_ROWS
     * tokens; the single dots above are vec_dot's, so they differ from a tiled product) */
    int diff = 0, sdiff = 0;
    for (int64_t i = 0; i < nout * ntok; i++) diff += memcmp(&Y[i], &Y1[i], 4) != 0;
    akk_force_level(0);
    akk_matmul(type, W, nout, nin, X, xr, ntok, Y1, nout, 1);
    akk_force_level(-1);
    /* the random second scale (dmin, m) of some types is NaN or Inf at times: NaN either way counts as
     * the same (the NaN's payload may differ; the tests canonicalise NaNs the same way) */
    for (int64_t i = 0; i < nout * ntok; i++)
        sdiff += memcmp(&Y[i], &Y1[i], 4) != 0 && !(Y[i] != Y[i] && Y1[i] != Y1[i]);
    const double macs = (double)nout * (double)nin * ntok, ghz = bench_clock_ghz();
    printf("%s %lldx%lld, %d tokens: rows %.1f GMAC/s (%.1f GB/s of weights; %.3f cycles per output-block at %.2f GHz), "
           "one dot per output %.1f GMAC/s; outputs differing from the dots %d, from the scalar level %d\n",
           akk_type_name(type), (long long)nout, (long long)nin, ntok, macs / best_rows / 1e9,
           (double)(wr * nout) / best_rows / 1e9, best_rows * ghz * 1e9 / (macs / 32), ghz, macs / best_dot / 1e9,
           diff, sdiff);
    free(W); free(x); free(X); free(Y); free(Y1);
    return sdiff != 0;
}

/*
 * The decode expert step at kernel level against one long product of the same bytes, right after
 * the read probe: akk_moe_ffn for 1 token over 16 layers of 8 mixtral-shaped experts (1024 x 3584,
 * Q4_0_R8, each matrix its own huge-page allocation), 2 pseudo-random experts per layer, then one
 * akk_matmul over a matrix of the same total bytes; wall time, best of 3 each, GB/s of weights.
 * Repeated ITER times so the host's bandwidth state shows (the probe flips between ~34 and ~54
 * GB/s on the Zen 4 hosts of docs/BENCHMARKS.md). Weights are pseudo-random bytes: speed only.
 *
 *   cd Sources/CAdaKKernels && clang -O2 -fopenmp -idirafter /usr/lib/llvm-19/lib/clang/19/include \
 *     -Iinclude -I. ../../bench/moe_step_vs_probe.c /tmp/akk/[a-z]*.o -L/usr/lib/llvm-19/lib \
 *     -Wl,-rpath,/usr/lib/llvm-19/lib -lomp -lopenblas -lm -o /tmp/moe_step_vs_probe
 *   /tmp/moe_step_vs_probe ITER [THREADS]
 * (/tmp/akk: the kernel objects, as bench/attn_bench.c builds them.)
 */
#include "adak_grouped.h"
#include "adak_kernels.h"
#include "bench_util.h"
#include <stdio.h>

#define L 16
#define E 8

/* bytes of pseudo-random weights on huge pages */
static void *weights(size_t bytes) {
    void *p = bench_huge_alloc(bytes);
    if (p) bench_fill(p, bytes, 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)p);
    return p;
}

int main(int argc, char **argv) {
    const int iter = argc > 1 ? atoi(argv[1]) : 4, threads = argc > 2 ? atoi(argv[2]) : 2;
    const int type = AKK_Q4_0_R8;
    const int64_t d = 1024, f = 3584, rg = akk_row_bytes(type, d), rd = akk_row_bytes(type, f);
    const int xt = akk_vec_dot_type(type);
    const int64_t xb = akk_row_bytes(xt, d), hb = akk_row_bytes(xt, f);
    void *gate[L][E], *up[L][E], *down[L][E];
    for (int l = 0; l < L; l++)
        for (int e = 0; e < E; e++)
            if (!(gate[l][e] = weights((size_t)(rg * f))) || !(up[l][e] = weights((size_t)(rg * f))) ||
                !(down[l][e] = weights((size_t)(rd * d))))
                return 1;
    const size_t step = (size_t)L * 2 * (size_t)(2 * rg * f + rd * d); /* bytes one step reads */
    const int64_t big_rows = (int64_t)(step / (size_t)rg) / 16 * 16;
    uint8_t *x = calloc(2, (size_t)xb), *h = malloc(2 * (size_t)hb), *big = weights((size_t)(big_rows * rg));
    float *g = malloc(sizeof(float) * 2 * (size_t)f), *u = malloc(sizeof(float) * 2 * (size_t)f);
    float *out = malloc(sizeof(float) * 2 * (size_t)d), *y = malloc(sizeof(float) * (size_t)big_rows), w[2] = {0.5f, 0.5f};
    akk_bw_probe *probe = akk_bw_probe_create((size_t)1 << 30, threads);
    if (!x || !h || !big || !g || !u || !out || !y || !probe) return 1;
    memset(x, 1, 2 * (size_t)xb);
    uint64_t z = 1;
    for (int it = 0; it < iter; it++) {
        const double pb = akk_bw_probe_run(probe, 2);
        double t_step = 1e9, t_one = 1e9;
        for (int r = 0; r < 3; r++) {
            const double t0 = bench_wall();
            for (int l = 0; l < L; l++) {
                z = z * 6364136223846793005ull + 1442695040888963407ull;
                const int e1 = (int)((z >> 33) % E), e2 = (int)((e1 + 1 + (z >> 40) % (E - 1)) % E);
                const akk_moe_expert ex[2] = {{gate[l][e1], up[l][e1], down[l][e1], 0, 1}, {gate[l][e2], up[l][e2], down[l][e2], 1, 1}};
                akk_moe_ffn(type, type, type, d, f, ex, 2, x, 0, x, 0, g, u, h, hb, w, out, d, threads);
            }
            const double t = bench_wall() - t0;
            if (t < t_step) t_step = t;
        }
        for (int r = 0; r < 3; r++) {
            const double t0 = bench_wall();
            akk_matmul(type, big, big_rows, d, x, xb, 1, y, big_rows, threads);
            const double t = bench_wall() - t0;
            if (t < t_one) t_one = t;
        }
        printf("probe %.1f GB/s | expert step %.1f GB/s | one product %.1f GB/s  (%d threads, %.0f MB per step)\n", pb,
               step / t_step / 1e9, (double)(big_rows * rg) / t_one / 1e9, threads, step / 1e6);
    }
    akk_bw_probe_free(probe);
    return 0;
}

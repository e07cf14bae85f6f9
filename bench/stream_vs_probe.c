/*
 * One decode product (1 token) over a matrix far larger than L3, timed right after the read
 * probe (akk_bw_probe, as `adak bench` takes it), to tell the host's bandwidth state from the
 * kernels: prints the probe at 2 and 1 threads, then the product's GB/s of weights (best of
 * REPS, wall time). Weights are pseudo-random bytes (speed only: the values are not checked; the
 * repacked types take them as repacked).
 *
 *   cd Sources/CAdaKKernels && clang -O2 -fopenmp -idirafter /usr/lib/llvm-19/lib/clang/19/include \
 *     -Iinclude -I. ../../bench/stream_vs_probe.c /tmp/akk/[a-z]*.o -L/usr/lib/llvm-19/lib \
 *     -Wl,-rpath,/usr/lib/llvm-19/lib -lomp -lopenblas -lm -o /tmp/stream_vs_probe
 *   /tmp/stream_vs_probe TYPE N_OUT N_IN THREADS REPS [PARTS]  (e.g. 1002 327680 2048 2 4: Q4_0_R8, 377 MB)
 * PARTS > 1 runs the rows as that many products in turn (as a decode step meets its matrices:
 * e.g. 1002 327680 1024 2 4 160 is 160 mixtral-shaped 3584 x 1024 expert matrices of ~1.2 MB).
 * STREAM_PAGES=4k puts the weights on 4 KB pages instead (MADV_NOHUGEPAGE), as a matrix's tail
 * past its last whole huge page sat before the loader's chunks (Weights.swift).
 * (/tmp/akk: the kernel objects, as bench/attn_bench.c builds them.)
 */
#include "adak_kernels.h"
#include "bench_util.h"
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s TYPE N_OUT N_IN THREADS REPS [PARTS]\n", argv[0]);
        return 2;
    }
    const int type = atoi(argv[1]), threads = atoi(argv[4]), reps = atoi(argv[5]), parts = argc > 6 ? atoi(argv[6]) : 1;
    const int64_t n_out = atoll(argv[2]), n_in = atoll(argv[3]);
    const int64_t wrow = akk_row_bytes(type, n_in), xrow = akk_row_bytes(akk_vec_dot_type(type), n_in);
    if (wrow <= 0 || xrow <= 0 || n_out <= 0 || reps <= 0 || parts < 1 || n_out % (parts * 16)) {
        fprintf(stderr, "bad type or shape\n");
        return 2;
    }
    const size_t bytes = (size_t)(wrow * n_out);
    uint8_t *W = bench_huge_alloc(bytes), *X = malloc((size_t)xrow);
    float *Y = malloc(sizeof(float) * (size_t)n_out);
    if (!W || !X || !Y) return 1;
    const char *pages = getenv("STREAM_PAGES");
    if (pages && !strcmp(pages, "4k")) madvise(W, bytes, MADV_NOHUGEPAGE);
    bench_fill(W, bytes, 88172645463325252ull);
    memset(X, 1, (size_t)xrow);
    akk_bw_probe *p2 = akk_bw_probe_create((size_t)1 << 30, 2), *p1 = akk_bw_probe_create((size_t)1 << 30, 1);
    const double b2 = akk_bw_probe_run(p2, 2), b1 = akk_bw_probe_run(p1, 2);
    double best = 1e9;
    for (int r = 0; r < reps; r++) {
        const double t0 = bench_wall();
        const int64_t rows = n_out / parts;
        for (int k = 0; k < parts; k++)
            akk_matmul(type, W + (size_t)(k * rows * wrow), rows, n_in, X, xrow, 1, Y + k * rows, rows, threads);
        const double t = bench_wall() - t0;
        if (t < best) best = t;
    }
    printf("probe %.1f GB/s (2 threads), %.1f (1 thread); type %d %lldx%lld (%.0f MB) in %d part(s), %d thread(s): %.1f GB/s\n",
           b2, b1, type, (long long)n_out, (long long)n_in, bytes / 1e6, parts, threads, bytes / best / 1e9);
    akk_bw_probe_free(p2);
    akk_bw_probe_free(p1);
    return 0;
}

/*
 * Kernel levels side by side: akk_matmul of random Q8_0 / Q4_0 / Q4_1 / Q4_0_R8 / Q4_K / Q4_K_R8 /
 * Q4_K_R8_DENSE / Q6_K weights on one
 * thread at each level (scalar, avx2, avx512), best of `reps` runs, and whether all three give
 * the same bits. Decode (1 token) and prefill (64 tokens) shapes.
 *
 *   cd Sources/CAdaKKernels && mkdir -p /tmp/akk && for f in *.c; do \
 *     clang -O3 -fno-math-errno -fopenmp -idirafter /usr/lib/llvm-19/lib/clang/19/include -Iinclude \
 *       -c $f -o /tmp/akk/${f%.c}.o; done && \
 *   clang -O2 -fopenmp -idirafter /usr/lib/llvm-19/lib/clang/19/include -Iinclude \
 *     ../../bench/kernel_levels.c /tmp/akk/[a-z]*.o -L/usr/lib/llvm-19/lib -Wl,-rpath,/usr/lib/llvm-19/lib \
 *     -lomp -lopenblas -lm -o /tmp/akk/kernel_levels && /tmp/akk/kernel_levels 4096 4096 5
 */
#include "adak_kernels.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t z = 88172645463325252ull;
static uint32_t rnd(void) { z ^= z << 13; z ^= z >> 7; z ^= z << 17; return (uint32_t)z; }
static float frand(void) { return (float)(rnd() >> 8) / 16777216.0f * 2 - 1; }
static void put_f16(uint8_t *p, float f) { uint16_t h = akk_fp32_to_fp16(f); memcpy(p, &h, 2); }

/* The plain type a repacked one is made from. */
static int base_type(int type) {
    return type == AKK_Q4_0_R8 ? AKK_Q4_0 : type == AKK_Q4_K_R8 || type == AKK_Q4_K_R8_DENSE ? AKK_Q4_K : type;
}

/* n_out rows of n_in random weights of `type` (Q4_1, K-quants: random quants and sub-block
 * scales, random fp16 scales of sane size). */
static void random_rows(int type, uint8_t *w, int n_out, int n_in) {
    const int base = base_type(type);
    const int64_t rb = akk_row_bytes(base, n_in);
    float *f = malloc(sizeof(float) * (size_t)n_in);
    for (int o = 0; o < n_out; o++) {
        uint8_t *row = w + o * rb;
        for (int i = 0; i < n_in; i++) f[i] = frand();
        if (base == AKK_Q4_0) akk_quantize_row_q4_0_ref(f, row, n_in);
        else if (base == AKK_Q8_0) akk_quantize_row_q8_0_scalar(f, row, n_in);
        else if (base == AKK_Q4_K || base == AKK_Q6_K)
            for (int b = 0; b < n_in / 256; b++) {
                uint8_t *blk = row + b * akk_block_bytes(base);
                for (int k = 0; k < akk_block_bytes(base); k++) blk[k] = (uint8_t)rnd();
                put_f16(blk + (base == AKK_Q6_K ? 208 : 0), frand() * 0.01f);
                if (base == AKK_Q4_K) put_f16(blk + 2, frand() * 0.01f);
            }
        else
            for (int b = 0; b < n_in / 32; b++) {
                for (int k = 4; k < 20; k++) row[b * 20 + k] = (uint8_t)rnd();
                put_f16(row + b * 20, frand() * 0.01f);
                put_f16(row + b * 20 + 2, frand() * 0.1f);
            }
    }
    if (type != base) {
        uint8_t *packed = malloc((size_t)(rb * n_out));
        if (type == AKK_Q4_0_R8) akk_repack_q4_0_r8(w, packed, n_out, n_in);
        else akk_repack_q4_k_r8(w, packed, n_out, n_in);
        memcpy(w, packed, (size_t)(rb * n_out));
        free(packed);
    }
    free(f);
}

int main(int argc, char **argv) {
    const int n_out = argc > 1 ? atoi(argv[1]) : 1024, n_in = argc > 2 ? atoi(argv[2]) : 1024;
    const int reps = argc > 3 ? atoi(argv[3]) : 20;
    const int types[] = {AKK_Q8_0, AKK_Q4_0, AKK_Q4_1, AKK_Q4_0_R8, AKK_Q4_K, AKK_Q4_K_R8, AKK_Q4_K_R8_DENSE, AKK_Q6_K}, toks[] = {1, 64};
    akk_init();
    printf("best level %s, BF16 %d\n", akk_cpu_level_name(akk_cpu_max_level()), akk_cpu_has_bf16());
    for (int ti = 0; ti < (int)(sizeof types / sizeof types[0]); ti++) {
        const int type = types[ti], base = base_type(type);
        uint8_t *w = malloc((size_t)(akk_row_bytes(base, n_in) * n_out));
        random_rows(type, w, n_out, n_in);
        for (int k = 0; k < 2; k++) {
            const int nt = toks[k];
            const int64_t xs = akk_row_bytes(akk_vec_dot_type(base), n_in);
            uint8_t *x = malloc((size_t)(xs * nt));
            float *xf = malloc(sizeof(float) * (size_t)n_in);
            for (int t = 0; t < nt; t++) {
                for (int i = 0; i < n_in; i++) xf[i] = frand();
                akk_quantize_activation(base, xf, x + t * xs, n_in);
            }
            float *y[AKK_CPU_N_LEVELS];
            double ms[AKK_CPU_N_LEVELS];
            for (int l = 0; l < AKK_CPU_N_LEVELS; l++) {
                y[l] = malloc(sizeof(float) * (size_t)n_out * (size_t)nt);
                akk_force_level(l);
                ms[l] = 1e9;
                for (int i = 0; i < (l == 0 ? 1 : reps); i++) {
                    const double t0 = omp_get_wtime();
                    akk_matmul(type, w, n_out, n_in, x, xs, nt, y[l], n_out, 1);
                    const double dt = (omp_get_wtime() - t0) * 1e3;
                    if (dt < ms[l]) ms[l] = dt;
                }
            }
            akk_force_level(-1);
            const size_t bytes = sizeof(float) * (size_t)n_out * (size_t)nt;
            const int same = !memcmp(y[0], y[1], bytes) && !memcmp(y[0], y[2], bytes);
            printf("%-8s tok %2d  scalar %9.3f ms  avx2 %8.3f ms  avx512 %8.3f ms  avx512/avx2 %.3f  %s\n",
                   akk_type_name(type), nt, ms[0], ms[1], ms[2], ms[2] / ms[1], same ? "bit-identical" : "MISMATCH");
            for (int l = 0; l < AKK_CPU_N_LEVELS; l++) free(y[l]);
            free(x);
            free(xf);
        }
        free(w);
    }
    return 0;
}

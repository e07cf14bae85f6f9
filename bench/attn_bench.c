/*
 * Kernel-level timing of decode attention (akk_attention, n_tok = 1), or with `prefill N_TOK` of a
 * prefill of N_TOK tokens ending at position CONTEXT - 1, at each kernel level, in
 * thread CPU time (a shared, loaded host's waiting does not count): LAYERS separate K/V caches
 * in turn (as a decode step meets them, so the caches come from memory, not L2), best of REPS
 * passes, microseconds per layer; and whether every level gives the scalar level's bits.
 *
 *   cd Sources/CAdaKKernels && mkdir -p /tmp/akk && for f in *.c; do \
 *     clang -O3 -fno-math-errno -fopenmp -idirafter /usr/lib/llvm-19/lib/clang/19/include -Iinclude \
 *       -c $f -o /tmp/akk/${f%.c}.o; done && \
 *   clang -O2 -fopenmp -idirafter /usr/lib/llvm-19/lib/clang/19/include -Iinclude -I. \
 *     ../../bench/attn_bench.c /tmp/akk/[a-z]*.o -L/usr/lib/llvm-19/lib -Wl,-rpath,/usr/lib/llvm-19/lib \
 *     -lomp -lopenblas -lm -o /tmp/akk/attn_bench
 *   [ATTN_BENCH_LEVEL=2] /tmp/akk/attn_bench [prefill N_TOK] N_HEAD N_HEAD_KV HEAD_DIM CONTEXT [f16|f32] [REPS] [LAYERS] [THREADS] [N_CTX]
 *
 * e.g. decode, mixtral-shaped: 16 4 64 256 f16; qwen3-30b-a3b-shaped: 32 4 128 1024 f16; prefill
 * as `adak bench`'s pp128, SmolLM2: prefill 128 9 3 64 128 f32. THREADS > 1 times the calling
 * thread only (the others' CPU time is not counted). The hash of the output bits compares builds
 * (e.g. this file linked against another commit's kernels). ATTN_WALL=1 times wall-clock instead
 * (the calling thread's CPU time includes its spinning at the region's end; run both builds with
 * OMP_PROC_BIND=spread OMP_PLACES=cores: unpinned, a process now and then keeps both threads on
 * one vCPU and runs up to 5x slower).
 */
#include "adak_kernels.h"
#include "akk_internal.h"
#include "bench_util.h"
#include "adak_ops.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t z = 88172645463325252ull;
static uint32_t rnd(void) { z ^= z << 13; z ^= z >> 7; z ^= z << 17; return (uint32_t)z; }
static float frand(void) { return (float)(rnd() >> 8) / 16777216.0f * 2 - 1; }

int main(int argc, char **argv) {
    int n_tok = 1;
    if (argc > 2 && !strcmp(argv[1], "prefill")) {
        n_tok = atoi(argv[2]);
        argv += 2;
        argc -= 2;
    }
    if (argc < 5) {
        fprintf(stderr, "usage: %s [prefill N_TOK] N_HEAD N_HEAD_KV HEAD_DIM CONTEXT [f16|f32] [REPS] [LAYERS] [THREADS] [N_CTX]\n", argv[0]);
        return 2;
    }
    const int nh = atoi(argv[1]), nkv = atoi(argv[2]), hd = atoi(argv[3]), ctx = atoi(argv[4]);
    const int f16 = argc <= 5 || strcmp(argv[5], "f32") != 0;
    const int reps = argc > 6 ? atoi(argv[6]) : 20, layers = argc > 7 ? atoi(argv[7]) : 16;
    const int threads = argc > 8 ? atoi(argv[8]) : 1;
    if (!akk_init() || nh <= 0 || nkv <= 0 || nh % nkv || hd <= 0 || ctx <= 0 || reps <= 0 || layers <= 0 || n_tok <= 0 ||
        n_tok > ctx) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    /* the cache's rows (default: `adak bench`'s, the positions used + 1; for a prefill the 128
     * tokens it decodes after the prompt as well) */
    const int n_ctx = argc > 9 && atoi(argv[9]) > ctx ? atoi(argv[9]) : ctx + 1 + (n_tok > 1 ? 128 : 0);
    const int64_t kvdim = (int64_t)nkv * hd, qdim = (int64_t)nh * hd, es = f16 ? 2 : 4;
    const int64_t cache = kvdim * n_ctx * es; /* bytes of K (and of V) per layer */
    uint8_t *K = bench_huge_alloc((size_t)(cache * layers)), *V = bench_huge_alloc((size_t)(cache * layers));
    for (int64_t i = 0; i < kvdim * n_ctx * layers; i++) {
        const float k = frand() * 2, v = frand();
        if (f16) {
            ((uint16_t *)(void *)K)[i] = akk_fp32_to_fp16(k);
            ((uint16_t *)(void *)V)[i] = akk_fp32_to_fp16(v);
        } else {
            ((float *)(void *)K)[i] = k;
            ((float *)(void *)V)[i] = v;
        }
    }
    const int64_t qn = qdim * n_tok; /* q and output floats per layer */
    float *q = malloc(sizeof(float) * (size_t)qn), *scratch = malloc(sizeof(float) * (size_t)(nh + threads) * n_ctx);
    float *out[AKK_CPU_N_LEVELS];
    for (int64_t i = 0; i < qn; i++) q[i] = frand();
    const float scale = 1.0f / sqrtf((float)hd);
    printf("%s attention (%d token(s)), %d heads x %d (%d kv heads), context %d of %d, %s cache, %d layers, %d thread(s)\n",
           n_tok > 1 ? "prefill" : "decode", n_tok, nh, hd, nkv, ctx, n_ctx, f16 ? "f16" : "f32", layers, threads);
    const int wall = getenv("ATTN_WALL") != NULL;
    const char *only = getenv("ATTN_BENCH_LEVEL"); /* time this level only (e.g. under perf) */
    for (int l = 0; l <= akk_cpu_max_level(); l++) {
        if (only && l != atoi(only)) continue;
        akk_force_level(l);
        out[l] = malloc(sizeof(float) * (size_t)(qn * layers));
        double best = 1e9;
        for (int r = 0; r < (l ? reps : 1 + reps / 10); r++) {
            const double t0 = wall ? bench_wall() : bench_cpu();
            for (int y = 0; y < layers; y++)
                akk_attention(q, qdim, K + y * cache, kvdim, V + y * cache, n_ctx, out[l] + y * qn, qdim, n_tok, ctx - n_tok, nh,
                              nkv, hd, scale, scratch, n_ctx, f16 ? AKK_F16 : AKK_F32, threads);
            const double t = (wall ? bench_wall() : bench_cpu()) - t0;
            if (t < best) best = t;
        }
        const int same = !only && !memcmp(out[0], out[l], sizeof(float) * (size_t)(qn * layers));
        uint64_t hash = 1469598103934665603ull; /* FNV-1a of the output bits, to compare builds */
        for (size_t i = 0; i < sizeof(float) * (size_t)(qn * layers); i++) hash = (hash ^ ((uint8_t *)out[l])[i]) * 1099511628211ull;
        printf("  %-7s %8.2f us/layer  %s  %016llx\n", akk_cpu_level_name(l), best / layers * 1e6, only ? "" : same ? "= scalar" : "DIFFERS",
               (unsigned long long)hash);
    }
    return 0;
}

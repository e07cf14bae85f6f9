/*
 * The AVX2 Q8_0 prefill tile's floor on this core: loops of the tile's operations alone (no
 * kernel around them), cycles per output-block (one row x one token x one 32-element block) at
 * the clock a dependent-add chain measures, 8 independent accumulators:
 *   int16      libadak's avx2 tile (simd_avx2_bias.c): vpmaddwd x 2, vpaddd, vcvtdq2ps, fma
 *   sign       llama.cpp's AVX2 order as tinyBLAS computes it: vpsignb, vpmaddubsw, vpmaddwd by
 *              ones, vcvtdq2ps, fma (its second vpsignb, |w|, counted as hoisted out of the tile)
 *   int16+mem  int16 with the tile's memory operands: per output-block one 32-byte weight load,
 *              half a 32-byte activation load and one 4-byte broadcast of d_w*d_x (L1-resident)
 * and the pipe sharing that bounds them: vpmaddwd (or vpsignb) beside 12 fma chains.
 *
 *   cc -O2 -o tile_ops bench/tile_ops.c && ./tile_ops   (the clock: bench_util.h, once per pass)
 *
 * x86-64 with AVX2/FMA only. The operands are constants or zeros: timing, not results.
 */
#include "bench_util.h"
#include <stdio.h>

#if defined(__x86_64__)
#define N 20000000L
static char buf[4096] __attribute__((aligned(64)));

/* One output-block into accumulator ymmA; ymm8..9 temps, ymm14/15 operands, ymm10 d. */
#define OB_INT16(A) "vpmaddwd %%ymm14, %%ymm15, %%ymm8\n vpmaddwd %%ymm13, %%ymm15, %%ymm9\n vpaddd %%ymm8, %%ymm9, %%ymm8\n" \
                    "vcvtdq2ps %%ymm8, %%ymm8\n vfmadd231ps %%ymm8, %%ymm10, %%ymm" #A "\n"
#define OB_SIGN(A) "vpsignb %%ymm14, %%ymm15, %%ymm8\n vpmaddubsw %%ymm8, %%ymm13, %%ymm8\n vpmaddwd %%ymm8, %%ymm12, %%ymm8\n" \
                   "vcvtdq2ps %%ymm8, %%ymm8\n vfmadd231ps %%ymm8, %%ymm10, %%ymm" #A "\n"
/* row r (r = 0..3) of a 4 x 2 tile, tokens 0, 1: weights from memory, activations in ymm11..12 */
#define OB_MEM(A, W, D) "vmovdqa " W "(%1), %%ymm13\n vpmaddwd %%ymm11, %%ymm13, %%ymm8\n vpmaddwd %%ymm12, %%ymm13, %%ymm9\n" \
                        "vpaddd %%ymm8, %%ymm9, %%ymm8\n vcvtdq2ps %%ymm8, %%ymm8\n vbroadcastss " D "(%1), %%ymm9\n" \
                        "vfmadd231ps %%ymm8, %%ymm9, %%ymm" #A "\n"
#define EIGHT(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7)
#define FMA12 "vfmadd231ps %%ymm14, %%ymm15, %%ymm0\n vfmadd231ps %%ymm14, %%ymm15, %%ymm1\n vfmadd231ps %%ymm14, %%ymm15, %%ymm2\n" \
              "vfmadd231ps %%ymm14, %%ymm15, %%ymm3\n vfmadd231ps %%ymm14, %%ymm15, %%ymm4\n vfmadd231ps %%ymm14, %%ymm15, %%ymm5\n" \
              "vfmadd231ps %%ymm14, %%ymm15, %%ymm6\n vfmadd231ps %%ymm14, %%ymm15, %%ymm7\n vfmadd231ps %%ymm14, %%ymm15, %%ymm8\n" \
              "vfmadd231ps %%ymm14, %%ymm15, %%ymm9\n vfmadd231ps %%ymm14, %%ymm15, %%ymm10\n vfmadd231ps %%ymm14, %%ymm15, %%ymm11\n"
#define FOUR(OP) OP " %%ymm14, %%ymm15, %%ymm12\n " OP " %%ymm14, %%ymm15, %%ymm13\n " OP " %%ymm14, %%ymm15, %%ymm12\n " OP " %%ymm14, %%ymm15, %%ymm13\n"

#define LOOP(name, body)                                                                                     \
    static double name(void) {                                                                               \
        long n = N;                                                                                          \
        const double t0 = bench_cpu();                                                                             \
        __asm__ volatile("vxorps %%ymm0, %%ymm0, %%ymm0\n vxorps %%ymm1, %%ymm1, %%ymm1\n"                  \
                         "vxorps %%ymm2, %%ymm2, %%ymm2\n vxorps %%ymm3, %%ymm3, %%ymm3\n"                  \
                         "vxorps %%ymm4, %%ymm4, %%ymm4\n vxorps %%ymm5, %%ymm5, %%ymm5\n"                  \
                         "vxorps %%ymm6, %%ymm6, %%ymm6\n vxorps %%ymm7, %%ymm7, %%ymm7\n"                  \
                         "vxorps %%ymm10, %%ymm10, %%ymm10\n vxorps %%ymm11, %%ymm11, %%ymm11\n"            \
                         "vpxor %%ymm12, %%ymm12, %%ymm12\n vpxor %%ymm13, %%ymm13, %%ymm13\n"              \
                         "vpxor %%ymm14, %%ymm14, %%ymm14\n vpxor %%ymm15, %%ymm15, %%ymm15\n"              \
                         "1:\n" body "sub $1, %0\n jnz 1b\n"                                                 \
                         : "+r"(n) : "r"(buf) : "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",    \
                           "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"); \
        return bench_cpu() - t0;                                                                                   \
    }

LOOP(int16, EIGHT(OB_INT16))
LOOP(sign, EIGHT(OB_SIGN))
/* per block: the two tokens' activations (2 x 32 bytes of each half here: one load per token, the
 * tile loads both halves, i.e. 0.5 per output-block), then 4 rows x 2 tokens */
LOOP(int16_mem, "vmovdqa 1024(%1), %%ymm11\n vmovdqa 1056(%1), %%ymm12\n"
                OB_MEM(0, "0", "2048") OB_MEM(1, "0", "2052") OB_MEM(2, "32", "2056") OB_MEM(3, "32", "2060")
                OB_MEM(4, "64", "2064") OB_MEM(5, "64", "2068") OB_MEM(6, "96", "2072") OB_MEM(7, "96", "2076"))
LOOP(fma12, FMA12)
LOOP(madd_fma, FOUR("vpmaddwd") FMA12)
LOOP(sign_fma, FOUR("vpsignb") FMA12)
LOOP(cvt_fma, "vcvtdq2ps %%ymm14, %%ymm12\n vcvtdq2ps %%ymm15, %%ymm13\n vcvtdq2ps %%ymm14, %%ymm12\n vcvtdq2ps %%ymm15, %%ymm13\n" FMA12)

int main(void) {
    static const struct { const char *name; double (*f)(void); double per; } t[] = {
        {"int16 tile ops (libadak avx2)", int16, 8},
        {"sign-trick ops (llama.cpp AVX2)", sign, 8},
        {"int16 tile ops + the tile's loads", int16_mem, 8},
    };
    static const struct { const char *name; double (*f)(void); } s[] = {
        {"12 fma", fma12}, {"4 vpmaddwd + 12 fma", madd_fma}, {"4 vpsignb + 12 fma", sign_fma}, {"4 vcvtdq2ps + 12 fma", cvt_fma},
    };
    for (int rep = 0; rep < 2; rep++) {
        const double g = bench_clock_ghz();
        for (unsigned i = 0; i < sizeof t / sizeof t[0]; i++) {
            const double sec = t[i].f();
            printf("%-36s %.2f cycles per output-block (%.2f GHz)\n", t[i].name, sec * g * 1e9 / N / t[i].per, g);
        }
        for (unsigned i = 0; i < sizeof s / sizeof s[0]; i++) {
            const double sec = s[i].f();
            printf("%-36s %.2f cycles per iteration (12 fma alone: 6 on two FMA pipes)\n", s[i].name, sec * g * 1e9 / N);
        }
    }
    return 0;
}
#else
int main(void) {
    puts("tile_ops: x86-64 only");
    return 0;
}
#endif

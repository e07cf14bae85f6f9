/* Helpers shared by the C benchmarks in bench/ (header only: each program is one translation
 * unit built by hand, see its top comment). */
#ifndef ADAK_BENCH_UTIL_H
#define ADAK_BENCH_UTIL_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

/* Wall-clock seconds. */
static inline double bench_wall(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* This thread's CPU seconds: a shared, loaded host's waiting does not count. */
static inline double bench_cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Core clock in GHz: a chain of dependent 1-cycle adds, best of 5 (x86-64; 0 elsewhere). */
static inline double bench_clock_ghz(void) {
#if defined(__x86_64__)
    double best = 1e9;
    for (int r = 0; r < 5; r++) {
        long n = 200000000, x = 0;
        const double t0 = bench_cpu();
        __asm__ volatile("1: add $1, %0\n add $1, %0\n add $1, %0\n add $1, %0\n sub $4, %1\n jnz 1b" : "+r"(x), "+r"(n));
        const double t = bench_cpu() - t0;
        if (t < best) best = t;
    }
    return 200e6 / best / 1e9;
#else
    return 0.0;
#endif
}

/* `bytes` 2 MB aligned on transparent huge pages where the host offers them, as the engine's
 * weights and KV cache (MappedFile.allocateAligned): with 4 KB pages a stream from memory pays
 * page walks the engine does not. NULL when there is no memory. */
static inline void *bench_huge_alloc(size_t bytes) {
    const size_t huge = (size_t)2 << 20, n = (bytes + huge - 1) / huge * huge;
    void *p = aligned_alloc(huge, n);
    if (p) madvise(p, n, MADV_HUGEPAGE);
    return p;
}

/* Pseudo-random bytes (xorshift64 from `seed`): distinct pages, which the host cannot merge into
 * one and serve from cache. */
static inline void bench_fill(void *p, size_t bytes, uint64_t seed) {
    uint64_t z = seed | 1;
    for (size_t i = 0; i + 8 <= bytes; i += 8) {
        z ^= z << 13; z ^= z >> 7; z ^= z << 17;
        memcpy((uint8_t *)p + i, &z, 8);
    }
}
#endif

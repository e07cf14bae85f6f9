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

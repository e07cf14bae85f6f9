/* Helpers shared by the kernel sources; not part of any public header. */
#ifndef AKK_INTERNAL_H
#define AKK_INTERNAL_H
#include <stdint.h>
#include <string.h>

static inline uint16_t akk_load_u16(const void *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* K-quant and other super-block dequantisers (kquants.c); -1 if unsupported. */
int akk_dequantize_row_k(int type, const void *src, float *dst, int64_t n);

#endif

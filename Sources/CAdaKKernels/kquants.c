/* Dequantisation of GGML's K-quant super-block formats (Q4_K, Q5_K, Q6_K). */
#include "adak_kernels.h"
#include "akk_internal.h"

int akk_dequantize_row_k(int type, const void *src, float *dst, int64_t n) {
    (void)src; (void)dst; (void)n;
    switch (type) {
    default: return -1;
    }
}

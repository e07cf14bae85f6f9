/* Row dispatch, OpenMP spreading and ggml_validate_row_data for the quantisers (adak_quantize.h). */
#include "quantize_internal.h"
#ifdef _OPENMP
#include <omp.h>
#endif

typedef void (*row_fn)(const float *x, uint8_t *y, int64_t k);

static row_fn row_quantizer(int type) {
    switch (type) {
    case AKK_F16: return akq_row_f16;
    case AKK_Q4_0: return akq_row_q4_0;
    case AKK_Q4_1: return akq_row_q4_1;
    case AKK_Q5_0: return akq_row_q5_0;
    case AKK_Q5_1: return akq_row_q5_1;
    case AKK_Q8_0: return akq_row_q8_0;
    case AKK_Q2_K: return akq_row_q2_k;
    case AKK_Q3_K: return akq_row_q3_k;
    case AKK_Q4_K: return akq_row_q4_k;
    case AKK_Q5_K: return akq_row_q5_k;
    case AKK_Q6_K: return akq_row_q6_k;
    case AKQ_IQ4_NL: return akq_row_iq4_nl;
    case AKQ_IQ4_XS: return akq_row_iq4_xs;
    case AKQ_MXFP4: return akq_row_mxfp4;
    default: return NULL;
    }
}

int64_t akq_block_elems(int type) {
    switch (type) {
    case AKQ_IQ4_NL: case AKQ_MXFP4: return 32;
    case AKQ_IQ4_XS: return 256;
    default: return akk_block_elems(type);
    }
}

int64_t akq_block_bytes(int type) {
    switch (type) {
    case AKQ_IQ4_NL: return 18;
    case AKQ_MXFP4: return 17;
    case AKQ_IQ4_XS: return 136;
    default: return akk_block_bytes(type);
    }
}

int64_t akq_row_bytes(int type, int64_t n) {
    const int64_t be = akq_block_elems(type);
    if (be <= 0 || n <= 0 || n % be != 0) return 0;
    return n / be * akq_block_bytes(type);
}

int akq_can_quantize(int type) { return row_quantizer(type) != NULL; }

int akq_quantize_row(int type, const float *src, void *dst, int64_t k) {
    const row_fn fn = row_quantizer(type);
    const int64_t rb = akq_row_bytes(type, k);
    if (!fn || rb == 0) return -1;
    fn(src, (uint8_t *)dst, k);
    return akq_validate_row_data(type, dst, (size_t)rb) ? 0 : -2;
}

int akq_quantize_rows(int type, const float *src, void *dst, int64_t nrows, int64_t n_per_row,
                      int nthreads, int64_t *bad_row) {
    const row_fn fn = row_quantizer(type);
    const int64_t rb = akq_row_bytes(type, n_per_row);
    if (!fn || rb == 0 || nrows < 0) return -1;
    int64_t first_bad = -1;
#ifdef _OPENMP
    if (nthreads <= 0) nthreads = omp_get_max_threads();
#pragma omp parallel for schedule(dynamic, 16) num_threads(nthreads) if (nrows > 16)
#endif
    for (int64_t r = 0; r < nrows; r++) {
        uint8_t *out = (uint8_t *)dst + r * rb;
        fn(src + r * n_per_row, out, n_per_row);
        if (!akq_validate_row_data(type, out, (size_t)rb)) {
#ifdef _OPENMP
#pragma omp critical(akq_bad_row)
#endif
            if (first_bad < 0 || r < first_bad) first_bad = r;
        }
    }
    (void)nthreads;
    if (first_bad >= 0) {
        if (bad_row) *bad_row = first_bad;
        return -2;
    }
    return 0;
}

static int f16_ok(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return (h & 0x7c00) != 0x7c00;
}

/* Offsets of the fp16 scales ggml validates in one block (-1: none). */
static void scale_offsets(int type, int *a, int *b) {
    *a = -1;
    *b = -1;
    switch (type) {
    case AKK_Q4_0: case AKK_Q5_0: case AKK_Q8_0: *a = 0; break;
    case AKK_Q4_1: case AKK_Q5_1: case AKK_Q4_K: case AKK_Q5_K: *a = 0; *b = 2; break;
    case AKK_Q2_K: *a = 80; *b = 82; break;
    case AKK_Q3_K: *a = 108; break;
    case AKK_Q6_K: *a = 208; break;
    case AKQ_IQ4_NL: case AKQ_IQ4_XS: *a = 0; break;
    default: break;
    }
}

int akq_validate_row_data(int type, const void *data, size_t nbytes) {
    const uint8_t *p = (const uint8_t *)data;
    switch (type) {
    case AKK_F32:
        if (nbytes % 4) return 0;
        for (size_t i = 0; i < nbytes; i += 4) {
            uint32_t u;
            memcpy(&u, p + i, 4);
            if ((u & 0x7f800000u) == 0x7f800000u) return 0;
        }
        return 1;
    case AKK_F16:
        if (nbytes % 2) return 0;
        for (size_t i = 0; i < nbytes; i += 2)
            if (!f16_ok(p + i)) return 0;
        return 1;
    case AKK_BF16:
        if (nbytes % 2) return 0;
        for (size_t i = 0; i < nbytes; i += 2) {
            uint16_t h;
            memcpy(&h, p + i, 2);
            if ((h & 0x7fff) >= 0x7f80) return 0;
        }
        return 1;
    case AKQ_MXFP4:
        if (nbytes % 17) return 0;
        for (size_t i = 0; i < nbytes; i += 17)
            if (p[i] == 0xff) return 0;
        return 1;
    default: {
        const int64_t bb = akq_block_bytes(type);
        int a, b;
        scale_offsets(type, &a, &b);
        if (bb <= 0 || a < 0 || nbytes % (size_t)bb) return 0;
        for (size_t i = 0; i < nbytes; i += (size_t)bb) {
            if (!f16_ok(p + i + a)) return 0;
            if (b >= 0 && !f16_ok(p + i + b)) return 0;
        }
        return 1;
    }
    }
}

/*
 * adak_quantize.h — weight quantisers that write the bytes llama.cpp's quantizer writes.
 *
 * Internal to libadak (not installed). Types are GGML numbers. Each quantiser repeats, float
 * operation for float operation, ggml's reference quantiser used without an importance matrix
 * (quantize_row_*_ref, and quantize_iq4_nl/iq4_xs with their 7-step scale search), so a row gives
 * the same bytes as llama_model_quantize on an x86-64 build. Supported outputs: F16, Q4_0, Q4_1,
 * Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL (20), IQ4_XS (23), MXFP4 (39).
 * Block layouts (GGUF): IQ4_NL { fp16 d; uint8 qs[16] }, IQ4_XS { fp16 d; uint16 scales_h;
 * uint8 scales_l[4]; uint8 qs[128] }, MXFP4 { uint8 e; uint8 qs[16] }; the others as in
 * adak_kernels.h.
 */
#ifndef ADAK_QUANTIZE_H
#define ADAK_QUANTIZE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AKQ_IQ4_NL 20
#define AKQ_IQ4_XS 23
#define AKQ_MXFP4 39

/* Elements and bytes per block of a type the quantisers or the input checks know; 0 otherwise. */
int64_t akq_block_elems(int type);
int64_t akq_block_bytes(int type);
/* Bytes of one row of n elements; 0 when the type is unknown or n is not a multiple of its block. */
int64_t akq_row_bytes(int type, int64_t n);
/* 1 if akq_quantize_rows can write `type`. */
int akq_can_quantize(int type);

/* Quantises nrows rows of n_per_row floats (rows contiguous) into dst (rows packed), spreading
 * rows over nthreads OpenMP threads (<= 0: the runtime's default); the bytes do not depend on the
 * thread count. Returns 0; -1 for an unsupported type or a row length that is not a multiple of
 * the block; -2 when a written row fails ggml_validate_row_data (an inf/NaN scale, as llama.cpp's
 * "quantized data validation failed"); *bad_row (may be NULL) then gets the first such row. */
int akq_quantize_rows(int type, const float *src, void *dst, int64_t nrows, int64_t n_per_row,
                      int nthreads, int64_t *bad_row);

/* One row of k elements (single-threaded; the unit tests use it). Same return codes. */
int akq_quantize_row(int type, const float *src, void *dst, int64_t k);

/* ggml_validate_row_data: 1 when `nbytes` of `type` hold no inf/NaN value or scale (and no
 * MXFP4 exponent 0xff), 0 otherwise or for a type it does not know. */
int akq_validate_row_data(int type, const void *data, size_t nbytes);

#ifdef __cplusplus
}
#endif

#endif

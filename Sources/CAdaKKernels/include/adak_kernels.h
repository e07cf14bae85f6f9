/*
 * adak_kernels.h — block formats, (de)quantisation, dot products and matmuls of libadak.
 *
 * Internal to libadak (not installed). Type numbers are GGML's so GGUF tensors map directly.
 * Block layouts are byte-compatible with GGUF:
 *   Q8_0  { fp16 d; int8 qs[32]; }                    x = d * q
 *   Q8_1  { fp16 d; fp16 s; int8 qs[32]; }            x = d * q, s = d * sum(q)   (activations)
 *   Q4_0  { fp16 d; uint8 qs[16]; }                   x = d * (nibble - 8); low nibbles are
 *                                                     elements 0..15, high nibbles 16..31
 *   Q4_1  { fp16 d; fp16 m; uint8 qs[16]; }           x = d * nibble + m
 *   Q5_0, Q5_1 and K-quants (super-blocks of 256: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K): layouts in
 *   kquants.c (dequantisation bit-identical to gguf-py and ggml's dequantize_row_*); matmul
 *   weights in their own type against Q8_0 (Q5_0), Q8_1 (Q5_1) or Q8_K (K-quants) activations,
 *   kquant_dot.c (llama.cpp's x86 AVX2 float order: ggml_vec_dot_*; Q4_K as its repacked
 *   q4_K_8x8 kernels, which its x86 builds use for every Q4_K matrix with rows % 8 == 0)
 *   IQ4_NL, IQ4_XS, MXFP4 (non-linear 4-bit grids; layouts in iq4mx.c): dequantisation and native
 *   dot products against Q8_0 (IQ4_NL, MXFP4) or Q8_K (IQ4_XS) activations.
 *   Q8_K  { float d; int8 qs[256]; int16 bsums[16]; }  x = d * q   (activations)
 *
 * Every SIMD kernel has a scalar reference (`*_scalar`, quant.c) that performs the same float
 * operations in the same order, so the AVX2+FMA+F16C paths (picked at run time, akk_init()) and
 * the scalar paths give bit-identical results. Both reproduce llama.cpp's x86 AVX2 numerics:
 * quantize_row_q8_0/q8_1, ggml_vec_dot_{q8_0_q8_0,q4_0_q8_0,q4_1_q8_1} (and llamafile's
 * tinyBLAS, which uses the same per-block lanes and horizontal sum) and ggml_vec_dot_f32.
 * Activation quants must lie in [-127, 127] (always true for akk_quantize_row_q8_*).
 */
#ifndef ADAK_KERNELS_H
#define ADAK_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum akk_type {
    AKK_F32 = 0,
    AKK_F16 = 1,
    AKK_Q4_0 = 2,
    AKK_Q4_1 = 3,
    AKK_Q5_0 = 6,
    AKK_Q5_1 = 7,
    AKK_Q8_0 = 8,
    AKK_Q8_1 = 9,
    AKK_Q2_K = 10,
    AKK_Q3_K = 11,
    AKK_Q4_K = 12,
    AKK_Q5_K = 13,
    AKK_Q6_K = 14,
    AKK_Q8_K = 15,
    AKK_IQ4_NL = 20,
    AKK_IQ4_XS = 23,
    AKK_BF16 = 30,
    AKK_MXFP4 = 39,
    /* libadak's own (not a GGML type): Q4_0 rows repacked in groups of 8 for the AVX2 kernels,
     * same bytes per row as Q4_0; see akk_repack_q4_0_r8. Rows are not contiguous: a matrix of
     * this type has a multiple of 8 rows and is addressed by row index only. */
    AKK_Q4_0_R8 = 1002,
    /* libadak's own views of IQ4_NL / MXFP4 matrices (the same bytes, used in place): the
     * numerics of llama.cpp's repacked x86 kernels (ggml_gemv/gemm_{iq4_nl,mxfp4}_8x8_q8_0),
     * which llama.cpp uses for matrices with a multiple of 8 rows: per row, acc = fma((float)
     * (exact integer sum of a block), d_w * d_x, acc) block after block. See iq4mx.c. */
    AKK_IQ4_NL_X8 = 1020,
    AKK_MXFP4_X8 = 1039,
    /* libadak's own: Q4_K rows repacked in groups of 8 (same bytes per row as Q4_K, results those
     * of Q4_K's dot to the bit); see akk_repack_q4_k_r8. Addressed by row index as AKK_Q4_0_R8. */
    AKK_Q4_K_R8 = 1012,
    /* libadak's own: IQ4_NL / MXFP4 rows repacked in groups of 8 (same bytes per row, results
     * those of the _X8 views to the bit); see akk_repack_iq4mx_r8. Addressed as AKK_Q4_0_R8. */
    AKK_IQ4_NL_R8 = 1120,
    AKK_MXFP4_R8 = 1139,
    /* The same bytes as AKK_Q4_K_R8 for a dense matrix: llama.cpp multiplies activation rows in
     * groups of 4 with its repacked gemm's float order there (repack_q4_k.c); AKK_Q4_K_R8 is
     * the experts' (its gemv for every row). */
    AKK_Q4_K_R8_DENSE = 1013,
    /* libadak's own: IQ4_XS rows repacked in groups of 16 (same bytes per row, results those of
     * IQ4_XS to the bit, in both its orders); see akk_repack_iq4_xs_r16. Addressed by row index
     * as AKK_Q4_0_R8, with a multiple of 16 rows. */
    AKK_IQ4_XS_R16 = 1123,
};

#define AKK_QK 32     /* elements per Q8_0/Q8_1/Q4_0/Q4_1 block */
#define AKK_QK_K 256  /* elements per K-quant super-block */

/* Selects the SIMD paths (the best level the CPU has, see akk_cpu_level). Idempotent and
 * thread-safe; the dispatching entry points call it lazily, so calling it at load is optional.
 * Returns 1 if SIMD paths (AVX2 or above) are in use. */
int akk_init(void);
/* 1 when the AVX2 paths (or a level above) are active. */
int akk_have_avx2(void);
/* Force the scalar reference paths (for tests; process-wide, don't toggle while other threads run
 * kernels); 0 restores automatic dispatch. Scalar and SIMD results are bit-identical. */
void akk_force_scalar(int on);

/* Kernel levels, each a superset of the one below: scalar references; AVX2+FMA+F16C; AVX-512
 * F/BW/VL + VNNI (the AVX2 kernels where no AVX-512 one exists). Every level gives bit-identical
 * results. The level in force is the CPU's best, capped by the environment variable
 * ADAK_CPU=scalar|avx2|avx512 (read once, at init; a level the CPU lacks falls back to the best
 * it has and sets akk_cpu_warning). */
enum akk_cpu_level { AKK_CPU_SCALAR = 0, AKK_CPU_AVX2 = 1, AKK_CPU_AVX512 = 2, AKK_CPU_N_LEVELS = 3 };
/* The level in force, and the best this CPU supports. */
int akk_cpu_level(void);
int akk_cpu_max_level(void);
/* 1 if the CPU has AVX-512 BF16 (recorded for kernels that may use it). */
int akk_cpu_has_bf16(void);
/* "scalar", "avx2", "avx512" ("unknown" for other numbers). */
const char *akk_cpu_level_name(int level);
/* Why ADAK_CPU was not followed (one line), or NULL. */
const char *akk_cpu_warning(void);
/* Force a level (for tests and benchmarks; process-wide like akk_force_scalar); a level above the
 * CPU's best gives the best, -1 restores the default (ADAK_CPU's or the best). Returns the level
 * now in force. */
int akk_force_level(int level);
/* The avx512 IQ4_XS decode kernel's lookups and scales by AVX-512 VBMI (1, when the CPU has it) or
 * by AVX2 shuffles and shifts (0); -1: as the CPU allows (the default). Same bits either way; for
 * tests, process-wide like akk_force_level. Returns 1 when VBMI is now used. */
int akk_iq4_xs_vbmi(int on);
/* The kernel table, to see which implementation each level runs: entry i < akk_kernel_count() is
 * named akk_kernel_name(i) ("rows q4_k", "rows q6_k tiled" for llama.cpp's tiled order taken from
 * 8 activation rows, "quantize q8_K", "dot", "fp16->fp32 row", "attention rows f16", ...);
 * akk_kernel_origin(i, level) is the level whose own kernel `level` runs for it (a level keeps the
 * one below's where it has none of its own), -1 for a level this CPU lacks or a bad i (whose name
 * is NULL). */
int akk_kernel_count(void);
const char *akk_kernel_name(int i);
int akk_kernel_origin(int i, int level);

/* Elements per block of `type`, 0 for unknown types. */
int64_t akk_block_elems(int type);
/* Bytes per block of `type`, 0 for unknown types. */
int64_t akk_block_bytes(int type);
/* Bytes of a row of n elements (n must be a multiple of the block size); 0 when unknown. */
int64_t akk_row_bytes(int type, int64_t n);
/* Name of a type ("q8_0", ...) or "unknown". */
const char *akk_type_name(int type);

/* IEEE half <-> float (round to nearest even), bf16 -> float. */
float akk_fp16_to_fp32(uint16_t h);
uint16_t akk_fp32_to_fp16(float f);
float akk_bf16_to_fp32(uint16_t h);
/* Rows of conversions (F16C when available; bit-identical to the scalar functions above). */
void akk_fp16_to_fp32_row(const uint16_t *x, float *y, int64_t n);
void akk_fp32_to_fp16_row(const float *x, uint16_t *y, int64_t n);

/* Dequantise n elements (a whole number of blocks) of `type` into dst.
 * Returns 0, or -1 if the type is not supported. */
int akk_dequantize_row(int type, const void *src, float *dst, int64_t n);

/* Quantise activations exactly as llama.cpp's x86 path does: d = max|x|/127, q = round-half-even
 * (x * 127/max|x|), d stored as fp16; Q8_1 also stores s = fp16(d * sum(q)). n must be a multiple
 * of 32. */
void akk_quantize_row_q8_0(const float *x, void *y, int64_t n);
void akk_quantize_row_q8_1(const float *x, void *y, int64_t n);
void akk_quantize_row_q8_0_scalar(const float *x, void *y, int64_t n);
void akk_quantize_row_q8_1_scalar(const float *x, void *y, int64_t n);
/* Q8_K activations as llama.cpp's quantize_row_q8_K (x86 uses its reference): per 256, d =
 * max/-127 with max the signed element of largest |x|, q = round-half-even(x * -127/max), and
 * bsums = sums of 16 quants (kquant_dot.c). One implementation for every CPU. n: multiple of 256. */
void akk_quantize_row_q8_K(const float *x, void *y, int64_t n);
/* Quantise weights (round half away from zero, as GGML's reference quantiser). */
void akk_quantize_row_q4_0_ref(const float *x, void *y, int64_t n);

/* Repack n_rows (a multiple of 8) Q4_0 rows of n_in elements from src into dst (same size,
 * no overlap) as AKK_Q4_0_R8. Returns 0, or -1 on bad arguments. */
int akk_repack_q4_0_r8(const void *src, void *dst, int64_t n_rows, int64_t n_in);
/* Row `row` of an AKK_Q4_0_R8 matrix W, written back as a plain Q4_0 row into dst. 0 or -1. */
int akk_q4_0_r8_row(const void *W, int64_t row, int64_t n_in, void *dst);
/* The same for Q4_K (n_in a multiple of 256) and AKK_Q4_K_R8 (repack_q4_k.c). */
int akk_repack_q4_k_r8(const void *src, void *dst, int64_t n_rows, int64_t n_in);
int akk_q4_k_r8_row(const void *W, int64_t row, int64_t n_in, void *dst);
/* The same for IQ4_NL and MXFP4 (type: the plain type or its _X8 view; n_in a multiple of 32) as
 * AKK_IQ4_NL_R8 / AKK_MXFP4_R8, and back (type: either; repack_iq4mx.c). */
int akk_repack_iq4mx_r8(int type, const void *src, void *dst, int64_t n_rows, int64_t n_in);
int akk_iq4mx_r8_row(int type, const void *W, int64_t row, int64_t n_in, void *dst);
/* The same for IQ4_XS (n_rows a multiple of 16, n_in of 256) as AKK_IQ4_XS_R16, and back
 * (repack_iq4xs.c). */
int akk_repack_iq4_xs_r16(const void *src, void *dst, int64_t n_rows, int64_t n_in);
int akk_iq4_xs_r16_row(const void *W, int64_t row, int64_t n_in, void *dst);

/* The activation format a weight type multiplies with: F32 -> F32, Q8_0/Q4_0/Q5_0/IQ4_NL/MXFP4
 * -> Q8_0, Q4_1/Q5_1 -> Q8_1, Q2_K..Q6_K/IQ4_XS -> Q8_K; -1 if the type cannot be used as a matmul
 * weight. */
int akk_vec_dot_type(int wtype);
/* Index of the first of n_blocks blocks of a Q5_0/Q5_1/K-quant `type` whose fp16 scale (d, or
 * dmin/m) is infinite or NaN; -1 if none (and for other types). For a clear load error instead
 * of NaN logits from a corrupted file. */
int64_t akk_find_nonfinite_scale(int type, const void *data, int64_t n_blocks);
/* Quantise (or copy) one activation row of n floats into the vec-dot type of `wtype`. */
void akk_quantize_activation(int wtype, const float *x, void *y, int64_t n);
/* The same for `rows` rows (x row r at x + r * ldx floats, its output at y + r * ldy bytes), split
 * over up to nthreads threads (0: all) when there are enough of them. */
void akk_quantize_activation_rows(int wtype, const float *x, int64_t ldx, void *y, int64_t ldy, int64_t rows, int64_t n,
                                  int nthreads);

/* Dot product of one weight row (type wtype) with one activation row (its vec-dot type). */
float akk_vec_dot(int wtype, int64_t n, const void *w, const void *x);
float akk_vec_dot_scalar(int wtype, int64_t n, const void *w, const void *x);

/*
 * Y[t*ystride + o] = sum_i W[o, i] * X[t, i]   for t < n_tok, o < n_out.
 * W: n_out rows of n_in elements of wtype, contiguous (row bytes = akk_row_bytes(wtype, n_in)).
 * X: n_tok rows in akk_vec_dot_type(wtype), row stride xstride bytes.
 * Parallel over output rows with OpenMP, nthreads threads (<=0: runtime default); each thread
 * takes a contiguous range of rows. Every Y element equals akk_vec_dot of its row and token,
 * whatever the thread count or tiling (AKK_Q4_0_R8, which has no single-row dot: the scalar
 * reference akk_rows_q4_0_r8_scalar's value, likewise independent of threads and tiling).
 */
void akk_matmul(int wtype, const void *W, int64_t n_out, int64_t n_in,
                const void *X, int64_t xstride, int64_t n_tok,
                float *Y, int64_t ystride, int nthreads);

/* As akk_matmul for output rows [row_begin, row_end) only, on the calling thread (for callers that
 * run their own thread pool / OpenMP region). W still points at row 0; Y indices are absolute.
 * For AKK_Q4_0_R8 both ends must be multiples of 8. */
void akk_matmul_rows(int wtype, const void *W, int64_t row_begin, int64_t row_end, int64_t n_in,
                     const void *X, int64_t xstride, int64_t n_tok,
                     float *Y, int64_t ystride);

/* Work sharing of one parallel phase over n_units units of work (row groups, in streaming
 * order). The units are split into nthreads contiguous ranges, one per thread, and each range is
 * cut into items that halve in size towards its end: ..., 4m, 2m, m, m units (m = min_units).
 * A thread takes its own range's items front to back, so its weights form long streams that the
 * hardware prefetcher follows (the big items come first), and when its range is empty it takes
 * the other ranges' items from their back ends, which are the small ones. The threads then finish
 * a phase within about one small item of each other, without short streams in the middle of it.
 * Each range sits on its own cache line; a thread that never comes (fewer threads than asked)
 * only gets its range taken. */
typedef struct {
    uint64_t front_back; /* next item from the front (low 32 bits), one past the last (high) */
    int64_t begin, end;  /* the range's units */
    int64_t min_units, n_items;
    char pad_[24];
} akk_work_range;
void akk_work_init(akk_work_range *ranges, int nthreads, int64_t n_units, int64_t min_units);
/* The next item for thread me as units [*u0, *u1); 0 when every range is empty. */
int akk_work_next(akk_work_range *ranges, int nthreads, int me, int64_t *u0, int64_t *u1);
/* The smallest item, in units of unit_bytes bytes of weights times n_tok activation rows: about
 * AKK_MIN_ITEM bytes for decode-sized batches; for larger ones (each item re-reads its
 * activations) an eighth of a thread's share. */
#ifndef AKK_MIN_ITEM
#define AKK_MIN_ITEM (32 * 1024)
#endif
int64_t akk_work_min_units(int64_t n_units, int64_t unit_bytes, int64_t n_tok, int nthreads);

/* STREAM-style read bandwidth in GB/s (1e9 bytes/s): best of 5 passes over a buffer of `bytes`
 * bytes split over nthreads threads (<=0: runtime default). For the benchmark roofline. */
double akk_measure_read_bandwidth(size_t bytes, int nthreads);

/* The same probe with its buffer kept, to measure the bandwidth again right next to each timed
 * run (on a shared host it drifts by tens of per cent within minutes). create: NULL if out of
 * memory; run: best of `passes` passes, GB/s. */
typedef struct akk_bw_probe akk_bw_probe;
akk_bw_probe *akk_bw_probe_create(size_t bytes, int nthreads);
double akk_bw_probe_run(akk_bw_probe *probe, int passes);
void akk_bw_probe_free(akk_bw_probe *probe);

#ifdef __cplusplus
}
#endif
#endif

/* Helpers shared by the kernel sources; not part of any public header. */
#ifndef AKK_INTERNAL_H
#define AKK_INTERNAL_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "adak_kernels.h" /* the type ids (akk_row_unit) */

static inline uint16_t akk_load_u16(const void *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* An fp16 / f32 scale stored unaligned inside a block. */
float akk_fp16_to_fp32(uint16_t h);
static inline float akk_load_f16(const uint8_t *p) { return akk_fp16_to_fp32(akk_load_u16(p)); }

/* Decode weight streams: while a kernel reads the block at blk (`bytes` long, more than 64), the
 * lines of the block AKK_STREAM_PF bytes further on are prefetched with the non-temporal hint
 * (prefetchnta): on a Zen 3 the hardware prefetcher alone left one token's products 5-9% short
 * (docs/BENCHMARKS.md, "Decode weight streams prefetched"). Prefetches never fault and change no
 * result. Used by the AVX2 decode paths of the repacked types and the K-quants (the shared
 * headers' *_STREAM_PF switches); not by the 20-34 byte blocks of the Q8_0 / Q4_x / Q5_x tiles,
 * which it slowed, nor at the AVX-512 level, which a Zen 4 has yet to measure with it. */
#define AKK_STREAM_PF 1024
static inline __attribute__((always_inline)) void akk_stream_pf(const void *blk, int bytes) {
    const char *p = (const char *)blk + AKK_STREAM_PF;
    for (int o = 0; o + 64 < bytes; o += 64) __builtin_prefetch(p + o, 0, 0);
    __builtin_prefetch(p + bytes - 1, 0, 0);
}
static inline float akk_load_f32(const uint8_t *p) {
    float f;
    memcpy(&f, p, 4);
    return f;
}

/* K-quant and other super-block dequantisers (kquants.c); -1 if unsupported. */
int akk_dequantize_row_k(int type, const void *src, float *dst, int64_t n);

/* IQ4_NL, IQ4_XS, MXFP4 (iq4mx.c): the 4-bit grids (IQ4_NL's non-linear values, E2M1 doubled),
 * the MXFP4 scale 2^(e-128), IQ4_XS's signed 6-bit scale of sub-block ib, dequantisation (-1 for
 * other types) and the scalar reference dots. AVX2 kernels: simd_avx2_iq4mx.c. */
extern const int8_t akk_kvalues_iq4nl[16];
extern const int8_t akk_kvalues_mxfp4[16];
static inline float akk_e8m0_to_fp32_half(uint8_t e) {
    const uint32_t bits = e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}
/* The 32-element block types of the dense prefill tiles (simd_avx2_bias.c, simd_avx512_bias.c):
 * bytes of a weight block; does it carry a min (Q4_1, Q5_1)? */
static inline int akk_dense_block_bytes(int type) {
    return type == AKK_Q8_0 ? 34 : type == AKK_Q5_0 ? 22 : type == AKK_Q4_0 ? 18 : type == AKK_Q4_1 ? 20 : 24;
}
static inline int akk_dense_has_min(int type) { return type == AKK_Q4_1 || type == AKK_Q5_1; }

/* Rows handed to one thread are a multiple of this: the register tile heights and the 8-row
 * groups (AKK_Q4_0_R8...), 16 for AKK_IQ4_XS_R16 (its kernels take half groups but compute them
 * whole, so a split inside a group would compute that half twice). */
static inline int64_t akk_row_unit(int wtype) { return wtype == AKK_IQ4_XS_R16 ? 16 : 8; }

/* Threads for a per-row op over `rows` rows of n elements (ops.c): 1 (the caller) below ~16K
 * elements, where a fork/join costs more than the rows; else up to nthreads (0: all). */
int akk_rows_threads(int64_t rows, int64_t n, int nthreads);

static inline int akk_iq4_xs_scale(const uint8_t *blk, int ib) {
    const int lo = (blk[4 + ib / 2] >> 4 * (ib % 2)) & 0xf;
    const int hi = (akk_load_u16(blk + 2) >> 2 * ib) & 3;
    return (lo | hi << 4) - 32;
}
int akk_dequantize_row_iq4mx(int type, const void *src, float *dst, int64_t n);
float akk_vec_dot_iq4mx_scalar(int wtype, int64_t n, const void *w, const void *x);

/* Horizontal sum of 8 floats in the order of the AVX2 kernels (quant.c). */
float akk_hsum8_ref(const float a[8]);
/* GGML_F32x8_REDUCE of 4 accumulators of 8 lanes, in the AVX2 kernels' order (quant.c). */
float akk_reduce_4x8_ref(const float acc[4][8]);
/* ggml_vec_dot_f16's order (simd_avx2.c; scalar reference dot4_f16_scalar in ops.c). */
float akk_dot4_f16_avx2(int64_t n, const uint16_t *a, const uint16_t *b);

/*
 * Computes Y[t*ystride + o] for rows o in [r0, r1) and all n_tok tokens (see akk_matmul).
 * W points at row 0; rows are wrow bytes apart.
 */
typedef void (*akk_rows_fn)(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                            const uint8_t *X, int64_t xstride, int64_t n_tok,
                            float *Y, int64_t ystride);
typedef float (*akk_dot_fn)(int wtype, int64_t n, const void *w, const void *x);
typedef void (*akk_quant_fn)(const float *x, void *y, int64_t n);

/* The decode attention products' arguments (akk_impl.attn_rows_*; a: f32 or f16 cache rows). */
#define AKK_ATTN_ROWS_ARGS(T) int64_t n, int64_t rows, const T *a, int64_t as, int64_t ag, int group, int m, \
                              const float *b, int64_t bs, float scale, float *out, int64_t os
typedef void (*akk_attn_rows_f32_fn)(AKK_ATTN_ROWS_ARGS(float));
typedef void (*akk_attn_rows_f16_fn)(AKK_ATTN_ROWS_ARGS(uint16_t));
/* The prefill attention products' arguments (akk_impl.attn_prefill_*): m vectors b + i * bs, each
 * with its own dot length n[i], cache rows r < rows[i] (a + r * as), outputs out[i][r]. */
#define AKK_ATTN_PF_ARGS(T) int one_acc, int m, const int32_t *n, const int32_t *rows, const T *a, int64_t as, \
                            const float *b, int64_t bs, float scale, float *const *out
typedef void (*akk_attn_pf_f32_fn)(AKK_ATTN_PF_ARGS(float));
typedef void (*akk_attn_pf_f16_fn)(AKK_ATTN_PF_ARGS(uint16_t));

/* One implementation set, one per level (scalar in dispatch.c, AVX2+FMA+F16C in simd_avx2.c, the
 * AVX-512 one filled by akk_avx512_prepare); dispatch.c's kernel table lists every function. */
struct akk_impl {
    akk_quant_fn quantize_q8_0;
    akk_quant_fn quantize_q8_1;
    akk_quant_fn quantize_q8_K;
    akk_dot_fn dot;
    akk_rows_fn rows_f32, rows_q8_0, rows_q4_0, rows_q4_1, rows_q4_0_r8;
    akk_rows_fn rows_iq4_nl, rows_iq4_xs, rows_mxfp4, rows_iq4_nl_x8, rows_mxfp4_x8;
    akk_rows_fn rows_q5_0, rows_q5_1, rows_q2_k, rows_q3_k, rows_q4_k, rows_q5_k, rows_q6_k;
    /* llama.cpp's tiled order of these types, which kernel_for (dispatch.c) takes for products of
     * >= AKK_TILED_MIN_ROWS activation rows; the entries above keep the vec_dot order. */
    akk_rows_fn rows_q2_k_tl, rows_q3_k_tl, rows_q5_k_tl, rows_q6_k_tl, rows_iq4_xs_tl;
    /* Weight types without a row kernel of their own: every output is one `dot` of its row and
     * token (wtype passed through), e.g. Q5_x and the K-quants. */
    void (*rows_dot)(int wtype, const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                     const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride);
    void (*fp16_to_fp32_row)(const uint16_t *x, float *y, int64_t n);
    void (*fp32_to_fp16_row)(const float *x, uint16_t *y, int64_t n);
    /* Decode attention: out[i * os + r] = dot(a + (i / group) * ag + r * as, b + i * bs) * scale for
     * r < rows, i < m, each dot in ggml_vec_dot_f32's (f32 cache) or ggml_vec_dot_f16's (f16 cache; b then holds
     * fp16 values as floats) order (akk_attn_dots.h; ops.c: the scalar references). */
    akk_attn_rows_f32_fn attn_rows_f32;
    akk_attn_rows_f16_fn attn_rows_f16;
    /* Reads `bytes` bytes (a multiple of 256, 64-byte aligned) and returns a checksum. */
    uint64_t (*read_bytes)(const uint8_t *p, size_t bytes);
    akk_rows_fn rows_q4_k_r8; /* AKK_Q4_K_R8 (repack_q4_k.c); r0, r1 multiples of 8 */
    akk_rows_fn rows_iq4_nl_r8, rows_mxfp4_r8; /* AKK_IQ4_NL_R8, AKK_MXFP4_R8 (repack_iq4mx.c), as above */
    akk_rows_fn rows_q4_k_r8_dense; /* AKK_Q4_K_R8_DENSE (repack_q4_k.c); the same */
    /* AKK_IQ4_XS_R16 (repack_iq4xs.c), r0, r1 multiples of 8: the vec_dot order and the tiled one
     * (products of >= AKK_TILED_MIN_ROWS activation rows), as rows_iq4_xs / rows_iq4_xs_tl */
    akk_rows_fn rows_iq4_xs_r16, rows_iq4_xs_r16_tl;
    /* Prefill attention: out[i][r] = dot(n[i], a + r * as, b + i * bs) * scale for i < m,
     * r < rows[i], each dot in tinyBLAS's one-accumulator order (one_acc; n[i] % 8 elements are
     * not read) or ggml_vec_dot_f32's / ggml_vec_dot_f16's (b as in attn_rows_*): akk_attn_dots.h. */
    akk_attn_pf_f32_fn attn_prefill_f32;
    akk_attn_pf_f16_fn attn_prefill_f16;
};

/* Scalar reference of the AKK_Q4_0_R8 matmul (repack.c); r0 and r1 multiples of 8. */
void akk_rows_q4_0_r8_scalar(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                             const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride);

/* The row driver of the 8-row repacked types (repack.c): token chunks whose per-block activation
 * scales xd and aux ints (aux_per_block per block) `prep` fills once, then per group of 8 rows
 * token tiles of up to tt (`tile`), or for decode two groups from the two halves of the range at
 * once (`decode2`: two weight streams in flight). `scalar`: the reference, used without scratch. */
typedef void (*akk_r8_prep_fn)(const uint8_t *x, int64_t nb, float *xd, int32_t *aux);
typedef void (*akk_r8_tile_fn)(int T, const uint8_t *grp, int64_t nb, const uint8_t *x, int64_t xstride,
                               const float *xd, const int32_t *aux, int64_t scs, float *y, int64_t ystride);
typedef void (*akk_r8_decode2_fn)(const uint8_t *ga, const uint8_t *gb, int64_t nb, const uint8_t *x,
                                  const float *xd, const int32_t *aux, float *ya, float *yb);
struct akk_r8_kernel {
    int64_t be;        /* elements per block */
    int aux_per_block, tt;
    akk_r8_prep_fn prep;
    akk_r8_tile_fn tile;
    akk_r8_decode2_fn decode2;
    akk_rows_fn scalar;
};
void akk_rows_r8(const struct akk_r8_kernel *k, const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                 const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride);

/* AKK_Q4_K_R8 (repack_q4_k.c): the scalar reference matmul (r0, r1 multiples of 8), the B pairs
 * of a Q8_K block its SIMD drivers share, the AVX2 kernel (simd_avx2_kquant.c) and the AVX-512
 * entries (simd_avx512_kquant.c) put into an implementation set. */
void akk_rows_q4_k_r8_scalar(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                             const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride);
void akk_q8_K_bpairs(const uint8_t *xb, int32_t bp[4]);
void akk_rows_q4_k_r8_avx2(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                           const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride);
/* AKK_Q4_K_R8_DENSE: how many of n_tok activation rows take llama.cpp's gemm order (the rest its
 * gemv's, as AKK_Q4_K_R8), the scalar reference and the AVX2 kernel. */
int64_t akk_q4_k_r8_dense_gemm_rows(int64_t n_tok);
void akk_rows_q4_k_r8_dense_scalar(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                                   const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride);
void akk_rows_q4_k_r8_dense_avx2(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                                 const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride);
struct akk_impl;
void akk_avx512_kquant_prepare(struct akk_impl *impl);
/* The AVX-512 activation quantisers and fp32 -> fp16 rows (simd_avx512_rowops.c). */
void akk_avx512_rowops_prepare(struct akk_impl *impl);

/* The decode attention products (akk_impl.attn_rows_*): the set in force's (dispatch.c), scalar
 * references (ops.c), AVX2 (simd_avx2.c). */
void akk_attn_rows_f32(AKK_ATTN_ROWS_ARGS(float));
void akk_attn_rows_f16(AKK_ATTN_ROWS_ARGS(uint16_t));
void akk_attn_rows_f32_scalar(AKK_ATTN_ROWS_ARGS(float));
void akk_attn_rows_f16_scalar(AKK_ATTN_ROWS_ARGS(uint16_t));
void akk_attn_rows_f32_avx2(AKK_ATTN_ROWS_ARGS(float));
void akk_attn_rows_f16_avx2(AKK_ATTN_ROWS_ARGS(uint16_t));
/* The prefill attention products (akk_impl.attn_prefill_*): the same four places. */
void akk_attn_prefill_f32(AKK_ATTN_PF_ARGS(float));
void akk_attn_prefill_f16(AKK_ATTN_PF_ARGS(uint16_t));
void akk_attn_prefill_f32_scalar(AKK_ATTN_PF_ARGS(float));
void akk_attn_prefill_f16_scalar(AKK_ATTN_PF_ARGS(uint16_t));
void akk_attn_prefill_f32_avx2(AKK_ATTN_PF_ARGS(float));
void akk_attn_prefill_f16_avx2(AKK_ATTN_PF_ARGS(uint16_t));


/* AVX2 IQ4_NL / IQ4_XS / MXFP4 kernels (simd_avx2_iq4mx.c): one dot, and rows as akk_rows_fn. */
float akk_vec_dot_iq4mx_avx2(int wtype, int64_t n, const void *w, const void *x);
void akk_rows_iq4_nl_avx2(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                          const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride);
void akk_rows_iq4_xs_avx2(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                          const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride);
void akk_rows_iq4_xs_tl_avx2(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                             const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride);
void akk_rows_mxfp4_avx2(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                         const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride);
void akk_rows_iq4_nl_x8_avx2(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                             const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride);
void akk_rows_mxfp4_x8_avx2(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                            const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride);
/* A register tile of the AVX2 kernels: R weight rows (rs bytes apart) x T tokens (xs apart) over
 * nb blocks; the output of row r, token t goes to y[t*ys + r*yr]. */
typedef void (*akk_tile_fn)(int R, int T, const uint8_t *w, int64_t rs, int64_t nb, const uint8_t *x, int64_t xs,
                            float *y, int64_t ys, int64_t yr);
/* An akk_rows_fn made of tiles (simd_avx2_iq4mx.c): blocks of be elements; decode tiles of tr1
 * rows x 1 token, prefill tiles of tr rows x tt tokens (tt a power of two). */
void akk_rows_tiled_avx2(akk_tile_fn tile, int64_t be, int tr1, int tr, int tt, const uint8_t *W, int64_t wrow,
                         int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X, int64_t xstride, int64_t n_tok,
                         float *Y, int64_t ystride);
/* Q5_0, Q5_1 and K-quant dot products: scalar references (kquant_dot.c) and AVX2 kernels
 * (simd_avx2_kquant.c), bit-identical; 0 for other types. Row kernels (akk_rows_fn) of the AVX2
 * set: tiles of the same dots. */
#define AKK_KQ_ROWS_DECL(name)                                                                     \
    void name(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X, \
              int64_t xstride, int64_t n_tok, float *Y, int64_t ystride);
AKK_KQ_ROWS_DECL(akk_rows_q5_0_avx2)
AKK_KQ_ROWS_DECL(akk_rows_q5_1_avx2)
AKK_KQ_ROWS_DECL(akk_rows_q2_k_avx2)
AKK_KQ_ROWS_DECL(akk_rows_q3_k_avx2)
AKK_KQ_ROWS_DECL(akk_rows_q4_k_avx2)
AKK_KQ_ROWS_DECL(akk_rows_q5_k_avx2)
AKK_KQ_ROWS_DECL(akk_rows_q6_k_avx2)
AKK_KQ_ROWS_DECL(akk_rows_q2_k_tl_avx2)
AKK_KQ_ROWS_DECL(akk_rows_q3_k_tl_avx2)
AKK_KQ_ROWS_DECL(akk_rows_q5_k_tl_avx2)
AKK_KQ_ROWS_DECL(akk_rows_q6_k_tl_avx2)
/* AVX2 Q8_K quantiser (simd_avx2_kquant.c): the bytes of akk_quantize_row_q8_K. */
void akk_quantize_row_q8_K_avx2(const float *x, void *y, int64_t n);
float akk_vec_dot_kq_scalar(int wtype, int64_t n, const void *w, const void *x);
/* llama.cpp's tiled order (kquant_dot.c) of Q2_K, Q3_K, Q5_K, Q6_K and IQ4_XS, taken by products
 * of >= AKK_TILED_MIN_ROWS activation rows: the product's whole row count chooses between the
 * rows_*_tl entries of struct akk_impl and the plain ones (kernel_for, dispatch.c). */
#define AKK_TILED_MIN_ROWS 8
float akk_vec_dot_kq_tiled_scalar(int wtype, int64_t n, const void *w, const void *x);
float akk_vec_dot_kq_avx2(int wtype, int64_t n, const void *w, const void *x);
/* Sub-block scales (and mins) of Q4_K/Q5_K (12 packed bytes) and Q3_K (12 bytes at offset 96). */
void akk_k4_scales_mins(const uint8_t *q, int sc[8], int m[8]);
void akk_q3_k_scales(const uint8_t *s, int sc[16]);
/* rows_dot of each set: rows [r0, r1) x tokens, one dot each (dispatch.c). */
void akk_rows_by_dot_scalar(int wtype, const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                            const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride);
void akk_rows_by_dot_avx2(int wtype, const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                          const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride);

/* AKK_IQ4_NL_R8 / AKK_MXFP4_R8 (repack_iq4mx.c): scalar references (r0, r1 multiples of 8), the
 * AVX2 (simd_avx2_iq4mx_r8.c) and AVX-512 VNNI (simd_avx512_iq4mx_r8.c) kernels. */
AKK_KQ_ROWS_DECL(akk_rows_iq4_nl_r8_scalar)
AKK_KQ_ROWS_DECL(akk_rows_mxfp4_r8_scalar)
AKK_KQ_ROWS_DECL(akk_rows_iq4_nl_r8_avx2)
AKK_KQ_ROWS_DECL(akk_rows_mxfp4_r8_avx2)
AKK_KQ_ROWS_DECL(akk_rows_iq4_nl_r8_avx512)
AKK_KQ_ROWS_DECL(akk_rows_mxfp4_r8_avx512)

/* AKK_IQ4_XS_R16 (repack_iq4xs.c): scalar references of both orders (r0, r1 multiples of 8), the
 * AVX2 kernels (simd_avx2_iq4xs_r16.c), the AVX-512 vec_dot order (simd_avx512_iq4xs_r16.c) and
 * tiled order (simd_avx512_tiled.c). */
AKK_KQ_ROWS_DECL(akk_rows_iq4_xs_r16_scalar)
AKK_KQ_ROWS_DECL(akk_rows_iq4_xs_r16_tl_scalar)
AKK_KQ_ROWS_DECL(akk_rows_iq4_xs_r16_avx2)
AKK_KQ_ROWS_DECL(akk_rows_iq4_xs_r16_tl_avx2)
AKK_KQ_ROWS_DECL(akk_rows_iq4_xs_r16_avx512)
AKK_KQ_ROWS_DECL(akk_rows_iq4_xs_r16_tl_avx512)
/* The choice of akk_iq4_xs_vbmi, which the AVX-512 IQ4_XS_R16 kernels follow too (1: VBMI). */
int akk_iq4_xs_vbmi_in_force(void);

/* AVX-512 IQ4_NL_X8 / MXFP4_X8 kernels (simd_avx512_iq4mx.c), as akk_rows_fn. */
AKK_KQ_ROWS_DECL(akk_rows_iq4_nl_x8_avx512)
AKK_KQ_ROWS_DECL(akk_rows_mxfp4_x8_avx512)

extern const struct akk_impl akk_impl_avx2;
/* fp16 -> fp32 of every half, for the SIMD kernels' scale broadcasts (akk_avx2_prepare). */
extern float akk_fp16_lut[65536];
/* fp16 at p (unaligned) by table lookup. */
static inline float akk_lut16(const uint8_t *p) { return akk_fp16_lut[akk_load_u16(p)]; }
/* Builds the AVX2 kernels' tables; must run (once) before akk_impl_avx2 is used. */
void akk_avx2_prepare(void);
/* The AVX-512 (F/BW/VL + VNNI) set (simd_avx512.c): akk_impl_avx2's kernels with its own in place
 * where it has one. Filled by akk_avx512_prepare (once, after akk_avx2_prepare). */
extern struct akk_impl akk_impl_avx512;
void akk_avx512_prepare(void);
/* AVX-512 VNNI row kernels in llama.cpp's tiled order (simd_avx512_tiled.c). */
AKK_KQ_ROWS_DECL(akk_rows_q2_k_tl_avx512)
AKK_KQ_ROWS_DECL(akk_rows_q3_k_tl_avx512)
AKK_KQ_ROWS_DECL(akk_rows_q5_k_tl_avx512)
AKK_KQ_ROWS_DECL(akk_rows_q6_k_tl_avx512)
AKK_KQ_ROWS_DECL(akk_rows_iq4_xs_tl_avx512)
AKK_KQ_ROWS_DECL(akk_rows_iq4_xs_avx512)

/* AVX2 row kernels of Q8_0, Q4_0, Q4_1 from the shared tiles (simd_avx2.c), and the AVX2 set's
 * rows of the dense 32-element types: prefill tiles of weights unpacked once per row tile
 * (simd_avx2_bias.c), fewer tokens through the tile rows. */
AKK_KQ_ROWS_DECL(akk_rows_q8_0_avx2)
AKK_KQ_ROWS_DECL(akk_rows_q4_0_avx2)
AKK_KQ_ROWS_DECL(akk_rows_q4_1_avx2)
AKK_KQ_ROWS_DECL(akk_rows_q8_0_pf_avx2)
AKK_KQ_ROWS_DECL(akk_rows_q5_0_pf_avx2)
AKK_KQ_ROWS_DECL(akk_rows_q4_0_pf_avx2)
AKK_KQ_ROWS_DECL(akk_rows_q4_1_pf_avx2)
AKK_KQ_ROWS_DECL(akk_rows_q5_1_pf_avx2)

/* AVX-512VL prefill rows of Q8_0, Q5_0, Q4_0, Q4_1 and Q5_1 from weights unpacked to unsigned
 * bytes (simd_avx512_bias.c); decode (n_tok < 2), other types and no scratch run `fallback`. */
void akk_rows_bias_avx512(int type, akk_rows_fn fallback, const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1,
                          int64_t n_in, const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys);

/* Scratch memory of the calling thread, at least `bytes` and 64-byte aligned (NULL if there is no
 * memory): kept between calls, grown when needed, freed when the thread exits (scratch.c). Valid
 * until the thread's next call; row kernels use it for unpacked tiles, never nested. */
void *akk_thread_scratch(size_t bytes);

#endif

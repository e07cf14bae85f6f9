/*
 * IQ4_XS rows repacked in groups of 16 (AKK_IQ4_XS_R16): the layout, the repacking (and back),
 * and the scalar references of both its matmul orders. The SIMD kernels: simd_avx2_iq4xs_r16.c
 * (both orders, on 8-row halves), simd_avx512_iq4xs_r16.c (vec_dot order) and
 * simd_avx512_tiled.c (the tiled order's unpack into its 16-lane row-group tiles).
 *
 * Why: the plain IQ4_XS prefill tiles (simd_avx512_tiled.c) gathered a sub-block from 16 row
 * pointers and transposed it in registers every token chunk (xg_prep: ~23% of the tile time from
 * cache, 32% from DRAM, and MoE experts see ~8 tokens per chunk), and the decode kernel read 8
 * rows from 8 parts of the range. Repacked at load, one 64-byte load holds 4 quant bytes of each
 * of the 16 rows (the AVX-512 int32 lanes are the rows; an AVX2 register takes the 8-row half),
 * the group's d and scales come out lane-ordered, and a group is one sequential stream.
 * Why 16 rows: the tiled order's AVX-512 tiles keep one row per int32 lane of a zmm (no lane
 * reduction, one vpmulld per sub-block of 16 rows), so a 64-byte chunk of 16 rows is exactly one
 * of their weight registers; with 8 rows a zmm would need two sub-blocks interleaved and a pair
 * sum per row. Expert and dense matrices of the MoE models have multiples of 16 rows.
 *
 * Layout of the group of rows 16g..16g+15 (at W + 16g * wrow), super-block b (256 elements) at
 * offset 16*136*b, so a matrix keeps its size and row addressing (rows are not contiguous):
 *   [0, 32)       fp16 d of the 16 rows, row i at 2i
 *   [32, 96)      uint8 sl[4][16]: sl[j][i] = scales_l[j] of row i (sub-block ib's low 4 scale
 *                 bits are bits 4*(ib%2).. of sl[ib/2][i])
 *   [96, 128)     uint8 sh[2][16]: sh[k][i] = byte k of row i's scales_h (sub-block ib's high 2
 *                 bits are bits 2*(ib%4).. of sh[ib/4][i])
 *   [128, 2176)   uint8 q[8][4][16][4], q[ib][m][i][j] = qs_i[16ib + 4m + j]: the 64-byte chunk
 *                 (ib, m) holds bytes 4m..4m+3 of sub-block ib of each row; their low nibbles are
 *                 elements 32ib+4m..+3, their high nibbles 32ib+16+4m..+3. Bytes [0, 32) of a
 *                 chunk are rows 0..7 (the AVX2 kernels' first half), [32, 64) rows 8..15.
 * A row range handed to the kernels may start or end at a multiple of 8 inside a group.
 *
 * Numerics: exactly the plain IQ4_XS's (iq4mx.c: the vec_dot order, products of fewer than
 * AKK_TILED_MIN_ROWS activation rows; kquant_dot.c: llama.cpp's tiled order), which the scalar
 * references here run on each row unpacked back: the integers the SIMD kernels form are exact,
 * and their float steps are those of the plain kernels lane by lane.
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include <omp.h>
#include <string.h>

#define XR_BLOCK (16 * 136) /* bytes of one super-block of the 16 rows */

/* Super-block b of row i (plain IQ4_XS, 136 bytes at blk) into the group's block out, or back. */
static void pack_block(const uint8_t *blk, int i, uint8_t *out) {
    memcpy(out + 2 * i, blk, 2);
    for (int j = 0; j < 4; j++) out[32 + 16 * j + i] = blk[4 + j];
    for (int k = 0; k < 2; k++) out[96 + 16 * k + i] = blk[2 + k];
    for (int ib = 0; ib < 8; ib++)
        for (int m = 0; m < 4; m++) memcpy(out + 128 + 256 * ib + 64 * m + 4 * i, blk + 8 + 16 * ib + 4 * m, 4);
}

static void unpack_block(const uint8_t *grp, int i, uint8_t *blk) {
    memcpy(blk, grp + 2 * i, 2);
    for (int j = 0; j < 4; j++) blk[4 + j] = grp[32 + 16 * j + i];
    for (int k = 0; k < 2; k++) blk[2 + k] = grp[96 + 16 * k + i];
    for (int ib = 0; ib < 8; ib++)
        for (int m = 0; m < 4; m++) memcpy(blk + 8 + 16 * ib + 4 * m, grp + 128 + 256 * ib + 64 * m + 4 * i, 4);
}

int akk_repack_iq4_xs_r16(const void *src, void *dst, int64_t n_rows, int64_t n_in) {
    if (n_rows <= 0 || n_rows % 16 != 0 || n_in <= 0 || n_in % 256 != 0 || !src || !dst) return -1;
    const int64_t nb = n_in / 256, wrow = nb * 136, n_groups = n_rows / 16;
    const uint8_t *s = (const uint8_t *)src;
    uint8_t *d = (uint8_t *)dst;
    /* a model's worth of weights goes through here at load: all cores, contiguous shares */
#pragma omp parallel if (n_groups * wrow > (1 << 20))
    {
        const int64_t nt = omp_get_num_threads(), me = omp_get_thread_num();
        for (int64_t g = n_groups * me / nt; g < n_groups * (me + 1) / nt; g++)
            for (int64_t b = 0; b < nb; b++)
                for (int i = 0; i < 16; i++) pack_block(s + (16 * g + i) * wrow + 136 * b, i, d + 16 * g * wrow + XR_BLOCK * b);
    }
    return 0;
}

int akk_iq4_xs_r16_row(const void *W, int64_t row, int64_t n_in, void *dst) {
    if (row < 0 || n_in <= 0 || n_in % 256 != 0 || !W || !dst) return -1;
    const int64_t nb = n_in / 256;
    const uint8_t *grp = (const uint8_t *)W + (row / 16) * 16 * nb * 136;
    for (int64_t b = 0; b < nb; b++) unpack_block(grp + XR_BLOCK * b, (int)(row % 16), (uint8_t *)dst + 136 * b);
    return 0;
}

/* Rows [r0, r1) unpacked one at a time, each against every token by the plain type's reference
 * dot (dot: the vec_dot or the tiled order). */
static void rows_r16_scalar(akk_dot_fn dot, const uint8_t *W, int64_t r0, int64_t r1, int64_t n_in,
                            const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    uint8_t row[(n_in / 256) * 136];
    for (int64_t o = r0; o < r1; o++) {
        akk_iq4_xs_r16_row(W, o, n_in, row);
        for (int64_t t = 0; t < n_tok; t++) Y[t * ystride + o] = dot(AKK_IQ4_XS, n_in, row, X + t * xstride);
    }
}

void akk_rows_iq4_xs_r16_scalar(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                                const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    (void)wrow;
    rows_r16_scalar(akk_vec_dot_iq4mx_scalar, W, r0, r1, n_in, X, xstride, n_tok, Y, ystride);
}

void akk_rows_iq4_xs_r16_tl_scalar(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                                   const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    (void)wrow;
    rows_r16_scalar(akk_vec_dot_kq_tiled_scalar, W, r0, r1, n_in, X, xstride, n_tok, Y, ystride);
}

/*
 * IQ4_NL and MXFP4 rows repacked in groups of 8 (AKK_IQ4_NL_R8, AKK_MXFP4_R8): the layout, the
 * repacking (and back), and the scalar references of their matmuls. The SIMD tiles are in
 * akk_iq4mx_r8.h (AVX2: simd_avx2_iq4mx_r8.c, AVX-512 VNNI: simd_avx512_iq4mx_r8.c).
 *
 * Why: the 8-row views (AKK_IQ4_NL_X8, AKK_MXFP4_X8) read 8 separate row streams per group and
 * transpose them in registers; decode then ran at ~24 GB/s where the repacked Q4_0_R8 reaches ~31.
 * Repacked at load, one 32-byte load holds 4 quant bytes of each of the 8 rows (as AKK_Q4_0_R8,
 * repack.c), decode reads two sequential streams per core (akk_rows_r8's decode2) and nothing is
 * transposed.
 *
 * Layout of the group of rows 8g..8g+7, block b (32 elements) at offset 8*bs*b, bs = 18 (IQ4_NL)
 * or 17 (MXFP4) bytes, so a matrix keeps its size and row addressing (rows are not contiguous):
 *   [0, 8*sb)              the 8 rows' scales: fp16 d (sb = 2) or e8m0 e (sb = 1), row i at sb*i
 *   [8*sb, 8*sb + 128)     uint8 q[4][8][4], q[m][i][j] = qs_i[4m + j]: 32-byte chunk m holds
 *                          bytes 4m..4m+3 of each row's 16 packed bytes; their low nibbles are
 *                          elements 4m..4m+3, their high nibbles elements 16+4m..16+4m+3
 * IQ4_NL_R8 is byte for byte the AKK_Q4_0_R8 layout (same block shape), with the IQ4_NL grid.
 *
 * Numerics: exactly the 8-row views' (iq4mx.c, llama.cpp's repacked 8-row kernels), which these
 * types replace at load: per row, isum = the exact integer sum of a block's 32 products
 * (grid value x activation quant), acc = fmaf((float)isum, s_w * d_x, acc) block after block.
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include <math.h>
#include <omp.h>
#include <string.h>

/* Scale bytes of one row's block (2: IQ4_NL, 1: MXFP4), 0 for other types; plain or view type. */
static int scale_bytes(int type) {
    switch (type) {
    case AKK_IQ4_NL: case AKK_IQ4_NL_X8: case AKK_IQ4_NL_R8: return 2;
    case AKK_MXFP4: case AKK_MXFP4_X8: case AKK_MXFP4_R8: return 1;
    default: return 0;
    }
}

int akk_repack_iq4mx_r8(int type, const void *src, void *dst, int64_t n_rows, int64_t n_in) {
    const int sb = scale_bytes(type);
    if (!sb || n_rows <= 0 || n_rows % 8 != 0 || n_in <= 0 || n_in % 32 != 0 || !src || !dst) return -1;
    const int64_t bs = sb + 16, nb = n_in / 32, wrow = nb * bs, n_groups = n_rows / 8;
    const uint8_t *s = (const uint8_t *)src;
    uint8_t *d = (uint8_t *)dst;
    /* a model's worth of weights goes through here at load: all cores, contiguous shares */
#pragma omp parallel if (n_groups * wrow > (1 << 20))
    {
        const int64_t nt = omp_get_num_threads(), me = omp_get_thread_num();
        for (int64_t g = n_groups * me / nt; g < n_groups * (me + 1) / nt; g++) {
            const uint8_t *rows = s + g * 8 * wrow;
            uint8_t *out = d + g * 8 * wrow;
            for (int64_t b = 0; b < nb; b++, out += 8 * bs)
                for (int i = 0; i < 8; i++) {
                    const uint8_t *blk = rows + i * wrow + b * bs;
                    memcpy(out + sb * i, blk, (size_t)sb);
                    for (int m = 0; m < 4; m++) memcpy(out + 8 * sb + 32 * m + 4 * i, blk + sb + 4 * m, 4);
                }
        }
    }
    return 0;
}

int akk_iq4mx_r8_row(int type, const void *W, int64_t row, int64_t n_in, void *dst) {
    const int sb = scale_bytes(type);
    if (!sb || row < 0 || n_in <= 0 || n_in % 32 != 0 || !W || !dst) return -1;
    const int64_t bs = sb + 16, nb = n_in / 32, i = row % 8;
    const uint8_t *grp = (const uint8_t *)W + (row / 8) * 8 * nb * bs;
    uint8_t *out = (uint8_t *)dst;
    for (int64_t b = 0; b < nb; b++, out += bs) {
        const uint8_t *blk = grp + b * 8 * bs;
        memcpy(out, blk + sb * i, (size_t)sb);
        for (int m = 0; m < 4; m++) memcpy(out + sb + 4 * m, blk + 8 * sb + 32 * m + 4 * i, 4);
    }
    return 0;
}

/* dot_x8_q8_0's float steps (iq4mx.c), per row of the group, from the packed layout. */
static void rows_r8_scalar(int mx, const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                           const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    const int sb = mx ? 1 : 2, bs = 8 * (sb + 16);
    const int8_t *kv = mx ? akk_kvalues_mxfp4 : akk_kvalues_iq4nl;
    const int64_t nb = n_in / 32;
    for (int64_t g = r0 / 8; g < r1 / 8; g++) {
        const uint8_t *grp = W + g * 8 * wrow;
        for (int64_t t = 0; t < n_tok; t++)
            for (int i = 0; i < 8; i++) {
                float acc = 0.0f;
                for (int64_t b = 0; b < nb; b++) {
                    const uint8_t *blk = grp + b * bs, *xb = X + t * xstride + b * 34;
                    const int8_t *qx = (const int8_t *)(xb + 2);
                    int isum = 0;
                    for (int m = 0; m < 4; m++)
                        for (int j = 0; j < 4; j++) {
                            const uint8_t q = blk[8 * sb + 32 * m + 4 * i + j];
                            isum += kv[q & 0x0f] * qx[4 * m + j] + kv[q >> 4] * qx[16 + 4 * m + j];
                        }
                    const float ws = mx ? akk_e8m0_to_fp32_half(blk[i]) : akk_load_f16(blk + 2 * i);
                    acc = fmaf((float)isum, ws * akk_load_f16(xb), acc);
                }
                Y[t * ystride + g * 8 + i] = acc;
            }
    }
}

void akk_rows_iq4_nl_r8_scalar(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                               const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    rows_r8_scalar(0, W, wrow, r0, r1, n_in, X, xstride, n_tok, Y, ystride);
}

void akk_rows_mxfp4_r8_scalar(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                              const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    rows_r8_scalar(1, W, wrow, r0, r1, n_in, X, xstride, n_tok, Y, ystride);
}

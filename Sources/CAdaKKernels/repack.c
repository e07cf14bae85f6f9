/*
 * Q4_0 rows repacked in groups of 8 (AKK_Q4_0_R8): the layout, the repacking, and the scalar
 * reference of its matmul (the AVX2 kernel is rows_q4_0_r8 in simd_avx2.c).
 *
 * Why: a Q4_0 row-by-row dot spends ~12 vector ops per block of 32 weights (scale lookup,
 * nibble unpack, maddubs, madd, -8 correction, convert, scale product, fma) — at two cores that
 * is a compute limit below the memory bandwidth, so decode could not be bandwidth-bound. With
 * eight rows interleaved, one 32-byte load carries 4 packed bytes of each row; a broadcast of
 * 4 activation bytes multiplies all eight rows at once, the eight partial products of a block
 * add up in int16 and the scale work (convert, product, fma) is shared by eight rows: ~6 ops per
 * row-block for decode, ~3 per row-block-token for prefill.
 *
 * Layout of the group of rows 8g..8g+7 (n_in = 32*nb elements, same bytes as 8 Q4_0 rows):
 *   block b at offset 144*b:   fp16 d[8]                      (d of row 8g+i at 2i)
 *                              uint8 q[4][8][4]               (q[m][i][j] = qs_i[4m + j])
 * i.e. 32-byte chunk m holds bytes 4m..4m+3 of each row's 16 packed bytes; their low nibbles
 * are elements 4m..4m+3, their high nibbles elements 16+4m..16+4m+3.
 *
 * Numerics (scalar reference below, the AVX2 kernel performs the same float operations):
 *   isum = sum_j (nibble_j - 8) * x_j   over the 32 elements of block b (exact in int32)
 *   acc  = fmaf((float)isum, d_w * d_x, acc)   for b = 0, 1, ..., starting from acc = 0
 * One exact integer per block instead of 8 lanes, so the results differ from the plain Q4_0
 * kernels' (lane sums + hsum) in the last bits; both are within llama.cpp's tolerances.
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

int akk_repack_q4_0_r8(const void *src, void *dst, int64_t n_rows, int64_t n_in) {
    if (n_rows <= 0 || n_rows % 8 != 0 || n_in <= 0 || n_in % 32 != 0 || !src || !dst) return -1;
    const int64_t nb = n_in / 32, wrow = nb * 18;
    const uint8_t *s = (const uint8_t *)src;
    uint8_t *d = (uint8_t *)dst;
    const int64_t n_groups = n_rows / 8;
    /* a model's worth of weights goes through here at load: all cores, contiguous shares */
#pragma omp parallel if (n_groups * wrow > (1 << 20))
    {
        const int64_t nt = omp_get_num_threads(), me = omp_get_thread_num();
        for (int64_t g = n_groups * me / nt; g < n_groups * (me + 1) / nt; g++) {
            const uint8_t *rows = s + g * 8 * wrow;
            uint8_t *out = d + g * 8 * wrow;
            for (int64_t b = 0; b < nb; b++, out += 144) {
                for (int i = 0; i < 8; i++) {
                    const uint8_t *blk = rows + i * wrow + b * 18;
                    memcpy(out + 2 * i, blk, 2);
                    for (int m = 0; m < 4; m++) memcpy(out + 16 + 32 * m + 4 * i, blk + 2 + 4 * m, 4);
                }
            }
        }
    }
    return 0;
}

int akk_q4_0_r8_row(const void *W, int64_t row, int64_t n_in, void *dst) {
    if (row < 0 || n_in <= 0 || n_in % 32 != 0 || !W || !dst) return -1;
    const int64_t nb = n_in / 32, wrow = nb * 18, i = row % 8;
    const uint8_t *grp = (const uint8_t *)W + (row / 8) * 8 * wrow;
    uint8_t *out = (uint8_t *)dst;
    for (int64_t b = 0; b < nb; b++, out += 18) {
        const uint8_t *blk = grp + b * 144;
        memcpy(out, blk + 2 * i, 2);
        for (int m = 0; m < 4; m++) memcpy(out + 2 + 4 * m, blk + 16 + 32 * m + 4 * i, 4);
    }
    return 0;
}

void akk_rows_q4_0_r8_scalar(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                             const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    const int64_t nb = n_in / 32;
    for (int64_t g = r0 / 8; g < r1 / 8; g++) {
        const uint8_t *grp = W + g * 8 * wrow;
        for (int64_t t = 0; t < n_tok; t++) {
            const uint8_t *x = X + t * xstride;
            for (int i = 0; i < 8; i++) {
                float acc = 0.0f;
                for (int64_t b = 0; b < nb; b++) {
                    const uint8_t *blk = grp + b * 144, *xb = x + b * 34;
                    const int8_t *qx = (const int8_t *)(xb + 2);
                    int isum = 0;
                    for (int m = 0; m < 4; m++)
                        for (int j = 0; j < 4; j++) {
                            const uint8_t q = blk[16 + 32 * m + 4 * i + j];
                            isum += ((q & 0x0f) - 8) * qx[4 * m + j] + ((q >> 4) - 8) * qx[16 + 4 * m + j];
                        }
                    const float d = akk_fp16_to_fp32(akk_load_u16(blk + 2 * i)) * akk_fp16_to_fp32(akk_load_u16(xb));
                    acc = fmaf((float)isum, d, acc);
                }
                Y[t * ystride + g * 8 + i] = acc;
            }
        }
    }
}

void akk_rows_r8(const struct akk_r8_kernel *k, const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                 const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    const int64_t nb = n_in / k->be, chunk = n_tok < 64 ? n_tok : 64, ab = k->aux_per_block;
    float xd_small[1024];
    int32_t aux_small[4 * 1024];
    float *xd = xd_small;
    int32_t *aux = aux_small;
    if (chunk * nb > 1024 || ab > 4) {
        xd = malloc((size_t)(chunk * nb) * (size_t)(1 + ab) * sizeof(float));
        if (!xd) { /* no scratch: the scalar reference gives the same values */
            k->scalar(W, wrow, r0, r1, n_in, X, xstride, n_tok, Y, ystride);
            return;
        }
        aux = (int32_t *)(xd + chunk * nb);
    }
    for (int64_t c0 = 0; c0 < n_tok; c0 += chunk) {
        const int64_t c1 = c0 + chunk < n_tok ? c0 + chunk : n_tok;
        for (int64_t t = c0; t < c1; t++) k->prep(X + t * xstride, nb, xd + (t - c0) * nb, aux + (t - c0) * nb * ab);
        if (n_tok == 1) { /* decode: group i of each half of the range together, then an odd one */
            const int64_t g0 = r0 / 8, half = (r1 / 8 - g0) / 2;
            for (int64_t i = 0; i < half; i++)
                k->decode2(W + (g0 + i) * 8 * wrow, W + (g0 + half + i) * 8 * wrow, nb, X, xd, aux,
                           Y + (g0 + i) * 8, Y + (g0 + half + i) * 8);
            if ((r1 / 8 - g0) % 2)
                k->tile(1, W + (r1 / 8 - 1) * 8 * wrow, nb, X, xstride, xd, aux, nb, Y + (r1 / 8 - 1) * 8, ystride);
            continue;
        }
        for (int64_t g = r0 / 8; g < r1 / 8; g++)
            for (int64_t t = c0; t < c1; t += k->tt) {
                const int T = (int)(c1 - t < k->tt ? c1 - t : k->tt);
                k->tile(T, W + g * 8 * wrow, nb, X + t * xstride, xstride, xd + (t - c0) * nb,
                        aux + (t - c0) * nb * ab, nb, Y + t * ystride + g * 8, ystride);
            }
    }
    if (xd != xd_small) free(xd);
}

/*
 * Q4_K rows repacked in groups of 8 (AKK_Q4_K_R8): the layout, the repacking (and back), and the
 * scalar reference of its matmul. The SIMD tiles are in akk_kquant_r8.h (AVX2 and AVX-512 VNNI).
 *
 * Why: Q4_K's numerics (llama.cpp's x86 q4_K_8x8 kernels, kquant_dot.c) keep one float chain per
 * output: per super-block the exact integers S = sum_c sc[c]*dot_c and M = sum_c m[c]*B_c, then
 * acc = fma(S, d_w*d_x, acc), accm = fma(M, dmin_w*d_x, accm). Row by row, forming S and M costs a
 * horizontal reduction and scalar float work per (row, token, super-block), about as much as the
 * products. With 8 rows interleaved, one 32-byte load holds 4 quant bytes of each row, a
 * broadcast of 4 activation bytes multiplies all 8 rows (vpdpbusd, or maddubs), the 8 rows' S and
 * M come out as the 8 lanes of a vector, and the float steps are 8 rows wide.
 *
 * Layout of the group of rows 8g..8g+7, super-block b at offset 1152*b (8 x 144 bytes, so a
 * matrix keeps its size and row addressing; rows are not contiguous):
 *   [0, 16)      fp16 d of rows 0..7
 *   [16, 32)     fp16 dmin of rows 0..7
 *   [32, 96)     byte 8c+i: low nibble = low 4 bits of scale sc[c] of row i (sub-block c);
 *                high nibble of byte e = low 4 bits of min m[c] of row i, e = 16k + 2i + j, c = 2k+j
 *   [96, 128)    byte j: bits 0-1 = sc >> 4 of entry j (the scales' index above), bits 2-3 = m >> 4
 *                of entry j (the mins' index), bits 4-7 the same for entry j + 32
 *   [128, 1152)  32 chunks of 32 bytes: chunk n, bytes 4i..4i+3 = row i's qs[4n..4n+3]; their low
 *                nibbles are elements 32c+4(n%8)..+3 of sub-block c = 2(n/8), the high nibbles
 *                those of sub-block c+1
 * The scale bits are arranged so that SIMD code unpacks all 64 scales and 64 mins with a few
 * byte operations, the mins already in the (m[2k], m[2k+1]) pairs that multiply B pairs.
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include <math.h>
#include <omp.h>
#include <string.h>

#define GROUP_BLOCK 1152 /* bytes of one super-block of 8 rows */

/* entry index of sub-block c, row i: scales 8c+i, mins 16(c/2) + 2i + c%2 */
static inline int sc_entry(int c, int i) { return 8 * c + i; }
static inline int m_entry(int c, int i) { return 16 * (c / 2) + 2 * i + c % 2; }

static void pack_block(const uint8_t *const rows[8], uint8_t *out) {
    memset(out + 32, 0, 96);
    for (int i = 0; i < 8; i++) {
        const uint8_t *blk = rows[i];
        memcpy(out + 2 * i, blk, 2);
        memcpy(out + 16 + 2 * i, blk + 2, 2);
        int sc[8], m[8];
        akk_k4_scales_mins(blk + 4, sc, m);
        for (int c = 0; c < 8; c++) {
            const int es = sc_entry(c, i), em = m_entry(c, i);
            out[32 + es] |= (uint8_t)(sc[c] & 15);
            out[32 + em] |= (uint8_t)((m[c] & 15) << 4);
            out[96 + es % 32] |= (uint8_t)((sc[c] >> 4) << (4 * (es / 32)));
            out[96 + em % 32] |= (uint8_t)((m[c] >> 4) << (2 + 4 * (em / 32)));
        }
        for (int n = 0; n < 32; n++) memcpy(out + 128 + 32 * n + 4 * i, blk + 16 + 4 * n, 4);
    }
}

/* The 8 rows' 6-bit scales and mins of a packed block: sc[c][i], m[c][i]. */
static void unpack_scales(const uint8_t *blk, int sc[8][8], int m[8][8]) {
    for (int c = 0; c < 8; c++)
        for (int i = 0; i < 8; i++) {
            const int es = sc_entry(c, i), em = m_entry(c, i);
            sc[c][i] = (blk[32 + es] & 15) | ((blk[96 + es % 32] >> (4 * (es / 32))) & 3) << 4;
            m[c][i] = (blk[32 + em] >> 4) | ((blk[96 + em % 32] >> (2 + 4 * (em / 32))) & 3) << 4;
        }
}

int akk_repack_q4_k_r8(const void *src, void *dst, int64_t n_rows, int64_t n_in) {
    if (n_rows <= 0 || n_rows % 8 != 0 || n_in <= 0 || n_in % AKK_QK_K != 0 || !src || !dst) return -1;
    const int64_t nb = n_in / AKK_QK_K, wrow = nb * 144, n_groups = n_rows / 8;
    const uint8_t *s = (const uint8_t *)src;
    uint8_t *d = (uint8_t *)dst;
    /* a model's worth of weights goes through here at load: all cores, contiguous shares */
#pragma omp parallel if (n_groups * wrow > (1 << 20))
    {
        const int64_t nt = omp_get_num_threads(), me = omp_get_thread_num();
        for (int64_t g = n_groups * me / nt; g < n_groups * (me + 1) / nt; g++)
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *rows[8];
                for (int i = 0; i < 8; i++) rows[i] = s + (g * 8 + i) * wrow + b * 144;
                pack_block(rows, d + g * 8 * wrow + b * GROUP_BLOCK);
            }
    }
    return 0;
}

int akk_q4_k_r8_row(const void *W, int64_t row, int64_t n_in, void *dst) {
    if (row < 0 || n_in <= 0 || n_in % AKK_QK_K != 0 || !W || !dst) return -1;
    const int64_t nb = n_in / AKK_QK_K, i = row % 8;
    const uint8_t *grp = (const uint8_t *)W + (row / 8) * 8 * nb * 144;
    uint8_t *out = (uint8_t *)dst;
    for (int64_t b = 0; b < nb; b++, out += 144) {
        const uint8_t *blk = grp + b * GROUP_BLOCK;
        int sc[8][8], m[8][8];
        unpack_scales(blk, sc, m);
        memcpy(out, blk + 2 * i, 2);
        memcpy(out + 2, blk + 16 + 2 * i, 2);
        /* kquants.c's 12-byte packing (the inverse of akk_k4_scales_mins) */
        uint8_t *q = out + 4;
        for (int j = 0; j < 4; j++) {
            q[j] = (uint8_t)((sc[j][i] & 63) | (sc[j + 4][i] >> 4) << 6);
            q[j + 4] = (uint8_t)((m[j][i] & 63) | (m[j + 4][i] >> 4) << 6);
            q[j + 8] = (uint8_t)((sc[j + 4][i] & 15) | (m[j + 4][i] & 15) << 4);
        }
        for (int n = 0; n < 32; n++) memcpy(out + 16 + 4 * n, blk + 128 + 32 * n + 4 * i, 4);
    }
    return 0;
}

/* B pairs of one token's Q8_K block: bp[k] = B_2k in the low 16 bits, B_2k+1 in the high ones,
 * B_c = bsums[2c] + bsums[2c+1] (|B_c| <= 32*128, so int16 holds it). Shared by the SIMD drivers. */
void akk_q8_K_bpairs(const uint8_t *xb, int32_t bp[4]) {
    int16_t bs[16];
    memcpy(bs, xb + 260, 32);
    for (int k = 0; k < 4; k++) {
        const uint16_t lo = (uint16_t)(bs[4 * k] + bs[4 * k + 1]), hi = (uint16_t)(bs[4 * k + 2] + bs[4 * k + 3]);
        bp[k] = (int32_t)((uint32_t)lo | (uint32_t)hi << 16);
    }
}

/* The float steps per row of the group, from the packed layout: the exact integers S and M over
 * `span` sub-blocks (8: dot_q4_K in kquant_dot.c, llama.cpp's gemv; 2: its gemm), then
 * acc = fma(S, d_w*d_x, acc), accm = fma(M, dmin_w*d_x, accm); the result acc - accm. */
static void rows_scalar(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X,
                        int64_t xstride, int64_t n_tok, float *Y, int64_t ystride, int span) {
    const int64_t nb = n_in / AKK_QK_K;
    for (int64_t g = r0 / 8; g < r1 / 8; g++) {
        const uint8_t *grp = W + g * 8 * wrow;
        for (int64_t t = 0; t < n_tok; t++) {
            const uint8_t *x = X + t * xstride;
            float acc[8] = {0}, accm[8] = {0};
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = grp + b * GROUP_BLOCK, *xb = x + b * 292;
                const int8_t *qx = (const int8_t *)(xb + 4);
                const float dx = akk_load_f32(xb);
                int sc[8][8], m[8][8];
                unpack_scales(blk, sc, m);
                int16_t bs[16];
                memcpy(bs, xb + 260, 32);
                for (int i = 0; i < 8; i++) {
                    const float d = akk_load_f16(blk + 2 * i) * dx, dm = akk_load_f16(blk + 16 + 2 * i) * dx;
                    int S = 0, M = 0;
                    for (int c = 0; c < 8; c++) {
                        int dot = 0;
                        for (int e = 0; e < 32; e++) {
                            const uint8_t v = blk[128 + 32 * (8 * (c / 2) + e / 4) + 4 * i + e % 4];
                            dot += (c % 2 ? v >> 4 : v & 15) * qx[32 * c + e];
                        }
                        S += sc[c][i] * dot;
                        M += m[c][i] * (bs[2 * c] + bs[2 * c + 1]);
                        if ((c + 1) % span == 0) {
                            acc[i] = fmaf((float)S, d, acc[i]);
                            accm[i] = fmaf((float)M, dm, accm[i]);
                            S = M = 0;
                        }
                    }
                }
            }
            for (int i = 0; i < 8; i++) Y[t * ystride + g * 8 + i] = acc[i] - accm[i];
        }
    }
}

void akk_rows_q4_k_r8_scalar(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                             const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    rows_scalar(W, wrow, r0, r1, n_in, X, xstride, n_tok, Y, ystride, 8);
}

/* AKK_Q4_K_R8_DENSE: llama.cpp's dense product with a repacked q4_K_8x8 matrix (MUL_MAT) takes
 * the activation rows in groups of 4 through its gemm (x86 AVX2 ggml_gemm_q4_K_8x8_q8_K: one fma
 * per pair of sub-blocks, 64 elements) and the n_tok % 4 rows left over through the gemv (one
 * per super-block), as the rows of fewer than 4-row products. Expert products (MUL_MAT_ID) take
 * the gemv for every row: AKK_Q4_K_R8. */
int64_t akk_q4_k_r8_dense_gemm_rows(int64_t n_tok) { return n_tok >= 4 ? n_tok - n_tok % 4 : 0; }

void akk_rows_q4_k_r8_dense_scalar(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                                   const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    const int64_t n4 = akk_q4_k_r8_dense_gemm_rows(n_tok);
    rows_scalar(W, wrow, r0, r1, n_in, X, xstride, n4, Y, ystride, 2);
    rows_scalar(W, wrow, r0, r1, n_in, X + n4 * xstride, xstride, n_tok - n4, Y + n4 * ystride, ystride, 8);
}

/*
 * Q6_K rows repacked in groups of 8 (AKK_Q6_K_R8): the layout, the repacking (and back), the
 * scalar references of both of Q6_K's float orders, and the row driver of the SIMD kernels
 * (simd_avx2_q6k_r8.c, simd_avx512_q6k_r8.c).
 *
 * Why: Q6_K's decode kernel on the file layout read 25-30 GB/s per core from L2 (AVX-512), below a
 * core's share of the memory bandwidth: per 32 elements it rebuilt the 6-bit quants from a nibble
 * and two high bits (5-6 operations), picked the sub-block scales with a permute, and broadcast the
 * activations once per row. Numerics (kquant_dot.c, dot_q6_K): per row and super-block 8 exact
 * int32 lanes t_l, lane l of chunk c (32 elements) being elements 32c+4l..+3 with the scale of
 * sub-block 2c + l/4, minus 32*(sc[2l]*bsum[2l] + sc[2l+1]*bsum[2l+1]); acc[l] = fma(d_x*d_w, t_l,
 * acc[l]); the row is hsum8(acc). The tiled order takes S = sum of the lanes' exact total instead.
 * Any layout that yields the same integers gives the same bits. Here int32 lane 2r+p of the 64-byte
 * "quad vector" (c, i) holds row r's elements 32c+16p+4i..+3 (p = 0, 1; i = 0..3), i.e. lane
 * l = 4p+i of row r: the 4 quad vectors of a chunk share one scale vector (lane 2r+p: the scale of
 * sub-block 2c+p of row r), one activation qword broadcast serves all 8 rows, and the quants
 * unpack with one AND each for three of the four vectors (and six operations for the fourth).
 *
 * Layout of the group of rows 8g..8g+7 (8 x nb x 210 bytes, so a matrix keeps its size and row
 * addressing; rows are not contiguous), in three sections so that the quants stay 64-byte aligned:
 *   quants [0, 1536 nb): block b at 1536b, chunk c at +192c: vectors A, B, C of 64 bytes; byte
 *          4(2r+p)+k of A (B, C) = u of row r, element 32c+16p+4i+k with i = 0 (1, 2) in bits 0-5,
 *          and bits 0-1 (2-3, 4-5) of u of element 32c+16p+12+k in bits 6-7. u = quant + 32, 0..63.
 *   scales [1536 nb, 1664 nb): block b at +128b: byte 32i + 4r + 2p + j = int8 scale of sub-block
 *          8p + 2i + j of row r (32 bytes per i: the scale pairs of lanes 4p+i, as the bsum
 *          correction multiplies them; a vpshufb turns them into a chunk's scale vector).
 *   d      [1664 nb, 1680 nb): block b at +16b: fp16 d of rows 0..7.
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include <math.h>
#include <omp.h>
#include <string.h>

/* Plain Q6_K: u (0..63) of element e of a block (kquants.c's layout). */
static inline int plain_u(const uint8_t *w, int e) {
    const int h = e / 128, s = (e % 128) / 32, l = e % 32;
    const int nib = (w[64 * h + l + 32 * (s & 1)] >> (s >= 2 ? 4 : 0)) & 15;
    return nib | ((w[128 + 32 * h + l] >> (2 * s)) & 3) << 4;
}

/* AKK_Q6_K_R8: byte offsets in a group of nb blocks. */
static inline int64_t quant_byte(int64_t b, int r, int e, int v) { /* v: 0 = A, 1 = B, 2 = C */
    return 1536 * b + 192 * (e / 32) + 64 * v + 4 * (2 * r + (e % 32) / 16) + e % 4;
}
static inline int64_t scale_byte(int64_t nb, int64_t b, int r, int s) {
    return 1536 * nb + 128 * b + 32 * ((s % 8) / 2) + 4 * r + 2 * (s / 8) + s % 2;
}
static inline int64_t d_byte(int64_t nb, int64_t b, int r) { return 1664 * nb + 16 * b + 2 * r; }

/* u of element e of row r, block b of a group. */
static inline int r8_u(const uint8_t *grp, int64_t b, int r, int e) {
    const int i = (e % 16) / 4;
    if (i < 3) return grp[quant_byte(b, r, e, i)] & 63;
    const int e0 = e - 12; /* the element whose bytes carry this one's bits */
    return grp[quant_byte(b, r, e0, 0)] >> 6 | (grp[quant_byte(b, r, e0, 1)] >> 6) << 2 |
           (grp[quant_byte(b, r, e0, 2)] >> 6) << 4;
}

int akk_repack_q6_k_r8(const void *src, void *dst, int64_t n_rows, int64_t n_in) {
    if (n_rows <= 0 || n_rows % 8 != 0 || n_in <= 0 || n_in % AKK_QK_K != 0 || !src || !dst) return -1;
    const int64_t nb = n_in / AKK_QK_K, wrow = nb * 210, n_groups = n_rows / 8;
    const uint8_t *s = (const uint8_t *)src;
    uint8_t *d = (uint8_t *)dst;
#pragma omp parallel if (n_groups * wrow > (1 << 20))
    {
        const int64_t nt = omp_get_num_threads(), me = omp_get_thread_num();
        for (int64_t g = n_groups * me / nt; g < n_groups * (me + 1) / nt; g++) {
            uint8_t *grp = d + g * 8 * wrow;
            for (int64_t b = 0; b < nb; b++)
                for (int r = 0; r < 8; r++) {
                    const uint8_t *w = s + (g * 8 + r) * wrow + b * 210;
                    memcpy(grp + d_byte(nb, b, r), w + 208, 2);
                    for (int k = 0; k < 16; k++) grp[scale_byte(nb, b, r, k)] = w[192 + k];
                    for (int e = 0; e < 256; e++) {
                        const int i = (e % 16) / 4;
                        if (i == 3) continue;
                        const int u3 = plain_u(w, e + 12 - 4 * i);
                        grp[quant_byte(b, r, e, i)] = (uint8_t)(plain_u(w, e) | ((u3 >> (2 * i)) & 3) << 6);
                    }
                }
        }
    }
    return 0;
}

int akk_q6_k_r8_row(const void *W, int64_t row, int64_t n_in, void *dst) {
    if (row < 0 || n_in <= 0 || n_in % AKK_QK_K != 0 || !W || !dst) return -1;
    const int64_t nb = n_in / AKK_QK_K;
    const int r = (int)(row % 8);
    const uint8_t *grp = (const uint8_t *)W + (row / 8) * 8 * nb * 210;
    uint8_t *out = (uint8_t *)dst;
    for (int64_t b = 0; b < nb; b++, out += 210) {
        memset(out, 0, 192);
        for (int e = 0; e < 256; e++) { /* kquants.c's Q6_K layout (plain_u's inverse) */
            const int u = r8_u(grp, b, r, e), h = e / 128, s = (e % 128) / 32, l = e % 32;
            out[64 * h + l + 32 * (s & 1)] |= (uint8_t)((u & 15) << (s >= 2 ? 4 : 0));
            out[128 + 32 * h + l] |= (uint8_t)((u >> 4) << (2 * s));
        }
        for (int k = 0; k < 16; k++) out[192 + k] = grp[scale_byte(nb, b, r, k)];
        memcpy(out + 208, grp + d_byte(nb, b, r), 2);
    }
    return 0;
}

/* The scalar references, on the packed layout: dot_q6_K's lanes and float steps (tl = 0), or
 * akk_vec_dot_kq_tiled_scalar's (tl = 1), per row of the group. */
static void rows_scalar(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X,
                        int64_t xstride, int64_t n_tok, float *Y, int64_t ystride, int tl) {
    const int64_t nb = n_in / AKK_QK_K;
    for (int64_t g = r0 / 8; g < r1 / 8; g++) {
        const uint8_t *grp = W + g * 8 * wrow;
        for (int r = 0; r < 8; r++)
            for (int64_t t = 0; t < n_tok; t++) {
                const uint8_t *x = X + t * xstride;
                float acc[8] = {0}, acc1 = 0.0f;
                for (int64_t b = 0; b < nb; b++) {
                    const uint8_t *xb = x + b * 292;
                    const int8_t *qx = (const int8_t *)(xb + 4);
                    int16_t bs[16];
                    memcpy(bs, xb + 260, 32);
                    int u[256], sc[16];
                    for (int e = 0; e < 256; e++) u[e] = r8_u(grp, b, r, e);
                    for (int k = 0; k < 16; k++) sc[k] = (int8_t)grp[scale_byte(nb, b, r, k)];
                    const float dw = akk_load_f16(grp + d_byte(nb, b, r)), dx = akk_load_f32(xb);
                    if (tl) {
                        int32_t S = 0;
                        for (int e = 0; e < 256; e++) S += sc[e / 16] * (u[e] - 32) * qx[e];
                        acc1 = fmaf(dw * (float)S, dx, acc1);
                        continue;
                    }
                    const float d = dx * dw;
                    for (int l = 0; l < 8; l++) {
                        int v = 0;
                        for (int c = 0; c < 8; c++) {
                            const int e = 32 * c + 4 * l;
                            v += sc[2 * c + l / 4] * (u[e] * qx[e] + u[e + 1] * qx[e + 1] + u[e + 2] * qx[e + 2] + u[e + 3] * qx[e + 3]);
                        }
                        v -= 32 * (sc[2 * l] * bs[2 * l] + sc[2 * l + 1] * bs[2 * l + 1]);
                        acc[l] = fmaf(d, (float)v, acc[l]);
                    }
                }
                Y[t * ystride + g * 8 + r] = tl ? acc1 : akk_hsum8_ref(acc);
            }
    }
}

void akk_rows_q6_k_r8_scalar(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X,
                             int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    rows_scalar(W, wrow, r0, r1, n_in, X, xstride, n_tok, Y, ystride, 0);
}

void akk_rows_q6_k_r8_tl_scalar(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                                const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    rows_scalar(W, wrow, r0, r1, n_in, X, xstride, n_tok, Y, ystride, 1);
}

/* The SIMD drivers: token chunks of up to 64 whose blocks `prep` rearranges once (into the
 * thread's scratch), then per group of 8 rows token tiles of up to max_t; without scratch, the
 * scalar reference (the same values). */
void akk_rows_q6r8(const struct akk_q6r8_kernel *k, int tl, const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1,
                   int64_t n_in, const uint8_t *X, int64_t xstride, int64_t n_tok, float *Y, int64_t ystride) {
    const int64_t nb = n_in / AKK_QK_K, chunk = n_tok < 64 ? n_tok : 64;
    struct akk_q6r8_x *xp = akk_thread_scratch((size_t)(chunk * nb) * sizeof(struct akk_q6r8_x));
    if (!xp) {
        rows_scalar(W, wrow, r0, r1, n_in, X, xstride, n_tok, Y, ystride, tl);
        return;
    }
    for (int64_t c0 = 0; c0 < n_tok; c0 += chunk) {
        const int64_t c1 = c0 + chunk < n_tok ? c0 + chunk : n_tok;
        for (int64_t t = c0; t < c1; t++) k->prep(X + t * xstride, nb, xp + (t - c0) * nb);
        for (int64_t g = r0 / 8; g < r1 / 8; g++)
            for (int64_t t = c0; t < c1;) {
                const int T = (int)(c1 - t < k->max_t[tl] ? c1 - t : k->max_t[tl]);
                k->group(T, tl, W + g * 8 * wrow, nb, xp + (t - c0) * nb, nb, Y + t * ystride + g * 8, ystride);
                t += T;
            }
    }
}

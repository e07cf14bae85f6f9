/*
 * K-quant quantisers (super-blocks of 256): Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, giving the bytes of
 * ggml's quantize_row_q*_K_ref (llama.cpp's quantizer without an importance matrix).
 *
 * Each super-block is cut into sub-blocks (16 of 16 for Q2_K/Q3_K/Q6_K, 8 of 32 for Q4_K/Q5_K);
 * a per-sub-block scale (and min) is searched, the scales are quantised against the largest one
 * (6 bits, 4 for Q2_K, 8 for Q6_K) and every value is then re-quantised with its stored scale.
 * The searches:
 *   - affine (Q2_K, Q4_K, Q5_K): L = round((x - min)/s) over 1 + nstep trial scales
 *     (nmax + rmin + rdelta*i)/(max - min); each trial's weighted least-squares scale/min is kept
 *     when its weighted error (|.| for Q2_K, squared otherwise) is lower;
 *   - symmetric (Q6_K): 18 trial scales -(nmax + 0.1 i)/max, i = -9..9, keeping the one that
 *     maximises (sum w x l)^2 / sum w l^2 with w = x^2;
 *   - Q3_K: one trial plus up to 5 rounds of single-value moves that raise that same ratio.
 * The float expressions are ggml's, in its order; products like w*x*l are (w*x)*l.
 */
#pragma STDC FP_CONTRACT OFF
#include "quantize_internal.h"

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Affine search (ggml's make_qkx2_quants): returns the scale, *neg_min gets -min (>= 0). */
static float search_affine(int n, int nmax, const float *x, const float *w, uint8_t *L, float *neg_min,
                           uint8_t *Laux, float rmin, float rdelta, int nstep, int use_mad) {
    float lo = x[0], hi = x[0];
    float sum_w = w[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (lo > 0) lo = 0;
    if (hi == lo) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *neg_min = -lo;
        return 0.f;
    }
    float iscale = nmax / (hi - lo);
    float scale = 1 / iscale;
    float best_err = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(akq_nearest_int(iscale * (x[i] - lo)), 0, nmax);
        float diff = scale * L[i] + lo - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_err += w[i] * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (hi - lo);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            const int l = clampi(akq_nearest_int(iscale * (x[i] - lo)), 0, nmax);
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float err = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                err += w[i] * diff;
            }
            if (err < best_err) {
                memcpy(L, Laux, (size_t)n);
                best_err = err;
                scale = this_scale;
                lo = this_min;
            }
        }
    }
    *neg_min = -lo;
    return scale;
}

/* One trial of the symmetric searches: l = clamp(round(iscale x), -nmax, nmax-1), L = l + off,
 * and the weighted sums (w = x^2) sum w x l and sum w l^2, in ggml's order. */
static void symmetric_trial(int n, int nmax, const float *x, float iscale, int8_t *L, int off,
                            float *sumlx_out, float *suml2_out) {
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = clampi(akq_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        if (L) L[i] = (int8_t)(l + off);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    *sumlx_out = sumlx;
    *suml2_out = suml2;
}

/* First trial of both symmetric searches, at iscale = -nmax/peak (peak: the value of largest |x|);
 * returns 0, with L all 0, when max|x| < AKQ_GROUP_MAX_EPS. */
static int symmetric_start(int n, int nmax, const float *x, int8_t *L, int off, float *peak,
                           float *sumlx, float *suml2) {
    float amax;
    *peak = akq_abs_peak(x, n, &amax);
    if (amax < AKQ_GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0;
    }
    symmetric_trial(n, nmax, x, -nmax / *peak, L, off, sumlx, suml2);
    return 1;
}

/* Symmetric search with w = x^2 (ggml's make_qx_quants, rmse_type 1, no weights): L in [0, 2 nmax). */
static float search_symmetric(int n, int nmax, const float *x, int8_t *L) {
    float peak, sumlx, suml2;
    if (!symmetric_start(n, nmax, x, L, nmax, &peak, &sumlx, &suml2)) return 0.f;
    float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        const float iscale = -(nmax + 0.1f * is) / peak;
        symmetric_trial(n, nmax, x, iscale, NULL, 0, &sumlx, &suml2);
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            symmetric_trial(n, nmax, x, iscale, L, nmax, &sumlx, &suml2);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Q3_K's search (ggml's make_q3_quants with rmse): L in [0, 2 nmax). */
static float search_q3(int n, int nmax, const float *x, int8_t *L) {
    float peak, sumlx, suml2;
    if (!symmetric_start(n, nmax, x, L, 0, &peak, &sumlx, &suml2)) return 0.f;
    for (int round = 0; round < 5; round++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                const int nl = clampi(akq_nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
                if (nl != L[i]) {
                    slx += w * x[i] * nl;
                    sl2 += w * nl * nl;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)nl;
                        sumlx = slx;
                        suml2 = sl2;
                        changed++;
                    }
                }
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Packs 2-bit values: qs[32 h + l] holds L[128 h + l + 32 s] in bits 2s..2s+1 (s = 0..3). */
static void pack_2bit(const uint8_t *L, uint8_t *qs) {
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *p = L + 128 * h + l;
            qs[32 * h + l] = (uint8_t)(p[0] | (p[32] << 2) | (p[64] << 4) | (p[96] << 6));
        }
}

/* Q2_K { uint8 scales[16] (scale | min << 4); uint8 qs[64]; fp16 d; fp16 dmin } (84 bytes). */
void akq_row_q2_k(const float *x, uint8_t *y, int64_t k) {
    uint8_t L[256], Laux[16];
    float w[16], mins[16], scales[16];
    for (int64_t b = 0; b < k / 256; b++, x += 256, y += 84) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++) w[l] = fabsf(x[16 * j + l]);
            scales[j] = search_affine(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, 1);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        uint8_t *sc = y;
        if (max_scale > 0) {
            const float iscale = 15.f / max_scale;
            for (int j = 0; j < 16; j++) sc[j] = (uint8_t)akq_nearest_int(iscale * scales[j]);
            akq_put_f16(y + 80, max_scale / 15.f);
        } else {
            memset(sc, 0, 16);
            akq_put_f16(y + 80, 0.f);
        }
        if (max_min > 0) {
            const float iscale = 15.f / max_min;
            for (int j = 0; j < 16; j++) sc[j] |= (uint8_t)(akq_nearest_int(iscale * mins[j]) << 4);
            akq_put_f16(y + 82, max_min / 15.f);
        } else {
            akq_put_f16(y + 82, 0.f);
        }
        const float dd = akq_get_f16(y + 80), dm = akq_get_f16(y + 82);
        for (int j = 0; j < 16; j++) {
            const float d = dd * (sc[j] & 0xf);
            if (d == 0) continue;
            const float m = dm * (sc[j] >> 4);
            for (int i = 0; i < 16; i++)
                L[16 * j + i] = (uint8_t)clampi(akq_nearest_int((x[16 * j + i] + m) / d), 0, 3);
        }
        pack_2bit(L, y + 16);
    }
}

/* Q3_K { uint8 hmask[32]; uint8 qs[64]; uint8 scales[12]; fp16 d } (110 bytes). The 16 6-bit
 * scales (+32): low nibbles in scales[0..7] (j < 8 low half, j >= 8 high half of byte j-8), the
 * top 2 bits of scale j in byte 8 + j%4 at bits 2(j/4). */
void akq_row_q3_k(const float *x, uint8_t *y, int64_t k) {
    int8_t L[256];
    float scales[16];
    for (int64_t b = 0; b < k / 256; b++, x += 256, y += 110) {
        for (int j = 0; j < 16; j++) scales[j] = search_q3(16, 4, x + 16 * j, L + 16 * j);
        float amax;
        const float max_scale = akq_abs_peak(scales, 16, &amax);
        uint8_t *hmask = y, *qs = y + 32, *sc = y + 96;
        memset(sc, 0, 12);
        if (max_scale != 0) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < 16; j++) {
                int8_t l = (int8_t)akq_nearest_int(iscale * scales[j]);
                l = (int8_t)(clampi(l, -32, 31) + 32);
                if (j < 8) sc[j] = l & 0xf;
                else sc[j - 8] |= (uint8_t)((l & 0xf) << 4);
                l >>= 4;
                sc[j % 4 + 8] |= (uint8_t)(l << (2 * (j / 4)));
            }
            akq_put_f16(y + 108, 1 / iscale);
        } else {
            akq_put_f16(y + 108, 0.f);
        }
        const float dd = akq_get_f16(y + 108);
        for (int j = 0; j < 16; j++) {
            int8_t s = (int8_t)(j < 8 ? sc[j] & 0xf : sc[j - 8] >> 4);
            s = (int8_t)((s | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32);
            const float d = dd * s;
            if (d == 0) continue;
            for (int i = 0; i < 16; i++)
                L[16 * j + i] = (int8_t)(clampi(akq_nearest_int(x[16 * j + i] / d), -4, 3) + 4);
        }
        memset(hmask, 0, 32);
        for (int j = 0; j < 256; j++) {
            if (L[j] > 3) {
                hmask[j % 32] |= (uint8_t)(1 << (j / 32));
                L[j] -= 4;
            }
        }
        pack_2bit((const uint8_t *)L, qs);
    }
}

/* The 6-bit scales and mins of Q4_K/Q5_K (12 bytes): j < 4 in the low 6 bits of bytes j and
 * j+4; j >= 4 with their low nibbles in byte j+4 and top 2 bits in bits 6-7 of bytes j-4 / j. */
static void pack_scale_min(uint8_t *s, const uint8_t *ls, const uint8_t *lm) {
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            s[j] = ls[j];
            s[j + 4] = lm[j];
        } else {
            s[j + 4] = (uint8_t)((ls[j] & 0xf) | ((lm[j] & 0xf) << 4));
            s[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            s[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

static void unpack_scale_min(int j, const uint8_t *s, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Shared by Q4_K and Q5_K: searches the 8 sub-blocks, writes d, dmin and the 12 scale bytes at
 * y, and leaves the final quants (0..nmax) in L. */
static void q45k_block(const float *x, uint8_t *y, uint8_t *L, int nmax, float rmin, int nstep) {
    uint8_t Laux[32], ls[8], lm[8];
    float w[32], mins[8], scales[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        const float *xb = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += xb[l] * xb[l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(xb[l]);
        scales[j] = search_affine(32, nmax, xb, w, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, 0);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; j++) {
        ls[j] = (uint8_t)akq_nearest_int(inv_scale * scales[j]);
        lm[j] = (uint8_t)akq_nearest_int(inv_min * mins[j]);
        if (ls[j] > 63) ls[j] = 63;
        if (lm[j] > 63) lm[j] = 63;
    }
    pack_scale_min(y + 4, ls, lm);
    akq_put_f16(y, max_scale / 63.f);
    akq_put_f16(y + 2, max_min / 63.f);
    const float dd = akq_get_f16(y), dm = akq_get_f16(y + 2);
    for (int j = 0; j < 8; j++) {
        int sc, m;
        unpack_scale_min(j, y + 4, &sc, &m);
        const float d = dd * sc;
        if (d == 0) continue;
        const float dmj = dm * m;
        for (int i = 0; i < 32; i++)
            L[32 * j + i] = (uint8_t)clampi(akq_nearest_int((x[32 * j + i] + dmj) / d), 0, nmax);
    }
}

/* Q4_K { fp16 d; fp16 dmin; uint8 scales[12]; uint8 qs[128] } (144 bytes): qs[32 h + l] holds
 * sub-block 2h element l (low nibble) and sub-block 2h+1 element l (high nibble). */
void akq_row_q4_k(const float *x, uint8_t *y, int64_t k) {
    uint8_t L[256];
    for (int64_t b = 0; b < k / 256; b++, x += 256, y += 144) {
        q45k_block(x, y, L, 15, -1.f, 20);
        uint8_t *q = y + 16;
        for (int h = 0; h < 4; h++)
            for (int l = 0; l < 32; l++) q[32 * h + l] = (uint8_t)(L[64 * h + l] | (L[64 * h + l + 32] << 4));
    }
}

/* Q5_K { fp16 d; fp16 dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128] } (176 bytes): as Q4_K,
 * with bit 4 of sub-block s element l in bit s of qh[l]. */
void akq_row_q5_k(const float *x, uint8_t *y, int64_t k) {
    uint8_t L[256];
    for (int64_t b = 0; b < k / 256; b++, x += 256, y += 176) {
        q45k_block(x, y, L, 31, -0.5f, 15);
        uint8_t *qh = y + 16, *ql = y + 48;
        memset(qh, 0, 32);
        for (int h = 0; h < 4; h++) {
            for (int l = 0; l < 32; l++) {
                int l1 = L[64 * h + l], l2 = L[64 * h + l + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    qh[l] |= (uint8_t)(1 << (2 * h));
                }
                if (l2 > 15) {
                    l2 -= 16;
                    qh[l] |= (uint8_t)(2 << (2 * h));
                }
                ql[32 * h + l] = (uint8_t)(l1 | (l2 << 4));
            }
        }
    }
}

/* Q6_K { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; fp16 d } (210 bytes). Per half h of 128:
 * for l < 32, values l, l+32, l+64, l+96 (6 bits, +32) put their low nibbles in ql[64h + l] (low),
 * ql[64h + l + 32] (low), ql[64h + l] (high), ql[64h + l + 32] (high) and their top 2 bits in
 * qh[32h + l] bits 0-1, 2-3, 4-5, 6-7. */
void akq_row_q6_k(const float *x, uint8_t *y, int64_t k) {
    int8_t L[256];
    float scales[16];
    for (int64_t b = 0; b < k / 256; b++, x += 256, y += 210) {
        for (int j = 0; j < 16; j++) scales[j] = search_symmetric(16, 32, x + 16 * j, L + 16 * j);
        float max_abs;
        const float max_scale = akq_abs_peak(scales, 16, &max_abs);
        if (max_abs < AKQ_GROUP_MAX_EPS) {
            memset(y, 0, 210);
            continue;
        }
        int8_t *sc = (int8_t *)(y + 192);
        const float iscale = -128.f / max_scale;
        akq_put_f16(y + 208, 1 / iscale);
        for (int j = 0; j < 16; j++) {
            const int v = akq_nearest_int(iscale * scales[j]);
            sc[j] = (int8_t)(v < 127 ? v : 127);
        }
        const float dd = akq_get_f16(y + 208);
        for (int j = 0; j < 16; j++) {
            const float d = dd * sc[j];
            if (d == 0) continue;
            for (int i = 0; i < 16; i++)
                L[16 * j + i] = (int8_t)(clampi(akq_nearest_int(x[16 * j + i] / d), -32, 31) + 32);
        }
        uint8_t *ql = y, *qh = y + 128;
        for (int h = 0; h < 2; h++) {
            const uint8_t *p = (const uint8_t *)L + 128 * h;
            for (int l = 0; l < 32; l++) {
                ql[64 * h + l] = (uint8_t)((p[l] & 0xf) | ((p[l + 64] & 0xf) << 4));
                ql[64 * h + l + 32] = (uint8_t)((p[l + 32] & 0xf) | ((p[l + 96] & 0xf) << 4));
                qh[32 * h + l] = (uint8_t)((p[l] >> 4) | ((p[l + 32] >> 4) << 2) | ((p[l + 64] >> 4) << 4) |
                                           ((p[l + 96] >> 4) << 6));
            }
        }
    }
}

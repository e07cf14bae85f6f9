/*
 * AVX-512 (F/BW/VL + VNNI) kernel of AKK_Q6_K_R8 (layout and numerics: repack_q6_k.c): a group of
 * 8 rows x T tokens per call, both float orders. Per super-block and token, 4 registers of exact
 * int32 lanes (register i: lane 2r+p = row r's lane l = 4p+i of dot_q6_K) start at the bsum
 * correction (vpdpwssd of the scale pairs x -32 with the bsum pairs) and take, per 32-element
 * chunk, maddubs(quants, activation qword broadcast) x the chunk's scale vector (vpdpwssd; the pair
 * sums of maddubs are <= 2*63*128 and the lanes exact). Then the vec_dot order: acc = fma(d_x*d_w,
 * lanes, acc) on 64 lanes at once and hsum8 per row at the end; the tiled order: the row's lanes
 * summed (exact), res = d_w*S, acc = fma(res, d_x, acc). The scalar references' bits either way.
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include <immintrin.h>
#include <string.h>

#define Q6_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define Q6_FN static __attribute__((target(Q6_TARGET)))
#define Q6_INLINE static inline __attribute__((always_inline, target(Q6_TARGET)))

Q6_INLINE __m512i bcast8(const void *p) {
    long long v;
    memcpy(&v, p, 8);
    return _mm512_set1_epi64(v);
}

/* T tokens (x[t*xs + b]: block b of token t) x the 8 rows of group grp; tl: the tiled order. */
Q6_INLINE void group(const int T, const int TL, const uint8_t *grp, int64_t nb, const struct akk_q6r8_x *x,
                     int64_t xs, float *y, int64_t ys) {
    const __m512i m6 = _mm512_set1_epi8(0x3f), m2 = _mm512_set1_epi8(3), m4 = _mm512_set1_epi8(0x0f);
    const __m512i m32 = _mm512_set1_epi16(-32);
    /* per 128-bit lane (rows 2m, 2m+1): dword k <- word w twice, w = 0, 1, 4, 5 (chunks c < 4) or
     * 2, 3, 6, 7 (c >= 4) of the scale pairs of quad i = c % 4 */
    const __m512i ctl0 = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 0, 1, 2, 3, 2, 3, 8, 9, 8, 9, 10, 11, 10, 11));
    const __m512i ctl1 = _mm512_add_epi8(ctl0, _mm512_set1_epi8(4));
    const __m512i pairs = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    __m512 facc[8][4];
    for (int t = 0; t < T; t++)
        for (int i = 0; i < 4; i++) facc[t][i] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *Q = grp + 1536 * b, *S = grp + 1536 * nb + 128 * b;
        __m512i sp[4], acc[8][4];
        for (int i = 0; i < 4; i++) {
            sp[i] = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(S + 32 * i)));
            const __m512i c32 = _mm512_mullo_epi16(sp[i], m32);
            for (int t = 0; t < T; t++) /* the tiled order keeps one register per token */
                acc[t][TL ? 0 : i] = _mm512_dpwssd_epi32(TL && i ? acc[t][0] : _mm512_setzero_si512(), c32, bcast8(x[t * xs + b].bs + 2 * i));
        }
        for (int c = 0; c < 8; c++) {
            const __m512i a = _mm512_loadu_si512((const void *)(Q + 192 * c));
            const __m512i bb = _mm512_loadu_si512((const void *)(Q + 192 * c + 64));
            const __m512i cc = _mm512_loadu_si512((const void *)(Q + 192 * c + 128));
            __m512i q[4];
            q[0] = _mm512_and_si512(a, m6);
            q[1] = _mm512_and_si512(bb, m6);
            q[2] = _mm512_and_si512(cc, m6);
            /* bits 6-7 of a, bb, cc -> bits 0-1, 2-3, 4-5 (0xca: first ? second : third) */
            const __m512i lo = _mm512_ternarylogic_epi32(m2, _mm512_srli_epi16(a, 6), _mm512_srli_epi16(bb, 4), 0xca);
            q[3] = _mm512_and_si512(_mm512_ternarylogic_epi32(m4, lo, _mm512_srli_epi16(cc, 2), 0xca), m6);
            const __m512i sc = _mm512_shuffle_epi8(sp[c % 4], c < 4 ? ctl0 : ctl1);
            if (TL) { /* only the total counts: the 4 quads of a lane are one sub-block, so vpdpbusd
                       * sums them (<= 16*63*128) and one vpmulld applies the scale */
                const __m512i sc32 = _mm512_srai_epi32(sc, 16);
                for (int t = 0; t < T; t++) {
                    __m512i d = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[0], bcast8(x[t * xs + b].q + 32 * c));
                    for (int i = 1; i < 4; i++) d = _mm512_dpbusd_epi32(d, q[i], bcast8(x[t * xs + b].q + 32 * c + 8 * i));
                    acc[t][0] = _mm512_add_epi32(acc[t][0], _mm512_mullo_epi32(d, sc32));
                }
                continue;
            }
            for (int t = 0; t < T; t++)
                for (int i = 0; i < 4; i++)
                    acc[t][i] = _mm512_dpwssd_epi32(acc[t][i], _mm512_maddubs_epi16(q[i], bcast8(x[t * xs + b].q + 32 * c + 8 * i)), sc);
        }
        const __m512 dw = _mm512_permutexvar_ps(
            pairs, _mm512_castps256_ps512(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(grp + 1664 * nb + 16 * b)))));
        for (int t = 0; t < T; t++) {
            const __m512 dx = _mm512_set1_ps(x[t * xs + b].dx);
            if (TL) {
                const __m512i s = _mm512_add_epi32(acc[t][0], _mm512_shuffle_epi32(acc[t][0], _MM_PERM_CDAB)); /* lanes 2r, 2r+1: row r's S */
                facc[t][0] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_cvtepi32_ps(s)), dx, facc[t][0]);
            } else {
                const __m512 d = _mm512_mul_ps(dx, dw);
                for (int i = 0; i < 4; i++) facc[t][i] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(acc[t][i]), facc[t][i]);
            }
        }
    }
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14);
    for (int t = 0; t < T; t++) {
        __m512 r = facc[t][0];
        if (!TL) { /* hsum8 per row: (a0+a4 + a2+a6) + (a1+a5 + a3+a7), a_i + a_{4+i} = lanes 2r + 2r+1 of facc[i] */
            __m512 s[4];
            for (int i = 0; i < 4; i++) s[i] = _mm512_add_ps(facc[t][i], _mm512_permute_ps(facc[t][i], 0xb1));
            r = _mm512_add_ps(_mm512_add_ps(s[0], s[2]), _mm512_add_ps(s[1], s[3]));
        }
        _mm256_storeu_ps(y + t * ys, _mm512_castps512_ps256(_mm512_permutexvar_ps(even, r)));
    }
}

Q6_FN void group_any(int T, int tl, const uint8_t *grp, int64_t nb, const struct akk_q6r8_x *x, int64_t xs, float *y,
                     int64_t ys) {
    if (tl) switch (T) {
        case 1: group(1, 1, grp, nb, x, xs, y, ys); break;
        case 2: group(2, 1, grp, nb, x, xs, y, ys); break;
        case 3: group(3, 1, grp, nb, x, xs, y, ys); break;
        case 4: group(4, 1, grp, nb, x, xs, y, ys); break;
        case 5: group(5, 1, grp, nb, x, xs, y, ys); break;
        case 6: group(6, 1, grp, nb, x, xs, y, ys); break;
        case 7: group(7, 1, grp, nb, x, xs, y, ys); break;
        default: group(8, 1, grp, nb, x, xs, y, ys); break;
        }
    else if (T == 1) group(1, 0, grp, nb, x, xs, y, ys);
    else group(2, 0, grp, nb, x, xs, y, ys);
}

static const struct akk_q6r8_kernel kernel = {akk_q6r8_prep_avx2, group_any, {2, 8}};

void akk_rows_q6_k_r8_avx512(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X,
                             int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    akk_rows_q6r8(&kernel, 0, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}

void akk_rows_q6_k_r8_tl_avx512(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                                const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    akk_rows_q6r8(&kernel, 1, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}

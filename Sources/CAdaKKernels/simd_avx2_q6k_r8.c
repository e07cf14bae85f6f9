/*
 * AVX2 kernel of AKK_Q6_K_R8 (layout and numerics: repack_q6_k.c; the AVX-512 one:
 * simd_avx512_q6k_r8.c) and the activation rearrangement both use. A 32-byte register holds the
 * lanes 2r+p of 4 rows, so a group runs as two halves (rows 0-3, 4-7), each over all blocks: per
 * chunk maddubs with the activation qword broadcast, madd with the chunk's scale vector (vpshufb of
 * the scale pairs), add. Integer lanes exact, float steps as the scalar references.
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include "akk_avx2.h"
#include <string.h>

AVX2_INLINE __m256i bcast8(const void *p) {
    long long v;
    memcpy(&v, p, 8);
    return _mm256_set1_epi64x(v);
}

/* Each 32-byte chunk's dwords (and the 8 bsum pairs) in the order 0,4,1,5,2,6,3,7: the qword i of
 * a chunk is then the activations of lanes i and 4+i. */
__attribute__((target("avx2,fma,f16c")))
void akk_q6r8_prep_avx2(const uint8_t *x, int64_t nb, struct akk_q6r8_x *out) {
    const __m256i idx = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *xb = x + b * 292;
        for (int c = 0; c < 8; c++)
            _mm256_storeu_si256((__m256i *)(out[b].q + 32 * c),
                                _mm256_permutevar8x32_epi32(_mm256_loadu_si256((const __m256i *)(xb + 4 + 32 * c)), idx));
        _mm256_storeu_si256((__m256i *)out[b].bs, _mm256_permutevar8x32_epi32(_mm256_loadu_si256((const __m256i *)(xb + 260)), idx));
        out[b].dx = akk_load_f32(xb);
    }
}

/* Rows 4h..4h+3 of group grp x T tokens; outputs at y[t*ys + 4h ...]. */
AVX2_INLINE void half(const int T, const int TL, int h, const uint8_t *grp, int64_t nb, const struct akk_q6r8_x *x,
                      int64_t xs, float *y, int64_t ys) {
    const __m256i m6 = _mm256_set1_epi8(0x3f), m2 = _mm256_set1_epi8(3), mc = _mm256_set1_epi8(0x0c),
                  m30 = _mm256_set1_epi8(0x30), m32 = _mm256_set1_epi16(-32);
    const __m256i ctl0 = _mm256_broadcastsi128_si256(_mm_setr_epi8(0, 1, 0, 1, 2, 3, 2, 3, 8, 9, 8, 9, 10, 11, 10, 11));
    const __m256i ctl1 = _mm256_add_epi8(ctl0, _mm256_set1_epi8(4));
    const __m256i pairs = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
    __m256 facc[4][4];
    for (int t = 0; t < T; t++)
        for (int i = 0; i < 4; i++) facc[t][i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *Q = grp + 1536 * b + 32 * h, *S = grp + 1536 * nb + 128 * b + 16 * h;
        __m256i acc[4][4];
        for (int i = 0; i < 4; i++) {
            const __m256i c32 = _mm256_mullo_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(S + 32 * i))), m32);
            for (int t = 0; t < T; t++) acc[t][i] = _mm256_madd_epi16(c32, bcast8(x[t * xs + b].bs + 2 * i));
        }
        for (int c = 0; c < 8; c++) {
            const __m256i a = _mm256_loadu_si256((const __m256i *)(Q + 192 * c));
            const __m256i bb = _mm256_loadu_si256((const __m256i *)(Q + 192 * c + 64));
            const __m256i cc = _mm256_loadu_si256((const __m256i *)(Q + 192 * c + 128));
            __m256i q[4];
            q[0] = _mm256_and_si256(a, m6);
            q[1] = _mm256_and_si256(bb, m6);
            q[2] = _mm256_and_si256(cc, m6);
            q[3] = _mm256_or_si256(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 6), m2),
                                                   _mm256_and_si256(_mm256_srli_epi16(bb, 4), mc)),
                                   _mm256_and_si256(_mm256_srli_epi16(cc, 2), m30));
            const __m256i sp = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(S + 32 * (c % 4))));
            const __m256i sc = _mm256_shuffle_epi8(sp, c < 4 ? ctl0 : ctl1);
            for (int t = 0; t < T; t++)
                for (int i = 0; i < 4; i++)
                    acc[t][i] = _mm256_add_epi32(acc[t][i], _mm256_madd_epi16(_mm256_maddubs_epi16(q[i], bcast8(x[t * xs + b].q + 32 * c + 8 * i)), sc));
        }
        const __m256 dw = _mm256_permutevar8x32_ps(
            _mm256_castps128_ps256(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(grp + 1664 * nb + 16 * b + 8 * h)))), pairs);
        for (int t = 0; t < T; t++) {
            const __m256 dx = _mm256_set1_ps(x[t * xs + b].dx);
            if (TL) {
                __m256i s = _mm256_add_epi32(_mm256_add_epi32(acc[t][0], acc[t][1]), _mm256_add_epi32(acc[t][2], acc[t][3]));
                s = _mm256_add_epi32(s, _mm256_shuffle_epi32(s, 0xb1));
                facc[t][0] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_cvtepi32_ps(s)), dx, facc[t][0]);
            } else {
                const __m256 d = _mm256_mul_ps(dx, dw);
                for (int i = 0; i < 4; i++) facc[t][i] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(acc[t][i]), facc[t][i]);
            }
        }
    }
    const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
    for (int t = 0; t < T; t++) {
        __m256 r = facc[t][0];
        if (!TL) { /* hsum8 per row, as the AVX-512 kernel */
            __m256 s[4];
            for (int i = 0; i < 4; i++) s[i] = _mm256_add_ps(facc[t][i], _mm256_permute_ps(facc[t][i], 0xb1));
            r = _mm256_add_ps(_mm256_add_ps(s[0], s[2]), _mm256_add_ps(s[1], s[3]));
        }
        _mm_storeu_ps(y + t * ys + 4 * h, _mm256_castps256_ps128(_mm256_permutevar8x32_ps(r, even)));
    }
}

AVX2_FN void group_any(int T, int tl, const uint8_t *grp, int64_t nb, const struct akk_q6r8_x *x, int64_t xs, float *y,
                       int64_t ys) {
    for (int h = 0; h < 2; h++) switch ((T < 4 ? T : 4) + 4 * !!tl) {
        case 1: half(1, 0, h, grp, nb, x, xs, y, ys); break;
        case 2: half(2, 0, h, grp, nb, x, xs, y, ys); break;
        case 3: half(3, 0, h, grp, nb, x, xs, y, ys); break;
        case 4: half(4, 0, h, grp, nb, x, xs, y, ys); break;
        case 5: half(1, 1, h, grp, nb, x, xs, y, ys); break;
        case 6: half(2, 1, h, grp, nb, x, xs, y, ys); break;
        case 7: half(3, 1, h, grp, nb, x, xs, y, ys); break;
        default: half(4, 1, h, grp, nb, x, xs, y, ys); break;
        }
}

static const struct akk_q6r8_kernel kernel = {akk_q6r8_prep_avx2, group_any, {4, 4}};

void akk_rows_q6_k_r8_avx2(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in, const uint8_t *X,
                           int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    akk_rows_q6r8(&kernel, 0, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}

void akk_rows_q6_k_r8_tl_avx2(const uint8_t *W, int64_t wrow, int64_t r0, int64_t r1, int64_t n_in,
                              const uint8_t *X, int64_t xs, int64_t n_tok, float *Y, int64_t ys) {
    akk_rows_q6r8(&kernel, 1, W, wrow, r0, r1, n_in, X, xs, n_tok, Y, ys);
}

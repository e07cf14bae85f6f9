/*
 * AVX2 + FMA dot products of Q5_0, Q5_1 and the K-quants with their activation formats. Each one
 * performs the float operations of its scalar reference in kquant_dot.c, in the same order (the
 * lane layout and accumulation are described there), so results are bit-identical; the integer
 * lanes come from maddubs (unsigned quant x signed activation, pair sums that fit int16) and madd
 * with the sub-block scales, which is exact.
 * Compiled per function with target attributes, as simd_avx2.c.
 */
#pragma STDC FP_CONTRACT OFF
#include "adak_kernels.h"
#include "akk_internal.h"
#include "akk_avx2.h"
#include <math.h>
#include <string.h>



/* 32 bytes: 0xFF where bit j of the 4 bytes at p is set (byte j), else 0. */
AVX2_INLINE __m256i bits_to_bytes(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    const __m256i shuf = _mm256_setr_epi64x(0, 0x0101010101010101ll, 0x0202020202020202ll, 0x0303030303030303ll);
    const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)v), shuf);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201ll);
    return _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
}

/* 16 packed bytes -> 32: low nibbles (elements 0..15), then high nibbles (16..31). */
AVX2_INLINE __m256i nibbles32(const uint8_t *qs) {
    const __m128i v = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0f));
}

/* Lane l = exact sum over bytes 4l..4l+3 of u*x (u unsigned, x signed, pair sums within int16). */
AVX2_INLINE __m256i lanes(__m256i u, __m256i x) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1));
}

/* Lane l = sc(l < 4 ? lo : hi) * sum over bytes 4l..4l+3 of u*x. */
AVX2_INLINE __m256i lanes_scaled(__m256i u, __m256i x, int lo, int hi) {
    const __m256i s = _mm256_set_m128i(_mm_set1_epi16((short)hi), _mm_set1_epi16((short)lo));
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), s);
}

AVX2_FN float dot_q5_0(int64_t n, const uint8_t *w, const uint8_t *x) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / 32; b++, w += 22, x += 34) {
        const __m256 d = _mm256_set1_ps(akk_load_f16(w) * akk_load_f16(x));
        /* q - 16 as signed bytes: nibble | 0xF0 where the fifth bit is clear */
        const __m256i q = _mm256_or_si256(nibbles32(w + 6), _mm256_andnot_si256(bits_to_bytes(w + 2), _mm256_set1_epi8((char)0xF0)));
        const __m256i xq = _mm256_loadu_si256((const __m256i *)(x + 2));
        const __m256i s = lanes(_mm256_sign_epi8(q, q), _mm256_sign_epi8(xq, q));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc);
    }
    return hsum8(acc);
}

AVX2_FN float dot_q5_1(int64_t n, const uint8_t *w, const uint8_t *x) {
    __m256 acc = _mm256_setzero_ps();
    float summs = 0.0f;
    for (int64_t b = 0; b < n / 32; b++, w += 24, x += 36) {
        summs = fmaf(akk_load_f16(w + 2), akk_load_f16(x + 2), summs);
        const __m256 d = _mm256_set1_ps(akk_load_f16(w) * akk_load_f16(x));
        const __m256i q = _mm256_or_si256(nibbles32(w + 8), _mm256_and_si256(bits_to_bytes(w + 4), _mm256_set1_epi8(0x10)));
        const __m256i s = lanes(q, _mm256_loadu_si256((const __m256i *)(x + 4)));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc);
    }
    return hsum8(acc) + summs;
}

static inline int16_t bsum(const uint8_t *x, int j) {
    int16_t s;
    memcpy(&s, x + 260 + 2 * j, 2);
    return s;
}

AVX2_FN float dot_q2_K(int64_t n, const uint8_t *w, const uint8_t *x) {
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / 256; b++, w += 84, x += 292) {
        const uint8_t *sc = w;
        const float dx = akk_load_f32(x);
        const float d = dx * akk_load_f16(w + 80), dmin = -dx * akk_load_f16(w + 82);
        const __m128i sm = _mm_loadu_si128((const __m128i *)sc);
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sm, 4), _mm_set1_epi8(0x0f)));
        const __m256i pm = _mm256_madd_epi16(mins, _mm256_loadu_si256((const __m256i *)(x + 260)));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(pm), acc);
        __m256i sum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(w + 16 + 32 * h));
            for (int s = 0; s < 4; s++) {
                const int c = 4 * h + s;
                const __m256i q = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * s), m3);
                const __m256i xq = _mm256_loadu_si256((const __m256i *)(x + 4 + 32 * c));
                sum = _mm256_add_epi32(sum, lanes_scaled(q, xq, sc[2 * c] & 15, sc[2 * c + 1] & 15));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sum), acc);
    }
    return hsum8(acc);
}

AVX2_FN float dot_q3_K(int64_t n, const uint8_t *w, const uint8_t *x) {
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / 256; b++, w += 110, x += 292) {
        const uint8_t *s = w + 96;
        const float d = akk_load_f32(x) * akk_load_f16(w + 108);
        int sc[16];
        akk_q3_k_scales(s, sc);
        const __m256i hbits = _mm256_loadu_si256((const __m256i *)w);
        __m256i sum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(w + 32 + 32 * h));
            for (int k = 0; k < 4; k++) {
                const int c = 4 * h + k;
                const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * k), m3);
                /* 4 where the hmask bit c is clear, else 0: lanes(lo) - lanes(high) = lanes(q) */
                const __m256i bit = _mm256_set1_epi8((char)(1 << c));
                const __m256i hi = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hbits, bit), _mm256_setzero_si256()), _mm256_set1_epi8(4));
                const __m256i xq = _mm256_loadu_si256((const __m256i *)(x + 4 + 32 * c));
                const __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(lo, xq), _mm256_maddubs_epi16(hi, xq));
                const __m256i scl = _mm256_set_m128i(_mm_set1_epi16((short)sc[2 * c + 1]), _mm_set1_epi16((short)sc[2 * c]));
                sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p16, scl));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sum), acc);
    }
    return hsum8(acc);
}

/* 4 int32 lanes: lane k = m[2k]*(bsums[4k]+bsums[4k+1]) + m[2k+1]*(bsums[4k+2]+bsums[4k+3]). */
AVX2_INLINE __m128i mins_k4(const uint8_t *x, const int m[8]) {
    const __m256i bs = _mm256_loadu_si256((const __m256i *)(x + 260));
    const __m128i pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    const __m128i mv = _mm_setr_epi16((short)m[0], (short)m[1], (short)m[2], (short)m[3], (short)m[4], (short)m[5], (short)m[6], (short)m[7]);
    return _mm_madd_epi16(mv, pairs);
}

AVX2_INLINE int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 1)));
}

/* llama.cpp's repacked q4_K_8x8 order (see kquant_dot.c): exact integer block sums, two scalar
 * accumulators. */
AVX2_FN float dot_q4_K(int64_t n, const uint8_t *w, const uint8_t *x) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    float acc = 0.0f, accm = 0.0f;
    for (int64_t b = 0; b < n / 256; b++, w += 144, x += 292) {
        const float dx = akk_load_f32(x);
        int sc[8], m[8];
        akk_k4_scales_mins(w + 4, sc, m);
        const __m128i lm = mins_k4(x, m);
        __m256i sum = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(w + 16 + 32 * j));
            const __m256i xl = _mm256_loadu_si256((const __m256i *)(x + 4 + 64 * j));
            const __m256i xh = _mm256_loadu_si256((const __m256i *)(x + 36 + 64 * j));
            sum = _mm256_add_epi32(sum, lanes_scaled(_mm256_and_si256(bits, m4), xl, sc[2 * j], sc[2 * j]));
            sum = _mm256_add_epi32(sum, lanes_scaled(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4), xh, sc[2 * j + 1], sc[2 * j + 1]));
        }
        __m128i l2 = _mm_add_epi32(lm, _mm_unpackhi_epi64(lm, lm));
        const int M = _mm_cvtsi128_si32(_mm_add_epi32(l2, _mm_shuffle_epi32(l2, 1)));
        acc = fmaf((float)hsum_i32(sum), akk_load_f16(w) * dx, acc);
        accm = fmaf((float)M, akk_load_f16(w + 2) * dx, accm);
    }
    return acc - accm;
}

AVX2_FN float dot_q5_K(int64_t n, const uint8_t *w, const uint8_t *x) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), m16 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps();
    float summs = 0.0f;
    for (int64_t b = 0; b < n / 256; b++, w += 176, x += 292) {
        const float dx = akk_load_f32(x);
        const float d = dx * akk_load_f16(w), dmin = -dx * akk_load_f16(w + 2);
        int sc[8], m[8], lm[4];
        akk_k4_scales_mins(w + 4, sc, m);
        _mm_storeu_si128((__m128i *)lm, mins_k4(x, m));
        summs = fmaf(dmin, (float)(lm[0] + lm[1] + lm[2] + lm[3]), summs);
        const __m256i hbits = _mm256_loadu_si256((const __m256i *)(w + 16));
        __m256i sum = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(w + 48 + 32 * j));
            /* bit 2j (low nibbles) and 2j+1 (high nibbles) of qh moved to bit 4 */
            const __m256i h0 = _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(hbits, 2 * j), 4), m16);
            const __m256i h1 = _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(hbits, 2 * j + 1), 4), m16);
            const __m256i q0 = _mm256_or_si256(_mm256_and_si256(bits, m4), h0);
            const __m256i q1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4), h1);
            const __m256i x0 = _mm256_loadu_si256((const __m256i *)(x + 4 + 64 * j));
            const __m256i x1 = _mm256_loadu_si256((const __m256i *)(x + 36 + 64 * j));
            sum = _mm256_add_epi32(sum, lanes_scaled(q0, x0, sc[2 * j], sc[2 * j]));
            sum = _mm256_add_epi32(sum, lanes_scaled(q1, x1, sc[2 * j + 1], sc[2 * j + 1]));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sum), acc);
    }
    return hsum8(acc) + summs;
}

AVX2_FN float dot_q6_K(int64_t n, const uint8_t *w, const uint8_t *x) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / 256; b++, w += 210, x += 292) {
        const int8_t *sc = (const int8_t *)(w + 192);
        const float d = akk_load_f32(x) * akk_load_f16(w + 208);
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
        const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(x + 260)), sc16), 5);
        __m256i sum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(w + 64 * h));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(w + 64 * h + 32));
            const __m256i hb = _mm256_loadu_si256((const __m256i *)(w + 128 + 32 * h));
            for (int s = 0; s < 4; s++) {
                const int c = 4 * h + s;
                const __m256i lo = s & 1 ? l1 : l0;
                const __m256i nib = s < 2 ? _mm256_and_si256(lo, m4) : _mm256_and_si256(_mm256_srli_epi16(lo, 4), m4);
                const __m256i high = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * s), m3), 4);
                const __m256i q = _mm256_or_si256(nib, high);
                const __m256i xq = _mm256_loadu_si256((const __m256i *)(x + 4 + 32 * c));
                sum = _mm256_add_epi32(sum, lanes_scaled(q, xq, sc[2 * c], sc[2 * c + 1]));
            }
        }
        sum = _mm256_sub_epi32(sum, corr);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sum), acc);
    }
    return hsum8(acc);
}

float akk_vec_dot_kq_avx2(int wtype, int64_t n, const void *w, const void *x) {
    const uint8_t *a = (const uint8_t *)w, *b = (const uint8_t *)x;
    switch (wtype) {
    case AKK_Q5_0: return dot_q5_0(n, a, b);
    case AKK_Q5_1: return dot_q5_1(n, a, b);
    case AKK_Q2_K: return dot_q2_K(n, a, b);
    case AKK_Q3_K: return dot_q3_K(n, a, b);
    case AKK_Q4_K: return dot_q4_K(n, a, b);
    case AKK_Q5_K: return dot_q5_K(n, a, b);
    case AKK_Q6_K: return dot_q6_K(n, a, b);
    default: return 0.0f;
    }
}

/* The decode attention dots of the AVX2 set (R = 2, simd_avx2.c) and the AVX-512 set (R = 4,
 * simd_avx512_rowops.c): ggml_vec_dot_f32's / ggml_vec_dot_f16's order for every dot (ACC_4X8's
 * four 8-lane accumulators over steps of 32, (a0+a2)+(a1+a3), GGML_F32x8_REDUCE's last steps, the
 * n % 32 tail), several dots at a time. Scalar reference: the single dots in ops.c
 * (akk_attn_dots_f32_scalar / _f16_scalar); KernelTests checks every level against it.
 *
 * Why several at once: a decode dot of one head is 64-224 elements, so one dot alone waits on
 * its four fma chains (4 cycles each step) and on the reduction's latency. R dots in one loop give
 * 4R independent chains, and four reduce together (reduce_4x4x8). Where the four dots share an
 * operand (the V product: one V row against the probabilities of the heads of a GQA group; the
 * scores: one K row against the q of those heads) it is loaded once per step for all four. A
 * product's two factors commute exactly in fma, so which side is shared does not change a bit.
 * R = 4 needs 16 accumulators plus the shared loads: the AVX-512 set has 32 vector registers,
 * AVX2 16 (there R = 2, two passes per four dots). */
#ifndef AKK_ATTN_DOTS_H
#define AKK_ATTN_DOTS_H
#include "akk_avx2.h"

#define LOAD_F32(p) _mm256_loadu_ps(p)
#define LOAD_F16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))

/* The tails past the steps of 32: dot_f32's fma chain; ggml_vec_dot_f16's sum in double of
 * products rounded to float. */
AVX2_INLINE float tail_f32(float s, const float *w, const float *x, int64_t np, int64_t n) {
    for (int64_t i = np; i < n; i++) s = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(w[i]), _mm_set_ss(x[i]), _mm_set_ss(s)));
    return s;
}

AVX2_INLINE float tail_f16(float s, const uint16_t *w, const uint16_t *x, int64_t np, int64_t n) {
    double sum = (double)s;
    for (int64_t i = np; i < n; i++) sum += (double)(_cvtsh_ss(w[i]) * _cvtsh_ss(x[i]));
    return (float)sum;
}

/* [reduce_4x8(A), reduce_4x8(B), reduce_4x8(C), reduce_4x8(D)]: [lo+hi] of two dots per
 * register, then two hadds, which pair the lanes exactly as reduce_4x8 (simd_avx2.c) does for one. */
AVX2_INLINE __m128 reduce_4x4x8(__m256 A, __m256 B, __m256 C, __m256 D) {
    const __m256 ab = _mm256_add_ps(_mm256_permute2f128_ps(A, B, 0x20), _mm256_permute2f128_ps(A, B, 0x31));
    const __m256 cd = _mm256_add_ps(_mm256_permute2f128_ps(C, D, 0x20), _mm256_permute2f128_ps(C, D, 0x31));
    const __m256 h = _mm256_hadd_ps(ab, cd);
    const __m256 h2 = _mm256_hadd_ps(h, h); /* lane 0: A C A C, lane 1: B D B D */
    return _mm_unpacklo_ps(_mm256_castps256_ps128(h2), _mm256_extractf128_ps(h2, 1));
}

/* R dots w[r] . x[r] over np elements (a multiple of 32) in one loop, each with its own four
 * accumulators; out[r] = (a0+a2)+(a1+a3) of dot r. shared: every x[r] is x[0] (loaded once). */
#define ACC_MULTI(R, LOAD, w, x, shared, np, out)                                                  \
    do {                                                                                           \
        __m256 acc_[R][4];                                                                         \
        for (int r_ = 0; r_ < (R); r_++)                                                           \
            for (int c_ = 0; c_ < 4; c_++) acc_[r_][c_] = _mm256_setzero_ps();                     \
        for (int64_t k_ = 0; k_ < (np); k_ += 32) {                                                \
            if (shared) {                                                                          \
                __m256 xs_[4];                                                                     \
                for (int c_ = 0; c_ < 4; c_++) xs_[c_] = LOAD((x)[0] + k_ + 8 * c_);               \
                for (int r_ = 0; r_ < (R); r_++)                                                   \
                    for (int c_ = 0; c_ < 4; c_++)                                                 \
                        acc_[r_][c_] = _mm256_fmadd_ps(LOAD((w)[r_] + k_ + 8 * c_), xs_[c_], acc_[r_][c_]); \
            } else {                                                                               \
                for (int r_ = 0; r_ < (R); r_++)                                                   \
                    for (int c_ = 0; c_ < 4; c_++)                                                 \
                        acc_[r_][c_] = _mm256_fmadd_ps(LOAD((w)[r_] + k_ + 8 * c_),                \
                                                       LOAD((x)[r_] + k_ + 8 * c_), acc_[r_][c_]); \
            }                                                                                      \
        }                                                                                          \
        for (int r_ = 0; r_ < (R); r_++)                                                           \
            (out)[r_] = _mm256_add_ps(_mm256_add_ps(acc_[r_][0], acc_[r_][2]),                     \
                                      _mm256_add_ps(acc_[r_][1], acc_[r_][3]));                    \
    } while (0)

/* The body of an attn_dots kernel (struct akk_impl): out[i] = TAIL(dot of a[i], b[i]) * scale for
 * i < m, four at a time, R interleaved; T the element type. A four whose a (or b) are one pointer
 * share that operand (an a shared is swapped to the x side). */
#define ATTN_DOTS(R, T, LOAD, TAIL)                                                                \
    const int64_t np = n & ~(int64_t)31;                                                           \
    for (int i = 0; i < m; i += 4) {                                                               \
        const int q = m - i < 4 ? m - i : 4;                                                       \
        const T *w[4], *x[4];                                                                      \
        int sa = 1, sb = 1;                                                                        \
        for (int r = 0; r < 4; r++) {                                                              \
            w[r] = a[i + (r < q ? r : 0)];                                                         \
            x[r] = b[i + (r < q ? r : 0)];                                                         \
            sa &= w[r] == w[0];                                                                    \
            sb &= x[r] == x[0];                                                                    \
        }                                                                                          \
        if (sa && !sb)                                                                             \
            for (int r = 0; r < 4; r++) {                                                          \
                const T *t = w[r];                                                                 \
                w[r] = x[r];                                                                       \
                x[r] = t;                                                                          \
            }                                                                                      \
        __m256 v[4];                                                                               \
        for (int r = 0; r < 4; r += (R)) {                                                         \
            if (sa || sb) ACC_MULTI(R, LOAD, w + r, x + r, 1, np, v + r);                          \
            else ACC_MULTI(R, LOAD, w + r, x + r, 0, np, v + r);                                   \
        }                                                                                          \
        float s[4];                                                                                \
        _mm_storeu_ps(s, reduce_4x4x8(v[0], v[1], v[2], v[3]));                                    \
        for (int r = 0; r < q; r++) out[i + r] = TAIL(s[r], a[i + r], b[i + r], np, n) * scale;   \
    }

#endif

/*
 * adak_blas.h — the few OpenBLAS/LAPACK routines the carving code needs (row-major wrappers).
 * Internal to libadak. Linked against Debian's libopenblas (pthread build, own thread pool).
 */
#ifndef ADAK_BLAS_H
#define ADAK_BLAS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* C[m×n] = alpha · op(A) · op(B) + beta · C, row-major; op(A) is m×k (A stored k×m when
 * trans_a), op(B) is k×n (B stored n×k when trans_b); lda/ldb/ldc are row strides. */
void akk_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
               float *C, int64_t ldc);

/* Least squares min ‖A·X − B‖ (LAPACK sgels, QR; A must have full rank), row-major:
 * A is m×n (overwritten), B is max(m,n)×nrhs; on return rows 0..n-1 of B hold X (n×nrhs).
 * Returns LAPACK's info (0 ok, >0 rank deficient, <0 bad argument) or -1000 on allocation failure. */
int akk_sgels(int64_t m, int64_t n, int64_t nrhs, float *A, float *B);

/* Thread count of OpenBLAS's own pool (n <= 0: leave unchanged). */
void akk_blas_set_threads(int n);

#ifdef __cplusplus
}
#endif
#endif

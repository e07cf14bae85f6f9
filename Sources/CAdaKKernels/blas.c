/* Row-major wrappers over OpenBLAS's cblas_sgemm and LAPACK's sgels_ (see adak_blas.h). */
#include "adak_blas.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

/* Fortran LAPACK (column-major), exported by libopenblas. */
extern void sgels_(const char *trans, const int *m, const int *n, const int *nrhs, float *a, const int *lda,
                   float *b, const int *ldb, float *work, const int *lwork, int *info);
extern void openblas_set_num_threads(int n);

void akk_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
               float *C, int64_t ldc) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (blasint)m, (blasint)n, (blasint)k, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
}

int akk_sgels(int64_t m64, int64_t n64, int64_t nrhs64, float *A, float *B) {
    /* Row-major A (m×n) is column-major Aᵀ (n×m): solve with trans='T' on it, which minimises
     * ‖(Aᵀ)ᵀ X − B‖. B must then be column-major max(m,n)×nrhs: transpose in and out. */
    int m = (int)m64, n = (int)n64, nrhs = (int)nrhs64;
    int ldb = m > n ? m : n;
    float *bc = malloc(sizeof(float) * (size_t)ldb * (size_t)nrhs);
    if (!bc) return -1000;
    for (int i = 0; i < ldb; i++)
        for (int j = 0; j < nrhs; j++) bc[(size_t)j * ldb + i] = i < m ? B[(size_t)i * nrhs + j] : 0.0f;
    int lda = n, info = 0, lwork = -1;
    float wq = 0;
    sgels_("T", &n, &m, &nrhs, A, &lda, bc, &ldb, &wq, &lwork, &info);
    if (info != 0) { free(bc); return info; }
    lwork = (int)wq + 1;
    float *work = malloc(sizeof(float) * (size_t)lwork);
    if (!work) { free(bc); return -1000; }
    sgels_("T", &n, &m, &nrhs, A, &lda, bc, &ldb, work, &lwork, &info);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < nrhs; j++) B[(size_t)i * nrhs + j] = bc[(size_t)j * ldb + i];
    free(work);
    free(bc);
    return info;
}

void akk_blas_set_threads(int n) {
    if (n > 0) openblas_set_num_threads(n);
}

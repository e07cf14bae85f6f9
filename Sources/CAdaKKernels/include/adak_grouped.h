/*
 * adak_grouped.h — several matrix products in ONE OpenMP parallel region: a list of matmuls that
 * share a fork/join (e.g. Q, K and V), and the whole expert FFN of one MoE layer step (every
 * active expert's gate and up, SwiGLU and activation quantisation, then every expert's down).
 *
 * Internal to libadak. Every output element is computed exactly as akk_matmul computes it (the
 * same row kernels; results do not depend on how rows are split between threads), so swapping a
 * sequence of akk_matmul calls for one of these changes no bit of the results.
 */
#ifndef ADAK_GROUPED_H
#define ADAK_GROUPED_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One product Y[t*ystride + o] = sum_i W[o, i] * X[t, i] (o < n_out, t < n_tok), as akk_matmul. */
typedef struct akk_mm_job {
    int wtype;
    const void *W;
    int64_t n_out, n_in;
    const void *X;      /* n_tok rows in akk_vec_dot_type(wtype), xstride bytes apart */
    int64_t xstride;
    int64_t n_tok;
    float *Y;
    int64_t ystride;    /* floats */
} akk_mm_job;

/* Runs all jobs in one parallel region of nthreads threads (<= 0: runtime default); rows of all
 * jobs are cut into chunks that the threads take dynamically. Outputs must not overlap. */
void akk_matmul_multi(const akk_mm_job *jobs, int n_jobs, int nthreads);

/* One active expert of a MoE layer step and the rows (tokens) routed to it. */
typedef struct akk_moe_expert {
    const void *gate;   /* n_ff rows of n_embd, gate_type */
    const void *up;     /* n_ff rows of n_embd, up_type */
    const void *down;   /* n_embd rows of n_ff, down_type */
    int64_t row0;       /* its first row in the gathered buffers */
    int64_t n_rows;     /* rows routed to it (>= 1) */
} akk_moe_expert;

/*
 * The expert FFN of one MoE layer step for n_total = sum of n_rows gathered rows:
 *   g = gate · x, u = up · x                   (x: row r of xg / xu, in the vec-dot types)
 *   h = swiglu(g, u) per row (akk_swiglu), quantised to akk_vec_dot_type(down_type)
 *   out[r] = (down · h[r]) * row_weight[r]     (out rows out_stride floats apart)
 * Scratch: g, u hold n_total * n_ff floats each; h n_total rows of h_stride bytes
 * (>= akk_row_bytes(akk_vec_dot_type(down_type), n_ff)).
 * One parallel region: phase 1 hands out (expert, 32-row chunk of n_ff) items — gate and up of
 * those rows, then their SwiGLU and quantisation, which are element-wise and block-local, so
 * chunk-wise results equal whole-row results bit for bit; a barrier; phase 2 hands out (expert,
 * row chunk of n_embd) items of down. Returns 0, or -1 for unsupported types/shapes.
 */
int akk_moe_ffn(int gate_type, int up_type, int down_type, int64_t n_embd, int64_t n_ff,
                const akk_moe_expert *experts, int n_experts,
                const void *xg, int64_t xg_stride, const void *xu, int64_t xu_stride,
                float *g, float *u, void *h, int64_t h_stride,
                const float *row_weight, float *out, int64_t out_stride, int nthreads);

/* y[i] += x[i] for i < n (plain float adds: the same result whatever the vector width). */
void akk_vec_add(float *y, const float *x, int64_t n);

#ifdef __cplusplus
}
#endif
#endif

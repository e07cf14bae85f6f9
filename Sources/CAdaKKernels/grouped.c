/*
 * Grouped matrix products: several matmuls, or a whole MoE expert step, in one OpenMP parallel
 * region (see adak_grouped.h).
 *
 * Why: decode of an expert-dominated model issues many small products per token (OLMoE-shaped:
 * 8 experts x 3 matrices x 16 layers). As separate akk_matmul calls each pays a fork/join and a
 * load imbalance tail; here the rows of all products form one pool of work that the threads share
 * (akk_work_next: contiguous streams, small items at the end), with a single barrier between the
 * products that depend on each other.
 *
 * Bit-exactness: every output element comes from the same row kernel (akk_matmul_rows) with the
 * same inputs as in akk_matmul, and row kernels give each element the single-dot result whatever
 * the row range. SwiGLU is element-wise with an 8-lane SIMD body and a per-row tail, so a chunk
 * that starts at a multiple of 32 and ends at a multiple of 32 or at the row end sees exactly the
 * same chunk/tail split as a whole-row call; Q8_0/Q8_1 quantisation is per block of 32, Q8_K per
 * block of 256 (phase-1 chunks are whole activation blocks).
 */
#include "adak_grouped.h"
#include "adak_kernels.h"
#include "adak_ops.h"
#include "akk_internal.h"
#include <omp.h>
#include <stdlib.h>

/* Below ~64K multiply-adds a fork/join costs more than it saves (as akk_matmul). */
#define MIN_PARALLEL_MACS 65536

static int threads_for(int nthreads, int64_t macs) {
    if (nthreads <= 0) nthreads = omp_get_max_threads();
    return macs < MIN_PARALLEL_MACS ? 1 : nthreads;
}

/* ---- several independent products ---- */

void akk_matmul_multi(const akk_mm_job *jobs, int n_jobs, int nthreads) {
    if (n_jobs <= 0) return;
    int64_t macs = 0;
    for (int j = 0; j < n_jobs; j++) macs += jobs[j].n_out * jobs[j].n_in * jobs[j].n_tok;
    nthreads = threads_for(nthreads, macs);
    if (nthreads == 1) {
        for (int j = 0; j < n_jobs; j++) {
            const akk_mm_job *m = &jobs[j];
            akk_matmul_rows(m->wtype, m->W, 0, m->n_out, m->n_in, m->X, m->xstride, m->n_tok, m->Y, m->ystride);
        }
        return;
    }
    /* Units of the jobs' largest row unit (akk_row_unit: 8, the register tiles and 8-row groups;
     * 16 with an AKK_IQ4_XS_R16 job) over all jobs in turn, shared as akk_work_next does; an item
     * may span the end of one job and the start of the next. */
    int64_t bytes = 0, n_tok = 1, U = 8;
    for (int j = 0; j < n_jobs; j++) {
        bytes += jobs[j].n_out * akk_row_bytes(jobs[j].wtype, jobs[j].n_in);
        if (jobs[j].n_tok > n_tok) n_tok = jobs[j].n_tok;
        if (akk_row_unit(jobs[j].wtype) > U) U = akk_row_unit(jobs[j].wtype);
    }
    int64_t first_small[16];
    int64_t *first = n_jobs <= 15 ? first_small : malloc(sizeof(int64_t) * (size_t)(n_jobs + 1));
    if (!first) {
        for (int j = 0; j < n_jobs; j++) {
            const akk_mm_job *m = &jobs[j];
            akk_matmul(m->wtype, m->W, m->n_out, m->n_in, m->X, m->xstride, m->n_tok, m->Y, m->ystride, nthreads);
        }
        return;
    }
    first[0] = 0; /* first unit of each job */
    for (int j = 0; j < n_jobs; j++) first[j + 1] = first[j] + (jobs[j].n_out + U - 1) / U;
    const int64_t n_units = first[n_jobs];
    akk_work_range ranges[nthreads];
    akk_work_init(ranges, nthreads, n_units, akk_work_min_units(n_units, bytes / n_units, n_tok, nthreads));
#pragma omp parallel num_threads(nthreads)
    {
        const int me = omp_get_thread_num();
        for (int64_t u0, u1; akk_work_next(ranges, nthreads, me, &u0, &u1);)
            for (int j = 0; j < n_jobs; j++) {
                const int64_t a = u0 > first[j] ? u0 : first[j], b = u1 < first[j + 1] ? u1 : first[j + 1];
                if (a >= b) continue;
                const akk_mm_job *m = &jobs[j];
                const int64_t r0 = (a - first[j]) * U, r1 = (b - first[j]) * U < m->n_out ? (b - first[j]) * U : m->n_out;
                akk_matmul_rows(m->wtype, m->W, r0, r1, m->n_in, m->X, m->xstride, m->n_tok, m->Y, m->ystride);
            }
    }
    if (first != first_small) free(first);
}

/* ---- one MoE layer step ---- */

struct moe_plan {
    int gate_type, up_type, down_type, h_type;
    int64_t n_embd, n_ff;
    const akk_moe_expert *ex;
    const uint8_t *xg, *xu;
    int64_t xg_stride, xu_stride;
    float *g, *u;
    uint8_t *h;
    int64_t h_stride;
    const float *w;
    float *out;
    int64_t out_stride;
};

/* gate and up rows [f0, f1) of one expert over its rows, then SwiGLU and quantisation of them. */
static void moe_gate_up(const struct moe_plan *p, const akk_moe_expert *e, int64_t f0, int64_t f1) {
    const int64_t ff = p->n_ff, r0 = e->row0, n = e->n_rows;
    float *g = p->g + r0 * ff, *u = p->u + r0 * ff;
    akk_matmul_rows(p->gate_type, e->gate, f0, f1, p->n_embd, p->xg + r0 * p->xg_stride, p->xg_stride, n, g, ff);
    akk_matmul_rows(p->up_type, e->up, f0, f1, p->n_embd, p->xu + r0 * p->xu_stride, p->xu_stride, n, u, ff);
    const int64_t hoff = akk_row_bytes(p->h_type, f0);
    for (int64_t r = 0; r < n; r++) {
        float *gr = g + r * ff + f0;
        akk_swiglu(gr, u + r * ff + f0, gr, f1 - f0);
        akk_quantize_activation(p->down_type, gr, p->h + (r0 + r) * p->h_stride + hoff, f1 - f0);
    }
}

/* down rows [o0, o1) of one expert over its rows, scaled by the rows' routing weights. */
static void moe_down(const struct moe_plan *p, const akk_moe_expert *e, int64_t o0, int64_t o1) {
    const int64_t r0 = e->row0, n = e->n_rows, os = p->out_stride;
    akk_matmul_rows(p->down_type, e->down, o0, o1, p->n_ff, p->h + r0 * p->h_stride, p->h_stride, n,
                    p->out + r0 * os, os);
    for (int64_t r = r0; r < r0 + n; r++) {
        const float w = p->w[r];
        float *y = p->out + r * os;
        for (int64_t o = o0; o < o1; o++) y[o] = y[o] * w;
    }
}

int akk_moe_ffn(int gate_type, int up_type, int down_type, int64_t n_embd, int64_t n_ff,
                const akk_moe_expert *experts, int n_experts,
                const void *xg, int64_t xg_stride, const void *xu, int64_t xu_stride,
                float *g, float *u, void *h, int64_t h_stride,
                const float *row_weight, float *out, int64_t out_stride, int nthreads) {
    const int h_type = akk_vec_dot_type(down_type);
    if (akk_vec_dot_type(gate_type) < 0 || akk_vec_dot_type(up_type) < 0 || h_type < 0) return -1;
    if (akk_row_bytes(gate_type, n_embd) <= 0 || akk_row_bytes(down_type, n_ff) <= 0) return -1;
    if (n_experts <= 0) return 0;
    const struct moe_plan p = {gate_type, up_type, down_type, h_type, n_embd, n_ff, experts,
                               (const uint8_t *)xg, (const uint8_t *)xu, xg_stride, xu_stride,
                               g, u, (uint8_t *)h, h_stride, row_weight, out, out_stride};
    int64_t rows = 0;
    for (int e = 0; e < n_experts; e++) rows += experts[e].n_rows;
    nthreads = threads_for(nthreads, 3 * n_embd * n_ff * rows);
    /* Units: phase 1, one activation block (32 rows of n_ff, 256 for Q8_K) of one expert
     * (block-local quantisation, SwiGLU's 8-lane split); phase 2, akk_row_unit(down) rows of n_embd
     * of one expert (register tiles, row groups); the experts' units in turn, shared as akk_work_next
     * does (an item may span two experts). */
    const int64_t n_tok = (rows + n_experts - 1) / n_experts; /* rows per expert, on average */
    const int64_t q = akk_block_elems(h_type) > 32 ? akk_block_elems(h_type) : 32;
    const int64_t U = akk_row_unit(down_type), k1 = (n_ff + q - 1) / q, k2 = (n_embd + U - 1) / U;
    const int64_t units1 = k1 * n_experts, units2 = k2 * n_experts;
    const int64_t gu_bytes = q * (akk_row_bytes(gate_type, n_embd) + akk_row_bytes(up_type, n_embd));
    akk_work_range ranges1[nthreads], ranges2[nthreads];
    akk_work_init(ranges1, nthreads, units1, akk_work_min_units(units1, gu_bytes, n_tok, nthreads));
    akk_work_init(ranges2, nthreads, units2, akk_work_min_units(units2, U * akk_row_bytes(down_type, n_ff), n_tok, nthreads));
#pragma omp parallel num_threads(nthreads)
    {
        const int me = omp_get_thread_num();
        for (int64_t u0, u1; akk_work_next(ranges1, nthreads, me, &u0, &u1);)
            for (int64_t e = u0 / k1; e * k1 < u1; e++) {
                const int64_t a = u0 > e * k1 ? u0 - e * k1 : 0, b = u1 < (e + 1) * k1 ? u1 - e * k1 : k1;
                moe_gate_up(&p, &experts[e], a * q, b * q < n_ff ? b * q : n_ff);
            }
        /* every h row is complete before any down product reads it */
#pragma omp barrier
        for (int64_t u0, u1; akk_work_next(ranges2, nthreads, me, &u0, &u1);)
            for (int64_t e = u0 / k2; e * k2 < u1; e++) {
                const int64_t a = u0 > e * k2 ? u0 - e * k2 : 0, b = u1 < (e + 1) * k2 ? u1 - e * k2 : k2;
                moe_down(&p, &experts[e], a * U, b * U < n_embd ? b * U : n_embd);
            }
    }
    return 0;
}

void akk_vec_add(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

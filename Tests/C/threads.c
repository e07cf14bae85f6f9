/*
 * threads.c — one model shared by several threads, each driving its own session (the thread
 * contract of adak.h). Every thread runs the same greedy generation, with resets in between;
 * all must produce exactly the tokens a single thread produces alone. Run under ThreadSanitizer
 * by `make tsan`; also a plain test.
 *
 *   ./threads MODEL.gguf [THREADS=4] [ROUNDS=3] [KERNEL_THREADS=1]
 */
#include <adak.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_THREADS = 16, N_GEN = 24 };

struct job {
    const adak_model *model;
    int rounds;
    int kernel_threads;
    adak_token out[N_GEN];
    size_t n_out;
    int status;
};

static int collect(void *user_data, adak_token token, const char *piece, size_t len) {
    (void)piece;
    (void)len;
    struct job *j = user_data;
    if (j->n_out < N_GEN) j->out[j->n_out++] = token;
    return 0;
}

static void *run(void *arg) {
    struct job *j = arg;
    adak_session_params sp;
    adak_session_params_init(&sp, sizeof sp);
    sp.n_ctx = 64;
    sp.n_threads = j->kernel_threads;
    sp.n_batch = 4;
    adak_session *s = NULL;
    j->status = adak_session_create((adak_model *)j->model, &sp, &s);
    if (j->status != ADAK_OK) return NULL;
    adak_session_set_float(s, "temperature", 0);
    static const char text[] = "Once upon a time, in a small village,";
    adak_token prompt[64];
    size_t n_prompt = 0;
    j->status = adak_model_tokenize(j->model, text, sizeof text - 1, ADAK_TOKENIZE_ADD_SPECIAL, prompt, 64, &n_prompt);
    for (int r = 0; r < j->rounds && j->status == ADAK_OK; r++) {
        j->n_out = 0;
        size_t generated = 0;
        j->status = adak_session_generate(s, prompt, n_prompt, N_GEN, collect, j, &generated);
        if (j->status == ADAK_OK) j->status = adak_session_reset(s);
        /* Reads of the shared model from every thread at once. */
        char piece[64];
        size_t len = 0;
        for (size_t i = 0; i < j->n_out && j->status == ADAK_OK; i++) {
            int st = adak_model_token_to_piece(j->model, j->out[i], 0, piece, sizeof piece, &len);
            if (st != ADAK_OK && st != ADAK_ERR_BUFFER_TOO_SMALL) j->status = st;
        }
    }
    adak_session_free(s);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.gguf [THREADS] [ROUNDS] [KERNEL_THREADS]\n", argv[0]);
        return 2;
    }
    int n_threads = argc > 2 ? atoi(argv[2]) : 4;
    int rounds = argc > 3 ? atoi(argv[3]) : 3;
    int kernel_threads = argc > 4 ? atoi(argv[4]) : 1;
    if (n_threads < 1 || n_threads > MAX_THREADS || rounds < 1) return 2;
    adak_model *m = NULL;
    if (adak_model_load(argv[1], NULL, &m) != ADAK_OK) {
        fprintf(stderr, "threads: cannot load %s: %s\n", argv[1], adak_last_error());
        return 1;
    }
    struct job reference = {m, 1, kernel_threads, {0}, 0, 0};
    run(&reference);
    if (reference.status != ADAK_OK || reference.n_out == 0) {
        fprintf(stderr, "threads: reference run failed: %s\n", adak_last_error());
        return 1;
    }
    struct job jobs[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    for (int i = 0; i < n_threads; i++) {
        jobs[i] = (struct job){m, rounds, kernel_threads, {0}, 0, 0};
        if (pthread_create(&tids[i], NULL, run, &jobs[i]) != 0) return 1;
    }
    int bad = 0;
    for (int i = 0; i < n_threads; i++) {
        pthread_join(tids[i], NULL);
        if (jobs[i].status != ADAK_OK) {
            fprintf(stderr, "threads: thread %d failed with %d (%s)\n", i, jobs[i].status, adak_status_string(jobs[i].status));
            bad++;
        } else if (jobs[i].n_out != reference.n_out ||
                   memcmp(jobs[i].out, reference.out, reference.n_out * sizeof reference.out[0]) != 0) {
            fprintf(stderr, "threads: thread %d generated different tokens than a lone thread\n", i);
            bad++;
        }
    }
    adak_model_free(m);
    printf("threads: %d threads x %d rounds x %zu tokens, %d kernel threads each: %s\n", n_threads, rounds,
           reference.n_out, kernel_threads, bad ? "FAILED" : "identical to a lone thread");
    return bad ? 1 : 0;
}

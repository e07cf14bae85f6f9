/*
 * soak.c — decodes many tokens on one session, resetting it every RESET_EVERY tokens, and
 * samples the process's resident memory (RSS). After the warm-up (the first 1,000 tokens) the
 * RSS must not grow: the check fails if the final RSS exceeds the one after 1,000 tokens by
 * more than 1%.
 *
 *   ./soak MODEL.gguf [TOKENS=20000] [RESET_EVERY=500]
 */
#include <adak.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.gguf [TOKENS] [RESET_EVERY]\n", argv[0]);
        return 2;
    }
    long total = argc > 2 ? atol(argv[2]) : 20000;
    long every = argc > 3 ? atol(argv[3]) : 500;
    if (total < 1000 || every < 1) return 2;
    adak_model *m = NULL;
    adak_session *s = NULL;
    adak_session_params sp;
    adak_session_params_init(&sp, sizeof sp);
    sp.n_ctx = (int32_t)every + 64;
    sp.n_threads = 1;
    if (adak_model_load(argv[1], NULL, &m) != ADAK_OK || adak_session_create(m, &sp, &s) != ADAK_OK) {
        fprintf(stderr, "soak: %s\n", adak_last_error());
        return 1;
    }
    adak_session_set_float(s, "temperature", 0.9);
    adak_token prompt[32];
    size_t n_prompt = 0;
    static const char text[] = "The weather today";
    if (adak_model_tokenize(m, text, sizeof text - 1, ADAK_TOKENIZE_ADD_SPECIAL, prompt, 32, &n_prompt) != ADAK_OK) return 1;

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long rss_warm = -1, rss_max = 0;
    for (long done = 0; done < total;) {
        if (done % every == 0) {
            if (adak_session_reset(s) != ADAK_OK || adak_session_evaluate(s, prompt, n_prompt, 0) != ADAK_OK) {
                fprintf(stderr, "soak: reset/prompt failed at %ld: %s\n", done, adak_last_error());
                return 1;
            }
        }
        adak_token t;
        if (adak_session_sample(s, &t) != ADAK_OK || adak_session_evaluate(s, &t, 1, 0) != ADAK_OK) {
            fprintf(stderr, "soak: decode failed at %ld: %s\n", done, adak_last_error());
            return 1;
        }
        done++;
        if (done % 1000 == 0) {
            long rss = rss_kib();
            if (done == 1000) rss_warm = rss;
            if (rss > rss_max) rss_max = rss;
            if (done % 5000 == 0) printf("soak: %ld tokens, RSS %ld KiB\n", done, rss);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long rss_end = rss_kib();
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    double growth = rss_warm > 0 ? 100.0 * (double)(rss_end - rss_warm) / (double)rss_warm : 100.0;
    printf("soak: %ld tokens (reset every %ld) in %.1f s; RSS after 1k %ld KiB, after %ld %ld KiB (max %ld): %+.2f%%\n",
           total, every, secs, rss_warm, total, rss_end, rss_max, growth);
    adak_session_free(s);
    adak_model_free(m);
    return growth <= 1.0 ? 0 : 1;
}

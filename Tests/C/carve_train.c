/*
 * carve_train.c — the carving and allocator-training API (since 0.3): parameter objects and
 * their misuse (NULL, freed handles, unknown keys, NaN, ranges), PPO training of an allocator
 * on a tiny MoE model with a progress callback that reads the report and one that cancels,
 * resuming after the cancellation, and (given a dense model) carving it with and without
 * cancellation.
 *
 *   cc carve_train.c -o carve_train $(pkg-config --cflags --libs adak) -lm
 *   ./carve_train TINY_MOE.gguf CALIBRATION.txt [DENSE.gguf]
 */
#include <adak.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

static const char *TEXT =
    "The river runs past the old mill and under the stone bridge, where children throw\n"
    "pebbles into the water and count the rings. In the evening the light turns gold and\n"
    "the swallows fly low over the meadow, catching insects above the tall grass.\n"
    "A farmer walks his dog along the path, and the dog chases a rabbit into the hedge.\n"
    "The baker opens his shop before dawn; the smell of bread fills the narrow street.\n"
    "Travellers stop at the inn to rest their horses and share news from the city.\n";

static int file_exists(const char *path) { return access(path, F_OK) == 0; }

/* ---------------------------------------------------------------------------------------- */

static void params_misuse(void) {
    adak_carve_params *cp = NULL;
    adak_train_params *tp = NULL;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve_params_create(NULL), "adak_carve_params_create");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_params_create(NULL), "adak_train_params_create");
    adak_carve_params_free(NULL);
    adak_train_params_free(NULL);
    CHECK(adak_carve_params_create(&cp) == ADAK_OK && cp != NULL);
    CHECK(adak_train_params_create(&tp) == ADAK_OK && tp != NULL);

    /* carve params */
    CHECK(adak_carve_params_set_int(cp, "experts", 8) == ADAK_OK);
    CHECK(adak_carve_params_set_float(cp, "shared_fraction", 0.5) == ADAK_OK);
    CHECK(adak_carve_params_set_string(cp, "expert_type", "f32") == ADAK_OK);
    CHECK(adak_carve_params_set_string(cp, "layers", "0, 2,5") == ADAK_OK);
    CHECK(adak_carve_params_set_string(cp, "layers", NULL) == ADAK_OK);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve_params_set_int(NULL, "experts", 8), "adak_carve_params_set_int");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve_params_set_int(cp, NULL, 8), "adak_carve_params_set_int");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve_params_set_int(cp, "expert", 8), "adak_carve_params_set_int");
    CHECK(strstr(adak_last_error(), "expert") != NULL);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve_params_set_int(cp, "experts", 1), "adak_carve_params_set_int");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve_params_set_int(cp, "experts", 1 << 20), "adak_carve_params_set_int");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve_params_set_int(cp, "top_k", 0), "adak_carve_params_set_int");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve_params_set_int(cp, "seed", -1), "adak_carve_params_set_int");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve_params_set_int(cp, "calib_tokens", 3), "adak_carve_params_set_int");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve_params_set_int(cp, "threads", -2), "adak_carve_params_set_int");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve_params_set_float(cp, "shared_fraction", NAN), "adak_carve_params_set_float");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve_params_set_float(cp, "shared_fraction", 1.0), "adak_carve_params_set_float");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve_params_set_float(cp, "ridge", INFINITY), "adak_carve_params_set_float");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve_params_set_float(cp, "experts", 4), "adak_carve_params_set_float");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve_params_set_string(cp, "expert_type", "q5_k"), "adak_carve_params_set_string");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve_params_set_string(cp, "layers", "1,x"), "adak_carve_params_set_string");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve_params_set_string(cp, "layers", "-1"), "adak_carve_params_set_string");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve_params_set_string(cp, "calibration", "x"), "adak_carve_params_set_string");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve_params_set_string(cp, "calib_text", "\xff\xfe"), "adak_carve_params_set_string");

    /* adak_carve argument checks (no model is read) */
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve(NULL, "/tmp/x.gguf", cp, NULL, NULL), "adak_carve");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve("/tmp/x.gguf", NULL, cp, NULL, NULL), "adak_carve");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve("/tmp/x.gguf", "", cp, NULL, NULL), "adak_carve");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve("/tmp/x.gguf", "/tmp/y.gguf", (adak_carve_params *)tp, NULL, NULL),
           "adak_carve");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve("/nonexistent/dense.gguf", "/tmp/y.gguf", NULL, NULL, NULL),
           "adak_carve"); /* no calibration text */
    CHECK(adak_carve_params_set_string(cp, "calib_path", "/nonexistent/calib.txt") == ADAK_OK);
    EXPECT(ADAK_ERR_IO, adak_carve("/nonexistent/dense.gguf", "/tmp/y.gguf", cp, NULL, NULL), "adak_carve");
    CHECK(adak_carve_params_set_string(cp, "calib_text", TEXT) == ADAK_OK); /* replaces calib_path */
    EXPECT(ADAK_ERR_IO, adak_carve("/nonexistent/dense.gguf", "/tmp/y.gguf", cp, NULL, NULL), "adak_carve");

    /* train params */
    CHECK(adak_train_params_set_float(tp, "lambda", 0.5) == ADAK_OK);
    CHECK(adak_train_params_set_int(tp, "k_max", 0) == ADAK_OK);
    CHECK(adak_train_params_set_string(tp, "baseline", "mean") == ADAK_OK);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_params_set_float(NULL, "lambda", 0.5), "adak_train_params_set_float");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_params_set_float(tp, "lambda", NAN), "adak_train_params_set_float");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_params_set_float(tp, "lambda", -1), "adak_train_params_set_float");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_params_set_float(tp, "clip", 1.5), "adak_train_params_set_float");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_params_set_float(tp, "lr", 0), "adak_train_params_set_float");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_params_set_float(tp, "gamma", 0.9), "adak_train_params_set_float");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_params_set_int(tp, "window", 1), "adak_train_params_set_int");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_params_set_int(tp, "epochs", 0), "adak_train_params_set_int");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_params_set_int(tp, "updates", 0), "adak_train_params_set_int");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_params_set_int(tp, "k_min", 0), "adak_train_params_set_int");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_params_set_int(tp, "seed", -5), "adak_train_params_set_int");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_params_set_int(tp, "lambda", 1), "adak_train_params_set_int");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_params_set_string(tp, "baseline", "value"), "adak_train_params_set_string");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_params_set_string(tp, "baseline", NULL), "adak_train_params_set_string");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_params_set_string(tp, NULL, "mean"), "adak_train_params_set_string");
    /* since 0.4: the cost credit and the future discount (set back to their defaults for the runs below) */
    CHECK(adak_train_params_set_string(tp, "cost_credit", "layer") == ADAK_OK);
    CHECK(adak_train_params_set_string(tp, "cost_credit", "token") == ADAK_OK);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_params_set_string(tp, "cost_credit", "window"), "adak_train_params_set_string");
    CHECK(adak_train_params_set_float(tp, "future_discount", 0.9) == ADAK_OK);
    CHECK(adak_train_params_set_float(tp, "future_discount", 0) == ADAK_OK);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_params_set_float(tp, "future_discount", 1), "adak_train_params_set_float");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_params_set_float(tp, "future_discount", -0.5), "adak_train_params_set_float");
    CHECK(adak_train_params_set_float(tp, "lambda_memory", 0.8) == ADAK_OK);
    CHECK(adak_train_params_set_float(tp, "lambda_memory", 0) == ADAK_OK);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_params_set_float(tp, "lambda_memory", 1), "adak_train_params_set_float");
    CHECK(adak_train_params_set_int(tp, "sample_window", 2) == ADAK_OK);
    CHECK(adak_train_params_set_int(tp, "sample_window", 0) == ADAK_OK);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_params_set_int(tp, "sample_window", -1), "adak_train_params_set_int");
    CHECK(adak_train_params_set_string(tp, "train_budgets", "0.5, 0.625,0.75") == ADAK_OK);
    CHECK(adak_train_params_set_string(tp, "train_budgets", "") == ADAK_OK);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_params_set_string(tp, "train_budgets", "0.5,x"), "adak_train_params_set_string");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_params_set_string(tp, "train_budgets", "20"), "adak_train_params_set_string");

    /* progress getters outside a callback */
    int64_t i = 7;
    double d = 7;
    size_t n = 7;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_progress_get_int(NULL, "update", &i), "adak_train_progress_get_int");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_progress_get_float((const adak_train_progress *)tp, "entropy", &d),
           "adak_train_progress_get_float");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_progress_get_mean_k_per_layer(NULL, NULL, 0, &n),
           "adak_train_progress_get_mean_k_per_layer");
    CHECK(i == 7 && d == 7);

    /* freed handles are reported, double frees ignored; handle kinds are not interchangeable */
    adak_carve_params_free(cp);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve_params_set_int(cp, "experts", 8), "adak_carve_params_set_int");
    adak_carve_params_free(cp);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve_params_set_int((adak_carve_params *)tp, "experts", 8),
           "adak_carve_params_set_int");
    adak_train_params_free(tp);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_params_set_int(tp, "updates", 2), "adak_train_params_set_int");
    adak_train_params_free(tp);
}

/* ---------------------------------------------------------------------------------------- */

struct train_watch {
    int calls;
    int cancel_at;          /* return nonzero at this update (0: never) */
    int64_t first_update, last_update, updates, tokens;
    double cost, entropy, greedy;
    size_t n_layers;
    double mean_k[64];
    int getter_errors;      /* statuses that should have been ADAK_OK */
    int misuse_ok;          /* the misuse calls inside the callback were refused */
    const adak_train_progress *kept; /* used after the callback returned */
};

static int on_train(void *user_data, const adak_train_progress *p) {
    struct train_watch *w = user_data;
    int64_t update = 0;
    w->calls++;
    w->kept = p;
    if (adak_train_progress_get_int(p, "update", &update) != ADAK_OK) w->getter_errors++;
    if (w->calls == 1) w->first_update = update;
    w->last_update = update;
    if (adak_train_progress_get_int(p, "updates", &w->updates) != ADAK_OK) w->getter_errors++;
    if (adak_train_progress_get_int(p, "tokens", &w->tokens) != ADAK_OK) w->getter_errors++;
    if (adak_train_progress_get_float(p, "cost_fraction", &w->cost) != ADAK_OK) w->getter_errors++;
    if (adak_train_progress_get_float(p, "entropy", &w->entropy) != ADAK_OK) w->getter_errors++;
    if (adak_train_progress_get_float(p, "greedy_log_prob", &w->greedy) != ADAK_OK) w->getter_errors++;
    static const char *floats[] = {"mean_reward", "mean_log_prob", "greedy_cost_fraction", "approx_kl",
                                   "clip_fraction", "grad_norm", "tokens_per_second", "elapsed_seconds",
                                   "eta_seconds"};
    for (size_t i = 0; i < sizeof floats / sizeof *floats; i++) {
        double v;
        if (adak_train_progress_get_float(p, floats[i], &v) != ADAK_OK) w->getter_errors++;
    }
    size_t n = 0;
    int st = adak_train_progress_get_mean_k_per_layer(p, NULL, 0, &n);
    if (st != ADAK_OK && st != ADAK_ERR_BUFFER_TOO_SMALL) w->getter_errors++;
    if (n <= 64 && adak_train_progress_get_mean_k_per_layer(p, w->mean_k, 64, &w->n_layers) != ADAK_OK)
        w->getter_errors++;
    double v;
    int64_t i;
    w->misuse_ok = adak_train_progress_get_float(p, "update", &v) == ADAK_ERR_INVALID_ARGUMENT &&
                   adak_train_progress_get_int(p, "entropy", &i) == ADAK_ERR_INVALID_ARGUMENT &&
                   adak_train_progress_get_int(p, "update", NULL) == ADAK_ERR_INVALID_ARGUMENT &&
                   (n == 0 || adak_train_progress_get_mean_k_per_layer(p, w->mean_k, n - 1, &n) ==
                                  ADAK_ERR_BUFFER_TOO_SMALL);
    return w->cancel_at != 0 && update >= w->cancel_at;
}

static adak_train_params *small_training(int updates) {
    adak_train_params *tp = NULL;
    if (adak_train_params_create(&tp) != ADAK_OK) return NULL;
    int ok = adak_train_params_set_int(tp, "window", 16) == ADAK_OK &&
             adak_train_params_set_int(tp, "rollout_tokens", 30) == ADAK_OK &&
             adak_train_params_set_int(tp, "minibatch", 16) == ADAK_OK &&
             adak_train_params_set_int(tp, "epochs", 2) == ADAK_OK &&
             adak_train_params_set_int(tp, "updates", updates) == ADAK_OK &&
             adak_train_params_set_int(tp, "threads", 2) == ADAK_OK &&
             adak_train_params_set_int(tp, "checkpoint_every", 0) == ADAK_OK &&
             adak_train_params_set_int(tp, "seed", 3) == ADAK_OK &&
             adak_train_params_set_float(tp, "lambda", 0.5) == ADAK_OK;
    if (!ok) {
        adak_train_params_free(tp);
        return NULL;
    }
    return tp;
}

static void training(const char *moe_path) {
    adak_model *m = NULL;
    if (adak_model_load(moe_path, NULL, &m) != ADAK_OK) {
        fprintf(stderr, "cannot load %s: %s\n", moe_path, adak_last_error());
        failed++;
        return;
    }
    char out[256];
    snprintf(out, sizeof out, "/tmp/adak-carve-train-%d.alloc.gguf", (int)getpid());
    char optim[300];
    snprintf(optim, sizeof optim, "%s.optim", out);
    adak_train_params *tp = small_training(3);
    CHECK(tp != NULL);
    adak_token tokens[4] = {1, 2, 3, 4};

    /* argument errors, all before anything is written */
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_allocator(NULL, TEXT, NULL, 0, tp, out, 0, NULL, NULL), "adak_train_allocator");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_allocator(m, TEXT, NULL, 0, tp, NULL, 0, NULL, NULL), "adak_train_allocator");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_allocator(m, NULL, NULL, 0, tp, out, 0, NULL, NULL), "adak_train_allocator");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_allocator(m, TEXT, tokens, 4, tp, out, 0, NULL, NULL), "adak_train_allocator");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_allocator(m, TEXT, NULL, 3, tp, out, 0, NULL, NULL), "adak_train_allocator");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_allocator(m, TEXT, NULL, 0, tp, out, 2, NULL, NULL), "adak_train_allocator");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_allocator(m, NULL, tokens, 4, tp, out, 0, NULL, NULL),
           "adak_train_allocator"); /* fewer tokens than one window */
    tokens[2] = -3;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_allocator(m, NULL, tokens, 4, tp, out, 0, NULL, NULL), "adak_train_allocator");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_allocator(m, TEXT, NULL, 0, (adak_train_params *)m, out, 0, NULL, NULL),
           "adak_train_allocator");
    {
        adak_train_params *bad = small_training(3);
        CHECK(bad != NULL && adak_train_params_set_int(bad, "k_max", 1000) == ADAK_OK); /* > n_expert */
        EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_allocator(m, TEXT, NULL, 0, bad, out, 0, NULL, NULL), "adak_train_allocator");
        CHECK(strstr(adak_last_error(), "k_max") != NULL);
        CHECK(adak_train_params_set_int(bad, "k_max", 0) == ADAK_OK && adak_train_params_set_int(bad, "rollout_tokens", 5) == ADAK_OK);
        EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_allocator(m, TEXT, NULL, 0, bad, out, 0, NULL, NULL), "adak_train_allocator");
        adak_train_params_free(bad);
    }
    EXPECT(ADAK_ERR_IO, adak_train_allocator(m, TEXT, NULL, 0, tp, "/nonexistent/dir/a.gguf", 1, NULL, NULL),
           "adak_train_allocator"); /* resume without a checkpoint */
    CHECK(!file_exists(out));

    /* cancel after the first update: a resumable checkpoint of that update is left */
    struct train_watch w = {0};
    w.cancel_at = 1;
    EXPECT(ADAK_ERR_CANCELLED, adak_train_allocator(m, TEXT, NULL, 0, tp, out, 0, on_train, &w), "adak_train_allocator");
    CHECK(w.calls == 1 && w.last_update == 1 && w.updates == 3 && w.getter_errors == 0 && w.misuse_ok);
    CHECK(file_exists(out) && file_exists(optim));
    /* the report is dead once its callback returned */
    int64_t v = 0;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_train_progress_get_int(w.kept, "update", &v), "adak_train_progress_get_int");

    /* resume to the end */
    struct train_watch r = {0};
    CHECK(adak_train_allocator(m, TEXT, NULL, 0, tp, out, 1, on_train, &r) == ADAK_OK);
    CHECK(r.calls == 2 && r.first_update == 2 && r.last_update == 3 && r.getter_errors == 0 && r.misuse_ok);
    size_t n_moe = 0;
    CHECK(adak_model_get_moe_layers(m, NULL, 0, &n_moe) == ADAK_ERR_BUFFER_TOO_SMALL || n_moe == 0);
    CHECK(r.n_layers == n_moe && n_moe > 0);
    int64_t n_expert = 0;
    CHECK(adak_model_get_int(m, "n_expert", &n_expert) == ADAK_OK);
    for (size_t l = 0; l < r.n_layers && l < 64; l++) CHECK(r.mean_k[l] >= 1 && r.mean_k[l] <= (double)n_expert);
    CHECK(r.cost > 0 && isfinite(r.entropy) && isfinite(r.greedy)); /* greedy baseline by default */
    printf("train: %lld updates, %lld sampled tokens, cost fraction %.3f, mean k of layer 0 %.2f\n",
           (long long)r.last_update, (long long)r.tokens, r.cost, r.mean_k[0]);

    /* the result is an allocator of this model */
    adak_allocator *a = NULL;
    CHECK(adak_allocator_load(m, out, &a) == ADAK_OK && a != NULL);
    adak_session *s = NULL;
    CHECK(adak_session_create(m, NULL, &s) == ADAK_OK);
    CHECK(adak_session_set_allocator(s, a) == ADAK_OK && adak_session_set_string(s, "routing", "adak") == ADAK_OK);
    adak_token prompt[3] = {1, 2, 3};
    CHECK(adak_session_evaluate(s, prompt, 3, 0) == ADAK_OK);
    adak_session_free(s);
    adak_allocator_free(a);

    /* from tokens, NULL params would be the (large) defaults: use the small ones, mean baseline */
    CHECK(adak_train_params_set_string(tp, "baseline", "mean") == ADAK_OK);
    CHECK(adak_train_params_set_int(tp, "updates", 1) == ADAK_OK);
    size_t n_data = 0;
    CHECK(adak_model_tokenize(m, TEXT, strlen(TEXT), 0, NULL, 0, &n_data) == ADAK_ERR_BUFFER_TOO_SMALL);
    adak_token *data = malloc(n_data * sizeof *data);
    CHECK(data != NULL && adak_model_tokenize(m, TEXT, strlen(TEXT), 0, data, n_data, &n_data) == ADAK_OK);
    struct train_watch t = {0};
    CHECK(adak_train_allocator(m, NULL, data, n_data, tp, out, 0, on_train, &t) == ADAK_OK);
    CHECK(t.calls == 1 && t.getter_errors == 0 && isnan(t.greedy));
    free(data);

    adak_train_params_free(tp);
    adak_model_free(m);
    unlink(out);
    unlink(optim);
}

/* ---------------------------------------------------------------------------------------- */

struct carve_watch {
    int calls, cancel_at, bad;
    int last_stage;
    int stages_seen[3];
};

static int on_carve(void *user_data, int stage, int64_t done, int64_t total) {
    struct carve_watch *w = user_data;
    w->calls++;
    if (stage < w->last_stage || stage < 0 || stage > 2 || done < 1 || done > total) w->bad++;
    w->last_stage = stage;
    if (stage >= 0 && stage <= 2) w->stages_seen[stage] = 1;
    return w->cancel_at != 0 && w->calls >= w->cancel_at;
}

static void carving(const char *moe_path, const char *calib_path, const char *dense_path) {
    adak_carve_params *cp = NULL;
    CHECK(adak_carve_params_create(&cp) == ADAK_OK);
    CHECK(adak_carve_params_set_string(cp, "calib_path", calib_path) == ADAK_OK);
    char out[256], plan[256];
    snprintf(out, sizeof out, "/tmp/adak-carve-train-%d.moe.gguf", (int)getpid());
    snprintf(plan, sizeof plan, "/tmp/adak-carve-train-%d.plan.gguf", (int)getpid());

    /* a mixture of experts is not a dense model */
    EXPECT(ADAK_ERR_UNSUPPORTED, adak_carve(moe_path, out, cp, NULL, NULL), "adak_carve");
    CHECK(!file_exists(out));
    if (dense_path == NULL) {
        adak_carve_params_free(cp);
        printf("carve: no dense model given; skipped the carving runs\n");
        return;
    }
    CHECK(adak_carve_params_set_string(cp, "layers", "0") == ADAK_OK);
    CHECK(adak_carve_params_set_int(cp, "calib_tokens", 64) == ADAK_OK);
    CHECK(adak_carve_params_set_int(cp, "window", 32) == ADAK_OK);
    CHECK(adak_carve_params_set_int(cp, "kmeans_iterations", 3) == ADAK_OK);
    CHECK(adak_carve_params_set_int(cp, "threads", 2) == ADAK_OK);
    CHECK(adak_carve_params_set_int(cp, "experts", 8) == ADAK_OK);
    CHECK(adak_carve_params_set_int(cp, "top_k", 2) == ADAK_OK);
    CHECK(adak_carve_params_set_string(cp, "plan_out", plan) == ADAK_OK);

    /* settings that do not fit the model are reported by the carve */
    CHECK(adak_carve_params_set_string(cp, "layers", "0,999") == ADAK_OK);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve(dense_path, out, cp, NULL, NULL), "adak_carve");
    CHECK(adak_carve_params_set_string(cp, "layers", "0") == ADAK_OK);
    CHECK(adak_carve_params_set_int(cp, "experts", 7) == ADAK_OK); /* does not divide n_ff */
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_carve(dense_path, out, cp, NULL, NULL), "adak_carve");
    CHECK(adak_carve_params_set_int(cp, "experts", 8) == ADAK_OK);

    /* cancelled at the first report: nothing is written */
    struct carve_watch c = {0};
    c.cancel_at = 1;
    EXPECT(ADAK_ERR_CANCELLED, adak_carve(dense_path, out, cp, on_carve, &c), "adak_carve");
    CHECK(c.calls == 1 && !file_exists(out) && !file_exists(plan));

    struct carve_watch w = {0};
    CHECK(adak_carve(dense_path, out, cp, on_carve, &w) == ADAK_OK);
    CHECK(w.bad == 0 && w.stages_seen[0] && w.stages_seen[1] && w.stages_seen[2]);
    CHECK(file_exists(out) && file_exists(plan));

    adak_model *m = NULL;
    CHECK(adak_model_load(out, NULL, &m) == ADAK_OK);
    int64_t e = 0, k = 0;
    CHECK(adak_model_get_int(m, "n_expert", &e) == ADAK_OK && e == 8);
    CHECK(adak_model_get_int(m, "n_expert_used", &k) == ADAK_OK && k == 2);
    int32_t layers[4];
    size_t n = 0;
    CHECK(adak_model_get_moe_layers(m, layers, 4, &n) == ADAK_OK && n == 1 && layers[0] == 0);
    adak_model_free(m);
    printf("carve: %d progress reports; carved layer 0 into %lld experts (K %lld)\n", w.calls, (long long)e,
           (long long)k);

    /* rebuilt from the plan: the calibration settings are then ignored */
    unlink(out);
    CHECK(adak_carve_params_set_string(cp, "plan_in", plan) == ADAK_OK);
    CHECK(adak_carve_params_set_string(cp, "plan_out", NULL) == ADAK_OK);
    CHECK(adak_carve_params_set_string(cp, "calib_path", "/nonexistent/calib.txt") == ADAK_OK);
    CHECK(adak_carve(dense_path, out, cp, NULL, NULL) == ADAK_OK && file_exists(out));
    /* a plan applied to another model is refused */
    EXPECT(ADAK_ERR_UNSUPPORTED, adak_carve(moe_path, out, cp, NULL, NULL), "adak_carve");

    adak_carve_params_free(cp);
    unlink(out);
    unlink(plan);
}

int main(int argc, char **argv) {
    if (adak_version_number() / 10000 != ADAK_VERSION_MAJOR || adak_version_number() < 300) {
        fprintf(stderr, "libadak %s does not provide the 0.3 API of adak.h %s\n", adak_version(),
                ADAK_VERSION_STRING);
        return 1;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: %s TINY_MOE.gguf CALIBRATION.txt [DENSE.gguf]\n", argv[0]);
        return 2;
    }
    params_misuse();
    training(argv[1]);
    carving(argv[1], argv[2], argc > 3 ? argv[3] : NULL);
    printf("carve_train: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

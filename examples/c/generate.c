/*
 * generate.c — the smallest complete libadak program: load a model, print what it is,
 * and stream greedily generated text to stdout. On a Mixture-of-Experts model it routes with
 * Ada-K (the identity allocator) under a FLOPs budget and prints what routing spent.
 *
 *   cc generate.c -o generate $(pkg-config --cflags --libs adak)
 *   ./generate MODEL.gguf ["prompt"] [max_tokens] [flops_budget, default 0.75]
 */
#include <adak.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int on_token(void *user_data, adak_token token, const char *piece, size_t len) {
    (void)token;
    size_t *count = user_data;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    ++*count;
    return 0; /* nonzero would stop generation */
}

static int check(int status, const char *what) {
    if (status != ADAK_OK)
        fprintf(stderr, "%s failed: %s (%s)\n", what, adak_status_string(status), adak_last_error());
    return status;
}

/* What routing spent: totals, mean k per MoE layer, and how often each k was used. */
static void print_routing_stats(const adak_model *model, const adak_session *session) {
    adak_stats stats;
    stats.size = sizeof stats;
    if (check(adak_session_get_stats(session, &stats), "adak_session_get_stats")) return;
    printf("routing stats: %lld tokens, mean k %.3f (native %d), expert FLOPs %.3g = %.3f x Top-K, "
           "total FLOPs %.3g = %.3f x Top-K\n",
           (long long)stats.tokens, stats.mean_k, stats.k_native, stats.expert_flops,
           stats.expert_fraction, stats.total_flops, stats.total_fraction);

    size_t n = 0;
    int32_t *layers = malloc((size_t)stats.n_moe_layers * sizeof *layers + 1);
    double *mean_k = malloc((size_t)stats.n_moe_layers * sizeof *mean_k + 1);
    int64_t *hist = malloc((size_t)stats.n_expert * sizeof *hist + 1);
    if (layers && mean_k && hist &&
        !check(adak_model_get_moe_layers(model, layers, (size_t)stats.n_moe_layers, &n), "adak_model_get_moe_layers") &&
        !check(adak_session_get_mean_k_per_layer(session, mean_k, (size_t)stats.n_moe_layers, &n),
               "adak_session_get_mean_k_per_layer")) {
        printf("mean k per MoE layer:");
        for (size_t i = 0; i < n; i++) printf(" L%d=%.2f", layers[i], mean_k[i]);
        printf("\n");
    }
    if (hist && !check(adak_session_get_k_histogram(session, hist, (size_t)stats.n_expert, &n),
                       "adak_session_get_k_histogram")) {
        printf("k histogram:");
        for (size_t i = 0; i < n; i++) printf(" k=%zu:%lld", i + 1, (long long)hist[i]);
        printf("\n");
    }
    free(layers);
    free(mean_k);
    free(hist);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.gguf [prompt] [max_tokens]\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    const char *prompt = argc > 2 ? argv[2] : "Once upon a time";
    int max_tokens = argc > 3 ? atoi(argv[3]) : 32;
    double budget = argc > 4 ? atof(argv[4]) : 0.75;

    /* The header we compiled against and the library we run with must share the major version. */
    if (adak_version_number() / 10000 != ADAK_VERSION_MAJOR) {
        fprintf(stderr, "libadak %s does not match adak.h %s\n", adak_version(), ADAK_VERSION_STRING);
        return 1;
    }
    printf("libadak %s (header %s)\n", adak_version(), ADAK_VERSION_STRING);

    adak_model *model = NULL;
    if (check(adak_model_load(path, NULL, &model), "adak_model_load")) return 1;

    static const char *keys[] = {"n_layer", "n_embd", "n_expert", "n_expert_used", "n_vocab", "n_ctx_train"};
    printf("model: arch=%s name=\"%s\"", adak_model_get_string(model, "arch"),
           adak_model_get_string(model, "name"));
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        int64_t v = 0;
        if (adak_model_get_int(model, keys[i], &v) == ADAK_OK) printf(" %s=%lld", keys[i], (long long)v);
    }
    printf("\n");

    /* Tokenize: ask for the size first, then fill. */
    size_t n_prompt = 0;
    int st = adak_model_tokenize(model, prompt, strlen(prompt), ADAK_TOKENIZE_ADD_SPECIAL, NULL, 0, &n_prompt);
    if (st != ADAK_OK && st != ADAK_ERR_BUFFER_TOO_SMALL) { check(st, "adak_model_tokenize"); return 1; }
    adak_token *tokens = malloc((n_prompt ? n_prompt : 1) * sizeof *tokens);
    if (!tokens) return 1;
    if (check(adak_model_tokenize(model, prompt, strlen(prompt), ADAK_TOKENIZE_ADD_SPECIAL, tokens,
                                  n_prompt, &n_prompt), "adak_model_tokenize")) return 1;
    printf("prompt: %zu tokens\n", n_prompt);

    adak_session_params params;
    adak_session_params_init(&params, sizeof params);
    params.n_ctx = 512;
    adak_session *session = NULL;
    if (check(adak_session_create(model, &params, &session), "adak_session_create")) return 1;

    adak_sampling_params sampling;
    adak_sampling_params_init(&sampling, sizeof sampling);
    sampling.temperature = 0.0f; /* greedy */
    if (check(adak_session_set_sampling(session, &sampling), "adak_session_set_sampling")) return 1;

    int64_t n_expert = 0;
    adak_model_get_int(model, "n_expert", &n_expert);
    if (n_expert > 0) {
        /* Ada-K with the identity allocator (argmax = native K) spends exactly the budget:
           the session keeps its own reference, so the handle can go right away. */
        adak_allocator *allocator = NULL;
        if (check(adak_allocator_identity(model, &allocator), "adak_allocator_identity")) return 1;
        st = adak_session_set_allocator(session, allocator);
        adak_allocator_free(allocator);
        if (check(st, "adak_session_set_allocator")) return 1;
        adak_routing_params routing;
        adak_routing_params_init(&routing, sizeof routing);
        routing.policy = ADAK_ROUTING_ADAK;
        routing.flops_budget = budget;
        if (check(adak_session_set_routing(session, &routing), "adak_session_set_routing")) return 1;
        printf("routing: adak (identity allocator), FLOPs budget %.2f of static Top-K\n", budget);
    }

    size_t streamed = 0, generated = 0;
    fputs(prompt, stdout);
    st = adak_session_generate(session, tokens, n_prompt, max_tokens, on_token, &streamed, &generated);
    printf("\n");
    if (check(st, "adak_session_generate")) return 1;
    printf("generated %zu tokens, position %lld\n", generated, (long long)adak_session_position(session));

    if (n_expert > 0) print_routing_stats(model, session);
    adak_model_free(model); /* sessions keep their model alive; freeing it earlier is fine too */

    free(tokens);
    adak_session_free(session);
    return streamed == generated ? 0 : 1;
}

/*
 * typed_settings.c — adak_routing_params / adak_sampling_params (since 0.5): defaults from the
 * _init functions, all-or-nothing application (an invalid field leaves every setting, the
 * statistics and the next logits exactly as before), the size tag (older, newer and garbage
 * sizes), output structs written only as far as their size says, and the deprecated key setters
 * going through the same validation.
 *
 *   cc typed_settings.c -o typed_settings $(pkg-config --cflags --libs adak)
 *   ./typed_settings MOE_MODEL.gguf
 */
#include <adak.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

static adak_routing_params routing_of(adak_session *s) {
    adak_routing_params r;
    memset(&r, 0xAB, sizeof r);
    r.size = sizeof r;
    CHECK(adak_session_get_routing(s, &r) == ADAK_OK);
    return r;
}

static adak_sampling_params sampling_of(adak_session *s) {
    adak_sampling_params p;
    memset(&p, 0xAB, sizeof p);
    p.size = sizeof p;
    CHECK(adak_session_get_sampling(s, &p) == ADAK_OK);
    return p;
}

/* Greedy next token and its logit after `prompt`, on a fresh context. */
static float probe(adak_session *s, adak_token *next) {
    const adak_token prompt[] = {1, 72, 101, 108, 108, 111};
    CHECK(adak_session_reset(s) == ADAK_OK);
    CHECK(adak_session_evaluate(s, prompt, 6, 0) == ADAK_OK);
    size_t rows = 0, vocab = 0;
    const float *logits = adak_session_logits(s, &rows, &vocab);
    CHECK(logits != NULL && rows == 1);
    if (!logits) return NAN;
    size_t best = 0;
    for (size_t i = 1; i < vocab; i++)
        if (logits[i] > logits[best]) best = i;
    *next = (adak_token)best;
    return logits[best];
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MOE_MODEL.gguf\n", argv[0]);
        return 2;
    }
    adak_model *model = NULL;
    if (adak_model_load(argv[1], NULL, &model) != ADAK_OK) {
        fprintf(stderr, "load: %s\n", adak_last_error());
        return 1;
    }
    int64_t n_expert = 0, k_native = 0;
    CHECK(adak_model_get_int(model, "n_expert", &n_expert) == ADAK_OK && n_expert >= 4);
    CHECK(adak_model_get_int(model, "n_expert_used", &k_native) == ADAK_OK);
    adak_session *s = NULL;
    CHECK(adak_session_create(model, NULL, &s) == ADAK_OK);

    /* Defaults, as the header documents them. */
    adak_routing_params r;
    CHECK(adak_routing_params_init(&r, sizeof r) == ADAK_OK);
    CHECK(r.size == sizeof r && r.policy == ADAK_ROUTING_TOPK && r.k == 0 && r.k_min == 1 && r.k_max == 0);
    CHECK(r.p == 0.5f && r.beta == 0.5f && r.tau == 1.0f && r.price == 0.0f && r.flops_budget == 0.0);
    CHECK(r.budget_mode == ADAK_BUDGET_GLOBAL);
    adak_sampling_params sp;
    CHECK(adak_sampling_params_init(&sp, sizeof sp) == ADAK_OK);
    CHECK(sp.size == sizeof sp && sp.temperature == 0.8f && sp.top_k == 40 && sp.top_p == 0.95f);
    CHECK(sp.min_p == 0.05f && sp.repeat_penalty == 1.0f && sp.repeat_last_n == 64 && sp.seed == 0xADA);
    adak_routing_params now = routing_of(s);
    CHECK(memcmp(&now, &r, sizeof r) == 0);
    adak_sampling_params snow = sampling_of(s);
    CHECK(memcmp(&snow, &sp, sizeof sp) == 0);

    /* A valid set applies as a whole. */
    r.policy = ADAK_ROUTING_TOP_P;
    r.p = 0.7f;
    r.k_min = 2;
    r.k_max = 3;
    r.flops_budget = 0.75;
    CHECK(adak_session_set_routing(s, &r) == ADAK_OK);
    adak_routing_params before = routing_of(s);
    CHECK(memcmp(&before, &r, sizeof r) == 0);
    int64_t policy = -1;
    CHECK(adak_session_get_int(s, "routing", &policy) == ADAK_OK && policy == ADAK_ROUTING_TOP_P);
    double budget = 0;
    CHECK(adak_session_get_float(s, "flops_budget", &budget) == ADAK_OK && budget == 0.75);

    /* Each invalid field: refused with a message naming the function, nothing changes. */
    for (int i = 0; i < 18; i++) {
        adak_routing_params bad = before;
        const char *what = "";
        switch (i) {
        case 0: bad.policy = 5; what = "policy 5"; break;
        case 1: bad.policy = -1; what = "policy -1"; break;
        case 2: bad.policy = ADAK_ROUTING_ADAK; what = "adak without an allocator"; break;
        case 3: bad.k = (int32_t)n_expert + 1; what = "k > n_expert"; break;
        case 4: bad.k = -1; what = "k < 0"; break;
        case 5: bad.k_min = 0; what = "k_min 0"; break;
        case 6: bad.k_max = 1; what = "k_max < k_min"; break;
        case 7: bad.k_max = (int32_t)n_expert + 1; what = "k_max > n_expert"; break;
        case 8: bad.p = NAN; what = "p NaN"; break;
        case 9: bad.p = 1.5f; what = "p > 1"; break;
        case 10: bad.beta = -0.1f; what = "beta < 0"; break;
        case 11: bad.tau = INFINITY; what = "tau inf"; break;
        case 12: bad.price = 100.0f; what = "price > 64"; break;
        case 13: bad.flops_budget = -0.5; what = "budget < 0"; break;
        case 14: bad.flops_budget = 17.0; what = "budget > 16"; break;
        case 15: bad.flops_budget = NAN; what = "budget NaN"; break;
        case 16: bad.budget_mode = 2; what = "budget_mode 2"; break;
        case 17: bad.budget_mode = -1; what = "budget_mode -1"; break;
        }
        int st = adak_session_set_routing(s, &bad);
        if (st != ADAK_ERR_INVALID_ARGUMENT || !strstr(adak_last_error(), "adak_session_set_routing")) {
            failed++;
            fprintf(stderr, "FAIL: %s: status %d, message %s\n", what, st, adak_last_error());
        } else {
            passed++;
        }
        adak_routing_params after = routing_of(s);
        if (memcmp(&after, &before, sizeof before) != 0) {
            failed++;
            fprintf(stderr, "FAIL: %s changed the routing settings\n", what);
        } else {
            passed++;
        }
    }
    adak_stats st1 = {0};
    st1.size = sizeof st1;
    CHECK(adak_session_get_stats(s, &st1) == ADAK_OK && st1.tokens == 0);
    /* The session decodes as one that never saw the refused calls (same settings, set once). */
    adak_session *twin = NULL;
    CHECK(adak_session_create(model, NULL, &twin) == ADAK_OK);
    CHECK(adak_session_set_routing(twin, &before) == ADAK_OK);
    adak_token next_s = -1, next_twin = -2;
    float logit_s = probe(s, &next_s), logit_twin = probe(twin, &next_twin);
    CHECK(next_s == next_twin && logit_s == logit_twin);
    adak_session_free(twin);

    /* "adak" with an allocator set first (any policy accepts one): one atomic switch. */
    adak_allocator *alloc = NULL;
    CHECK(adak_allocator_identity(model, &alloc) == ADAK_OK);
    CHECK(adak_session_set_allocator(s, alloc) == ADAK_OK);
    adak_allocator_free(alloc);
    adak_routing_params ada = before;
    ada.policy = ADAK_ROUTING_ADAK;
    ada.k_max = 0;
    ada.flops_budget = 0.5;
    CHECK(adak_session_set_routing(s, &ada) == ADAK_OK);
    now = routing_of(s);
    CHECK(now.policy == ADAK_ROUTING_ADAK && now.flops_budget == 0.5 && now.k_min == 2);
    ada.flops_budget = 0;  /* no budget */
    CHECK(adak_session_set_routing(s, &ada) == ADAK_OK);
    CHECK(routing_of(s).flops_budget == 0.0);

    /* Sampling: invalid fields change nothing. */
    adak_sampling_params sbefore = sampling_of(s);
    for (int i = 0; i < 7; i++) {
        adak_sampling_params bad = sbefore;
        switch (i) {
        case 0: bad.temperature = -1.0f; break;
        case 1: bad.temperature = NAN; break;
        case 2: bad.top_k = -1; break;
        case 3: bad.top_p = 0.0f; break;
        case 4: bad.min_p = 1.5f; break;
        case 5: bad.repeat_penalty = 0.0f; break;
        case 6: bad.repeat_last_n = -1; break;
        }
        EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_sampling(s, &bad), "adak_session_set_sampling");
        adak_sampling_params after = sampling_of(s);
        CHECK(memcmp(&after, &sbefore, sizeof after) == 0);
    }
    sp.temperature = 0.0f;
    sp.top_k = 1;
    CHECK(adak_session_set_sampling(s, &sp) == ADAK_OK);
    double t = -1;
    CHECK(adak_session_get_float(s, "temperature", &t) == ADAK_OK && t == 0.0);

    /* The size tag: garbage sizes are refused; an output struct is written only as far as its
       size says (a caller compiled against a first version of 40 bytes gets 40). */
    adak_routing_params g = before;
    g.size = 3;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_routing(s, &g), "size");
    g.size = 1u << 20;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_routing(s, &g), "size");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_routing_params_init(&g, 4), "adak_routing_params_init");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_sampling_params_init(NULL, sizeof sp), "adak_sampling_params_init");
    unsigned char big[sizeof(adak_routing_params) + 16];
    memset(big, 0xCD, sizeof big);
    CHECK(adak_routing_params_init((adak_routing_params *)(void *)big, sizeof big) == ADAK_OK);
    CHECK(big[sizeof big - 1] == 0);  /* a newer caller's unknown tail is zeroed */
    CHECK(adak_session_set_routing(s, (const adak_routing_params *)(const void *)big) == ADAK_OK);
    memset(big, 0xCD, sizeof big);
    ((adak_routing_params *)(void *)big)->size = offsetof(adak_routing_params, flops_budget);  /* up to price */
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_get_routing(s, (adak_routing_params *)(void *)big), "size");

    /* budget_mode (0.6): set and read back; a 0.5 caller (struct up to flops_budget) is
       accepted, gets the default (global) mode, and reads nothing past its size. */
    adak_routing_params pl = routing_of(s);
    pl.budget_mode = ADAK_BUDGET_PER_LAYER;
    CHECK(adak_session_set_routing(s, &pl) == ADAK_OK);
    CHECK(routing_of(s).budget_mode == ADAK_BUDGET_PER_LAYER);
    pl.size = offsetof(adak_routing_params, budget_mode);
    CHECK(adak_session_set_routing(s, &pl) == ADAK_OK);
    CHECK(routing_of(s).budget_mode == ADAK_BUDGET_GLOBAL);
    memset(big, 0xCD, sizeof big);
    ((adak_routing_params *)(void *)big)->size = offsetof(adak_routing_params, budget_mode);
    CHECK(adak_session_get_routing(s, (adak_routing_params *)(void *)big) == ADAK_OK);
    CHECK(big[offsetof(adak_routing_params, budget_mode)] == 0xCD);
    adak_sampling_params sout;
    memset(&sout, 0xCD, sizeof sout);
    sout.size = sizeof sout;
    CHECK(adak_session_get_sampling(s, &sout) == ADAK_OK && sout.top_k == 1);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_get_routing(NULL, &r), "adak_session_get_routing");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_routing(s, NULL), "adak_session_set_routing");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_get_sampling(s, NULL), "adak_session_get_sampling");

    /* The deprecated keys go through the same validation and land in the typed settings. */
    CHECK(adak_session_set_int(s, "routing", ADAK_ROUTING_SKIP) == ADAK_OK);
    CHECK(adak_session_set_float(s, "routing.beta", 0.25) == ADAK_OK);
    now = routing_of(s);
    CHECK(now.policy == ADAK_ROUTING_SKIP && now.beta == 0.25f);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_float(s, "routing.beta", 2.0), "routing.beta");
    CHECK(routing_of(s).beta == 0.25f);
    CHECK(adak_session_set_float(s, "top_p", 0.5) == ADAK_OK && sampling_of(s).top_p == 0.5f);

    /* adak_quantize_params: defaults, refused values, a real run that loads back. */
    adak_quantize_params qp;
    CHECK(adak_quantize_params_init(&qp, sizeof qp) == ADAK_OK);
    CHECK(qp.size == sizeof qp && qp.ftype == ADAK_FTYPE_Q8_0 && qp.n_threads == 0 && qp.allow_requantize == 1);
    char out_path[] = "/tmp/adak-typed-settings-XXXXXX";
    int fd = mkstemp(out_path);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    adak_quantize_params bad = qp;
    bad.ftype = 9999;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_quantize(argv[1], out_path, &bad), "ftype");
    bad = qp;
    bad.allow_requantize = 2;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_quantize(argv[1], out_path, &bad), "allow_requantize");
    bad = qp;
    bad.size = 2;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_quantize(argv[1], out_path, &bad), "size");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_quantize(NULL, out_path, &qp), "adak_model_quantize");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_quantize(argv[1], "", &qp), "adak_model_quantize");
    CHECK(adak_model_quantize(argv[1], out_path, &qp) == ADAK_OK);
    adak_model *q8 = NULL;
    CHECK(adak_model_load(out_path, NULL, &q8) == ADAK_OK && adak_model_n_vocab(q8) == adak_model_n_vocab(model));
    adak_model_free(q8);
    unlink(out_path);

    adak_session_free(s);
    adak_model_free(model);
    printf("typed_settings: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

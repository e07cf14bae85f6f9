/*
 * session_features.c — the C API of chat templates, stop reasons and strings, logit bias, the
 * logits callback, state save/load, truncate, get_tokens and copy (since 0.5): results and
 * bad arguments.
 *
 *   cc session_features.c -o session_features $(pkg-config --cflags --libs adak)
 *   ./session_features TINY_MOE.gguf [SMOLLM2.gguf]
 */
#include <adak.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static int count_tokens(void *user, adak_token token, const char *piece, size_t len) {
    (void)token, (void)piece, (void)len;
    ++*(int *)user;
    return 0;
}

/* Bans every token but 65 ('A' in the tiny byte vocabulary). */
static void only_a(void *user, float *logits, size_t n) {
    ++*(int *)user;
    for (size_t i = 0; i < n; i++)
        if (i != 65) logits[i] = -INFINITY;
}

static int same_logits(adak_session *a, adak_session *b) {
    size_t ra, rb, va, vb;
    const float *la = adak_session_logits(a, &ra, &va), *lb = adak_session_logits(b, &rb, &vb);
    return la && lb && ra == rb && va == vb && memcmp(la, lb, ra * va * sizeof(float)) == 0;
}

static adak_session *greedy_session(adak_model *m, int32_t n_ctx) {
    adak_session_params p;
    adak_session_params_init(&p, sizeof p);
    p.n_ctx = n_ctx;
    p.n_threads = 2;
    adak_session *s = NULL;
    CHECK(adak_session_create(m, &p, &s) == ADAK_OK);
    adak_sampling_params sp;
    adak_sampling_params_init(&sp, sizeof sp);
    sp.temperature = 0;
    CHECK(adak_session_set_sampling(s, &sp) == ADAK_OK);
    return s;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s TINY_MOE.gguf [SMOLLM2.gguf]\n", argv[0]);
        return 2;
    }
    adak_model *m = NULL;
    if (adak_model_load(argv[1], NULL, &m) != ADAK_OK) {
        fprintf(stderr, "%s\n", adak_last_error());
        return 1;
    }
    const adak_token prompt[] = {1, 72, 101, 108, 108, 111, 32};
    size_t len = 0;
    char buf[4096];
    adak_chat_message msgs[] = {{"system", "Be brief."}, {"user", "Hi"}};

    /* chat templates: the tiny model has none */
    EXPECT(ADAK_ERR_UNSUPPORTED, adak_model_apply_chat_template(m, msgs, 2, 1, buf, sizeof buf, &len),
           "adak_model_apply_chat_template");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_apply_chat_template(NULL, msgs, 2, 1, buf, sizeof buf, &len),
           "adak_model_apply_chat_template");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_apply_chat_template(m, NULL, 2, 1, buf, sizeof buf, &len),
           "adak_model_apply_chat_template");
    adak_chat_message bad[] = {{NULL, "x"}};
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_apply_chat_template(m, bad, 1, 1, buf, sizeof buf, &len),
           "adak_model_apply_chat_template");

    adak_session *s = greedy_session(m, 64);
    int32_t reason = -1;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_stop_reason(s, &reason), "adak_session_stop_reason");
    int n = 0;
    size_t got = 0;
    CHECK(adak_session_generate(s, prompt, 7, 5, count_tokens, &n, &got) == ADAK_OK);
    CHECK(adak_session_stop_reason(s, &reason) == ADAK_OK && reason == ADAK_STOP_MAX_TOKENS && n == 5);
    /* 64 - 7 - 5 + 1 more tokens fit: asking for 100 stops at the full context */
    CHECK(adak_session_generate(s, NULL, 0, 100, NULL, NULL, &got) == ADAK_OK);
    CHECK(adak_session_stop_reason(s, &reason) == ADAK_OK && reason == ADAK_STOP_CONTEXT_FULL && got < 100);

    /* get_tokens and truncate = a fresh session fed the same evaluate calls */
    adak_token toks[64];
    size_t nt = 0;
    CHECK(adak_session_get_tokens(s, NULL, 0, &nt) == ADAK_ERR_BUFFER_TOO_SMALL && nt == 64);
    CHECK(adak_session_get_tokens(s, toks, 64, &nt) == ADAK_OK && memcmp(toks, prompt, sizeof prompt) == 0);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_truncate(s, 65), "adak_session_truncate");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_truncate(s, -1), "adak_session_truncate");
    CHECK(adak_session_truncate(s, 7) == ADAK_OK && adak_session_position(s) == 7);
    const adak_token more[] = {87, 111, 114};
    CHECK(adak_session_evaluate(s, more, 3, 0) == ADAK_OK);
    adak_session *f = greedy_session(m, 64);
    CHECK(adak_session_evaluate(f, prompt, 7, 0) == ADAK_OK && adak_session_evaluate(f, more, 3, 0) == ADAK_OK);
    CHECK(same_logits(s, f));

    /* state: save, load into another session, continue identically */
    size_t need = 0;
    CHECK(adak_session_save_state(s, NULL, 0, &need) == ADAK_ERR_BUFFER_TOO_SMALL && need > 0);
    unsigned char *state = malloc(need);
    CHECK(adak_session_save_state(s, state, need, &need) == ADAK_OK);
    adak_session *l = greedy_session(m, 128);
    CHECK(adak_session_load_state(l, state, need) == ADAK_OK && adak_session_position(l) == 10);
    CHECK(same_logits(s, l));
    EXPECT(ADAK_ERR_FORMAT, adak_session_load_state(l, state, need - 3), "adak_session_load_state");
    state[need / 2] ^= 0x40;
    EXPECT(ADAK_ERR_FORMAT, adak_session_load_state(l, state, need), "adak_session_load_state");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_load_state(l, NULL, 4), "adak_session_load_state");
    CHECK(adak_session_position(l) == 10);
    EXPECT(ADAK_ERR_IO, adak_session_load_state_file(l, "/nonexistent/state.bin"), "adak_session_load_state_file");
    free(state);

    /* copy: independent afterwards */
    adak_session *c = NULL;
    CHECK(adak_session_copy(s, &c) == ADAK_OK && c != NULL && same_logits(s, c));
    const adak_token x[] = {33};
    CHECK(adak_session_evaluate(c, x, 1, 0) == ADAK_OK);
    CHECK(adak_session_position(c) == 11 && adak_session_position(s) == 10);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_copy(NULL, &c), "adak_session_copy");
    CHECK(c == NULL);

    /* logit bias, logits callback, stop strings */
    const adak_token ban[] = {65};
    const float minus_inf[] = {-INFINITY}, nan_bias[] = {NAN};
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_logit_bias(s, ban, nan_bias, 1), "adak_session_set_logit_bias");
    const adak_token out_of_range[] = {100000};
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_logit_bias(s, out_of_range, minus_inf, 1),
           "adak_session_set_logit_bias");
    int calls = 0;
    CHECK(adak_session_set_logits_callback(s, only_a, &calls) == ADAK_OK);
    adak_token t = -1;
    CHECK(adak_session_sample(s, &t) == ADAK_OK && t == 65 && calls == 1);
    CHECK(adak_session_set_logit_bias(s, ban, minus_inf, 1) == ADAK_OK);
    CHECK(adak_session_generate(s, NULL, 0, 3, NULL, NULL, &got) == ADAK_ERR_INVALID_ARGUMENT);  /* all banned */
    CHECK(adak_session_set_logit_bias(s, NULL, NULL, 0) == ADAK_OK);
    CHECK(adak_session_set_logits_callback(s, NULL, NULL) == ADAK_OK);
    const char *stops[] = {"never", NULL};
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_stop_strings(s, stops, NULL, 2), "adak_session_set_stop_strings");
    CHECK(adak_session_set_stop_strings(s, stops, NULL, 1) == ADAK_OK);
    CHECK(adak_session_set_stop_strings(s, NULL, NULL, 0) == ADAK_OK);

    adak_session_free(c);
    adak_session_free(l);
    adak_session_free(f);
    adak_session_free(s);

    if (argc > 2) {  /* a real chat template: SmolLM2's ChatML with its default system prompt */
        adak_model *d = NULL;
        CHECK(adak_model_load(argv[2], NULL, &d) == ADAK_OK);
        adak_chat_message user[] = {{"user", "Hi"}};
        const char *want = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
                           "Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n";
        CHECK(adak_model_apply_chat_template(d, user, 1, 1, NULL, 0, &len) == ADAK_ERR_BUFFER_TOO_SMALL &&
              len == strlen(want));
        CHECK(adak_model_apply_chat_template(d, user, 1, 1, buf, sizeof buf, &len) == ADAK_OK && strcmp(buf, want) == 0);
        adak_chat_message wizard[] = {{"wizard", "Hi"}};
        EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_apply_chat_template(d, wizard, 1, 1, buf, sizeof buf, &len),
               "adak_model_apply_chat_template");
        adak_model_free(d);
    }
    adak_model_free(m);
    printf("session_features: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

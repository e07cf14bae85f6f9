/*
 * misuse_more.c — the second half of the misuse suite (issue 8): loading from a memory buffer,
 * token ids at the edges of the int32 range, context overflow, continuing after failed calls,
 * very long prompts, callbacks that stop at once or try to reset the session, limits on the
 * session parameters, and NULL pointers in every pointer argument of the new entry point.
 * Every failing call must return its error code with a message naming the function, and the
 * model and session must stay usable afterwards (adak.h: "Failed calls change nothing").
 *
 *   cc misuse_more.c -o misuse_more $(pkg-config --cflags --libs adak)
 *   ./misuse_more MODEL.gguf
 */
#include <adak.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static unsigned char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = n > 0 ? malloc((size_t)n) : NULL;
    if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
        free(data);
        data = NULL;
    }
    fclose(f);
    *size = data ? (size_t)n : 0;
    return data;
}

static int stop_at_once(void *user_data, adak_token token, const char *piece, size_t len) {
    (void)token;
    (void)piece;
    (void)len;
    ++*(int *)user_data;
    return 1;
}

struct reset_attempt {
    adak_session *session;
    int status;
    int calls;
};

/* Tries to reset the session from its own callback: documented to fail with
 * ADAK_ERR_INVALID_ARGUMENT; generation goes on (the callback returns 0). */
static int reset_from_callback(void *user_data, adak_token token, const char *piece, size_t len) {
    (void)token;
    (void)piece;
    (void)len;
    struct reset_attempt *r = user_data;
    r->status = adak_session_reset(r->session);
    r->calls++;
    return 0;
}

static int count_tokens(void *user_data, adak_token token, const char *piece, size_t len) {
    (void)token;
    (void)piece;
    (void)len;
    ++*(int *)user_data;
    return 0;
}

static void buffer_loads(const unsigned char *data, size_t size, adak_model **out_model) {
    adak_model *m = (adak_model *)0x1;
    adak_model_params mp;
    CHECK(adak_model_params_init(&mp, sizeof mp) == ADAK_OK);

    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_load_from_buffer(data, size, NULL, NULL), "adak_model_load_from_buffer");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_load_from_buffer(NULL, size, NULL, &m), "data is NULL");
    CHECK(m == NULL);
    m = (adak_model *)0x1;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_load_from_buffer(data, 0, NULL, &m), "size");
    CHECK(m == NULL);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_load_from_buffer(data, (size_t)-1, NULL, &m), "size");
    EXPECT(ADAK_ERR_OUT_OF_MEMORY, adak_model_load_from_buffer(data, ((size_t)1 << 40) + 1, NULL, &m), "limit");
    mp.weight_type = 42;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_load_from_buffer(data, size, &mp, &m), "weight_type");
    mp.weight_type = ADAK_WEIGHT_DEFAULT;
    mp.size = 3;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_load_from_buffer(data, size, &mp, &m), "params->size");
    mp.size = sizeof mp;
    /* Truncations anywhere: a format error, never a crash. */
    size_t cuts[] = {1, 3, 4, 8, 23, 24, 100, size / 4, size / 2, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        m = (adak_model *)0x1;
        EXPECT(ADAK_ERR_FORMAT, adak_model_load_from_buffer(data, cuts[i], &mp, &m), "adak_model_load_from_buffer");
        CHECK(m == NULL);
    }
    /* Not a GGUF file at all. */
    static const char junk[] = "this is not a model, just some text that is long enough";
    EXPECT(ADAK_ERR_FORMAT, adak_model_load_from_buffer(junk, sizeof junk, NULL, &m), "bad magic");
    /* A corrupted tensor count (absurd) and tensor-info offset (past the end). */
    unsigned char *copy = malloc(size);
    memcpy(copy, data, size);
    memset(copy + 8, 0xff, 8);
    EXPECT(ADAK_ERR_FORMAT, adak_model_load_from_buffer(copy, size, NULL, &m), "tensor count");
    free(copy);

    CHECK(adak_model_load_from_buffer(data, size, &mp, out_model) == ADAK_OK && *out_model != NULL);
}

static void session_limits(adak_model *m) {
    adak_session_params sp;
    adak_session *s = (adak_session *)0x1;
    adak_session_params_init(&sp, sizeof sp);
    sp.n_ctx = (1 << 20) + 1;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_create(m, &sp, &s), "n_ctx");
    CHECK(s == NULL);
    sp.n_ctx = INT32_MAX;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_create(m, &sp, &s), "n_ctx");
    sp.n_ctx = 16;
    sp.n_threads = 1025;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_create(m, &sp, &s), "n_threads");
    sp.n_threads = 1;
    sp.n_batch = 8193;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_create(m, &sp, &s), "n_batch");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_create(NULL, &sp, &s), "adak_session_create");
    adak_session_free(NULL);
    adak_model_free(NULL);
}

static void sessions(adak_model *m) {
    int32_t n_vocab = adak_model_n_vocab(m);
    adak_session_params sp;
    adak_session_params_init(&sp, sizeof sp);
    sp.n_ctx = 32;
    sp.n_threads = 1;
    sp.n_batch = 8;
    adak_session *s = NULL;
    CHECK(adak_session_create(m, &sp, &s) == ADAK_OK && s != NULL);
    if (!s) return;
    CHECK(adak_session_set_float(s, "temperature", 0) == ADAK_OK);

    /* Token ids at the edges of the range: rejected, nothing evaluated. */
    adak_token edges[] = {INT32_MIN, -2, -1, n_vocab, n_vocab + 1, INT32_MAX};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        adak_token pair[2] = {0, edges[i]};
        EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_evaluate(s, pair, 2, 0), "tokens[1]");
        EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_generate(s, pair, 2, 4, NULL, NULL, NULL), "prompt[1]");
        CHECK(adak_model_is_eog(m, edges[i]) == 0);
    }
    CHECK(adak_session_position(s) == 0);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_evaluate(s, edges, (size_t)-1, 0), "adak_session_evaluate");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_generate(s, edges, (size_t)-1, 4, NULL, NULL, NULL), "adak_session_generate");

    /* Very long prompts: tokenizing 1 MiB of text works; evaluating more than the context
     * fails with CONTEXT_FULL and changes nothing. */
    size_t text_len = (size_t)1 << 20;
    char *text = malloc(text_len);
    for (size_t i = 0; i < text_len; i++) text[i] = "the quick brown fox jumps over the lazy dog "[i % 44];
    size_t n_long = 0;
    EXPECT(ADAK_ERR_BUFFER_TOO_SMALL, adak_model_tokenize(m, text, text_len, 0, NULL, 0, &n_long), "adak_model_tokenize");
    CHECK(n_long > 1000);
    adak_token *long_prompt = malloc(n_long * sizeof *long_prompt);
    size_t n_again = 0;
    CHECK(adak_model_tokenize(m, text, text_len, 0, long_prompt, n_long, &n_again) == ADAK_OK && n_again == n_long);
    EXPECT(ADAK_ERR_CONTEXT_FULL, adak_session_evaluate(s, long_prompt, n_long, 0), "adak_session_evaluate");
    size_t generated = 99;
    EXPECT(ADAK_ERR_CONTEXT_FULL, adak_session_generate(s, long_prompt, n_long, 4, NULL, NULL, &generated), "adak_session_generate");
    CHECK(generated == 0 && adak_session_position(s) == 0);
    EXPECT(ADAK_ERR_CONTEXT_FULL, adak_session_evaluate(s, long_prompt, 33, 0), "adak_session_evaluate");
    CHECK(adak_session_position(s) == 0);

    /* Generate after a failed call: works as if the failed call had not happened. */
    CHECK(adak_session_generate(s, long_prompt, 4, 3, NULL, NULL, &generated) == ADAK_OK);
    CHECK(generated <= 3);
    int64_t pos = adak_session_position(s);
    CHECK(pos >= 4);
    EXPECT(ADAK_ERR_CONTEXT_FULL, adak_session_evaluate(s, long_prompt, 40, 0), "adak_session_evaluate");
    CHECK(adak_session_position(s) == pos);
    CHECK(adak_session_generate(s, NULL, 0, 2, NULL, NULL, &generated) == ADAK_OK);

    /* Context overflow during generation: max_tokens far beyond the context stops at the
     * full context with ADAK_OK; then nothing more fits. */
    int calls = 0;
    CHECK(adak_session_generate(s, NULL, 0, INT32_MAX, count_tokens, &calls, &generated) == ADAK_OK);
    CHECK((int)generated == calls);
    CHECK(adak_session_position(s) <= 32);
    /* Fill the context exactly: then one more token does not fit, and generate neither
     * evaluates nor crashes (it may hand one token to the callback, left pending). */
    CHECK(adak_session_reset(s) == ADAK_OK);
    CHECK(adak_session_evaluate(s, long_prompt, 32, 0) == ADAK_OK && adak_session_position(s) == 32);
    EXPECT(ADAK_ERR_CONTEXT_FULL, adak_session_evaluate(s, long_prompt, 1, 0), "adak_session_evaluate");
    EXPECT(ADAK_ERR_CONTEXT_FULL, adak_session_generate(s, long_prompt, 1, 4, NULL, NULL, &generated), "adak_session_generate");
    int st = adak_session_generate(s, NULL, 0, 4, NULL, NULL, &generated);
    CHECK((st == ADAK_OK || st == ADAK_ERR_CONTEXT_FULL) && generated <= 1);
    CHECK(adak_session_position(s) == 32);

    /* Reset makes the session fully usable again. */
    CHECK(adak_session_reset(s) == ADAK_OK && adak_session_position(s) == 0);
    CHECK(adak_session_evaluate(s, long_prompt, 8, 0) == ADAK_OK && adak_session_position(s) == 8);

    /* A callback that stops at once: one token, left pending (not in the context). */
    calls = 0;
    CHECK(adak_session_generate(s, NULL, 0, 10, stop_at_once, &calls, &generated) == ADAK_OK);
    CHECK(calls == (int)generated && generated <= 1);
    CHECK(adak_session_position(s) == 8);
    /* Continuing evaluates the pending token first. */
    size_t first = generated;
    calls = 0;
    CHECK(adak_session_generate(s, NULL, 0, 1, stop_at_once, &calls, &generated) == ADAK_OK);
    CHECK(adak_session_position(s) == 8 + (int64_t)first);

    /* Reset from the callback: refused (documented), generation completes normally, and a
     * reset afterwards works. */
    struct reset_attempt r = {s, 0, 0};
    CHECK(adak_session_generate(s, NULL, 0, 3, reset_from_callback, &r, &generated) == ADAK_OK);
    CHECK(r.calls == (int)generated);
    if (r.calls > 0) CHECK(r.status == ADAK_ERR_INVALID_ARGUMENT);
    CHECK(adak_session_position(s) > 0);
    CHECK(adak_session_reset(s) == ADAK_OK && adak_session_position(s) == 0);

    /* Same answers after all of that: greedy generation is deterministic from a reset. */
    adak_token a[4] = {0}, b[4] = {0};
    CHECK(adak_session_evaluate(s, long_prompt, 6, 0) == ADAK_OK && adak_session_sample(s, &a[0]) == ADAK_OK);
    CHECK(adak_session_reset(s) == ADAK_OK);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_sample(s, &b[0]), "adak_session_sample");
    CHECK(adak_session_evaluate(s, long_prompt, 6, 0) == ADAK_OK && adak_session_sample(s, &b[0]) == ADAK_OK);
    CHECK(a[0] == b[0]);

    /* NULL output pointers on the read-only calls. */
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_get_int(s, "position", NULL), "adak_session_get_int");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_get_int(s, NULL, NULL), "adak_session_get_int");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_get_float(NULL, "temperature", NULL), "adak_session_get_float");
    CHECK(adak_session_logits(s, NULL, NULL) != NULL);

    free(long_prompt);
    free(text);
    adak_session_free(s);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.gguf\n", argv[0]);
        return 2;
    }
    size_t size = 0;
    unsigned char *data = read_file(argv[1], &size);
    if (!data) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    adak_model *m = NULL;
    buffer_loads(data, size, &m);
    free(data); /* the library made its own copy */
    if (m) {
        session_limits(m);
        sessions(m);
        adak_model_free(m);
    }
    printf("misuse_more: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

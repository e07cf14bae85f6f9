/*
 * regex_constraint.c — adak_session_set_regex (since 0.6): generations under a pattern match it
 * as a whole (checked with the C library's own POSIX regex engine, regcomp/regexec), bad and
 * unsupported patterns give clear errors, and the constraint can be removed.
 *
 *   cc regex_constraint.c -o regex_constraint $(pkg-config --cflags --libs adak)
 *   ./regex_constraint TINY_MOE.gguf [SMOLLM2.gguf]
 */
#include <adak.h>
#include <locale.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

typedef struct {
    char text[256];
    size_t len;
} answer;

static int collect(void *user, adak_token token, const char *piece, size_t len) {
    (void)token;
    answer *a = user;
    if (a->len + len < sizeof a->text) {
        memcpy(a->text + a->len, piece, len);
        a->len += len;
        a->text[a->len] = 0;
    }
    return 0;
}

/* Whether `text` matches the POSIX extended pattern `posix` (anchored) as a whole. */
static int posix_full_match(const char *posix, const char *text) {
    regex_t re;
    if (regcomp(&re, posix, REG_EXTENDED | REG_NOSUB) != 0) return 0;
    int ok = regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static adak_session *session(adak_model *m, float temperature, uint64_t seed) {
    adak_session_params p;
    adak_session_params_init(&p, sizeof p);
    p.n_ctx = 256;
    p.n_threads = 2;
    p.seed = seed;
    adak_session *s = NULL;
    CHECK(adak_session_create(m, &p, &s) == ADAK_OK);
    adak_sampling_params sp;
    adak_sampling_params_init(&sp, sizeof sp);
    sp.temperature = temperature;
    sp.top_k = 0;
    sp.top_p = 1;
    sp.min_p = 0;
    CHECK(adak_session_set_sampling(s, &sp) == ADAK_OK);
    return s;
}

/* Generates under `pattern` and checks the answer against the equivalent POSIX pattern. */
static void generate_matching(adak_model *m, const adak_token *prompt, size_t n_prompt, const char *pattern,
                              const char *posix, float temperature, uint64_t seed, int32_t max_tokens) {
    adak_session *s = session(m, temperature, seed);
    CHECK(adak_session_set_regex(s, pattern) == ADAK_OK);
    answer a = {{0}, 0};
    size_t got = 0;
    int32_t reason = -1;
    CHECK(adak_session_generate(s, prompt, n_prompt, max_tokens, collect, &a, &got) == ADAK_OK);
    CHECK(adak_session_stop_reason(s, &reason) == ADAK_OK && reason == ADAK_STOP_END_OF_GENERATION);
    int ok = posix_full_match(posix, a.text);
    CHECK(ok);
    printf("%-34s seed %2llu: \"%s\"%s\n", pattern, (unsigned long long)seed, a.text, ok ? "" : "  <- no match");
    adak_session_free(s);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s TINY_MOE.gguf [SMOLLM2.gguf]\n", argv[0]);
        return 2;
    }
    setlocale(LC_ALL, "C.UTF-8");  /* regexec counts characters, not bytes */
    adak_model *m = NULL;
    CHECK(adak_model_load(argv[1], NULL, &m) == ADAK_OK);
    adak_session *s = session(m, 1.0f, 1);

    /* errors: the constraint stays as it was */
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_regex(NULL, "a"), "adak_session_set_regex");
    const char *malformed[] = {"(ab", "ab)", "[a-", "[z-a]", "a{3,2}", "*a", "a{", "\\", "\\q", "\xff\xfe"};
    for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++)
        EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_regex(s, malformed[i]), "regex");
    const char *unsupported[] = {"a(?=b)", "(?!a)b", "(a)\\1", "\\bword", "\\p{L}+", "a++", "(?i)abc"};
    for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported; i++)
        EXPECT(ADAK_ERR_UNSUPPORTED, adak_session_set_regex(s, unsupported[i]), "not supported");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_regex(s, "[^\\x00-\\u{10FFFF}]"), "regex");
    CHECK(adak_session_set_regex(s, "^[a-z]+$") == ADAK_OK);
    CHECK(adak_session_set_regex(s, NULL) == ADAK_OK);
    adak_session_free(s);

    /* the tiny model's byte vocabulary (token id == byte; 1 and 2 are BOS and EOS): random
       sampling at temperature 1.5 under a pattern, 8 seeds each */
    adak_token prompt[] = {72, 105, 33};  /* "Hi!" */
    struct { const char *pattern, *posix; } cases[] = {
        {"[0-9]{3}-[a-c]+(x|yz)?", "^[0-9]{3}-[a-c]+(x|yz)?$"},
        {"(?:ab|cd)*e\\.", "^(ab|cd)*e\\.$"},
        {"\\d{1,2}:\\d\\d (am|pm)", "^[0-9]{1,2}:[0-9][0-9] (am|pm)$"},
        {"[^a-z\\n\\x00]{2,4}", "^[^a-z\n]{2,4}$"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
        for (uint64_t seed = 1; seed <= 8; seed++)
            generate_matching(m, prompt, 3, cases[c].pattern, cases[c].posix, 1.5f, seed, 48);

    /* the regex replaces choices (and the other way round) */
    s = session(m, 0, 1);
    const char *choices[] = {"yes", "no"};
    CHECK(adak_session_set_choices(s, choices, NULL, 2) == ADAK_OK);
    CHECK(adak_session_set_regex(s, "z+") == ADAK_OK);
    answer a = {{0}, 0};
    size_t got = 0;
    CHECK(adak_session_generate(s, prompt, 3, 5, collect, &a, &got) == ADAK_OK);
    CHECK(posix_full_match("^z+$", a.text));
    adak_session_free(s);
    adak_model_free(m);

    if (argc > 2) {  /* SmolLM2: a real vocabulary with multi-byte tokens */
        adak_model *d = NULL;
        CHECK(adak_model_load(argv[2], NULL, &d) == ADAK_OK);
        adak_chat_message ask[] = {{"system", "You are a helpful assistant."},
                                   {"user", "What is the capital of France? Answer with one city."}};
        char buf[1024];
        size_t len = 0, nids = 0;
        adak_token ids[256];
        CHECK(adak_model_apply_chat_template(d, ask, 2, 1, buf, sizeof buf, &len) == ADAK_OK);
        CHECK(adak_model_tokenize(d, buf, len, ADAK_TOKENIZE_PARSE_SPECIAL, ids, 256, &nids) == ADAK_OK);
        /* bounded patterns: an unbounded [a-z]+ lets the model spell on up to max_tokens */
        generate_matching(d, ids, nids, "[A-Z][a-z]{1,10}", "^[A-Z][a-z]{1,10}$", 0, 1, 16);
        for (uint64_t seed = 1; seed <= 3; seed++)
            generate_matching(d, ids, nids, "[0-9]{1,3}( [a-z]{1,8})?", "^[0-9]{1,3}( [a-z]{1,8})?$", 1.0f, seed, 16);
        /* greedy: the model's own answer, in the pattern's form */
        const char *sentence = "(The answer is )?[A-Z][a-z]+( \\(France\\))?\\.";
        adak_session *q = session(d, 0, 1);
        CHECK(adak_session_set_regex(q, sentence) == ADAK_OK);
        a = (answer){{0}, 0};
        CHECK(adak_session_generate(q, ids, nids, 24, collect, &a, &got) == ADAK_OK);
        CHECK(posix_full_match("^(The answer is )?[A-Z][a-z]+( \\(France\\))?\\.$", a.text));
        CHECK(strstr(a.text, "Paris") != NULL);
        printf("greedy %s on SmolLM2: \"%s\"\n", sentence, a.text);
        adak_session_free(q);
        adak_model_free(d);
    }
    printf("regex_constraint: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

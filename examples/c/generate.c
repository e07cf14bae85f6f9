/*
 * generate.c — the smallest complete libadak program: load a model, print what it is,
 * and stream greedily generated text to stdout.
 *
 *   cc generate.c -o generate $(pkg-config --cflags --libs adak)
 *   ./generate MODEL.gguf ["prompt"] [max_tokens]
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

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.gguf [prompt] [max_tokens]\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    const char *prompt = argc > 2 ? argv[2] : "Once upon a time";
    int max_tokens = argc > 3 ? atoi(argv[3]) : 32;

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
    adak_model_free(model); /* the session keeps the model alive */

    if (check(adak_session_set_float(session, "temperature", 0.0), "adak_session_set_float")) return 1;

    size_t streamed = 0, generated = 0;
    fputs(prompt, stdout);
    st = adak_session_generate(session, tokens, n_prompt, max_tokens, on_token, &streamed, &generated);
    printf("\n");
    if (check(st, "adak_session_generate")) return 1;
    printf("generated %zu tokens, position %lld\n", generated, (long long)adak_session_position(session));

    free(tokens);
    adak_session_free(session);
    return streamed == generated ? 0 : 1;
}

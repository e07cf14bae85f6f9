/* libFuzzer harness for the GGUF loader, driven through the C ABI exactly as a host would:
 * load the input as a model from memory; if it loads, tokenize a little text, evaluate one
 * token, sample one and turn it back into text. Every call must return (a status, never a
 * crash); ASan reports any out-of-bounds access, LeakSanitizer any leak. */
#include <adak.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "gguf_loader fuzz: broken contract: %s (%s)\n", what, adak_last_error());
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    adak_model *model = (adak_model *)1;
    int rc = adak_model_load_from_buffer(data, size, NULL, &model);
    if (rc != ADAK_OK) {
        check(model == NULL, "a failed load must set *out to NULL");
        check(rc < 0 && adak_last_error()[0] != '\0', "a failed load must report a message");
        return 0;
    }
    int32_t n_vocab = adak_model_n_vocab(model);
    check(n_vocab > 0, "a loaded model has a vocabulary");

    adak_token tokens[16];
    size_t n_tokens = 0;
    static const char text[] = "Hi <s>\xc3\xa9 12";
    rc = adak_model_tokenize(model, text, sizeof text - 1, ADAK_TOKENIZE_ADD_SPECIAL | ADAK_TOKENIZE_PARSE_SPECIAL,
                             tokens, 16, &n_tokens);
    check(rc == ADAK_OK || rc == ADAK_ERR_BUFFER_TOO_SMALL, "tokenize returns ok or buffer-too-small");
    for (size_t i = 0; rc == ADAK_OK && i < n_tokens; i++) check(tokens[i] >= 0 && tokens[i] < n_vocab, "token ids in range");

    adak_session_params sp;
    adak_session_params_init(&sp, sizeof sp);
    sp.n_ctx = 8;
    sp.n_threads = 1;
    sp.n_batch = 4;
    adak_session *session = NULL;
    if (adak_session_create(model, &sp, &session) == ADAK_OK) {
        adak_token first = (rc == ADAK_OK && n_tokens > 0) ? tokens[0] : 0;
        if (adak_session_evaluate(session, &first, 1, 0) == ADAK_OK) {
            adak_token next = -1;
            check(adak_session_sample(session, &next) == ADAK_OK, "sample after evaluate");
            check(next >= 0 && next < n_vocab, "sampled token in range");
            char piece[64];
            size_t len = 0;
            int prc = adak_model_detokenize(model, &next, 1, 0, piece, sizeof piece, &len);
            check(prc == ADAK_OK || prc == ADAK_ERR_BUFFER_TOO_SMALL, "detokenize a sampled token");
        }
        adak_session_free(session);
    }
    adak_model_free(model);
    return 0;
}

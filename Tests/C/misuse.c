/*
 * misuse.c — calls the libadak API the wrong way on purpose: NULL and freed handles, NULL
 * pointers, invalid token ids, bad paths and files, bad parameters. Every call must return an
 * error code (or the documented neutral value) with a message, and never crash the process.
 *
 *   cc misuse.c -o misuse $(pkg-config --cflags --libs adak)
 *   ./misuse MODEL.gguf [OTHER_MOE_MODEL.gguf]
 */
#include <adak.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "check.h"

static int stop_after_first(void *user_data, adak_token token, const char *piece, size_t len) {
    (void)token;
    (void)len;
    int *calls = user_data;
    ++*calls;
    return piece == NULL ? 2 : 1; /* stop right away */
}

/* Tries to change the session from inside its own callback: must be refused. */
struct reentry {
    adak_session *session;
    int statuses[4];
    int64_t position;
};

static int reenter(void *user_data, adak_token token, const char *piece, size_t len) {
    (void)piece;
    (void)len;
    struct reentry *r = user_data;
    adak_token t = token;
    r->statuses[0] = adak_session_evaluate(r->session, &t, 1, 0);
    r->statuses[1] = adak_session_reset(r->session);
    r->statuses[2] = adak_session_generate(r->session, NULL, 0, 1, NULL, NULL, NULL);
    r->statuses[3] = adak_session_set_float(r->session, "temperature", 1.0);
    r->position = adak_session_position(r->session); /* reading is allowed */
    return 1;
}

static void library_functions(void) {
    CHECK(adak_version() != NULL && strcmp(adak_version(), ADAK_VERSION_STRING) == 0);
    CHECK(adak_version_number() == ADAK_VERSION_NUMBER);
    CHECK(adak_last_error() != NULL);
    for (int code = 1; code >= -12; code--) CHECK(adak_status_string(code) != NULL);
    CHECK(strcmp(adak_status_string(ADAK_OK), "ok") == 0);
    CHECK(strcmp(adak_status_string(12345), "unknown status") == 0);
    CHECK(strcmp(adak_status_string(ADAK_ERR_CONTEXT_FULL), "context full") == 0);
}

static void bad_loads(void) {
    adak_model *m = (adak_model *)0x1;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_load(NULL, NULL, &m), "adak_model_load");
    CHECK(m == NULL);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_load("x.gguf", NULL, NULL), "adak_model_load");
    m = (adak_model *)0x1;
    EXPECT(ADAK_ERR_IO, adak_model_load("/nonexistent/dir/model.gguf", NULL, &m), "adak_model_load");
    CHECK(m == NULL);
    CHECK(strstr(adak_last_error(), "/nonexistent/dir/model.gguf") != NULL);
    EXPECT(ADAK_ERR_IO, adak_model_load("", NULL, &m), "adak_model_load");
    int st = adak_model_load("/", NULL, &m); /* a folder */
    CHECK((st == ADAK_ERR_IO || st == ADAK_ERR_FORMAT) && m == NULL);

    /* A file that is not GGUF, and one that is truncated right after the magic. */
    char path[] = "/tmp/adak-misuse-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        const char junk[] = "this is not a GGUF file, just some text that is long enough";
        CHECK(write(fd, junk, sizeof junk) == (ssize_t)sizeof junk);
        close(fd);
        EXPECT(ADAK_ERR_FORMAT, adak_model_load(path, NULL, &m), "adak_model_load");
        CHECK(m == NULL);
        fd = open(path, O_WRONLY | O_TRUNC);
        const char head[] = {'G', 'G', 'U', 'F', 3, 0, 0, 0, 1, 0};
        CHECK(write(fd, head, sizeof head) == (ssize_t)sizeof head);
        close(fd);
        EXPECT(ADAK_ERR_FORMAT, adak_model_load(path, NULL, &m), "adak_model_load");
        unlink(path);
    }

    adak_model_params p;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_params_init(NULL, sizeof p), "adak_model_params_init");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_params_init(&p, 3), "adak_model_params_init");
    CHECK(adak_model_params_init(&p, sizeof p) == ADAK_OK && p.size == sizeof p &&
          p.weight_type == ADAK_WEIGHT_DEFAULT);
    p.weight_type = 99;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_load("/nonexistent.gguf", &p, &m), "weight_type");
    p.weight_type = ADAK_WEIGHT_DEFAULT;
    CHECK(p.repack_q4_0 == 1); /* since 0.4: repacking is the default */
    p.repack_q4_0 = 2;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_load("/nonexistent.gguf", &p, &m), "repack_q4_0");
    p.repack_q4_0 = 0;
    EXPECT(ADAK_ERR_IO, adak_model_load("/nonexistent.gguf", &p, &m), "adak_model_load");
    p.repack_q4_0 = 1;
    p.size = 0;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_load("/nonexistent.gguf", &p, &m), "adak_model_load");
}

static void null_and_bogus_handles(void) {
    int on_stack = 0;
    adak_model *bogus_model = (adak_model *)&on_stack;
    adak_session *bogus_session = (adak_session *)&on_stack;
    adak_model_free(NULL);
    adak_session_free(NULL);
    adak_model_free(bogus_model);     /* not a live handle: ignored */
    adak_session_free(bogus_session); /* ditto */
    CHECK(on_stack == 0);

    int64_t v = 7;
    double d = 7;
    size_t n = 7;
    adak_token t = 7;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_get_int(NULL, "n_vocab", &v), "adak_model_get_int");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_get_int(bogus_model, "n_vocab", &v), "adak_model_get_int");
    CHECK(v == 7);
    CHECK(adak_model_get_string(NULL, "arch") == NULL);
    CHECK(adak_model_n_vocab(NULL) == ADAK_ERR_INVALID_ARGUMENT);
    CHECK(adak_model_bos(NULL) == -1);
    CHECK(adak_model_eos(bogus_model) == -1);
    CHECK(adak_model_is_eog(NULL, 0) == 0);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_tokenize(NULL, "a", 1, 0, NULL, 0, &n), "adak_model_tokenize");
    char buf[16];
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_token_to_piece(NULL, 0, 0, buf, sizeof buf, &n), "adak_model_token_to_piece");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_detokenize(bogus_model, &t, 1, 0, buf, sizeof buf, &n), "adak_model_detokenize");

    adak_session *s = (adak_session *)0x1;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_create(NULL, NULL, &s), "adak_session_create");
    CHECK(s == NULL);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_create(bogus_model, NULL, &s), "adak_session_create");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_reset(NULL), "adak_session_reset");
    CHECK(adak_session_position(NULL) < 0);
    CHECK(adak_session_position(bogus_session) < 0);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_float(NULL, "temperature", 0.5), "adak_session_set_float");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_get_float(bogus_session, "temperature", &d), "adak_session_get_float");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_int(NULL, "top_k", 1), "adak_session_set_int");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_get_int(NULL, "position", &v), "adak_session_get_int");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_evaluate(NULL, &t, 1, 0), "adak_session_evaluate");
    size_t rows = 9, vocab = 9;
    CHECK(adak_session_logits(NULL, &rows, &vocab) == NULL && rows == 0);
    float f[4];
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_copy_logits(NULL, 0, f, 4), "adak_session_copy_logits");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_sample(bogus_session, &t), "adak_session_sample");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_generate(NULL, &t, 1, 4, NULL, NULL, &n), "adak_session_generate");
    CHECK(n == 0);
    /* Batched decoding (0.6). */
    adak_session *batch[2] = {bogus_session, NULL};
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_batch_decode(NULL, 1, &t, NULL), "adak_batch_decode");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_batch_decode(batch, 1, &t, NULL), "adak_batch_decode");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_batch_decode(batch + 1, 1, &t, NULL), "adak_batch_decode");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_batch_decode(batch, 0, &t, NULL), "adak_batch_decode");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_batch_decode(batch, (size_t)-1, &t, NULL), "adak_batch_decode");

    /* Routing, budget, allocators, stats (0.2). */
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_string(NULL, "routing", "top_p"), "adak_session_set_string");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_get_string(bogus_session, "routing", buf, sizeof buf, &n), "adak_session_get_string");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_flops_budget(NULL, 0.5), "adak_session_set_flops_budget");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_flops_budget(bogus_session, 0.5), "adak_session_set_flops_budget");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_clear_flops_budget(NULL), "adak_session_clear_flops_budget");
    adak_allocator *a = (adak_allocator *)0x1;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_allocator_load(NULL, "x.gguf", &a), "adak_allocator_load");
    CHECK(a == NULL);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_allocator_load(bogus_model, "x.gguf", NULL), "adak_allocator_load");
    a = (adak_allocator *)0x1;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_allocator_identity(bogus_model, &a), "adak_allocator_identity");
    CHECK(a == NULL);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_allocator_save(NULL, "/tmp/x.gguf"), "adak_allocator_save");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_allocator_save((adak_allocator *)&on_stack, "/tmp/x.gguf"), "adak_allocator_save");
    adak_allocator_free(NULL);
    adak_allocator_free((adak_allocator *)&on_stack); /* not live: ignored */
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_allocator(NULL, NULL), "adak_session_set_allocator");
    adak_stats st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_get_stats(NULL, &st), "adak_session_get_stats");
    double dk[4];
    int64_t hk[4];
    int32_t layers[4];
    n = 7;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_get_mean_k_per_layer(NULL, dk, 4, &n), "adak_session_get_mean_k_per_layer");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_get_k_histogram(bogus_session, hk, 4, &n), "adak_session_get_k_histogram");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_reset_stats(NULL), "adak_session_reset_stats");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_get_moe_layers(NULL, layers, 4, &n), "adak_model_get_moe_layers");
    CHECK(n == 7);
    adak_set_log_callback(NULL, NULL); /* no callback installed: nothing to remove, fine */
}

/* Routing misuse on a live MoE model `m` (session `s`); every failure leaves the session as it was. */
static void routing_misuse(adak_model *m, adak_session *s, const char *other_model_path) {
    int64_t v = -1;
    double d = -1;
    char name[32];
    size_t len = 0;
    int64_t n_expert = 0, k_native = 0;
    CHECK(adak_model_get_int(m, "n_expert", &n_expert) == ADAK_OK);
    CHECK(adak_model_get_int(m, "n_expert_used", &k_native) == ADAK_OK);
    if (n_expert == 0) { /* a dense model: static routing only */
        adak_allocator *a = (adak_allocator *)0x1;
        size_t n = 9;
        EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_string(s, "routing", "top_p"), "MoE");
        EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_flops_budget(s, 0.5), "MoE");
        EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_allocator_identity(m, &a), "MoE");
        CHECK(a == NULL);
        CHECK(adak_session_get_k_histogram(s, NULL, 0, &n) == ADAK_OK && n == 0);
        CHECK(adak_model_get_moe_layers(m, NULL, 0, &n) == ADAK_OK && n == 0);
        CHECK(adak_session_set_string(s, "routing", "topk") == ADAK_OK);
        return;
    }
    CHECK(n_expert > 1 && k_native >= 1);

    /* Defaults. */
    CHECK(adak_session_get_string(s, "routing", name, sizeof name, &len) == ADAK_OK && strcmp(name, "topk") == 0 && len == 4);
    CHECK(adak_session_get_int(s, "routing", &v) == ADAK_OK && v == ADAK_ROUTING_TOPK);
    CHECK(adak_session_get_float(s, "flops_budget", &d) == ADAK_OK && d == 0);
    len = 0;
    EXPECT(ADAK_ERR_BUFFER_TOO_SMALL, adak_session_get_string(s, "routing", name, 2, &len), "adak_session_get_string");
    CHECK(len == 4);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_get_string(s, "routing", NULL, 8, &len), "adak_session_get_string");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_get_string(s, "nope", name, sizeof name, &len), "nope");

    /* Policy names and numbers. */
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_string(s, "routing", "top-p"), "top-p");
    CHECK(strstr(adak_last_error(), "top_p") != NULL); /* the message lists the known names */
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_string(s, "routing", ""), "adak_session_set_string");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_string(s, "routing", NULL), "adak_session_set_string");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_string(s, NULL, "topk"), "adak_session_set_string");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_string(s, "policy", "topk"), "policy");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_string(s, "routing", "\xff\xfe"), "adak_session_set_string");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_int(s, "routing", 5), "routing");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_int(s, "routing", -1), "routing");
    /* "adak" needs an allocator first. */
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_string(s, "routing", "adak"), "allocator");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_int(s, "routing", ADAK_ROUTING_ADAK), "allocator");
    CHECK(adak_session_get_int(s, "routing", &v) == ADAK_OK && v == ADAK_ROUTING_TOPK);

    /* Knobs: NaN, infinities, out of range; the value stays. */
    CHECK(adak_session_get_float(s, "routing.p", &d) == ADAK_OK && fabs(d - 0.5) < 1e-6);
    double bad_p[] = {NAN, INFINITY, -INFINITY, 0.0, -0.1, 1.5};
    for (size_t i = 0; i < sizeof bad_p / sizeof bad_p[0]; i++)
        EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_float(s, "routing.p", bad_p[i]), "routing.p");
    CHECK(adak_session_get_float(s, "routing.p", &d) == ADAK_OK && fabs(d - 0.5) < 1e-6);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_float(s, "routing.beta", 1.01), "routing.beta");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_float(s, "routing.beta", NAN), "routing.beta");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_float(s, "routing.tau", 0), "routing.tau");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_float(s, "routing.tau", 65), "routing.tau");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_float(s, "flops_budget", 0.5), "adak_session_set_flops_budget");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_int(s, "routing.k", n_expert + 1), "routing.k");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_int(s, "routing.k", -1), "routing.k");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_int(s, "routing.k_min", 0), "routing.k_min");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_int(s, "routing.k_min", n_expert + 1), "routing.k_min");
    CHECK(adak_session_set_int(s, "routing.k_min", 2) == ADAK_OK);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_int(s, "routing.k_max", 1), "routing.k_max"); /* < k_min */
    CHECK(adak_session_set_int(s, "routing.k_min", 1) == ADAK_OK);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_int(s, "routing.k_max", (int64_t)1 << 40), "routing.k_max");
    CHECK(adak_session_get_int(s, "routing.k_max", &v) == ADAK_OK && v == 0);
    CHECK(adak_session_set_float(s, "routing.p", 0.7) == ADAK_OK);
    CHECK(adak_session_get_float(s, "routing.p", &d) == ADAK_OK && fabs(d - 0.7) < 1e-6);
    CHECK(adak_session_set_string(s, "routing", "top_p") == ADAK_OK);
    CHECK(adak_session_get_int(s, "routing", &v) == ADAK_OK && v == ADAK_ROUTING_TOP_P);
    CHECK(adak_session_set_int(s, "routing", ADAK_ROUTING_SKIP) == ADAK_OK);
    CHECK(adak_session_get_string(s, "routing", name, sizeof name, &len) == ADAK_OK && strcmp(name, "skip") == 0);
    CHECK(adak_session_set_string(s, "routing", "topk") == ADAK_OK);

    /* Budget: NaN, infinities, zero, negative, too large; the session keeps no budget. */
    double bad_budget[] = {NAN, -NAN, INFINITY, -INFINITY, 0.0, -0.0, -0.5, 16.5, 1e300};
    for (size_t i = 0; i < sizeof bad_budget / sizeof bad_budget[0]; i++)
        EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_flops_budget(s, bad_budget[i]), "adak_session_set_flops_budget");
    CHECK(adak_session_get_float(s, "flops_budget", &d) == ADAK_OK && d == 0);
    CHECK(adak_session_set_flops_budget(s, 0.75) == ADAK_OK);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_flops_budget(s, NAN), "adak_session_set_flops_budget");
    CHECK(adak_session_get_float(s, "flops_budget", &d) == ADAK_OK && fabs(d - 0.75) < 1e-6);
    CHECK(adak_session_clear_flops_budget(s) == ADAK_OK);
    CHECK(adak_session_clear_flops_budget(s) == ADAK_OK); /* twice: fine */
    CHECK(adak_session_get_float(s, "flops_budget", &d) == ADAK_OK && d == 0);

    /* Allocators. */
    adak_allocator *a = (adak_allocator *)0x1;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_allocator_load(m, NULL, &a), "adak_allocator_load");
    CHECK(a == NULL);
    EXPECT(ADAK_ERR_IO, adak_allocator_load(m, "/nonexistent/alloc.gguf", &a), "adak_allocator_load");
    CHECK(a == NULL);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_allocator_identity(m, NULL), "adak_allocator_identity");
    CHECK(adak_allocator_identity(m, &a) == ADAK_OK && a != NULL);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_allocator_save(a, NULL), "adak_allocator_save");
    EXPECT(ADAK_ERR_IO, adak_allocator_save(a, "/nonexistent/dir/alloc.gguf"), "adak_allocator_save");
    char path[] = "/tmp/adak-alloc-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    CHECK(adak_allocator_save(a, path) == ADAK_OK);
    adak_allocator *b = NULL;
    CHECK(adak_allocator_load(m, path, &b) == ADAK_OK && b != NULL);
    adak_allocator_free(b);
    /* A model file is not an allocator file. */
    EXPECT(ADAK_ERR_FORMAT, adak_allocator_load(m, other_model_path ? other_model_path : path, &b), "allocator");

    /* Removing the allocator while "adak" is active is refused; freeing the handle is safe. */
    CHECK(adak_session_set_allocator(s, a) == ADAK_OK);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_allocator(s, (adak_allocator *)&v), "adak_session_set_allocator");
    CHECK(adak_session_set_string(s, "routing", "adak") == ADAK_OK);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_allocator(s, NULL), "adak_session_set_allocator");
    adak_allocator_free(a);
    adak_allocator_free(a); /* double free: ignored */
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_allocator_save(a, path), "adak_allocator_save");
    adak_token tok = 0;
    CHECK(adak_session_evaluate(s, &tok, 1, 0) == ADAK_OK); /* the session still has its allocator */

    /* Stats and their sized outputs. */
    adak_stats st;
    memset(&st, 0, sizeof st);
    st.size = 8;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_get_stats(s, &st), "size");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_get_stats(s, NULL), "adak_session_get_stats");
    st.size = sizeof st;
    CHECK(adak_session_get_stats(s, &st) == ADAK_OK && st.tokens >= 1 && st.n_expert == n_expert &&
          st.k_native == k_native && st.n_moe_layers >= 1);
    size_t n = 0;
    double mk[64];
    int64_t hist[64];
    EXPECT(ADAK_ERR_BUFFER_TOO_SMALL, adak_session_get_mean_k_per_layer(s, NULL, 0, &n), "adak_session_get_mean_k_per_layer");
    CHECK(n == (size_t)st.n_moe_layers);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_get_mean_k_per_layer(s, mk, 64, NULL), "adak_session_get_mean_k_per_layer");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_get_mean_k_per_layer(s, NULL, 3, &n), "adak_session_get_mean_k_per_layer");
    EXPECT(ADAK_ERR_BUFFER_TOO_SMALL, adak_session_get_k_histogram(s, hist, (size_t)n_expert - 1, &n), "adak_session_get_k_histogram");
    CHECK(n == (size_t)n_expert);
    CHECK(adak_session_get_k_histogram(s, hist, 64, &n) == ADAK_OK);
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) total += hist[i];
    CHECK(total == st.tokens * st.n_moe_layers);
    int32_t layers[64];
    CHECK(adak_model_get_moe_layers(m, layers, 64, &n) == ADAK_OK && n == (size_t)st.n_moe_layers);
    CHECK(adak_session_reset_stats(s) == ADAK_OK);
    CHECK(adak_session_get_stats(s, &st) == ADAK_OK && st.tokens == 0 && st.expert_fraction == 1.0);
    CHECK(adak_session_set_string(s, "routing", "topk") == ADAK_OK);
    CHECK(adak_session_set_allocator(s, NULL) == ADAK_OK);
    adak_session_reset(s);
    unlink(path);
}

/* An allocator made for one model is refused by another. */
static void allocator_for_another_model(const char *path_a, const char *path_b) {
    adak_model *ma = NULL, *mb = NULL;
    if (adak_model_load(path_a, NULL, &ma) != ADAK_OK || adak_model_load(path_b, NULL, &mb) != ADAK_OK) {
        CHECK(!"cannot load the two models");
        adak_model_free(ma);
        adak_model_free(mb);
        return;
    }
    adak_allocator *a = NULL, *b = (adak_allocator *)0x1;
    char path[] = "/tmp/adak-alloc-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    CHECK(adak_allocator_identity(ma, &a) == ADAK_OK && adak_allocator_save(a, path) == ADAK_OK);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_allocator_load(mb, path, &b), "different model");
    CHECK(b == NULL);
    adak_session *sb = NULL;
    CHECK(adak_session_create(mb, NULL, &sb) == ADAK_OK);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_allocator(sb, a), "adak_session_set_allocator");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_string(sb, "routing", "adak"), "allocator");
    adak_session_free(sb);
    adak_allocator_free(a);
    adak_model_free(ma);
    adak_model_free(mb);
    unlink(path);
}

/* Log and progress callbacks. */
static int log_calls;
static void on_log(void *user_data, int level, const char *message) {
    int *count = user_data;
    if (level >= ADAK_LOG_ERROR && level <= ADAK_LOG_DEBUG && message != NULL) ++*count;
    (void)adak_session_reset(NULL); /* fails inside the callback: dropped, no recursion */
}

struct progress {
    int calls;
    float last;
    int monotonic;
    int cancel_at;
};

static int on_progress(void *user_data, float progress) {
    struct progress *p = user_data;
    if (progress < p->last) p->monotonic = 0;
    p->last = progress;
    return ++p->calls == p->cancel_at;
}

static void callbacks(const char *path) {
    adak_set_log_callback(on_log, &log_calls);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_reset(NULL), "adak_session_reset");
    CHECK(log_calls == 1); /* the failure is logged at debug level */

    adak_model_params p;
    CHECK(adak_model_params_init(&p, sizeof p) == ADAK_OK && p.progress_callback == NULL &&
          p.progress_user_data == NULL);
    struct progress pr = {0, 0, 1, 0};
    p.progress_callback = on_progress;
    p.progress_user_data = &pr;
    adak_model *m = NULL;
    int before = log_calls;
    CHECK(adak_model_load(path, &p, &m) == ADAK_OK && m != NULL);
    CHECK(pr.calls >= 2 && pr.last == 1.0f && pr.monotonic);
    CHECK(log_calls > before); /* the load logs what it found */
    adak_model_free(m);

    struct progress cancel = {0, 0, 1, 2};
    p.progress_user_data = &cancel;
    m = (adak_model *)0x1;
    EXPECT(ADAK_ERR_CANCELLED, adak_model_load(path, &p, &m), "cancelled");
    CHECK(m == NULL && cancel.calls == 2);

    /* An 8-byte (0.1) params struct has no callback: the fields beyond it are not read. */
    adak_model_params old;
    memset(&old, 0xff, sizeof old);
    CHECK(adak_model_params_init(&old, 8) == ADAK_OK);
    CHECK(adak_model_load(path, &old, &m) == ADAK_OK);
    adak_model_free(m);
    adak_set_log_callback(NULL, NULL);
    before = log_calls;
    adak_session_reset(NULL);
    CHECK(log_calls == before);
}

static void with_model(const char *path) {
    adak_model *m = NULL;
    int st = adak_model_load(path, NULL, &m);
    CHECK(st == ADAK_OK && m != NULL);
    if (st != ADAK_OK) {
        fprintf(stderr, "cannot load %s: %s\n", path, adak_last_error());
        return;
    }
    int32_t n_vocab = adak_model_n_vocab(m);
    CHECK(n_vocab > 0);
    int64_t v = -5;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_get_int(m, "no_such_key", &v), "no_such_key");
    CHECK(v == -5);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_get_int(m, NULL, &v), "adak_model_get_int");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_get_int(m, "n_vocab", NULL), "adak_model_get_int");
    CHECK(adak_model_get_int(m, "n_vocab", &v) == ADAK_OK && v == n_vocab);
    CHECK(adak_model_get_string(m, "arch") != NULL && adak_model_get_string(m, "arch")[0] != 0);
    CHECK(adak_model_get_string(m, "nope") == NULL);
    CHECK(adak_model_is_eog(m, -1) == 0 && adak_model_is_eog(m, n_vocab) == 0);

    /* Tokenizer. */
    const char text[] = "Hello world, hello libadak!";
    size_t n = 0;
    adak_token toks[64];
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_tokenize(m, text, strlen(text), 0, toks, 64, NULL), "adak_model_tokenize");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_tokenize(m, NULL, 5, 0, toks, 64, &n), "adak_model_tokenize");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_tokenize(m, text, strlen(text), 0, NULL, 64, &n), "adak_model_tokenize");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_tokenize(m, text, strlen(text), 0x80, toks, 64, &n), "flags");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_tokenize(m, text, (size_t)-1, 0, toks, 64, &n), "adak_model_tokenize");
    n = 0;
    EXPECT(ADAK_ERR_BUFFER_TOO_SMALL, adak_model_tokenize(m, text, strlen(text), 0, NULL, 0, &n), "adak_model_tokenize");
    CHECK(n > 0 && n <= 64);
    size_t needed = n;
    toks[0] = -77;
    EXPECT(ADAK_ERR_BUFFER_TOO_SMALL, adak_model_tokenize(m, text, strlen(text), 0, toks, needed - 1, &n), "adak_model_tokenize");
    CHECK(n == needed && toks[0] == -77);
    CHECK(adak_model_tokenize(m, text, strlen(text), 0, toks, 64, &n) == ADAK_OK && n == needed);
    size_t none = 9;
    CHECK(adak_model_tokenize(m, NULL, 0, 0, toks, 64, &none) == ADAK_OK && none == 0);

    char buf[256];
    size_t len = 0;
    adak_token bad[] = {-1, n_vocab, 0x7fffffff, (adak_token)0x80000000};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_token_to_piece(m, bad[i], 0, buf, sizeof buf, &len), "adak_model_token_to_piece");
        EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_detokenize(m, &bad[i], 1, 0, buf, sizeof buf, &len), "adak_model_detokenize");
    }
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_token_to_piece(m, toks[0], 0, NULL, 8, &len), "adak_model_token_to_piece");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_token_to_piece(m, toks[0], 0, buf, sizeof buf, NULL), "adak_model_token_to_piece");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_detokenize(m, NULL, 3, 0, buf, sizeof buf, &len), "adak_model_detokenize");
    CHECK(adak_model_detokenize(m, toks, n, 0, buf, sizeof buf, &len) == ADAK_OK);
    CHECK(len > 0 && len < sizeof buf && buf[len] == 0);
    size_t full = len;
    EXPECT(ADAK_ERR_BUFFER_TOO_SMALL, adak_model_detokenize(m, toks, n, 0, buf, 3, &len), "adak_model_detokenize");
    CHECK(len == full);
    /* Exactly the length fits (no room for the NUL): ok, not terminated. */
    CHECK(adak_model_detokenize(m, toks, n, 0, buf, full, &len) == ADAK_OK && len == full);

    /* Session parameters. */
    adak_session_params sp;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_params_init(&sp, 4), "adak_session_params_init");
    CHECK(adak_session_params_init(&sp, sizeof sp) == ADAK_OK && sp.size == sizeof sp);
    adak_session *s = (adak_session *)0x1;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_create(m, &sp, NULL), "adak_session_create");
    sp.n_ctx = -1;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_create(m, &sp, &s), "n_ctx");
    CHECK(s == NULL);
    sp.n_ctx = 16;
    sp.n_threads = -3;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_create(m, &sp, &s), "n_threads");
    sp.n_threads = 1;
    sp.n_batch = -1;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_create(m, &sp, &s), "n_batch");
    sp.n_batch = 0;
    CHECK(sp.kv_type == ADAK_KV_F32); /* since 0.4 */
    sp.kv_type = 7;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_create(m, &sp, &s), "kv_type");
    CHECK(s == NULL);
    sp.kv_type = ADAK_KV_F16;
    CHECK(adak_session_create(m, &sp, &s) == ADAK_OK && s != NULL);
    adak_session_free(s);
    s = (adak_session *)0x1;
    sp.kv_type = ADAK_KV_F32;
    sp.size = 2;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_create(m, &sp, &s), "adak_session_create");
    sp.size = sizeof sp;
    st = adak_session_create(m, &sp, &s);
    CHECK(st == ADAK_OK && s != NULL);
    if (st != ADAK_OK) {
        adak_model_free(m);
        return;
    }

    /* Settings. */
    double d = -1;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_float(s, "temperature", NAN), "temperature");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_float(s, "temperature", INFINITY), "temperature");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_float(s, "temperature", -0.5), "temperature");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_float(s, "top_p", 1.5), "top_p");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_float(s, "min_p", -0.1), "min_p");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_float(s, "repeat_penalty", 0), "repeat_penalty");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_float(s, "bogus", 1), "bogus");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_float(s, NULL, 1), "adak_session_set_float");
    CHECK(adak_session_get_float(s, "temperature", &d) == ADAK_OK && fabs(d - 0.8) < 1e-6);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_get_float(s, "temperature", NULL), "adak_session_get_float");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_int(s, "top_k", -1), "top_k");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_int(s, "seed", -1), "seed");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_int(s, "position", 3), "read-only");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_set_int(s, "temperature", 1), "temperature");
    CHECK(adak_session_set_float(s, "temperature", 0) == ADAK_OK);
    CHECK(adak_session_set_int(s, "top_k", 5) == ADAK_OK);
    CHECK(adak_session_get_int(s, "top_k", &v) == ADAK_OK && v == 5);
    CHECK(adak_session_get_int(s, "n_ctx", &v) == ADAK_OK && v == 16);
    CHECK(adak_session_get_int(s, "logit_rows", &v) == ADAK_OK && v == 0);

    /* Nothing evaluated yet. */
    adak_token t = -9;
    size_t rows = 5;
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    CHECK(adak_session_logits(s, &rows, NULL) == NULL && rows == 0);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_sample(s, &t), "adak_session_sample");
    CHECK(t == -9);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_copy_logits(s, 0, logits, (size_t)n_vocab), "adak_session_copy_logits");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_generate(s, NULL, 0, 4, NULL, NULL, NULL), "empty");

    /* Evaluation errors leave the session as it was. */
    adak_token prompt[17];
    for (int i = 0; i < 17; i++) prompt[i] = toks[i % n];
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_evaluate(s, NULL, 3, 0), "adak_session_evaluate");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_evaluate(s, prompt, 0, 0), "adak_session_evaluate");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_evaluate(s, prompt, 2, 0x10), "flags");
    adak_token with_bad[3] = {prompt[0], n_vocab, prompt[1]};
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_evaluate(s, with_bad, 3, 0), "tokens[1]");
    with_bad[1] = -1;
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_evaluate(s, with_bad, 3, 0), "tokens[1]");
    EXPECT(ADAK_ERR_CONTEXT_FULL, adak_session_evaluate(s, prompt, 17, 0), "adak_session_evaluate");
    CHECK(adak_session_position(s) == 0);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_generate(s, with_bad, 3, 2, NULL, NULL, NULL), "prompt[1]");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_generate(s, prompt, 2, -1, NULL, NULL, NULL), "max_tokens");
    CHECK(adak_session_position(s) == 0);

    /* A good evaluation, then misuse of its results. */
    CHECK(adak_session_evaluate(s, prompt, 4, ADAK_EVALUATE_ALL_LOGITS) == ADAK_OK);
    CHECK(adak_session_position(s) == 4);
    size_t nv = 0;
    const float *lp = adak_session_logits(s, &rows, &nv);
    CHECK(lp != NULL && rows == 4 && nv == (size_t)n_vocab);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_copy_logits(s, 4, logits, (size_t)n_vocab), "row");
    EXPECT(ADAK_ERR_BUFFER_TOO_SMALL, adak_session_copy_logits(s, 0, logits, (size_t)n_vocab - 1), "adak_session_copy_logits");
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_copy_logits(s, 0, NULL, (size_t)n_vocab), "adak_session_copy_logits");
    CHECK(adak_session_copy_logits(s, 3, logits, (size_t)n_vocab) == ADAK_OK);
    CHECK(lp != NULL && memcmp(lp + 3 * (size_t)n_vocab, logits, (size_t)n_vocab * sizeof *logits) == 0);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_sample(s, NULL), "adak_session_sample");
    CHECK(adak_session_sample(s, &t) == ADAK_OK && t >= 0 && t < n_vocab);
    EXPECT(ADAK_ERR_CONTEXT_FULL, adak_session_evaluate(s, prompt, 13, 0), "adak_session_evaluate");
    CHECK(adak_session_position(s) == 4);

    /* The callback stops generation after the first token: ok, one token. */
    int calls = 0;
    size_t generated = 99;
    CHECK(adak_session_generate(s, NULL, 0, 8, stop_after_first, &calls, &generated) == ADAK_OK);
    CHECK(generated <= 1 && calls == (int)generated);

    struct reentry r = {s, {0, 0, 0, 0}, -1};
    int64_t pos_before = adak_session_position(s);
    CHECK(adak_session_generate(s, NULL, 0, 4, reenter, &r, &generated) == ADAK_OK);
    if (generated == 1) {
        for (int i = 0; i < 4; i++) CHECK(r.statuses[i] == ADAK_ERR_INVALID_ARGUMENT);
        CHECK(strstr(adak_last_error(), "callback") != NULL);
        CHECK(r.position >= pos_before);
    }

    CHECK(adak_session_reset(s) == ADAK_OK && adak_session_position(s) == 0);
    CHECK(adak_session_logits(s, &rows, NULL) == NULL && rows == 0);

    routing_misuse(m, s, path);

    /* Freed handles are reported, not dereferenced; a session outlives its model handle. */
    adak_model_free(m);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_model_get_int(m, "n_vocab", &v), "adak_model_get_int");
    CHECK(adak_session_evaluate(s, prompt, 2, 0) == ADAK_OK);
    adak_model_free(m); /* double free: ignored */
    adak_session_free(s);
    EXPECT(ADAK_ERR_INVALID_ARGUMENT, adak_session_reset(s), "adak_session_reset");
    adak_session_free(s);
    free(logits);
}

int main(int argc, char **argv) {
    if (adak_version_number() / 10000 != ADAK_VERSION_MAJOR) {
        fprintf(stderr, "libadak %s does not match adak.h %s\n", adak_version(), ADAK_VERSION_STRING);
        return 1;
    }
    library_functions();
    bad_loads();
    null_and_bogus_handles();
    if (argc > 1) {
        with_model(argv[1]);
        callbacks(argv[1]);
    }
    if (argc > 2) allocator_for_another_model(argv[1], argv[2]);
    printf("misuse: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

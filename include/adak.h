/*
 * adak.h — the C API of libadak: Mixture-of-Experts LLM inference on the CPU
 * from GGUF files, with a per-token, per-layer adaptive number of experts.
 *
 * This header is the contract. Every function the library exports is declared
 * here, and nothing else is exported (a test checks both directions).
 *
 * ---------------------------------------------------------------------------
 * Conventions
 * ---------------------------------------------------------------------------
 * Status codes. Every fallible function returns an `int` status: ADAK_OK (0)
 *   on success, a negative ADAK_ERR_* code on failure. adak_status_string()
 *   names a code; adak_last_error() says what exactly went wrong.
 *
 * Failed calls change nothing. Unless a function says otherwise, a call that
 *   fails leaves its handles exactly as they were before the call, and writes
 *   nothing to its output parameters except the documented "needed size"
 *   outputs of sized buffers.
 *
 * Sized outputs. Functions that fill a caller buffer take (buffer, capacity)
 *   and a `size_t *` that always receives the needed count (in elements for
 *   token arrays, in bytes for text, not counting a terminating NUL). When the
 *   capacity is too small they return ADAK_ERR_BUFFER_TOO_SMALL and write
 *   nothing to the buffer; passing (NULL, 0) is the way to ask for the size.
 *   Text outputs are byte strings (UTF-8, but a single token's piece can be an
 *   incomplete UTF-8 sequence); when the capacity exceeds the length by at
 *   least one byte a terminating NUL is appended for convenience.
 *
 * Bad input never aborts the host. NULL handles, NULL pointers, out-of-range
 *   values, NaN, unknown keys and invalid token ids return
 *   ADAK_ERR_INVALID_ARGUMENT. Handles are checked against the set of live
 *   handles, so a freed or made-up handle is reported as invalid instead of
 *   being dereferenced.
 *
 * Threads. An adak_model is immutable once loaded: every function taking a
 *   `const adak_model *` may be called from any number of threads at once. An
 *   adak_session is used by one thread at a time (the caller serialises calls
 *   on the same session); different sessions, even of the same model, may run
 *   on different threads at the same time. The last-error message is kept per
 *   thread. The global functions (version, status strings) are thread-safe.
 *
 * Ownership. Objects created by adak_*_load / adak_*_create are owned by the
 *   caller and released with the matching adak_*_free; destructors accept
 *   NULL. A session keeps its model alive: adak_model_free may be called while
 *   sessions of that model still exist; the model's memory is released when
 *   the last of them is freed. Strings returned as `const char *` are owned by
 *   the library; their lifetime is stated per function.
 *
 * Getters. Getters of settings and properties return a status and write
 *   the value to an out parameter (keyed getters, adak_session_get_routing,
 *   adak_session_get_sampling, adak_session_get_stats). The few direct
 *   getters that return the value itself (adak_model_n_vocab, adak_model_bos,
 *   adak_model_eos, adak_session_position) return a negative number for a
 *   NULL/invalid handle (adak_model_bos/eos also when the model has no such
 *   token); adak_model_get_string returns NULL and adak_model_is_eog 0. Every
 *   failure is explained by adak_last_error().
 *
 * Parameter structs. Structs that cross the ABI start with `uint32_t size`,
 *   the sizeof the caller compiled; fields are only ever appended, so a
 *   library reads just the fields a caller's size covers (defaults for the
 *   rest) and writes just those into output structs. Initialise input structs
 *   with their adak_*_params_init(&p, sizeof p), then change fields.
 *
 * Versioning. The ADAK_VERSION_* macros describe this header;
 *   adak_version_number() describes the loaded library. The shared library's
 *   SONAME is libadak.so.<MAJOR>: a program built against one major version
 *   must not run against another (compare ADAK_VERSION_MAJOR with
 *   adak_version_number() / 10000 at start-up). CHANGELOG.md lists API changes.
 */
#ifndef ADAK_H
#define ADAK_H

#include <stddef.h>
#include <stdint.h>

#define ADAK_VERSION_MAJOR 0
#define ADAK_VERSION_MINOR 6
#define ADAK_VERSION_PATCH 0
/* MAJOR * 10000 + MINOR * 100 + PATCH, e.g. 300 for 0.3.0. */
#define ADAK_VERSION_NUMBER \
    (ADAK_VERSION_MAJOR * 10000 + ADAK_VERSION_MINOR * 100 + ADAK_VERSION_PATCH)
#define ADAK_VERSION_STRING "0.6.0"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Types
 * ------------------------------------------------------------------------- */

/** A loaded model: weights, configuration and tokenizer. Immutable, shareable. */
typedef struct adak_model adak_model;
/** A decoding session: KV cache, logits, sampler state. One thread at a time. */
typedef struct adak_session adak_session;
/** A token id, 0 <= id < n_vocab. */
typedef int32_t adak_token;

/** Status codes. 0 is success; every error is negative. */
enum adak_status {
    ADAK_OK = 0,
    ADAK_ERR_INVALID_ARGUMENT = -1, /* NULL/freed handle, bad pointer, value out of range, unknown key */
    ADAK_ERR_IO = -2,               /* a file could not be opened, read or mapped */
    ADAK_ERR_FORMAT = -3,           /* a file is malformed (truncated, inconsistent) */
    ADAK_ERR_UNSUPPORTED = -4,      /* well-formed but not supported (architecture, tensor type) */
    ADAK_ERR_OUT_OF_MEMORY = -5,    /* an allocation failed or a size limit was exceeded */
    ADAK_ERR_CONTEXT_FULL = -6,     /* the session's context window has no room for the tokens */
    ADAK_ERR_CANCELLED = -7,        /* the operation was stopped by a callback */
    ADAK_ERR_INTERNAL = -8,         /* a bug in libadak; the message says where */
    ADAK_ERR_BUFFER_TOO_SMALL = -9  /* a caller buffer is too small; the needed size was reported */
};

/* ---------------------------------------------------------------------------
 * Library
 * ------------------------------------------------------------------------- */

/** The library's version as "MAJOR.MINOR.PATCH". Static string; thread-safe. */
const char *adak_version(void);

/** The library's version as MAJOR * 10000 + MINOR * 100 + PATCH. Thread-safe. */
int32_t adak_version_number(void);

/**
 * A short static English name for a status code ("ok", "invalid argument",
 * ...). Unknown codes give "unknown status". Never NULL; thread-safe.
 */
const char *adak_status_string(int status);

/**
 * The message of the most recent failed adak_* call on the calling thread, or
 * "" if no call on this thread has failed yet. Successful calls do not clear
 * it. Never NULL. The string stays valid until the next failing adak_* call on
 * the same thread (copy it if you need it longer).
 */
const char *adak_last_error(void);

/* ---------------------------------------------------------------------------
 * Model
 * ------------------------------------------------------------------------- */

/**
 * Weight format the loader converts to, for tensors whose GGUF type the
 * kernels don't compute with directly (tensors already in a native format are
 * used as stored).
 */
enum adak_weight_type {
    ADAK_WEIGHT_DEFAULT = 0, /* the library's choice (currently Q8_0) */
    ADAK_WEIGHT_F32 = 1,
    ADAK_WEIGHT_Q8_0 = 2,
    ADAK_WEIGHT_Q4_0 = 3
};

/**
 * Progress of a long operation (model load): `progress` goes from 0 to 1 and
 * the last call reports 1. Return 0 to continue, nonzero to cancel: the
 * operation then fails with ADAK_ERR_CANCELLED and leaves nothing behind.
 * Called on the thread running the operation; it must not call libadak
 * functions other than adak_last_error, adak_version* and
 * adak_status_string.
 */
typedef int (*adak_progress_callback)(void *user_data, float progress);

/**
 * Load-time parameters. Fields are only ever appended; `size` tells the
 * library which fields the caller knows. Always initialise with
 * adak_model_params_init(&p, sizeof p), then change fields.
 */
typedef struct adak_model_params {
    uint32_t size;        /* sizeof(adak_model_params) as the caller compiled it */
    int32_t weight_type;  /* enum adak_weight_type */
    /* Since 0.2 (size >= 24): called once per layer while the weights are prepared
       (NULL: no reports). */
    adak_progress_callback progress_callback;
    void *progress_user_data;  /* passed to progress_callback */
    /* Since 0.4 (size >= 28): 1 (the default) repacks Q4_0 weight matrices
       into groups of 8 rows for the SIMD kernels (decode and prefill much
       faster; the sums run in the order of llama.cpp's repacked Q4_0 path);
       0 keeps the GGUF row layout, whose results equal llama.cpp's plain
       (non-repacked) x86 path. Other values are ADAK_ERR_INVALID_ARGUMENT.
       Q4_K, IQ4_NL and MXFP4 matrices are repacked likewise, IQ4_XS into
       groups of 16 rows (same results either way). */
    int32_t repack_q4_0;
} adak_model_params;

/**
 * Fills `params` (of `size` bytes, normally sizeof(adak_model_params)) with
 * the defaults and sets params->size = size.
 * Returns ADAK_OK, or ADAK_ERR_INVALID_ARGUMENT if params is NULL or size is
 * smaller than the first version of the struct (8 bytes); then nothing is
 * written.
 */
int adak_model_params_init(adak_model_params *params, size_t size);

/**
 * Loads a GGUF model file. `params` may be NULL for the defaults.
 * On success *out receives a new model owned by the caller (free it with
 * adak_model_free). On failure *out is set to NULL (when `out` itself is not
 * NULL) and the code tells why: ADAK_ERR_IO (cannot open/read), ADAK_ERR_FORMAT
 * (malformed file), ADAK_ERR_UNSUPPORTED (architecture, tensor type or
 * tokenizer not supported), ADAK_ERR_OUT_OF_MEMORY, ADAK_ERR_INVALID_ARGUMENT
 * (NULL path/out, bad params), ADAK_ERR_CANCELLED (params->progress_callback
 * returned nonzero). Thread-safe.
 */
int adak_model_load(const char *path, const adak_model_params *params, adak_model **out);

/**
 * Releases the caller's reference to a model. Sessions created from it stay
 * valid; the memory is released when the last of them is freed too. NULL is
 * accepted and ignored, as is a handle that is not live. After this call the
 * handle must not be used again.
 */
void adak_model_free(adak_model *model);

/**
 * Reads an integer property of the model into *value. Keys:
 *   "n_layer", "n_embd", "n_head", "n_head_kv", "head_dim", "n_ff",
 *   "n_expert" (0 for a dense model), "n_expert_used", "n_vocab",
 *   "n_ctx_train" (the context length the model was trained with),
 *   "bos", "eos" (token ids, -1 when the model has none),
 *   "add_bos", "add_eos" (0 or 1: whether tokenization with
 *   ADAK_TOKENIZE_ADD_SPECIAL adds them).
 * Returns ADAK_OK, or ADAK_ERR_INVALID_ARGUMENT (NULL/invalid model, NULL key
 * or value, unknown key; *value is then unchanged). Thread-safe.
 */
int adak_model_get_int(const adak_model *model, const char *key, int64_t *value);

/**
 * Reads a text property of the model. Keys: "arch" (e.g. "llama",
 * "qwen2moe"), "name" (general.name, may be ""), "chat_template" (NULL when
 * the file has none). Returns a NUL-terminated string owned by the model,
 * valid until the model is freed; NULL for a NULL/invalid model or an unknown
 * key (then adak_last_error() says which). Thread-safe.
 */
const char *adak_model_get_string(const adak_model *model, const char *key);

/** Vocabulary size, or a negative status for a NULL/invalid model. Thread-safe. */
int32_t adak_model_n_vocab(const adak_model *model);

/** Beginning-of-sequence token, or -1 when the model has none or model is invalid. */
adak_token adak_model_bos(const adak_model *model);

/** End-of-sequence token, or -1 when the model has none or model is invalid. */
adak_token adak_model_eos(const adak_model *model);

/**
 * 1 if `token` ends generation (end-of-sequence, end-of-turn and similar
 * tokens the model declares), 0 otherwise, including for invalid tokens or an
 * invalid model.
 */
int adak_model_is_eog(const adak_model *model, adak_token token);

/* ---------------------------------------------------------------------------
 * Tokenizer (part of the model; all thread-safe)
 * ------------------------------------------------------------------------- */

/** Flags of adak_model_tokenize. */
enum adak_tokenize_flags {
    ADAK_TOKENIZE_ADD_SPECIAL = 1,   /* add BOS/EOS as the model's metadata asks */
    ADAK_TOKENIZE_PARSE_SPECIAL = 2  /* recognise special tokens ("<|im_start|>") in the text */
};

/**
 * Tokenizes `len` bytes of UTF-8 `text` (need not be NUL-terminated; may be
 * NULL when len is 0). `flags` is a combination of enum adak_tokenize_flags.
 * *n_tokens always receives the number of tokens (on ADAK_OK and on
 * ADAK_ERR_BUFFER_TOO_SMALL). When `capacity` < that number, returns
 * ADAK_ERR_BUFFER_TOO_SMALL and writes nothing to `tokens` (call with
 * tokens = NULL, capacity = 0 to ask for the size). Other errors:
 * ADAK_ERR_INVALID_ARGUMENT (NULL model/n_tokens, NULL text with len > 0,
 * NULL tokens with capacity > 0, unknown flags).
 */
int adak_model_tokenize(const adak_model *model, const char *text, size_t len, uint32_t flags,
                        adak_token *tokens, size_t capacity, size_t *n_tokens);

/** Flags of adak_model_token_to_piece. */
enum adak_piece_flags {
    ADAK_PIECE_SPECIAL = 1  /* render special/control tokens as their text instead of "" */
};

/**
 * The text piece (bytes) of one token. *len always receives its length in
 * bytes. Buffer rules as for all sized text outputs (see top of file).
 * Returns ADAK_OK, ADAK_ERR_BUFFER_TOO_SMALL, or ADAK_ERR_INVALID_ARGUMENT
 * (NULL model/len, token outside [0, n_vocab), NULL buf with capacity > 0,
 * unknown flags).
 */
int adak_model_token_to_piece(const adak_model *model, adak_token token, uint32_t flags,
                              char *buf, size_t capacity, size_t *len);

/** Flags of adak_model_detokenize. */
enum adak_detokenize_flags {
    ADAK_DETOKENIZE_REMOVE_SPECIAL = 1,  /* drop a leading BOS / trailing EOS the model adds */
    ADAK_DETOKENIZE_UNPARSE_SPECIAL = 2  /* render special tokens as their text */
};

/**
 * Turns `n` tokens back into text. *len always receives the byte length.
 * Buffer rules as for all sized text outputs. Returns ADAK_OK,
 * ADAK_ERR_BUFFER_TOO_SMALL, or ADAK_ERR_INVALID_ARGUMENT (NULL model/len,
 * NULL tokens with n > 0, any token outside [0, n_vocab), NULL buf with
 * capacity > 0, unknown flags).
 */
int adak_model_detokenize(const adak_model *model, const adak_token *tokens, size_t n,
                          uint32_t flags, char *buf, size_t capacity, size_t *len);

/* ---------------------------------------------------------------------------
 * Session
 * ------------------------------------------------------------------------- */

/**
 * KV cache element types (adak_session_params.kv_type, since 0.4).
 * ADAK_KV_F32 (the default) reproduces llama.cpp with an f32 cache bit for bit;
 * ADAK_KV_F16 is llama.cpp's own default (type_k = type_v = f16): half the
 * memory, and half the bytes attention reads per decoded token.
 */
enum adak_kv_type {
    ADAK_KV_F32 = 0,
    ADAK_KV_F16 = 1,
};

/**
 * Session creation parameters. Fields are only ever appended; `size` tells
 * the library which fields the caller knows. Always initialise with
 * adak_session_params_init(&p, sizeof p), then change fields. Sampling
 * settings are not here: they are keyed settings (adak_session_set_float /
 * adak_session_set_int) that can change at any time.
 */
typedef struct adak_session_params {
    uint32_t size;      /* sizeof(adak_session_params) as the caller compiled it */
    int32_t n_ctx;      /* context window in tokens; 0: min(model's n_ctx_train, 4096) */
    int32_t n_threads;  /* compute threads; 0: all cores */
    int32_t n_batch;    /* prompt tokens evaluated per forward pass; 0: 512 */
    uint64_t seed;      /* sampler seed; default 0xADA */
    /* Since 0.4 (size >= 28): element type of the KV cache, enum adak_kv_type. */
    int32_t kv_type;
} adak_session_params;

/**
 * Fills `params` (of `size` bytes, normally sizeof(adak_session_params)) with
 * the defaults and sets params->size = size. Returns ADAK_OK, or
 * ADAK_ERR_INVALID_ARGUMENT if params is NULL or size is smaller than the
 * first version of the struct (24 bytes); then nothing is written.
 */
int adak_session_params_init(adak_session_params *params, size_t size);

/**
 * Creates a session on `model` (`params` may be NULL for the defaults). On
 * success *out receives a new session owned by the caller (free it with
 * adak_session_free); the session keeps the model alive. On failure *out is
 * set to NULL (when `out` is not NULL). Errors: ADAK_ERR_INVALID_ARGUMENT
 * (NULL/invalid model or out; n_ctx, n_threads or n_batch negative or too
 * large; kv_type not an adak_kv_type), ADAK_ERR_OUT_OF_MEMORY (the KV cache cannot be allocated).
 * Thread-safe with respect to the model.
 */
int adak_session_create(const adak_model *model, const adak_session_params *params,
                        adak_session **out);

/** Frees a session. NULL and non-live handles are ignored. */
void adak_session_free(adak_session *session);

/**
 * Empties the context (position becomes 0), drops the logits, any pending
 * token of adak_session_generate and the sampler's token history, and restarts
 * the sampler's random sequence from the current "seed". Settings are kept.
 * Returns ADAK_OK or ADAK_ERR_INVALID_ARGUMENT (NULL/invalid session).
 */
int adak_session_reset(adak_session *session);

/**
 * Number of tokens in the session's context, or a negative status for a
 * NULL/invalid session.
 */
int64_t adak_session_position(const adak_session *session);

/**
 * Deprecated since 0.5 (kept through 0.6): use adak_session_set_sampling and
 * adak_session_set_routing, which change all fields at once. Changes one
 * floating-point setting through the same validation. Keys and ranges:
 *   "temperature"    >= 0, finite; 0 (or less than 1e-6) means greedy
 *   "top_p"          (0, 1]; 1 disables (sampling; see "routing.p" for routing)
 *   "min_p"          [0, 1]; 0 disables
 *   "repeat_penalty" > 0, finite; 1 disables
 * and the routing keys of the "Routing" section below ("routing.p",
 * "routing.beta", "routing.tau"). The new value applies from the next sample
 * (sampling keys) or the next evaluated token (routing keys). Returns ADAK_OK or
 * ADAK_ERR_INVALID_ARGUMENT (NULL/invalid session, NULL/unknown key, NaN,
 * out of range); the setting is then unchanged.
 */
int adak_session_set_float(adak_session *session, const char *key, double value);

/**
 * Reads a floating-point setting (the keys of adak_session_set_float, and the
 * read-only "flops_budget": the budget's fraction, 0 when there is none) into
 * *value. Returns ADAK_OK or ADAK_ERR_INVALID_ARGUMENT (*value unchanged).
 */
int adak_session_get_float(const adak_session *session, const char *key, double *value);

/**
 * Deprecated since 0.5 (kept through 0.6): use adak_session_set_sampling and
 * adak_session_set_routing. Changes one integer setting. Keys and ranges:
 *   "top_k"          >= 0; 0 disables
 *   "repeat_last_n"  [0, 2^20]; tokens of history the repeat penalty looks at
 *   "seed"           >= 0; the random sequence restarts from it at the next
 *                    adak_session_reset (adak_session_params.seed seeds a new
 *                    session)
 * and the routing keys of the "Routing" section below ("routing",
 * "routing.k", "routing.k_min", "routing.k_max").
 * Returns ADAK_OK or ADAK_ERR_INVALID_ARGUMENT (setting unchanged).
 */
int adak_session_set_int(adak_session *session, const char *key, int64_t value);

/**
 * Reads an integer setting or property into *value: the keys of
 * adak_session_set_int, and the read-only "position", "n_ctx", "n_threads",
 * "n_batch", "logit_rows" (rows of logits available, 0 before the first
 * evaluation). Returns ADAK_OK or ADAK_ERR_INVALID_ARGUMENT (*value unchanged).
 */
int adak_session_get_int(const adak_session *session, const char *key, int64_t *value);

/**
 * Sampling settings (since 0.5), changed as one unit with
 * adak_session_set_sampling. Defaults (adak_sampling_params_init), as
 * llama.cpp's:
 *   temperature     0.8   >= 0, finite; 0 (or below 1e-6) means greedy
 *   top_k           40    >= 0; 0 disables
 *   top_p           0.95  (0, 1]; 1 disables
 *   min_p           0.05  [0, 1]; 0 disables
 *   repeat_penalty  1     > 0, finite; 1 disables
 *   repeat_last_n   64    [0, 2^20]: tokens of history the penalty looks at
 *   seed            0xADA the sampler's random sequence restarts from it at the
 *                         next adak_session_reset (adak_session_params.seed
 *                         seeds a new session)
 */
typedef struct adak_sampling_params {
    uint32_t size;          /* sizeof(adak_sampling_params) as the caller compiled it */
    float temperature;
    int32_t top_k;
    float top_p;
    float min_p;
    float repeat_penalty;
    int32_t repeat_last_n;
    uint64_t seed;
} adak_sampling_params;

/**
 * Fills `params` (of `size` bytes, normally sizeof(adak_sampling_params))
 * with the defaults above and sets params->size = size. Returns ADAK_OK, or
 * ADAK_ERR_INVALID_ARGUMENT if params is NULL or size is smaller than this
 * first version of the struct (40 bytes); then nothing is written.
 */
int adak_sampling_params_init(adak_sampling_params *params, size_t size);

/**
 * Replaces the session's sampling settings with `params` (every field the
 * caller's size covers; the defaults for the rest), validated as a whole:
 * either all of them apply, from the next sample, or none does. Returns
 * ADAK_OK or ADAK_ERR_INVALID_ARGUMENT (NULL/invalid session, NULL params, a
 * bad size, a value out of range: adak_last_error() names the field; the
 * session is then unchanged). Refused from the session's own token callback.
 */
int adak_session_set_sampling(adak_session *session, const adak_sampling_params *params);

/**
 * Writes the session's sampling settings into *out, whose `size` the caller
 * set (a library of a later version writes only the fields that fit).
 * Returns ADAK_OK or ADAK_ERR_INVALID_ARGUMENT (NULL/invalid session, NULL
 * out, out->size smaller than the first version; nothing is written then).
 */
int adak_session_get_sampling(const adak_session *session, adak_sampling_params *out);

/** Flags of adak_session_evaluate. */
enum adak_evaluate_flags {
    ADAK_EVALUATE_ALL_LOGITS = 1  /* keep one row of logits per token, not only the last */
};

/**
 * Appends `n` tokens (n >= 1) to the context and runs the model over them
 * (prompt prefill in batches of n_batch). Afterwards the logits of the last
 * token (or of every token, with ADAK_EVALUATE_ALL_LOGITS) can be read and
 * sampled from. Evaluated tokens enter the repeat-penalty history. A token
 * left pending by adak_session_generate is evaluated first (it counts
 * towards the context; it gets no logits row). Errors: ADAK_ERR_INVALID_ARGUMENT (NULL/invalid session, NULL
 * tokens, n == 0, a token outside [0, n_vocab), unknown flags),
 * ADAK_ERR_CONTEXT_FULL (position + n > n_ctx), ADAK_ERR_OUT_OF_MEMORY. On
 * any error the session is unchanged (position, KV cache, logits).
 */
int adak_session_evaluate(adak_session *session, const adak_token *tokens, size_t n,
                          uint32_t flags);

/**
 * The logits of the last evaluation: *n_rows rows of *n_vocab floats,
 * row-major (row i belongs to the i-th evaluated token with
 * ADAK_EVALUATE_ALL_LOGITS, else the single row is the last token's).
 * n_rows and n_vocab may be NULL. The memory is owned by the session and
 * stays valid until the next call that changes the session (evaluate,
 * generate, reset, free). Returns NULL (and *n_rows = 0 when given) for a
 * NULL/invalid session or when nothing has been evaluated since the last
 * reset.
 */
const float *adak_session_logits(adak_session *session, size_t *n_rows, size_t *n_vocab);

/**
 * Copies row `row` of the last evaluation's logits into `out` (capacity
 * floats, at least n_vocab). Returns ADAK_OK, ADAK_ERR_BUFFER_TOO_SMALL
 * (capacity < n_vocab; nothing written) or ADAK_ERR_INVALID_ARGUMENT
 * (NULL/invalid session, NULL out, row out of range, nothing evaluated).
 */
int adak_session_copy_logits(const adak_session *session, size_t row, float *out,
                             size_t capacity);

/**
 * Samples a token from the last row of logits with the session's sampling
 * settings (advancing the random sequence). Does not evaluate it: pass it to
 * adak_session_evaluate to continue (which also adds it to the repeat-penalty
 * history).
 * Returns ADAK_OK with *token set, or ADAK_ERR_INVALID_ARGUMENT (NULL/invalid
 * session, NULL token, nothing evaluated since the last reset; *token
 * unchanged).
 */
int adak_session_sample(adak_session *session, adak_token *token);

/**
 * Called by adak_session_generate for each generated token, with the token's
 * text piece (`len` bytes, not NUL-terminated, possibly an incomplete UTF-8
 * sequence that the next pieces complete; valid only during the call).
 * Return 0 to continue, nonzero to stop. Runs on the thread that called
 * adak_session_generate. It may read the session (adak_session_get_*,
 * adak_session_position, logits); calls that change it (evaluate, generate,
 * sample, reset, set_*) fail with ADAK_ERR_INVALID_ARGUMENT while the
 * callback runs.
 */
typedef int (*adak_token_callback)(void *user_data, adak_token token, const char *piece,
                                   size_t len);

/**
 * Evaluates `prompt` (n_prompt tokens; may be 0 if something was evaluated
 * before, then generation continues from the current state), then samples up
 * to `max_tokens` tokens, calling `callback` (may be NULL) for each and
 * evaluating each before sampling the next. Stops at an end-of-generation
 * token (neither passed to the callback nor counted nor evaluated), when the
 * callback returns nonzero, after max_tokens tokens, or when the context is
 * full. The last token handed to the callback is left *pending*: it is not
 * yet in the context (position does not count it) and is evaluated first by
 * the next adak_session_evaluate or adak_session_generate on the session, so
 * generation can simply be continued with an empty prompt.
 * *n_generated (may be NULL) receives the number of tokens passed to the
 * callback, also on error.
 * Returns ADAK_OK when generation ended for one of the reasons above.
 * Errors: ADAK_ERR_INVALID_ARGUMENT (NULL/invalid session, NULL prompt with
 * n_prompt > 0, a prompt token outside [0, n_vocab), max_tokens < 0, empty
 * prompt with nothing evaluated), ADAK_ERR_CONTEXT_FULL (the prompt, plus a
 * pending token, does not fit: nothing was evaluated). An error while
 * evaluating a generated token leaves the tokens generated before it in the
 * context and that token pending.
 */
int adak_session_generate(adak_session *session, const adak_token *prompt, size_t n_prompt,
                          int32_t max_tokens, adak_token_callback callback, void *user_data,
                          size_t *n_generated);

/* ===========================================================================
 * Chat templates, stop reasons and strings, logit bias and mask, session
 * state, rewind and copy (since 0.5)
 * ========================================================================= */

/** One message of a conversation: role "system", "user" or "assistant". */
typedef struct adak_chat_message {
    const char *role;     /* NUL-terminated UTF-8 */
    const char *content;  /* NUL-terminated UTF-8 */
} adak_chat_message;

/**
 * Renders `n` messages with the model's chat template (tokenizer.chat_template)
 * as the model's tokenizer config would (transformers' apply_chat_template),
 * including the template's default system prompt and BOS text; with
 * `add_assistant` nonzero the text ends with the opening of an assistant turn.
 * The family is detected from the template text: ChatML (SmolLM, Qwen),
 * Llama-3, Llama-2, Mistral, Gemma, Phi-3, DeepSeek, gpt-oss, Granite.
 * Tokenize the result with ADAK_TOKENIZE_PARSE_SPECIAL (and without
 * ADAK_TOKENIZE_ADD_SPECIAL when it starts with the BOS text). Sized text
 * output (see top of file). Errors: ADAK_ERR_UNSUPPORTED (no template, or an
 * unknown one), ADAK_ERR_INVALID_ARGUMENT (NULL model/messages/len, a NULL or
 * non-UTF-8 role or content, an unknown role, a conversation the template
 * refuses, e.g. Gemma's system role), ADAK_ERR_BUFFER_TOO_SMALL. Thread-safe.
 */
int adak_model_apply_chat_template(const adak_model *model, const adak_chat_message *messages,
                                   size_t n, int add_assistant, char *buf, size_t capacity,
                                   size_t *len);

/** Why adak_session_generate stopped (adak_session_stop_reason). */
enum adak_stop_reason {
    ADAK_STOP_END_OF_GENERATION = 0, /* the model produced an end-of-generation token */
    ADAK_STOP_MAX_TOKENS = 1,        /* max_tokens tokens were generated */
    ADAK_STOP_CONTEXT_FULL = 2,      /* the context window is full */
    ADAK_STOP_CALLBACK = 3,          /* the token callback returned nonzero */
    ADAK_STOP_STRING = 4             /* the text reached a stop string */
};

/**
 * Why the last adak_session_generate that returned ADAK_OK stopped, an enum
 * adak_stop_reason, into *reason. ADAK_ERR_INVALID_ARGUMENT when no
 * generation ended since the session was created, reset, rewound or loaded.
 */
int adak_session_stop_reason(const adak_session *session, int32_t *reason);

/**
 * Sets the stop strings (replacing earlier ones; n = 0 removes them):
 * generation stops when the generated text contains one, matched across token
 * boundaries. The callback then gets the text before the match and never the
 * match: text that could be the start of a stop string is held back (a piece
 * may be empty, a later one carries the held bytes); held text left when an
 * end-of-generation token stops the generation comes in one last call with
 * that token's id (its return value is ignored). `lengths` may be NULL for
 * NUL-terminated strings. Errors: ADAK_ERR_INVALID_ARGUMENT (NULL/invalid
 * session, NULL strings with n > 0, a NULL string); settings unchanged.
 */
int adak_session_set_stop_strings(adak_session *session, const char *const *strings,
                                  const size_t *lengths, size_t n);

/**
 * Sets the logit bias (replacing the earlier one; n = 0 removes it): before
 * every sample, biases[i] is added to the logit of tokens[i]; -INFINITY bans
 * the token. The logits adak_session_logits reports are not changed.
 * Errors: ADAK_ERR_INVALID_ARGUMENT (NULL/invalid session, NULL arrays with
 * n > 0, a token outside [0, n_vocab), a NaN bias); settings unchanged.
 */
int adak_session_set_logit_bias(adak_session *session, const adak_token *tokens,
                                const float *biases, size_t n);

/**
 * Called before every sample (adak_session_sample, adak_session_generate) with
 * a copy of the last row of logits after the logit bias (n_vocab floats); it
 * may change them, e.g. set the tokens a grammar forbids to -INFINITY
 * (constrained output). If every token ends up at -INFINITY, generation fails
 * with ADAK_ERR_INVALID_ARGUMENT (adak_session_sample then samples from the row
 * without bias and callback). It runs on the sampling thread and may only read
 * the session, like adak_token_callback.
 */
typedef void (*adak_logits_callback)(void *user_data, float *logits, size_t n_vocab);

/** Sets (or with NULL removes) the logits callback. ADAK_ERR_INVALID_ARGUMENT for a bad session. */
int adak_session_set_logits_callback(adak_session *session, adak_logits_callback callback,
                                     void *user_data);

/**
 * Constrains sampling to a set of answers (labels, "yes" / "no", ...): a token
 * is allowed only while the text sampled so far plus its piece begins one of
 * the `n` choices; once the text is a whole choice, end-of-generation tokens
 * are allowed too (and only they when no choice continues it), so
 * adak_session_generate ends with exactly one of them. Applied after the
 * logit bias and the logits callback. The text counts from this call, a
 * generate with a prompt, adak_session_reset and adak_session_truncate.
 * `lengths` may be NULL for NUL-terminated strings; n = 0 removes the
 * constraint. Errors: ADAK_ERR_INVALID_ARGUMENT (bad session, NULL strings with
 * n > 0, a NULL or empty choice, more than 4096 choices or bytes per choice).
 */
int adak_session_set_choices(adak_session *session, const char *const *choices,
                             const size_t *lengths, size_t n);

/**
 * Constrains sampling to texts that match the regular expression `pattern` as
 * a whole (since 0.6): a token is allowed only while the text sampled so far
 * plus its piece can still grow into a match, end-of-generation tokens only
 * once the text matches (and only they when nothing can continue it), so
 * adak_session_generate ends with a match unless max_tokens or the context cut
 * it short. The pattern (UTF-8) is compiled to a DFA over UTF-8 bytes.
 * Syntax: literal characters; `.` (any character but \n); classes [a-z_],
 * [^...]; \d \D \w \W \s \S (ASCII meanings); escapes \n \r \t \f \v \0 \xHH
 * \uHHHH \u{H...} and \ before punctuation; groups (...) and (?:...); |;
 * quantifiers * + ? {m} {m,} {m,n} (counts up to 1000; lazy forms allowed,
 * they match the same texts); ^ first and $ last (matches are always of the
 * whole text). It replaces the choices of adak_session_set_choices and they
 * replace it; the text counts from the same events. NULL removes the
 * constraint. Errors (constraint unchanged; adak_last_error says what and
 * where): ADAK_ERR_INVALID_ARGUMENT (bad session, a pattern that is not UTF-8,
 * malformed, matches no text or needs more than 10000 DFA states),
 * ADAK_ERR_UNSUPPORTED (look-around, back references, \b, \p{...}, other (?...)
 * groups, possessive quantifiers).
 */
int adak_session_set_regex(adak_session *session, const char *pattern);

/**
 * Saves the session's state: the tokens and KV cache of its context, the last
 * row of logits, a pending token, the sampler's random sequence and history,
 * the budget controller. Settings (sampling, routing, stop strings, bias,
 * callbacks) are not part of it. Sized output in bytes: *len always receives
 * the size; ADAK_ERR_BUFFER_TOO_SMALL when capacity is smaller (nothing
 * written). ADAK_ERR_INVALID_ARGUMENT for a bad session or NULL len.
 */
int adak_session_save_state(const adak_session *session, void *buf, size_t capacity,
                            size_t *len);

/**
 * Restores a state from adak_session_save_state into `session`, which needs
 * the same model and KV cache type and a context at least as long as the
 * saved one; continuing then gives the same logits, bit for bit, as the saved
 * session would have. Errors (session unchanged): ADAK_ERR_FORMAT (not a
 * state, damaged or truncated), ADAK_ERR_UNSUPPORTED (another state version),
 * ADAK_ERR_INVALID_ARGUMENT (bad session, NULL buf, another model, KV type or
 * too short a context).
 */
int adak_session_load_state(adak_session *session, const void *buf, size_t len);

/** adak_session_save_state into a file (replaced). Adds ADAK_ERR_IO. */
int adak_session_save_state_file(const adak_session *session, const char *path);

/** adak_session_load_state from a file. Adds ADAK_ERR_IO. */
int adak_session_load_state_file(adak_session *session, const char *path);

/**
 * The tokens of the session's context (adak_session_position of them; a
 * pending token of adak_session_generate is not among them). Sized output in
 * tokens: *n always receives the count; ADAK_ERR_BUFFER_TOO_SMALL when
 * capacity is smaller (nothing written). ADAK_ERR_INVALID_ARGUMENT for a bad
 * session, NULL n, or NULL tokens with capacity > 0.
 */
int adak_session_get_tokens(const adak_session *session, adak_token *tokens, size_t capacity,
                            size_t *n);

/**
 * Rewinds the context to its first `position` tokens (0 <= position <= the
 * current position), e.g. to regenerate an answer or to keep a shared prompt
 * prefix: the later tokens, a pending token and the logits are dropped.
 * Evaluating afterwards gives the logits, bit for bit, of a fresh session fed
 * the same evaluate calls. Errors: ADAK_ERR_INVALID_ARGUMENT (bad session,
 * position out of range; session unchanged).
 */
int adak_session_truncate(adak_session *session, int64_t position);

/**
 * Creates an independent copy of `session` (same model, settings, context,
 * logits, sampler and routing state, stop strings and bias; not the logits
 * callback) into *out, owned by the caller. Afterwards neither changes the
 * other: a shared prompt prefix is evaluated once and copied. On failure *out
 * is NULL. Errors: ADAK_ERR_INVALID_ARGUMENT, ADAK_ERR_OUT_OF_MEMORY.
 */
int adak_session_copy(const adak_session *session, adak_session **out);

/* ===========================================================================
 * Routing (since 0.2): how many experts each token uses, a FLOPs budget,
 * Ada-K allocators and routing statistics.
 *
 * Every MoE layer chooses k, the number of experts a token activates, per
 * token; the policy decides how, then the k most probable experts run and
 * their weights are renormalised as the architecture does. Policies, selected
 * per session with adak_session_set_routing (adak_routing_params.policy; the
 * deprecated keyed form is adak_session_set_string(s, "routing", NAME)):
 *   "topk"     ADAK_ROUTING_TOPK, static Top-K: every token uses k experts
 *              (default: the model's native K). The default policy.
 *   "adak"     ADAK_ROUTING_ADAK, Ada-K: an allocator
 *              (adak_session_set_allocator, required first) picks
 *              k = argmax_k(logit_k - mu * k) per layer.
 *   "top_p"    ADAK_ROUTING_TOP_P: the smallest prefix of the sorted router
 *              probabilities whose sum reaches p (Huang et al. 2024).
 *   "skip"     ADAK_ROUTING_SKIP: keep the j-th expert while its weight
 *              >= beta x the top weight (dynamic skipping, Lu et al. 2024).
 *   "entropy"  ADAK_ROUTING_ENTROPY: k = ceil(tau x exp(H)), H the router's
 *              entropy.
 * The deprecated routing keys (adak_session_set_float / adak_session_set_int
 * and the matching getters) name the fields of adak_routing_params and go
 * through the same validation:
 *   "routing"        int: enum adak_routing_policy (getter: the same)
 *   "routing.k"      int: k of "topk", 1..n_expert; 0 = native K (default)
 *   "routing.k_min"  int: lower bound on k for every policy, 1..n_expert
 *                    (default 1)
 *   "routing.k_max"  int: upper bound on k, k_min..n_expert; 0 = the policy's
 *                    default (n_expert for topk/adak, native K for the
 *                    threshold policies)
 *   "routing.p"      float: threshold of "top_p", (0, 1]; default 0.5
 *   "routing.beta"   float: ratio of "skip", [0, 1]; default 0.5
 *   "routing.tau"    float: scale of "entropy", (0, 64]; default 1
 * A dense model (n_expert 0) accepts only "topk". Changing any routing
 * setting or the budget restarts the budget controller. Errors
 * (ADAK_ERR_INVALID_ARGUMENT: unknown policy, value out of range, NaN,
 * "adak" without an allocator, a policy other than "topk" on a dense model)
 * leave every setting unchanged; adak_last_error() names the key.
 * ------------------------------------------------------------------------- */

/** Routing policies, the integer values of the "routing" key. */
enum adak_routing_policy {
    ADAK_ROUTING_TOPK = 0,
    ADAK_ROUTING_ADAK = 1,
    ADAK_ROUTING_TOP_P = 2,
    ADAK_ROUTING_SKIP = 3,
    ADAK_ROUTING_ENTROPY = 4
};

/**
 * How a FLOPs budget spreads over the MoE layers (adak_routing_params.budget_mode,
 * since 0.6):
 *   ADAK_BUDGET_GLOBAL     one knob (Ada-K's price mu, the threshold policies'
 *                          threshold) shared by every layer: the policy's own
 *                          per-layer and per-token shares survive and the whole
 *                          model meets the budget. The default.
 *   ADAK_BUDGET_PER_LAYER  one knob per layer: every layer's mean k meets
 *                          budget x K on its own.
 */
enum adak_budget_mode {
    ADAK_BUDGET_GLOBAL = 0,
    ADAK_BUDGET_PER_LAYER = 1
};

/**
 * Routing settings (since 0.5), changed as one unit with
 * adak_session_set_routing. Defaults (adak_routing_params_init) in brackets.
 */
typedef struct adak_routing_params {
    uint32_t size;         /* sizeof(adak_routing_params) as the caller compiled it */
    int32_t policy;        /* enum adak_routing_policy [ADAK_ROUTING_TOPK] */
    int32_t k;             /* k of "topk", 1..n_expert; 0 = native K [0] */
    int32_t k_min;         /* lower bound on k for every policy, 1..n_expert [1] */
    int32_t k_max;         /* upper bound, k_min..n_expert; 0 = the policy's default [0] */
    float p;               /* threshold of "top_p", (0, 1] [0.5] */
    float beta;            /* ratio of "skip", [0, 1] [0.5] */
    float tau;             /* scale of "entropy", (0, 64] [1] */
    float price;           /* "adak" without a budget: fixed price mu per expert in
                              k = argmax(logit_k - mu * k), the same in every layer, [-64, 64] [0] */
    double flops_budget;   /* expert-FLOPs budget as a fraction of static Top-K,
                              (0, 16]; 0 = no budget [0] (see adak_session_set_flops_budget) */
    int32_t budget_mode;   /* (since 0.6) enum adak_budget_mode: how the budget spreads over
                              the MoE layers [ADAK_BUDGET_GLOBAL] */
} adak_routing_params;

/**
 * Fills `params` (of `size` bytes, normally sizeof(adak_routing_params)) with
 * the defaults and sets params->size = size. Returns ADAK_OK, or
 * ADAK_ERR_INVALID_ARGUMENT if params is NULL or size is smaller than this
 * first version of the struct (48 bytes); then nothing is written.
 */
int adak_routing_params_init(adak_routing_params *params, size_t size);

/**
 * Replaces the session's routing settings, budget included, with `params`
 * (every field the caller's size covers; the defaults for the rest),
 * validated as a whole against the model: either all apply, from the next
 * evaluated token, and the budget controller restarts, or nothing changes.
 * ADAK_ROUTING_ADAK needs an allocator set before (adak_session_set_allocator,
 * which any policy accepts). Returns ADAK_OK or ADAK_ERR_INVALID_ARGUMENT
 * (NULL/invalid session, NULL params, a bad size, an unknown policy, a value
 * out of range or NaN, "adak" without an allocator, a policy other than
 * "topk" or a budget on a dense model: adak_last_error() names the field).
 * Refused from the session's own token callback.
 */
int adak_session_set_routing(adak_session *session, const adak_routing_params *params);

/**
 * Writes the session's routing settings into *out, whose `size` the caller
 * set (only the fields that fit are written). Returns ADAK_OK or
 * ADAK_ERR_INVALID_ARGUMENT (NULL/invalid session, NULL out, out->size smaller
 * than the first version; nothing is written then).
 */
int adak_session_get_routing(const adak_session *session, adak_routing_params *out);

/**
 * Deprecated since 0.5 (kept through 0.6): use adak_session_set_routing.
 * Changes a text setting. Keys: "routing" (a policy name: "topk", "adak",
 * "top_p", "skip", "entropy"). Returns ADAK_OK or ADAK_ERR_INVALID_ARGUMENT
 * (NULL/invalid session, NULL/unknown key, NULL or non-UTF-8 value, unknown
 * policy name, a policy the session cannot use; the setting is then
 * unchanged). Refused from the session's own token callback.
 */
int adak_session_set_string(adak_session *session, const char *key, const char *value);

/**
 * Reads a text setting ("routing": the policy's name) into `buf`. *len
 * always receives its length in bytes; buffer rules as for all sized text
 * outputs. Returns ADAK_OK, ADAK_ERR_BUFFER_TOO_SMALL, or
 * ADAK_ERR_INVALID_ARGUMENT (NULL/invalid session, NULL/unknown key, NULL
 * len, NULL buf with capacity > 0).
 */
int adak_session_get_string(const adak_session *session, const char *key, char *buf,
                            size_t capacity, size_t *len);

/**
 * Sets an expert-FLOPs budget: the session's routed experts should spend
 * `fraction` x the expert FLOPs of static Top-K with the native K (1.0 = as
 * much as Top-K, 0.75 = a quarter less; values above 1 allow more). Accepted:
 * 0 < fraction <= 16, finite. The current policy meets it by moving its knob:
 * Ada-K a price mu per expert, "top_p"/"skip"/"entropy" their threshold,
 * "topk" by alternating between floor and ceil of fraction x K. With
 * ADAK_BUDGET_GLOBAL (the default, adak_routing_params.budget_mode) one knob
 * serves every layer: while decoding one token at a time it follows the
 * running error between achieved and target cost over all layers (dual
 * ascent), so the running average converges to the target; a batch of
 * tokens, and the first token after the settings change, is first run once
 * to measure (the batch costs two forward passes), the knob is solved over
 * every layer's decisions so the batch spends fraction x K x n_tokens x
 * n_moe_layers expert slots as exactly as the policy allows, and the batch
 * then runs with it. ADAK_BUDGET_PER_LAYER does the same per layer (no
 * measuring pass), holding every layer at fraction x K.
 * "routing.k_min"/"routing.k_max" still bound k, so a budget outside what
 * they allow is met only as closely as they permit. Read back with the float
 * key "flops_budget". Returns ADAK_OK or ADAK_ERR_INVALID_ARGUMENT
 * (NULL/invalid session; NaN, infinite, zero, negative or > 16 fraction; a
 * dense model); the session is then unchanged.
 */
int adak_session_set_flops_budget(adak_session *session, double fraction);

/**
 * Removes the budget: the policy runs with its own settings again. Returns
 * ADAK_OK (also when there was no budget) or ADAK_ERR_INVALID_ARGUMENT
 * (NULL/invalid session).
 */
int adak_session_clear_flops_budget(adak_session *session);

/**
 * An Ada-K allocator: per MoE layer a linear map from the router's input to
 * n_expert logits, one per k = 1..n_expert. Made for one model (its
 * architecture, shapes and router weights); immutable once created, so it may
 * be shared by sessions on any threads and used by several sessions at once.
 */
typedef struct adak_allocator adak_allocator;

/**
 * Loads an allocator file (GGUF, written by adak_allocator_save or by the
 * training tools) made for `model`. On success *out receives a new allocator
 * owned by the caller (free it with adak_allocator_free); on failure *out is
 * set to NULL (when `out` is not NULL). Errors: ADAK_ERR_INVALID_ARGUMENT
 * (NULL/invalid model, NULL path/out, a dense model, an allocator made for
 * another model: architecture, shapes or router weights differ),
 * ADAK_ERR_IO, ADAK_ERR_FORMAT (not an allocator file, misshapen or non-finite
 * tensors), ADAK_ERR_UNSUPPORTED (a newer allocator format). Thread-safe.
 */
int adak_allocator_load(const adak_model *model, const char *path, adak_allocator **out);

/**
 * Creates the identity allocator of `model`: its argmax is the native K at
 * every layer for every token, so "adak" without a budget reproduces static
 * Top-K, and with a budget trades k around K smoothly. *out as for
 * adak_allocator_load. Errors: ADAK_ERR_INVALID_ARGUMENT (NULL/invalid model,
 * NULL out, a dense model). Thread-safe.
 */
int adak_allocator_identity(const adak_model *model, adak_allocator **out);

/**
 * Writes the allocator to `path` as GGUF (replacing the file). Returns ADAK_OK,
 * ADAK_ERR_INVALID_ARGUMENT (NULL/invalid allocator, NULL path) or ADAK_ERR_IO
 * (the file cannot be written; a partly written file may be left behind).
 * Thread-safe.
 */
int adak_allocator_save(const adak_allocator *allocator, const char *path);

/**
 * Releases the caller's reference to an allocator. Sessions using it keep
 * their own reference, so freeing the handle right after
 * adak_session_set_allocator is safe. NULL and non-live handles are ignored.
 */
void adak_allocator_free(adak_allocator *allocator);

/**
 * Makes the session's "adak" policy use `allocator` (the session keeps its
 * own reference: the handle may be freed afterwards). NULL removes the
 * allocator, which is refused while the policy is "adak". Returns ADAK_OK or
 * ADAK_ERR_INVALID_ARGUMENT (NULL/invalid session, a non-live allocator
 * handle, an allocator made for another model, NULL while "adak" is active);
 * the session is then unchanged. Refused from the session's token callback.
 */
int adak_session_set_allocator(adak_session *session, const adak_allocator *allocator);

/**
 * Routing statistics of a session: what its MoE layers spent on every token
 * evaluated (prompt and generated) since the session was created or
 * adak_session_reset_stats was called (adak_session_reset keeps them). FLOPs
 * count a multiply-add as 2; "total" adds attention (projections and
 * scores over the context), router, allocator, shared experts, dense layers
 * and the LM head for tokens whose logits were computed. "topk" quantities
 * are what static Top-K with the native K would have spent on the same
 * tokens. Fields are only ever appended: set `size` before the call.
 */
typedef struct adak_stats {
    uint32_t size;             /* set by the caller: sizeof(adak_stats) */
    int32_t n_moe_layers;      /* MoE layers (length of adak_session_get_mean_k_per_layer) */
    int32_t n_expert;          /* experts per MoE layer (length of the k histogram) */
    int32_t k_native;          /* the model's native K */
    int64_t tokens;            /* tokens evaluated */
    double mean_k;             /* mean k over tokens and MoE layers (0 before any token) */
    double expert_flops;       /* FLOPs of the routed experts */
    double expert_flops_topk;  /* ... of static Top-K on the same tokens */
    double expert_fraction;    /* expert_flops / expert_flops_topk (1 before any token) */
    double total_flops;        /* FLOPs of the whole forward passes */
    double total_flops_topk;   /* ... of static Top-K on the same tokens */
    double total_fraction;     /* total_flops / total_flops_topk (1 before any token) */
} adak_stats;

/**
 * Fills *out (whose `size` the caller set to sizeof(adak_stats); a library
 * of a later version writes only the fields that fit). Returns ADAK_OK or
 * ADAK_ERR_INVALID_ARGUMENT (NULL/invalid session, NULL out, out->size
 * smaller than this first version, 80 bytes; nothing is written then).
 */
int adak_session_get_stats(const adak_session *session, adak_stats *out);

/**
 * Mean k per MoE layer (in the order of adak_model_get_moe_layers), as for
 * every sized output: *n always receives the count (n_moe_layers);
 * ADAK_ERR_BUFFER_TOO_SMALL when capacity < *n (nothing written). Other
 * errors: ADAK_ERR_INVALID_ARGUMENT (NULL/invalid session, NULL n, NULL out
 * with capacity > 0).
 */
int adak_session_get_mean_k_per_layer(const adak_session *session, double *out, size_t capacity,
                                      size_t *n);

/**
 * The k histogram: out[i] = number of (token, MoE layer) pairs that used
 * k = i + 1 experts; *n = n_expert (0 for a dense model). The counts sum to
 * tokens x n_moe_layers. Sized-output rules and errors as
 * adak_session_get_mean_k_per_layer.
 */
int adak_session_get_k_histogram(const adak_session *session, int64_t *out, size_t capacity,
                                 size_t *n);

/**
 * Starts new statistics (all counts 0). Settings and the budget controller
 * are kept. Returns ADAK_OK or ADAK_ERR_INVALID_ARGUMENT (NULL/invalid
 * session; refused from the session's token callback).
 */
int adak_session_reset_stats(adak_session *session);

/**
 * Indices of the model's MoE layers (0-based, ascending) into `out`;
 * sized-output rules as above (*n = their number, 0 for a dense model).
 * Errors: ADAK_ERR_INVALID_ARGUMENT (NULL/invalid model, NULL n, NULL out with
 * capacity > 0). Thread-safe.
 */
int adak_model_get_moe_layers(const adak_model *model, int32_t *out, size_t capacity, size_t *n);

/* ===========================================================================
 * Logging (since 0.2)
 * ------------------------------------------------------------------------- */

/** Severity of a log message; lower is more severe. */
enum adak_log_level {
    ADAK_LOG_ERROR = 1,
    ADAK_LOG_WARN = 2,
    ADAK_LOG_INFO = 3,   /* e.g. what a model load found */
    ADAK_LOG_DEBUG = 4   /* e.g. every failed call's message */
};

/**
 * Receives one log message: `level` is an enum adak_log_level, `message` a
 * NUL-terminated UTF-8 line without a trailing newline, valid only during the
 * call. May be called from any thread that runs libadak code, also from
 * several at once. Whatever libadak logs from inside the callback on the
 * same thread is dropped (no recursion).
 */
typedef void (*adak_log_callback)(void *user_data, int level, const char *message);

/**
 * Installs the process-wide log callback (NULL: no logging, the default: the
 * library prints nothing). The callback receives every level; filter by
 * `level` in it. Thread-safe; a message being delivered on another thread
 * while the callback is replaced may still reach the previous callback, so
 * keep its user_data valid until such calls have returned.
 */
void adak_set_log_callback(adak_log_callback callback, void *user_data);

/* ===========================================================================
 * Carving and training (since 0.3): making a mixture of experts from a dense
 * model, and training an Ada-K allocator for an MoE model with PPO.
 *
 * Both are long, CPU-heavy operations that run on the calling thread (with
 * the library's compute threads) and report progress through a callback that
 * may cancel them. Their settings are keyed parameter objects: create one,
 * change the settings you need, pass it (or NULL for all defaults), free it.
 * A parameter object is used by one thread at a time and must not be changed
 * while a call that received it runs; the call copies what it needs, so the
 * object may be changed or freed as soon as the call has returned. A setter
 * that fails (ADAK_ERR_INVALID_ARGUMENT: NULL/invalid params, NULL/unknown
 * key, NaN, out-of-range value; adak_last_error() names the key) leaves the
 * object unchanged. Checks that depend on the model (e.g. that "experts"
 * divides the FFN width, "k_max" <= n_expert) are made by the operation.
 * ------------------------------------------------------------------------- */

/** Settings of adak_carve. Opaque; create with adak_carve_params_create. */
typedef struct adak_carve_params adak_carve_params;

/**
 * Creates a parameter object holding the defaults (listed at
 * adak_carve_params_set_int and friends). On success *out receives it, owned
 * by the caller (free it with adak_carve_params_free). Returns ADAK_OK or
 * ADAK_ERR_INVALID_ARGUMENT (NULL out). Thread-safe.
 */
int adak_carve_params_create(adak_carve_params **out);

/** Frees a parameter object. NULL and non-live handles are ignored. */
void adak_carve_params_free(adak_carve_params *params);

/**
 * Integer settings of a carve:
 *   "experts"            routed experts per layer, 2..1024, must divide the
 *                        dense FFN width (default 16)
 *   "top_k"              native K written into the model, 1..experts (default 8)
 *   "seed"               seed of the k-means initialisation, >= 0 (default 0)
 *   "calib_tokens"       calibration tokens captured at most, 16..1048576
 *                        (default 4096)
 *   "window"             tokens per calibration window, 16..1048576 and at most
 *                        the model's context length (default 512)
 *   "kmeans_iterations"  1..1000 (default 30)
 *   "threads"            compute threads, 0..1024; 0: all cores (default 0)
 * Returns ADAK_OK or ADAK_ERR_INVALID_ARGUMENT (see the section's top).
 */
int adak_carve_params_set_int(adak_carve_params *params, const char *key, int64_t value);

/**
 * Float settings of a carve:
 *   "shared_fraction"  fraction of each FFN's neurons in the always-on shared
 *                      expert, [0, 1) (default 0.25)
 *   "ridge"            relative ridge of the router fit, [0, 1e6] (default 1e-3)
 * Returns ADAK_OK or ADAK_ERR_INVALID_ARGUMENT (NaN and infinities included).
 */
int adak_carve_params_set_float(adak_carve_params *params, const char *key, double value);

/**
 * Text settings of a carve (UTF-8; the string is copied). A NULL value
 * restores the key's default.
 *   "calib_text"   the calibration text itself (replaces "calib_path")
 *   "calib_path"   a UTF-8 file read by adak_carve (replaces "calib_text")
 *   "plan_in"      a carving plan (GGUF, from "plan_out" or `adak carve
 *                  --plan-out`) to apply instead of calibrating; the dense
 *                  file must be the one it was made from. The calibration
 *                  settings, "experts", "top_k" and "shared_fraction" are then
 *                  ignored. Default: none (calibrate).
 *   "plan_out"     write the plan of the carve here too (default: none)
 *   "expert_type"  weight format of experts and shared expert: "q8_0"
 *                  (default), "q4_0" or "f32"
 *   "layers"       layers to carve, e.g. "0,3,5"; "" or "all" (default): every
 *                  layer. Layers not listed stay dense.
 * Returns ADAK_OK or ADAK_ERR_INVALID_ARGUMENT (NULL/invalid params,
 * NULL/unknown key, non-UTF-8 value, an unknown expert type, a malformed
 * layer list).
 */
int adak_carve_params_set_string(adak_carve_params *params, const char *key, const char *value);

/** Stages reported by adak_carve_progress_callback, in the order they run. */
enum adak_carve_stage {
    ADAK_CARVE_CALIBRATING = 0, /* running the dense model on the calibration text; unit: windows */
    ADAK_CARVE_CLUSTERING = 1,  /* grouping each layer's neurons into experts; unit: layers */
    ADAK_CARVE_WRITING = 2      /* building the MoE file; unit: layers */
};

/**
 * Progress of adak_carve: `stage` is an enum adak_carve_stage, `done` of
 * `total` units of that stage are finished (1 <= done <= total). Return 0 to
 * continue, nonzero to cancel: adak_carve then returns ADAK_ERR_CANCELLED and
 * writes nothing. Called on the thread running adak_carve; it must not call
 * libadak functions other than adak_last_error, adak_version* and
 * adak_status_string.
 */
typedef int (*adak_carve_progress_callback)(void *user_data, int stage, int64_t done,
                                            int64_t total);

/**
 * Carves the dense GGUF model at `dense_path` (architecture llama, qwen2 or
 * qwen3) into a mixture of experts written to `out_path` as GGUF (architecture
 * "adak-moe", loadable with adak_model_load): each carved layer's FFN becomes
 * an always-on shared expert plus "experts" routed experts and a router
 * fitted on the calibration text; attention, embeddings and tokenizer are
 * copied. `params` may be NULL for the defaults, but a calibration text
 * ("calib_text" / "calib_path") or a plan ("plan_in") is required.
 * `progress` (may be NULL) receives `user_data`. Deterministic for the same
 * inputs, settings and thread count. The output is written to a temporary
 * file beside `out_path` and renamed into place, so on any failure `out_path`
 * is unchanged. Returns ADAK_OK, or:
 *   ADAK_ERR_INVALID_ARGUMENT  NULL/non-UTF-8/empty paths, an invalid params
 *                              handle, no calibration text, settings that do
 *                              not fit the model (e.g. "experts" does not
 *                              divide the FFN width, a layer out of range),
 *                              calibration text too short, a plan made from
 *                              other weights
 *   ADAK_ERR_IO                a file cannot be read or written (also
 *                              "plan_out": the model has then been written)
 *   ADAK_ERR_FORMAT            a malformed model or plan file
 *   ADAK_ERR_UNSUPPORTED       not a dense model of a carvable architecture
 *                              (e.g. already a mixture of experts)
 *   ADAK_ERR_OUT_OF_MEMORY
 *   ADAK_ERR_CANCELLED         the progress callback returned nonzero.
 * Thread-safe with respect to other libadak calls (the process-wide BLAS
 * thread count is set to "threads").
 */
int adak_carve(const char *dense_path, const char *out_path, const adak_carve_params *params,
               adak_carve_progress_callback progress, void *user_data);

/** Settings of adak_train_allocator. Opaque; create with adak_train_params_create. */
typedef struct adak_train_params adak_train_params;

/**
 * Creates a parameter object holding the defaults (listed at the setters).
 * On success *out receives it, owned by the caller (free it with
 * adak_train_params_free). Returns ADAK_OK or ADAK_ERR_INVALID_ARGUMENT (NULL
 * out). Thread-safe.
 */
int adak_train_params_create(adak_train_params **out);

/** Frees a parameter object. NULL and non-live handles are ignored. */
void adak_train_params_free(adak_train_params *params);

/**
 * Float settings of allocator training:
 *   "lambda"          price of compute in the reward
 *                     r_t = log p(x_{t+1}) - lambda * (sum_l k_l) / (L * K),
 *                     [0, 1e6] (default 0.3)
 *   "clip"            PPO clip range epsilon, (0, 1) (default 0.2)
 *   "lr"              Adam learning rate, (0, 1) (default 3e-3)
 *   "entropy_coef"    entropy bonus coefficient, [0, 1e6] (default 0)
 *   "max_grad_norm"   gradient-norm clip, [0, 1e12]; 0: none (default 1)
 *   "future_discount" discount gamma of later tokens' log-likelihood in a
 *                     token's credit: the actions at token t are credited with
 *                     sum_{t' >= t} gamma^(t'-t) * (log p_t' - baseline_t')
 *                     within the window, [0, 1) (default 0: the token's own
 *                     log p only; since 0.4); > 0 needs baseline "greedy"
 *   "lambda_memory"   with training budgets: memory d of the fitted lambda, which
 *                     pools the earlier updates' regression moments weighted
 *                     d^age, [0, 1) (default 0: each update's tokens only)
 *   "init_sharpness"  sharpness s of the identity allocator training starts
 *                     from (bias -s * (k - K)^2), (0, 1e6] (default 1)
 * Returns ADAK_OK or ADAK_ERR_INVALID_ARGUMENT (NaN and infinities included).
 */
int adak_train_params_set_float(adak_train_params *params, const char *key, double value);

/**
 * Integer settings of allocator training:
 *   "rollout_tokens"    sampled tokens per PPO update, >= 1 and >= window - 1
 *                       (default 2048)
 *   "window"            tokens per teacher-forced window, 2..8192 (default 256)
 *   "epochs"            PPO epochs per batch, 1..100 (default 4)
 *   "minibatch"         tokens per minibatch, >= 1 (default 256)
 *   "seed"              seed of sampling and shuffling, >= 0 (default 0)
 *   "k_min"             smallest k the allocator may choose, 1..n_expert
 *                       (default 1)
 *   "k_max"             largest k, k_min..n_expert; 0: n_expert (default 0)
 *   "updates"           PPO updates in total, >= 1 (default 50)
 *   "total_tokens"      stop after this many sampled tokens; 0: no limit
 *                       (default 0)
 *   "threads"           compute threads, 0..1024; 0: all cores (default 0)
 *   "checkpoint_every"  write out_path every N updates; 0: only at the end
 *                       (default 5)
 *   "sample_window"     radius w of the rollouts' sampling window: k is drawn
 *                       only among [g - w, g + w], g the allocator's greedy k,
 *                       from its policy renormalised on that window (PPO's
 *                       ratio uses the same window), 0..1024; 0: no window
 *                       (default 0)
 * Returns ADAK_OK or ADAK_ERR_INVALID_ARGUMENT.
 */
int adak_train_params_set_int(adak_train_params *params, const char *key, int64_t value);

/**
 * Text settings of allocator training:
 *   "baseline"  the advantage baseline: "greedy" (self-critical: the reward of
 *               the allocator's argmax on the same window, one more forward
 *               pass per window; default) or "mean" (the batch mean).
 *   "cost_credit"  which layers' actions a token's compute cost is charged
 *               to: "token" (every layer's action gets the whole reward,
 *               default) or "layer" (each layer's action gets the shared
 *               log-likelihood part and only its own cost lambda * k_l /
 *               (L * K); less noise per layer, since 0.4).
 *   "train_budgets"  training under the global price: a comma list of expert
 *               FLOPs budgets, each in (0, 16], at most 64 (e.g.
 *               "0.5,0.625,0.75"); update i's rollouts run at budget i mod n,
 *               their price is that budget's mu and lambda is fitted per
 *               budget (then "lambda" must be 0 and "baseline" "greedy",
 *               checked when training starts). "" (default): none.
 * Returns ADAK_OK or ADAK_ERR_INVALID_ARGUMENT (also for a NULL value).
 */
int adak_train_params_set_string(adak_train_params *params, const char *key, const char *value);

/**
 * What adak_train_allocator reports after each PPO update. Opaque; valid only
 * during the callback that receives it (afterwards, and from other threads'
 * points of view once the callback returned, it is not a live handle and the
 * getters return ADAK_ERR_INVALID_ARGUMENT).
 */
typedef struct adak_train_progress adak_train_progress;

/**
 * Reads an integer of a progress report: "update" (updates done, counted over
 * the whole run including a resumed part), "updates" (updates planned),
 * "tokens" (sampled tokens so far), "n_moe_layers" (length of the mean-k
 * array). Returns ADAK_OK or ADAK_ERR_INVALID_ARGUMENT (progress not live,
 * NULL/unknown key, NULL value; *value unchanged).
 */
int adak_train_progress_get_int(const adak_train_progress *progress, const char *key,
                                int64_t *value);

/**
 * Reads a number of a progress report: "mean_reward", "mean_log_prob",
 * "cost_fraction" (mean of sum_l k_l / (L * K) of the sampled actions),
 * "greedy_log_prob", "greedy_cost_fraction" (the same for the argmax policy;
 * NaN with the "mean" baseline), "approx_kl", "clip_fraction", "entropy",
 * "grad_norm" (of the update's last epoch), "tokens_per_second",
 * "elapsed_seconds", "eta_seconds". Errors as adak_train_progress_get_int.
 */
int adak_train_progress_get_float(const adak_train_progress *progress, const char *key,
                                  double *value);

/**
 * Mean sampled k per MoE layer in this update (in the order of
 * adak_model_get_moe_layers). Sized-output rules: *n always receives the
 * count; ADAK_ERR_BUFFER_TOO_SMALL when capacity < *n (nothing written).
 * Other errors: ADAK_ERR_INVALID_ARGUMENT (progress not live, NULL n, NULL out
 * with capacity > 0).
 */
int adak_train_progress_get_mean_k_per_layer(const adak_train_progress *progress, double *out,
                                             size_t capacity, size_t *n);

/**
 * Called by adak_train_allocator after every PPO update (and after the
 * checkpoint due at that update was written). Return 0 to continue, nonzero
 * to stop: the call then saves a checkpoint of the last completed update and
 * returns ADAK_ERR_CANCELLED. Runs on the thread that called
 * adak_train_allocator; besides the adak_train_progress_* getters it may call
 * only adak_last_error, adak_version* and adak_status_string.
 */
typedef int (*adak_train_progress_callback)(void *user_data, const adak_train_progress *progress);

/**
 * Trains an Ada-K allocator for `model` (an MoE model, left unchanged) with
 * PPO on a text: starting from the identity allocator (static Top-K), k is
 * sampled per token and MoE layer on teacher-forced windows of the data, and
 * the allocator learns to trade log-likelihood against expert compute at the
 * price "lambda". Training data: either `text` (NUL-terminated UTF-8; only the
 * prefix the run can use is tokenized, without special tokens) with n_tokens
 * = 0, or `tokens` (n_tokens token ids of the model) with text = NULL; at
 * least one window's worth is needed. `params` may be NULL for the defaults.
 *
 * Writes the allocator to `out_path` (GGUF, loadable with adak_allocator_load)
 * and its optimiser state to out_path + ".optim", every "checkpoint_every"
 * updates and at the end. With `resume` = 1 training continues from those two
 * files (same data and settings expected, except that "lambda",
 * "entropy_coef", "cost_credit" and "future_discount" may change: a curriculum, recorded in the
 * allocator's metadata "adak.train.curriculum") up to "updates"; `resume` = 0
 * starts afresh and replaces them. `progress` (may be NULL) receives
 * `user_data` and a report after every update.
 *
 * Returns ADAK_OK when all updates are done, or:
 *   ADAK_ERR_INVALID_ARGUMENT  NULL/invalid model, a dense model, NULL/empty
 *                              out_path, both or neither of text and tokens,
 *                              n_tokens != 0 with text, a token outside
 *                              [0, n_vocab), non-UTF-8 text, resume not 0 or 1,
 *                              an invalid params handle, settings that do not
 *                              fit the model or each other (e.g. k_max >
 *                              n_expert, rollout_tokens < window - 1), less
 *                              data than one window; nothing is written
 *   ADAK_ERR_IO, ADAK_ERR_FORMAT  a checkpoint cannot be read (resume) or
 *                              written; a failed write may leave a partly
 *                              written file
 *   ADAK_ERR_CANCELLED         the callback returned nonzero; out_path and
 *                              out_path.optim hold the last completed update,
 *                              and resume = 1 continues from there
 *   ADAK_ERR_OUT_OF_MEMORY
 * Thread-safe: the model may be used by other threads meanwhile.
 */
int adak_train_allocator(const adak_model *model, const char *text, const adak_token *tokens,
                         size_t n_tokens, const adak_train_params *params, const char *out_path,
                         int resume, adak_train_progress_callback progress, void *user_data);

/* ---------------------------------------------------------------------------
 * Loading from memory (since 0.3)
 * ------------------------------------------------------------------------- */

/**
 * Loads a GGUF model from `size` bytes at `data` (a whole GGUF file; the
 * library copies it, so the buffer may be released as soon as the call
 * returns). `params` may be NULL for the defaults. Results and errors as for
 * adak_model_load, plus ADAK_ERR_INVALID_ARGUMENT for NULL data or size 0 and
 * ADAK_ERR_OUT_OF_MEMORY when size exceeds 2^40 bytes or the copy cannot be
 * allocated. Thread-safe.
 */
int adak_model_load_from_buffer(const void *data, size_t size, const adak_model_params *params,
                                adak_model **out);


/* ---------------------------------------------------------------------------
 * Quantization (since 0.5)
 * ------------------------------------------------------------------------- */

/** File types of adak_model_quantize: llama.cpp's llama_ftype numbers. */
enum adak_ftype {
    ADAK_FTYPE_F16 = 1,
    ADAK_FTYPE_Q4_0 = 2,
    ADAK_FTYPE_Q4_1 = 3,
    ADAK_FTYPE_Q8_0 = 7,
    ADAK_FTYPE_Q5_0 = 8,
    ADAK_FTYPE_Q5_1 = 9,
    ADAK_FTYPE_Q2_K = 10,
    ADAK_FTYPE_Q3_K_S = 11,
    ADAK_FTYPE_Q3_K_M = 12,
    ADAK_FTYPE_Q3_K_L = 13,
    ADAK_FTYPE_Q4_K_S = 14,
    ADAK_FTYPE_Q4_K_M = 15,
    ADAK_FTYPE_Q5_K_S = 16,
    ADAK_FTYPE_Q5_K_M = 17,
    ADAK_FTYPE_Q6_K = 18,
    ADAK_FTYPE_IQ4_NL = 25,
    ADAK_FTYPE_IQ4_XS = 30,
    ADAK_FTYPE_MXFP4_MOE = 38  /* expert tensors MXFP4, the rest Q8_0 */
};

/**
 * Parameters of adak_model_quantize. Fields are only ever appended; `size`
 * tells the library which fields the caller knows. Always initialise with
 * adak_quantize_params_init(&p, sizeof p), then change fields.
 */
typedef struct adak_quantize_params {
    uint32_t size;            /* sizeof(adak_quantize_params) as the caller compiled it */
    int32_t ftype;            /* enum adak_ftype (default ADAK_FTYPE_Q8_0) */
    int32_t n_threads;        /* <= 0: all cores (default 0); the output does not depend on it */
    int32_t allow_requantize; /* 1 (default): already-quantized tensors are dequantized and
                                 quantized again (llama.cpp's --allow-requantize); 0: they are
                                 ADAK_ERR_UNSUPPORTED */
} adak_quantize_params;

/**
 * Fills `params` (of `size` bytes, normally sizeof(adak_quantize_params))
 * with the defaults and sets params->size = size. Returns ADAK_OK, or
 * ADAK_ERR_INVALID_ARGUMENT if params is NULL or size is smaller than this
 * first version of the struct (16 bytes); then nothing is written.
 */
int adak_quantize_params_init(adak_quantize_params *params, size_t size);

/**
 * Quantizes the GGUF model at `in_path` into `out_path`, writing the same
 * bytes as llama.cpp's quantizer (llama_model_quantize with its default
 * parameters and no importance matrix) for the same input and file type: the
 * same per-tensor types (e.g. Q4_K_M bumps some attn_v/ffn_down to Q6_K, rows
 * that are not a multiple of 256 fall back to 32-element types, norms and
 * routers stay F32), quantized values, metadata (copied, plus
 * general.file_type and general.quantization_version) and layout. `params`
 * may be NULL for the defaults. The output is written to a temporary file
 * beside `out_path` and renamed into place. Returns ADAK_OK, or
 * ADAK_ERR_INVALID_ARGUMENT (NULL/non-UTF-8/empty paths, bad params or
 * ftype), ADAK_ERR_IO, ADAK_ERR_FORMAT (malformed input, inf/NaN in a tensor,
 * a quantized scale that overflows), ADAK_ERR_UNSUPPORTED (an input tensor
 * type that cannot be dequantized, requantizing with allow_requantize = 0),
 * ADAK_ERR_OUT_OF_MEMORY. Thread-safe.
 */
int adak_model_quantize(const char *in_path, const char *out_path, const adak_quantize_params *params);

/* ===========================================================================
 * Batched decoding of several sessions (since 0.6)
 * ========================================================================= */

/**
 * Appends tokens to several sessions of ONE model and runs them in ONE forward
 * pass, as llama_decode runs a llama_batch of several sequences: every weight
 * matrix is read once for all rows (the dense products take all rows as one
 * batch; each MoE row keeps its session's routing policy, allocator and
 * budget), while RoPE, the KV cache and attention are per session. Each
 * session then holds the logits of its last token, exactly those
 * adak_session_evaluate would give for the same tokens alone (bit for bit),
 * and is sampled as usual (adak_session_sample with its own settings).
 *
 * `tokens` holds the sessions' tokens back to back (session 0's first);
 * n_tokens[i] of them belong to sessions[i] (n_tokens NULL: one token each,
 * the decode step). A token left pending by adak_session_generate is
 * evaluated first (then n_tokens[i] may be 0). Decode tokens and chunks of
 * newcomers' prompts mix in one call; a server keeps long prompts from
 * stalling the streams by giving each step every decoding session's token
 * first and then at most a fixed number of prompt tokens (python/adak/server.py).
 * The pass runs with sessions[0]'s threads and working memory: all tokens
 * together must fit its n_batch. Sessions must be distinct; a session must
 * not be used by another thread during the call.
 * Errors (no session changes): ADAK_ERR_INVALID_ARGUMENT (NULL/invalid or
 * repeated sessions, sessions of different models, n_sessions 0 or above
 * 65536, NULL tokens with tokens to read, a token outside [0, n_vocab), a
 * session with nothing to evaluate, more tokens than n_batch, a call from a
 * session's own token callback), ADAK_ERR_CONTEXT_FULL (a session's tokens do
 * not fit its context), ADAK_ERR_UNSUPPORTED (several sessions of a model with
 * multi-head latent attention), ADAK_ERR_OUT_OF_MEMORY.
 */
int adak_batch_decode(adak_session *const *sessions, size_t n_sessions, const adak_token *tokens,
                      const size_t *n_tokens);

#ifdef __cplusplus
}
#endif

#endif /* ADAK_H */

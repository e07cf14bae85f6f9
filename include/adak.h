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
#define ADAK_VERSION_MINOR 1
#define ADAK_VERSION_PATCH 0
/* MAJOR * 10000 + MINOR * 100 + PATCH, e.g. 100 for 0.1.0. */
#define ADAK_VERSION_NUMBER \
    (ADAK_VERSION_MAJOR * 10000 + ADAK_VERSION_MINOR * 100 + ADAK_VERSION_PATCH)
#define ADAK_VERSION_STRING "0.1.0"

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
 * Load-time parameters. Fields are only ever appended; `size` tells the
 * library which fields the caller knows. Always initialise with
 * adak_model_params_init(&p, sizeof p), then change fields.
 */
typedef struct adak_model_params {
    uint32_t size;        /* sizeof(adak_model_params) as the caller compiled it */
    int32_t weight_type;  /* enum adak_weight_type */
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
 * (NULL path/out, bad params). Thread-safe.
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
 * large), ADAK_ERR_OUT_OF_MEMORY (the KV cache cannot be allocated).
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
 * Changes a floating-point setting. Keys and ranges:
 *   "temperature"    >= 0, finite; 0 (or less than 1e-6) means greedy
 *   "top_p"          (0, 1]; 1 disables
 *   "min_p"          [0, 1]; 0 disables
 *   "repeat_penalty" > 0, finite; 1 disables
 * The new value applies from the next sample. Returns ADAK_OK or
 * ADAK_ERR_INVALID_ARGUMENT (NULL/invalid session, NULL/unknown key, NaN,
 * out of range); the setting is then unchanged.
 */
int adak_session_set_float(adak_session *session, const char *key, double value);

/**
 * Reads a floating-point setting (the keys of adak_session_set_float) into
 * *value. Returns ADAK_OK or ADAK_ERR_INVALID_ARGUMENT (*value unchanged).
 */
int adak_session_get_float(const adak_session *session, const char *key, double *value);

/**
 * Changes an integer setting. Keys and ranges:
 *   "top_k"          >= 0; 0 disables
 *   "repeat_last_n"  [0, 2^20]; tokens of history the repeat penalty looks at
 *   "seed"           >= 0; the random sequence restarts from it at the next
 *                    adak_session_reset (adak_session_params.seed seeds a new
 *                    session)
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

/* ---------------------------------------------------------------------------
 * Loading from memory
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

#ifdef __cplusplus
}
#endif

#endif /* ADAK_H */

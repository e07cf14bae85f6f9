// adak.hpp — a small header-only C++17 wrapper over the C API of libadak (adak.h):
// RAII handles (std::unique_ptr with the library's destructors), exceptions carrying the
// library's status and message, std::string / std::vector in and out, and std::function
// callbacks for streaming. Thread rules are those of adak.h: a Model may be shared, a Session
// is used by one thread at a time.
#pragma once

#include <adak.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace adak {

/// A failed libadak call: status() is the ADAK_ERR_* code, what() the library's message.
class Error : public std::runtime_error {
public:
    Error(int status, const std::string &message)
        : std::runtime_error(message + " [" + adak_status_string(status) + "]"), status_(status) {}
    int status() const noexcept { return status_; }

private:
    int status_;
};

inline void check(int status) {
    if (status != ADAK_OK) throw Error(status, adak_last_error());
}

/// Throws unless the loaded library has the major version this header was compiled with.
inline void check_version() {
    if (adak_version_number() / 10000 != ADAK_VERSION_MAJOR)
        throw Error(ADAK_ERR_UNSUPPORTED, std::string("libadak ") + adak_version() +
                                              " does not match adak.h " + ADAK_VERSION_STRING);
}

struct ModelDeleter {
    void operator()(adak_model *m) const noexcept { adak_model_free(m); }
};
struct SessionDeleter {
    void operator()(adak_session *s) const noexcept { adak_session_free(s); }
};
struct AllocatorDeleter {
    void operator()(adak_allocator *a) const noexcept { adak_allocator_free(a); }
};

class Session;

class Model {
public:
    explicit Model(const std::string &path, int weight_type = ADAK_WEIGHT_DEFAULT) {
        adak_model_params params;
        check(adak_model_params_init(&params, sizeof params));
        params.weight_type = weight_type;
        adak_model *raw = nullptr;
        check(adak_model_load(path.c_str(), &params, &raw));
        handle_.reset(raw);
    }

    adak_model *get() const noexcept { return handle_.get(); }

    int64_t get_int(const char *key) const {
        int64_t v = 0;
        check(adak_model_get_int(get(), key, &v));
        return v;
    }
    std::string get_string(const char *key) const {
        const char *s = adak_model_get_string(get(), key);
        if (!s && std::string_view(key) != "chat_template") check(ADAK_ERR_INVALID_ARGUMENT);
        return s ? s : "";
    }
    std::string arch() const { return get_string("arch"); }
    std::string name() const { return get_string("name"); }
    int32_t n_vocab() const { return static_cast<int32_t>(get_int("n_vocab")); }
    bool is_eog(adak_token t) const noexcept { return adak_model_is_eog(get(), t) != 0; }

    std::vector<adak_token> tokenize(std::string_view text, bool add_special = true,
                                     bool parse_special = false) const {
        uint32_t flags = (add_special ? ADAK_TOKENIZE_ADD_SPECIAL : 0) |
                         (parse_special ? ADAK_TOKENIZE_PARSE_SPECIAL : 0);
        size_t n = 0;
        int st = adak_model_tokenize(get(), text.data(), text.size(), flags, nullptr, 0, &n);
        if (st != ADAK_ERR_BUFFER_TOO_SMALL) check(st);
        std::vector<adak_token> tokens(n);
        check(adak_model_tokenize(get(), text.data(), text.size(), flags, tokens.data(), tokens.size(), &n));
        tokens.resize(n);
        return tokens;
    }

    /// Renders {role, content} messages with the model's chat template (since 0.5).
    std::string apply_chat_template(const std::vector<std::pair<std::string, std::string>> &messages,
                                    bool add_assistant = true) const {
        std::vector<adak_chat_message> raw;
        for (const auto &m : messages) raw.push_back({m.first.c_str(), m.second.c_str()});
        size_t n = 0;
        int st = adak_model_apply_chat_template(get(), raw.data(), raw.size(), add_assistant, nullptr, 0, &n);
        if (st != ADAK_ERR_BUFFER_TOO_SMALL) check(st);
        std::string text(n + 1, '\0');
        check(adak_model_apply_chat_template(get(), raw.data(), raw.size(), add_assistant, text.data(), text.size(), &n));
        text.resize(n);
        return text;
    }

    std::string detokenize(const std::vector<adak_token> &tokens) const {
        size_t n = 0;
        int st = adak_model_detokenize(get(), tokens.data(), tokens.size(), 0, nullptr, 0, &n);
        if (st != ADAK_ERR_BUFFER_TOO_SMALL) check(st);
        std::string text(n, '\0');
        check(adak_model_detokenize(get(), tokens.data(), tokens.size(), 0, text.data(), text.size(), &n));
        return text;
    }

private:
    std::unique_ptr<adak_model, ModelDeleter> handle_;
};

/// An Ada-K allocator made for one model (identity or loaded from a file).
class Allocator {
public:
    static Allocator identity(const Model &model) {
        adak_allocator *raw = nullptr;
        check(adak_allocator_identity(model.get(), &raw));
        return Allocator(raw);
    }
    static Allocator load(const Model &model, const std::string &path) {
        adak_allocator *raw = nullptr;
        check(adak_allocator_load(model.get(), path.c_str(), &raw));
        return Allocator(raw);
    }
    void save(const std::string &path) const { check(adak_allocator_save(get(), path.c_str())); }
    adak_allocator *get() const noexcept { return handle_.get(); }

private:
    explicit Allocator(adak_allocator *raw) : handle_(raw) {}
    std::unique_ptr<adak_allocator, AllocatorDeleter> handle_;
};

class Session {
public:
    /// n_ctx, n_threads: 0 picks the library's default.
    explicit Session(const Model &model, int32_t n_ctx = 0, int32_t n_threads = 0) {
        adak_session_params params;
        check(adak_session_params_init(&params, sizeof params));
        params.n_ctx = n_ctx;
        params.n_threads = n_threads;
        adak_session *raw = nullptr;
        check(adak_session_create(model.get(), &params, &raw));
        handle_.reset(raw);
    }

    adak_session *get() const noexcept { return handle_.get(); }

    /// Sampling settings as one unit: read them, change fields, write them back (all or nothing).
    adak_sampling_params sampling() const {
        adak_sampling_params p{};
        p.size = sizeof p;
        check(adak_session_get_sampling(get(), &p));
        return p;
    }
    void set_sampling(const adak_sampling_params &params) { check(adak_session_set_sampling(get(), &params)); }
    int64_t position() const {
        int64_t p = adak_session_position(get());
        if (p < 0) check(static_cast<int>(p));
        return p;
    }
    void reset() { check(adak_session_reset(get())); }
    /// The tokens of the context; truncate(p) rewinds it to its first p (since 0.5).
    std::vector<adak_token> tokens() const {
        size_t n = 0;
        int st = adak_session_get_tokens(get(), nullptr, 0, &n);
        if (st != ADAK_ERR_BUFFER_TOO_SMALL) check(st);
        std::vector<adak_token> out(n);
        check(adak_session_get_tokens(get(), out.data(), out.size(), &n));
        return out;
    }
    void truncate(int64_t position) { check(adak_session_truncate(get(), position)); }
    /// Why the last generate stopped: enum adak_stop_reason (since 0.5).
    int stop_reason() const {
        int32_t r = 0;
        check(adak_session_stop_reason(get(), &r));
        return r;
    }

    /// Routing settings (policy, k bounds, thresholds, budget) as one unit, validated together.
    adak_routing_params routing() const {
        adak_routing_params p{};
        p.size = sizeof p;
        check(adak_session_get_routing(get(), &p));
        return p;
    }
    void set_routing(const adak_routing_params &params) { check(adak_session_set_routing(get(), &params)); }
    /// Changes only the policy (enum adak_routing_policy), keeping the other settings.
    void set_policy(int policy) {
        adak_routing_params p = routing();
        p.policy = policy;
        set_routing(p);
    }
    /// The session keeps its own reference: the Allocator may be destroyed afterwards.
    void set_allocator(const Allocator *allocator) {
        check(adak_session_set_allocator(get(), allocator ? allocator->get() : nullptr));
    }
    /// Expert-FLOPs budget as a fraction of static Top-K (0 < fraction <= 16).
    void set_budget(double fraction) { check(adak_session_set_flops_budget(get(), fraction)); }
    void clear_budget() { check(adak_session_clear_flops_budget(get())); }
    adak_stats stats() const {
        adak_stats st{};
        st.size = sizeof st;
        check(adak_session_get_stats(get(), &st));
        return st;
    }
    void reset_stats() { check(adak_session_reset_stats(get())); }
    void evaluate(const std::vector<adak_token> &tokens, bool all_logits = false) {
        check(adak_session_evaluate(get(), tokens.data(), tokens.size(),
                                    all_logits ? ADAK_EVALUATE_ALL_LOGITS : 0));
    }
    adak_token sample() {
        adak_token t = 0;
        check(adak_session_sample(get(), &t));
        return t;
    }

    /// Streams pieces to `on_piece`; return false from it to stop. Returns the token count.
    /// An exception thrown by `on_piece` stops generation and is rethrown here.
    size_t generate(const std::vector<adak_token> &prompt, int32_t max_tokens,
                    const std::function<bool(adak_token, std::string_view)> &on_piece) {
        struct Ctx {
            const std::function<bool(adak_token, std::string_view)> *fn;
            std::exception_ptr error;
        } ctx{&on_piece, nullptr};
        auto trampoline = [](void *user, adak_token token, const char *piece, size_t len) -> int {
            auto *c = static_cast<Ctx *>(user);
            try {
                return (*c->fn)(token, std::string_view(piece, len)) ? 0 : 1;
            } catch (...) {
                c->error = std::current_exception();
                return 1;
            }
        };
        size_t n = 0;
        int st = adak_session_generate(get(), prompt.data(), prompt.size(), max_tokens, trampoline, &ctx, &n);
        if (ctx.error) std::rethrow_exception(ctx.error);
        check(st);
        return n;
    }

private:
    std::unique_ptr<adak_session, SessionDeleter> handle_;
};

}  // namespace adak

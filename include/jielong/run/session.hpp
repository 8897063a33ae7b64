// Session: one sequence being read and written by a shared, immutable Model.
//
// A Session owns everything that changes while a sequence grows: the KV
// cache, the scratch arena, the token history, the logits and the sampler
// chain. All of it is allocated in `create`; `prefill`, `append` and `step`
// allocate nothing. Many sessions may use one Model from many threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "jielong/core/executor.hpp"
#include "jielong/core/status.hpp"
#include "jielong/kernels/kernels.hpp"
#include "jielong/model/kv_cache.hpp"
#include "jielong/model/model.hpp"
#include "jielong/model/transformer.hpp"
#include "jielong/sample/chain.hpp"

namespace jielong::run {

using sample::Token;

// The kernel backend a session's forward pass runs on (chosen once, at the top).
enum class Backend : uint8_t { best, scalar, xsimd, highway };

inline const char* backend_name(Backend b) noexcept {
  switch (b) {
    case Backend::best: return "best";
    case Backend::scalar: return "scalar";
    case Backend::xsimd: return "xsimd";
    case Backend::highway: return "highway";
  }
  return "?";
}

struct SessionOptions {
  size_t n_ctx = 0;      // positions the KV cache holds; 0: the model's training context
  size_t n_batch = 64;   // prompt tokens per forward pass (the matmul batch)
  model::KvType kv_type = model::KvType::f32;
  Backend backend = Backend::best;
  // Where parallel loops run. nullptr: the session starts its own pool of
  // n_threads threads (0: one per hardware thread).
  Executor* executor = nullptr;
  size_t n_threads = 1;
  sample::SamplerParams sampling = sample::SamplerParams::greedy();
  // When the context is full: false → an error; true → keep the first
  // n_keep tokens, drop the oldest half of the rest and carry on.
  bool context_shift = false;
  size_t n_keep = 0;
};

class Session {
 public:
  Session() = default;
  Session(Session&&) noexcept = default;
  Session& operator=(Session&&) noexcept = default;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  static Result<Session> create(std::shared_ptr<const model::Model> m, const SessionOptions& opts) {
    if (!m) return make_error(Code::invalid_argument, "session: no model");
    const auto& hp = m->hparams();
    Session s;
    s.model_ = std::move(m);
    s.opts_ = opts;
    s.opts_.executor = nullptr;
    const size_t n_ctx = opts.n_ctx ? opts.n_ctx : hp.n_ctx_train;
    if (n_ctx == 0) return make_error(Code::invalid_argument, "session: context size is 0");
    if (opts.n_batch == 0) return make_error(Code::invalid_argument, "session: n_batch is 0");
    if (opts.context_shift && opts.n_keep + 2 > n_ctx)
      return make_error(Code::invalid_argument, "session: n_keep " + std::to_string(opts.n_keep) +
                                                    " leaves no room to shift a context of " + std::to_string(n_ctx));
    s.opts_.n_ctx = n_ctx;
    s.opts_.n_batch = std::min(opts.n_batch, n_ctx);
    if (opts.executor) {
      s.executor_ = opts.executor;
    } else {
      s.own_pool_ = std::make_unique<ThreadPool>(opts.n_threads);
      s.executor_ = s.own_pool_.get();
    }
    JIELONG_ASSIGN_OR_RETURN(s.kv_, model::KvCache::create(hp.n_layers, n_ctx, hp.n_kv_heads * hp.head_dim, opts.kv_type));
    JIELONG_ASSIGN_OR_RETURN(s.scratch_, model::Scratch::create(*s.model_, n_ctx, s.opts_.n_batch));
    JIELONG_ASSIGN_OR_RETURN(s.sampler_, sample::SamplerChain::from_params(opts.sampling, hp.n_vocab));
    s.logits_.assign(hp.n_vocab, 0.0f);
    s.tokens_.reserve(n_ctx);
    s.shared_executor_ = opts.executor;
    return s;
  }

  // Appends prompt tokens; afterwards logits() belong to the last one.
  // Too many tokens for the context is an error (or a shift, if enabled),
  // and the session is left as it was before the call.
  Status prefill(std::span<const Token> tokens) { return feed(tokens, nullptr); }

  // As prefill, and writes the logits of every token: all_logits[n][n_vocab].
  Status prefill_all(std::span<const Token> tokens, std::span<float> all_logits) {
    if (all_logits.size() < tokens.size() * n_vocab())
      return make_error(Code::invalid_argument, "session: all_logits needs " +
                                                    std::to_string(tokens.size() * n_vocab()) + " floats");
    return feed(tokens, all_logits.data());
  }

  // Appends one token chosen by the host.
  Status append(Token t) { return feed(std::span<const Token>(&t, 1), nullptr); }

  // Samples the next token from the current logits with the session's chain,
  // appends it and returns it.
  Result<Token> step() {
    if (tokens_.empty()) return make_error(Code::invalid_argument, "session: step() before any prefill");
    const Token t = sampler_.sample(logits_);
    sampler_.accept(t);
    JIELONG_TRY(append(t));
    return t;
  }

  // Picks the next token without appending it (for generate(), which checks
  // it before paying for its forward pass).
  Token sample_next() {
    const Token t = sampler_.sample(logits_);
    sampler_.accept(t);
    return t;
  }

  // Logits of the last token, [n_vocab]; empty before any token.
  std::span<const float> logits() const noexcept {
    return tokens_.empty() ? std::span<const float>() : std::span<const float>(logits_);
  }

  // Forgets the last n tokens. The KV rows past the new end are simply
  // overwritten later; the logits of the new last token are recomputed.
  Status rewind(size_t n) {
    if (n > tokens_.size())
      return make_error(Code::out_of_range, "session: rewind by " + std::to_string(n) + " but only " +
                                                std::to_string(tokens_.size()) + " tokens");
    if (n == 0) return Status::ok();
    tokens_.resize(tokens_.size() - n);
    if (tokens_.empty()) return Status::ok();
    // Recompute the new last token's logits: the same forward pass at the
    // same position over the same cache prefix writes the same numbers.
    const Token last = tokens_.back();
    tokens_.pop_back();
    return append(last);
  }

  // A second session continuing from this one's tokens without recomputing
  // them. Shared: the Model (weights), and the executor if the host supplied
  // one. Copied: the filled part of the KV cache, the token history, the
  // logits, the sampler chain (same RNG state, penalty window, mirostat mu).
  // Fresh: the scratch arena, and a thread pool of its own if this session
  // made one.
  Result<Session> fork() const {
    Session s;
    s.model_ = model_;
    s.opts_ = opts_;
    if (shared_executor_) {
      s.executor_ = shared_executor_;
    } else {
      s.own_pool_ = std::make_unique<ThreadPool>(opts_.n_threads);
      s.executor_ = s.own_pool_.get();
    }
    s.shared_executor_ = shared_executor_;
    JIELONG_ASSIGN_OR_RETURN(s.kv_, kv_.copy_prefix(tokens_.size()));
    JIELONG_ASSIGN_OR_RETURN(s.scratch_, model::Scratch::create(*model_, opts_.n_ctx, opts_.n_batch));
    s.sampler_ = sampler_.clone();
    s.logits_ = logits_;
    s.tokens_.reserve(opts_.n_ctx);
    s.tokens_ = tokens_;
    return s;
  }

  size_t position() const noexcept { return tokens_.size(); }  // tokens in the cache
  size_t capacity() const noexcept { return opts_.n_ctx; }     // positions it can hold
  std::span<const Token> tokens() const noexcept { return tokens_; }
  size_t n_vocab() const noexcept { return logits_.size(); }
  const model::Model& model() const noexcept { return *model_; }
  const std::shared_ptr<const model::Model>& model_ptr() const noexcept { return model_; }
  sample::SamplerChain& sampler() noexcept { return sampler_; }
  const SessionOptions& options() const noexcept { return opts_; }
  Executor& executor() noexcept { return *executor_; }

  // Replaces the sampler chain (allocates; not for the per-token path).
  Status set_sampling(const sample::SamplerParams& p) {
    JIELONG_ASSIGN_OR_RETURN(sampler_, sample::SamplerChain::from_params(p, n_vocab()));
    opts_.sampling = p;
    return Status::ok();
  }

 private:
  Status feed(std::span<const Token> tokens, float* all_logits) {
    if (tokens.empty()) return Status::ok();
    const size_t n_vocab = logits_.size();
    for (size_t i = 0; i < tokens.size(); ++i)
      if (tokens[i] < 0 || static_cast<size_t>(tokens[i]) >= n_vocab)
        return make_error(Code::out_of_range, "session: token " + std::to_string(tokens[i]) + " at index " +
                                                  std::to_string(i) + " is outside the vocabulary of " +
                                                  std::to_string(n_vocab));
    if (tokens_.size() + tokens.size() > opts_.n_ctx) {
      if (!opts_.context_shift || tokens.size() > opts_.n_ctx - opts_.n_keep - 1)
        return make_error(Code::out_of_range, "session: " + std::to_string(tokens_.size()) + " tokens + " +
                                                  std::to_string(tokens.size()) + " new exceed the context of " +
                                                  std::to_string(opts_.n_ctx) + " positions");
      JIELONG_TRY(shift_context(tokens.size()));
    }
    for (size_t i = 0; i < tokens.size(); i += opts_.n_batch) {
      const size_t n = std::min(opts_.n_batch, tokens.size() - i);
      const bool last_chunk = i + n == tokens.size();
      float* out = all_logits ? all_logits + i * n_vocab : (last_chunk ? logits_.data() : nullptr);
      const model::LogitsFor which =
          all_logits ? model::LogitsFor::all : (last_chunk ? model::LogitsFor::last : model::LogitsFor::none);
      run_forward(tokens.data() + i, n, tokens_.size(), out, which);
      tokens_.insert(tokens_.end(), tokens.begin() + static_cast<ptrdiff_t>(i),
                     tokens.begin() + static_cast<ptrdiff_t>(i + n));
    }
    if (all_logits) std::memcpy(logits_.data(), all_logits + (tokens.size() - 1) * n_vocab, n_vocab * sizeof(float));
    return Status::ok();
  }

  // Dispatch happens here, once per forward pass.
  void run_forward(const Token* t, size_t n, size_t pos0, float* out, model::LogitsFor which) noexcept {
    switch (opts_.backend) {
      case Backend::scalar: return fwd<kernels::Scalar>(t, n, pos0, out, which);
      case Backend::xsimd: return fwd<kernels::Xsimd>(t, n, pos0, out, which);
      case Backend::highway: return fwd<kernels::Highway>(t, n, pos0, out, which);
      case Backend::best: return fwd<kernels::Best>(t, n, pos0, out, which);
    }
  }
  template <class B>
  void fwd(const Token* t, size_t n, size_t pos0, float* out, model::LogitsFor which) noexcept {
    model::Transformer<B>(*model_, kv_, scratch_, *executor_).forward(t, n, pos0, out, which);
  }

  // Keeps tokens [0, n_keep), drops enough of the oldest after them to fit
  // `incoming` more plus half the remaining room, and recomputes the kept
  // tail (its keys were rotated for their old positions).
  Status shift_context(size_t incoming) {
    const size_t n_keep = std::min(opts_.n_keep, tokens_.size());
    const size_t room = opts_.n_ctx - n_keep;
    const size_t tail = tokens_.size() - n_keep;
    const size_t want_tail = room > incoming ? (room - incoming) / 2 : 0;
    const size_t keep_tail = std::min(tail, want_tail);
    const size_t n_discard = tail - keep_tail;
    const size_t start = n_keep + n_discard;
    // Move the kept tail's tokens down and recompute them at their new positions.
    std::memmove(tokens_.data() + n_keep, tokens_.data() + start, keep_tail * sizeof(Token));
    tokens_.resize(n_keep + keep_tail);
    for (size_t i = n_keep; i < tokens_.size(); i += opts_.n_batch) {
      const size_t n = std::min(opts_.n_batch, tokens_.size() - i);
      run_forward(tokens_.data() + i, n, i, logits_.data(), model::LogitsFor::last);
    }
    return Status::ok();
  }

  std::shared_ptr<const model::Model> model_;
  SessionOptions opts_;
  std::unique_ptr<ThreadPool> own_pool_;
  Executor* shared_executor_ = nullptr;
  Executor* executor_ = nullptr;
  model::KvCache kv_;                 // [n_layers][n_ctx][kv_dim] K and V
  model::Scratch scratch_;            // forward-pass buffers for n_batch tokens
  sample::SamplerChain sampler_;
  std::vector<float> logits_;         // [n_vocab] of the last token
  std::vector<Token> tokens_;         // [position] the sequence so far (capacity n_ctx)
};

}  // namespace jielong::run

// Session: one sequence being read and written by a shared, immutable Model.
//
// A Session owns everything that changes while a sequence grows: the KV
// cache, the scratch arena, the token history, the logits and the sampler
// chain. All of it is allocated in `create`; `prefill`, `append`, `step` and
// `advance` allocate nothing. Many sessions may use one Model from many
// threads.
//
// For hosts with a frame budget (games, UIs): `queue` + `advance(budget)`
// run the same forward passes in slices. A pass that outlives the budget is
// stopped at the next parallel-loop boundary (a matmul, at most a fraction of
// a layer) and resumed on the next call, on a stack of its own
// (run/time_slicer.hpp), so the numbers are those of `prefill`/`step`
// whatever the budget. `cancel()` from
// any thread makes the running call return Code::cancelled within one
// parallel task (a slice of one matmul) or one token's attention, the
// session rewound to where that call started (a cancel during a context
// shift keeps the shifted session: the dropped tokens are gone).
//
// Do not move a Session while an `advance` slice is suspended (busy()).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
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
#include "jielong/run/time_slicer.hpp"
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

// What one `advance` call did.
struct AdvanceResult {
  size_t prompt_tokens = 0;  // queued prompt tokens that entered the cache
  size_t generated = 0;      // sampled tokens appended (read them from tokens())
  bool stopped = false;      // the stop token was sampled (it is not appended)
  bool done = false;         // nothing left to do: the queue is empty
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
    JIELONG_ASSIGN_OR_RETURN(s.scratch_, model::Scratch::create(*s.model_, n_ctx, s.opts_.n_batch,
                                                                s.executor_->concurrency()));
    JIELONG_ASSIGN_OR_RETURN(s.sampler_, sample::SamplerChain::from_params(opts.sampling, hp.n_vocab));
    s.logits_.assign(hp.n_vocab, 0.0f);
    s.tokens_.reserve(n_ctx);
    s.shared_executor_ = opts.executor;
    JIELONG_TRY(s.init_slicing());
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
  // If cancelled, the sampler (RNG, mirostat mu) is as it was before the call.
  Result<Token> step() {
    if (tokens_.empty()) return make_error(Code::invalid_argument, "session: step() before any prefill");
    const sample::SamplerChain::State before = sampler_.state();
    const Token t = sampler_.sample(logits_);
    if (Status st = append(t); !st.is_ok()) {
      sampler_.set_state(before);
      return st;
    }
    accept(t);
    return t;
  }

  // Picks the next token without appending it (for generate(), which checks
  // it before paying for its forward pass).
  Token sample_next() {
    const Token t = sampler_.sample(logits_);
    accept(t);
    return t;
  }

  // Tells the sampler chain (penalties) that `t` is part of the sequence.
  void accept(Token t) noexcept { sampler_.accept(t); }

  // ---- Time-sliced work -------------------------------------------------

  // Queues prompt tokens and then `n_generate` sampled tokens for advance().
  // Generation ends early at `stop` (not appended; -1: none) or when the
  // context is full. The prompt must fit the context (no shift here).
  Status queue(std::span<const Token> prompt, size_t n_generate = 0, Token stop = -1) {
    if (busy()) return make_error(Code::invalid_argument, "session: queue() while a slice is suspended");
    for (size_t i = 0; i < prompt.size(); ++i)
      if (prompt[i] < 0 || static_cast<size_t>(prompt[i]) >= n_vocab())
        return make_error(Code::out_of_range, "session: queued token " + std::to_string(prompt[i]) + " at index " +
                                                  std::to_string(i) + " is outside the vocabulary of " +
                                                  std::to_string(n_vocab()));
    const size_t waiting = pending_.size() - pending_done_;
    if (tokens_.size() + waiting + prompt.size() > opts_.n_ctx)
      return make_error(Code::out_of_range, "session: " + std::to_string(tokens_.size() + waiting) + " tokens + " +
                                                std::to_string(prompt.size()) + " queued exceed the context of " +
                                                std::to_string(opts_.n_ctx) + " positions");
    if (tokens_.empty() && waiting == 0 && prompt.empty() && n_generate > 0)
      return make_error(Code::invalid_argument, "session: generation queued before any prompt");
    if (waiting == 0) {
      // A new prompt: its chunks start here, as prefill() would cut them.
      pending_.clear();
      pending_done_ = 0;
      queue_position_ = tokens_.size();
      std::memcpy(logits_saved_.data(), logits_.data(), logits_.size() * sizeof(float));
    }
    pending_.insert(pending_.end(), prompt.begin(), prompt.end());
    n_generate_ = n_generate;
    stop_ = stop;
    return Status::ok();
  }

  // Works on the queue for about `budget`, then returns; call again (next
  // frame) to continue, mid-prompt or mid-token included. Always makes some
  // progress (a budget of 0 runs until the first pause point). The numbers
  // are those of prefill() + step() whatever the budget.
  Result<AdvanceResult> advance(std::chrono::nanoseconds budget) {
    AdvanceResult r;
    TimeSlicer& sl = *slicer_;
    sl.begin_slice(TimeSlicer::clock::now() + budget);
    for (;;) {
      if (!sl.suspended()) {
        if (!next_job(r)) {
          r.done = true;
          break;
        }
        sl.start(&run_job, this);
      } else {
        sl.resume();
      }
      if (sl.suspended()) break;  // out of time inside a forward pass
      if (sl.cancelled()) {
        sl.end_slice();
        rollback_queue();
        sl.clear_cancel();
        return make_error(Code::cancelled, "session: advance() cancelled");
      }
      finish_job(r);
      if (TimeSlicer::clock::now() >= sl.deadline()) {
        r.done = pending_done_ == pending_.size() && n_generate_ == 0;
        break;
      }
    }
    sl.end_slice();
    return r;
  }

  // True while a forward pass is suspended between two advance() calls.
  bool busy() const noexcept { return slicer_ && slicer_->suspended(); }
  // Queued work left: prompt tokens not yet in the cache, tokens to generate.
  size_t queued_prompt() const noexcept { return pending_.size() - pending_done_; }
  size_t queued_generate() const noexcept { return n_generate_; }

  // Callable from any thread: the running (or, if none, the next) prefill,
  // step or advance returns Code::cancelled within one parallel task and the
  // session is back where that call started (for advance: where the
  // unfinished queue started, or before the token being generated).
  void cancel() noexcept { slicer_->request_cancel(); }

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
    if (busy()) return make_error(Code::invalid_argument, "session: fork() while a slice is suspended");
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
    JIELONG_ASSIGN_OR_RETURN(s.scratch_, model::Scratch::create(*model_, opts_.n_ctx, opts_.n_batch,
                                                                s.executor_->concurrency()));
    s.sampler_ = sampler_.clone();
    s.logits_ = logits_;
    s.tokens_.reserve(opts_.n_ctx);
    s.tokens_ = tokens_;
    JIELONG_TRY(s.init_slicing());
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
    if (busy()) return make_error(Code::invalid_argument, "session: set_sampling() while a slice is suspended");
    JIELONG_ASSIGN_OR_RETURN(sampler_, sample::SamplerChain::from_params(p, n_vocab()));
    opts_.sampling = p;
    return Status::ok();
  }

 private:
  Status feed(std::span<const Token> tokens, float* all_logits) {
    if (busy()) return make_error(Code::invalid_argument, "session: prefill/step while an advance() slice is suspended");
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
    // What a cancellation rewinds to.
    const size_t start = tokens_.size();
    std::memcpy(logits_saved_.data(), logits_.data(), n_vocab * sizeof(float));
    for (size_t i = 0; i < tokens.size(); i += opts_.n_batch) {
      const size_t n = std::min(opts_.n_batch, tokens.size() - i);
      const bool last_chunk = i + n == tokens.size();
      float* out = all_logits ? all_logits + i * n_vocab : (last_chunk ? logits_.data() : nullptr);
      const model::LogitsFor which =
          all_logits ? model::LogitsFor::all : (last_chunk ? model::LogitsFor::last : model::LogitsFor::none);
      run_forward(tokens.data() + i, n, tokens_.size(), out, which);
      if (slicer_->cancelled()) {
        tokens_.resize(start);
        std::memcpy(logits_.data(), logits_saved_.data(), n_vocab * sizeof(float));
        slicer_->clear_cancel();
        return make_error(Code::cancelled, "session: cancelled at position " + std::to_string(start + i));
      }
      tokens_.insert(tokens_.end(), tokens.begin() + static_cast<ptrdiff_t>(i),
                     tokens.begin() + static_cast<ptrdiff_t>(i + n));
    }
    if (all_logits) std::memcpy(logits_.data(), all_logits + (tokens.size() - 1) * n_vocab, n_vocab * sizeof(float));
    return Status::ok();
  }

  // Dispatch happens here, once per forward pass.
  void run_forward(const Token* t, size_t n, size_t pos0, float* out, model::LogitsFor which) noexcept {
    switch (opts_.backend) {
      case Backend::scalar: return forward_on<kernels::Scalar>(t, n, pos0, out, which);
      case Backend::xsimd: return forward_on<kernels::Xsimd>(t, n, pos0, out, which);
      case Backend::highway: return forward_on<kernels::Highway>(t, n, pos0, out, which);
      case Backend::best:  // the one place the CPU is asked
        if (kernels::vnni_available()) return forward_on<kernels::Avx512Vnni>(t, n, pos0, out, which);
        return forward_on<kernels::Highway>(t, n, pos0, out, which);
    }
  }
  template <class B>
  void forward_on(const Token* t, size_t n, size_t pos0, float* out, model::LogitsFor which) noexcept {
    model::Transformer<B>(*model_, kv_, scratch_, slicer_->gate(), &slicer_->cancel_flag()).forward(t, n, pos0, out, which);
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
    // A cancel here cannot restore the dropped tokens: the session keeps
    // what was recomputed (the logits of its last token, or, if no batch was
    // finished, those of the last token before the shift).
    for (size_t i = n_keep; i < tokens_.size(); i += opts_.n_batch) {
      const size_t n = std::min(opts_.n_batch, tokens_.size() - i);
      run_forward(tokens_.data() + i, n, i, logits_saved_.data(), model::LogitsFor::last);
      if (slicer_->cancelled()) {
        tokens_.resize(i);
        slicer_->clear_cancel();
        return make_error(Code::cancelled, "session: cancelled during a context shift; " + std::to_string(i) +
                                               " tokens kept");
      }
      std::memcpy(logits_.data(), logits_saved_.data(), logits_.size() * sizeof(float));
    }
    return Status::ok();
  }

  // ---- Slices and cancellation ------------------------------------------

  // The forward pass advance() runs on the time slicer's fiber.
  struct Job {
    const Token* tokens = nullptr;
    size_t n = 0, pos0 = 0;
    float* out = nullptr;
    model::LogitsFor which = model::LogitsFor::none;
    bool generating = false;  // the job is one sampled token (else a prompt chunk)
    Token token = 0;
    sample::SamplerChain::State sampler_before{};
  };

  Status init_slicing() {
    JIELONG_ASSIGN_OR_RETURN(slicer_, TimeSlicer::create(executor_));
    logits_saved_.assign(logits_.size(), 0.0f);
    pending_.reserve(opts_.n_ctx);
    return Status::ok();
  }

  static void run_job(void* self) noexcept {
    auto* s = static_cast<Session*>(self);
    const Job& j = s->job_;
    s->run_forward(j.tokens, j.n, j.pos0, j.out, j.which);
  }

  // Picks the next forward pass of the queue; false when there is none.
  bool next_job(AdvanceResult& r) noexcept {
    Job& job = job_;
    if (pending_done_ < pending_.size()) {
      const size_t left = pending_.size() - pending_done_;
      job.generating = false;
      job.tokens = pending_.data() + pending_done_;
      job.n = std::min(opts_.n_batch, left);
      job.pos0 = tokens_.size();
      const bool last = job.n == left;
      job.out = last ? logits_.data() : nullptr;
      job.which = last ? model::LogitsFor::last : model::LogitsFor::none;
      return true;
    }
    if (n_generate_ == 0) return false;
    if (tokens_.empty() || tokens_.size() >= opts_.n_ctx) {
      n_generate_ = 0;
      return false;
    }
    job.sampler_before = sampler_.state();
    const Token t = sampler_.sample(logits_);
    if (t == stop_) {
      accept(t);
      n_generate_ = 0;
      r.stopped = true;
      return false;
    }
    std::memcpy(logits_saved_.data(), logits_.data(), logits_.size() * sizeof(float));
    job.generating = true;
    job.token = t;
    job.tokens = &job.token;
    job.n = 1;
    job.pos0 = tokens_.size();
    job.out = logits_.data();
    job.which = model::LogitsFor::last;
    return true;
  }

  void finish_job(AdvanceResult& r) noexcept {
    const Job& job = job_;
    if (job.generating) {
      accept(job.token);
      tokens_.push_back(job.token);
      --n_generate_;
      ++r.generated;
      return;
    }
    tokens_.insert(tokens_.end(), job.tokens, job.tokens + job.n);
    pending_done_ += job.n;
    r.prompt_tokens += job.n;
  }

  // After a cancelled pass: back to before the queued prompt if it was not
  // finished, else to before the token being generated. The queue is emptied.
  void rollback_queue() noexcept {
    const Job& job = job_;
    if (!job.generating) {
      tokens_.resize(queue_position_);
    } else {
      sampler_.set_state(job.sampler_before);
    }
    std::memcpy(logits_.data(), logits_saved_.data(), logits_.size() * sizeof(float));
    pending_.clear();
    pending_done_ = 0;
    n_generate_ = 0;
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
  std::unique_ptr<TimeSlicer> slicer_;  // prefill/step/advance run through its gate
  Job job_;                           // advance()'s current forward pass
  std::vector<float> logits_saved_;   // [n_vocab] what a cancellation restores
  std::vector<Token> pending_;        // [≤ n_ctx] queued prompt (capacity n_ctx)
  size_t pending_done_ = 0;           // of pending_, already in the cache
  size_t queue_position_ = 0;         // position when the queued prompt started
  size_t n_generate_ = 0;             // tokens advance() still has to sample
  Token stop_ = -1;

  friend class SessionIo;
};

}  // namespace jielong::run

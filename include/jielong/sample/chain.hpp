// A sampler chain: stages applied in order to the candidates, then one draw.
//
// The chain owns its stages, its RNG and a candidate buffer sized to the
// vocabulary at construction, so `sample()` allocates nothing. Copying a
// chain is an explicit `clone()`: the copy has the same RNG state, penalty
// window and mirostat mu, and then evolves independently.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "jielong/core/status.hpp"
#include "jielong/sample/rng.hpp"
#include "jielong/sample/samplers.hpp"

namespace jielong::sample {

// The usual knobs, in llama.cpp's meaning. Defaults sample with temperature
// 0.8, top-k 40, top-p 0.95, min-p 0.05, as llama.cpp's common defaults do.
struct SamplerParams {
  float temperature = 0.8f;      // <= 0: greedy
  int32_t top_k = 40;            // <= 0: off
  float top_p = 0.95f;           // >= 1: off
  float min_p = 0.05f;           // <= 0: off
  float typical_p = 1.0f;        // >= 1: off
  float repeat_penalty = 1.0f;   // 1: off
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  int32_t penalty_last_n = 64;   // window of accepted tokens the penalties see
  int mirostat = 0;              // 0: off, 2: mirostat v2 (replaces top-k/p/min-p/typical)
  float mirostat_tau = 5.0f;
  float mirostat_eta = 0.1f;
  std::vector<std::pair<Token, float>> logit_bias;
  uint64_t seed = 0;

  static SamplerParams greedy() {
    SamplerParams p;
    p.temperature = 0.0f;
    return p;
  }
};

using Stage = std::variant<Greedy, Dist, Temperature, TopK, TopP, MinP, TypicalP, LogitBias, Penalties, MirostatV2>;

class SamplerChain {
 public:
  SamplerChain() = default;
  SamplerChain(SamplerChain&&) noexcept = default;
  SamplerChain& operator=(SamplerChain&&) noexcept = default;

  // An empty chain over `n_vocab` candidates; add stages with `add`.
  static Result<SamplerChain> create(size_t n_vocab, uint64_t seed) {
    if (n_vocab == 0) return make_error(Code::invalid_argument, "sampler chain: vocabulary size is 0");
    SamplerChain c;
    c.buffer_ = std::make_unique_for_overwrite<TokenData[]>(n_vocab);
    c.n_vocab_ = n_vocab;
    c.rng_.reseed(seed);
    return c;
  }

  // The standard chain: logit bias → penalties → top-k → typical → top-p →
  // min-p → temperature → draw (llama.cpp's default order); greedy when
  // temperature <= 0; mirostat v2 replaces the truncations when chosen.
  static Result<SamplerChain> from_params(const SamplerParams& p, size_t n_vocab) {
    if (p.mirostat != 0 && p.mirostat != 2)
      return make_error(Code::unsupported, "sampler: mirostat " + std::to_string(p.mirostat) + " (only 0 or 2)");
    if (!(p.top_p > 0.0f)) return make_error(Code::invalid_argument, "sampler: top_p must be > 0");
    if (!(p.repeat_penalty > 0.0f)) return make_error(Code::invalid_argument, "sampler: repeat_penalty must be > 0");
    for (const auto& [id, bias] : p.logit_bias)
      if (id < 0 || static_cast<size_t>(id) >= n_vocab)
        return make_error(Code::out_of_range, "sampler: logit bias token " + std::to_string(id) +
                                                  " outside the vocabulary of " + std::to_string(n_vocab));
    JIELONG_ASSIGN_OR_RETURN(SamplerChain c, create(n_vocab, p.seed));
    if (!p.logit_bias.empty()) c.add(LogitBias{p.logit_bias});
    Penalties pen(n_vocab, p.penalty_last_n, p.repeat_penalty, p.frequency_penalty, p.presence_penalty);
    if (pen.active()) c.add(std::move(pen));
    if (p.temperature <= 0.0f) {
      c.add(Greedy{});
      return c;
    }
    if (p.mirostat == 2) {
      c.add(Temperature{p.temperature});
      c.add(MirostatV2(p.mirostat_tau, p.mirostat_eta));
      return c;
    }
    if (p.top_k > 0) c.add(TopK{p.top_k, 1});
    if (p.typical_p < 1.0f) c.add(TypicalP{p.typical_p, 1});
    if (p.top_p < 1.0f) c.add(TopP{p.top_p, 1});
    if (p.min_p > 0.0f) c.add(MinP{p.min_p, 1});
    c.add(Temperature{p.temperature});
    c.add(Dist{});
    return c;
  }

  SamplerChain& add(Stage s) {
    stages_.push_back(std::move(s));
    return *this;
  }

  // An independent copy with the same state (explicit: it copies the
  // vocabulary-sized buffers).
  SamplerChain clone() const {
    SamplerChain c;
    c.stages_ = stages_;
    c.buffer_ = std::make_unique_for_overwrite<TokenData[]>(n_vocab_);
    c.n_vocab_ = n_vocab_;
    c.rng_ = rng_;
    return c;
  }

  // Runs the stages over `logits` and returns the chosen token. If no stage
  // chose, the best remaining candidate is taken. Does not `accept`.
  Token sample(std::span<const float> logits) {
    // A chain that is only Greedy needs no candidate list: one pass over the
    // logits with the same rule (highest logit, lowest id on a tie).
    if (stages_.size() == 1 && std::holds_alternative<Greedy>(stages_[0])) {
      const size_t n = std::min(logits.size(), n_vocab_);
      if (n == 0) return 0;
      size_t best = 0;
      for (size_t i = 1; i < n; ++i)
        if (logits[i] > logits[best]) best = i;
      return static_cast<Token>(best);
    }
    Candidates c = fill_candidates(logits, std::span<TokenData>(buffer_.get(), n_vocab_));
    apply(c);
    if (c.size == 0) return 0;
    if (c.selected < 0 || static_cast<size_t>(c.selected) >= c.size) Greedy{}.apply(c, rng_);
    return c.data[c.selected].id;
  }

  // Runs the stages only (for hosts and tests that inspect the candidates).
  void apply(Candidates& c) {
    for (auto& s : stages_) std::visit([&](auto& stage) { stage.apply(c, rng_); }, s);
  }

  // Tells every stage which token was appended to the sequence (the sampled
  // one, or a prompt token the penalties should know about).
  void accept(Token t) {
    for (auto& s : stages_) std::visit([&](auto& stage) { stage.accept(t); }, s);
  }

  void reset() {
    for (auto& s : stages_) std::visit([&](auto& stage) { stage.reset(); }, s);
  }

  // The penalties' window of accepted tokens (none without a penalty stage):
  // what a saved session carries so that a restored one penalises the same.
  const Penalties* penalties() const noexcept {
    for (const auto& s : stages_)
      if (const auto* p = std::get_if<Penalties>(&s)) return p;
    return nullptr;
  }

  // What sampling changes besides the penalty window: the RNG position and
  // mirostat's mu. A caller that must undo a draw (a cancelled step) saves
  // and restores it; a saved session carries it.
  struct State {
    Rng::State rng{};
    bool has_mu = false;
    float mu = 0.0f;
  };
  State state() const noexcept {
    State st{rng_.state(), false, 0.0f};
    for (const auto& s : stages_)
      if (const auto* m = std::get_if<MirostatV2>(&s)) st.has_mu = true, st.mu = m->mu;
    return st;
  }
  // Sets the RNG, and mu when both the state and this chain have a mirostat
  // stage (otherwise the chain's mu is left as it is).
  void set_state(const State& st) noexcept {
    rng_.set_state(st.rng);
    if (!st.has_mu) return;
    for (auto& s : stages_)
      if (auto* m = std::get_if<MirostatV2>(&s)) m->mu = st.mu;
  }

  Rng& rng() noexcept { return rng_; }
  size_t n_vocab() const noexcept { return n_vocab_; }
  size_t n_stages() const noexcept { return stages_.size(); }

 private:
  std::vector<Stage> stages_;
  // [n_vocab] candidates, reused every token. Left uninitialised: a greedy
  // chain never writes it, so its pages are never touched (512 KB at a
  // 32k vocabulary).
  std::unique_ptr<TokenData[]> buffer_;
  size_t n_vocab_ = 0;
  Rng rng_;
};

}  // namespace jielong::sample

// Composable samplers over a candidate list.
//
// Every sampler works in place on `Candidates`, a view of a buffer the caller
// allocated once (one entry per vocabulary token); none allocates per token.
// A sampler narrows or reshapes the candidates (`apply`), may pick one
// (`Candidates::selected`), and hears which token was finally chosen
// (`accept`), which is how penalties and mirostat keep their history.
//
// Semantics follow llama.cpp's samplers, so the same settings give the same
// distributions: probabilities `p` are valid only after `softmax`, and the
// truncating samplers keep at least `min_keep` candidates.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>
#include <vector>

#include "jielong/sample/rng.hpp"

namespace jielong::sample {

using Token = int32_t;

struct TokenData {
  Token id;
  float logit;
  float p;    // probability; meaningful after softmax()
  float key;  // scratch for samplers that sort by a derived score
};

// A view over the caller's buffer: the live candidates are data[0, size).
struct Candidates {
  TokenData* data = nullptr;
  size_t size = 0;
  bool sorted = false;     // by logit, descending (ties: lower id first)
  ptrdiff_t selected = -1;  // index into data once a sampler has chosen

  TokenData* begin() const noexcept { return data; }
  TokenData* end() const noexcept { return data + size; }
};

// Writes one candidate per logit into `buffer` (size >= logits.size()).
inline Candidates fill_candidates(std::span<const float> logits, std::span<TokenData> buffer) noexcept {
  const size_t n = std::min(logits.size(), buffer.size());
  for (size_t i = 0; i < n; ++i) buffer[i] = TokenData{static_cast<Token>(i), logits[i], 0.0f, 0.0f};
  return Candidates{buffer.data(), n, false, -1};
}

// What every sampler stage provides. `Rng` is passed in so that one
// generator, owned by the chain, drives every random choice.
template <class S>
concept Sampler = requires(S s, Candidates& c, Rng& rng, Token t) {
  { s.apply(c, rng) } -> std::same_as<void>;
  { s.accept(t) } -> std::same_as<void>;
  { s.reset() } -> std::same_as<void>;
};

namespace detail {
// Strict total order (logit descending, then id ascending) so that sorting is
// deterministic whatever the algorithm does with equal keys.
inline bool by_logit_desc(const TokenData& a, const TokenData& b) noexcept {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}
}  // namespace detail

inline void sort_by_logit(Candidates& c) {
  if (!c.sorted) std::sort(c.begin(), c.end(), detail::by_logit_desc);
  c.sorted = true;
}

// Moves the k best to the front, sorted; the rest stay in any order.
inline void partial_sort_by_logit(Candidates& c, size_t k) {
  if (c.sorted) return;
  k = std::min(k, c.size);
  if (k == c.size) {
    sort_by_logit(c);
    return;
  }
  std::partial_sort(c.begin(), c.begin() + static_cast<ptrdiff_t>(k), c.end(), detail::by_logit_desc);
}

// p = softmax(logit), max-subtracted; sorts first (the truncating samplers
// need the order, and llama.cpp's softmax sorts too).
inline void softmax(Candidates& c) {
  if (c.size == 0) return;
  sort_by_logit(c);
  const float max_logit = c.data[0].logit;
  double sum = 0.0;
  for (auto& t : c) {
    t.p = std::exp(t.logit - max_logit);
    sum += t.p;
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (auto& t : c) t.p *= inv;
}

// Index drawn from the candidates' probabilities (which must sum to ~1).
inline size_t sample_index(const Candidates& c, Rng& rng) noexcept {
  const float u = rng.uniform();
  float cum = 0.0f;
  for (size_t i = 0; i < c.size; ++i) {
    cum += c.data[i].p;
    if (u < cum) return i;
  }
  // u fell into the rounding gap above the last cumulative sum.
  return c.size == 0 ? 0 : c.size - 1;
}

// --- stages --------------------------------------------------------------

// Picks the highest logit (lowest id among equals).
struct Greedy {
  void apply(Candidates& c, Rng&) const noexcept {
    if (c.size == 0) return;
    size_t best = 0;
    for (size_t i = 1; i < c.size; ++i)
      if (detail::by_logit_desc(c.data[i], c.data[best])) best = i;
    c.selected = static_cast<ptrdiff_t>(best);
  }
  void accept(Token) noexcept {}
  void reset() noexcept {}
};

// Draws from softmax(logits) of whatever candidates remain.
struct Dist {
  void apply(Candidates& c, Rng& rng) const {
    if (c.size == 0) return;
    softmax(c);
    c.selected = static_cast<ptrdiff_t>(sample_index(c, rng));
  }
  void accept(Token) noexcept {}
  void reset() noexcept {}
};

// logits / T. T <= 0 keeps only the best candidate (greedy by another name).
struct Temperature {
  float temperature = 1.0f;
  void apply(Candidates& c, Rng&) const {
    if (c.size == 0) return;
    if (temperature <= 0.0f) {
      partial_sort_by_logit(c, 1);
      c.size = 1;
      return;
    }
    const float inv = 1.0f / temperature;
    for (auto& t : c) t.logit *= inv;
  }
  void accept(Token) noexcept {}
  void reset() noexcept {}
};

// Keeps the k highest logits; k <= 0 keeps everything.
struct TopK {
  int32_t k = 40;
  size_t min_keep = 1;
  void apply(Candidates& c, Rng&) const {
    if (k <= 0 || c.size == 0) return;
    const size_t keep = std::min(c.size, std::max(static_cast<size_t>(k), min_keep));
    partial_sort_by_logit(c, keep);
    // The first `keep` are sorted, and they are all that remain.
    c.sorted = true;
    c.size = keep;
  }
  void accept(Token) noexcept {}
  void reset() noexcept {}
};

// Nucleus: the smallest prefix (by probability) whose mass reaches p.
struct TopP {
  float p = 0.95f;
  size_t min_keep = 1;
  void apply(Candidates& c, Rng&) const {
    if (p >= 1.0f || c.size == 0) return;
    softmax(c);
    float cum = 0.0f;
    size_t last = c.size;
    for (size_t i = 0; i < c.size; ++i) {
      cum += c.data[i].p;
      if (cum >= p && i + 1 >= min_keep) {
        last = i + 1;
        break;
      }
    }
    c.size = last;
  }
  void accept(Token) noexcept {}
  void reset() noexcept {}
};

// Keeps candidates whose probability is at least min_p times the best one's;
// on logits that is logit >= max_logit + log(min_p), no softmax needed.
struct MinP {
  float min_p = 0.05f;
  size_t min_keep = 1;
  void apply(Candidates& c, Rng&) const {
    if (min_p <= 0.0f || c.size == 0) return;
    sort_by_logit(c);
    const float threshold = c.data[0].logit + std::log(min_p);
    size_t keep = 1;
    while (keep < c.size && c.data[keep].logit >= threshold) ++keep;
    c.size = std::max(keep, std::min(min_keep, c.size));
  }
  void accept(Token) noexcept {}
  void reset() noexcept {}
};

// Locally typical sampling (Meister et al. 2022): keep the tokens whose
// surprise is closest to the distribution's entropy, up to mass p.
struct TypicalP {
  float p = 1.0f;
  size_t min_keep = 1;
  void apply(Candidates& c, Rng&) const {
    if (p >= 1.0f || c.size == 0) return;
    softmax(c);
    float entropy = 0.0f;
    for (const auto& t : c)
      if (t.p > 0.0f) entropy -= t.p * std::log(t.p);
    for (auto& t : c) t.key = std::fabs(-std::log(t.p) - entropy);
    std::sort(c.begin(), c.end(), [](const TokenData& a, const TokenData& b) {
      return a.key < b.key || (a.key == b.key && a.id < b.id);
    });
    float cum = 0.0f;
    size_t last = c.size;
    for (size_t i = 0; i < c.size; ++i) {
      cum += c.data[i].p;
      if (cum >= p && i + 1 >= min_keep) {
        last = i + 1;
        break;
      }
    }
    c.size = last;
    c.sorted = false;  // now ordered by typicality, not logit
  }
  void accept(Token) noexcept {}
  void reset() noexcept {}
};

// Adds a fixed bias to chosen tokens (-inf bans a token). Set once.
struct LogitBias {
  std::vector<std::pair<Token, float>> biases;
  void apply(Candidates& c, Rng&) const noexcept {
    if (biases.empty()) return;
    for (auto& t : c)
      for (const auto& [id, bias] : biases)
        if (t.id == id) t.logit += bias;
    c.sorted = false;
  }
  void accept(Token) noexcept {}
  void reset() noexcept {}
};

// Repetition (CTRL paper: divide a positive logit, multiply a negative one),
// frequency (minus count·α_f) and presence (minus α_p once) penalties over
// the last `last_n` accepted tokens. The window is a ring and the counts an
// array over the vocabulary, both sized at construction.
class Penalties {
 public:
  Penalties() = default;
  Penalties(size_t n_vocab, int32_t last_n, float repeat, float frequency, float presence)
      : repeat_(repeat), frequency_(frequency), presence_(presence),
        window_(last_n > 0 ? static_cast<size_t>(last_n) : 0), counts_(n_vocab, 0) {}

  bool active() const noexcept {
    return !window_.empty() && (repeat_ != 1.0f || frequency_ != 0.0f || presence_ != 0.0f);
  }

  void apply(Candidates& c, Rng&) const noexcept {
    if (!active() || filled_ == 0) return;
    for (auto& t : c) {
      if (t.id < 0 || static_cast<size_t>(t.id) >= counts_.size()) continue;
      const uint32_t n = counts_[static_cast<size_t>(t.id)];
      if (n == 0) continue;
      t.logit = t.logit <= 0.0f ? t.logit * repeat_ : t.logit / repeat_;
      t.logit -= static_cast<float>(n) * frequency_ + presence_;
    }
    c.sorted = false;
  }

  void accept(Token t) noexcept {
    if (window_.empty()) return;
    if (filled_ == window_.size()) {
      const Token old = window_[head_];
      if (old >= 0 && static_cast<size_t>(old) < counts_.size()) --counts_[static_cast<size_t>(old)];
    } else {
      ++filled_;
    }
    window_[head_] = t;
    if (t >= 0 && static_cast<size_t>(t) < counts_.size()) ++counts_[static_cast<size_t>(t)];
    head_ = (head_ + 1) % window_.size();
  }

  void reset() noexcept {
    std::fill(counts_.begin(), counts_.end(), 0u);
    filled_ = head_ = 0;
  }

  // The window: recent(0) is the oldest of the size() accepted tokens it holds.
  size_t size() const noexcept { return filled_; }
  Token recent(size_t i) const noexcept { return window_[(head_ + window_.size() - filled_ + i) % window_.size()]; }

 private:
  float repeat_ = 1.0f, frequency_ = 0.0f, presence_ = 0.0f;
  std::vector<Token> window_;     // [last_n] ring of recent tokens
  std::vector<uint32_t> counts_;  // [n_vocab] occurrences inside the window
  size_t filled_ = 0, head_ = 0;
};

// Mirostat 2.0 (Basu et al. 2021): truncate tokens whose surprise exceeds
// mu, sample, then steer mu so the observed surprise tracks the target tau.
struct MirostatV2 {
  float tau = 5.0f;
  float eta = 0.1f;
  float mu = 10.0f;  // 2·tau at start

  MirostatV2() = default;
  MirostatV2(float tau_, float eta_) : tau(tau_), eta(eta_), mu(2.0f * tau_) {}

  void apply(Candidates& c, Rng& rng) {
    if (c.size == 0) return;
    softmax(c);
    size_t keep = 0;
    while (keep < c.size && -std::log2(c.data[keep].p) <= mu) ++keep;
    c.size = std::max<size_t>(keep, 1);
    softmax(c);
    const size_t idx = sample_index(c, rng);
    c.selected = static_cast<ptrdiff_t>(idx);
    const float observed_surprise = -std::log2(c.data[idx].p);
    mu -= eta * (observed_surprise - tau);
  }
  void accept(Token) noexcept {}
  void reset() noexcept { mu = 2.0f * tau; }
};

static_assert(Sampler<Greedy> && Sampler<Dist> && Sampler<Temperature> && Sampler<TopK> &&
              Sampler<TopP> && Sampler<MinP> && Sampler<TypicalP> && Sampler<LogitBias> &&
              Sampler<Penalties> && Sampler<MirostatV2>);

}  // namespace jielong::sample

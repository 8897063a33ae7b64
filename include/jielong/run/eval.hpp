// Evaluation helpers behind `jielong eval` and `jielong perplexity`: the
// logits at every prompt position, a greedy continuation, and teacher-forced
// negative log-likelihood.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "jielong/core/status.hpp"
#include "jielong/run/load.hpp"
#include "jielong/run/session.hpp"

namespace jielong::run {

// What `jielong eval` prints for one prompt (examples/jielong/eval_json.hpp).
struct EvalRecord {
  std::string prompt;
  std::vector<int32_t> tokens;                                  // the prompt, with BOS if the model adds one
  std::vector<std::vector<std::pair<int32_t, float>>> prompt_top;  // [position][k] (id, logit), best first
  std::vector<int32_t> greedy;                                  // greedy continuation ids
  std::string text;                                             // its bytes, detokenized
};

// The k largest of logits[n] as (id, logit), largest first, lower id first among equals.
inline std::vector<std::pair<int32_t, float>> top_logits(std::span<const float> logits, size_t k) {
  std::vector<int32_t> idx(logits.size());
  std::iota(idx.begin(), idx.end(), 0);
  k = std::min(k, idx.size());
  std::partial_sort(idx.begin(), idx.begin() + static_cast<ptrdiff_t>(k), idx.end(), [&](int32_t a, int32_t b) {
    return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)] ||
           (logits[static_cast<size_t>(a)] == logits[static_cast<size_t>(b)] && a < b);
  });
  std::vector<std::pair<int32_t, float>> out;
  for (size_t i = 0; i < k; ++i) out.emplace_back(idx[i], logits[static_cast<size_t>(idx[i])]);
  return out;
}

// Prompt ids → top logits at each position and n_greedy greedy ids. Also
// returns, for each greedy step, the gap between the best and second-best
// logit (how close the choice was), for comparisons that forgive near-ties.
struct EvalIds {
  std::vector<std::vector<std::pair<int32_t, float>>> prompt_top;
  std::vector<int32_t> greedy;
  std::vector<float> greedy_gap;
};

inline Result<EvalIds> evaluate_ids(std::shared_ptr<const model::Model> m, std::span<const int32_t> ids,
                                    size_t n_greedy, size_t top_k, SessionOptions so) {
  if (ids.empty()) return make_error(Code::invalid_argument, "eval: no prompt tokens");
  so.n_ctx = ids.size() + std::max<size_t>(n_greedy, 1);
  so.sampling = sample::SamplerParams::greedy();
  JIELONG_ASSIGN_OR_RETURN(Session s, Session::create(std::move(m), so));
  const size_t n_vocab = s.n_vocab();
  std::vector<float> all(ids.size() * n_vocab);  // [n_prompt][n_vocab]
  JIELONG_TRY(s.prefill_all(ids, all));
  EvalIds r;
  for (size_t p = 0; p < ids.size(); ++p)
    r.prompt_top.push_back(top_logits(std::span<const float>(all).subspan(p * n_vocab, n_vocab), top_k));
  for (size_t i = 0; i < n_greedy; ++i) {
    const auto best2 = top_logits(s.logits(), 2);
    r.greedy.push_back(best2[0].first);
    r.greedy_gap.push_back(best2.size() > 1 ? best2[0].second - best2[1].second : INFINITY);
    if (i + 1 < n_greedy) JIELONG_TRY(s.append(best2[0].first));
  }
  return r;
}

inline Result<EvalRecord> evaluate(const LoadedModel& lm, std::string_view prompt, size_t n_greedy, size_t top_k,
                                   const SessionOptions& so) {
  if (!lm.tokenizer) return make_error(Code::invalid_argument, "eval: the model has no tokenizer");
  JIELONG_ASSIGN_OR_RETURN(std::vector<int32_t> ids, lm.tokenizer->encode(prompt));
  JIELONG_ASSIGN_OR_RETURN(EvalIds e, evaluate_ids(lm.model, ids, n_greedy, top_k, so));
  EvalRecord rec;
  rec.prompt = std::string(prompt);
  rec.tokens = std::move(ids);
  rec.prompt_top = std::move(e.prompt_top);
  rec.greedy = std::move(e.greedy);
  for (int32_t id : rec.greedy) rec.text.append(lm.tokenizer->token_piece(id));
  return rec;
}

struct PerplexityResult {
  size_t n_tokens = 0;
  double nll = 0;         // summed over the n_tokens - 1 predictions
  double perplexity = 0;  // exp(nll / (n_tokens - 1))
};

// -Σ log p(token[i+1] | tokens[0..i]) over the ids, with natural logs.
inline Result<PerplexityResult> perplexity_ids(std::shared_ptr<const model::Model> m, std::span<const int32_t> ids,
                                               SessionOptions so) {
  if (ids.size() < 2) return make_error(Code::invalid_argument, "perplexity: needs at least 2 tokens");
  so.n_ctx = ids.size();
  JIELONG_ASSIGN_OR_RETURN(Session s, Session::create(std::move(m), so));
  const size_t n_vocab = s.n_vocab();
  std::vector<float> all(ids.size() * n_vocab);  // [n][n_vocab]
  JIELONG_TRY(s.prefill_all(ids, all));
  PerplexityResult r;
  r.n_tokens = ids.size();
  for (size_t i = 0; i + 1 < ids.size(); ++i) {
    const float* l = all.data() + i * n_vocab;
    const float max = *std::max_element(l, l + n_vocab);
    double sum = 0;
    for (size_t v = 0; v < n_vocab; ++v) sum += std::exp(static_cast<double>(l[v]) - max);
    r.nll -= static_cast<double>(l[static_cast<size_t>(ids[i + 1])]) - max - std::log(sum);
  }
  r.perplexity = std::exp(r.nll / static_cast<double>(ids.size() - 1));
  return r;
}

// The same over ids longer than one context: windows of `window` tokens
// that overlap by one, so every token after the first is predicted exactly
// once, from the tokens since its window began (at least one, at most
// window - 1). One session of `window` positions, reused.
inline Result<PerplexityResult> perplexity_windows(std::shared_ptr<const model::Model> m, std::span<const int32_t> ids,
                                                   size_t window, SessionOptions so) {
  if (ids.size() < 2) return make_error(Code::invalid_argument, "perplexity: needs at least 2 tokens");
  if (window < 2) return make_error(Code::invalid_argument, "perplexity: a window needs at least 2 tokens");
  so.n_ctx = window;
  JIELONG_ASSIGN_OR_RETURN(Session s, Session::create(std::move(m), so));
  const size_t n_vocab = s.n_vocab();
  std::vector<float> all(window * n_vocab);  // [window][n_vocab]
  PerplexityResult r;
  r.n_tokens = ids.size();
  for (size_t begin = 0; begin + 1 < ids.size(); begin += window - 1) {
    const std::span<const int32_t> w = ids.subspan(begin, std::min(window, ids.size() - begin));
    JIELONG_TRY(s.rewind(s.position()));
    JIELONG_TRY(s.prefill_all(w, std::span<float>(all).first(w.size() * n_vocab)));
    for (size_t i = 0; i + 1 < w.size(); ++i) {
      const float* l = all.data() + i * n_vocab;
      const float max = *std::max_element(l, l + n_vocab);
      double sum = 0;
      for (size_t v = 0; v < n_vocab; ++v) sum += std::exp(static_cast<double>(l[v]) - max);
      r.nll -= static_cast<double>(l[static_cast<size_t>(w[i + 1])]) - max - std::log(sum);
    }
  }
  r.perplexity = std::exp(r.nll / static_cast<double>(ids.size() - 1));
  return r;
}

inline Result<PerplexityResult> perplexity(const LoadedModel& lm, std::string_view text, const SessionOptions& so) {
  if (!lm.tokenizer) return make_error(Code::invalid_argument, "perplexity: the model has no tokenizer");
  JIELONG_ASSIGN_OR_RETURN(std::vector<int32_t> ids, lm.tokenizer->encode(text));
  return perplexity_ids(lm.model, ids, so);
}

}  // namespace jielong::run

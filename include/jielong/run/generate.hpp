// generate(): prompt in, text out, piece by piece.
//
// The prompt is tokenized and prefilled, then tokens are sampled one at a
// time. Each token's bytes go through the tokenizer's streaming detokenizer
// (text::Detokenizer, which never splits a UTF-8 character) and the stop-string matcher before
// the host's callback sees them. Generation ends at an end-of-generation
// token, a stop string, the token limit, a full context, or when the callback
// returns false.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "jielong/core/function_ref.hpp"
#include "jielong/core/status.hpp"
#include "jielong/run/session.hpp"
#include "jielong/run/stop.hpp"
#include "jielong/text/detokenizer.hpp"
#include "jielong/text/tokenizer.hpp"

namespace jielong::run {

enum class StopReason { limit, end_of_generation, stop_string, callback, context_full };

inline const char* stop_reason_name(StopReason r) noexcept {
  switch (r) {
    case StopReason::limit: return "limit";
    case StopReason::end_of_generation: return "end of generation";
    case StopReason::stop_string: return "stop string";
    case StopReason::callback: return "callback";
    case StopReason::context_full: return "context full";
  }
  return "?";
}

struct GenerateParams {
  size_t max_tokens = 128;          // tokens to generate at most
  std::vector<std::string> stop;    // stop strings (not included in the output)
  bool stop_at_eog = true;          // stop at EOS/EOT (the token is not output)
  bool add_bos = true;              // when the vocabulary asks for it
  bool parse_special = true;        // "<|im_start|>" in the prompt is the control token
};

struct GenerateResult {
  size_t n_prompt = 0;
  size_t n_generated = 0;
  double prompt_seconds = 0;
  double generate_seconds = 0;
  StopReason reason = StopReason::limit;
  std::vector<sample::Token> tokens;  // the generated ids
};

// Receives each piece of text; returns false to stop.
using OnPiece = FunctionRef<bool(std::string_view)>;


// Streams text for a session whose prompt has been prefilled; stops as
// described above.
inline Result<GenerateResult> generate_from(Session& s, const text::Tokenizer& tok, const GenerateParams& p,
                                            OnPiece on_piece) {
  GenerateResult r;
  r.tokens.reserve(p.max_tokens);
  StopMatcher stops(p.stop);
  std::string out;  // released text of one step (reused: no allocation per token)
  out.reserve(256);
  // The first word after a lone BOS loses the space an SPM vocabulary put in
  // front of it (as llama2.c prints it); after prompt text it keeps it.
  text::DetokenizerOptions dopt;
  dopt.strip_leading_space = !s.tokens().empty() && s.tokens().back() == tok.bos();
  text::Detokenizer detok(tok, dopt);
  const auto t0 = std::chrono::steady_clock::now();
  auto emit = [&](std::string_view piece) -> bool {
    out.clear();
    const bool hit = stops.push(piece, out);
    if (!out.empty() && !on_piece(out)) {
      r.reason = StopReason::callback;
      return false;
    }
    if (hit) {
      r.reason = StopReason::stop_string;
      return false;
    }
    return true;
  };
  bool running = true;
  while (running) {
    if (r.n_generated >= p.max_tokens) {
      r.reason = StopReason::limit;
      break;
    }
    if (s.position() >= s.capacity() && !s.options().context_shift) {
      r.reason = StopReason::context_full;
      break;
    }
    const sample::Token t = s.sample_next();
    if (p.stop_at_eog && tok.is_eog(t)) {
      r.reason = StopReason::end_of_generation;
      break;
    }
    r.tokens.push_back(t);
    ++r.n_generated;
    const std::string_view piece = detok.push(t);
    if (!piece.empty() && !emit(piece)) running = false;
    // The token joins the session even when this is the last one, so a host
    // can continue the sequence where generation stopped.
    Status st = s.append(t);
    if (!st.is_ok()) {
      if (st.code() != Code::out_of_range) return st;
      r.reason = StopReason::context_full;
      break;
    }
  }
  if (r.reason == StopReason::limit || r.reason == StopReason::end_of_generation ||
      r.reason == StopReason::context_full) {
    out.clear();
    const std::string_view rest = detok.flush();
    if (!rest.empty()) stops.push(rest, out);
    if (!stops.stopped()) stops.flush(out);
    if (!out.empty()) on_piece(out);
  }
  r.generate_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

// Tokenizes and prefills `prompt`, then streams the continuation.
inline Result<GenerateResult> generate(Session& s, const text::Tokenizer& tok, std::string_view prompt,
                                       const GenerateParams& p, OnPiece on_piece) {
  text::EncodeOptions eo;
  eo.add_bos = p.add_bos;
  eo.parse_special = p.parse_special;
  JIELONG_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok.encode(prompt, eo));
  if (ids.empty()) return make_error(Code::invalid_argument, "generate: the prompt has no tokens (and no BOS)");
  const auto t0 = std::chrono::steady_clock::now();
  JIELONG_TRY(s.prefill(ids));
  for (int32_t id : ids) s.accept(id);  // through the session: save_state keeps the penalty window
  const double prompt_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  JIELONG_ASSIGN_OR_RETURN(GenerateResult r, generate_from(s, tok, p, on_piece));
  r.n_prompt = ids.size();
  r.prompt_seconds = prompt_seconds;
  return r;
}

}  // namespace jielong::run

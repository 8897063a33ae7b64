// A game loop with a talking NPC. The game runs at 60 fps; each frame it
// gives the language model at most 2 ms (Session::advance), so the NPC's
// answer streams in a few tokens per frame while the frame rate holds. At the
// end it prints the time the model took per frame (p50, p99, max) and how
// often it went over budget.
//
//   npc [MODEL.gguf] [--tokenizer tokenizer.bin] [--budget-ms 2] [--tokens 48]
//       [--threads 1] [--line "Where can I find the blacksmith?"]
//
// Without MODEL it uses the default model (jielong-chat.gguf in models/, or
// $JIELONG_MODEL; see examples/jielong/common.hpp). Any model works; a
// synthetic one times the loop at another size:
//   jielong synth --embd 576 --ff 1536 --layers 30 --heads 9 --kv-heads 3
//     --vocab-size 32000 --tied --type q4_0 -o /tmp/sm135-q4_0.gguf   (one line)
//   npc /tmp/sm135-q4_0.gguf
// (a synthetic model has random weights: the answer is gibberish, the timing
// is real).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "../jielong/common.hpp"
#include "jielong/run/load.hpp"
#include "jielong/run/session.hpp"
#include "jielong/text/detokenizer.hpp"

using namespace jielong;
using Clock = std::chrono::steady_clock;

namespace {

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [MODEL.gguf] [--tokenizer tokenizer.bin] [--budget-ms 2] [--tokens 48] [--threads 1] "
               "[--line TEXT]\n",
               argv0);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_path, tokenizer_path, line = "Where can I find the blacksmith?";
  double budget_ms = 2.0;
  long n_tokens = 48, threads = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--tokenizer" && (v = value())) tokenizer_path = v;
    else if (a == "--budget-ms" && (v = value())) budget_ms = std::atof(v);
    else if (a == "--tokens" && (v = value())) n_tokens = std::atol(v);
    else if (a == "--threads" && (v = value())) threads = std::atol(v);
    else if (a == "--line" && (v = value())) line = v;
    else if (!a.empty() && a[0] != '-' && model_path.empty()) model_path = a;
    else return usage(argv[0]);
  }
  if (!(budget_ms > 0) || n_tokens <= 0 || threads <= 0) return usage(argv[0]);
  if (model_path.empty()) {
    std::string error;
    model_path = cli::default_model_path(error);
    if (model_path.empty()) {
      std::fprintf(stderr, "npc: %s\n", error.c_str());
      return 1;
    }
  }

  // Loading happens behind a loading screen, before the loop.
  auto lm = run::load(model_path, tokenizer_path);
  if (!lm.ok()) {
    std::fprintf(stderr, "npc: %s\n", lm.status().to_string().c_str());
    return 1;
  }
  if (!lm->tokenizer) {
    std::fprintf(stderr, "npc: %s has no tokenizer\n", model_path.c_str());
    return 1;
  }
  const text::Tokenizer& tok = *lm->tokenizer;
  run::SessionOptions so;
  so.n_ctx = 512;
  so.n_batch = 32;
  so.n_threads = static_cast<size_t>(threads);
  so.sampling.temperature = 0.7f;
  so.sampling.seed = 2024;
  auto session = run::Session::create(lm->model, so);
  if (!session.ok()) {
    std::fprintf(stderr, "npc: %s\n", session.status().to_string().c_str());
    return 1;
  }
  run::Session& s = *session;

  // The NPC's prompt: the model's chat template if it has one, else plain text.
  std::string prompt;
  if (auto chat = run::apply_chat_template(tok, "You are Mira, the innkeeper. A traveller asks: " + line); chat.ok())
    prompt = *chat;
  else
    prompt = "The traveller asks Mira the innkeeper: \"" + line + "\"\nMira answers: \"";
  auto ids = tok.encode(prompt);
  if (!ids.ok()) {
    std::fprintf(stderr, "npc: %s\n", ids.status().to_string().c_str());
    return 1;
  }
  if (ids->size() + static_cast<size_t>(n_tokens) > so.n_ctx) {
    std::fprintf(stderr, "npc: the prompt and answer do not fit %zu positions\n", so.n_ctx);
    return 1;
  }
  // A chat model ends its turn with its end-of-turn token (<|im_end|>), others with EOS.
  const int32_t stop = tok.eot() != text::kNoToken ? tok.eot() : tok.eos();
  if (Status st = s.queue(*ids, static_cast<size_t>(n_tokens), stop); !st.is_ok()) {
    std::fprintf(stderr, "npc: %s\n", st.to_string().c_str());
    return 1;
  }

  std::printf("Traveller: %s\nMira: ", line.c_str());
  std::fflush(stdout);
  text::Detokenizer detok(tok);
  const auto frame = std::chrono::microseconds(16667);  // 60 fps
  const auto budget = std::chrono::nanoseconds(static_cast<int64_t>(budget_ms * 1e6));
  std::vector<double> llm_ms;  // model time per frame
  size_t frames = 0, over = 0, first_token_frame = 0, generated = 0;
  const size_t prompt_len = ids->size(), base = s.position();
  auto next_frame = Clock::now();
  for (bool done = false; !done;) {
    ++frames;
    // ... the game's own update and rendering would be here ...
    const auto t0 = Clock::now();
    auto r = s.advance(budget);
    const auto spent = Clock::now() - t0;
    if (!r.ok()) {
      std::fprintf(stderr, "\nnpc: %s\n", r.status().to_string().c_str());
      return 1;
    }
    llm_ms.push_back(ms(spent));
    if (spent > budget) ++over;
    // Show what the NPC said this frame.
    for (size_t i = 0; i < r->generated; ++i) {
      const int32_t t = s.tokens()[base + prompt_len + generated + i];
      const std::string_view piece = detok.push(t);
      std::fwrite(piece.data(), 1, piece.size(), stdout);
    }
    if (r->generated && !first_token_frame) first_token_frame = frames;
    generated += r->generated;
    std::fflush(stdout);
    done = r->done;
    next_frame += frame;
    std::this_thread::sleep_until(next_frame);
  }
  const std::string_view rest = detok.flush();
  std::fwrite(rest.data(), 1, rest.size(), stdout);

  std::printf("\n\n%zu frames at 60 fps (%.2f s), budget %.2f ms per frame, %zu threads\n", frames,
              static_cast<double>(frames) / 60.0, budget_ms, static_cast<size_t>(threads));
  std::printf("prompt %zu tokens, answer %zu tokens; first answer token at frame %zu (%.0f ms)\n", prompt_len,
              generated, first_token_frame, static_cast<double>(first_token_frame) * 1000.0 / 60.0);
  std::printf("model time per frame: p50 %.3f ms, p99 %.3f ms, max %.3f ms; over budget in %zu of %zu frames\n",
              percentile(llm_ms, 0.50), percentile(llm_ms, 0.99), percentile(llm_ms, 1.0), over, frames);
  return 0;
}

#pragma once

#include <cstdio>
#include <string>

#include "args.hpp"
#include "common.hpp"
#include "jielong/run/generate.hpp"
#include "jielong/run/load.hpp"
#include "jielong/run/session.hpp"

namespace jielong::cli {

inline int cmd_generate(Args& args) {
  std::string model_path, tokenizer_path, prompt;
  int64_t n_predict = 128, threads = 1, ctx = 0;
  SamplingFlags sampling;
  bool chat = false;
  run::LoadOptions lo;
  std::vector<std::string> stops;
  Flags flags("generate", "[-m MODEL] [-z TOKENIZER.bin] -p PROMPT [-n N] [options]",
              "Continue PROMPT with the model; the text goes to stdout, statistics to stderr.");
  flags.add_string("-m,--model", &model_path, kModelHelp);
  flags.add_string("-z,--tokenizer", &tokenizer_path, "llama2.c tokenizer.bin (for a .bin checkpoint)");
  flags.add_string("-p,--prompt", &prompt, "text to continue");
  flags.add_int("-n,--n-predict", &n_predict, "tokens to generate (default 128)", 0, 1 << 24);
  sampling.add_to(flags);
  flags.add_int("-t,--threads", &threads, "threads (default 1)", 1, 1024);
  flags.add_int("-c,--ctx", &ctx, "context size (default: the model's)", 0, 1 << 24);
  flags.add_switch("--chat", &chat, "wrap the prompt in the model's chat template");
  flags.add_strings("--stop", &stops, "stop string (repeatable)");
  flags.add_switch("--no-mmap", &lo.no_mmap, kNoMmapHelp);
  flags.add_switch("--no-repack", &lo.no_repack, kNoRepackHelp);
  if (auto rc = flags.parse(args)) return *rc;

  run::LoadedModel lm;
  if (!model_or_default("generate", model_path)) return 1;
  if (!load_or_report("generate", model_path, tokenizer_path, lo, lm)) return 1;
  if (!lm.tokenizer) {
    std::fprintf(stderr, "jielong generate: %s has no tokenizer; pass -z TOKENIZER.bin\n", model_path.c_str());
    return 1;
  }
  if (chat) {
    auto rendered = run::apply_chat_template(*lm.tokenizer, prompt);
    if (!rendered.ok()) {
      std::fprintf(stderr, "jielong generate: --chat: %s\n", rendered.status().to_string().c_str());
      return 1;
    }
    prompt = *rendered;
  }

  run::SessionOptions so;
  so.n_ctx = static_cast<size_t>(ctx);
  so.n_threads = static_cast<size_t>(threads);
  so.kv_type = model::KvType::f32;
  so.sampling = sampling.params();
  auto session = run::Session::create(lm.model, so);
  if (!session.ok()) {
    std::fprintf(stderr, "jielong generate: %s\n", session.status().to_string().c_str());
    return 1;
  }
  // More tokens than the context can ever hold is a mistake in the request, not a reason to stop early.
  if (static_cast<size_t>(n_predict) > session->capacity()) {
    std::fprintf(stderr, "jielong generate: -n %lld is past the context of %zu tokens (see -c)\n",
                 static_cast<long long>(n_predict), session->capacity());
    return 1;
  }
  run::GenerateParams gp;
  gp.max_tokens = static_cast<size_t>(n_predict);
  gp.stop = stops;
  gp.parse_special = chat;
  auto r = run::generate(*session, *lm.tokenizer, prompt, gp, [](std::string_view piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  std::printf("\n");
  if (!r.ok()) {
    std::fprintf(stderr, "jielong generate: %s\n", r.status().to_string().c_str());
    return 1;
  }
  std::fprintf(stderr, "prompt: %zu tokens in %.3f s (%.1f tok/s); generated: %zu tokens in %.3f s (%.1f tok/s); stop: %s\n",
               r->n_prompt, r->prompt_seconds, r->prompt_seconds > 0 ? r->n_prompt / r->prompt_seconds : 0.0,
               r->n_generated, r->generate_seconds,
               r->generate_seconds > 0 ? r->n_generated / r->generate_seconds : 0.0, run::stop_reason_name(r->reason));
  return 0;
}

}  // namespace jielong::cli

#pragma once

#include <cstdio>
#include <string>

#include "args.hpp"
#include "common.hpp"
#include "jielong/run/eval.hpp"
#include "jielong/run/load.hpp"

namespace jielong::cli {

// Teacher-forced negative log-likelihood of a text.
inline int cmd_perplexity(Args& args) {
  std::string model_path, tokenizer_path, text, kv = "f32";
  int64_t threads = 1;
  run::LoadOptions lo;
  Flags flags("perplexity", "-m MODEL [-z TOKENIZER.bin] -p TEXT",
              "Token count, summed negative log-likelihood of each next token (BOS included) and perplexity.");
  flags.add_string("-m,--model", &model_path, "model file");
  flags.add_string("-z,--tokenizer", &tokenizer_path, "llama2.c tokenizer.bin (for a .bin checkpoint)");
  flags.add_string("-p,--prompt", &text, "the text");
  flags.add_int("-t,--threads", &threads, "threads (default 1)", 1, 1024);
  flags.add_string("--kv", &kv, "KV cache type f32 (default) or f16");
  flags.add_switch("--no-mmap", &lo.no_mmap, kNoMmapHelp);
  flags.add_switch("--no-repack", &lo.no_repack, kNoRepackHelp);
  if (auto rc = flags.parse(args)) return *rc;
  model::KvType kv_type;
  if (!parse_kv_type("perplexity", kv, kv_type)) return 1;
  run::LoadedModel lm;
  if (!load_or_report("perplexity", model_path, tokenizer_path, lo, lm)) return 1;
  if (!lm.tokenizer) {
    std::fprintf(stderr, "jielong perplexity: %s has no tokenizer; pass -z TOKENIZER.bin\n", model_path.c_str());
    return 1;
  }
  run::SessionOptions so;
  so.kv_type = kv_type;
  so.n_threads = static_cast<size_t>(threads);
  auto r = run::perplexity(lm, text, so);
  if (!r.ok()) {
    std::fprintf(stderr, "jielong perplexity: %s\n", r.status().to_string().c_str());
    return 1;
  }
  std::printf("n_tokens: %zu\nnll: %.6f\nperplexity: %.6f\n", r->n_tokens, r->nll, r->perplexity);
  return 0;
}

}  // namespace jielong::cli

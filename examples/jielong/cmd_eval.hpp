#pragma once

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "args.hpp"
#include "common.hpp"
#include "eval_json.hpp"
#include "jielong/run/eval.hpp"
#include "jielong/run/load.hpp"

namespace jielong::cli {

// One JSON object per prompt, in the layout of llama.cpp's reference files.
inline int cmd_eval(Args& args) {
  std::string model_path, tokenizer_path, kv = "f16";
  std::vector<std::string> prompts;
  int64_t n_greedy = 32, top = 8, threads = 1;
  run::LoadOptions lo;
  Flags flags("eval", "-m MODEL -n N --top K -p PROMPT [-p PROMPT...]",
              "For each prompt print one JSON line: its tokens, the K largest logits at every prompt position and "
              "N greedy continuation tokens with their text.");
  flags.add_string("-m,--model", &model_path, "model file");
  flags.add_string("-z,--tokenizer", &tokenizer_path, "llama2.c tokenizer.bin (for a .bin checkpoint)");
  flags.add_strings("-p,--prompt", &prompts, "prompt (repeatable)");
  flags.add_int("-n,--n-predict", &n_greedy, "greedy tokens after each prompt (default 32)", 0, 1 << 20);
  flags.add_int("--top", &top, "logits listed per prompt position (default 8)", 1, 1 << 20);
  flags.add_int("-t,--threads", &threads, "threads (default 1)", 1, 1024);
  flags.add_string("--kv", &kv, "KV cache type f16 (llama.cpp's default) or f32");
  flags.add_switch("--no-mmap", &lo.no_mmap, kNoMmapHelp);
  flags.add_switch("--no-repack", &lo.no_repack, kNoRepackHelp);
  if (auto rc = flags.parse(args)) return *rc;
  model::KvType kv_type;
  if (!parse_kv_type("eval", kv, kv_type)) return 1;
  if (prompts.empty()) {
    std::fprintf(stderr, "jielong eval: at least one -p PROMPT is required\n");
    return 1;
  }
  run::LoadedModel lm;
  if (!load_or_report("eval", model_path, tokenizer_path, lo, lm)) return 1;
  if (!lm.tokenizer) {
    std::fprintf(stderr, "jielong eval: %s has no tokenizer; pass -z TOKENIZER.bin\n", model_path.c_str());
    return 1;
  }
  run::SessionOptions so;
  so.kv_type = kv_type;
  so.n_threads = static_cast<size_t>(threads);
  for (const std::string& prompt : prompts) {
    auto rec = run::evaluate(lm, prompt, static_cast<size_t>(n_greedy), static_cast<size_t>(top), so);
    if (!rec.ok()) {
      std::fprintf(stderr, "jielong eval: %s\n", rec.status().to_string().c_str());
      return 1;
    }
    std::printf("%s\n", to_json_line(*rec).c_str());
  }
  return 0;
}

}  // namespace jielong::cli

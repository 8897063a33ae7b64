// What several commands share: finding the default model, loading a model
// with its tokenizer, and the KV cache type flag.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "args.hpp"
#include "jielong/model/kv_cache.hpp"
#include "jielong/run/load.hpp"
#include "jielong/sample/chain.hpp"

namespace jielong::cli {

// The model used when no -m is given: $JIELONG_MODEL if set; else
// jielong-chat.gguf, falling back to jielong-base.gguf, in the first models
// folder that has one of them. The folders: $JIELONG_MODELS if set (then it
// is the only one: a user who names a folder means that folder), else
// <the executable's folder>/../models (an installed or built tree), else the
// source tree's models/ (JIELONG_SOURCE_MODELS_DIR, defined by the build).
// Empty, with `error` naming every place looked in, when none is found.
inline std::string default_model_path(std::string& error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (const char* m = std::getenv("JIELONG_MODEL"); m && *m) {
    if (fs::is_regular_file(m, ec)) return m;
    error = "$JIELONG_MODEL names " + std::string(m) + ", which is not a file";
    return {};
  }
  std::vector<std::string> dirs;
  if (const char* d = std::getenv("JIELONG_MODELS"); d && *d) {
    dirs.emplace_back(d);
  } else {
    char exe[4096];
    if (const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1); n > 0) {
      exe[n] = '\0';
      dirs.push_back((fs::path(exe).parent_path().parent_path() / "models").string());
    }
#ifdef JIELONG_SOURCE_MODELS_DIR
    dirs.emplace_back(JIELONG_SOURCE_MODELS_DIR);
#endif
  }
  // In a build inside the source tree the last two are one folder.
  if (dirs.size() == 2 && fs::weakly_canonical(dirs[0], ec) == fs::weakly_canonical(dirs[1], ec)) dirs.pop_back();
  std::string looked;
  for (const std::string& d : dirs)
    for (const char* name : {"jielong-chat.gguf", "jielong-base.gguf"}) {
      const fs::path p = fs::path(d) / name;
      if (fs::is_regular_file(p, ec)) return p.string();
      looked += "\n  " + p.string();
    }
  error = std::string("no model given (-m MODEL) and no default model found; $JIELONG_MODEL is unset, ") +
          (std::getenv("JIELONG_MODELS") ? "looked in $JIELONG_MODELS:" : "$JIELONG_MODELS is unset, looked for:") +
          looked;
  return {};
}

// For the commands whose -m is optional: an empty `model_path` becomes the
// default model's; false (after a message naming the command) when there is none.
inline bool model_or_default(const char* command, std::string& model_path) {
  if (!model_path.empty()) return true;
  std::string error;
  model_path = default_model_path(error);
  if (model_path.empty()) std::fprintf(stderr, "jielong %s: %s\n", command, error.c_str());
  return !model_path.empty();
}

// -m MODEL [-z TOKENIZER] → model + tokenizer, or a message naming the command.
inline bool load_or_report(const char* command, const std::string& model_path, const std::string& tokenizer_path,
                           const run::LoadOptions& lo, run::LoadedModel& out) {
  if (model_path.empty()) {
    std::fprintf(stderr, "jielong %s: -m MODEL is required\n", command);
    return false;
  }
  auto loaded = run::load(model_path, tokenizer_path, lo);
  if (!loaded.ok()) {
    std::fprintf(stderr, "jielong %s: %s\n", command, loaded.status().to_string().c_str());
    return false;
  }
  out = std::move(*loaded);
  return true;
}

// The sampling flags of generate and chat.
struct SamplingFlags {
  double temp = 0.8, top_p = 0.95, min_p = 0.05, repeat_penalty = 1.0;
  int64_t top_k = 40, seed = 0;

  void add_to(Flags& flags) {
    flags.add_float("--temp", &temp, "temperature; 0 is greedy (default 0.8)", 0.0, 100.0);
    flags.add_int("--top-k", &top_k, "top-k, 0 = off (default 40)", 0, 1 << 30);
    flags.add_float("--top-p", &top_p, "top-p, 1 = off (default 0.95)", 1e-6, 1.0);
    flags.add_float("--min-p", &min_p, "min-p, 0 = off (default 0.05)", 0.0, 1.0);
    flags.add_float("--repeat-penalty", &repeat_penalty, "repetition penalty over the last 64 tokens (default 1 = off)",
                    1e-3, 100.0);
    flags.add_int("-s,--seed", &seed, "sampling seed (default 0)", 0, INT64_MAX);
  }
  sample::SamplerParams params() const {
    sample::SamplerParams p;
    p.temperature = static_cast<float>(temp);
    p.top_k = static_cast<int32_t>(top_k);
    p.top_p = static_cast<float>(top_p);
    p.min_p = static_cast<float>(min_p);
    p.repeat_penalty = static_cast<float>(repeat_penalty);
    p.seed = static_cast<uint64_t>(seed);
    return p;
  }
};

inline bool parse_kv_type(const char* command, const std::string& s, model::KvType& out) {
  if (s == "f32") out = model::KvType::f32;
  else if (s == "f16") out = model::KvType::f16;
  else {
    std::fprintf(stderr, "jielong %s: --kv must be f32 or f16, got '%s'\n", command, s.c_str());
    return false;
  }
  return true;
}

}  // namespace jielong::cli

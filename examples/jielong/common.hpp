// What several commands share: loading a model with its tokenizer, and the
// KV cache type flag.
#pragma once

#include <cstdio>
#include <string>

#include "jielong/model/kv_cache.hpp"
#include "jielong/run/load.hpp"

namespace jielong::cli {

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

// Finding ../shared (or $JIELONG_SHARED) from a benchmark: the real models some
// benchmarks read. A benchmark whose file is absent skips itself.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

namespace jielong::bench {

inline std::optional<std::string> shared_path(const std::string& rel) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path base;
  if (const char* env = std::getenv("JIELONG_SHARED"); env && *env) base = env;
  else base = fs::path(__FILE__).parent_path().parent_path().parent_path().parent_path() / "shared";  // beside the source tree
  if (!fs::exists(base / rel, ec)) return std::nullopt;
  return (base / rel).string();
}

}  // namespace jielong::bench

// Finding ../shared, the read-only models and references some tests compare
// against. Tests that need it call shared_file() or needs_shared() and skip,
// saying so, when it is absent, so that a fresh clone builds and passes on its
// own; the skip is counted (support/skip.hpp).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include <unistd.h>

#include <doctest/doctest.h>

#include "support/skip.hpp"

namespace jielong::test {

inline std::optional<std::filesystem::path> shared_dir() {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (const char* env = std::getenv("JIELONG_SHARED"); env && *env) {
    if (fs::is_directory(env, ec)) return fs::path(env);
    return std::nullopt;
  }
#ifdef JIELONG_SOURCE_DIR
  const fs::path beside = fs::path(JIELONG_SOURCE_DIR).parent_path() / "shared";
  if (fs::is_directory(beside / "models", ec)) return beside;
#endif
  if (fs::is_directory("../shared/models", ec)) return fs::absolute("../shared", ec);
  return std::nullopt;
}

// ../shared, or nullopt (counted as a skip, naming what needed it) when absent.
inline std::optional<std::filesystem::path> needs_shared(const std::string& what) {
  auto dir = shared_dir();
  if (!dir) skip("../shared (or $JIELONG_SHARED) not found; needed for " + what);
  return dir;
}

// A file under ../shared, or nullopt (counted as a skip) when absent.
inline std::optional<std::string> shared_file(const std::string& relative) {
  const auto dir = needs_shared(relative);
  if (!dir) return std::nullopt;
  const auto path = *dir / relative;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    skip(path.string() + " not found");
    return std::nullopt;
  }
  return path.string();
}

// A fresh scratch folder under the system temp dir, removed at scope exit.
class TempDir {
 public:
  TempDir() {
    namespace fs = std::filesystem;
    static int counter = 0;
    path_ = fs::temp_directory_path() /
            ("jielong-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace jielong::test

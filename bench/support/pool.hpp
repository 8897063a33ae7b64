// The thread pool a benchmark runs on: $JIELONG_THREADS threads, default all
// cores, created once.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "jielong/core/executor.hpp"

namespace jielong::bench {

inline size_t bench_threads() {
  if (const char* env = std::getenv("JIELONG_THREADS"); env && std::atoi(env) > 0) return static_cast<size_t>(std::atoi(env));
  return std::max(1u, std::thread::hardware_concurrency());
}

inline ThreadPool& pool() {
  static ThreadPool p(bench_threads());
  return p;
}

}  // namespace jielong::bench

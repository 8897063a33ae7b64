// Seeded normal samples for kernel tests: the same seed gives the same
// vector on every run and machine (std::mt19937 is fully specified; the
// normal distribution is the standard library's, the same within a build).
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace jielong::test {

inline std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

}  // namespace jielong::test

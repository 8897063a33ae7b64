// A streaming read at the memory's pace: the sum of n floats with independent
// accumulators, so enough loads are in flight to reach the read bandwidth.
// Used to measure that bandwidth (the physical limit of decode) in the same
// run as the kernels it bounds: bench_kernels and `jielong bench`.
//
// Plain loops, no instruction set named: the 64 accumulators are independent,
// so the compiler vectorizes them for its target without reassociating (g++
// 12 at -O3 with AVX2 or AVX-512: eight 8-lane registers, one 32-byte load
// each per step). The sum only keeps the loads from being removed.
#pragma once

#include <cstddef>

namespace jielong::kernels {

// p: 64-byte aligned; n: a multiple of 128.
inline float stream_sum(const float* p, size_t n) noexcept {
  constexpr size_t kLanes = 64;
  alignas(64) float a[kLanes] = {};
  for (size_t i = 0; i < n; i += kLanes)
    for (size_t k = 0; k < kLanes; ++k) a[k] += p[i + k];
  float sum = 0.0f;
  for (float x : a) sum += x;
  return sum;
}

}  // namespace jielong::kernels

// A streaming read at the memory's pace: the sum of n floats with eight
// independent accumulators, so enough loads are in flight to reach the read
// bandwidth. Used to measure that bandwidth (the physical limit of decode) in
// the same run as the kernels it bounds: bench_kernels and `jielong bench`.
#pragma once

#include <cstddef>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace jielong::kernels {

// p: 64-byte aligned; n: a multiple of 128.
inline float stream_sum(const float* p, size_t n) noexcept {
#if defined(__AVX512F__)
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  for (size_t i = 0; i < n; i += 128) {
    a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
    a4 = _mm512_add_ps(a4, _mm512_load_ps(p + i + 64));
    a5 = _mm512_add_ps(a5, _mm512_load_ps(p + i + 80));
    a6 = _mm512_add_ps(a6, _mm512_load_ps(p + i + 96));
    a7 = _mm512_add_ps(a7, _mm512_load_ps(p + i + 112));
  }
  const __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                                 _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
  // Lane sum through memory: g++ 12's _mm512_reduce_add_ps trips
  // -Wmaybe-uninitialized inside its own header, and this runs once per call.
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s);
  float sum = 0.0f;
  for (float x : lanes) sum += x;
  return sum;
#else
  float a[8] = {};
  for (size_t i = 0; i < n; i += 8)
    for (size_t k = 0; k < 8; ++k) a[k] += p[i + k];
  return a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
#endif
}

}  // namespace jielong::kernels

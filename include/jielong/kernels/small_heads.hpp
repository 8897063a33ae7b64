// Attention for heads narrower than one vector (llama2.c's tiny models have
// head_dim 8): scores against every cached key, and the weighted sum of the
// values, for one head.
//
// A vector dot of 8 elements would end in a horizontal sum whose order
// differs from a plain loop's, and greedy texts of tiny models sit on
// near-ties that the order decides (llama2.c's reference texts among them).
// So both kernels keep the arithmetic of the per-position loops they
// replace: scores add rounded products one after another in d (as the
// backends' dot does for vectors shorter than a register), values add
// fused multiply-adds one after another in j (as axpy does). The speed comes
// from the lanes of a backend's kernels (kernels::small_head_scores and
// small_head_mix; small_heads_avx512.hpp for Avx512Vnni): positions side by
// side for the scores, a head's elements side by side for the values. The
// plain loops below are what the other backends run and the twin the tests
// compare with, bit for bit.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "jielong/core/half.hpp"

namespace jielong::kernels::small_heads {

// Most heads kernels::small_head_mix takes in one call.
inline constexpr size_t kMaxHeads = 16;

// A head's slice of cache row j: `base + j * stride` bytes, hd elements of
// f32 or (f16 == true) binary16.
struct Rows {
  const std::byte* base;
  size_t stride;  // bytes from one position to the next
  bool f16;
  float at(size_t j, size_t d) const noexcept {  // memcpy: rows need no alignment
    const std::byte* p = base + j * stride;
    if (f16) {
      uint16_t h;
      std::memcpy(&h, p + 2 * d, 2);
      return fp16_to_f32(h);
    }
    float x;
    std::memcpy(&x, p + 4 * d, 4);
    return x;
  }
};

// a·b rounded to float: the compiler may not fuse it into a following add
// (an empty asm makes the rounded value opaque to it).
template <class T>
inline T rounded_product(T a, T b) noexcept {
  T p = a * b;
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __asm__("" : "+x"(p));
#elif defined(__GNUC__) && defined(__aarch64__)
  __asm__("" : "+w"(p));
#else
  volatile T v = p;
  p = v;
#endif
  return p;
}

// scores[j] = Σ_d q[d]·K[j][d] for j in [0, n): rounded products added in d order.
inline void scores_plain(const float* q, Rows k, size_t hd, size_t n, float* scores) noexcept {
  for (size_t j = 0; j < n; ++j) {
    float acc = 0.0f;
    for (size_t d = 0; d < hd; ++d) acc += rounded_product(q[d], k.at(j, d));
    scores[j] = acc;
  }
}

// out[d] = Σ_j w[j]·V[j][d] for d in [0, hd): fused multiply-adds in j order from 0.
inline void mix_plain(const float* w, Rows v, size_t hd, size_t n, float* out) noexcept {
  for (size_t d = 0; d < hd; ++d) out[d] = 0.0f;
  for (size_t j = 0; j < n; ++j)
    for (size_t d = 0; d < hd; ++d) out[d] = std::fma(w[j], v.at(j, d), out[d]);
}

}  // namespace jielong::kernels::small_heads

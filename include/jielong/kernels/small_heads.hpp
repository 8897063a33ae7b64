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
// from the lanes: scores put 8 positions in one vector (an 8×8 transpose of
// the keys), values put the 8 elements of a head in one vector. The plain
// loops below are the twin the tests compare with, bit for bit.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "jielong/core/half.hpp"

#if defined(__AVX2__) && defined(__F16C__) && defined(__FMA__)
#include <immintrin.h>
#define JIELONG_SMALL_HEADS_AVX2 1
#endif

namespace jielong::kernels::small_heads {

// Most heads mix_heads takes in one call.
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

#ifdef JIELONG_SMALL_HEADS_AVX2
namespace detail {
inline __m256 load8(const std::byte* p, bool f16) noexcept {
  return f16 ? _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))
             : _mm256_loadu_ps(reinterpret_cast<const float*>(p));
}
}  // namespace detail

// head_dim 8 only: scores for n_q query heads that read the same keys
// (grouped-query attention), each key block transposed once for all of them.
inline void scores_hd8_heads(const float* const* q, size_t n_q, Rows k, size_t n, float* const* scores) noexcept {
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    // r[u] = K[j+u][0..8); transpose so that c[d] = K[j..j+8)[d].
    __m256 r[8];
    for (int u = 0; u < 8; ++u) r[u] = detail::load8(k.base + (j + u) * k.stride, k.f16);
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    const __m256 c[8] = {_mm256_permute2f128_ps(s0, s4, 0x20), _mm256_permute2f128_ps(s1, s5, 0x20),
                         _mm256_permute2f128_ps(s2, s6, 0x20), _mm256_permute2f128_ps(s3, s7, 0x20),
                         _mm256_permute2f128_ps(s0, s4, 0x31), _mm256_permute2f128_ps(s1, s5, 0x31),
                         _mm256_permute2f128_ps(s2, s6, 0x31), _mm256_permute2f128_ps(s3, s7, 0x31)};
    for (size_t h = 0; h < n_q; ++h) {
      __m256 acc = _mm256_setzero_ps();
      for (int d = 0; d < 8; ++d) acc = _mm256_add_ps(acc, rounded_product(_mm256_set1_ps(q[h][d]), c[d]));
      _mm256_storeu_ps(scores[h] + j, acc);
    }
  }
  if (j < n)
    for (size_t h = 0; h < n_q; ++h)
      scores_plain(q[h], Rows{k.base + j * k.stride, k.stride, k.f16}, 8, n - j, scores[h] + j);
}

inline void scores_hd8(const float* q, Rows k, size_t n, float* scores) noexcept { scores_hd8_heads(&q, 1, k, n, &scores); }

inline void mix_hd8(const float* w, Rows v, size_t n, float* out) noexcept {
  __m256 acc = _mm256_setzero_ps();
  for (size_t j = 0; j < n; ++j) acc = _mm256_fmadd_ps(_mm256_set1_ps(w[j]), detail::load8(v.base + j * v.stride, v.f16), acc);
  _mm256_storeu_ps(out, acc);
}

// mix_hd8 for several heads at once (up to kMaxHeads): the same sum per head,
// but the heads' independent chains of multiply-adds interleave instead of
// each waiting on its own previous add.
inline void mix_heads_hd8(const float* const* w, const Rows* v, size_t n_heads, size_t n, float* const* out) noexcept {
  __m256 acc[kMaxHeads];
  for (size_t h = 0; h < n_heads; ++h) acc[h] = _mm256_setzero_ps();
  for (size_t j = 0; j < n; ++j)
    for (size_t h = 0; h < n_heads; ++h)
      acc[h] = _mm256_fmadd_ps(_mm256_set1_ps(w[h][j]), detail::load8(v[h].base + j * v[h].stride, v[h].f16), acc[h]);
  for (size_t h = 0; h < n_heads; ++h) _mm256_storeu_ps(out[h], acc[h]);
}
#endif

// The fast path where there is one (head_dim 8 on AVX2 + F16C + FMA), else the plain loop.
inline void scores(const float* q, Rows k, size_t hd, size_t n, float* out) noexcept {
#ifdef JIELONG_SMALL_HEADS_AVX2
  if (hd == 8) return scores_hd8(q, k, n, out);
#endif
  scores_plain(q, k, hd, n, out);
}
inline void mix(const float* w, Rows v, size_t hd, size_t n, float* out) noexcept {
#ifdef JIELONG_SMALL_HEADS_AVX2
  if (hd == 8) return mix_hd8(w, v, n, out);
#endif
  mix_plain(w, v, hd, n, out);
}
// scores for n_q query heads reading the same keys; each out[h] is what
// scores(q[h], k, ...) writes.
inline void scores_heads(const float* const* q, size_t n_q, Rows k, size_t hd, size_t n, float* const* out) noexcept {
#ifdef JIELONG_SMALL_HEADS_AVX2
  if (hd == 8) return scores_hd8_heads(q, n_q, k, n, out);
#endif
  for (size_t h = 0; h < n_q; ++h) scores_plain(q[h], k, hd, n, out[h]);
}
// mix for n_heads heads; each out[h] is what mix(w[h], v[h], ...) writes.
inline void mix_heads(const float* const* w, const Rows* v, size_t n_heads, size_t hd, size_t n,
                      float* const* out) noexcept {
#ifdef JIELONG_SMALL_HEADS_AVX2
  if (hd == 8 && n_heads <= kMaxHeads) return mix_heads_hd8(w, v, n_heads, n, out);
#endif
  for (size_t h = 0; h < n_heads; ++h) mix(w[h], v[h], hd, n, out[h]);
}

}  // namespace jielong::kernels::small_heads

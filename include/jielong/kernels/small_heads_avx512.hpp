// The small-head kernels of the Avx512Vnni backend (head_dim 8): scores for
// 16 positions at a time (a 16×8 transpose of the keys), values for two
// heads per register. Lane for lane the arithmetic is that of the plain
// loops of small_heads.hpp, which the tests compare with bit for bit.
// Included by vnni.hpp only when the target has AVX-512 F/BW/VL/VNNI (and so
// inside kernels.hpp's silencing of g++ 12's AVX-512 false positives).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <immintrin.h>

#include "jielong/kernels/small_heads.hpp"

namespace jielong::kernels::small_heads::avx512 {

namespace detail {
inline __m256 load8(const std::byte* p, bool f16) noexcept {
  return f16 ? _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))
             : _mm256_loadu_ps(reinterpret_cast<const float*>(p));
}

// The in-lane half of an 8×8 transpose (the ops act on each 128-bit lane,
// which holds four elements of a row): from rows z[0..8), s[k] holds in each
// lane the lane's k-th element of rows 0..3, and s[k + 4] that of rows 4..7
// (k < 4). The caller joins lanes across registers.
inline __m512 unpacklo(__m512 a, __m512 b) noexcept { return _mm512_unpacklo_ps(a, b); }
inline __m512 unpackhi(__m512 a, __m512 b) noexcept { return _mm512_unpackhi_ps(a, b); }
template <int Imm>
inline __m512 shuffle(__m512 a, __m512 b) noexcept { return _mm512_shuffle_ps(a, b, Imm); }
template <class V>
inline void transpose_in_lanes(const V* z, V* s) noexcept {
  const V t0 = unpacklo(z[0], z[1]), t1 = unpackhi(z[0], z[1]);
  const V t2 = unpacklo(z[2], z[3]), t3 = unpackhi(z[2], z[3]);
  const V t4 = unpacklo(z[4], z[5]), t5 = unpackhi(z[4], z[5]);
  const V t6 = unpacklo(z[6], z[7]), t7 = unpackhi(z[6], z[7]);
  s[0] = shuffle<0x44>(t0, t2), s[1] = shuffle<0xEE>(t0, t2);
  s[2] = shuffle<0x44>(t1, t3), s[3] = shuffle<0xEE>(t1, t3);
  s[4] = shuffle<0x44>(t4, t6), s[5] = shuffle<0xEE>(t4, t6);
  s[6] = shuffle<0x44>(t5, t7), s[7] = shuffle<0xEE>(t5, t7);
}
}  // namespace detail

// One head: out[d] = Σ_j w[j]·V[j][d], the 8 elements of the head in one vector.
inline void mix_hd8(const float* w, Rows v, size_t n, float* out) noexcept {
  __m256 acc = _mm256_setzero_ps();
  for (size_t j = 0; j < n; ++j) acc = _mm256_fmadd_ps(_mm256_set1_ps(w[j]), detail::load8(v.base + j * v.stride, v.f16), acc);
  _mm256_storeu_ps(out, acc);
}

namespace detail {
// [row a | row b]: two slices of 8 elements in one register.
template <bool F16>
inline __m512 load8x2(const std::byte* a, const std::byte* b) noexcept {
  if constexpr (F16) {
    const __m128i ha = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a));
    const __m128i hb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b));
    return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(ha), hb, 1));
  } else {
    const __m256d lo = _mm256_loadu_pd(reinterpret_cast<const double*>(a));
    const __m256d hi = _mm256_loadu_pd(reinterpret_cast<const double*>(b));
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(lo), hi, 1));
  }
}
// [row a | row a]: one load.
template <bool F16>
inline __m512 load8_twice(const std::byte* a) noexcept {
  if constexpr (F16)
    return _mm512_cvtph_ps(_mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a))));
  else
    return _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_loadu_pd(reinterpret_cast<const double*>(a))));
}
}  // namespace detail

// c[d] = K[j..j+16)[d] from the rows r[0..16) (pointers to 8 elements).
template <bool F16>
inline void transpose16x8(const std::byte* const* r, __m512* c) noexcept {
  // z[u] holds two keys, laid out so that after the in-lane 8×8 transpose
  // (detail::transpose_in_lanes) the positions come out in order:
  // z[u] = [r[u] | r[4+u]] for u < 4, [r[4+u] | r[8+u]] for u >= 4.
  __m512 z[8];
  for (int u = 0; u < 4; ++u) z[u] = detail::load8x2<F16>(r[u], r[4 + u]);
  for (int u = 4; u < 8; ++u) z[u] = detail::load8x2<F16>(r[4 + u], r[8 + u]);
  __m512 sh[8];
  detail::transpose_in_lanes(z, sh);
  // 128-bit lanes 0 and 2 hold elements 0..3 of the rows, 1 and 3 elements 4..7.
  for (int e = 0; e < 4; ++e) {
    c[e] = _mm512_shuffle_f32x4(sh[e], sh[e + 4], 0x88);
    c[e + 4] = _mm512_shuffle_f32x4(sh[e], sh[e + 4], 0xDD);
  }
}

template <bool F16>
inline void scores_hd8_heads_x16(const float* const* q, size_t n_q, Rows k, size_t n, float* const* scores) noexcept {
  alignas(32) static constexpr std::byte kZeroRow[32] = {};  // stands in for the positions past n
  const size_t s = k.stride;
  for (size_t j = 0; j < n; j += 16) {
    const size_t m = n - j < 16 ? n - j : 16;
    const std::byte* r[16];
    for (size_t u = 0; u < 16; ++u) r[u] = u < m ? k.base + (j + u) * s : kZeroRow;
    __m512 c[8];
    transpose16x8<F16>(r, c);
    const __mmask16 mask = static_cast<__mmask16>((1u << m) - 1u);
    for (size_t h = 0; h < n_q; ++h) {
      __m512 acc = _mm512_setzero_ps();
      for (int d = 0; d < 8; ++d) acc = _mm512_add_ps(acc, rounded_product(_mm512_set1_ps(q[h][d]), c[d]));
      _mm512_mask_storeu_ps(scores[h] + j, mask, acc);
    }
  }
}

inline void scores_hd8_heads_x16(const float* const* q, size_t n_q, Rows k, size_t n, float* const* scores) noexcept {
  if (k.f16) scores_hd8_heads_x16<true>(q, n_q, k, n, scores);
  else scores_hd8_heads_x16<false>(q, n_q, k, n, scores);
}

// NP pairs of heads (2·NP heads), each pair in one register: per position a
// two-source permute puts w[2p][j] in the low eight lanes and w[2p+1][j] in
// the high eight, and one fused multiply-add serves both heads. Shared: both
// heads of every pair read the same rows (grouped-query attention).
template <size_t NP, bool F16, bool Shared>
inline void mix_pairs_hd8(const float* const* w, const Rows* v, size_t n, float* const* out) noexcept {
  __m512 acc[NP];
  for (size_t p = 0; p < NP; ++p) acc[p] = _mm512_setzero_ps();
  const __m512i first = _mm512_set_epi32(16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0);
  for (size_t j0 = 0; j0 < n; j0 += 16) {
    const size_t m = n - j0 < 16 ? n - j0 : 16;
    const __mmask16 mask = static_cast<__mmask16>((1u << m) - 1u);
    __m512 w0[NP], w1[NP];
    for (size_t p = 0; p < NP; ++p) {
      w0[p] = _mm512_maskz_loadu_ps(mask, w[2 * p] + j0);
      w1[p] = _mm512_maskz_loadu_ps(mask, w[2 * p + 1] + j0);
    }
    __m512i idx = first;
    for (size_t u = 0; u < m; ++u) {
      const size_t j = j0 + u;
      for (size_t p = 0; p < NP; ++p) {
        const Rows& a = v[2 * p];
        const Rows& b = v[2 * p + 1];
        const __m512 wj = _mm512_permutex2var_ps(w0[p], idx, w1[p]);
        const __m512 vj = Shared ? detail::load8_twice<F16>(a.base + j * a.stride)
                                 : detail::load8x2<F16>(a.base + j * a.stride, b.base + j * b.stride);
        acc[p] = _mm512_fmadd_ps(wj, vj, acc[p]);
      }
      idx = _mm512_add_epi32(idx, _mm512_set1_epi32(1));
    }
  }
  for (size_t p = 0; p < NP; ++p) {
    _mm256_storeu_ps(out[2 * p], _mm512_castps512_ps256(acc[p]));
    _mm256_storeu_pd(reinterpret_cast<double*>(out[2 * p + 1]), _mm512_extractf64x4_pd(_mm512_castps_pd(acc[p]), 1));
  }
}

template <size_t NP>
inline void mix_pairs_hd8(const float* const* w, const Rows* v, size_t n, float* const* out, bool f16,
                          bool shared) noexcept {
  if (f16) {
    if (shared) mix_pairs_hd8<NP, true, true>(w, v, n, out);
    else mix_pairs_hd8<NP, true, false>(w, v, n, out);
  } else {
    if (shared) mix_pairs_hd8<NP, false, true>(w, v, n, out);
    else mix_pairs_hd8<NP, false, false>(w, v, n, out);
  }
}

inline void mix_heads_hd8_x16(const float* const* w, const Rows* v, size_t n_heads, size_t n, float* const* out) noexcept {
  const bool f16 = n_heads > 0 && v[0].f16;
  for (size_t h = 1; h < n_heads; ++h)
    if (v[h].f16 != f16) {  // one cache holds one type; a mixture goes head by head
      for (size_t i = 0; i < n_heads; ++i) mix_hd8(w[i], v[i], n, out[i]);
      return;
    }
  // Up to four pairs at once: enough independent chains to hide the
  // multiply-add latency, few enough that the weights stay in registers.
  for (size_t h = 0; h + 1 < n_heads;) {
    const size_t np = std::min<size_t>(4, (n_heads - h) / 2);
    bool shared = true;
    for (size_t p = 0; p < np; ++p)
      shared = shared && v[h + 2 * p].base == v[h + 2 * p + 1].base && v[h + 2 * p].stride == v[h + 2 * p + 1].stride;
    switch (np) {
      case 4: mix_pairs_hd8<4>(w + h, v + h, n, out + h, f16, shared); break;
      case 3: mix_pairs_hd8<3>(w + h, v + h, n, out + h, f16, shared); break;
      case 2: mix_pairs_hd8<2>(w + h, v + h, n, out + h, f16, shared); break;
      default: mix_pairs_hd8<1>(w + h, v + h, n, out + h, f16, shared); break;
    }
    h += 2 * np;
  }
  if (n_heads % 2 == 1) mix_hd8(w[n_heads - 1], v[n_heads - 1], n, out[n_heads - 1]);
}

// scores for n_q query heads reading the same keys (each key block
// transposed once for all of them); each out[h] is what scores_plain writes.
inline void scores_heads(const float* const* q, size_t n_q, Rows k, size_t hd, size_t n, float* const* out) noexcept {
  if (hd == 8) return scores_hd8_heads_x16(q, n_q, k, n, out);
  for (size_t h = 0; h < n_q; ++h) scores_plain(q[h], k, hd, n, out[h]);
}
// mix for n_heads heads; each out[h] is what mix_plain writes.
inline void mix_heads(const float* const* w, const Rows* v, size_t n_heads, size_t hd, size_t n,
                      float* const* out) noexcept {
  if (hd == 8) return mix_heads_hd8_x16(w, v, n_heads, n, out);
  for (size_t h = 0; h < n_heads; ++h) mix_plain(w[h], v[h], hd, n, out[h]);
}

}  // namespace jielong::kernels::small_heads::avx512

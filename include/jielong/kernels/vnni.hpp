// kernels::Avx512Vnni — the quantized matvec/matmul on AVX-512 VNNI
// (vpdpbusd: 64 u8×s8 products summed into 16 int32 lanes per instruction),
// which neither Highway 1.0.3 nor xsimd 8.1 exposes, with the AVX-512
// activation quantizer, f16 cache rows (avx512.hpp) and small-head attention
// (small_heads_avx512.hpp). Everything else is Highway's. Compiled only when
// the target has AVX-512 F/BW/VL/VNNI; the CPU is asked once, by whoever
// picks the backend (vnni_available(); run::Session for Backend::best), so
// a binary built for a wider CPU takes Highway instead of faulting here.
//
// vpdpbusd multiplies unsigned by signed bytes, so every weight format is
// brought to unsigned quants u = q + offset (nibbles as stored, 6-bit q6_K
// values before their -32, Q8_0 bytes with the top bit flipped) and the
// offset is paid back with the activation's integer sums:
// Σ (u - o)·x = Σ u·x - o·Σx.
//
// Rows x tokens are computed in register tiles (4x4 for the 32-element
// formats, 1x4 for the k-quants, 4x4 float FMA for F32/F16/BF16 prefill), so
// each unpacked weight block serves several tokens and each activation block
// several rows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "jielong/kernels/backend.hpp"
#include "jielong/kernels/block_dot.hpp"
#include "jielong/kernels/highway.hpp"
#include "jielong/kernels/panels.hpp"
#include "jielong/kernels/small_heads.hpp"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
#define JIELONG_HAVE_AVX512_VNNI 1
#include <immintrin.h>

#include "jielong/kernels/avx512.hpp"
#include "jielong/kernels/small_heads_avx512.hpp"
#else
#define JIELONG_HAVE_AVX512_VNNI 0
#endif

namespace jielong::kernels {

// Whether this build and this CPU can run Avx512Vnni: the one run-time
// question of the backends, asked where a backend is chosen.
inline bool vnni_available() noexcept {
#if JIELONG_HAVE_AVX512_VNNI
  static const bool has = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl");
  return has;
#else
  return false;
#endif
}

#if JIELONG_HAVE_AVX512_VNNI

namespace vnni_detail {

// The register tiles below are arrays indexed by loop counters; they stay in
// registers only if those loops are unrolled completely (g++ -O2 does not
// unroll nests this size by itself).
#ifndef JIELONG_UNROLL
#if defined(__clang__)
#define JIELONG_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define JIELONG_UNROLL _Pragma("GCC unroll 16")
#else
#define JIELONG_UNROLL
#endif
#endif

inline float hsum(__m256 v) noexcept {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
// The tiles' own fold. (f32_rows_decode reduces with _mm512_reduce_add_ps
// instead: that is Highway's ReduceSum, which its rows must match bit for bit.)
inline float hsum(__m512 v) noexcept {
  const __m512 folded = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xEE));
  return hsum(_mm512_castps512_ps256(folded));
}
inline float h2f(uint16_t h) noexcept { return _cvtsh_ss(h); }

// Signed 8-bit dot of 32 / 16 elements, for the generic block path.
struct Prims {
  static int32_t dot_i8_32(const int8_t* w, const int8_t* x) noexcept {
    const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
    const __m256i dp = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(wv), _mm256_sign_epi8(xv, wv));
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(dp), _mm256_extracti128_si256(dp, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
  }
  static int32_t dot_i8_16(const int8_t* w, const int8_t* x) noexcept {
    const __m128i wv = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w));
    const __m128i xv = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x));
    __m128i s = _mm_dpbusd_epi32(_mm_setzero_si128(), _mm_abs_epi8(wv), _mm_sign_epi8(xv, wv));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
  }
};

// ---- 32-element formats against ActQ8.

template <DType T>
struct Block32;  // quants(): unsigned u; the weights are u - kOffset (times d, plus m for _1)

inline __m256i nibbles(const uint8_t* qs) noexcept {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}
// Two consecutive blocks' nibbles as one vector in element order:
// [lo(i), hi(i), lo(i+1), hi(i+1)], 16 bytes each.
inline __m512i nibbles2(const uint8_t* qs0, const uint8_t* qs1) noexcept {
  const __m256i q = _mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs0))),
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs1)), 1);
  const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1);  // lo0 lo1 hi0 hi1
  return _mm512_and_si512(_mm512_shuffle_i64x2(both, both, 0xD8), _mm512_set1_epi8(0x0F));           // lo0 hi0 lo1 hi1
}
#if defined(__AVX512VBMI__)
// The same from one masked load of the two blocks (which lie back to back):
// a byte permute puts each block's 16 quant bytes twice in place, the second
// copy is shifted down a nibble. Four instructions instead of six, and no
// lane-crossing insert per row.
template <class Blk>
inline __m512i nibbles2_packed(const Blk* pair) noexcept {
  constexpr int kQs = static_cast<int>(offsetof(Blk, qs)), kS = static_cast<int>(sizeof(Blk));
  static_assert(2 * kS <= 64);
  alignas(64) static constexpr uint8_t kIdx[64] = {
#define JIELONG_Q(base) base + 0, base + 1, base + 2, base + 3, base + 4, base + 5, base + 6, base + 7, base + 8, \
                        base + 9, base + 10, base + 11, base + 12, base + 13, base + 14, base + 15
      JIELONG_Q(kQs), JIELONG_Q(kQs), JIELONG_Q(kS + kQs), JIELONG_Q(kS + kQs)
#undef JIELONG_Q
  };
  const __m512i raw = _mm512_maskz_loadu_epi8((__mmask64{1} << (2 * kS)) - 1, pair);
  const __m512i v = _mm512_permutexvar_epi8(_mm512_load_si512(kIdx), raw);
  return _mm512_and_si512(_mm512_mask_srli_epi16(v, 0xFF00FF00u, v, 4), _mm512_set1_epi8(0x0F));
}
#endif
// The fifth bits: bit j of qh goes to byte j as 0x10 (two blocks' qh: bits
// 0-31 to the first block's bytes, 32-63 to the second's).
inline __m512i q5_high_bits2(const uint8_t* qh0, const uint8_t* qh1) noexcept {
  uint32_t h0, h1;
  std::memcpy(&h0, qh0, 4);
  std::memcpy(&h1, qh1, 4);
  return _mm512_maskz_set1_epi8(static_cast<__mmask64>(h0 | (static_cast<uint64_t>(h1) << 32)), 0x10);
}
inline __m256i q5_high_bits(const uint8_t* qh_bytes) noexcept {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  return _mm256_maskz_set1_epi8(static_cast<__mmask32>(qh), 0x10);
}

// Q4_0/Q4_1 (4-bit) and Q5_0/Q5_1 (4 + 1 bits) share their unpacking; the
// "_0" formats centre with an offset, the "_1" ones add a min per block.
template <class Blk, int Offset, bool Min>
struct Nibble32 {
  using B = Blk;
  static constexpr int kOffset = Offset;
  static constexpr bool kMin = Min;
  static __m256i quants(const B& b) noexcept { return nibbles(b.qs); }
  // b1 directly follows b0.
  static __m512i quants2(const B& b0, const B& b1) noexcept {
#if defined(__AVX512VBMI__)
    (void)b1;
    return nibbles2_packed(&b0);
#else
    return nibbles2(b0.qs, b1.qs);
#endif
  }
};
template <class Blk, int Offset, bool Min>
struct FiveBit32 {
  using B = Blk;
  static constexpr int kOffset = Offset;
  static constexpr bool kMin = Min;
  static __m256i quants(const B& b) noexcept { return _mm256_or_si256(nibbles(b.qs), q5_high_bits(b.qh)); }
  static __m512i quants2(const B& b0, const B& b1) noexcept {  // b1 directly follows b0
#if defined(__AVX512VBMI__)
    return _mm512_or_si512(nibbles2_packed(&b0), q5_high_bits2(b0.qh, b1.qh));
#else
    return _mm512_or_si512(nibbles2(b0.qs, b1.qs), q5_high_bits2(b0.qh, b1.qh));
#endif
  }
};
template <>
struct Block32<DType::Q4_0> : Nibble32<BlockQ4_0, 8, false> {};
template <>
struct Block32<DType::Q4_1> : Nibble32<BlockQ4_1, 0, true> {};
template <>
struct Block32<DType::Q5_0> : FiveBit32<BlockQ5_0, 16, false> {};
template <>
struct Block32<DType::Q5_1> : FiveBit32<BlockQ5_1, 0, true> {};
// Signed bytes become unsigned by flipping the top bit: u = w + 128.
template <>
struct Block32<DType::Q8_0> {
  using B = BlockQ8_0;
  static constexpr int kOffset = 128;
  static constexpr bool kMin = false;
  static __m256i quants(const B& b) noexcept {
    return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs)), _mm256_set1_epi8(-128));
  }
  static __m512i quants2(const B& b0, const B& b1) noexcept {
    const __m512i q = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0.qs))),
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b1.qs)), 1);
    return _mm512_xor_si512(q, _mm512_set1_epi8(-128));
  }
};

// [b0.d ×8, b1.d ×8] as floats, for two consecutive blocks whose scale d is
// their first half float. Blocks under 31 bytes have both scales inside one
// 32-byte load from b0 (b1 follows it; the pair spans at least 36 bytes), so
// one word permute and one conversion replace two scalar loads, a shift, a
// move, a conversion and a float permute.
template <class Blk>
inline __m512 pair_scales(const Blk& b0, const Blk& b1, __m512i pair_idx) noexcept {
  static_assert(offsetof(Blk, d) == 0);
  if constexpr (sizeof(Blk) + 2 <= 32) {
    constexpr short k = sizeof(Blk) / 2;  // the word index of b1.d
    const __m256i idx = _mm256_set_epi16(k, k, k, k, k, k, k, k, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(&b0));
    return _mm512_cvtph_ps(_mm256_permutexvar_epi16(idx, raw));
  } else {
    const uint32_t d01 = static_cast<uint32_t>(b0.d) | (static_cast<uint32_t>(b1.d) << 16);
    return _mm512_permutexvar_ps(pair_idx, _mm512_zextps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(d01)))));
  }
}

// out[r * NT + t] = row r · token t, for an NR x NT tile. Each weight block is
// unpacked once for NT tokens and each activation block loaded once for NR
// rows; the NR·NT accumulators stay in registers.
template <DType T, int NR, int NT>
inline void tile_block32(const void* const* rows, const void* const* next, const ActQ8* const* act, size_t nb,
                   float* out) noexcept {
  using F = Block32<T>;
  __m256 acc[NR][NT];
  float acc_min[NR][NT];
  JIELONG_UNROLL
  for (int r = 0; r < NR; ++r)
    JIELONG_UNROLL
    for (int t = 0; t < NT; ++t) {
      acc[r][t] = _mm256_setzero_ps();
      acc_min[r][t] = 0.0f;
    }
  // Two blocks per 512-bit vector: half the instructions of one block per
  // 256-bit vector (the loop is bound by instruction throughput, not by the
  // arithmetic units).
  __m512 acc2[NR][NT];
  JIELONG_UNROLL
  for (int r = 0; r < NR; ++r)
    JIELONG_UNROLL
    for (int t = 0; t < NT; ++t) acc2[r][t] = _mm512_setzero_ps();
  const __m512i pair_idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  size_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    __m512i u[NR];
    __m512 dw[NR];
    JIELONG_UNROLL
    for (int r = 0; r < NR; ++r) {
      const auto* blocks = static_cast<const typename F::B*>(rows[r]);
      const auto& b0 = blocks[i];
      const auto& b1 = blocks[i + 1];
      if constexpr (NR > 1) {  // see below: the next tile's rows
        const char* n = static_cast<const char*>(next[r]) + i * sizeof(typename F::B);
        _mm_prefetch(n, _MM_HINT_T0);
        _mm_prefetch(n + sizeof(typename F::B), _MM_HINT_T0);
      }
      u[r] = F::quants2(b0, b1);
      dw[r] = pair_scales<typename F::B>(b0, b1, pair_idx);
    }
    JIELONG_UNROLL
    for (int t = 0; t < NT; ++t) {
      const ActQ8& a0 = act[t][i];
      const ActQ8& a1 = act[t][i + 1];
      const __m512i x = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a0.qs))),
                                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a1.qs)), 1);
      const __m512i init = F::kOffset ? _mm512_mask_set1_epi32(_mm512_set1_epi32(-(F::kOffset / 8) * a0.sum), 0xFF00,
                                                               -(F::kOffset / 8) * a1.sum)
                                      : _mm512_setzero_si512();
      const __m512 dx = _mm512_mask_mov_ps(_mm512_set1_ps(a0.d), 0xFF00, _mm512_set1_ps(a1.d));
      JIELONG_UNROLL
      for (int r = 0; r < NR; ++r) {
        const __m512i dp = _mm512_dpbusd_epi32(init, u[r], x);
        acc2[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dp), _mm512_mul_ps(dw[r], dx), acc2[r][t]);
        if constexpr (F::kMin) {
          const auto* blocks = static_cast<const typename F::B*>(rows[r]);
          acc_min[r][t] += h2f(blocks[i].m) * a0.s + h2f(blocks[i + 1].m) * a1.s;
        }
      }
    }
  }
  for (; i < nb; ++i) {  // an odd last block
    __m256i u[NR];
    __m256 dw[NR];
    JIELONG_UNROLL
    for (int r = 0; r < NR; ++r) {
      const auto& b = static_cast<const typename F::B*>(rows[r])[i];
      // A tile reads NR rows as NR short streams, too short for the hardware
      // prefetchers to lock on in a DRAM-sized matrix; fetch the same block
      // of the next tile's rows meanwhile.
      if constexpr (NR > 1) _mm_prefetch(static_cast<const char*>(next[r]) + i * sizeof(typename F::B), _MM_HINT_T0);
      u[r] = F::quants(b);
      // d is the block's first half float: widen the first 4 halves (d and
      // three quant bytes pairs) and broadcast lane 0.
      dw[r] = _mm256_broadcastss_ps(_mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(&b))));
    }
    JIELONG_UNROLL
    for (int t = 0; t < NT; ++t) {
      const ActQ8& a = act[t][i];
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs));
      // Eight lanes of -o·Σx/8 sum to the offset correction -o·Σx.
      const __m256i init = F::kOffset ? _mm256_set1_epi32(-(F::kOffset / 8) * a.sum) : _mm256_setzero_si256();
      const __m256 dx = _mm256_set1_ps(a.d);
      JIELONG_UNROLL
      for (int r = 0; r < NR; ++r) {
        const __m256i dp = _mm256_dpbusd_epi32(init, u[r], x);
        acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dp), _mm256_mul_ps(dw[r], dx), acc[r][t]);
        if constexpr (F::kMin) acc_min[r][t] += h2f(static_cast<const typename F::B*>(rows[r])[i].m) * a.s;
      }
    }
  }
  JIELONG_UNROLL
  for (int r = 0; r < NR; ++r)
    JIELONG_UNROLL
    for (int t = 0; t < NT; ++t) out[r * NT + t] = hsum(acc2[r][t]) + hsum(acc[r][t]) + acc_min[r][t];
}

// ---- k-quants against ActQ8K. Each super-block becomes four 64-byte vectors
// of unsigned quants. vpmaddubsw turns a vector into 32 int16 sums of element
// pairs (small enough: ≤ 2·63·128), and vpdpwssd multiplies each pair sum by
// its sub-block's scale and accumulates into int32 in one instruction.

struct KUnpacked {
  __m512i u[4];      // unsigned quants, elements 64k .. 64k+63 in vector k
  __m512i scale[4];  // int16 scale of each pair lane's sub-block
  float d, dmin;
  __m256i mins16;    // Q4_K/Q5_K: min of each 16-element half-sub-block (int16), paired with bsums
  __m256i scales16;  // Q6_K: scale of each 16-element sub-block (int16), paired with bsums
};

// vpermw indices spreading per-sub-block int16 scales over pair lanes:
// 32-element sub-blocks (Q4_K, Q5_K) and 16-element ones (Q6_K).
struct PairScaleIdx {
  alignas(64) int16_t sub32[4][32];
  alignas(64) int16_t sub16[4][32];
  constexpr PairScaleIdx() : sub32{}, sub16{} {
    for (int v = 0; v < 4; ++v)
      for (int l = 0; l < 32; ++l) {
        sub32[v][l] = static_cast<int16_t>(2 * v + l / 16);
        sub16[v][l] = static_cast<int16_t>(4 * v + l / 8);
      }
  }
};
inline constexpr PairScaleIdx kPairScaleIdx{};
inline constexpr const int16_t (&kPairScaleIdx32)[4][32] = kPairScaleIdx.sub32;
inline constexpr const int16_t (&kPairScaleIdx16)[4][32] = kPairScaleIdx.sub16;

// Q4_K/Q5_K: 8 six-bit scales and mins in 12 bytes -> two 8-byte lists.
inline void k4_scales_mins(const uint8_t* packed, uint64_t& scales, uint64_t& mins) noexcept {
  uint32_t u[3];
  std::memcpy(u, packed, 12);
  const uint32_t sc_lo = u[0] & 0x3f3f3f3fu;
  const uint32_t mn_lo = u[1] & 0x3f3f3f3fu;
  const uint32_t sc_hi = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
  const uint32_t mn_hi = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
  scales = sc_lo | (static_cast<uint64_t>(sc_hi) << 32);
  mins = mn_lo | (static_cast<uint64_t>(mn_hi) << 32);
}

template <DType T>
inline void unpack_k(const void* wrow, size_t i, KUnpacked& k) noexcept {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  if constexpr (T == DType::Q4_K || T == DType::Q5_K) {
    const uint8_t* qs;
    const uint8_t* packed;
    if constexpr (T == DType::Q4_K) {
      const auto& b = static_cast<const BlockQ4_K*>(wrow)[i];
      qs = b.qs;
      packed = b.scales;
      k.d = h2f(b.d);
      k.dmin = h2f(b.dmin);
    } else {
      const auto& b = static_cast<const BlockQ5_K*>(wrow)[i];
      qs = b.qs;
      packed = b.scales;
      k.d = h2f(b.d);
      k.dmin = h2f(b.dmin);
    }
    uint64_t sc, mn;
    k4_scales_mins(packed, sc, mn);
    const __m512i sc16 = _mm512_zextsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>(sc))));
    const __m128i m8 = _mm_cvtsi64_si128(static_cast<long long>(mn));
    k.mins16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
    __m256i qh = _mm256_setzero_si256();
    if constexpr (T == DType::Q5_K) qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const BlockQ5_K*>(wrow)[i].qh));
    const __m512i qh2 = _mm512_broadcast_i64x4(qh);
    JIELONG_UNROLL
    for (int p = 0; p < 4; ++p) {
      // Vector p: low nibbles of qs[32p..] (sub-block 2p), then high nibbles (2p+1).
      const __m512i q = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * p)));
      __m512i u = _mm512_and_si512(_mm512_mask_srli_epi16(q, 0xFFFF0000u, q, 4), low4);
      if constexpr (T == DType::Q5_K) {
        // bit (2p) of qh for the low half, bit (2p+1) for the high half, moved to 0x10.
        const __m512i h = _mm512_mask_srli_epi16(_mm512_srli_epi16(qh2, 2 * p), 0xFFFF0000u, _mm512_srli_epi16(qh2, 2 * p), 1);
        u = _mm512_or_si512(u, _mm512_and_si512(_mm512_slli_epi16(h, 4), _mm512_set1_epi8(0x10)));
      }
      k.u[p] = u;
      // pair lanes 0-15 belong to sub-block 2p, 16-31 to 2p+1
      k.scale[p] = _mm512_permutexvar_epi16(_mm512_load_si512(kPairScaleIdx32[p]), sc16);
    }
  } else {  // Q6_K
    const auto& b = static_cast<const BlockQ6_K*>(wrow)[i];
    k.d = h2f(b.d);
    k.dmin = 0.0f;
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
    k.scales16 = _mm256_cvtepi8_epi16(sc8);
    const __m512i sc16 = _mm512_zextsi256_si512(k.scales16);
    const __m512i three = _mm512_set1_epi8(3);
    JIELONG_UNROLL
    for (int h = 0; h < 2; ++h) {
      const __m512i ql = _mm512_loadu_si512(b.ql + 64 * h);
      const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * h)));
      // elements 128h + 0..63: low nibbles of ql[64h..64h+63]; high bits 0-1 (first 32), 2-3 (next 32)
      const __m512i hA = _mm512_and_si512(_mm512_mask_srli_epi16(qh, 0xFFFF0000u, qh, 2), three);
      // elements 128h + 64..127: high nibbles; high bits 4-5, 6-7
      const __m512i qh4 = _mm512_srli_epi16(qh, 4);
      const __m512i hB = _mm512_and_si512(_mm512_mask_srli_epi16(qh4, 0xFFFF0000u, qh4, 2), three);
      k.u[2 * h] = _mm512_or_si512(_mm512_and_si512(ql, low4), _mm512_slli_epi16(hA, 4));
      k.u[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4), _mm512_slli_epi16(hB, 4));
    }
    // pair lane l of vector v belongs to sub-block 4v + l/8
    JIELONG_UNROLL
    for (int v = 0; v < 4; ++v) k.scale[v] = _mm512_permutexvar_epi16(_mm512_load_si512(kPairScaleIdx16[v]), sc16);
  }
}

// out[r * NT + t] = row r · token t for an NR x NT tile of k-quant rows.
template <DType T, int NR, int NT>
inline void tile_kquant(const void* const* rows, const ActQ8K* const* act, size_t nb, float* out) noexcept {
  __m512 acc[NR][NT];
  JIELONG_UNROLL
  for (int r = 0; r < NR; ++r)
    JIELONG_UNROLL
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_setzero_ps();
  KUnpacked k[NR];
  for (size_t i = 0; i < nb; ++i) {
    JIELONG_UNROLL
    for (int r = 0; r < NR; ++r) unpack_k<T>(rows[r], i, k[r]);
    JIELONG_UNROLL
    for (int t = 0; t < NT; ++t) {
      const ActQ8K& a = act[t][i];
      __m512i x[4];
      JIELONG_UNROLL
      for (int v = 0; v < 4; ++v) x[v] = _mm512_load_si512(a.qs + 64 * v);
      const __m256i bsums = _mm256_load_si256(reinterpret_cast<const __m256i*>(a.bsums));
      JIELONG_UNROLL
      for (int r = 0; r < NR; ++r) {
        // Two chains of two: one chain of four would wait on vpdpwssd's latency.
        const __m512i even = _mm512_dpwssd_epi32(
            _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(k[r].u[0], x[0]), k[r].scale[0]),
            _mm512_maddubs_epi16(k[r].u[2], x[2]), k[r].scale[2]);
        const __m512i odd = _mm512_dpwssd_epi32(
            _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(k[r].u[1], x[1]), k[r].scale[1]),
            _mm512_maddubs_epi16(k[r].u[3], x[3]), k[r].scale[3]);
        __m512i isum = _mm512_add_epi32(even, odd);
        if constexpr (T == DType::Q6_K) {
          // Σ_s scale_s (dot_s - 32 bsum_s)
          const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(bsums, k[r].scales16), 5);
          isum = _mm512_sub_epi32(isum, _mm512_zextsi256_si512(corr));
          acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(k[r].d * a.d), acc[r][t]);
        } else {
          // d Σ_s scale_s dot_s - dmin Σ_s min_s (bsum_2s + bsum_2s+1)
          const __m256i msum = _mm256_madd_epi16(bsums, k[r].mins16);
          acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(k[r].d * a.d), acc[r][t]);
          acc[r][t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(_mm512_zextsi256_si512(msum)),
                                       _mm512_set1_ps(k[r].dmin * a.d), acc[r][t]);
        }
      }
    }
  }
  JIELONG_UNROLL
  for (int r = 0; r < NR; ++r)
    JIELONG_UNROLL
    for (int t = 0; t < NT; ++t) out[r * NT + t] = hsum(acc[r][t]);
}

// Float weights (F32/F16/BF16) in NR x NT tiles for prefill: each widened
// weight vector feeds NT tokens, each activation vector NR rows.
template <DType T>
inline __m512 load_weights16(const void* row, size_t i) noexcept {
  if constexpr (T == DType::F32) {
    return _mm512_loadu_ps(static_cast<const float*>(row) + i);
  } else if constexpr (T == DType::F16) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(row) + i)));
  } else {  // BF16: the upper half of a float
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(row) + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}
template <DType T>
inline float weight_at(const void* row, size_t i) noexcept {
  if constexpr (T == DType::F32) return static_cast<const float*>(row)[i];
  else if constexpr (T == DType::F16) return fp16_to_f32(static_cast<const uint16_t*>(row)[i]);
  else return bf16_to_f32(static_cast<const uint16_t*>(row)[i]);
}

template <DType T, int NR, int NT>
inline void tile_float(const void* const* rows, const float* const* x, size_t cols, float* out) noexcept {
  __m512 acc[NR][NT];
  JIELONG_UNROLL
  for (int r = 0; r < NR; ++r)
    JIELONG_UNROLL
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= cols; i += 16) {
    __m512 w[NR];
    JIELONG_UNROLL
    for (int r = 0; r < NR; ++r) w[r] = load_weights16<T>(rows[r], i);
    JIELONG_UNROLL
    for (int t = 0; t < NT; ++t) {
      const __m512 xv = _mm512_loadu_ps(x[t] + i);
      JIELONG_UNROLL
      for (int r = 0; r < NR; ++r) acc[r][t] = _mm512_fmadd_ps(w[r], xv, acc[r][t]);
    }
  }
  JIELONG_UNROLL
  for (int r = 0; r < NR; ++r)
    JIELONG_UNROLL
    for (int t = 0; t < NT; ++t) {
      float sum = hsum(acc[r][t]);
      for (size_t j = i; j < cols; ++j) sum += weight_at<T>(rows[r], j) * x[t][j];
      out[r * NT + t] = sum;
    }
}

template <DType T, int NR, int NT>
inline void tile(const void* const* rows, const void* const* next, const void* const* act, size_t cols,
                 float* out) noexcept {
  if constexpr (act_kind(T) == ActKind::none) {
    (void)next;
    tile_float<T, NR, NT>(rows, reinterpret_cast<const float* const*>(act), cols, out);
  } else if constexpr (act_kind(T) == ActKind::q8) {
    tile_block32<T, NR, NT>(rows, next, reinterpret_cast<const ActQ8* const*>(act), cols / 32, out);
  } else {
    tile_kquant<T, NR, NT>(rows, reinterpret_cast<const ActQ8K* const*>(act), cols / 256, out);
  }
}

// Rows [r0, r1) x all tokens in NR x NT tiles, then the leftovers one by one.
template <DType T, int NR, int NT>
inline void rows_dot_fused(const WeightView& w, size_t r0, size_t r1, const void* act, size_t act_stride,
                           size_t n_tokens, float* y, size_t y_stride) noexcept {
  const auto* base = static_cast<const std::byte*>(act);
  auto run = [&](auto nr_c, auto nt_c, size_t r, size_t t) {
    constexpr int kR = decltype(nr_c)::value, kT = decltype(nt_c)::value;
    const void* rows[kR];
    const void* next[kR];  // the rows of the following tile (or these again at the end)
    const void* a[kT];
    for (int j = 0; j < kR; ++j) {
      rows[j] = w.row(r + j);
      next[j] = r + kR + j < r1 ? w.row(r + kR + j) : rows[j];
    }
    for (int j = 0; j < kT; ++j) a[j] = base + (t + j) * act_stride;
    float out[kR * kT];
    tile<T, kR, kT>(rows, next, a, w.cols, out);
    for (int i = 0; i < kR; ++i)
      for (int j = 0; j < kT; ++j) y[(t + j) * y_stride + r + i] = out[i * kT + j];
  };
  using R = std::integral_constant<int, NR>;
  using One = std::integral_constant<int, 1>;
  using Tk = std::integral_constant<int, NT>;
  size_t r = r0;
  for (; r + NR <= r1; r += NR) {
    size_t t = 0;
    for (; t + NT <= n_tokens; t += NT) run(R{}, Tk{}, r, t);
    for (; t < n_tokens; ++t) run(R{}, One{}, r, t);
  }
  for (; r < r1; ++r) {
    size_t t = 0;
    for (; t + NT <= n_tokens; t += NT) run(One{}, Tk{}, r, t);
    for (; t < n_tokens; ++t) run(One{}, One{}, r, t);
  }
}

// Decode (one token) for F32 weights, four rows at a time: each x vector is
// loaded once for four rows, and there is one call per four rows instead of
// a dispatched dot per row (for small models that overhead is most of the
// time). Each row's arithmetic is exactly Ops<Highway>::dot's: four
// accumulators over 64-element chunks, 16-element chunks into the first,
// (s0+s1)+(s2+s3), the same lane reduction, then the leftover elements one
// rounded product at a time — so the numbers are identical to the per-row
// path (tests/test_kernels.cpp checks it bit for bit).
template <int R>
inline void f32_rows_decode(const float* const* w, const float* x, size_t cols, float* out) noexcept {
  __m512 s[R][4];
  JIELONG_UNROLL
  for (int r = 0; r < R; ++r)
    JIELONG_UNROLL
    for (int k = 0; k < 4; ++k) s[r][k] = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 64 <= cols; i += 64) {
    const __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
    const __m512 x2 = _mm512_loadu_ps(x + i + 32), x3 = _mm512_loadu_ps(x + i + 48);
    JIELONG_UNROLL
    for (int r = 0; r < R; ++r) {
      s[r][0] = _mm512_fmadd_ps(x0, _mm512_loadu_ps(w[r] + i), s[r][0]);
      s[r][1] = _mm512_fmadd_ps(x1, _mm512_loadu_ps(w[r] + i + 16), s[r][1]);
      s[r][2] = _mm512_fmadd_ps(x2, _mm512_loadu_ps(w[r] + i + 32), s[r][2]);
      s[r][3] = _mm512_fmadd_ps(x3, _mm512_loadu_ps(w[r] + i + 48), s[r][3]);
    }
  }
  for (; i + 16 <= cols; i += 16) {
    const __m512 x0 = _mm512_loadu_ps(x + i);
    JIELONG_UNROLL
    for (int r = 0; r < R; ++r) s[r][0] = _mm512_fmadd_ps(x0, _mm512_loadu_ps(w[r] + i), s[r][0]);
  }
  JIELONG_UNROLL
  for (int r = 0; r < R; ++r) {
    const __m512 sum = _mm512_add_ps(_mm512_add_ps(s[r][0], s[r][1]), _mm512_add_ps(s[r][2], s[r][3]));
    float acc = _mm512_reduce_add_ps(sum);
    for (size_t j = i; j < cols; ++j) acc += small_heads::rounded_product(x[j], w[r][j]);
    out[r] = acc;
  }
}

inline void f32_decode(const WeightView& w, size_t r0, size_t r1, const float* x, float* y) noexcept {
  size_t r = r0;
  for (; r + 4 <= r1; r += 4) {
    const float* rows[4] = {static_cast<const float*>(w.row(r)), static_cast<const float*>(w.row(r + 1)),
                            static_cast<const float*>(w.row(r + 2)), static_cast<const float*>(w.row(r + 3))};
    f32_rows_decode<4>(rows, x, w.cols, y + r);
  }
  for (; r < r1; ++r) {
    const float* row = static_cast<const float*>(w.row(r));
    f32_rows_decode<1>(&row, x, w.cols, y + r);
  }
}

// ---- Panels (kernels/panels.hpp): 16 rows per vector lane set. Per block,
// each 64-byte group of quants feeds one vpdpbusd for all 16 rows; the block
// sum is exact in int32 and enters the float sum as in panels::rows_dot_ref,
// so the result is that definition's, bit for bit.

// A record's eight vectors of unsigned quants, u[s] lane r = row r's
// elements 4s..4s+3.
template <DType T>
inline void panel_quants(const uint8_t* rec, __m512i (&u)[8]) noexcept {
  const uint8_t* q = rec + 32;
  if constexpr (T == DType::Q8_0) {
    JIELONG_UNROLL
    for (int s = 0; s < 8; ++s) u[s] = _mm512_loadu_si512(q + 64 * s);
  } else {
    const __m512i low = _mm512_set1_epi8(0x0F);
    JIELONG_UNROLL
    for (int j = 0; j < 4; ++j) {
      const __m512i v = _mm512_loadu_si512(q + 64 * j);
      u[j] = _mm512_and_si512(v, low);                          // elements 4j..4j+3
      u[j + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);  // elements 16+4j..
    }
  }
}

inline int32_t load_i32(const int8_t* p) noexcept {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// acc[t] lane r += row r · token t over blocks [0, nb) of one panel.
template <DType T, int NT>
inline void panel_tile(const uint8_t* panel, size_t nb, const ActQ8* const* act, __m512 (&acc)[NT]) noexcept {
  constexpr size_t kRec = panels::detail::Fmt<T>::kQuantBytes + 32;
  constexpr int kOffset = panels::detail::Fmt<T>::kOffset;
  JIELONG_UNROLL
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  for (size_t b = 0; b < nb; ++b) {
    const uint8_t* rec = panel + b * kRec;
    __m512i u[8];
    panel_quants<T>(rec, u);
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec)));
    JIELONG_UNROLL
    for (int t = 0; t < NT; ++t) {
      const ActQ8& a = act[t][b];
      // Two chains of four (a single token would otherwise wait on eight
      // dependent vpdpbusd per block); the int32 sums are exact either way.
      __m512i s0 = _mm512_set1_epi32(-kOffset * a.sum), s1 = _mm512_setzero_si512();
      JIELONG_UNROLL
      for (int s = 0; s < 8; s += 2) {
        s0 = _mm512_dpbusd_epi32(s0, u[s], _mm512_set1_epi32(load_i32(a.qs + 4 * s)));
        s1 = _mm512_dpbusd_epi32(s1, u[s + 1], _mm512_set1_epi32(load_i32(a.qs + 4 * s + 4)));
      }
      const __m512 isum = _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1));
      acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(a.d)), isum, acc[t]);
    }
  }
}

// Q4_K panels: per super-block, the eight 6-bit scales and mins of 16 rows
// are unpacked together (three 64-byte loads: bytes [i][r]); each 64-byte
// group of quants feeds two vpdpbusd (low nibbles: sub-block 2g, high:
// 2g+1), a sub-block's int32 sums are scaled with vpmulld, and the mins
// term Σ m_j·bsum_j is four vpdpwssd on (m_2i, m_2i+1) word pairs.
template <int NT>
inline void panel_tile_q4k(const uint8_t* panel, size_t nb, const ActQ8K* const* act, __m512 (&acc)[NT]) noexcept {
  using F = panels::detail::Fmt<DType::Q4_K>;
  constexpr size_t kRec = panels::kRows * sizeof(BlockQ4_K);
  const __m512i low = _mm512_set1_epi8(0x0F), six = _mm512_set1_epi8(63), top2 = _mm512_set1_epi8(0x30);
  // Word pairs (m_j[r], m_j+1[r]) from bytes [j][r]: output bytes 4r and
  // 4r+2 take m_j[r] and m_j+1[r], odd bytes are zeroed by the mask.
#if defined(__AVX512VBMI__)
  alignas(64) static constexpr auto kPairIdx = [] {
    struct { uint8_t lo[64], hi[64]; } t{};
    for (int r = 0; r < 16; ++r) {
      t.lo[4 * r] = static_cast<uint8_t>(r);
      t.lo[4 * r + 2] = static_cast<uint8_t>(16 + r);
      t.hi[4 * r] = static_cast<uint8_t>(32 + r);
      t.hi[4 * r + 2] = static_cast<uint8_t>(48 + r);
    }
    return t;
  }();
  const __m512i pair_lo = _mm512_load_si512(kPairIdx.lo), pair_hi = _mm512_load_si512(kPairIdx.hi);
  constexpr __mmask64 kEven = 0x5555555555555555ull;
#endif
  JIELONG_UNROLL
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  for (size_t b = 0; b < nb; ++b) {
    const uint8_t* rec = panel + b * kRec;
    const __m512i A = _mm512_loadu_si512(rec + F::kScales), B = _mm512_loadu_si512(rec + F::kScales + 64),
                  C = _mm512_loadu_si512(rec + F::kScales + 128);
    // get_scale_min_k4 on 16 rows at once; sc/m bytes [j][r], j = 0..3 and 4..7.
    const __m512i sc03 = _mm512_and_si512(A, six), m03 = _mm512_and_si512(B, six);
    const __m512i sc47 = _mm512_or_si512(_mm512_and_si512(C, low), _mm512_and_si512(_mm512_srli_epi16(A, 2), top2));
    const __m512i m47 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(C, 4), low),
                                        _mm512_and_si512(_mm512_srli_epi16(B, 2), top2));
    alignas(64) uint8_t sc[2][64];  // sc[0] = sub-blocks 0..3, sc[1] = 4..7, bytes [j][r]
    _mm512_store_si512(sc[0], sc03);
    _mm512_store_si512(sc[1], sc47);
    auto widen = [&](int j) {  // sub-block j's 16 scales as int32 lanes
      return _mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(&sc[0][0] + 16 * j)));
    };
    __m512i isum[NT];
    JIELONG_UNROLL
    for (int t = 0; t < NT; ++t) isum[t] = _mm512_setzero_si512();
    JIELONG_UNROLL
    for (int g = 0; g < 4; ++g) {
      const __m512i sc_lo = widen(2 * g), sc_hi = widen(2 * g + 1);
      __m512i s_lo[NT], s_hi[NT];
      JIELONG_UNROLL
      for (int t = 0; t < NT; ++t) s_lo[t] = s_hi[t] = _mm512_setzero_si512();
      const uint8_t* q = rec + F::kQuants + 8 * 64 * g;
      JIELONG_UNROLL
      for (int s = 0; s < 8; ++s) {
        const __m512i v = _mm512_loadu_si512(q + 64 * s);
        const __m512i lo = _mm512_and_si512(v, low), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
        JIELONG_UNROLL
        for (int t = 0; t < NT; ++t) {
          const int8_t* x = act[t][b].qs + 64 * g + 4 * s;
          s_lo[t] = _mm512_dpbusd_epi32(s_lo[t], lo, _mm512_set1_epi32(load_i32(x)));
          s_hi[t] = _mm512_dpbusd_epi32(s_hi[t], hi, _mm512_set1_epi32(load_i32(x + 32)));
        }
      }
      JIELONG_UNROLL
      for (int t = 0; t < NT; ++t)
        isum[t] = _mm512_add_epi32(isum[t], _mm512_add_epi32(_mm512_mullo_epi32(s_lo[t], sc_lo),
                                                              _mm512_mullo_epi32(s_hi[t], sc_hi)));
    }
#if defined(__AVX512VBMI__)
    const __m512i mp[4] = {_mm512_maskz_permutexvar_epi8(kEven, pair_lo, m03),
                           _mm512_maskz_permutexvar_epi8(kEven, pair_hi, m03),
                           _mm512_maskz_permutexvar_epi8(kEven, pair_lo, m47),
                           _mm512_maskz_permutexvar_epi8(kEven, pair_hi, m47)};
#else
    alignas(64) uint8_t mb[2][64];
    _mm512_store_si512(mb[0], m03);
    _mm512_store_si512(mb[1], m47);
    auto pair = [&](int j) {  // (m_j[r], m_j+1[r]) without a byte permute
      const auto* p = reinterpret_cast<const __m128i*>(&mb[0][0] + 16 * j);
      return _mm512_or_si512(_mm512_cvtepu8_epi32(_mm_load_si128(p)),
                             _mm512_slli_epi32(_mm512_cvtepu8_epi32(_mm_load_si128(p + 1)), 16));
    };
    const __m512i mp[4] = {pair(0), pair(2), pair(4), pair(6)};
#endif
    const __m512 dv = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec)));
    const __m512 dminv = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec + 32)));
    JIELONG_UNROLL
    for (int t = 0; t < NT; ++t) {
      const ActQ8K& a = act[t][b];
      __m512i msum = _mm512_setzero_si512();
      JIELONG_UNROLL
      for (int i = 0; i < 4; ++i) {
        int32_t pair;
        std::memcpy(&pair, a.bsums32 + 2 * i, 4);
        msum = _mm512_dpwssd_epi32(msum, mp[i], _mm512_set1_epi32(pair));
      }
      const __m512 inner = _mm512_fnmadd_ps(dminv, _mm512_cvtepi32_ps(msum),
                                            _mm512_mul_ps(dv, _mm512_cvtepi32_ps(isum[t])));
      acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(a.d), inner, acc[t]);
    }
  }
}

// Rows [r0, r1) (multiples of 16) of the panels x all tokens, eight tokens at
// a time (each record unpacked once for eight; four for Q4_K), then four,
// then one by one.
template <DType T>
inline void panel_rows(const WeightView& w, size_t r0, size_t r1, const void* act, size_t act_stride,
                       size_t n_tokens, float* y, size_t y_stride) noexcept {
  const auto* base = static_cast<const std::byte*>(act);
  auto run = [&](auto nt_c, size_t p, size_t t) {
    constexpr int kT = decltype(nt_c)::value;
    const uint8_t* panel = static_cast<const uint8_t*>(w.data) + p * w.row_stride;
    __m512 acc[kT];
    if constexpr (T == DType::Q4_K) {
      const ActQ8K* a[kT];
      for (int j = 0; j < kT; ++j) a[j] = reinterpret_cast<const ActQ8K*>(base + (t + j) * act_stride);
      panel_tile_q4k<kT>(panel, w.cols / 256, a, acc);
    } else {
      const ActQ8* a[kT];
      for (int j = 0; j < kT; ++j) a[j] = reinterpret_cast<const ActQ8*>(base + (t + j) * act_stride);
      panel_tile<T, kT>(panel, w.cols / 32, a, acc);
    }
    for (int j = 0; j < kT; ++j) _mm512_storeu_ps(y + (t + j) * y_stride + p, acc[j]);
  };
  for (size_t p = r0; p + panels::kRows <= r1; p += panels::kRows) {
    size_t t = 0;
    if constexpr (T != DType::Q4_K)  // (a Q4_K tile of 8 tokens would not fit the 32 registers)
      for (; t + 8 <= n_tokens; t += 8) run(std::integral_constant<int, 8>{}, p, t);
    for (; t + 4 <= n_tokens; t += 4) run(std::integral_constant<int, 4>{}, p, t);
    for (; t < n_tokens; ++t) run(std::integral_constant<int, 1>{}, p, t);
  }
}

// ---- F32 panels (kernels/panels.hpp): column j of 16 rows in one vector,
// times x[j] broadcast. Per token and row, four chains over the columns
// j ≡ k (mod 4) in column order, then (a0 + a1) + (a2 + a3): the
// definition (panels::detail::f32_dot4), bit for bit. P panels and T
// tokens per pass: decode runs two panels (eight independent chains hide
// the multiply-add latency), prefill four tokens per loaded column.
template <int P, int T>
inline void f32_panels(const float* w, size_t cols, const float* x, size_t x_stride, float* y,
                       size_t y_stride) noexcept {
  constexpr size_t kPanel = panels::kRows;
  __m512 a[P][T][4];
  JIELONG_UNROLL
  for (int p = 0; p < P; ++p)
    JIELONG_UNROLL
    for (int t = 0; t < T; ++t)
      JIELONG_UNROLL
      for (int k = 0; k < 4; ++k) a[p][t][k] = _mm512_setzero_ps();
  auto column = [&](size_t j, int k) {
    JIELONG_UNROLL
    for (int p = 0; p < P; ++p) {
      const __m512 wj = _mm512_loadu_ps(w + p * kPanel * cols + j * kPanel);  // [16] column j of panel p
      JIELONG_UNROLL
      for (int t = 0; t < T; ++t) a[p][t][k] = _mm512_fmadd_ps(_mm512_set1_ps(x[t * x_stride + j]), wj, a[p][t][k]);
    }
  };
  size_t j = 0;
  for (; j + 4 <= cols; j += 4) {
    column(j, 0);
    column(j + 1, 1);
    column(j + 2, 2);
    column(j + 3, 3);
  }
  for (int k = 0; j < cols; ++j, ++k) column(j, k);
  JIELONG_UNROLL
  for (int p = 0; p < P; ++p)
    JIELONG_UNROLL
    for (int t = 0; t < T; ++t)
      _mm512_storeu_ps(y + t * y_stride + p * kPanel, _mm512_add_ps(_mm512_add_ps(a[p][t][0], a[p][t][1]),
                                                                    _mm512_add_ps(a[p][t][2], a[p][t][3])));
}

// The definition for row-major rows (those after the last panel), R
// consecutive rows (stride floats apart) at once: per row, the four chains
// are the four lanes of one vector (the last cols % 4 columns a masked
// multiply-add into the first lanes), then (a0 + a1) + (a2 + a3); the R
// rows' chains are independent.
template <int R>
inline void f32_rows_dot4(const float* w, size_t stride, const float* x, size_t cols, float* y) noexcept {
  __m128 a[R];
  JIELONG_UNROLL
  for (int r = 0; r < R; ++r) a[r] = _mm_setzero_ps();
  size_t j = 0;
  for (; j + 4 <= cols; j += 4) {
    const __m128 xj = _mm_loadu_ps(x + j);
    JIELONG_UNROLL
    for (int r = 0; r < R; ++r) a[r] = _mm_fmadd_ps(xj, _mm_loadu_ps(w + r * stride + j), a[r]);
  }
  const auto rest = static_cast<__mmask8>((1u << (cols - j)) - 1);
  const __m128 xj = _mm_maskz_loadu_ps(rest, x + j);
  JIELONG_UNROLL
  for (int r = 0; r < R; ++r) {
    const __m128 v = _mm_mask3_fmadd_ps(xj, _mm_maskz_loadu_ps(rest, w + r * stride + j), a[r], rest);
    const __m128 pairs = _mm_add_ps(v, _mm_shuffle_ps(v, v, _MM_SHUFFLE(2, 3, 0, 1)));  // a0+a1, ., a2+a3, .
    y[r] = _mm_cvtss_f32(_mm_add_ss(pairs, _mm_movehl_ps(pairs, pairs)));
  }
}

// Rows [r0, r1) of a packed F32 matrix (r0 a multiple of 16), panels and
// the row-major rows after them.
inline void f32_panel_rows(const WeightView& w, size_t r0, size_t r1, const float* x, size_t x_stride,
                           size_t n_tokens, float* y, size_t y_stride) noexcept {
  const size_t p1 = std::min(r1, w.panel_rows), cols = w.cols;
  const float* base = static_cast<const float*>(w.data);  // panel r/16 starts at base + r·cols
  size_t r = r0;
  if (n_tokens == 1) {
    for (; r + 2 * panels::kRows <= p1; r += 2 * panels::kRows) f32_panels<2, 1>(base + r * cols, cols, x, 0, y + r, 0);
    for (; r < p1; r += panels::kRows) f32_panels<1, 1>(base + r * cols, cols, x, 0, y + r, 0);
  } else {
    for (; r < p1; r += panels::kRows) {
      size_t t = 0;
      for (; t + 4 <= n_tokens; t += 4)
        f32_panels<1, 4>(base + r * cols, cols, x + t * x_stride, x_stride, y + t * y_stride + r, y_stride);
      for (; t < n_tokens; ++t)
        f32_panels<1, 1>(base + r * cols, cols, x + t * x_stride, 0, y + t * y_stride + r, 0);
    }
  }
  r = std::max(r0, p1);
  const size_t stride = w.row_stride / sizeof(float);
  if (n_tokens == 1)  // four rows at a time: four chains in flight instead of one
    for (; r + 4 <= r1; r += 4) f32_rows_dot4<4>(static_cast<const float*>(w.row(r)), stride, x, cols, y + r);
  for (; r < r1; ++r)
    for (size_t t = 0; t < n_tokens; ++t)
      f32_rows_dot4<1>(static_cast<const float*>(w.row(r)), stride, x + t * x_stride, cols, y + t * y_stride + r);
}

}  // namespace vnni_detail

// Only for a CPU where vnni_available().
template <>
struct Ops<Avx512Vnni> : Ops<Highway> {
  static void quantize_act_q8(const float* x, ActQ8* y, size_t n) noexcept { avx512::quantize_act_q8(x, y, n); }
  static void f32_to_f16_row(const float* src, uint16_t* dst, size_t n) noexcept { avx512::f32_to_f16_row(src, dst, n); }
  static void f16_round_trip(float* x, size_t n) noexcept { avx512::f16_round_trip(x, n); }
  static void small_head_scores(const float* const* q, size_t n_q, small_heads::Rows k, size_t hd, size_t n,
                                float* const* out) noexcept {
    small_heads::avx512::scores_heads(q, n_q, k, hd, n, out);
  }
  static void small_head_mix(const float* const* w, const small_heads::Rows* v, size_t n_heads, size_t hd, size_t n,
                             float* const* out) noexcept {
    small_heads::avx512::mix_heads(w, v, n_heads, hd, n, out);
  }
  static float row_dot(DType t, const void* wrow, const void* act, size_t cols) noexcept {
    float out = 0.0f;
    WeightView w{t, wrow, 1, cols, 0};
    rows_dot(w, 0, 1, act, 0, 1, &out, 1);
    return out;
  }
  // Rows [r0, r1) of w's panels (kernels/panels.hpp).
  static void panel_rows_dot(const WeightView& w, size_t r0, size_t r1, const void* act, size_t act_stride,
                             size_t n_tokens, float* y, size_t y_stride) noexcept {
    using namespace vnni_detail;
    if (w.type == DType::F32)
      return f32_panel_rows(w, r0, r1, static_cast<const float*>(act), act_stride / sizeof(float), n_tokens, y,
                            y_stride);
    if (w.type == DType::Q8_0) return panel_rows<DType::Q8_0>(w, r0, r1, act, act_stride, n_tokens, y, y_stride);
    if (w.type == DType::Q4_K) return panel_rows<DType::Q4_K>(w, r0, r1, act, act_stride, n_tokens, y, y_stride);
    return panel_rows<DType::Q4_0>(w, r0, r1, act, act_stride, n_tokens, y, y_stride);
  }
  static void rows_dot(const WeightView& w, size_t r0, size_t r1, const void* act, size_t act_stride,
                       size_t n_tokens, float* y, size_t y_stride) noexcept {
    using namespace vnni_detail;
    switch (w.type) {
      case DType::Q4_0: return rows_dot_fused<DType::Q4_0, 4, 4>(w, r0, r1, act, act_stride, n_tokens, y, y_stride);
      case DType::Q4_1: return rows_dot_fused<DType::Q4_1, 4, 4>(w, r0, r1, act, act_stride, n_tokens, y, y_stride);
      case DType::Q5_0: return rows_dot_fused<DType::Q5_0, 4, 4>(w, r0, r1, act, act_stride, n_tokens, y, y_stride);
      case DType::Q5_1: return rows_dot_fused<DType::Q5_1, 4, 4>(w, r0, r1, act, act_stride, n_tokens, y, y_stride);
      case DType::Q8_0: return rows_dot_fused<DType::Q8_0, 4, 4>(w, r0, r1, act, act_stride, n_tokens, y, y_stride);
      case DType::Q4_K: return rows_dot_fused<DType::Q4_K, 1, 4>(w, r0, r1, act, act_stride, n_tokens, y, y_stride);
      case DType::Q5_K: return rows_dot_fused<DType::Q5_K, 1, 4>(w, r0, r1, act, act_stride, n_tokens, y, y_stride);
      case DType::Q6_K: return rows_dot_fused<DType::Q6_K, 1, 4>(w, r0, r1, act, act_stride, n_tokens, y, y_stride);
      case DType::Q2_K:
      case DType::Q3_K:
        for (size_t r = r0; r < r1; ++r)
          for (size_t t = 0; t < n_tokens; ++t)
            y[t * y_stride + r] = block::row_dot_quantized<Prims>(
                w.type, w.row(r), static_cast<const std::byte*>(act) + t * act_stride, w.cols);
        return;
      case DType::F32:
      case DType::F16:
      case DType::BF16:
        // F32 decode takes four rows per loaded x vector (f32_decode, Highway's
        // dot bit for bit); F16/BF16 decode and short prefills stay Highway's;
        // longer prefills reuse each loaded vector across a 4x4 tile.
        if (n_tokens == 1 && w.type == DType::F32)
          return f32_decode(w, r0, r1, static_cast<const float*>(act), y);
        if (n_tokens < 4) return Ops<Highway>::rows_dot(w, r0, r1, act, act_stride, n_tokens, y, y_stride);
        if (w.type == DType::F32) return rows_dot_fused<DType::F32, 4, 4>(w, r0, r1, act, act_stride, n_tokens, y, y_stride);
        if (w.type == DType::F16) return rows_dot_fused<DType::F16, 4, 4>(w, r0, r1, act, act_stride, n_tokens, y, y_stride);
        return rows_dot_fused<DType::BF16, 4, 4>(w, r0, r1, act, act_stride, n_tokens, y, y_stride);
      default: return Ops<Highway>::rows_dot(w, r0, r1, act, act_stride, n_tokens, y, y_stride);
    }
  }
};

#else  // no AVX-512 VNNI in the target: the tag still names a working backend

template <>
struct Ops<Avx512Vnni> : Ops<Highway> {};

#endif

}  // namespace jielong::kernels

// The activation side of the quantized dot products: a row of x quantized once
// per matvec to 8 bits, in a layout made for the kernels (quants first, so
// they load aligned; the integer sums the kernels need precomputed).
//
// Values match ggml: a Q8_0/Q8_1 block's scale is the half-float ggml stores,
// a Q8_K block's quants and sums are ggml's q8_K, so dot products agree with
// llama.cpp's up to float summation order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <type_traits>

#if defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>
#define JIELONG_ACT_Q8_AVX512 1
#else
#define JIELONG_ACT_Q8_AVX512 0
#endif

#include "jielong/core/dtype.hpp"
#include "jielong/core/quants.hpp"
#include "jielong/kernels/backend.hpp"

namespace jielong::kernels {

// x ≈ d * qs for 32 elements. s = d * sum(qs) rounded as ggml's q8_1 stores it.
struct ActQ8 {
  int8_t qs[32];
  float d;
  float s;
  int32_t sum;
  int32_t pad;
};
static_assert(sizeof(ActQ8) == 48);

// x ≈ d * qs for 256 elements; bsums[i] = sum of qs[16i .. 16i+15],
// bsums32[j] = sum of qs[32j .. 32j+31] (the Q4_K panel kernels' mins).
struct ActQ8K {
  int8_t qs[256];
  int16_t bsums[16];
  float d;
  int16_t bsums32[8];
  float pad[3];
};
static_assert(sizeof(ActQ8K) == 320);

enum class ActKind { none /* x stays f32 */, q8 /* ActQ8 per 32 */, q8k /* ActQ8K per 256 */ };

constexpr ActKind act_kind(DType weight) noexcept {
  switch (weight) {
    case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: case DType::Q8_0:
      return ActKind::q8;
    case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K:
      return ActKind::q8k;
    default:
      return ActKind::none;
  }
}

// Bytes of one activation row of `cols` elements.
constexpr size_t act_row_bytes(ActKind k, size_t cols) noexcept {
  switch (k) {
    case ActKind::q8: return cols / 32 * sizeof(ActQ8);
    case ActKind::q8k: return cols / 256 * sizeof(ActQ8K);
    default: return 0;
  }
}

inline void quantize_act_q8(const float* x, ActQ8* y, size_t n) noexcept {
  for (size_t i = 0; i < n / 32; ++i) {
    const float* xb = x + 32 * i;
    float amax = 0.0f;
    for (size_t j = 0; j < 32; ++j) amax = xb[j] < 0 ? (-xb[j] > amax ? -xb[j] : amax) : (xb[j] > amax ? xb[j] : amax);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int32_t sum = 0;
    for (size_t j = 0; j < 32; ++j) {
      y[i].qs[j] = quants::saturate_i8(std::round(xb[j] * id));
      sum += y[i].qs[j];
    }
    y[i].d = fp16_to_f32(f32_to_fp16(d));
    y[i].s = fp16_to_f32(f32_to_fp16(static_cast<float>(sum) * d));
    y[i].sum = sum;
    y[i].pad = 0;
  }
}

inline void quantize_act_q8k(const float* x, ActQ8K* y, size_t n) noexcept {
  for (size_t i = 0; i < n / 256; ++i) {
    BlockQ8_K b;
    quants::quantize_q8_k(x + 256 * i, &b, 256);
    std::memcpy(y[i].qs, b.qs, 256);
    std::memcpy(y[i].bsums, b.bsums, sizeof b.bsums);
    y[i].d = b.d;
    for (int j = 0; j < 8; ++j) y[i].bsums32[j] = static_cast<int16_t>(b.bsums[2 * j] + b.bsums[2 * j + 1]);
    for (float& p : y[i].pad) p = 0;
  }
}

#if JIELONG_ACT_Q8_AVX512
// g++ 12's AVX-512 headers warn about their own "undefined" operands (as in kernels.hpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// quantize_act_q8, a block in two vectors; the same bytes. The maximum is
// exact in any order; the scale and the products are the same IEEE
// operations; the rounding is std::round's (half away from zero): truncate,
// then step away from zero where the dropped fraction is at least 1/2. Lanes
// the plain loop skips or zeroes stay so: NaN inputs do not count towards
// the maximum, and a NaN product (a NaN input, or an infinite one times the
// scale 0) quantizes to 0.
inline void quantize_act_q8_avx512(const float* x, ActQ8* y, size_t n) noexcept {
  const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
  auto max_lane = [](__m512 m) {  // all lanes >= 0, no NaN
    m = _mm512_max_ps(m, _mm512_shuffle_f32x4(m, m, 0x4E));
    m = _mm512_max_ps(m, _mm512_shuffle_f32x4(m, m, 0xB1));
    m = _mm512_max_ps(m, _mm512_permute_ps(m, 0x4E));
    m = _mm512_max_ps(m, _mm512_permute_ps(m, 0xB1));
    return _mm512_cvtss_f32(m);
  };
  auto round_i32 = [&](__m512 v) {
    const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __mmask16 away = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), half, _CMP_GE_OQ);
    const __m512 step = _mm512_or_ps(one, _mm512_and_ps(v, _mm512_set1_ps(-0.0f)));  // ±1 with v's sign
    // Clamped as saturate_i8 clamps (an infinite product: the scale of a
    // block of subnormals overflows to infinity).
    const __m512 r = _mm512_min_ps(_mm512_max_ps(_mm512_mask_add_ps(t, away, t, step), _mm512_set1_ps(-128.0f)),
                                   _mm512_set1_ps(127.0f));
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    return _mm512_maskz_cvtps_epi32(static_cast<__mmask16>(~nan), r);
  };
  for (size_t i = 0; i < n / 32; ++i) {
    const __m512 a = _mm512_loadu_ps(x + 32 * i), b = _mm512_loadu_ps(x + 32 * i + 16);
    const __mmask16 oka = _mm512_cmp_ps_mask(a, a, _CMP_ORD_Q), okb = _mm512_cmp_ps_mask(b, b, _CMP_ORD_Q);
    const __m512 zero = _mm512_setzero_ps();
    const float amax = max_lane(_mm512_max_ps(_mm512_mask_abs_ps(zero, oka, a), _mm512_mask_abs_ps(zero, okb, b)));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const __m512 vid = _mm512_set1_ps(id);
    const __m512i qa = round_i32(_mm512_mul_ps(a, vid)), qb = round_i32(_mm512_mul_ps(b, vid));
    // The quants are already in [-128, 127]: narrowing keeps them, and
    // their sum is the plain loop's.
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y[i].qs), _mm512_cvtepi32_epi8(qa));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y[i].qs + 16), _mm512_cvtepi32_epi8(qb));
    const int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qb));
    y[i].d = fp16_to_f32(f32_to_fp16(d));
    y[i].s = fp16_to_f32(f32_to_fp16(static_cast<float>(sum) * d));
    y[i].sum = sum;
    y[i].pad = 0;
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

// The Scalar backend (the oracle) quantizes with the plain loops; the others
// take the vector path where the CPU has one (the same bytes: test_kernels).
template <class B>
inline void quantize_act(ActKind k, const float* x, void* dst, size_t cols) noexcept {
  if (k == ActKind::q8) {
#if JIELONG_ACT_Q8_AVX512
    if constexpr (!std::is_same_v<B, Scalar>) return quantize_act_q8_avx512(x, static_cast<ActQ8*>(dst), cols);
#endif
    quantize_act_q8(x, static_cast<ActQ8*>(dst), cols);
  }
  if (k == ActKind::q8k) quantize_act_q8k(x, static_cast<ActQ8K*>(dst), cols);
}

}  // namespace jielong::kernels

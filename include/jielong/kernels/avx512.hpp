// The Avx512Vnni backend's AVX-512 code outside the dot products: 8-bit
// activation quantization and the f16 rows of the attention cache. Each
// gives the bytes of the portable definition it replaces (test_kernels).
// Included by vnni.hpp only when the target has AVX-512 F/BW/VL/VNNI (and so
// inside kernels.hpp's silencing of g++ 12's AVX-512 false positives).
#pragma once

#include <cstddef>
#include <cstdint>

#include <immintrin.h>

#include "jielong/core/half.hpp"
#include "jielong/kernels/quantize_activation.hpp"

namespace jielong::kernels::avx512 {

// The plain quantize_act_q8, a block in two vectors; the same bytes. The
// maximum is exact in any order; the scale and the products are the same IEEE
// operations; the rounding is std::round's (half away from zero): truncate,
// then step away from zero where the dropped fraction is at least 1/2. Lanes
// the plain loop skips or zeroes stay so: NaN inputs do not count towards
// the maximum, and a NaN product (a NaN input, or an infinite one times the
// scale 0) quantizes to 0.
inline void quantize_act_q8(const float* x, ActQ8* y, size_t n) noexcept {
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

// f32_to_fp16_row (core/half.hpp), 16 values per instruction: both round to
// nearest even and keep a NaN a quiet NaN with its high payload bits.
inline void f32_to_f16_row(const float* src, uint16_t* dst, size_t n) noexcept {
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                        _mm512_maskz_cvtps_ph(0xFFFF, _mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  f32_to_fp16_row(src + i, dst + i, n - i);
}

// fp16_round_trip, 16 values per instruction pair.
inline void f16_round_trip(float* x, size_t n) noexcept {
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(x + i, _mm512_maskz_cvtph_ps(0xFFFF, _mm512_maskz_cvtps_ph(0xFFFF, _mm512_loadu_ps(x + i),
                                                            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
  fp16_round_trip(x + i, n - i);
}

}  // namespace jielong::kernels::avx512

// IEEE binary16 and bfloat16 <-> binary32, bit-exact and branch-light. The
// conversions round to nearest, ties to even, keep NaN a NaN (quiet) and
// handle subnormals, so an F16 tensor reads exactly as ggml reads it.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace jielong {

constexpr float fp16_to_f32(uint16_t h) noexcept {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1F) {  // Inf or NaN: keep the payload, make NaN quiet
    bits = sign | 0x7F800000u | (mant << 13) | (mant ? 0x00400000u : 0u);
  } else if (exp != 0) {  // normal: rebias 15 -> 127
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  } else if (mant == 0) {  // signed zero
    bits = sign;
  } else {  // subnormal: shift the mantissa up until its leading 1 is implicit
    uint32_t e = 113;  // exponent of 2^-14 in binary32, before normalising
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --e;
    }
    bits = sign | (e << 23) | ((mant & 0x3FFu) << 13);
  }
  return std::bit_cast<float>(bits);
}

constexpr uint16_t f32_to_fp16(float f) noexcept {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00u | ((abs >> 13) & 0x3FFu));  // NaN
  if (abs >= 0x47800000u) return static_cast<uint16_t>(sign | 0x7C00u);  // >= 65536: Inf (and overflow)
  if (abs < 0x38800000u) {  // below 2^-14: subnormal half (or zero)
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);  // below half the smallest subnormal
    const uint32_t e = abs >> 23;
    const uint32_t m = (abs & 0x7FFFFFu) | 0x800000u;  // with the implicit 1
    const uint32_t shift = 126u - e;                   // so that the result counts units of 2^-24
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) ++q;  // may carry into the smallest normal: still right
    return static_cast<uint16_t>(sign | q);
  }
  // normal: rebias, then round the 13 dropped bits to nearest even; a carry
  // into the exponent (even up to Inf) is the correct result.
  uint32_t h = ((abs - 0x38000000u) >> 13);
  const uint32_t rem = abs & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

// dst[i] = f16(src[i]).
inline void f32_to_fp16_row(const float* src, uint16_t* dst, size_t n) noexcept {
  for (size_t i = 0; i < n; ++i) dst[i] = f32_to_fp16(src[i]);
}

// x[i] = f32(f16(x[i])): the precision a value has after a trip through f16.
inline void fp16_round_trip(float* x, size_t n) noexcept {
  for (size_t i = 0; i < n; ++i) x[i] = fp16_to_f32(f32_to_fp16(x[i]));
}

constexpr float bf16_to_f32(uint16_t b) noexcept { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

constexpr uint16_t f32_to_bf16(float f) noexcept {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  const uint32_t rounding = 0x7FFFu + ((x >> 16) & 1u);  // ties to even
  return static_cast<uint16_t>((x + rounding) >> 16);
}

}  // namespace jielong

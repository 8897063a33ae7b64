// fp16 / bf16 conversions against hand-computed IEEE bit patterns.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <ios>

#include "jielong/core/half.hpp"

using namespace jielong;

namespace {
uint32_t bits(float f) { return std::bit_cast<uint32_t>(f); }
float from_bits(uint32_t u) { return std::bit_cast<float>(u); }
}  // namespace

TEST_CASE("fp16 -> f32 for normals, subnormals, zeros, infinities and NaN") {
  CHECK(fp16_to_f32(0x3C00) == 1.0f);
  CHECK(fp16_to_f32(0xC000) == -2.0f);
  CHECK(fp16_to_f32(0x3555) == 0.333251953125f);  // 1.0101010101b * 2^-2
  CHECK(fp16_to_f32(0x7BFF) == 65504.0f);         // largest finite
  CHECK(fp16_to_f32(0x0400) == std::ldexp(1.0f, -14));   // smallest normal
  CHECK(fp16_to_f32(0x0001) == std::ldexp(1.0f, -24));   // smallest subnormal
  CHECK(fp16_to_f32(0x03FF) == 1023.0f * std::ldexp(1.0f, -24));  // largest subnormal
  CHECK(fp16_to_f32(0x8200) == -512.0f * std::ldexp(1.0f, -24));
  CHECK(bits(fp16_to_f32(0x0000)) == 0x00000000u);
  CHECK(bits(fp16_to_f32(0x8000)) == 0x80000000u);  // -0 keeps its sign
  CHECK(fp16_to_f32(0x7C00) == INFINITY);
  CHECK(fp16_to_f32(0xFC00) == -INFINITY);
  CHECK(std::isnan(fp16_to_f32(0x7E00)));
  CHECK(std::isnan(fp16_to_f32(0x7C01)));  // signalling NaN stays NaN
  CHECK(std::signbit(fp16_to_f32(0xFE00)));
}

TEST_CASE("f32 -> fp16 rounds to nearest, ties to even") {
  CHECK(f32_to_fp16(1.0f) == 0x3C00);
  CHECK(f32_to_fp16(-2.0f) == 0xC000);
  CHECK(f32_to_fp16(65504.0f) == 0x7BFF);
  CHECK(f32_to_fp16(65519.0f) == 0x7BFF);  // below the midpoint to 2^16
  CHECK(f32_to_fp16(65520.0f) == 0x7C00);  // the midpoint: ties to even = Inf
  CHECK(f32_to_fp16(1e10f) == 0x7C00);
  CHECK(f32_to_fp16(-1e10f) == 0xFC00);
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: even mantissa wins.
  CHECK(f32_to_fp16(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);
  CHECK(f32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3C02);
  CHECK(f32_to_fp16(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)) == 0x3C01);  // just above
  // Subnormal results count units of 2^-24.
  CHECK(f32_to_fp16(std::ldexp(1.0f, -24)) == 0x0001);
  CHECK(f32_to_fp16(std::ldexp(1.0f, -25)) == 0x0000);      // half a unit: tie to even 0
  CHECK(f32_to_fp16(3 * std::ldexp(1.0f, -25)) == 0x0002);  // 1.5 units: tie to even 2
  CHECK(f32_to_fp16(1e-8f) == 0x0000);
  CHECK(f32_to_fp16(3e-8f) == 0x0001);
  // 1023.5 units rounds up to 1024 = the smallest normal.
  CHECK(f32_to_fp16(std::ldexp(1.0f, -14) - std::ldexp(1.0f, -25)) == 0x0400);
  CHECK(f32_to_fp16(-0.0f) == 0x8000);
  CHECK(f32_to_fp16(INFINITY) == 0x7C00);
  const uint16_t nan = f32_to_fp16(NAN);
  CHECK((nan & 0x7C00) == 0x7C00);
  CHECK((nan & 0x03FF) != 0);
  CHECK((f32_to_fp16(from_bits(0x7F800001u)) & 0x03FF) != 0);  // NaN payload below the kept bits

  // Every finite half survives the round trip.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7C00) == 0x7C00) continue;
    if (f32_to_fp16(fp16_to_f32(static_cast<uint16_t>(h))) != h) {
      FAIL("round trip of fp16 0x" << std::hex << h);
    }
  }
}

TEST_CASE("bf16 <-> f32") {
  CHECK(bf16_to_f32(0x3F80) == 1.0f);
  CHECK(bf16_to_f32(0xC040) == -3.0f);
  CHECK(f32_to_bf16(1.0f) == 0x3F80);
  CHECK(f32_to_bf16(from_bits(0x3F808000u)) == 0x3F80);  // tie, even stays
  CHECK(f32_to_bf16(from_bits(0x3F818000u)) == 0x3F82);  // tie, odd rounds up
  CHECK(f32_to_bf16(from_bits(0x3F808001u)) == 0x3F81);  // above the tie
  CHECK(f32_to_bf16(from_bits(0x7F7FFFFFu)) == 0x7F80);  // FLT_MAX rounds to Inf
  CHECK(f32_to_bf16(INFINITY) == 0x7F80);
  CHECK(f32_to_bf16(from_bits(0x7F800001u)) == 0x7FC0);  // a NaN whose payload would round away
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  CHECK(f32_to_bf16(from_bits(0x00010000u)) == 0x0001);  // subnormals are plain truncation + rounding
}

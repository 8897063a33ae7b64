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

// A backend with its own q8 quantizer (Ops<B>::quantize_act_q8, the same
// bytes as the plain loop: test_kernels) uses it; the others, Scalar among
// them, use the plain loops.
template <class B>
inline void quantize_act(ActKind k, const float* x, void* dst, size_t cols) noexcept {
  if (k == ActKind::q8) {
    if constexpr (requires(ActQ8* y) { Ops<B>::quantize_act_q8(x, y, cols); })
      Ops<B>::quantize_act_q8(x, static_cast<ActQ8*>(dst), cols);
    else
      quantize_act_q8(x, static_cast<ActQ8*>(dst), cols);
  }
  if (k == ActKind::q8k) quantize_act_q8k(x, static_cast<ActQ8K*>(dst), cols);
}

}  // namespace jielong::kernels

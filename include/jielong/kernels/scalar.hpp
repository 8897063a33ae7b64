// kernels::Scalar — the oracle. Plain loops that follow the definitions; the
// other backends are tested against these. Keep them naive: a clever scalar
// twin could share a bug with the code it is meant to catch.
//
// Floating-point contraction: the loops are written as plain a*b + c, whose
// bits are two roundings when compiled with -ffp-contract=off, as the
// project's own programs are (and the tests' tolerances were measured). Under
// GNU mode's default, -ffp-contract=fast on a target with FMA, g++ fuses some
// of these into FMAs depending on inlining and the -march it tunes for, so
// the last bits of Scalar's results (and, through the 8-bit rounding of
// activations, now and then a whole quantization step) change with the flags.
// Where the bits must not depend on flags the code says which it means:
// std::fma for a fused product (rope_pair below), quants::mul_rounded for a
// product rounded before its add (llama2.c's group product, quantization).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "jielong/core/half.hpp"
#include "jielong/core/quants.hpp"
#include "jielong/kernels/quantize_activation.hpp"
#include "jielong/kernels/backend.hpp"

namespace jielong::kernels {

// One rotary pair: (x0, x1) turned by the angle whose cosine and sine are c
// and s. The fused multiply-adds are written out, so the bits do not depend
// on whether a compiler contracts x0·c - x1·s (and which product it would
// fuse) in whatever code this is inlined into; the vector kernels compute
// the same two fused operations lane by lane.
inline void rope_pair(float& x0, float& x1, float c, float s) noexcept {
  const float a = x0, b = x1;
  x0 = std::fma(a, c, -(b * s));
  x1 = std::fma(a, s, b * c);
}

namespace scalar_detail {

inline int32_t dot_i32(const int* w, const int8_t* x, size_t n) noexcept {
  int32_t s = 0;
  for (size_t i = 0; i < n; ++i) s += w[i] * x[i];
  return s;
}

// Weight quants of one block as plain ints, in element order.
inline void unpack_q4(const uint8_t* qs, int* q) noexcept {
  for (int j = 0; j < 16; ++j) {
    q[j] = qs[j] & 0xF;
    q[j + 16] = qs[j] >> 4;
  }
}
inline void unpack_q5(const uint8_t* qs, const uint8_t* qh_bytes, int* q) noexcept {
  const uint32_t qh = quants::load_qh(qh_bytes);
  for (int j = 0; j < 16; ++j) {
    q[j] = (qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1u) << 4);
    q[j + 16] = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
  }
}

// Σ_blocks d_w d_x Σ (q_w - offset) q_x for the 32-element formats, with the
// min term m_w * s_x for the "_1" formats (as ggml's q8_1 dot products do).
inline float dot_q8act(DType t, const void* wrow, const ActQ8* a, size_t nb) noexcept {
  float sum = 0.0f;
  int q[32];
  for (size_t i = 0; i < nb; ++i) {
    switch (t) {
      case DType::Q4_0: {
        const auto& b = static_cast<const BlockQ4_0*>(wrow)[i];
        unpack_q4(b.qs, q);
        for (int& v : q) v -= 8;
        sum += quants::h2f(b.d) * a[i].d * static_cast<float>(dot_i32(q, a[i].qs, 32));
        break;
      }
      case DType::Q4_1: {
        const auto& b = static_cast<const BlockQ4_1*>(wrow)[i];
        unpack_q4(b.qs, q);
        sum += quants::h2f(b.d) * a[i].d * static_cast<float>(dot_i32(q, a[i].qs, 32)) + quants::h2f(b.m) * a[i].s;
        break;
      }
      case DType::Q5_0: {
        const auto& b = static_cast<const BlockQ5_0*>(wrow)[i];
        unpack_q5(b.qs, b.qh, q);
        for (int& v : q) v -= 16;
        sum += quants::h2f(b.d) * a[i].d * static_cast<float>(dot_i32(q, a[i].qs, 32));
        break;
      }
      case DType::Q5_1: {
        const auto& b = static_cast<const BlockQ5_1*>(wrow)[i];
        unpack_q5(b.qs, b.qh, q);
        sum += quants::h2f(b.d) * a[i].d * static_cast<float>(dot_i32(q, a[i].qs, 32)) + quants::h2f(b.m) * a[i].s;
        break;
      }
      case DType::Q8_0: {
        const auto& b = static_cast<const BlockQ8_0*>(wrow)[i];
        for (int j = 0; j < 32; ++j) q[j] = b.qs[j];
        sum += quants::h2f(b.d) * a[i].d * static_cast<float>(dot_i32(q, a[i].qs, 32));
        break;
      }
      default: break;
    }
  }
  return sum;
}

// k-quants against q8_K: per super-block, d_x * (d_w Σ_sub scale·Σ q_w q_x - dmin Σ_sub min·bsum).
inline float dot_q8kact(DType t, const void* wrow, const ActQ8K* a, size_t nb) noexcept {
  float sum = 0.0f;
  for (size_t i = 0; i < nb; ++i) {
    int q[256];
    switch (t) {
      case DType::Q2_K: {
        const auto& b = static_cast<const BlockQ2_K*>(wrow)[i];
        for (int e = 0; e < 256; ++e) q[e] = (b.qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3;
        int32_t isum = 0, msum = 0;
        for (int s = 0; s < 16; ++s) {
          isum += (b.scales[s] & 0xF) * dot_i32(q + 16 * s, a[i].qs + 16 * s, 16);
          msum += (b.scales[s] >> 4) * a[i].bsums[s];
        }
        sum += a[i].d * (quants::h2f(b.d) * static_cast<float>(isum) - quants::h2f(b.dmin) * static_cast<float>(msum));
        break;
      }
      case DType::Q3_K: {
        const auto& b = static_cast<const BlockQ3_K*>(wrow)[i];
        for (int e = 0; e < 256; ++e) {
          const int half = e / 128, field = (e % 128) / 32, l = e % 32;
          const int q2 = (b.qs[half * 32 + l] >> (2 * field)) & 3;
          const int hbit = (b.hmask[l] >> (half * 4 + field)) & 1;
          q[e] = q2 + 4 * hbit - 4;
        }
        int32_t isum = 0;
        for (int s = 0; s < 16; ++s) isum += quants::q3k_scale(b.scales, s) * dot_i32(q + 16 * s, a[i].qs + 16 * s, 16);
        sum += a[i].d * quants::h2f(b.d) * static_cast<float>(isum);
        break;
      }
      case DType::Q4_K:
      case DType::Q5_K: {
        const bool five = t == DType::Q5_K;
        const uint8_t* qs = five ? static_cast<const BlockQ5_K*>(wrow)[i].qs : static_cast<const BlockQ4_K*>(wrow)[i].qs;
        const uint8_t* scales =
            five ? static_cast<const BlockQ5_K*>(wrow)[i].scales : static_cast<const BlockQ4_K*>(wrow)[i].scales;
        const uint16_t d = five ? static_cast<const BlockQ5_K*>(wrow)[i].d : static_cast<const BlockQ4_K*>(wrow)[i].d;
        const uint16_t dmin =
            five ? static_cast<const BlockQ5_K*>(wrow)[i].dmin : static_cast<const BlockQ4_K*>(wrow)[i].dmin;
        for (int e = 0; e < 256; ++e) {
          const int sub = e / 32, pair = e / 64, l = e % 32;
          q[e] = (sub % 2 == 0) ? (qs[pair * 32 + l] & 0xF) : (qs[pair * 32 + l] >> 4);
          if (five) q[e] |= ((static_cast<const BlockQ5_K*>(wrow)[i].qh[l] >> sub) & 1) << 4;
        }
        int32_t isum = 0, msum = 0;
        for (int s = 0; s < 8; ++s) {
          uint8_t sc, m;
          quants::get_scale_min_k4(s, scales, sc, m);
          isum += sc * dot_i32(q + 32 * s, a[i].qs + 32 * s, 32);
          msum += m * (a[i].bsums[2 * s] + a[i].bsums[2 * s + 1]);
        }
        sum += a[i].d * (quants::h2f(d) * static_cast<float>(isum) - quants::h2f(dmin) * static_cast<float>(msum));
        break;
      }
      case DType::Q6_K: {
        const auto& b = static_cast<const BlockQ6_K*>(wrow)[i];
        for (int e = 0; e < 256; ++e) {
          const int h = e / 128, f = (e % 128) / 32, l = e % 32;
          const uint8_t lbyte = b.ql[64 * h + 32 * (f % 2) + l];
          const int lo = f < 2 ? (lbyte & 0xF) : (lbyte >> 4);
          const int hi = (b.qh[32 * h + l] >> (2 * f)) & 3;
          q[e] = (lo | (hi << 4)) - 32;
        }
        int32_t isum = 0;
        for (int s = 0; s < 16; ++s) isum += b.scales[s] * dot_i32(q + 16 * s, a[i].qs + 16 * s, 16);
        sum += a[i].d * quants::h2f(b.d) * static_cast<float>(isum);
        break;
      }
      default: break;
    }
  }
  return sum;
}

}  // namespace scalar_detail

template <>
struct Ops<Scalar> {
  static float dot(const float* a, const float* b, size_t n) noexcept {
    float s = 0.0f;
    for (size_t i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
  }
  static float dot_f16(const float* a, const uint16_t* b, size_t n) noexcept {
    float s = 0.0f;
    for (size_t i = 0; i < n; ++i) s += a[i] * fp16_to_f32(b[i]);
    return s;
  }
  static float dot_bf16(const float* a, const uint16_t* b, size_t n) noexcept {
    float s = 0.0f;
    for (size_t i = 0; i < n; ++i) s += a[i] * bf16_to_f32(b[i]);
    return s;
  }
  static void axpy(float a, const float* x, float* y, size_t n) noexcept {
    for (size_t i = 0; i < n; ++i) y[i] += a * x[i];
  }
  static void axpy_f16(float a, const uint16_t* x, float* y, size_t n) noexcept {
    for (size_t i = 0; i < n; ++i) y[i] += a * fp16_to_f32(x[i]);
  }
  static void rmsnorm(float* out, const float* x, const float* weight, size_t n, float eps) noexcept {
    double ss = 0.0;
    for (size_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
    const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
    for (size_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
  }
  static void softmax(float* x, size_t n) noexcept {
    if (n == 0) return;
    float max = x[0];
    for (size_t i = 1; i < n; ++i) max = x[i] > max ? x[i] : max;
    double sum = 0.0;
    for (size_t i = 0; i < n; ++i) {
      x[i] = std::exp(x[i] - max);
      sum += x[i];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (size_t i = 0; i < n; ++i) x[i] *= inv;
  }
  static void rope_rotate(float* x, size_t n_heads, size_t head_dim, size_t rot_dim, const float* cos_t,
                          const float* sin_t, RopeLayout layout) noexcept {
    const size_t half = rot_dim / 2;
    for (size_t h = 0; h < n_heads; ++h) {
      float* xh = x + h * head_dim;
      for (size_t i = 0; i < half; ++i) {
        const size_t i0 = layout == RopeLayout::normal ? 2 * i : i;
        const size_t i1 = layout == RopeLayout::normal ? 2 * i + 1 : i + half;
        rope_pair(xh[i0], xh[i1], cos_t[i], sin_t[i]);
      }
    }
  }
  static void swiglu(float* out, const float* gate, const float* up, size_t n) noexcept {
    for (size_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
  }
  static void gelu(float* out, const float* x, size_t n) noexcept {
    // The tanh approximation, as ggml and GPT-2 use it.
    constexpr float kSqrt2OverPi = 0.79788456080286535588f;
    for (size_t i = 0; i < n; ++i) {
      const float v = x[i];
      out[i] = 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * (v + 0.044715f * v * v * v)));
    }
  }
  static void add(float* y, const float* x, size_t n) noexcept {
    for (size_t i = 0; i < n; ++i) y[i] += x[i];
  }
  static void scale(float* y, float s, size_t n) noexcept {
    for (size_t i = 0; i < n; ++i) y[i] *= s;
  }
  static size_t argmax(const float* x, size_t n) noexcept {
    size_t best = 0;
    for (size_t i = 1; i < n; ++i)
      if (x[i] > x[best]) best = i;
    return best;
  }
  static void dequantize_row(DType t, const void* src, float* dst, size_t n) noexcept {
    quants::dequantize_row(t, src, dst, n);
  }
  // One output element: row `wrow` (cols elements of type t) against the
  // prepared activation (f32 x, or its ActQ8/ActQ8K row).
  static float row_dot(DType t, const void* wrow, const void* act, size_t cols) noexcept {
    switch (t) {
      case DType::F32: return dot(static_cast<const float*>(act), static_cast<const float*>(wrow), cols);
      case DType::F16: return dot_f16(static_cast<const float*>(act), static_cast<const uint16_t*>(wrow), cols);
      case DType::BF16: return dot_bf16(static_cast<const float*>(act), static_cast<const uint16_t*>(wrow), cols);
      default: break;
    }
    if (act_kind(t) == ActKind::q8) return scalar_detail::dot_q8act(t, wrow, static_cast<const ActQ8*>(act), cols / 32);
    if (act_kind(t) == ActKind::q8k)
      return scalar_detail::dot_q8kact(t, wrow, static_cast<const ActQ8K*>(act), cols / 256);
    return 0.0f;
  }
  // y[t * y_stride + r] for r in [r0, r1), t in [0, n_tokens).
  static void rows_dot(const WeightView& w, size_t r0, size_t r1, const void* act, size_t act_stride,
                       size_t n_tokens, float* y, size_t y_stride) noexcept {
    rows_dot_each(w, r0, r1, act, act_stride, n_tokens, y, y_stride, &row_dot);
  }
};

}  // namespace jielong::kernels

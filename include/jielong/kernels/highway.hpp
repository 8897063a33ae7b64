// kernels::Highway — Highway in static-dispatch mode: the ops compile for the
// best target the compiler's flags allow (AVX3_DL with -march=native here).
// Runtime dispatch across ISAs is opt-in, for the float dot products and
// axpy: kernels/highway_dynamic.hpp.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "jielong/config.hpp"  // HWY_WANT_AVX3_DL before any Highway header

#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

#include "jielong/core/half.hpp"
#include "jielong/kernels/backend.hpp"
#include "jielong/kernels/small_heads.hpp"
#include "jielong/kernels/block_dot.hpp"
#include "jielong/kernels/libm_exp.hpp"
#include "jielong/kernels/scalar.hpp"

namespace jielong::kernels {

namespace hwy_detail {
namespace hn = hwy::HWY_NAMESPACE;

// Σ w·x over N int8 lanes: widen to int16, multiply pairs into int32 (pmaddwd).
// Loads are 16 bytes at most: the block logic unpacks weights with 16-byte
// stores, and a wider load spanning two of them would miss store forwarding.
template <size_t N>
HWY_INLINE int32_t dot_i8(const int8_t* w, const int8_t* x) noexcept {
  const hn::CappedTag<int16_t, 16> d16;
  const hn::Rebind<int8_t, decltype(d16)> d8;
  const hn::RepartitionToWide<decltype(d16)> d32;
  auto sum0 = hn::Zero(d32), sum1 = hn::Zero(d32);
  for (size_t i = 0; i < N; i += hn::Lanes(d16)) {
    const auto a = hn::PromoteTo(d16, hn::LoadU(d8, w + i));
    const auto b = hn::PromoteTo(d16, hn::LoadU(d8, x + i));
    sum0 = hn::ReorderWidenMulAccumulate(d32, a, b, sum0, sum1);
  }
  return hn::GetLane(hn::SumOfLanes(d32, hn::Add(sum0, sum1)));
}

struct Prims {
  static int32_t dot_i8_32(const int8_t* w, const int8_t* x) noexcept { return dot_i8<32>(w, x); }
  static int32_t dot_i8_16(const int8_t* w, const int8_t* x) noexcept { return dot_i8<16>(w, x); }
};

// Σ a·b with four accumulators; Load(i) yields the i-th vector of b as float.
template <class LoadB>
HWY_INLINE float dot_impl(const float* a, size_t n, LoadB load_b) noexcept {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    s0 = hn::MulAdd(hn::LoadU(d, a + i), load_b(d, i), s0);
    s1 = hn::MulAdd(hn::LoadU(d, a + i + N), load_b(d, i + N), s1);
    s2 = hn::MulAdd(hn::LoadU(d, a + i + 2 * N), load_b(d, i + 2 * N), s2);
    s3 = hn::MulAdd(hn::LoadU(d, a + i + 3 * N), load_b(d, i + 3 * N), s3);
  }
  for (; i + N <= n; i += N) s0 = hn::MulAdd(hn::LoadU(d, a + i), load_b(d, i), s0);
  const auto s = hn::Add(hn::Add(s0, s1), hn::Add(s2, s3));
  return hn::GetLane(hn::SumOfLanes(d, s));
}

}  // namespace hwy_detail

template <>
struct Ops<Highway> {
  static float dot(const float* a, const float* b, size_t n) noexcept {
    namespace hn = hwy_detail::hn;
    float s = hwy_detail::dot_impl(a, n, [b](auto d, size_t i) { return hn::LoadU(d, b + i); });
    const size_t done = n - n % hn::Lanes(hn::ScalableTag<float>());
    // Rounded products, not fused: the order and rounding of short dots
    // (attention heads of tiny models) decide near-ties in greedy texts, so
    // they are spelled out rather than left to the compiler's contraction.
    for (size_t i = done; i < n; ++i) s += small_heads::rounded_product(a[i], b[i]);
    return s;
  }
  static float dot_f16(const float* a, const uint16_t* b, size_t n) noexcept {
    namespace hn = hwy_detail::hn;
    const auto* bh = reinterpret_cast<const hwy::float16_t*>(b);
    float s = hwy_detail::dot_impl(a, n, [bh](auto d, size_t i) {
      const hn::Rebind<hwy::float16_t, decltype(d)> dh;
      return hn::PromoteTo(d, hn::LoadU(dh, bh + i));
    });
    const size_t done = n - n % hn::Lanes(hn::ScalableTag<float>());
    for (size_t i = done; i < n; ++i) s += a[i] * fp16_to_f32(b[i]);
    return s;
  }
  static float dot_bf16(const float* a, const uint16_t* b, size_t n) noexcept {
    namespace hn = hwy_detail::hn;
    const auto* bh = reinterpret_cast<const hwy::bfloat16_t*>(b);
    float s = hwy_detail::dot_impl(a, n, [bh](auto d, size_t i) {
      const hn::Rebind<hwy::bfloat16_t, decltype(d)> dh;
      return hn::PromoteTo(d, hn::LoadU(dh, bh + i));
    });
    const size_t done = n - n % hn::Lanes(hn::ScalableTag<float>());
    for (size_t i = done; i < n; ++i) s += a[i] * bf16_to_f32(b[i]);
    return s;
  }
  static void axpy(float a, const float* x, float* y, size_t n) noexcept {
    namespace hn = hwy_detail::hn;
    const hn::ScalableTag<float> d;
    const auto va = hn::Set(d, a);
    size_t i = 0;
    for (; i + hn::Lanes(d) <= n; i += hn::Lanes(d)) hn::StoreU(hn::MulAdd(va, hn::LoadU(d, x + i), hn::LoadU(d, y + i)), d, y + i);
    for (; i < n; ++i) y[i] += a * x[i];
  }
  static void axpy_f16(float a, const uint16_t* x, float* y, size_t n) noexcept {
    namespace hn = hwy_detail::hn;
    const hn::ScalableTag<float> d;
    const hn::Rebind<hwy::float16_t, decltype(d)> dh;
    const auto* xh = reinterpret_cast<const hwy::float16_t*>(x);
    const auto va = hn::Set(d, a);
    size_t i = 0;
    for (; i + hn::Lanes(d) <= n; i += hn::Lanes(d))
      hn::StoreU(hn::MulAdd(va, hn::PromoteTo(d, hn::LoadU(dh, xh + i)), hn::LoadU(d, y + i)), d, y + i);
    for (; i < n; ++i) y[i] += a * fp16_to_f32(x[i]);
  }
  static void rmsnorm(float* out, const float* x, const float* weight, size_t n, float eps) noexcept {
    namespace hn = hwy_detail::hn;
    const hn::ScalableTag<float> d;
    float ss = hwy_detail::dot_impl(x, n, [x](auto dd, size_t i) { return hn::LoadU(dd, x + i); });
    for (size_t i = n - n % hn::Lanes(d); i < n; ++i) ss += x[i] * x[i];
    const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
    const auto vs = hn::Set(d, scale);
    size_t i = 0;
    for (; i + hn::Lanes(d) <= n; i += hn::Lanes(d))
      hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(d, x + i), vs), hn::LoadU(d, weight + i)), d, out + i);
    for (; i < n; ++i) out[i] = x[i] * scale * weight[i];
  }
  static void softmax(float* x, size_t n) noexcept {
    namespace hn = hwy_detail::hn;
    if (n == 0) return;
    const hn::ScalableTag<float> d;
    const size_t N = hn::Lanes(d);
    float max = x[0];
    size_t i = 0;
    if (n >= N) {
      auto vmax = hn::LoadU(d, x);
      for (i = N; i + N <= n; i += N) vmax = hn::Max(vmax, hn::LoadU(d, x + i));
      max = hn::GetLane(hn::MaxOfLanes(d, vmax));
    }
    for (; i < n; ++i) max = x[i] > max ? x[i] : max;
    const auto vmax = hn::Set(d, max);
    auto vsum = hn::Zero(d);
    for (i = 0; i + N <= n; i += N) {
      const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, x + i), vmax));
      hn::StoreU(e, d, x + i);
      vsum = hn::Add(vsum, e);
    }
    float sum = hn::GetLane(hn::SumOfLanes(d, vsum));
#if JIELONG_LIBM_EXP
    if (i < n) {  // the last n % N in one vector, with std::exp's bits
      const auto m = hn::FirstN(d, n - i);
      const auto e = libm_exp::exp(d, hn::IfThenElseZero(m, hn::Sub(hn::MaskedLoad(m, d, x + i), vmax)));
      hn::BlendedStore(e, m, d, x + i);
    }
    for (; i < n; ++i) sum += x[i];
#else
    for (; i < n; ++i) {
      x[i] = std::exp(x[i] - max);
      sum += x[i];
    }
#endif
    scale(x, 1.0f / sum, n);
  }
  static void rope_rotate(float* x, size_t n_heads, size_t head_dim, size_t rot_dim, const float* cos_t,
                          const float* sin_t, RopeLayout layout) noexcept {
    namespace hn = hwy_detail::hn;
    if (layout == RopeLayout::normal) {  // adjacent pairs: deinterleaving costs more than it saves here
      Ops<Scalar>::rope_rotate(x, n_heads, head_dim, rot_dim, cos_t, sin_t, layout);
      return;
    }
    const hn::ScalableTag<float> d;
    const size_t half = rot_dim / 2;
    for (size_t h = 0; h < n_heads; ++h) {
      float* x0p = x + h * head_dim;
      float* x1p = x0p + half;
      size_t i = 0;
      for (; i + hn::Lanes(d) <= half; i += hn::Lanes(d)) {
        const auto x0 = hn::LoadU(d, x0p + i), x1 = hn::LoadU(d, x1p + i);
        const auto c = hn::LoadU(d, cos_t + i), s = hn::LoadU(d, sin_t + i);
        hn::StoreU(hn::MulSub(x0, c, hn::Mul(x1, s)), d, x0p + i);  // rope_pair, lane by lane
        hn::StoreU(hn::MulAdd(x0, s, hn::Mul(x1, c)), d, x1p + i);
      }
      for (; i < half; ++i) rope_pair(x0p[i], x1p[i], cos_t[i], sin_t[i]);
    }
  }
  static void swiglu(float* out, const float* gate, const float* up, size_t n) noexcept {
    namespace hn = hwy_detail::hn;
    const hn::ScalableTag<float> d;
    const auto one = hn::Set(d, 1.0f);
    size_t i = 0;
    for (; i + hn::Lanes(d) <= n; i += hn::Lanes(d)) {
      const auto g = hn::LoadU(d, gate + i);
      const auto silu = hn::Div(g, hn::Add(one, hn::Exp(d, hn::Neg(g))));
      hn::StoreU(hn::Mul(silu, hn::LoadU(d, up + i)), d, out + i);
    }
#if JIELONG_LIBM_EXP
    if (i < n) {  // the last n % N in one vector, with std::exp's bits
      const auto m = hn::FirstN(d, n - i);
      const auto g = hn::MaskedLoad(m, d, gate + i);
      const auto silu = hn::Div(g, hn::Add(one, libm_exp::exp(d, hn::Neg(g))));
      hn::BlendedStore(hn::Mul(silu, hn::MaskedLoad(m, d, up + i)), m, d, out + i);
    }
#else
    for (; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
#endif
  }
  static void gelu(float* out, const float* x, size_t n) noexcept {
    namespace hn = hwy_detail::hn;
    constexpr float kSqrt2OverPi = 0.79788456080286535588f;
    const hn::ScalableTag<float> d;
    size_t i = 0;
    for (; i + hn::Lanes(d) <= n; i += hn::Lanes(d)) {
      const auto v = hn::LoadU(d, x + i);
      const auto inner = hn::Mul(hn::Set(d, kSqrt2OverPi), hn::MulAdd(hn::Mul(hn::Set(d, 0.044715f), v), hn::Mul(v, v), v));
      const auto t = hn::Tanh(d, inner);
      hn::StoreU(hn::Mul(hn::Mul(hn::Set(d, 0.5f), v), hn::Add(hn::Set(d, 1.0f), t)), d, out + i);
    }
    if (i < n) Ops<Scalar>::gelu(out + i, x + i, n - i);
  }
  static void add(float* y, const float* x, size_t n) noexcept {
    namespace hn = hwy_detail::hn;
    const hn::ScalableTag<float> d;
    size_t i = 0;
    for (; i + hn::Lanes(d) <= n; i += hn::Lanes(d)) hn::StoreU(hn::Add(hn::LoadU(d, y + i), hn::LoadU(d, x + i)), d, y + i);
    for (; i < n; ++i) y[i] += x[i];
  }
  static void scale(float* y, float s, size_t n) noexcept {
    namespace hn = hwy_detail::hn;
    const hn::ScalableTag<float> d;
    const auto vs = hn::Set(d, s);
    size_t i = 0;
    for (; i + hn::Lanes(d) <= n; i += hn::Lanes(d)) hn::StoreU(hn::Mul(hn::LoadU(d, y + i), vs), d, y + i);
    for (; i < n; ++i) y[i] *= s;
  }
  static size_t argmax(const float* x, size_t n) noexcept {
    namespace hn = hwy_detail::hn;
    const hn::ScalableTag<float> d;
    const size_t N = hn::Lanes(d);
    if (n < N) return Ops<Scalar>::argmax(x, n);
    // The maximum in one vector pass, then its first position.
    auto vmax = hn::LoadU(d, x);
    size_t i = N;
    for (; i + N <= n; i += N) vmax = hn::Max(vmax, hn::LoadU(d, x + i));
    float max = hn::GetLane(hn::MaxOfLanes(d, vmax));
    for (; i < n; ++i) max = x[i] > max ? x[i] : max;
    for (i = 0; i < n; ++i)
      if (x[i] == max) return i;
    return Ops<Scalar>::argmax(x, n);  // NaNs only
  }
  static void dequantize_row(DType t, const void* src, float* dst, size_t n) noexcept {
    quants::dequantize_row(t, src, dst, n);
  }
  static float row_dot(DType t, const void* wrow, const void* act, size_t cols) noexcept {
    return block::row_dot<Ops<Highway>, hwy_detail::Prims>(t, wrow, act, cols);
  }
  static void rows_dot(const WeightView& w, size_t r0, size_t r1, const void* act, size_t act_stride,
                       size_t n_tokens, float* y, size_t y_stride) noexcept {
    rows_dot_each(w, r0, r1, act, act_stride, n_tokens, y, y_stride, &row_dot);
  }
};

}  // namespace jielong::kernels

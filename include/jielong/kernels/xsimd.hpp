// kernels::Xsimd — xsimd 8.1 batches for the compiler's default architecture
// (avx512bw with -march=native on an AVX-512 CPU). Every operation is xsimd's
// own, so the instruction set is the one xsimd chose: xsimd has no half-float
// conversion, so f16 widens through integer batch operations (load_f16).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include <xsimd/xsimd.hpp>

#include "jielong/core/half.hpp"
#include "jielong/kernels/backend.hpp"
#include "jielong/kernels/block_dot.hpp"
#include "jielong/kernels/scalar.hpp"

namespace jielong::kernels {

namespace xsimd_detail {

using fbatch = xsimd::batch<float>;
using ibatch = xsimd::batch<int32_t>;
constexpr size_t N = fbatch::size;

// N half floats widened to a float batch, bit for bit as fp16_to_f32 (NaN
// made quiet, subnormals exact), in xsimd's own operations for any target:
// exponent and mantissa move to float's positions and the exponent is
// rebiased by an integer add (twice for Inf/NaN, so 31 becomes 255); an f16
// zero or subnormal is rebiased as if its exponent were 1 and then loses that
// implicit 2^-14 in one float subtraction, which is exact (m * 2^-24 is a
// normal float), so no flag (contraction, flush-to-zero) changes the bits.
inline fbatch load_f16(const uint16_t* p) noexcept {
  using ubatch = xsimd::batch<uint32_t>;
  static_assert(ubatch::size == N);
  const ubatch h = ubatch::load_unaligned(p);              // widened: [N] halves in 32-bit lanes
  const ubatch em = (h & ubatch(0x7FFFu)) << 13;            // exponent bits 23..27, mantissa 13..22
  const ubatch e = em & ubatch(0x0F800000u);                // the f16 exponent field, in place
  const ubatch rebiased = em + ubatch(112u << 23);          // 15 -> 127
  const ubatch inf_nan = (rebiased + ubatch(112u << 23)) | xsimd::select(em > ubatch(0x0F800000u), ubatch(0x00400000u), ubatch(0u));
  const fbatch tiny = xsimd::bitwise_cast<fbatch>(rebiased + ubatch(1u << 23)) - fbatch(0x1p-14f);
  const ubatch magnitude = xsimd::select(e == ubatch(0x0F800000u), inf_nan,
                                         xsimd::select(e == ubatch(0u), xsimd::bitwise_cast<ubatch>(tiny), rebiased));
  return xsimd::bitwise_cast<fbatch>(magnitude | ((h & ubatch(0x8000u)) << 16));
}
// N bfloat16: the upper half of a float (the loop compiles to a widen and a shift).
inline fbatch load_bf16(const uint16_t* p) noexcept {
  alignas(64) float tmp[N];
  for (size_t i = 0; i < N; ++i) tmp[i] = bf16_to_f32(p[i]);
  return fbatch::load_aligned(tmp);
}

// Integer dot in int16 lanes: xsimd 8.1 has no widening multiply-add, so the
// bytes widen through a small buffer (16 at a time, matching the 16-byte
// stores of the block unpacking), products are formed in int16 (|w·x| ≤
// 128·127 fits) and pairs of lanes are summed into int32 by shifting each
// 32-bit lane's halves apart.
template <size_t M>
inline int32_t dot_i8(const int8_t* w, const int8_t* x) noexcept {
  using i16 = xsimd::batch<int16_t>;
  using i32 = xsimd::batch<int32_t>;
  constexpr size_t L = i16::size;
  if constexpr (M % L != 0) {
    int32_t s = 0;
    for (size_t i = 0; i < M; ++i) s += w[i] * x[i];
    return s;
  } else {
    i32 acc(0);
    alignas(64) int16_t wb[L], xb[L];
    for (size_t i = 0; i < M; i += L) {
      for (size_t j = 0; j < L; ++j) {
        wb[j] = w[i + j];
        xb[j] = x[i + j];
      }
      const i32 p = xsimd::bitwise_cast<i32>(i16::load_aligned(wb) * i16::load_aligned(xb));
      acc += ((p << 16) >> 16) + (p >> 16);  // low and high int16 halves, sign-extended
    }
    return xsimd::hadd(acc);
  }
}

struct Prims {
  static int32_t dot_i8_32(const int8_t* w, const int8_t* x) noexcept { return dot_i8<32>(w, x); }
  static int32_t dot_i8_16(const int8_t* w, const int8_t* x) noexcept { return dot_i8<16>(w, x); }
};

template <class LoadB>
inline float dot_impl(const float* a, size_t n, LoadB load_b) noexcept {
  fbatch s0(0.0f), s1(0.0f), s2(0.0f), s3(0.0f);
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    s0 = xsimd::fma(fbatch::load_unaligned(a + i), load_b(i), s0);
    s1 = xsimd::fma(fbatch::load_unaligned(a + i + N), load_b(i + N), s1);
    s2 = xsimd::fma(fbatch::load_unaligned(a + i + 2 * N), load_b(i + 2 * N), s2);
    s3 = xsimd::fma(fbatch::load_unaligned(a + i + 3 * N), load_b(i + 3 * N), s3);
  }
  for (; i + N <= n; i += N) s0 = xsimd::fma(fbatch::load_unaligned(a + i), load_b(i), s0);
  return xsimd::hadd((s0 + s1) + (s2 + s3));
}

}  // namespace xsimd_detail

template <>
struct Ops<Xsimd> {
  static constexpr size_t N = xsimd_detail::N;
  using fbatch = xsimd_detail::fbatch;

  static float dot(const float* a, const float* b, size_t n) noexcept {
    float s = xsimd_detail::dot_impl(a, n, [b](size_t i) { return fbatch::load_unaligned(b + i); });
    for (size_t i = n - n % N; i < n; ++i) s += a[i] * b[i];
    return s;
  }
  static float dot_f16(const float* a, const uint16_t* b, size_t n) noexcept {
    float s = xsimd_detail::dot_impl(a, n, [b](size_t i) { return xsimd_detail::load_f16(b + i); });
    for (size_t i = n - n % N; i < n; ++i) s += a[i] * fp16_to_f32(b[i]);
    return s;
  }
  static float dot_bf16(const float* a, const uint16_t* b, size_t n) noexcept {
    float s = xsimd_detail::dot_impl(a, n, [b](size_t i) { return xsimd_detail::load_bf16(b + i); });
    for (size_t i = n - n % N; i < n; ++i) s += a[i] * bf16_to_f32(b[i]);
    return s;
  }
  static void axpy(float a, const float* x, float* y, size_t n) noexcept {
    const fbatch va(a);
    size_t i = 0;
    for (; i + N <= n; i += N) xsimd::fma(va, fbatch::load_unaligned(x + i), fbatch::load_unaligned(y + i)).store_unaligned(y + i);
    for (; i < n; ++i) y[i] += a * x[i];
  }
  static void axpy_f16(float a, const uint16_t* x, float* y, size_t n) noexcept {
    const fbatch va(a);
    size_t i = 0;
    for (; i + N <= n; i += N) xsimd::fma(va, xsimd_detail::load_f16(x + i), fbatch::load_unaligned(y + i)).store_unaligned(y + i);
    for (; i < n; ++i) y[i] += a * fp16_to_f32(x[i]);
  }
  static void rmsnorm(float* out, const float* x, const float* weight, size_t n, float eps) noexcept {
    float ss = dot(x, x, n);
    const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
    const fbatch vs(scale);
    size_t i = 0;
    for (; i + N <= n; i += N)
      (fbatch::load_unaligned(x + i) * vs * fbatch::load_unaligned(weight + i)).store_unaligned(out + i);
    for (; i < n; ++i) out[i] = x[i] * scale * weight[i];
  }
  static void softmax(float* x, size_t n) noexcept {
    if (n == 0) return;
    float max = x[0];
    size_t i = 0;
    if (n >= N) {
      fbatch vmax = fbatch::load_unaligned(x);
      for (i = N; i + N <= n; i += N) vmax = xsimd::max(vmax, fbatch::load_unaligned(x + i));
      alignas(64) float lanes[N];
      vmax.store_aligned(lanes);
      for (float v : lanes) max = v > max ? v : max;
    }
    for (; i < n; ++i) max = x[i] > max ? x[i] : max;
    const fbatch vmax(max);
    fbatch vsum(0.0f);
    for (i = 0; i + N <= n; i += N) {
      const fbatch e = xsimd::exp(fbatch::load_unaligned(x + i) - vmax);
      e.store_unaligned(x + i);
      vsum += e;
    }
    float sum = xsimd::hadd(vsum);
    for (; i < n; ++i) {
      x[i] = std::exp(x[i] - max);
      sum += x[i];
    }
    scale(x, 1.0f / sum, n);
  }
  // The plain loop (kernels::rope_pair): xsimd 8.1 has no fused
  // multiply-subtract for AVX-512 (its generic x·y - z leaves the fusing to
  // the compiler), and a token has only a few hundred pairs to turn.
  static void rope_rotate(float* x, size_t n_heads, size_t head_dim, size_t rot_dim, const float* cos_t,
                          const float* sin_t, RopeLayout layout) noexcept {
    Ops<Scalar>::rope_rotate(x, n_heads, head_dim, rot_dim, cos_t, sin_t, layout);
  }
  static void swiglu(float* out, const float* gate, const float* up, size_t n) noexcept {
    const fbatch one(1.0f);
    size_t i = 0;
    for (; i + N <= n; i += N) {
      const fbatch g = fbatch::load_unaligned(gate + i);
      (g / (one + xsimd::exp(-g)) * fbatch::load_unaligned(up + i)).store_unaligned(out + i);
    }
    for (; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
  }
  static void gelu(float* out, const float* x, size_t n) noexcept {
    constexpr float kSqrt2OverPi = 0.79788456080286535588f;
    size_t i = 0;
    for (; i + N <= n; i += N) {
      const fbatch v = fbatch::load_unaligned(x + i);
      const fbatch t = xsimd::tanh(fbatch(kSqrt2OverPi) * (v + fbatch(0.044715f) * v * v * v));
      (fbatch(0.5f) * v * (fbatch(1.0f) + t)).store_unaligned(out + i);
    }
    if (i < n) Ops<Scalar>::gelu(out + i, x + i, n - i);
  }
  static void add(float* y, const float* x, size_t n) noexcept {
    size_t i = 0;
    for (; i + N <= n; i += N) (fbatch::load_unaligned(y + i) + fbatch::load_unaligned(x + i)).store_unaligned(y + i);
    for (; i < n; ++i) y[i] += x[i];
  }
  static void scale(float* y, float s, size_t n) noexcept {
    const fbatch vs(s);
    size_t i = 0;
    for (; i + N <= n; i += N) (fbatch::load_unaligned(y + i) * vs).store_unaligned(y + i);
    for (; i < n; ++i) y[i] *= s;
  }
  static size_t argmax(const float* x, size_t n) noexcept {
    if (n < N) return Ops<Scalar>::argmax(x, n);
    fbatch vmax = fbatch::load_unaligned(x);
    size_t i = N;
    for (; i + N <= n; i += N) vmax = xsimd::max(vmax, fbatch::load_unaligned(x + i));
    alignas(64) float lanes[N];
    vmax.store_aligned(lanes);
    float max = lanes[0];
    for (float v : lanes) max = v > max ? v : max;
    for (; i < n; ++i) max = x[i] > max ? x[i] : max;
    for (i = 0; i < n; ++i)
      if (x[i] == max) return i;
    return Ops<Scalar>::argmax(x, n);
  }
  static void dequantize_row(DType t, const void* src, float* dst, size_t n) noexcept {
    quants::dequantize_row(t, src, dst, n);
  }
  static float row_dot(DType t, const void* wrow, const void* act, size_t cols) noexcept {
    return block::row_dot<Ops<Xsimd>, xsimd_detail::Prims>(t, wrow, act, cols);
  }
  static void rows_dot(const WeightView& w, size_t r0, size_t r1, const void* act, size_t act_stride,
                       size_t n_tokens, float* y, size_t y_stride) noexcept {
    rows_dot_each(w, r0, r1, act, act_stride, n_tokens, y, y_stride, &row_dot);
  }
};

}  // namespace jielong::kernels

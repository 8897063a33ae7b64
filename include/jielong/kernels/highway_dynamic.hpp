// Opt-in runtime dispatch across the instruction sets Highway compiles for:
// the float dot products and axpy, compiled once per target and chosen on the
// first call from what the running CPU supports. kernels::Highway itself stays
// static dispatch (the compiler's target); this is for hosts that ship one
// binary built for a baseline ISA and still want AVX2/AVX-512 where present.
//
// Exactly one translation unit of the program defines the implementation:
//
//   #define JIELONG_HWY_DYNAMIC_DISPATCH
//   #include "jielong/kernels/highway_dynamic.hpp"
//
// Every other one includes the header without the macro and gets the
// declarations. The program links libhwy (hwy::hwy), which holds the CPU check.
//
// (The file re-includes itself once per target through Highway's
// foreach_target.h, hence the toggle guard instead of #pragma once.)

#ifndef JIELONG_KERNELS_HIGHWAY_DYNAMIC_DECLARATIONS
#define JIELONG_KERNELS_HIGHWAY_DYNAMIC_DECLARATIONS
#include <cstddef>
#include <cstdint>

namespace jielong::kernels::hwy_dynamic {
float dot(const float* a, const float* b, size_t n) noexcept;               // Σ a[i]·b[i]
float dot_f16(const float* a, const uint16_t* b_f16, size_t n) noexcept;   // Σ a[i]·half(b[i])
void axpy(float a, const float* x, float* y, size_t n) noexcept;            // y += a·x
const char* target_name() noexcept;  // the instruction set the calls run on this CPU
}  // namespace jielong::kernels::hwy_dynamic
#endif

#if defined(JIELONG_HWY_DYNAMIC_DISPATCH)

#include "jielong/config.hpp"  // HWY_WANT_AVX3_DL before any Highway header

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "jielong/kernels/highway_dynamic.hpp"
#include <hwy/foreach_target.h>  // re-includes this file for every target
#include <hwy/highway.h>

#include "jielong/core/half.hpp"

#if defined(JIELONG_HWY_DYNAMIC_TOGGLE) == defined(HWY_TARGET_TOGGLE)
#ifdef JIELONG_HWY_DYNAMIC_TOGGLE
#undef JIELONG_HWY_DYNAMIC_TOGGLE
#else
#define JIELONG_HWY_DYNAMIC_TOGGLE
#endif

HWY_BEFORE_NAMESPACE();
namespace jielong::kernels::hwy_dynamic {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Two accumulators: one chain of dependent FMAs would wait on its latency.
float Dot(const float* a, const float* b, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  auto s0 = hn::Zero(d), s1 = hn::Zero(d);
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
    s1 = hn::MulAdd(hn::LoadU(d, a + i + N), hn::LoadU(d, b + i + N), s1);
  }
  for (; i + N <= n; i += N) s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
  float s = hn::GetLane(hn::SumOfLanes(d, hn::Add(s0, s1)));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

float DotF16(const float* a, const uint16_t* b, size_t n) {
  const hn::ScalableTag<float> d;
  const hn::Rebind<hwy::float16_t, decltype(d)> dh;
  const size_t N = hn::Lanes(d);
  const auto* bh = reinterpret_cast<const hwy::float16_t*>(b);
  auto s0 = hn::Zero(d);
  size_t i = 0;
  for (; i + N <= n; i += N) s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::PromoteTo(d, hn::LoadU(dh, bh + i)), s0);
  float s = hn::GetLane(hn::SumOfLanes(d, s0));
  for (; i < n; ++i) s += a[i] * fp16_to_f32(b[i]);
  return s;
}

void Axpy(float a, const float* x, float* y, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const auto va = hn::Set(d, a);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::MulAdd(va, hn::LoadU(d, x + i), hn::LoadU(d, y + i)), d, y + i);
  for (; i < n; ++i) y[i] += a * x[i];
}

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace jielong::kernels::hwy_dynamic
HWY_AFTER_NAMESPACE();

#endif  // toggle

#if HWY_ONCE
namespace jielong::kernels::hwy_dynamic {
HWY_EXPORT(Dot);
HWY_EXPORT(DotF16);
HWY_EXPORT(Axpy);
HWY_EXPORT(TargetName);

float dot(const float* a, const float* b, size_t n) noexcept { return HWY_DYNAMIC_DISPATCH(Dot)(a, b, n); }
float dot_f16(const float* a, const uint16_t* b_f16, size_t n) noexcept {
  return HWY_DYNAMIC_DISPATCH(DotF16)(a, b_f16, n);
}
void axpy(float a, const float* x, float* y, size_t n) noexcept { HWY_DYNAMIC_DISPATCH(Axpy)(a, x, y, n); }
const char* target_name() noexcept { return HWY_DYNAMIC_DISPATCH(TargetName)(); }
}  // namespace jielong::kernels::hwy_dynamic
#endif  // HWY_ONCE

#endif  // JIELONG_HWY_DYNAMIC_DISPATCH

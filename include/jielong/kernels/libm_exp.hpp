// e^x for a vector of floats with the bits of the C library's expf, so the
// kernels can vectorize the exponentials they used to leave to std::exp (the
// last n % lanes of a softmax or a SwiGLU row) without changing one result:
// tiny models sit at near-ties where one flipped bit changes the greedy text.
//
// The algorithm is the one glibc uses since 2.28 (from Arm's optimized
// routines; on x86-64 the FMA build, which glibc picks on any CPU that has
// FMA): in double precision, x·32/ln2 is split into an integer k and a
// remainder r, e^x = 2^(k/32) · p(r) with 2^(k/32) from a 32-entry table and
// p a cubic, one rounding to float at the end. Every step is an IEEE
// operation (the fused multiply-adds where glibc's compiled code has them),
// so the vector lanes reproduce it exactly. |x| >= 80 and NaN take glibc's
// special paths (overflow, underflow, infinities): those lanes call std::exp.
//
// Only where the target has FMA (Highway's AVX2 and AVX3 targets on x86);
// elsewhere JIELONG_LIBM_EXP is 0 and callers keep std::exp.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "jielong/config.hpp"  // HWY_WANT_AVX3_DL before any Highway header

#include <hwy/highway.h>

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
#define JIELONG_LIBM_EXP 1
#else
#define JIELONG_LIBM_EXP 0
#endif

namespace jielong::kernels::libm_exp {

#if JIELONG_LIBM_EXP
namespace hn = hwy::HWY_NAMESPACE;

// 2^(i/32) rounded to double, minus i << 47: adding k << 47 to entry k % 32
// then puts k / 32 into the exponent, giving 2^(k/32) for any integer k.
alignas(64) inline constexpr uint64_t kTable[32] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51, 0x3fef72b83c7d517b,
    0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1, 0x3fef06fe0a31b715, 0x3feef1a7373aa9cb,
    0x3feedea64c123422, 0x3feece086061892d, 0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429,
    0x3feea47eb03a5585, 0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d, 0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069, 0x3fef5818dcfba487, 0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da, 0x3fefd0765b6e4540};
inline constexpr double kInvLn2N = 0x1.71547652b82fep+5;  // 32 / ln 2
inline constexpr double kShift = 0x1.8p+52;               // adding it rounds to an integer
inline constexpr double kC0 = 0x1.c6af84b912394p-20, kC1 = 0x1.ebfce50fac4f3p-13, kC2 = 0x1.62e42ff0c52d6p-6;

// e^x lane by lane for x promoted to double (d64: the double tag).
template <class D64>
HWY_INLINE hn::Vec<D64> exp_core(D64 d64, hn::Vec<D64> xd) noexcept {
  const hn::RebindToUnsigned<D64> du;
  const hn::RebindToSigned<D64> di;
  const auto inv_ln2n = hn::Set(d64, kInvLn2N), shift = hn::Set(d64, kShift);
  const auto z = hn::MulAdd(inv_ln2n, xd, shift);             // k + 2^52·1.5: k in the low bits
  const auto ki = hn::BitCast(du, z);
  const auto kd = hn::Sub(z, shift);                           // k
  const auto r = hn::MulSub(inv_ln2n, xd, kd);                 // x·32/ln2 - k, |r| <= 1/2
  const auto t = hn::Add(hn::GatherIndex(du, kTable, hn::BitCast(di, hn::And(ki, hn::Set(du, 31)))),
                         hn::ShiftLeft<47>(ki));
  const auto s = hn::BitCast(d64, t);                          // 2^(k/32)
  const auto p = hn::MulAdd(hn::Set(d64, kC0), r, hn::Set(d64, kC1));
  const auto r2 = hn::Mul(r, r);
  const auto y = hn::MulAdd(hn::Set(d64, kC2), r, hn::Set(d64, 1.0));
  return hn::Mul(hn::MulAdd(p, r2, y), s);
}

// e^x for every lane of x (a float vector of Highway's full width).
template <class D>
HWY_INLINE hn::Vec<D> exp(D d, hn::Vec<D> x) noexcept {
  const hn::Half<D> dh;
  const hn::Rebind<double, decltype(dh)> d64;
  const auto lo = hn::DemoteTo(dh, exp_core(d64, hn::PromoteTo(d64, hn::LowerHalf(dh, x))));
  const auto hi = hn::DemoteTo(dh, exp_core(d64, hn::PromoteTo(d64, hn::UpperHalf(dh, x))));
  auto e = hn::Combine(d, hi, lo);
  // glibc's fast path covers |x| < 80; the rest (and NaN) go its own way.
  const hn::RebindToSigned<D> di;
  const auto special = hn::RebindMask(
      d, hn::Gt(hn::And(hn::BitCast(di, x), hn::Set(di, 0x7fffffff)), hn::Set(di, 0x429fffff)));
  if (HWY_UNLIKELY(!hn::AllFalse(d, special))) {
    HWY_ALIGN float xs[hn::MaxLanes(d)], es[hn::MaxLanes(d)];
    hn::Store(x, d, xs);
    hn::Store(e, d, es);
    for (size_t i = 0; i < hn::Lanes(d); ++i)
      if (!(std::fabs(xs[i]) < 80.0f)) es[i] = std::exp(xs[i]);
    e = hn::Load(d, es);
  }
  return e;
}
#endif

}  // namespace jielong::kernels::libm_exp

// kernels::Avx512Bf16: Avx512Vnni's ops, and training's matrix products
// (kernels/gemm.hpp) with bf16 products and f32 sums. Compiled only when the
// target has AVX512_BF16 besides Avx512Vnni's instructions; elsewhere the
// tag runs Avx512Vnni's (or Highway's) code throughout, f32 products
// included. The CPU is asked once, by whoever picks the backend
// (bf16_available()), so a binary built for a wider CPU takes another
// backend instead of faulting in gemm.
#pragma once

#include "jielong/kernels/backend.hpp"
#include "jielong/kernels/highway.hpp"
#include "jielong/kernels/vnni.hpp"

#if JIELONG_HAVE_AVX512_VNNI && defined(__AVX512BF16__) && HWY_TARGET <= HWY_AVX3
#define JIELONG_HAVE_AVX512_BF16 1
#else
#define JIELONG_HAVE_AVX512_BF16 0
#endif

namespace jielong::kernels {

// Whether this build and this CPU can run Avx512Bf16's own code.
inline bool bf16_available() noexcept {
#if JIELONG_HAVE_AVX512_BF16
  static const bool has = vnni_available() && __builtin_cpu_supports("avx512bf16");
  return has;
#else
  return false;
#endif
}

template <>
struct Ops<Avx512Bf16> : Ops<Avx512Vnni> {
#if JIELONG_HAVE_AVX512_BF16
  // gemm rounds both operands to bf16 as it packs them and multiplies pairs
  // along k with vdpbf16ps (gemm_detail::pack_a_bf16 ... micro_kernel_bf16).
  static constexpr bool gemm_bf16_products = true;
#endif
};

}  // namespace jielong::kernels

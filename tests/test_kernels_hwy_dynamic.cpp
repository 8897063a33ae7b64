// The opt-in Highway runtime dispatch: this translation unit is the one host
// that defines the implementation; the dispatched ops agree with Scalar on
// awkward sizes and misaligned pointers, whichever target the CPU selects.
#define JIELONG_HWY_DYNAMIC_DISPATCH
#include "jielong/kernels/highway_dynamic.hpp"

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "jielong/core/half.hpp"
#include "jielong/kernels/kernels.hpp"

using namespace jielong;
namespace k = jielong::kernels;

namespace {
std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  std::vector<float> v(n + 1);
  for (float& x : v) x = nd(rng);
  return v;
}
}  // namespace

TEST_CASE("runtime-dispatched Highway dot, dot_f16 and axpy match Scalar") {
  const std::string target = k::hwy_dynamic::target_name();
  CHECK(!target.empty());
  MESSAGE("dispatched to " << target);
  for (size_t n : {1, 3, 7, 15, 16, 17, 31, 32, 33, 255, 256, 257, 4097}) {
    CAPTURE(n);
    // +1: start one float past the vector's (aligned) storage.
    auto av = randn(n, 1), bv = randn(n, 2);
    const float* a = av.data() + 1;
    const float* b = bv.data() + 1;
    std::vector<uint16_t> bh(n + 1);
    for (size_t i = 0; i < n; ++i) bh[i + 1] = f32_to_fp16(b[i]);
    // Float sums in another order: within 1e-5 of Σ|a·b| (as test_kernels).
    double mag = 0, mag_h = 0;
    for (size_t i = 0; i < n; ++i) {
      mag += std::fabs(a[i] * b[i]);
      mag_h += std::fabs(a[i] * fp16_to_f32(bh[i + 1]));
    }
    CHECK(std::fabs(k::hwy_dynamic::dot(a, b, n) - k::dot<k::Scalar>(a, b, n)) <= 1e-5 * mag + 1e-30);
    CHECK(std::fabs(k::hwy_dynamic::dot_f16(a, bh.data() + 1, n) - k::dot_f16<k::Scalar>(a, bh.data() + 1, n)) <=
          1e-5 * mag_h + 1e-30);
    // axpy: one product and one add per element, at most one rounding apart
    // (FMA or not): 2 ulp of the operands' magnitude.
    std::vector<float> y1(b, b + n), y2(b, b + n);
    k::hwy_dynamic::axpy(0.37f, a, y1.data(), n);
    k::axpy<k::Scalar>(0.37f, a, y2.data(), n);
    for (size_t i = 0; i < n; ++i)
      REQUIRE(std::fabs(y1[i] - y2[i]) <= 2.4e-7f * (std::fabs(0.37f * a[i]) + std::fabs(b[i])));
  }
}

// Non-finite weights and activations (a hostile or corrupt model file) must not
// reach undefined float-to-int conversions: found by fuzz_model_file, where a
// NaN weight made the 8-bit activation quantizer cast NaN to int8.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "jielong/core/quants.hpp"
#include "jielong/kernels/kernels.hpp"

using namespace jielong;

TEST_CASE("saturate_i8: the cast in range, 0 for NaN, saturation outside") {
  CHECK(quants::saturate_i8(0.0f) == 0);
  CHECK(quants::saturate_i8(126.9f) == 126);  // truncates like the cast
  CHECK(quants::saturate_i8(-3.7f) == -3);
  CHECK(quants::saturate_i8(127.0f) == 127);
  CHECK(quants::saturate_i8(-128.0f) == -128);
  CHECK(quants::saturate_i8(1e30f) == 127);
  CHECK(quants::saturate_i8(-1e30f) == -128);
  CHECK(quants::saturate_i8(std::numeric_limits<float>::quiet_NaN()) == 0);
  CHECK(quants::saturate_i8(std::numeric_limits<float>::infinity()) == 127);
}

TEST_CASE("a matvec over NaN and infinite activations stays defined") {
  // Q8_0 weights of ones; activations with NaN and inf in the first block.
  std::vector<float> w(64, 1.0f);
  std::vector<BlockQ8_0> wq(2);
  REQUIRE(quants::quantize_row(DType::Q8_0, w.data(), wq.data(), 64).is_ok());
  std::vector<float> x(64, 0.5f);
  x[3] = std::numeric_limits<float>::quiet_NaN();
  x[7] = std::numeric_limits<float>::infinity();
  kernels::WeightView view{DType::Q8_0, wq.data(), 1, 64, sizeof(BlockQ8_0) * 2};
  std::vector<std::byte> scratch(kernels::matvec_scratch_bytes(DType::Q8_0, 64));
  SerialExecutor ex;
  float y_scalar = 0, y_best = 0;
  kernels::matvec<kernels::Scalar>(view, x.data(), &y_scalar, scratch, ex);
  kernels::matvec<kernels::Best>(view, x.data(), &y_best, scratch, ex);
  // The first block's scale is inf/127 = inf, so its contribution is not
  // finite; what matters is that no undefined conversion happened (UBSan in
  // scripts/sanitize) and both backends agree on "not finite".
  CHECK(!std::isfinite(y_scalar));
  CHECK(!std::isfinite(y_best));
}

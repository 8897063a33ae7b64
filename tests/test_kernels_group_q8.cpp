// llama2.c v2 group-quantized matvec: worked by hand, and the degenerate cases.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "jielong/kernels/kernels.hpp"

using namespace jielong;

TEST_CASE("group_q8: one group worked by hand as runq.c computes it") {
  // x = [1, -2, 0.5, 4]: scale 4/127, q = round(x / scale) = [32, -64, 16, 127]
  // (31.75 → 32, -63.5 → -64 rounding half away from zero, 15.875 → 16).
  // w = [127, 0, -64, 10] with scale 0.01: Σ q·w = 4064 + 0 - 1024 + 1270 = 4310,
  // y = 4310 · 0.01 · (4/127).
  const float x[4] = {1.0f, -2.0f, 0.5f, 4.0f};
  const int8_t w[4] = {127, 0, -64, 10};
  const float ws[1] = {0.01f};
  kernels::WeightView view{DType::I8, w, 1, 4, 4, ws, 4};
  std::vector<std::byte> scratch(kernels::matvec_scratch_bytes(DType::I8, 4));
  float y = -1;
  SerialExecutor ex;
  kernels::matvec<kernels::Best>(view, x, &y, scratch, ex);
  CHECK(y == 4310.0f * 0.01f * (4.0f / 127.0f));
  int8_t q[4];
  float s;
  kernels::group_q8::quantize(x, 4, 4, q, &s);
  CHECK(q[0] == 32);
  CHECK(q[1] == -64);
  CHECK(q[2] == 16);
  CHECK(q[3] == 127);
}

TEST_CASE("group_q8: groups sum in order, rows and tokens independent, zero groups give zero") {
  // Two rows of two groups of 2; x's second group is all zero (runq.c would
  // divide by a zero scale): it contributes nothing.
  const float x[4] = {2.0f, -1.0f, 0.0f, 0.0f};  // scale 2/127: q = [127, -64] (-63.5 → -64)
  const int8_t w[8] = {1, 1, 5, 5, /* row 1 */ -2, 3, 7, 7};
  const float ws[4] = {0.5f, 9.0f, 0.25f, 9.0f};
  kernels::WeightView view{DType::I8, w, 2, 4, 4, ws, 2};
  std::vector<std::byte> scratch(kernels::matvec_scratch_bytes(DType::I8, 4, 2));
  float xx[8];
  for (int i = 0; i < 8; ++i) xx[i] = x[i % 4];
  float y[4];
  ThreadPool pool(2);
  kernels::matmul<kernels::Scalar>(view, xx, 2, y, scratch, pool);
  const float xs = 2.0f / 127.0f;
  CHECK(y[0] == 63.0f * 0.5f * xs);           // 127 - 64
  CHECK(y[1] == -446.0f * 0.25f * xs);        // -254 - 192
  CHECK(y[2] == y[0]);                        // token 1 = token 0
  CHECK(y[3] == y[1]);
}

TEST_CASE("group_q8: a malformed view writes zeros instead of reading out of bounds") {
  const float x[3] = {1, 2, 3};
  const int8_t w[3] = {1, 2, 3};
  const float ws[1] = {1.0f};
  kernels::WeightView view{DType::I8, w, 1, 3, 3, ws, 2};  // 3 columns do not split into groups of 2
  std::vector<std::byte> scratch(kernels::matvec_scratch_bytes(DType::I8, 3));
  float y = -1;
  SerialExecutor ex;
  kernels::matvec<kernels::Scalar>(view, x, &y, scratch, ex);
  CHECK(y == 0.0f);
}

// Every op of every backend against kernels::Scalar, on awkward sizes and
// misaligned pointers; Scalar itself against hand-computed values and against
// the dequantize-then-f32 definition.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "jielong/kernels/kernels.hpp"
#include "support/random.hpp"
#include "support/strided_threads.hpp"

using namespace jielong;
namespace k = jielong::kernels;

namespace {

const size_t kSizes[] = {1, 3, 7, 15, 16, 17, 31, 32, 33, 255, 256, 257, 4097};

// A buffer whose data() is deliberately one float past a 64-byte boundary.
struct Misaligned {
  explicit Misaligned(size_t n) : storage(n + 32) {}
  float* data() {
    auto p = reinterpret_cast<uintptr_t>(storage.data());
    p = (p + 63) & ~uintptr_t{63};
    return reinterpret_cast<float*>(p) + 1;
  }
  std::vector<float> storage;
};

using test::randn;
using test::StridedThreads;

// Float summation in a different order differs by at most ~n·ε·Σ|terms|; the
// SIMD backends use up to 8 partial sums of 16 lanes, so 1e-5 relative to the
// sum of magnitudes is generous for n ≤ 4097 and still catches any missing
// or doubled term (which changes the result by a whole term).
constexpr float kSumTol = 1e-5f;

float abs_dot(const float* a, const float* b, size_t n) {
  float s = 0;
  for (size_t i = 0; i < n; ++i) s += std::fabs(a[i] * b[i]);
  return s;
}

}  // namespace

#define BACKENDS k::Xsimd, k::Highway, k::Avx512Vnni

TEST_CASE_TEMPLATE("dot, dot_f16, axpy, axpy_f16 match Scalar", B, BACKENDS) {
  for (size_t n : kSizes) {
    CAPTURE(n);
    Misaligned a(n), b(n), y(n), y_ref(n);
    const auto ra = randn(n, 1), rb = randn(n, 2), ry = randn(n, 3);
    std::copy(ra.begin(), ra.end(), a.data());
    std::copy(rb.begin(), rb.end(), b.data());
    std::vector<uint16_t> bh_storage(n + 1);
    uint16_t* bh = bh_storage.data() + 1;  // 2-byte aligned only
    for (size_t i = 0; i < n; ++i) bh[i] = f32_to_fp16(rb[i]);

    const float tol = kSumTol * abs_dot(a.data(), b.data(), n) + 1e-30f;
    CHECK(std::fabs(k::dot<B>(a.data(), b.data(), n) - k::dot<k::Scalar>(a.data(), b.data(), n)) <= tol);
    CHECK(std::fabs(k::dot_f16<B>(a.data(), bh, n) - k::dot_f16<k::Scalar>(a.data(), bh, n)) <= tol);

    // axpy: each element is one multiply-add; FMA vs separate rounding differs by ≤ 1 ulp of the terms.
    for (int f16 = 0; f16 < 2; ++f16) {
      std::copy(ry.begin(), ry.end(), y.data());
      std::copy(ry.begin(), ry.end(), y_ref.data());
      if (f16) {
        k::axpy_f16<B>(0.37f, bh, y.data(), n);
        k::axpy_f16<k::Scalar>(0.37f, bh, y_ref.data(), n);
      } else {
        k::axpy<B>(0.37f, a.data(), y.data(), n);
        k::axpy<k::Scalar>(0.37f, a.data(), y_ref.data(), n);
      }
      const std::vector<float>& x = f16 ? rb : ra;  // (f16: the half-rounded rb, within 2^-11 of it)
      for (size_t i = 0; i < n; ++i)
        REQUIRE(std::fabs(y.data()[i] - y_ref.data()[i]) <= 2e-7f * (std::fabs(ry[i]) + std::fabs(0.37f * x[i])) + 1e-30f);
    }
  }
}

TEST_CASE_TEMPLATE("rmsnorm, softmax, swiglu, gelu, add, scale match Scalar", B, BACKENDS) {
  for (size_t n : kSizes) {
    CAPTURE(n);
    const auto x = randn(n, 11, 3.0f), w = randn(n, 12), g = randn(n, 13, 4.0f);
    Misaligned out(n), ref(n), xin(n);
    std::copy(x.begin(), x.end(), xin.data());

    // rmsnorm: the mean square differs only by summation order (relative 1e-6).
    k::rmsnorm<B>(out.data(), xin.data(), w.data(), n, 1e-5f);
    k::rmsnorm<k::Scalar>(ref.data(), xin.data(), w.data(), n, 1e-5f);
    for (size_t i = 0; i < n; ++i) REQUIRE(std::fabs(out.data()[i] - ref.data()[i]) <= 2e-6f * std::fabs(ref.data()[i]) + 1e-30f);

    // softmax: vector exp is accurate to a few ulp; probabilities compared relatively.
    std::copy(x.begin(), x.end(), out.data());
    std::copy(x.begin(), x.end(), ref.data());
    k::softmax<B>(out.data(), n);
    k::softmax<k::Scalar>(ref.data(), n);
    for (size_t i = 0; i < n; ++i) REQUIRE(std::fabs(out.data()[i] - ref.data()[i]) <= 1e-5f * ref.data()[i] + 1e-12f);

    // swiglu / gelu: exp and tanh of vector libraries, relative 1e-5 (plus an absolute floor near 0).
    k::swiglu<B>(out.data(), g.data(), w.data(), n);
    k::swiglu<k::Scalar>(ref.data(), g.data(), w.data(), n);
    for (size_t i = 0; i < n; ++i) REQUIRE(std::fabs(out.data()[i] - ref.data()[i]) <= 1e-5f * std::fabs(ref.data()[i]) + 1e-6f);
    k::gelu<B>(out.data(), g.data(), n);
    k::gelu<k::Scalar>(ref.data(), g.data(), n);
    for (size_t i = 0; i < n; ++i) REQUIRE(std::fabs(out.data()[i] - ref.data()[i]) <= 1e-5f * std::fabs(ref.data()[i]) + 1e-6f);

    // add / scale are exact.
    std::copy(x.begin(), x.end(), out.data());
    std::copy(x.begin(), x.end(), ref.data());
    k::add<B>(out.data(), w.data(), n);
    k::add<k::Scalar>(ref.data(), w.data(), n);
    k::scale<B>(out.data(), -1.5f, n);
    k::scale<k::Scalar>(ref.data(), -1.5f, n);
    for (size_t i = 0; i < n; ++i) REQUIRE(out.data()[i] == ref.data()[i]);
  }
}

TEST_CASE_TEMPLATE("argmax matches Scalar, lowest index on ties", B, BACKENDS) {
  for (size_t n : kSizes) {
    CAPTURE(n);
    auto x = randn(n, 21);
    Misaligned m(n);
    std::copy(x.begin(), x.end(), m.data());
    CHECK(k::argmax<B>(m.data(), n) == k::argmax<k::Scalar>(m.data(), n));
    // Ties: the maximum repeated at the end and the middle; the first wins.
    const float big = 100.0f;
    m.data()[n - 1] = big;
    m.data()[n / 2] = big;
    CHECK(k::argmax<B>(m.data(), n) == n / 2);
    CHECK(k::argmax<k::Scalar>(m.data(), n) == n / 2);
  }
}

TEST_CASE_TEMPLATE("rope (normal and neox) matches Scalar", B, BACKENDS) {
  const size_t cases[][3] = {{1, 2, 2}, {3, 8, 8}, {2, 64, 64}, {5, 64, 32}, {4, 128, 128}, {2, 80, 40}, {1, 256, 256}};
  for (const auto& c : cases) {
    const size_t n_heads = c[0], head_dim = c[1], rot_dim = c[2];
    CAPTURE(head_dim);
    CAPTURE(rot_dim);
    std::vector<float> inv_freq(rot_dim / 2);
    for (size_t i = 0; i < rot_dim / 2; ++i)
      inv_freq[i] = std::pow(10000.0f, -2.0f * static_cast<float>(i) / static_cast<float>(rot_dim));
    for (auto layout : {k::RopeLayout::normal, k::RopeLayout::neox}) {
      const auto x = randn(n_heads * head_dim, 31);
      Misaligned a(x.size()), b(x.size());
      std::copy(x.begin(), x.end(), a.data());
      std::copy(x.begin(), x.end(), b.data());
      k::rope<B>(a.data(), n_heads, head_dim, rot_dim, 37.0f, inv_freq.data(), layout);
      k::rope<k::Scalar>(b.data(), n_heads, head_dim, rot_dim, 37.0f, inv_freq.data(), layout);
#if defined(__FMA__) || defined(__AVX512F__)
      // Same angles and the same two fused multiply-adds per pair
      // (kernels::rope_pair), so the same bits.
      REQUIRE(std::memcmp(a.data(), b.data(), x.size() * sizeof(float)) == 0);
#else
      // Without hardware FMA a vector library may split the multiply-add:
      // ≤ 2 ulp of |x0|+|x1|.
      for (size_t i = 0; i < x.size(); ++i) REQUIRE(std::fabs(a.data()[i] - b.data()[i]) <= 1e-6f);
#endif
    }
  }
}

TEST_CASE("Scalar ops on hand-computed values") {
  float x[4] = {1, 2, 3, 4};
  const float w[4] = {1, 1, 2, 0.5f};
  float out[4];
  // mean square = 30/4 = 7.5; 1/sqrt(7.5) = 0.365148
  k::rmsnorm<k::Scalar>(out, x, w, 4, 0.0f);
  CHECK(out[0] == doctest::Approx(0.3651484f));
  CHECK(out[2] == doctest::Approx(3 * 2 * 0.3651484f));
  float s[3] = {0.0f, std::log(2.0f), std::log(5.0f)};  // exp: 1, 2, 5 -> /8
  k::softmax<k::Scalar>(s, 3);
  CHECK(s[0] == doctest::Approx(0.125f));
  CHECK(s[2] == doctest::Approx(0.625f));
  float big[2] = {1000.0f, 1000.0f};  // max-subtraction keeps this finite
  k::softmax<k::Scalar>(big, 2);
  CHECK(big[0] == doctest::Approx(0.5f));
  const float g[2] = {0.0f, 2.0f}, u[2] = {3.0f, 1.0f};
  k::swiglu<k::Scalar>(out, g, u, 2);
  CHECK(out[0] == 0.0f);
  CHECK(out[1] == doctest::Approx(2.0f / (1.0f + std::exp(-2.0f))));
  const float gx[1] = {1.0f};
  k::gelu<k::Scalar>(out, gx, 1);
  CHECK(out[0] == doctest::Approx(0.841192f));  // tanh-approximate GELU(1)
  // rope: pair (1, 0) rotated by pos * inv_freq = pi/2 -> (0, 1)
  float r[4] = {1, 0, 1, 0};
  const float inv_freq[2] = {1.0f, 0.0f};
  k::rope<k::Scalar>(r, 1, 4, 4, static_cast<float>(M_PI / 2), inv_freq, k::RopeLayout::normal);
  CHECK(r[0] == doctest::Approx(0.0f).epsilon(1e-6));
  CHECK(r[1] == doctest::Approx(1.0f));
  CHECK(r[2] == 1.0f);  // frequency 0: unrotated
  float rn[4] = {1, 1, 0, 0};  // neox pairs (0,2) and (1,3)
  k::rope<k::Scalar>(rn, 1, 4, 4, static_cast<float>(M_PI / 2), inv_freq, k::RopeLayout::neox);
  CHECK(rn[2] == doctest::Approx(1.0f));
  CHECK(rn[1] == 1.0f);
  const float am[5] = {1, 3, 3, -1, 2};
  CHECK(k::argmax<k::Scalar>(am, 5) == 1);
}

// ------------------------------------------------------------------ matvec

namespace {

const DType kWeightTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1,
                              DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K, DType::Q3_K,
                              DType::Q4_K, DType::Q5_K, DType::Q6_K};

// Weight rows stored off the 64-byte grid (by the type's natural alignment:
// 4 bytes for F32, 2 for the rest, as ggml blocks are) with a padded stride.
struct TestMatrix {
  std::vector<uint8_t> storage;
  k::WeightView view;
  std::vector<float> dequantized;  // [rows][cols]
};

TestMatrix make_matrix(DType t, size_t rows, size_t cols, uint32_t seed) {
  TestMatrix m;
  const size_t align = t == DType::F32 ? 4 : 2;
  const size_t rb = row_bytes(t, cols), stride = rb + 3 * align;
  m.storage.assign(rows * stride + 64, 0);
  auto base = reinterpret_cast<uintptr_t>(m.storage.data());
  uint8_t* data = m.storage.data() + (((base + 63) & ~uintptr_t{63}) - base) + align;
  const auto w = randn(rows * cols, seed, 0.05f);
  std::mt19937 rng(seed);
  for (size_t r = 0; r < rows; ++r) {
    uint8_t* row = data + r * stride;
    if (quants::can_quantize(t)) {
      REQUIRE(quants::quantize_row(t, w.data() + r * cols, row, cols).is_ok());
    } else {  // Q2_K, Q3_K: random quants with small positive scales
      for (size_t i = 0; i < rb; ++i) row[i] = static_cast<uint8_t>(rng());
      for (size_t b = 0; b < cols / 256; ++b) {
        uint8_t* blk = row + b * dtype_info(t).block_bytes;
        const uint16_t d = f32_to_fp16(0.003f), dmin = f32_to_fp16(0.002f);
        if (t == DType::Q2_K) {
          std::memcpy(blk + 80, &d, 2);
          std::memcpy(blk + 82, &dmin, 2);
        } else {
          std::memcpy(blk + 108, &d, 2);
        }
      }
    }
  }
  m.view = k::WeightView{t, data, rows, cols, stride};
  m.dequantized.resize(rows * cols);
  for (size_t r = 0; r < rows; ++r) quants::dequantize_row(t, m.view.row(r), m.dequantized.data() + r * cols, cols);
  return m;
}

std::vector<size_t> cols_for(DType t) {
  const size_t bs = dtype_info(t).block_size;
  if (bs == 1) return {1, 3, 17, 33, 255, 257, 4097};
  if (bs == 32) return {32, 64, 96, 288, 4128};
  return {256, 512, 1280};
}

// Scalar matvec against its definition: Σ dequant(w)·x, off by the 8-bit
// quantization of x, which moves each x_i by at most half its block's step
// (amax/127/2, plus half-float rounding of the scale).
void check_scalar_against_definition(const TestMatrix& m, const float* x, const float* y) {
  const size_t cols = m.view.cols;
  const k::ActKind kind = k::act_kind(m.view.type);
  const size_t block = kind == k::ActKind::q8k ? 256 : 32;
  for (size_t r = 0; r < m.view.rows; ++r) {
    const float* w = m.dequantized.data() + r * cols;
    double exact = 0, bound = 0;
    for (size_t i = 0; i < cols; ++i) exact += static_cast<double>(w[i]) * x[i];
    for (size_t b0 = 0; b0 < cols; b0 += block) {
      const size_t b1 = std::min(cols, b0 + block);
      double amax = 0, wabs = 0;
      for (size_t i = b0; i < b1; ++i) {
        amax = std::max<double>(amax, std::fabs(x[i]));
        wabs += std::fabs(w[i]);
      }
      bound += kind == k::ActKind::none ? 0.0 : wabs * amax / 127.0 * 0.53;
    }
    bound += 1e-5 * (abs_dot(w, x, cols) + 1e-30);
    REQUIRE(std::fabs(y[r] - exact) <= bound);
  }
}

}  // namespace

TEST_CASE("Scalar matvec equals the dequantize-then-dot definition within x's 8-bit rounding") {
  SerialExecutor serial;
  for (DType t : kWeightTypes) {
    for (size_t cols : cols_for(t)) {
      CAPTURE(dtype_name(t));
      CAPTURE(cols);
      const size_t rows = 7;
      const TestMatrix m = make_matrix(t, rows, cols, 5);
      const auto x = randn(cols, 6);
      std::vector<std::byte> scratch(k::matvec_scratch_bytes(t, cols));
      std::vector<float> y(rows);
      k::matvec<k::Scalar>(m.view, x.data(), y.data(), scratch, serial);
      check_scalar_against_definition(m, x.data(), y.data());
    }
  }
}

TEST_CASE_TEMPLATE("matvec and matmul match Scalar for every weight type, any thread count", B, BACKENDS) {
  SerialExecutor serial;
  StridedThreads pool2(2), pool3(3);
  for (DType t : kWeightTypes) {
    for (size_t cols : cols_for(t)) {
      for (size_t rows : {1, 3, 17, 33}) {
        CAPTURE(dtype_name(t));
        CAPTURE(cols);
        CAPTURE(rows);
        const TestMatrix m = make_matrix(t, rows, cols, static_cast<uint32_t>(rows * 131 + cols));
        const size_t n_tokens = 5;
        const auto xs = randn(n_tokens * cols, 9);
        Misaligned x(xs.size());
        std::copy(xs.begin(), xs.end(), x.data());
        std::vector<std::byte> scratch(k::matvec_scratch_bytes(t, cols, n_tokens) + 1);
        const std::span<std::byte> odd_scratch(scratch.data() + 1, scratch.size() - 1);  // unaligned start

        std::vector<float> ref(n_tokens * rows), y(n_tokens * rows), y2(n_tokens * rows), y3(n_tokens * rows);
        k::matmul<k::Scalar>(m.view, x.data(), n_tokens, ref.data(), odd_scratch, serial);
        k::matmul<B>(m.view, x.data(), n_tokens, y.data(), odd_scratch, serial);
        k::matmul<B>(m.view, x.data(), n_tokens, y2.data(), odd_scratch, pool2);
        k::matmul<B>(m.view, x.data(), n_tokens, y3.data(), odd_scratch, pool3);
        // Thread count never changes a bit.
        REQUIRE(std::memcmp(y.data(), y2.data(), y.size() * sizeof(float)) == 0);
        REQUIRE(std::memcmp(y.data(), y3.data(), y.size() * sizeof(float)) == 0);
        for (size_t tok = 0; tok < n_tokens; ++tok) {
          for (size_t r = 0; r < rows; ++r) {
            // Integer block sums are exact in every backend; only the float
            // sums over blocks and lanes are reordered.
            const float tol = kSumTol * abs_dot(m.dequantized.data() + r * cols, x.data() + tok * cols, cols) + 1e-30f;
            REQUIRE(std::fabs(y[tok * rows + r] - ref[tok * rows + r]) <= tol);
          }
          // matvec of one token equals row `tok` of the matmul.
          std::vector<float> yv(rows);
          k::matvec<B>(m.view, x.data() + tok * cols, yv.data(), odd_scratch, serial);
          for (size_t r = 0; r < rows; ++r)
            REQUIRE(std::fabs(yv[r] - y[tok * rows + r]) <=
                    kSumTol * abs_dot(m.dequantized.data() + r * cols, x.data() + tok * cols, cols) + 1e-30f);
        }
      }
    }
  }
}

TEST_CASE_TEMPLATE("dequantize_row matches Scalar", B, BACKENDS) {
  for (DType t : kWeightTypes) {
    for (size_t cols : cols_for(t)) {
      CAPTURE(dtype_name(t));
      CAPTURE(cols);
      const TestMatrix m = make_matrix(t, 1, cols, 77);
      Misaligned out(cols);
      k::dequantize_row<B>(t, m.view.row(0), out.data(), cols);
      for (size_t i = 0; i < cols; ++i) REQUIRE(out.data()[i] == m.dequantized[i]);
    }
  }
}

TEST_CASE("matmul with an unsupported type or too little scratch fills zeros instead of crashing") {
#ifdef NDEBUG
  SerialExecutor serial;
  std::vector<uint8_t> w(64 * 292);
  k::WeightView v{DType::Q8_K, w.data(), 2, 256, 292};
  float x[256] = {}, y[2] = {1, 1};
  k::matvec<k::Best>(v, x, y, {}, serial);
  CHECK(y[0] == 0.0f);
  const TestMatrix m = make_matrix(DType::Q4_0, 2, 64, 3);
  y[0] = 1;
  k::matvec<k::Best>(m.view, x, y, {}, serial);  // needs scratch, got none
  CHECK(y[0] == 0.0f);
#else
  MESSAGE("skipped: debug builds assert on contract violations");
#endif
}

TEST_CASE("Best's F32 decode rows equal Highway's dot per row, bit for bit") {
  // The four-row decode kernel must not change a number (greedy texts of tiny
  // f32 models depend on every rounding): same chunks, same accumulators,
  // same lane reduction, same leftover loop as Ops<Highway>::dot.
  SerialExecutor serial;
  for (size_t cols : {size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{63}, size_t{64}, size_t{65}, size_t{172},
                      size_t{257}, size_t{4097}}) {
    for (size_t rows : {size_t{1}, size_t{3}, size_t{4}, size_t{5}, size_t{9}}) {
      CAPTURE(cols);
      CAPTURE(rows);
      const auto w = randn(rows * cols, static_cast<uint32_t>(cols * 7 + rows));
      const auto xs = randn(cols, 3);
      Misaligned x(cols);
      std::copy(xs.begin(), xs.end(), x.data());
      const k::WeightView view{DType::F32, w.data(), rows, cols, cols * sizeof(float)};
      std::vector<float> y(rows);
      k::matvec<k::Best>(view, x.data(), y.data(), {}, serial);
      for (size_t r = 0; r < rows; ++r) {
        const float expect = k::Ops<k::Highway>::dot(x.data(), w.data() + r * cols, cols);
        CHECK(std::memcmp(&y[r], &expect, sizeof(float)) == 0);
      }
    }
  }
}

TEST_CASE_TEMPLATE("the 8-bit activations of every backend are the plain loop's bytes", B, BACKENDS) {
  // Hand-picked blocks where rounding and special values decide: amax 127
  // makes the scale exactly 1, so x.5 values are exact ties (std::round goes
  // away from zero), plus NaN (skipped, quantized to 0), infinities (scale
  // 0: every quant 0), an all-zero block, negative zeros and subnormals;
  // then random blocks of mixed magnitudes.
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> x;
  auto block = [&](std::initializer_list<float> head, float fill) {
    size_t i = 0;
    for (float v : head) x.push_back(v), ++i;
    for (; i < 32; ++i) x.push_back(fill);
  };
  block({127.0f, 0.5f, -0.5f, 1.5f, -1.5f, 2.5f, -2.5f, 126.5f, -126.5f, 0.49999997f, -0.49999997f}, 3.5f);
  block({-127.0f, nan, 64.5f, -64.5f, nan, 1e-40f, -1e-40f, -0.0f}, -7.5f);
  block({inf, 1.0f, -2.0f}, 0.25f);
  block({-inf, inf, nan}, 1.0f);
  block({}, 0.0f);
  block({}, -0.0f);
  block({1e-42f, -3e-42f}, 2e-43f);
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int b = 0; b < 64; ++b) {
    const float scale = std::ldexp(1.0f, static_cast<int>(rng() % 40) - 20);
    for (int j = 0; j < 32; ++j) x.push_back(nd(rng) * scale);
  }
  const size_t n = x.size();
  std::vector<k::ActQ8> plain(n / 32), got(n / 32);
  k::quantize_act_q8(x.data(), plain.data(), n);
  k::quantize_act<B>(k::ActKind::q8, x.data(), got.data(), n);
  for (size_t i = 0; i < n / 32; ++i) {
    CAPTURE(i);
    CHECK(std::memcmp(&plain[i], &got[i], sizeof(k::ActQ8)) == 0);
  }
  // From a misaligned address (one float past a 64-byte boundary) too.
  std::vector<float> shifted(n + 16);
  float* xs = shifted.data() + 1;
  std::memcpy(xs, x.data(), n * sizeof(float));
  std::vector<k::ActQ8> got_shifted(n / 32);
  k::quantize_act<B>(k::ActKind::q8, xs, got_shifted.data(), n);
  CHECK(std::memcmp(plain.data(), got_shifted.data(), plain.size() * sizeof(k::ActQ8)) == 0);
  // The ties themselves, against hand-rounded values: 0.5 → 1, -0.5 → -1,
  // 1.5 → 2, 2.5 → 3, 126.5 → 127, 0.49999997 → 0; NaN → 0.
  CHECK(plain[0].qs[1] == 1);
  CHECK(plain[0].qs[2] == -1);
  CHECK(plain[0].qs[3] == 2);
  CHECK(plain[0].qs[5] == 3);
  CHECK(plain[0].qs[6] == -3);
  CHECK(plain[0].qs[7] == 127);
  CHECK(plain[0].qs[9] == 0);
  CHECK(plain[1].qs[1] == 0);
  CHECK(plain[3].qs[3] == 0);
}

TEST_CASE_TEMPLATE("f16 rows of every backend are core/half.hpp's bits", B, BACKENDS) {
  // Ties to even at 1 + 2^-11 (down to 1) and 1 + 3·2^-11 (up to 1 + 2^-9),
  // overflow past 65504 (the largest half) to infinity, the smallest
  // subnormal half 2^-24 and half of it (a tie, to zero), NaN, infinities,
  // negative zero; then random values across the half range. 37 values: two
  // vectors of 16 and a tail.
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> x = {1.0f + std::ldexp(1.0f, -11), 1.0f + 3 * std::ldexp(1.0f, -11), 65504.0f, 65520.0f,
                          std::ldexp(1.0f, -24), std::ldexp(1.0f, -25), nan, inf, -inf, -0.0f};
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  while (x.size() < 37) x.push_back(nd(rng) * std::ldexp(1.0f, static_cast<int>(rng() % 40) - 24));
  std::vector<uint16_t> want(x.size()), got(x.size());
  for (size_t i = 0; i < x.size(); ++i) want[i] = f32_to_fp16(x[i]);
  k::f32_to_f16_row<B>(x.data(), got.data(), x.size());
  CHECK(got == want);
  CHECK(want[0] == 0x3C00);  // by hand: the tie goes to the even 1.0
  CHECK(want[1] == 0x3C02);
  CHECK(want[3] == 0x7C00);
  CHECK(want[4] == 0x0001);
  CHECK(want[5] == 0x0000);
  std::vector<float> trip = x;
  k::f16_round_trip<B>(trip.data(), trip.size());
  for (size_t i = 0; i < x.size(); ++i) {
    CAPTURE(i);
    const float r = fp16_to_f32(want[i]);
    CHECK(std::memcmp(&trip[i], &r, sizeof r) == 0);
  }
}

TEST_CASE("Xsimd widens every one of the 65536 halves to fp16_to_f32's bits") {
  // xsimd has no half conversion, so Xsimd builds its own from integer batch
  // operations: every pattern (zeros, subnormals, normals, infinities, NaN
  // payloads of both signs) must read as the scalar definition reads it.
  constexpr size_t N = k::xsimd_detail::N;
  std::vector<uint16_t> h(65536);
  for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<uint16_t>(i);
  size_t wrong = 0;
  alignas(64) float got[N];
  for (size_t i = 0; i < h.size(); i += N) {
    k::xsimd_detail::load_f16(h.data() + i).store_aligned(got);
    for (size_t j = 0; j < N; ++j) {
      const float want = fp16_to_f32(h[i + j]);
      if (std::memcmp(&got[j], &want, sizeof want) != 0 && wrong++ < 4) MESSAGE("half 0x" << std::hex << h[i + j]);
    }
  }
  CHECK(wrong == 0);
}

#if JIELONG_LIBM_EXP && defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 28)
// glibc 2.28 and later compute expf with the algorithm kernels/libm_exp.hpp
// vectorizes; elsewhere std::exp may round differently and these skip.
#define JIELONG_TEST_LIBM_EXP 1
#else
#define JIELONG_TEST_LIBM_EXP 0
#endif

TEST_CASE("libm_exp::exp has std::exp's bits for every float of a sweep and the special values") {
#if JIELONG_TEST_LIBM_EXP
  namespace hn = hwy::HWY_NAMESPACE;
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  std::vector<float> in(N), out(N);
  size_t mismatches = 0, checked = 0;
  auto check = [&](size_t n_used) {
    hn::StoreU(k::libm_exp::exp(d, hn::LoadU(d, in.data())), d, out.data());
    for (size_t i = 0; i < n_used; ++i, ++checked) {
      const float e = std::exp(in[i]);
      if (std::memcmp(&e, &out[i], sizeof(float)) != 0 && !(std::isnan(e) && std::isnan(out[i]))) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "x = %a: std::exp %a, libm_exp %a", in[i], e, out[i]);
        if (++mismatches <= 5) MESSAGE(buf);
      }
    }
  };
  // Every 61st bit pattern (all exponents, signs, NaNs, subnormals): ~70M
  // values. All 2^32 were compared once on this machine's AVX2 and AVX-512
  // targets, without a difference.
  constexpr uint64_t kStride = 61;
  for (uint64_t b = 0; b < (uint64_t{1} << 32); b += kStride * N) {
    size_t used = 0;
    for (; used < N && b + used * kStride < (uint64_t{1} << 32); ++used) {
      const auto u = static_cast<uint32_t>(b + used * kStride);
      std::memcpy(&in[used], &u, sizeof(float));
    }
    check(used);
  }
  // Where glibc leaves its fast path (|x| >= 80, overflow above ~88.72,
  // underflow below ~-103.97), and the signed zeros and infinities.
  const float special[] = {0.0f, -0.0f, 79.99999f, 80.0f, -80.0f, 88.72283f, 88.72284f, -87.33654f, -103.2789f,
                           -103.9720f, -104.0f, std::numeric_limits<float>::infinity(),
                           -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                           std::numeric_limits<float>::denorm_min(), -std::numeric_limits<float>::max()};
  for (size_t s = 0; s < std::size(special); s += N) {
    const size_t used = std::min(N, std::size(special) - s);
    std::fill(in.begin(), in.end(), 0.0f);
    std::copy(special + s, special + s + used, in.begin());
    check(used);
  }
  CHECK(checked > 70'000'000u);
  CHECK(mismatches == 0);
#else
  MESSAGE("skipped: the vector exp needs an FMA target and glibc 2.28+ to compare with std::exp bit for bit");
#endif
}

TEST_CASE("softmax and swiglu keep std::exp's bits on the lanes after the last full vector") {
#if JIELONG_TEST_LIBM_EXP
  // Those lanes once called std::exp one by one; the vector that replaced
  // the loop must not change one of them (tiny models' greedy texts hang on
  // near-ties). For n below a vector the whole row is that tail; above it,
  // the tail's bits reach every lane through the sum.
  namespace hn = hwy::HWY_NAMESPACE;
  const size_t N = hn::Lanes(hn::ScalableTag<float>());
  for (size_t n = 1; n <= 3 * N + 5; ++n) {
    CAPTURE(n);
    auto x = randn(n, static_cast<uint32_t>(n));
    for (float& v : x) v *= 6.0f;
    x[n / 2] = 95.0f;  // with max 95 the other lanes reach |x - max| >= 80: glibc's slow path
    const size_t tail = n - n % N;
    // softmax: max, then exps summed in order, then x·(1/sum)
    std::vector<float> sm(x);
    k::Ops<k::Highway>::softmax(sm.data(), n);
    float max = x[0];
    for (float v : x) max = v > max ? v : max;
    // The full vectors' exps and their lane sum are Highway's own (hn::Exp,
    // SumOfLanes, as the kernel takes them); the lanes after them must be
    // std::exp's, and every lane then carries the sum that includes them.
    const hn::ScalableTag<float> d;
    std::vector<float> e(n);
    auto vsum = hn::Zero(d);
    for (size_t i = 0; i < tail; i += N) {
      const auto v = hn::Exp(d, hn::Sub(hn::LoadU(d, x.data() + i), hn::Set(d, max)));
      hn::StoreU(v, d, e.data() + i);
      vsum = hn::Add(vsum, v);
    }
    float sum = hn::GetLane(hn::SumOfLanes(d, vsum));
    for (size_t i = tail; i < n; ++i) {
      e[i] = std::exp(x[i] - max);
      sum += e[i];
    }
    for (size_t i = 0; i < n; ++i) {
      const float expect = e[i] * (1.0f / sum);
      CHECK(std::memcmp(&sm[i], &expect, sizeof(float)) == 0);
    }
    // swiglu: gate / (1 + e^-gate) · up
    const auto up = randn(n, static_cast<uint32_t>(n + 100));
    std::vector<float> out(n);
    k::Ops<k::Highway>::swiglu(out.data(), x.data(), up.data(), n);
    for (size_t i = tail; i < n; ++i) {
      const float expect = x[i] / (1.0f + std::exp(-x[i])) * up[i];
      CHECK(std::memcmp(&out[i], &expect, sizeof(float)) == 0);
    }
  }
#else
  MESSAGE("skipped: the vector exp needs an FMA target and glibc 2.28+ to compare with std::exp bit for bit");
#endif
}

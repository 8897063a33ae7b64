// The blocked GEMM against its scalar twin gemm_ref: every transpose case a
// linear layer uses, shapes that leave partial register tiles, partial tiles
// of the cache blocking and several depth steps, leading dimensions wider
// than the matrices, accumulation into C, and bits that do not depend on the
// executor.
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <doctest/doctest.h>

#include "jielong/kernels/gemm.hpp"
#include "jielong/kernels/kernels.hpp"
#include "support/random.hpp"
#include "support/strided_threads.hpp"

using namespace jielong;
namespace k = jielong::kernels;

namespace {

// Awkward sizes: 1, below and above the register tile (6 or 12 rows × 16
// or 32 columns), one more than the row tile (120), above the column tile
// (256) and the depth step (256).
constexpr size_t kDims[] = {1, 3, 11, 13, 33, 65, 121, 300};

struct Problem {
  size_t m, n, k, lda, ldb, ldc;
  k::Trans ta, tb;
  std::vector<float> a, b, c;
};

Problem make(k::Trans ta, k::Trans tb, size_t m, size_t n, size_t kk, bool small_ints, uint32_t seed) {
  Problem p{m, n, kk, 0, 0, 0, ta, tb, {}, {}, {}};
  // Padded leading dimensions: the kernel must use them, not the shape.
  p.lda = (ta == k::Trans::no ? kk : m) + 3;
  p.ldb = (tb == k::Trans::no ? n : kk) + 5;
  p.ldc = n + 2;
  const size_t a_rows = ta == k::Trans::no ? m : kk, b_rows = tb == k::Trans::no ? kk : n;
  if (small_ints) {
    std::mt19937 rng(seed);
    auto fill = [&](std::vector<float>& v, size_t len) {
      v.resize(len);
      for (float& x : v) x = static_cast<float>(static_cast<int>(rng() % 9) - 4);
    };
    fill(p.a, a_rows * p.lda);
    fill(p.b, b_rows * p.ldb);
    fill(p.c, m * p.ldc);
  } else {
    p.a = test::randn(a_rows * p.lda, seed);
    p.b = test::randn(b_rows * p.ldb, seed + 1);
    p.c = test::randn(m * p.ldc, seed + 2);
  }
  return p;
}

template <class B = k::Best>
std::vector<float> run(const Problem& p, bool accumulate, Executor& ex) {
  std::vector<float> c = p.c;
  k::gemm<B>(p.ta, p.tb, p.m, p.n, p.k, p.a.data(), p.lda, p.b.data(), p.ldb, c.data(), p.ldc, accumulate, ex);
  return c;
}
std::vector<float> run_ref(const Problem& p, bool accumulate) {
  std::vector<float> c = p.c;
  k::gemm_ref(p.ta, p.tb, p.m, p.n, p.k, p.a.data(), p.lda, p.b.data(), p.ldb, c.data(), p.ldc, accumulate);
  return c;
}

const k::Trans kCases[][2] = {{k::Trans::no, k::Trans::yes}, {k::Trans::no, k::Trans::no},
                              {k::Trans::yes, k::Trans::no}, {k::Trans::yes, k::Trans::yes}};

}  // namespace

// Integers in [-4, 4] with k <= 300: every partial sum is an integer below
// 2^24, so float arithmetic is exact in any order and the blocked product
// must equal the definition bit for bit. A wrong index, a missed or doubled
// term, or a padding column leaking into C cannot hide behind a tolerance.
TEST_CASE("gemm equals gemm_ref exactly on small integers, every transpose case and odd shape") {
  SerialExecutor serial;
  uint32_t seed = 1;
  for (const auto& tt : kCases)
    for (size_t m : kDims)
      for (size_t n : kDims)
        for (size_t kk : {size_t{1}, size_t{7}, size_t{256}, size_t{300}})
          for (bool acc : {false, true}) {
            CAPTURE(static_cast<int>(tt[0]));
            CAPTURE(static_cast<int>(tt[1]));
            CAPTURE(m);
            CAPTURE(n);
            CAPTURE(kk);
            CAPTURE(acc);
            const Problem p = make(tt[0], tt[1], m, n, kk, true, seed++);
            const std::vector<float> c = run(p, acc, serial), ref = run_ref(p, acc);
            size_t bad = 0;
            for (size_t i = 0; i < c.size(); ++i) bad += c[i] != ref[i];  // includes the ldc padding: untouched
            CHECK(bad == 0);
          }
}

// Normal values: the blocked path sums in a different order (depth steps of
// 256, added into C), so compare each result with the exact (double) value:
// a float dot of length k is within k·2⁻²⁴·Σ|a·b| of it (the textbook bound
// γ_k), for both orders.
TEST_CASE("gemm is within the float summation bound of the exact product on normal values") {
  SerialExecutor serial;
  uint32_t seed = 100;
  for (const auto& tt : kCases)
    for (size_t m : {size_t{5}, size_t{121}, size_t{130}})
      for (size_t n : {size_t{17}, size_t{64}, size_t{300}})
        for (size_t kk : {size_t{3}, size_t{513}}) {
          const Problem p = make(tt[0], tt[1], m, n, kk, false, seed++);
          const std::vector<float> c = run(p, true, serial);
          double worst = 0;  // the largest error as a fraction of its bound
          for (size_t i = 0; i < m; ++i)
            for (size_t j = 0; j < n; ++j) {
              double exact = p.c[i * p.ldc + j], mag = std::fabs(exact);
              for (size_t q = 0; q < kk; ++q) {
                const double av = tt[0] == k::Trans::no ? p.a[i * p.lda + q] : p.a[q * p.lda + i];
                const double bv = tt[1] == k::Trans::no ? p.b[q * p.ldb + j] : p.b[j * p.ldb + q];
                exact += av * bv;
                mag += std::fabs(av * bv);
              }
              const double bound = static_cast<double>(kk + 1) * 0x1p-24 * mag;
              worst = std::max(worst, std::fabs(c[i * p.ldc + j] - exact) / bound);
            }
          CAPTURE(m);
          CAPTURE(n);
          CAPTURE(kk);
          CHECK(worst <= 1.0);
        }
}

TEST_CASE("gemm gives the same bits on any executor") {
  SerialExecutor serial;
  ThreadPool pool2(2);
  test::StridedThreads strided(3);
  for (const auto& tt : kCases) {
    const Problem p = make(tt[0], tt[1], 257, 301, 530, false, 7);
    const std::vector<float> c1 = run(p, true, serial), c2 = run(p, true, pool2), c3 = run(p, true, strided);
    CHECK(c1 == c2);
    CHECK(c1 == c3);
  }
}

TEST_CASE("gemm with k = 0 writes zeros, or leaves C when accumulating") {
  SerialExecutor serial;
  std::vector<float> c = {1, 2, 3, 4}, a, b;
  k::gemm<k::Best>(k::Trans::no, k::Trans::yes, 2, 2, 0, a.data(), 0, b.data(), 0, c.data(), 2, true, serial);
  CHECK(c == std::vector<float>{1, 2, 3, 4});
  k::gemm<k::Best>(k::Trans::no, k::Trans::yes, 2, 2, 0, a.data(), 0, b.data(), 0, c.data(), 2, false, serial);
  CHECK(c == std::vector<float>{0, 0, 0, 0});
}

TEST_CASE("gemm on Scalar is gemm_ref") {
  SerialExecutor serial;
  ThreadPool pool2(2);
  const Problem p = make(k::Trans::yes, k::Trans::no, 37, 29, 41, false, 9);
  std::vector<float> c = p.c;
  k::gemm<k::Scalar>(p.ta, p.tb, p.m, p.n, p.k, p.a.data(), p.lda, p.b.data(), p.ldb, c.data(), p.ldc, false, pool2);
  CHECK(c == run_ref(p, false));
}

// bf16 products (Avx512Bf16). Small integers are exact in bf16 (8
// significant bits), so on them the bf16 path must also equal the definition
// bit for bit, odd depths included (the last pair padded with a zero).
TEST_CASE("gemm on Avx512Bf16 equals gemm_ref exactly on small integers") {
  if (!k::bf16_available()) {
    MESSAGE("skipped: this build or CPU has no AVX512_BF16");
    return;
  }
  SerialExecutor serial;
  uint32_t seed = 500;
  for (const auto& tt : kCases)
    for (size_t m : {size_t{1}, size_t{13}, size_t{121}})
      for (size_t n : {size_t{3}, size_t{33}, size_t{300}})
        for (size_t kk : {size_t{1}, size_t{7}, size_t{257}, size_t{300}}) {
          CAPTURE(m);
          CAPTURE(n);
          CAPTURE(kk);
          const Problem p = make(tt[0], tt[1], m, n, kk, true, seed++);
          CHECK(run<k::Avx512Bf16>(p, true, serial) == run_ref(p, true));
        }
}

// On normal values each input is rounded to bf16 (relative error ≤ 2⁻⁹), so
// each product is within ~2⁻⁸ of its f32 value; with the f32 sum's γ_k the
// result is within (2⁻⁸ + (k+1)·2⁻²⁴)·Σ|a·b| of the exact product.
TEST_CASE("gemm on Avx512Bf16 is within the bf16 rounding bound on normal values") {
  if (!k::bf16_available()) {
    MESSAGE("skipped: this build or CPU has no AVX512_BF16");
    return;
  }
  SerialExecutor serial;
  ThreadPool pool2(2);
  double worst_rel = 0;
  for (const auto& tt : kCases) {
    const Problem p = make(tt[0], tt[1], 67, 130, 301, false, 900);
    const std::vector<float> c = run<k::Avx512Bf16>(p, false, serial);
    CHECK(run<k::Avx512Bf16>(p, false, pool2) == c);
    double worst = 0;
    for (size_t i = 0; i < p.m; ++i)
      for (size_t j = 0; j < p.n; ++j) {
        double exact = 0, mag = 0;
        for (size_t q = 0; q < p.k; ++q) {
          const double av = tt[0] == k::Trans::no ? p.a[i * p.lda + q] : p.a[q * p.lda + i];
          const double bv = tt[1] == k::Trans::no ? p.b[q * p.ldb + j] : p.b[j * p.ldb + q];
          exact += av * bv;
          mag += std::fabs(av * bv);
        }
        const double bound = (0x1p-8 + static_cast<double>(p.k + 1) * 0x1p-24) * mag;
        worst = std::max(worst, std::fabs(c[i * p.ldc + j] - exact) / bound);
        worst_rel = std::max(worst_rel, std::fabs(c[i * p.ldc + j] - exact) / mag);
      }
    CHECK(worst <= 1.0);
  }
  MESSAGE("bf16 products: largest error " << worst_rel << " of sum |a*b| (bound 2^-8 = 0.0039)");
}

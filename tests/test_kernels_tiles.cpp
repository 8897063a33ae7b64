// The batched matmul (prefill) on the shapes the engine really runs: row
// counts that span several parallel tasks and leave partial register tiles,
// token counts on both sides of the 4-token tile (1, 2, 3, 4, 7, 8, 9, 13),
// and the shared model's own Q8_0/Q4_0 tensors against an exact (double)
// evaluation of the integer block sums.
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "jielong/io/gguf.hpp"
#include "jielong/kernels/kernels.hpp"
#include "support/random.hpp"
#include "support/shared_matrices.hpp"

using namespace jielong;
namespace k = jielong::kernels;

namespace {

constexpr size_t kTokenCounts[] = {1, 2, 3, 4, 7, 8, 9, 13};

using test::randn;

// Exact Σ_blocks d_w·d_x·Σ q_w·q_x for a Q8_0/Q4_0 row against one quantized
// activation row, and Σ |each block's term| (the scale of float rounding).
struct Exact {
  double value = 0, magnitude = 0;
};
Exact exact_row(DType t, const void* wrow, const k::ActQ8* a, size_t nb) {
  Exact e;
  for (size_t i = 0; i < nb; ++i) {
    int q[32];
    float dw;
    if (t == DType::Q8_0) {
      const auto& b = static_cast<const BlockQ8_0*>(wrow)[i];
      for (int j = 0; j < 32; ++j) q[j] = b.qs[j];
      dw = quants::h2f(b.d);
    } else {
      const auto& b = static_cast<const BlockQ4_0*>(wrow)[i];
      for (int j = 0; j < 16; ++j) {
        q[j] = (b.qs[j] & 0xF) - 8;
        q[j + 16] = (b.qs[j] >> 4) - 8;
      }
      dw = quants::h2f(b.d);
    }
    long isum = 0, iabs = 0;
    for (int j = 0; j < 32; ++j) {
      isum += q[j] * a[i].qs[j];
      iabs += std::labs(static_cast<long>(q[j]) * a[i].qs[j]);
    }
    const double d = static_cast<double>(dw) * a[i].d;
    e.value += d * static_cast<double>(isum);
    e.magnitude += std::fabs(d) * static_cast<double>(iabs);
  }
  return e;
}

// A float sum of nb block terms, each a product of three floats, over up to
// 16 lanes then a horizontal sum: at most (nb + 3 + 4)·ε of Σ|terms| apart
// from the exact value, whatever the order. Missing, doubled or misplaced
// blocks (a tile bug) are off by a whole term, far above this.
double rounding_bound(size_t nb, double magnitude) {
  return (static_cast<double>(nb) + 7.0) * 6e-8 * magnitude + 1e-30;
}

template <class B>
void check_exact(DType t, const k::WeightView& w, const std::vector<float>& x, size_t n_tokens, Executor& ex) {
  std::vector<std::byte> scratch(k::matvec_scratch_bytes(t, w.cols, n_tokens));
  std::vector<float> y(n_tokens * w.rows);
  k::matmul<B>(w, x.data(), n_tokens, y.data(), scratch, ex);
  const size_t nb = w.cols / 32;
  std::vector<k::ActQ8> act(nb);
  double worst = 0;
  for (size_t tok = 0; tok < n_tokens; ++tok) {
    k::quantize_act_q8(x.data() + tok * w.cols, act.data(), w.cols);
    for (size_t r = 0; r < w.rows; ++r) {
      const Exact e = exact_row(t, w.row(r), act.data(), nb);
      const double err = std::fabs(y[tok * w.rows + r] - e.value);
      worst = std::max(worst, err / (e.magnitude + 1e-30));
      if (err > rounding_bound(nb, e.magnitude)) {
        CAPTURE(tok);
        CAPTURE(r);
        REQUIRE(err <= rounding_bound(nb, e.magnitude));
      }
    }
  }
  (void)worst;
}

}  // namespace

TEST_CASE_TEMPLATE("Q8_0/Q4_0 matmul on the shared model's tensors equals the exact block sums", B, k::Scalar,
                   k::Xsimd, k::Highway, k::Avx512Vnni) {
  ThreadPool pool(2);
  size_t checked = 0;
  uint32_t seed = 1;
  test::for_each_shared_matrix(
      {"models/synth/synth-llama-q8_0.gguf", "models/synth/synth-llama-q4_0.gguf"},
      [](DType t) { return t == DType::Q8_0 || t == DType::Q4_0; },
      [&](const k::WeightView& w) {
        for (size_t n_tokens : kTokenCounts) {
          CAPTURE(n_tokens);
          check_exact<B>(w.type, w, randn(n_tokens * w.cols, seed++), n_tokens, pool);
          ++checked;
        }
      });
  MESSAGE(checked << " tensor x token-count cases checked");
}

// Every quantized type on shapes whose rows span several tasks and end in a
// partial tile, against Scalar, for the token counts around the tile width;
// two threads and one give the same bits.
TEST_CASE_TEMPLATE("matmul on multi-task shapes and every token count matches Scalar", B, k::Xsimd, k::Highway,
                   k::Avx512Vnni) {
  SerialExecutor serial;
  ThreadPool pool(2);
  const DType types[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
                         DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::F16};
  for (DType t : types) {
    const size_t cols = dtype_info(t).block_size == 256 ? 512 : 704;
    for (size_t rows : {size_t{257}, size_t{1031}}) {
      CAPTURE(dtype_name(t));
      CAPTURE(rows);
      const size_t rb = row_bytes(t, cols);
      std::vector<uint8_t> storage(rows * rb);
      const auto wf = randn(rows * cols, static_cast<uint32_t>(rows + cols), 0.05f);
      for (size_t r = 0; r < rows; ++r)
        REQUIRE(quants::quantize_row(t, wf.data() + r * cols, storage.data() + r * rb, cols).is_ok());
      const k::WeightView w{t, storage.data(), rows, cols, rb};
      std::vector<float> deq(cols);
      for (size_t n_tokens : kTokenCounts) {
        CAPTURE(n_tokens);
        const auto x = randn(n_tokens * cols, static_cast<uint32_t>(n_tokens * 7 + rows));
        std::vector<std::byte> scratch(k::matvec_scratch_bytes(t, cols, n_tokens) + 64);
        std::vector<float> ref(n_tokens * rows), y(n_tokens * rows), y1(n_tokens * rows);
        k::matmul<k::Scalar>(w, x.data(), n_tokens, ref.data(), scratch, serial);
        k::matmul<B>(w, x.data(), n_tokens, y.data(), scratch, pool);
        k::matmul<B>(w, x.data(), n_tokens, y1.data(), scratch, serial);
        REQUIRE(std::memcmp(y.data(), y1.data(), y.size() * sizeof(float)) == 0);
        for (size_t r = 0; r < rows; ++r) {
          quants::dequantize_row(t, w.row(r), deq.data(), cols);
          for (size_t tok = 0; tok < n_tokens; ++tok) {
            // Integer block sums are exact in every backend, only the float
            // sums over blocks and lanes are reordered: 1e-5 of Σ|w·x| (as in
            // test_kernels) is far below one missing or misplaced block.
            double mag = 0;
            for (size_t i = 0; i < cols; ++i) mag += std::fabs(static_cast<double>(deq[i]) * x[tok * cols + i]);
            const double err = std::fabs(y[tok * rows + r] - ref[tok * rows + r]);
            if (err > 1e-5 * mag) {
              CAPTURE(r);
              CAPTURE(tok);
              REQUIRE(err <= 1e-5 * mag);
            }
          }
        }
      }
    }
  }
}

// Panels (kernels/panels.hpp): Q4_0/Q8_0/Q4_K/F32 matrices repacked 16 rows at a
// time. Packing must change no value, so every backend's matmul on the packed
// copy is checked against a definition computed from the original row-major
// blocks: per row, each block's exact integer sum, then in block order
// sum = fma(d_w·d_x, (float)isum, sum) (Q4_K: the super-block's exact
// Σ sc·isum and Σ m·bsum, sum = fma(d_x, fma(-dmin, msum, d·isum), sum), as
// ggml sums a Q4_K block). The panel kernels promise exactly
// that, bit for bit; the rows after the last full panel stay row-major and
// must match the same backend on the unpacked matrix. F32 panels define each
// row's dot as four fused multiply-add chains over the columns j ≡ k (mod 4)
// then (a0 + a1) + (a2 + a3), for every row of the packed matrix (its
// row-major rows too) and any number of tokens.
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "jielong/core/memory.hpp"
#include "jielong/io/gguf.hpp"
#include "jielong/kernels/kernels.hpp"
#include "support/random.hpp"
#include "support/shared_matrices.hpp"

using namespace jielong;
namespace k = jielong::kernels;

namespace {

using test::randn;

// The definition, from a row-major Q8_0/Q4_0 row (independent of the packing).
float definition(DType t, const void* wrow, const k::ActQ8* a, size_t nb) {
  float sum = 0.0f;
  for (size_t i = 0; i < nb; ++i) {
    int q[32];
    uint16_t d;
    if (t == DType::Q8_0) {
      const auto& b = static_cast<const BlockQ8_0*>(wrow)[i];
      for (int j = 0; j < 32; ++j) q[j] = b.qs[j];
      d = b.d;
    } else {
      const auto& b = static_cast<const BlockQ4_0*>(wrow)[i];
      for (int j = 0; j < 16; ++j) {
        q[j] = (b.qs[j] & 0xF) - 8;
        q[j + 16] = (b.qs[j] >> 4) - 8;
      }
      d = b.d;
    }
    int32_t isum = 0;
    for (int j = 0; j < 32; ++j) isum += q[j] * a[i].qs[j];
    sum = std::fma(quants::h2f(d) * a[i].d, static_cast<float>(isum), sum);
  }
  return sum;
}

float definition_q4k(const void* wrow, const k::ActQ8K* a, size_t nb) {
  float sum = 0.0f;
  for (size_t i = 0; i < nb; ++i) {
    const auto& b = static_cast<const BlockQ4_K*>(wrow)[i];
    int32_t isum = 0, msum = 0;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      quants::get_scale_min_k4(j, b.scales, sc, m);
      int32_t sub = 0;
      for (int l = 0; l < 32; ++l) {  // element 32j+l: byte 32(j/2)+l, low nibble for even j
        const uint8_t byte = b.qs[32 * (j / 2) + l];
        sub += (j % 2 ? byte >> 4 : byte & 0xF) * a[i].qs[32 * j + l];
      }
      isum += sc * sub;
      msum += m * (a[i].bsums[2 * j] + a[i].bsums[2 * j + 1]);
    }
    const float d = quants::h2f(b.d), dmin = quants::h2f(b.dmin);
    sum = std::fma(a[i].d, std::fma(-dmin, static_cast<float>(msum), d * static_cast<float>(isum)), sum);
  }
  return sum;
}

// The F32 definition, from a row-major row.
float definition_f32(const float* w, const float* x, size_t n) {
  float a[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (size_t j = 0; j < n; ++j) a[j % 4] = std::fma(x[j], w[j], a[j % 4]);
  return (a[0] + a[1]) + (a[2] + a[3]);
}

struct Packed {
  AlignedBuffer bytes;
  k::WeightView view;
};
Packed pack(const k::WeightView& w) {
  Packed p{AlignedBuffer(w.rows * w.row_stride), w};
  p.view.data = p.bytes.data();
  p.view.panel_rows = k::panels::pack_matrix(w.type, w.data, w.rows, w.cols, p.bytes.data());
  return p;
}

// matmul<B> on the packed copy of w: panel rows equal the definition bit for
// bit, the row-major rest equals matmul<B> on w; two threads and one agree.
// Returns the number of values compared.
template <class B>
size_t check(const k::WeightView& w, const std::vector<float>& x, size_t n_tokens, Executor& pool,
             Executor& serial) {
  const Packed p = pack(w);
  REQUIRE(p.view.panel_rows == w.rows / 16 * 16);
  std::vector<std::byte> scratch(k::matvec_scratch_bytes(w.type, w.cols, n_tokens));
  std::vector<float> y(n_tokens * w.rows), y1(y.size()), plain(y.size());
  k::matmul<B>(p.view, x.data(), n_tokens, y.data(), scratch, pool);
  k::matmul<B>(p.view, x.data(), n_tokens, y1.data(), scratch, serial);
  k::matmul<B>(w, x.data(), n_tokens, plain.data(), scratch, serial);
  REQUIRE(std::memcmp(y.data(), y1.data(), y.size() * sizeof(float)) == 0);
  const bool k4 = w.type == DType::Q4_K, f32 = w.type == DType::F32;
  const size_t nb = w.cols / (k4 ? 256 : 32);
  std::vector<k::ActQ8> act(nb);
  std::vector<k::ActQ8K> actk(nb);
  size_t compared = 0;
  for (size_t tok = 0; tok < n_tokens; ++tok) {
    const float* xt = x.data() + tok * w.cols;
    if (k4)
      k::quantize_act_q8k(xt, actk.data(), w.cols);
    else if (!f32)
      k::quantize_act_q8(xt, act.data(), w.cols);
    for (size_t r = 0; r < w.rows; ++r) {
      const float got = y[tok * w.rows + r];
      const auto* wr = static_cast<const float*>(w.row(r));
      const float want = f32 && p.view.panel_rows ? definition_f32(wr, xt, w.cols)  // (no panel: not packed)
                         : r >= p.view.panel_rows ? plain[tok * w.rows + r]
                         : k4                     ? definition_q4k(w.row(r), actk.data(), nb)
                                                  : definition(w.type, w.row(r), act.data(), nb);
      if (f32) {  // and it is a dot product: within float rounding of the exact sum
        double exact = 0, magnitude = 0;
        for (size_t j = 0; j < w.cols; ++j) {
          exact += static_cast<double>(xt[j]) * wr[j];
          magnitude += std::fabs(static_cast<double>(xt[j]) * wr[j]);
        }
        REQUIRE(std::fabs(got - exact) <= 1e-6 * magnitude * std::sqrt(static_cast<double>(w.cols)) + 1e-30);
      }
      if (std::memcmp(&got, &want, sizeof got) != 0) {
        CAPTURE(tok);
        CAPTURE(r);
        CAPTURE(p.view.panel_rows);
        REQUIRE(got == want);
      }
      ++compared;
    }
  }
  return compared;
}

}  // namespace

TEST_CASE("packing moves every quant and scale once") {
  for (DType t : {DType::Q8_0, DType::Q4_0}) {
    const size_t rows = 48, cols = 96, rb = row_bytes(t, cols);
    std::vector<uint8_t> src(rows * rb), dst(rows * rb);
    std::mt19937 rng(7);
    for (auto& b : src) b = static_cast<uint8_t>(rng());
    REQUIRE(k::panels::pack_matrix(t, src.data(), rows, cols, dst.data()) == rows);
    // Every byte of the packed matrix comes from one source byte: the
    // multisets of scale bytes and of quant bytes (Q8_0: XOR 0x80) agree.
    std::vector<int> seen(256, 0);
    for (auto b : src) ++seen[b];
    for (size_t i = 0; i < dst.size(); ++i) {
      const size_t rec = t == DType::Q8_0 ? 16 * sizeof(BlockQ8_0) : 16 * sizeof(BlockQ4_0);
      const bool quant = i % rec >= 32;
      --seen[quant && t == DType::Q8_0 ? (dst[i] ^ 0x80) : dst[i]];
    }
    for (int c : seen) REQUIRE(c == 0);
    // Row 5, block 2, element 9 and 25, read back through the layout.
    const size_t rec = t == DType::Q8_0 ? 16 * sizeof(BlockQ8_0) : 16 * sizeof(BlockQ4_0);
    const uint8_t* r2 = dst.data() + 2 * rec;
    if (t == DType::Q8_0) {
      const auto& b = reinterpret_cast<const BlockQ8_0*>(src.data() + 5 * rb)[2];
      CHECK(r2[32 + 2 * 64 + 5 * 4 + 1] == (static_cast<uint8_t>(b.qs[9]) ^ 0x80));
      CHECK(r2[32 + 6 * 64 + 5 * 4 + 1] == (static_cast<uint8_t>(b.qs[25]) ^ 0x80));
      uint16_t d;
      std::memcpy(&d, r2 + 10, 2);
      CHECK(d == b.d);
    } else {
      const auto& b = reinterpret_cast<const BlockQ4_0*>(src.data() + 5 * rb)[2];
      CHECK(r2[32 + 2 * 64 + 5 * 4 + 1] == b.qs[9]);  // elements 9 (low) and 25 (high)
      uint16_t d;
      std::memcpy(&d, r2 + 10, 2);
      CHECK(d == b.d);
    }
  }
}

TEST_CASE("a packed row reads back as the file's bytes and values (embedding lookups into a tied classifier)") {
  // Random bytes in every field (Q4_K scales and half-float scales
  // included: unpacking moves bytes, it interprets none), rows 0..r-1 of
  // panels and a row-major tail, read back whole and by prefixes.
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::F32}) {
    CAPTURE(dtype_name(t));
    const size_t rows = 37, cols = t == DType::Q4_K ? 512 : 96, rb = row_bytes(t, cols);
    const size_t bs = dtype_info(t).block_size, bb = dtype_info(t).block_bytes;
    std::vector<uint8_t> src(rows * rb);
    std::mt19937 rng(11);
    for (auto& b : src) b = static_cast<uint8_t>(rng());
    if (t == DType::F32) {  // random floats, no NaN
      const auto f = randn(rows * cols, 5);
      std::memcpy(src.data(), f.data(), src.size());
    }
    for (size_t blk = 0; t != DType::F32 && blk < src.size() / bb; ++blk) {  // finite scales, so that values compare with ==
      uint8_t* b = src.data() + blk * bb;
      b[1] &= 0x3B;
      if (t == DType::Q4_K) b[3] &= 0x3B;
    }
    const k::WeightView w{t, src.data(), rows, cols, rb};
    const Packed p = pack(w);
    REQUIRE(p.view.panel_rows == 32);
    std::vector<uint8_t> got(rb);
    std::vector<float> want_f(cols), got_f(cols);
    for (size_t r = 0; r < rows; ++r) {
      CAPTURE(r);
      k::panels::copy_row_prefix(p.view, r, rb, got.data());
      CHECK(std::memcmp(got.data(), src.data() + r * rb, rb) == 0);
      std::vector<uint8_t> head(bb + 3, 0xAB);  // a prefix that ends inside a block writes no further
      k::panels::copy_row_prefix(p.view, r, bb + 1, head.data());
      CHECK(std::memcmp(head.data(), src.data() + r * rb, bb + 1) == 0);
      CHECK(head[bb + 1] == 0xAB);
      k::dequantize_row<k::Scalar>(t, src.data() + r * rb, want_f.data(), cols);
      k::dequantize_view_row<k::Best>(p.view, r, got_f.data());
      CHECK(std::memcmp(got_f.data(), want_f.data(), cols * sizeof(float)) == 0);
      if (r < p.view.panel_rows)
        for (size_t b = 0; b < cols / bs; ++b) {
          std::vector<uint8_t> one(bb);
          k::panels::unpack_block(p.view, r, b, one.data());
          REQUIRE(std::memcmp(one.data(), src.data() + r * rb + b * bb, bb) == 0);
        }
    }
  }
}

TEST_CASE_TEMPLATE("panel matmul equals the definition bit for bit", B, k::Scalar, k::Xsimd, k::Highway,
                   k::Avx512Vnni) {
  SerialExecutor serial;
  ThreadPool pool(2);
  size_t compared = 0;
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_K}) {
    // 16 and 48: whole panels; 17, 257: one row-major row after them; 15:
    // no panel at all; 1040 rows span several tasks.
    for (size_t rows : {size_t{15}, size_t{16}, size_t{17}, size_t{48}, size_t{257}, size_t{1040}}) {
      for (size_t cols : {size_t{32}, size_t{64}, size_t{256}, size_t{512}, size_t{704}}) {
        if (cols % dtype_info(t).block_size != 0) continue;
        if (rows == 1040 && cols != 704 && cols != 512) continue;
        CAPTURE(dtype_name(t));
        CAPTURE(rows);
        CAPTURE(cols);
        const size_t rb = row_bytes(t, cols);
        std::vector<uint8_t> storage(rows * rb);
        const auto wf = randn(rows * cols, static_cast<uint32_t>(rows * 31 + cols), 0.05f);
        for (size_t r = 0; r < rows; ++r)
          REQUIRE(quants::quantize_row(t, wf.data() + r * cols, storage.data() + r * rb, cols).is_ok());
        const k::WeightView w{t, storage.data(), rows, cols, rb};
        for (size_t n_tokens : {1, 2, 3, 4, 5, 8, 9, 13, 16, 17}) {
          CAPTURE(n_tokens);
          compared += check<B>(w, randn(n_tokens * cols, static_cast<uint32_t>(n_tokens + rows)), n_tokens, pool,
                               serial);
        }
      }
    }
  }
  // F32: columns that leave 0..3 over after the chains' groups of four,
  // and 172 (the feed-forward width of llama2.c's tiny model).
  for (size_t rows : {size_t{15}, size_t{16}, size_t{17}, size_t{44}, size_t{172}, size_t{1040}}) {
    for (size_t cols : {size_t{1}, size_t{3}, size_t{63}, size_t{64}, size_t{65}, size_t{172}, size_t{257}}) {
      if (rows == 1040 && cols < 64) continue;
      CAPTURE(rows);
      CAPTURE(cols);
      const auto wf = randn(rows * cols, static_cast<uint32_t>(rows * 17 + cols), 0.05f);
      const k::WeightView w{DType::F32, wf.data(), rows, cols, cols * sizeof(float)};
      for (size_t n_tokens : {1, 2, 4, 5, 9}) {
        CAPTURE(n_tokens);
        compared += check<B>(w, randn(n_tokens * cols, static_cast<uint32_t>(n_tokens + rows)), n_tokens, pool,
                             serial);
      }
    }
  }
  MESSAGE(compared << " values compared");
}

TEST_CASE("panel matmul on the shared models' Q8_0/Q4_0/Q4_K/F32 tensors equals the definition") {
  SerialExecutor serial;
  ThreadPool pool(2);
  size_t compared = 0;
  uint32_t seed = 100;
  test::for_each_shared_matrix(
      {"models/synth/synth-llama-q8_0.gguf", "models/synth/synth-llama-q4_0.gguf",
       "models/synth/synth-llama-q4_k_m.gguf", "models/synth/synth-llama-f32.gguf",
       "models/stories260K/stories260K.gguf"},
      k::panels::supported, [&](const k::WeightView& w) {
        for (size_t n_tokens : {1, 5, 9})
          compared += check<k::Best>(w, randn(n_tokens * w.cols, seed++), n_tokens, pool, serial);
      });
  MESSAGE(compared << " values compared");
}

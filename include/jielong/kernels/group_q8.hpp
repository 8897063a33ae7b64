// llama2.c's v2 ("ak42") weights, multiplied exactly as its runq.c does: the
// activation row is quantized into the weights' groups (scale = max|x| / 127,
// q = round(x / scale)), each group's int8 dot product is exact, and the
// group results are summed in order as
//   y[r] += float(Σ_k xq·wq) · w_scale · x_scale.
// The float order is the format's definition, so there is one implementation
// for every backend; its speed matters little (the format exists for small
// llama2.c models).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

#include "jielong/core/executor.hpp"
#include "jielong/core/quants.hpp"
#include "jielong/kernels/backend.hpp"

namespace jielong::kernels::group_q8 {

// Scratch of one activation row: cols int8 values, then up to cols f32 scales
// (a group may be as small as one value), 4-byte aligned.
constexpr size_t act_row_bytes(size_t cols) noexcept { return (cols + 3) / 4 * 4 + cols * sizeof(float); }

inline void quantize(const float* x, size_t n, size_t group, int8_t* q, float* scales) noexcept {
  for (size_t g = 0; g < n / group; ++g) {
    const float* xg = x + g * group;
    float wmax = 0.0f;
    for (size_t i = 0; i < group; ++i) wmax = std::fabs(xg[i]) > wmax ? std::fabs(xg[i]) : wmax;
    const float scale = wmax / 127.0f;
    scales[g] = scale;
    // runq.c divides by a zero scale (an all-zero group) and gets NaN; every
    // value of such a group is 0.
    for (size_t i = 0; i < group; ++i)
      q[g * group + i] = scale == 0.0f ? int8_t{0} : quants::saturate_i8(std::round(xg[i] / scale));
  }
}

// Y = W X; w.type == I8, w.group > 0, w.cols a multiple of w.group.
inline void matmul(const WeightView& w, const float* x, size_t n_tokens, float* y, std::span<std::byte> scratch,
                   Executor& ex) noexcept {
  const size_t cols = w.cols, G = w.group, row_bytes = act_row_bytes(cols);
  const bool ok = G > 0 && w.group_scales != nullptr && cols % G == 0 && scratch.size() >= row_bytes * n_tokens;
  if (!ok) {
    for (size_t i = 0; i < n_tokens * w.rows; ++i) y[i] = 0.0f;
    return;
  }
  auto xq = [&](size_t t) { return reinterpret_cast<int8_t*>(scratch.data() + t * row_bytes); };
  auto xs = [&](size_t t) { return reinterpret_cast<float*>(scratch.data() + t * row_bytes + (cols + 3) / 4 * 4); };
  for (size_t t = 0; t < n_tokens; ++t) quantize(x + t * cols, cols, G, xq(t), xs(t));
  const auto* wq = static_cast<const int8_t*>(w.data);
  parallel_for_work(ex, w.rows, 16, w.rows * cols * n_tokens, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      const int8_t* wr = wq + r * w.row_stride;
      const float* ws = w.group_scales + r * (cols / G);
      for (size_t t = 0; t < n_tokens; ++t) {
        const int8_t* q = xq(t);
        const float* s = xs(t);
        float val = 0.0f;
        for (size_t g = 0; g < cols / G; ++g) {
          int32_t ival = 0;
          for (size_t k = 0; k < G; ++k) ival += int32_t{q[g * G + k]} * int32_t{wr[g * G + k]};
          // runq.c rounds the product before the add; left free, g++ fuses the two
          // into one FMA or not depending on the -march it tunes for.
          val += quants::mul_rounded(static_cast<float>(ival) * ws[g], s[g]);
        }
        y[t * w.rows + r] = val;
      }
    }
  });
}

}  // namespace jielong::kernels::group_q8

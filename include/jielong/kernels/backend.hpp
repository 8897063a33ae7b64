// Backend tags and the per-backend operation table. Model code names a
// backend once (usually kernels::Best) and every op it calls is the template
// instantiated for that backend: dispatch happens at the top, never per element.
#pragma once

#include <cstddef>
#include <cstdint>

#include "jielong/core/dtype.hpp"

namespace jielong::kernels {

struct Scalar {};   // the oracle: plain loops, never optimised
struct Xsimd {};    // xsimd, default architecture of the compiler's target
struct Highway {};  // Highway, static dispatch to the compiler's target
// AVX-512 VNNI int8 dot products (vpdpbusd) for the quantized matvec/matmul,
// AVX-512 activation quantization, f16 cache rows and small-head attention,
// Highway for everything else. Only for a CPU where vnni_available() (the
// one run-time check, made where a backend is chosen).
struct Avx512Vnni {};
// Avx512Vnni's ops, and bf16 products with f32 sums (vdpbf16ps) in
// training's matrix products (kernels/gemm.hpp): inputs keep 8 significant
// bits, so a product is within 2⁻⁸ relative of f32's. Only for a CPU where
// bf16_available(), asked where a backend is chosen (kernels/avx512_bf16.hpp).
struct Avx512Bf16 {};

// A weight matrix: `rows` rows of `cols` elements of `type`, row r starting at
// data + r * row_stride bytes (row_stride >= row_bytes(type, cols)).
// type I8 with group > 0 is llama2.c's v2 format: contiguous int8 rows
// (row_stride == cols), one f32 scale per `group` values in group_scales.
struct WeightView {
  DType type;
  const void* data;
  size_t rows;
  size_t cols;
  size_t row_stride;
  const float* group_scales = nullptr;  // [rows * cols / group]
  uint32_t group = 0;
  // Rows [0, panel_rows) are repacked into panels of 16 (kernels/panels.hpp;
  // Q4_0, Q8_0, Q4_K, F32); row(r) is meaningful for r >= panel_rows.
  size_t panel_rows = 0;

  const void* row(size_t r) const noexcept { return static_cast<const std::byte*>(data) + r * row_stride; }
};

// y[t * y_stride + r] = row_dot(row r, token t) for r in [r0, r1), t in [0, n_tokens).
template <class RowDot>
void rows_dot_each(const WeightView& w, size_t r0, size_t r1, const void* act, size_t act_stride, size_t n_tokens,
                   float* y, size_t y_stride, RowDot row_dot) noexcept {
  for (size_t r = r0; r < r1; ++r)
    for (size_t t = 0; t < n_tokens; ++t)
      y[t * y_stride + r] = row_dot(w.type, w.row(r), static_cast<const std::byte*>(act) + t * act_stride, w.cols);
}

// Each backend specialises Ops<B> with the same static member functions; see
// scalar.hpp for the full list with the reference semantics. A few ops are
// optional (panel_rows_dot, quantize_act_q8, f32_to_f16_row, f16_round_trip,
// small_head_scores, small_head_mix): a backend that has its own kernel
// defines the member, and kernels.hpp runs the portable definition for the
// others. No other code chooses an instruction set.
template <class B>
struct Ops;

enum class RopeLayout {
  normal,  // rotate adjacent pairs (x[2i], x[2i+1]) — llama
  neox,    // rotate halves (x[i], x[i + rot_dim/2]) — qwen2, gpt-neox
};

}  // namespace jielong::kernels

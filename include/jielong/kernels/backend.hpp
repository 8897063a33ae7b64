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
// Highway for everything else. Checked at run time: on a CPU without VNNI
// the quantized paths fall back to Highway's.
struct Avx512Vnni {};

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

  const void* row(size_t r) const noexcept { return static_cast<const std::byte*>(data) + r * row_stride; }
};

// Each backend specialises Ops<B> with the same static member functions; see
// scalar.hpp for the full list with the reference semantics.
template <class B>
struct Ops;

enum class RopeLayout {
  normal,  // rotate adjacent pairs (x[2i], x[2i+1]) — llama
  neox,    // rotate halves (x[i], x[i + rot_dim/2]) — qwen2, gpt-neox
};

}  // namespace jielong::kernels

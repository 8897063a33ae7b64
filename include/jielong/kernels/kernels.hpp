// The kernels' front door: every numeric op the engine needs, as templates
// over a backend tag (Scalar, Xsimd, Highway, Avx512Vnni, Avx512Bf16; Best = the fastest
// on the compiler's target). See scalar.hpp for the reference semantics.
//
//   kernels::matvec<kernels::Best>(w, x, y, scratch, pool);
//
// Quantized weights: matvec/matmul first quantize x to 8 bits (q8_0-style
// blocks of 32 for Q4_0…Q8_0, q8_K blocks of 256 for the k-quants) into the
// caller's scratch, then use integer dot products, as ggml does. Rows are cut
// into chunks whose size depends only on the shape, and each output element
// is computed by exactly one task in a fixed order, so results are
// bit-identical for any number of threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

#include "jielong/core/dtype.hpp"
#include "jielong/core/executor.hpp"
#include "jielong/core/half.hpp"
#include "jielong/core/quants.hpp"
#include "jielong/core/status.hpp"
#include "jielong/kernels/group_q8.hpp"
#include "jielong/kernels/quantize_activation.hpp"
#include "jielong/kernels/backend.hpp"
#include "jielong/kernels/panels.hpp"
#include "jielong/kernels/scalar.hpp"
#include "jielong/kernels/small_heads.hpp"
// g++ 12 reports its own AVX-512 intrinsics (the _mm512_undefined_* idiom)
// as "used uninitialized" wherever they are inlined; the vector backends are
// full of them, so that one false positive is silenced here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "jielong/kernels/xsimd.hpp"
#include "jielong/kernels/highway.hpp"
#include "jielong/kernels/vnni.hpp"
#include "jielong/kernels/avx512_bf16.hpp"
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace jielong::kernels {

// The fastest backend of the compiler's target. Avx512Vnni runs only where
// vnni_available(): a program that may meet an older CPU than it was built
// for picks Highway otherwise, as run::Session does for Backend::best.
#if JIELONG_HAVE_AVX512_VNNI
using Best = Avx512Vnni;
#else
using Best = Highway;
#endif

// Whether this build and CPU run the panel kernels (kernels/panels.hpp); on
// others panels still work, through the plain-loop definition.
inline bool panels_preferred() noexcept { return vnni_available(); }

// Weight types matvec/matmul accept.
constexpr bool matvec_supports(DType t) noexcept {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16: case DType::Q4_0: case DType::Q4_1: case DType::Q5_0:
    case DType::Q5_1: case DType::Q8_0: case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K:
    case DType::Q6_K:
      return true;
    default:
      return false;
  }
}

// Bytes of scratch matvec/matmul need for n_tokens activation rows of `cols`
// (0 for float weights). Includes slack to align the start to 64 bytes.
constexpr size_t matvec_scratch_bytes(DType t, size_t cols, size_t n_tokens = 1) noexcept {
  if (t == DType::I8) return group_q8::act_row_bytes(cols) * n_tokens + 64;  // llama2.c groups
  const size_t row = act_row_bytes(act_kind(t), cols);
  return row == 0 ? 0 : row * n_tokens + 64;
}

template <class B>
void dequantize_row(DType t, const void* src, float* dst, size_t n) noexcept {
  Ops<B>::dequantize_row(t, src, dst, n);
}

// Row r of w as w.cols floats, whichever layout the row has: a panel row
// (kernels/panels.hpp) is unpacked and dequantized a block at a time, with
// the same values as the file's row.
template <class B>
void dequantize_view_row(const WeightView& w, size_t r, float* dst) noexcept {
  if (r >= w.panel_rows) return dequantize_row<B>(w.type, w.row(r), dst, w.cols);
  if (w.type == DType::F32) return panels::copy_row_prefix(w, r, w.cols * sizeof(float), dst);
  const size_t bs = dtype_info(w.type).block_size;
  alignas(8) std::byte blk[sizeof(BlockQ4_K)];  // the largest block with panels
  for (size_t b = 0; b < w.cols / bs; ++b) {
    panels::unpack_block(w, r, b, blk);
    dequantize_row<B>(w.type, blk, dst + b * bs, bs);
  }
}

// Writes row_bytes(t, n) bytes. Every backend produces the same bytes as the
// reference quantizer (bit-exact with ggml for Q8_0/Q4_0/Q4_1/Q5_0/Q5_1).
template <class B>
Status quantize_row(DType t, const float* src, void* dst, size_t n) {
  return quants::quantize_row(t, src, dst, n);
}

template <class B>
float dot(const float* a, const float* b, size_t n) noexcept {
  return Ops<B>::dot(a, b, n);
}
template <class B>
float dot_f16(const float* a, const uint16_t* b_f16, size_t n) noexcept {
  return Ops<B>::dot_f16(a, b_f16, n);
}
template <class B>
void axpy(float a, const float* x, float* y, size_t n) noexcept {
  Ops<B>::axpy(a, x, y, n);
}
template <class B>
void axpy_f16(float a, const uint16_t* x_f16, float* y, size_t n) noexcept {
  Ops<B>::axpy_f16(a, x_f16, y, n);
}
// dst[i] = f16(src[i]), rounded to nearest even (core/half.hpp's bits).
template <class B>
void f32_to_f16_row(const float* src, uint16_t* dst, size_t n) noexcept {
  if constexpr (requires { Ops<B>::f32_to_f16_row(src, dst, n); }) Ops<B>::f32_to_f16_row(src, dst, n);
  else f32_to_fp16_row(src, dst, n);
}
// x[i] = f32(f16(x[i])): the precision a value keeps through an f16 cache.
template <class B>
void f16_round_trip(float* x, size_t n) noexcept {
  if constexpr (requires { Ops<B>::f16_round_trip(x, n); }) Ops<B>::f16_round_trip(x, n);
  else fp16_round_trip(x, n);
}
// Attention for heads narrower than a vector (small_heads.hpp), over one
// head's cache rows: out[h][j] = q[h]·K[j] for n_q query heads that read
// the same keys, and out[h][d] = Σ_j w[h][j]·V_h[j][d] for up to
// small_heads::kMaxHeads heads. Every backend gives the plain loops' bits;
// one with its own kernels (Ops<B>::small_head_scores, small_head_mix)
// runs them, the others run the plain loops.
template <class B>
void small_head_scores(const float* const* q, size_t n_q, small_heads::Rows k, size_t hd, size_t n,
                       float* const* out) noexcept {
  if constexpr (requires { Ops<B>::small_head_scores(q, n_q, k, hd, n, out); })
    Ops<B>::small_head_scores(q, n_q, k, hd, n, out);
  else
    for (size_t h = 0; h < n_q; ++h) small_heads::scores_plain(q[h], k, hd, n, out[h]);
}
template <class B>
void small_head_mix(const float* const* w, const small_heads::Rows* v, size_t n_heads, size_t hd, size_t n,
                    float* const* out) noexcept {
  JIELONG_ASSERT(n_heads <= small_heads::kMaxHeads);
  if constexpr (requires { Ops<B>::small_head_mix(w, v, n_heads, hd, n, out); })
    Ops<B>::small_head_mix(w, v, n_heads, hd, n, out);
  else
    for (size_t h = 0; h < n_heads; ++h) small_heads::mix_plain(w[h], v[h], hd, n, out[h]);
}
// out = x / sqrt(mean(x²) + eps) * weight; out may alias x.
template <class B>
void rmsnorm(float* out, const float* x, const float* weight, size_t n, float eps) noexcept {
  Ops<B>::rmsnorm(out, x, weight, n, eps);
}
// In place, max-subtracted so large logits do not overflow.
template <class B>
void softmax(float* x, size_t n) noexcept {
  Ops<B>::softmax(x, n);
}

inline constexpr size_t kMaxRopeDim = 1024;

// cos_t[i], sin_t[i] = cos, sin of the angle pos * inv_freq[i], i < rot_dim/2.
// The angles depend only on the position, so a forward pass computes them
// once per token for every layer and head (and identically for every
// backend, which keeps them comparable bit for bit on the rotation).
inline void rope_angles(float pos, const float* inv_freq, size_t rot_dim, float* cos_t, float* sin_t) noexcept {
  for (size_t i = 0; i < rot_dim / 2; ++i) {
    const float theta = pos * inv_freq[i];
    cos_t[i] = std::cos(theta);
    sin_t[i] = std::sin(theta);
  }
}
// x: [n_heads][head_dim]; rotates the first rot_dim dims of each head by the
// angles of rope_angles; other dims pass through. rot_dim must be even and
// <= head_dim.
template <class B>
void rope_rotate(float* x, size_t n_heads, size_t head_dim, size_t rot_dim, const float* cos_t, const float* sin_t,
                 RopeLayout layout) noexcept {
  JIELONG_ASSERT(rot_dim % 2 == 0 && rot_dim <= head_dim);
  Ops<B>::rope_rotate(x, n_heads, head_dim, std::min(rot_dim & ~size_t{1}, head_dim), cos_t, sin_t, layout);
}
// Both at once, for one position: the angles pos * inv_freq[i] (the model
// precomputes inv_freq from its frequency base and scaling). rot_dim must
// also be <= kMaxRopeDim.
template <class B>
void rope(float* x, size_t n_heads, size_t head_dim, size_t rot_dim, float pos, const float* inv_freq,
          RopeLayout layout) noexcept {
  JIELONG_ASSERT(rot_dim <= kMaxRopeDim);
  rot_dim = std::min(rot_dim, kMaxRopeDim);
  float cos_t[kMaxRopeDim / 2], sin_t[kMaxRopeDim / 2];
  rope_angles(pos, inv_freq, rot_dim, cos_t, sin_t);
  rope_rotate<B>(x, n_heads, head_dim, rot_dim, cos_t, sin_t, layout);
}
// out = silu(gate) * up = gate / (1 + e^-gate) * up
template <class B>
void swiglu(float* out, const float* gate, const float* up, size_t n) noexcept {
  Ops<B>::swiglu(out, gate, up, n);
}
// tanh approximation
template <class B>
void gelu(float* out, const float* x, size_t n) noexcept {
  Ops<B>::gelu(out, x, n);
}
template <class B>
void add(float* y, const float* x, size_t n) noexcept {  // y += x
  Ops<B>::add(y, x, n);
}
template <class B>
void scale(float* y, float s, size_t n) noexcept {  // y *= s
  Ops<B>::scale(y, s, n);
}
// Lowest index of the maximum; 0 for n == 0.
template <class B>
size_t argmax(const float* x, size_t n) noexcept {
  return n == 0 ? 0 : Ops<B>::argmax(x, n);
}

namespace detail {
// Rows per task: 1/16 of the matrix, kept between 32 KiB and 256 KiB of
// weights, a multiple of 16 rows (a task never splits a panel). Long
// contiguous runs per task let the hardware prefetchers stream; the size
// depends only on the shape.
inline size_t row_grain(const WeightView& w) noexcept {
  const size_t bytes = std::max<size_t>(1, row_bytes(w.type, w.cols));
  const size_t task_bytes = std::clamp<size_t>(bytes * w.rows / 16, size_t{32} << 10, size_t{256} << 10);
  const size_t g = (task_bytes + bytes - 1) / bytes;
  return (g + panels::kRows - 1) / panels::kRows * panels::kRows;
}
// Rows [r0, r1) of w's panels: the backend's kernel where it has one, the
// definition otherwise (any backend can meet a model packed for another).
template <class B>
void panel_rows_dot(const WeightView& w, size_t r0, size_t r1, const void* act, size_t act_stride, size_t n_tokens,
                    float* y, size_t y_stride) noexcept {
  if constexpr (requires { Ops<B>::panel_rows_dot(w, r0, r1, act, act_stride, n_tokens, y, y_stride); })
    Ops<B>::panel_rows_dot(w, r0, r1, act, act_stride, n_tokens, y, y_stride);
  else
    panels::rows_dot_ref(w, r0, r1, act, act_stride, n_tokens, y, y_stride);
}
// Rows [r0, r1) of w x n_tokens activation rows already in w's activation
// format: the work of one matmul task, panels and row-major rows alike. A
// packed F32 matrix has one definition for all its rows (panels.hpp), so
// its row-major rows after the last panel go to the panel kernel too.
template <class B>
void rows_dot(const WeightView& w, size_t r0, size_t r1, const void* act, size_t act_stride, size_t n_tokens,
              float* y, size_t y_stride) noexcept {
  const size_t p1 = w.type == DType::F32 && w.panel_rows > 0 ? r1 : std::min(r1, w.panel_rows);
  if (r0 < p1) panel_rows_dot<B>(w, r0, p1, act, act_stride, n_tokens, y, y_stride);
  r0 = std::max(r0, p1);
  if (r0 < r1) Ops<B>::rows_dot(w, r0, r1, act, act_stride, n_tokens, y, y_stride);
}
inline std::byte* align64(std::byte* p) noexcept {
  return reinterpret_cast<std::byte*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t{63});
}

// x: [n_tokens][cols] f32 in the activation format `kind` (quantize_activation.hpp),
// quantized into scratch (64-byte aligned) or, for ActKind::none, x itself.
// act_stride: bytes from one token's row to the next.
template <class B>
const void* quantize_acts(ActKind kind, const float* x, size_t n_tokens, size_t cols, std::span<std::byte> scratch,
                          Executor& ex, size_t& act_stride) noexcept {
  act_stride = cols * sizeof(float);
  if (kind == ActKind::none) return x;
  std::byte* base = align64(scratch.data());
  act_stride = act_row_bytes(kind, cols);
  parallel_for_work(ex, n_tokens, 8, n_tokens * cols, [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t) quantize_act<B>(kind, x + t * cols, base + t * act_stride, cols);
  });
  return base;
}
// Whether matmul accepts w with scratch for n_tokens (its checks, shared
// with matmul_same_input).
inline bool matmul_accepts(const WeightView& w, size_t n_tokens, size_t scratch_bytes) noexcept {
  const bool panels_ok = w.panel_rows == 0 || (panels::supported(w.type) && w.panel_rows % panels::kRows == 0 &&
                                                w.panel_rows <= w.rows && w.row_stride == row_bytes(w.type, w.cols));
  return matvec_supports(w.type) && row_bytes(w.type, w.cols) != 0 && panels_ok &&
         scratch_bytes >= matvec_scratch_bytes(w.type, w.cols, n_tokens);
}
}  // namespace detail

// Y = W X for a batch of tokens. x: [n_tokens][cols] f32, y: [n_tokens][rows].
// scratch: at least matvec_scratch_bytes(w.type, w.cols, n_tokens) bytes.
// w.cols must be a multiple of the type's block size and the type one that
// matvec_supports (the loader checks both); otherwise y is zero-filled.
template <class B>
void matmul(const WeightView& w, const float* x, size_t n_tokens, float* y, std::span<std::byte> scratch,
            Executor& ex) noexcept {
  if (w.type == DType::I8) return group_q8::matmul(w, x, n_tokens, y, scratch, ex);
  const bool ok = detail::matmul_accepts(w, n_tokens, scratch.size());
  JIELONG_ASSERT(ok);
  if (!ok) {
    std::fill(y, y + n_tokens * w.rows, 0.0f);
    return;
  }
  size_t act_stride;
  const void* act = detail::quantize_acts<B>(act_kind(w.type), x, n_tokens, w.cols, scratch, ex, act_stride);
  parallel_for_work(ex, w.rows, detail::row_grain(w), w.rows * w.cols * n_tokens, [&](size_t r0, size_t r1) {
    detail::rows_dot<B>(w, r0, r1, act, act_stride, n_tokens, y, w.rows);
  });
}

// y[i] = W_i X for N matrices that read the same input (Q, K and V; gate and
// up): X is quantized once and the rows of all N are shared out in one
// parallel region, one thread hand-off instead of N. Each y[i] is computed
// by the same row kernel over the same row chunks as matmul(*w[i], ...), so
// its bits are matmul's. Matrices that want different activation formats
// (or that matmul would refuse) go through matmul one by one.
template <class B, size_t N>
void matmul_same_input(const WeightView* const (&w)[N], const float* x, size_t n_tokens, float* const (&y)[N],
                       std::span<std::byte> scratch, Executor& ex) noexcept {
  const ActKind kind = act_kind(w[0]->type);
  bool fusable = true;
  for (const WeightView* wi : w)
    fusable = fusable && wi->type != DType::I8 && act_kind(wi->type) == kind && wi->cols == w[0]->cols &&
              detail::matmul_accepts(*wi, n_tokens, scratch.size());
  if (!fusable) {
    for (size_t i = 0; i < N; ++i) matmul<B>(*w[i], x, n_tokens, y[i], scratch, ex);
    return;
  }
  size_t act_stride;
  const void* act = detail::quantize_acts<B>(kind, x, n_tokens, w[0]->cols, scratch, ex, act_stride);
  size_t grain[N], first_chunk[N + 1];  // matrix i owns chunks [first_chunk[i], first_chunk[i+1])
  first_chunk[0] = 0;
  size_t work = 0;  // multiply-adds of all N
  for (size_t i = 0; i < N; ++i) {
    grain[i] = std::max<size_t>(1, detail::row_grain(*w[i]));
    first_chunk[i + 1] = first_chunk[i] + (w[i]->rows + grain[i] - 1) / grain[i];
    work += w[i]->rows * w[i]->cols * n_tokens;
  }
  parallel_for_work(ex, first_chunk[N], 1, work, [&](size_t c0, size_t c1) {
    for (size_t c = c0; c < c1; ++c) {
      size_t i = 0;
      while (c >= first_chunk[i + 1]) ++i;
      const size_t r0 = (c - first_chunk[i]) * grain[i], r1 = std::min(w[i]->rows, r0 + grain[i]);
      detail::rows_dot<B>(*w[i], r0, r1, act, act_stride, n_tokens, y[i], w[i]->rows);
    }
  });
}

// y = W x. x: [cols] f32, y: [rows].
template <class B>
void matvec(const WeightView& w, const float* x, float* y, std::span<std::byte> scratch, Executor& ex) noexcept {
  matmul<B>(w, x, 1, y, scratch, ex);
}

}  // namespace jielong::kernels

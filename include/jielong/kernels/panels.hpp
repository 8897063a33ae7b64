// Panels: Q4_0, Q8_0 and Q4_K weights repacked for the int8 kernels, and F32
// weights for the float ones. A panel is 16 consecutive rows whose blocks
// are interleaved four quants at a time, so one 64-byte load holds four
// quants of each of the 16 rows: exactly the 16 lanes of a vpdpbusd. A matvec then keeps one row per lane from the first
// block to the last and never sums across lanes, and a block's unpacking
// serves 16 rows at once instead of one (bench/README.md has the counts).
//
// The layout, for rows [0, panel_rows) of a WeightView (panel_rows a multiple
// of 16); panel p's block b is one record at
// data + p·16·row_stride + b·16·sizeof(block):
//
//   uint16_t d[16];           // the 16 rows' block scales (half floats)
//   Q8_0: uint8_t q[8][16][4] // q[s][r][k] = row r's element 4s+k, XOR 0x80 (u = q + 128)
//   Q4_0: uint8_t q[4][16][4] // q[j][r][k] = row r's qs[4j+k]: low nibble is
//                             // element 4j+k, high nibble element 16+4j+k
//
// and a Q4_K super-block of 256 (d, dmin and eight 6-bit scale/min pairs):
//
//   uint16_t d[16], dmin[16];
//   uint8_t scales[12][16];      // scales[i][r] = row r's scales[i] (still 6-bit packed)
//   uint8_t q[32][16][4];        // q[8g+s][r][k] = row r's qs[32g+4s+k]: low nibble is
//                                // element 64g+4s+k (sub-block 2g), high 64g+32+4s+k
//
// A record is exactly as long as 16 blocks, so a panel is as long as its 16
// rows were and the rows from panel_rows on keep their row-major place:
// w.row(r) stays valid for r >= panel_rows. Packing changes no value; the
// kernels sum each block exactly in int32 and then, per row, in block order,
// sum = fma(d_w·d_x, (float)isum, sum) (Q4_K: the super-block's exact
// Σ sc·isum and Σ m·bsum, then sum = fma(d_x, fma(-dmin, msum, d·isum), sum))
// — `rows_dot_ref` below is that definition in plain loops, and the vector
// kernels give the same bits.
//
// F32 (a "block" is one element, so a record is one column of the panel):
//
//   float w[cols][16];           // w[j][r] = row r's element j
//
// One 64-byte load is then column j of 16 rows, multiplied by x[j] for all
// of them at once: no sum across lanes, which for the short rows of small
// models costs more than the products. Each row's dot is defined as four
// fused multiply-add chains over the columns j ≡ k (mod 4), in column
// order, then (a0 + a1) + (a2 + a3) — for every row of a packed matrix,
// the row-major rows after the last panel included, and for any number of
// tokens (decode and prefill give the same bits).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "jielong/core/dtype.hpp"
#include "jielong/core/quants.hpp"
#include "jielong/kernels/quantize_activation.hpp"
#include "jielong/kernels/backend.hpp"

namespace jielong::kernels::panels {

inline constexpr size_t kRows = 16;

constexpr bool supported(DType t) noexcept {
  return t == DType::Q4_0 || t == DType::Q8_0 || t == DType::Q4_K || t == DType::F32;
}

// Rows of an r-row matrix that go into panels (the rest stay row-major).
constexpr size_t panel_rows(DType t, size_t rows) noexcept { return supported(t) ? rows / kRows * kRows : 0; }

namespace detail {
template <DType T>
struct Fmt;
template <>
struct Fmt<DType::Q8_0> {
  using Block = BlockQ8_0;
  static constexpr int kOffset = 128;  // u = q + 128
  static constexpr size_t kQuantBytes = 512;
};
template <>
struct Fmt<DType::Q4_0> {
  using Block = BlockQ4_0;
  static constexpr int kOffset = 8;  // u = nibble, weight = u - 8
  static constexpr size_t kQuantBytes = 256;
};
template <>
struct Fmt<DType::Q4_K> {
  using Block = BlockQ4_K;
  static constexpr size_t kScales = 64, kQuants = 256;  // offsets in a record
};
static_assert(Fmt<DType::Q4_K>::kQuants + kRows * 128 == kRows * sizeof(BlockQ4_K));
static_assert(32 + Fmt<DType::Q8_0>::kQuantBytes == kRows * sizeof(BlockQ8_0));
static_assert(32 + Fmt<DType::Q4_0>::kQuantBytes == kRows * sizeof(BlockQ4_0));

// Unsigned quant k (0..31) of row r in a record.
template <DType T>
inline int quant(const uint8_t* rec, size_t r, size_t k) noexcept {
  const uint8_t* q = rec + 32;
  if constexpr (T == DType::Q8_0) {
    return q[(k / 4) * 64 + r * 4 + k % 4];
  } else {
    const size_t m = k % 16;  // the qs byte holding element k
    const uint8_t byte = q[(m / 4) * 64 + r * 4 + m % 4];
    return k < 16 ? (byte & 0xF) : (byte >> 4);
  }
}
inline uint16_t scale(const uint8_t* rec, size_t r) noexcept {
  uint16_t d;
  std::memcpy(&d, rec + 2 * r, 2);
  return d;
}
}  // namespace detail

// Writes the panels of `rows` (a multiple of 16) row-major rows of type t
// (src: rows · row_bytes(t, cols) bytes) to dst, which holds as many bytes
// and must not overlap src.
inline void pack(DType t, const void* src, size_t rows, size_t cols, void* dst) noexcept {
  const size_t rb = row_bytes(t, cols), nb = cols / dtype_info(t).block_size;
  const size_t rec_bytes = kRows * dtype_info(t).block_bytes;
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  if (t == DType::F32) {  // a transpose of each 16-row panel: row r's element j to [j][r]
    for (size_t p = 0; p < rows / kRows; ++p)
      for (size_t r = 0; r < kRows; ++r)
        for (size_t j = 0; j < cols; ++j)
          std::memcpy(d + (p * kRows * cols + j * kRows + r) * 4, s + (p * kRows + r) * rb + 4 * j, 4);
    return;
  }
  for (size_t p = 0; p < rows / kRows; ++p) {
    for (size_t r = 0; r < kRows; ++r) {  // row by row: each source row is read once, in order
      const uint8_t* row = s + (p * kRows + r) * rb;
      uint8_t* rec = d + p * kRows * rb;
      for (size_t b = 0; b < nb; ++b, rec += rec_bytes) {
        uint8_t* q = rec + 32 + 4 * r;
        if (t == DType::Q4_K) {
          const auto* blk = reinterpret_cast<const BlockQ4_K*>(row) + b;
          std::memcpy(rec + 2 * r, &blk->d, 2);
          std::memcpy(rec + 32 + 2 * r, &blk->dmin, 2);
          for (size_t i = 0; i < 12; ++i) rec[detail::Fmt<DType::Q4_K>::kScales + 16 * i + r] = blk->scales[i];
          uint8_t* qk = rec + detail::Fmt<DType::Q4_K>::kQuants + 4 * r;
          for (size_t g = 0; g < 32; ++g) std::memcpy(qk + 64 * g, blk->qs + 4 * g, 4);  // 32g'+4s = 4(8g'+s)
        } else if (t == DType::Q8_0) {
          const uint8_t* blk = row + b * sizeof(BlockQ8_0);
          std::memcpy(rec + 2 * r, blk, 2);  // d
          for (size_t g = 0; g < 8; ++g) {
            uint32_t v;
            std::memcpy(&v, blk + 2 + 4 * g, 4);
            v ^= 0x80808080u;
            std::memcpy(q + 64 * g, &v, 4);
          }
        } else {
          const uint8_t* blk = row + b * sizeof(BlockQ4_0);
          std::memcpy(rec + 2 * r, blk, 2);  // d
          for (size_t g = 0; g < 4; ++g) std::memcpy(q + 64 * g, blk + 2 + 4 * g, 4);
        }
      }
    }
  }
}

// Block b of row r (r < w.panel_rows) as the file stored it: pack undone for
// one block, so that a tied embedding can look its rows up in the repacked
// classifier instead of keeping the file's copy. dst: block_bytes(w.type).
inline void unpack_block(const WeightView& w, size_t r, size_t b, void* dst) noexcept {
  const size_t bb = dtype_info(w.type).block_bytes, lane = r % kRows;
  const auto* rec = static_cast<const uint8_t*>(w.data) + (r / kRows) * kRows * w.row_stride + b * kRows * bb;
  auto* out = static_cast<uint8_t*>(dst);
  if (w.type == DType::F32) {
    std::memcpy(out, rec + 4 * lane, 4);
    return;
  }
  if (w.type == DType::Q4_K) {
    auto* blk = static_cast<BlockQ4_K*>(dst);
    std::memcpy(&blk->d, rec + 2 * lane, 2);
    std::memcpy(&blk->dmin, rec + 32 + 2 * lane, 2);
    for (size_t i = 0; i < 12; ++i) blk->scales[i] = rec[detail::Fmt<DType::Q4_K>::kScales + 16 * i + lane];
    const uint8_t* qk = rec + detail::Fmt<DType::Q4_K>::kQuants + 4 * lane;
    for (size_t g = 0; g < 32; ++g) std::memcpy(blk->qs + 4 * g, qk + 64 * g, 4);
    return;
  }
  std::memcpy(out, rec + 2 * lane, 2);  // d
  const uint8_t* q = rec + 32 + 4 * lane;
  const size_t groups = w.type == DType::Q8_0 ? 8 : 4;
  for (size_t g = 0; g < groups; ++g) {
    uint32_t v;
    std::memcpy(&v, q + 64 * g, 4);
    if (w.type == DType::Q8_0) v ^= 0x80808080u;
    std::memcpy(out + 2 + 4 * g, &v, 4);
  }
}

// The first n bytes (n <= row_bytes) of row r as the file stored them,
// whichever layout the row has now.
inline void copy_row_prefix(const WeightView& w, size_t r, size_t n, void* dst) noexcept {
  auto* out = static_cast<uint8_t*>(dst);
  if (r >= w.panel_rows) {
    std::memcpy(out, w.row(r), n);
    return;
  }
  const size_t bb = dtype_info(w.type).block_bytes;
  alignas(8) uint8_t blk[sizeof(BlockQ4_K)];  // the largest block with panels
  for (size_t b = 0, done = 0; done < n; ++b, done += bb) {
    unpack_block(w, r, b, blk);
    std::memcpy(out + done, blk, std::min(bb, n - done));
  }
}

// Copies a row-major matrix (rows · row_bytes(t, cols) bytes, no row
// padding) to dst, the same size, with its first panel_rows(t, rows) rows
// packed; returns that count (0 for a format without panels: a plain copy).
inline size_t pack_matrix(DType t, const void* src, size_t rows, size_t cols, void* dst) noexcept {
  const size_t pr = panel_rows(t, rows), rb = row_bytes(t, cols);
  if (pr) pack(t, src, pr, cols, dst);
  if (rows > pr)
    std::memcpy(static_cast<uint8_t*>(dst) + pr * rb, static_cast<const uint8_t*>(src) + pr * rb, (rows - pr) * rb);
  return pr;
}

namespace detail {
// The definition for Q4_K against ActQ8K rows (see rows_dot_ref).
inline void rows_dot_ref_q4k(const WeightView& w, size_t r0, size_t r1, const void* act, size_t act_stride,
                             size_t n_tokens, float* y, size_t y_stride) noexcept {
  using F = Fmt<DType::Q4_K>;
  const size_t nb = w.cols / 256, rec_bytes = kRows * sizeof(BlockQ4_K);
  for (size_t r = r0; r < r1; ++r) {
    const auto* panel = static_cast<const uint8_t*>(w.data) + (r / kRows) * kRows * w.row_stride;
    const size_t lane = r % kRows;
    for (size_t t = 0; t < n_tokens; ++t) {
      const auto* a = reinterpret_cast<const ActQ8K*>(static_cast<const std::byte*>(act) + t * act_stride);
      float sum = 0.0f;
      for (size_t b = 0; b < nb; ++b) {
        const uint8_t* rec = panel + b * rec_bytes;
        uint8_t scales[12];
        for (size_t i = 0; i < 12; ++i) scales[i] = rec[F::kScales + 16 * i + lane];
        int32_t isum = 0, msum = 0;
        for (int j = 0; j < 8; ++j) {
          uint8_t sc, m;
          quants::get_scale_min_k4(j, scales, sc, m);
          int32_t sub = 0;
          for (size_t k = 0; k < 32; ++k) {  // element 32j+k: group j/2, step k/4, nibble j%2
            const uint8_t byte = rec[F::kQuants + (8 * (j / 2) + k / 4) * 64 + lane * 4 + k % 4];
            sub += (j % 2 ? byte >> 4 : byte & 0xF) * a[b].qs[32 * j + k];
          }
          isum += sc * sub;
          msum += m * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
        }
        const float d = quants::h2f(scale(rec, lane)), dmin = quants::h2f(scale(rec + 32, lane));
        sum = std::fma(a[b].d, std::fma(-dmin, static_cast<float>(msum), d * static_cast<float>(isum)), sum);
      }
      y[t * y_stride + r] = sum;
    }
  }
}

// Four fused multiply-add chains over the columns j ≡ k (mod 4), then
// (a0 + a1) + (a2 + a3): the F32 definition, for one row and one token,
// the row's element j at w[j·step].
inline float f32_dot4(const float* w, size_t step, const float* x, size_t cols) noexcept {
  float a[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (size_t j = 0; j < cols; ++j) a[j % 4] = std::fma(x[j], w[j * step], a[j % 4]);
  return (a[0] + a[1]) + (a[2] + a[3]);
}

// The F32 definition for rows [r0, r1) against float rows: panel rows and
// the row-major rows after them alike.
inline void rows_dot_ref_f32(const WeightView& w, size_t r0, size_t r1, const void* act, size_t act_stride,
                             size_t n_tokens, float* y, size_t y_stride) noexcept {
  for (size_t r = r0; r < r1; ++r) {
    const bool in_panel = r < w.panel_rows;
    const float* row = in_panel ? static_cast<const float*>(w.data) + (r / kRows) * kRows * w.cols + r % kRows
                                : static_cast<const float*>(w.row(r));
    for (size_t t = 0; t < n_tokens; ++t) {
      const auto* x = reinterpret_cast<const float*>(static_cast<const std::byte*>(act) + t * act_stride);
      y[t * y_stride + r] = f32_dot4(row, in_panel ? kRows : 1, x, w.cols);
    }
  }
}

// The definition for Q8_0 / Q4_0 against ActQ8 rows (see rows_dot_ref).
template <DType T>
inline void rows_dot_ref_32(const WeightView& w, size_t r0, size_t r1, const void* act, size_t act_stride,
                            size_t n_tokens, float* y, size_t y_stride) noexcept {
  const size_t nb = w.cols / 32, rec_bytes = kRows * sizeof(typename Fmt<T>::Block);
  for (size_t r = r0; r < r1; ++r) {
    const auto* panel = static_cast<const uint8_t*>(w.data) + (r / kRows) * kRows * w.row_stride;
    for (size_t t = 0; t < n_tokens; ++t) {
      const auto* a = reinterpret_cast<const ActQ8*>(static_cast<const std::byte*>(act) + t * act_stride);
      float sum = 0.0f;
      for (size_t b = 0; b < nb; ++b) {
        const uint8_t* rec = panel + b * rec_bytes;
        int32_t isum = -Fmt<T>::kOffset * a[b].sum;
        for (size_t k = 0; k < 32; ++k) isum += quant<T>(rec, r % kRows, k) * a[b].qs[k];
        sum = std::fma(quants::h2f(scale(rec, r % kRows)) * a[b].d, static_cast<float>(isum), sum);
      }
      y[t * y_stride + r] = sum;
    }
  }
}
}  // namespace detail

// The definition of the panel dot (the oracle the vector kernels match bit
// for bit): rows [r0, r1) of the panels (multiples of 16; F32: any rows of
// a packed matrix) x n_tokens activation rows (ActQ8, ActQ8K for Q4_K,
// floats for F32); y[t·y_stride + r].
inline void rows_dot_ref(const WeightView& w, size_t r0, size_t r1, const void* act, size_t act_stride,
                         size_t n_tokens, float* y, size_t y_stride) noexcept {
  switch (w.type) {
    case DType::F32: return detail::rows_dot_ref_f32(w, r0, r1, act, act_stride, n_tokens, y, y_stride);
    case DType::Q8_0: return detail::rows_dot_ref_32<DType::Q8_0>(w, r0, r1, act, act_stride, n_tokens, y, y_stride);
    case DType::Q4_0: return detail::rows_dot_ref_32<DType::Q4_0>(w, r0, r1, act, act_stride, n_tokens, y, y_stride);
    case DType::Q4_K: return detail::rows_dot_ref_q4k(w, r0, r1, act, act_stride, n_tokens, y, y_stride);
    default: return;  // matmul accepts panels only of these types
  }
}

}  // namespace jielong::kernels::panels

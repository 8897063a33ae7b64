// General matrix product for training: C[m][n] (+)= op(A)[m][k] · op(B)[k][n]
// with op(X) = X or Xᵀ, row-major storage with leading dimensions. A linear
// layer's three products are its three cases:
//
//   forward   Y[tok][out]  = X[tok][in] · W[out][in]ᵀ      gemm(no,  yes, ...)
//   backward dX[tok][in]  = dY[tok][out] · W[out][in]      gemm(no,  no,  ...)
//   backward dW[out][in] += dY[tok][out]ᵀ · X[tok][in]     gemm(yes, no,  ..., accumulate)
//
// The blocked path (Goto and van de Geijn 2008, "Anatomy of high-performance
// matrix multiplication"; the BLIS loop nest): C is cut into tiles of
// kMC × kNC, each computed by one task over the whole k range in steps of
// kKC. A task packs its slice of op(A) into row panels of kMR and of op(B)
// into column panels of kNR (zero-padded, so edges need no special loads),
// then a register-tiled micro-kernel keeps a kMR × kNR block of C in vector
// registers, one broadcast of A against two vectors of B per row and step.
// Tiles are a function of the shape alone and each element of C is summed
// by exactly one task in a fixed order, so the bits do not depend on the
// number of threads.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "jielong/config.hpp"  // HWY_WANT_AVX3_DL before any Highway header
#include "jielong/core/executor.hpp"
#include "jielong/core/half.hpp"
#include "jielong/core/memory.hpp"
#include "jielong/kernels/backend.hpp"
#include "jielong/kernels/kernels.hpp"  // Ops<B>: whether B asks for bf16 products

#include <hwy/highway.h>

namespace jielong::kernels {

enum class Trans : uint8_t { no, yes };

// The scalar twin: the definition, one dot product per element of C summed in
// k order. Kept plain so it can catch the blocked path. T is float, or
// double for the training ops' finite-difference tests.
template <class T>
void gemm_ref(Trans ta, Trans tb, size_t m, size_t n, size_t k, const T* a, size_t lda, const T* b, size_t ldb, T* c,
              size_t ldc, bool accumulate) noexcept {
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) {
      T s = 0;
      for (size_t p = 0; p < k; ++p) {
        const T av = ta == Trans::no ? a[i * lda + p] : a[p * lda + i];
        const T bv = tb == Trans::no ? b[p * ldb + j] : b[j * ldb + p];
        s += av * bv;
      }
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + s : s;
    }
}

namespace gemm_detail {
namespace hn = hwy::HWY_NAMESPACE;

constexpr size_t kLanes = HWY_LANES(float);
// Rows of C held in registers, two vectors a row, sized to the register
// file: the micro-kernel needs 2·kMR accumulators, two vectors of B and one
// broadcast of A. x86 below AVX-512 has 16 vector registers: 6 rows (12 + 3,
// BLIS's haswell sgemm tile, 6 × 16); AVX-512 and the 32-register targets
// take 12 rows (24 + 3). A tile that does not fit spills accumulators to the
// stack on every step of k.
#if HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3
constexpr size_t kMR = 6;
#else
constexpr size_t kMR = 12;
#endif
constexpr size_t kNR = 2 * kLanes;     // columns of C held in registers
constexpr size_t kKC = 256;            // depth of one packed step: an A panel (6-12 KiB) stays in L1
constexpr size_t kMC = 120;            // rows of a tile (a multiple of kMR): its packed A (120 KiB) stays in L2
constexpr size_t kNC = 256;            // columns of a tile (a multiple of kNR): its packed B (256 KiB) stays in L2
constexpr size_t kPackFloats = kMC * kKC + kKC * kNC;

// Panels of W lanes from a stored matrix x: lane l0 + l, depth p0 + p is
// x[(p0 + p)·ld + l0 + l] when lanes are contiguous in memory, else
// x[(l0 + l)·ld + p0 + p]; dst[panel][p][w] for l < n_lanes, p < kc, lanes
// past n_lanes zero. These copies are a large share of a product's time
// outside the micro-kernel, so each reads memory in its own order: a stored
// row at a time across every panel when lanes are contiguous (one
// sequential stream), W rows in step when they are not; full panels copy a
// fixed W per step (vector moves).
template <size_t W>
inline void pack_panels(bool lanes_contiguous, const float* x, size_t ld, size_t l0, size_t p0, size_t n_lanes,
                        size_t kc, float* HWY_RESTRICT dst) noexcept {
  const size_t full = n_lanes / W * W, tail = n_lanes - full;
  if (lanes_contiguous) {
    for (size_t p = 0; p < kc; ++p) {
      const float* src = x + (p0 + p) * ld + l0;
      for (size_t l = 0; l < full; l += W)
        for (size_t e = 0; e < W; ++e) dst[l * kc + p * W + e] = src[l + e];
      for (size_t e = 0; tail && e < W; ++e) dst[full * kc + p * W + e] = e < tail ? src[full + e] : 0.0f;
    }
    return;
  }
  for (size_t l = 0; l < n_lanes; l += W) {
    const size_t w = std::min(W, n_lanes - l);
    const float* src = x + (l0 + l) * ld + p0;
    float* HWY_RESTRICT panel = dst + l * kc;
    if (w == W) {
      for (size_t p = 0; p < kc; ++p)
        for (size_t e = 0; e < W; ++e) panel[p * W + e] = src[e * ld + p];
    } else {
      for (size_t p = 0; p < kc; ++p)
        for (size_t e = 0; e < W; ++e) panel[p * W + e] = e < w ? src[e * ld + p] : 0.0f;
    }
  }
}

// op(A)[i0 + i][p0 + p] for i < mc, p < kc into panels of kMR rows:
// dst[panel][p][r], rows past mc zero.
inline void pack_a(Trans ta, const float* a, size_t lda, size_t i0, size_t p0, size_t mc, size_t kc,
                   float* dst) noexcept {
  pack_panels<kMR>(ta == Trans::yes, a, lda, i0, p0, mc, kc, dst);
}

// op(B)[p0 + p][j0 + j] for p < kc, j < nc into panels of kNR columns:
// dst[panel][p][c], columns past nc zero.
inline void pack_b(Trans tb, const float* b, size_t ldb, size_t p0, size_t j0, size_t kc, size_t nc,
                   float* dst) noexcept {
  pack_panels<kNR>(tb == Trans::no, b, ldb, j0, p0, nc, kc, dst);
}

// C[mr][nr] (+)= the accumulators of one kMR × kNR block (two vectors a
// row); the edges go through a tile on the stack.
template <class V>
HWY_INLINE void store_block(const V (&acc0)[kMR], const V (&acc1)[kMR], float* c, size_t ldc, size_t mr, size_t nr,
                            bool add) noexcept {
  const hn::ScalableTag<float> d;
  if (mr == kMR && nr == kNR) {
#pragma GCC unroll 12
    for (size_t r = 0; r < kMR; ++r) {
      float* row = c + r * ldc;
      if (add) {
        hn::StoreU(hn::Add(hn::LoadU(d, row), acc0[r]), d, row);
        hn::StoreU(hn::Add(hn::LoadU(d, row + kLanes), acc1[r]), d, row + kLanes);
      } else {
        hn::StoreU(acc0[r], d, row);
        hn::StoreU(acc1[r], d, row + kLanes);
      }
    }
    return;
  }
  alignas(64) float tile[kMR * kNR];
  for (size_t r = 0; r < kMR; ++r) {
    hn::Store(acc0[r], d, tile + r * kNR);
    hn::Store(acc1[r], d, tile + r * kNR + kLanes);
  }
  for (size_t r = 0; r < mr; ++r)
    for (size_t j = 0; j < nr; ++j) c[r * ldc + j] = add ? c[r * ldc + j] + tile[r * kNR + j] : tile[r * kNR + j];
}

// C[mr][nr] (+)= Σ_p ap[p][·] ⊗ bp[p][·] for one kMR × kNR block; mr, nr may
// be short at the edges (the packed zeros make the sums right, only the
// store is cut).
HWY_INLINE void micro_kernel(size_t kc, const float* HWY_RESTRICT ap, const float* HWY_RESTRICT bp, float* c,
                             size_t ldc, size_t mr, size_t nr, bool add) noexcept {
  const hn::ScalableTag<float> d;
  using V = decltype(hn::Zero(d));
  V acc0[kMR], acc1[kMR];
#pragma GCC unroll 12
  for (size_t r = 0; r < kMR; ++r) acc0[r] = acc1[r] = hn::Zero(d);
  for (size_t p = 0; p < kc; ++p) {
    const V b0 = hn::LoadU(d, bp + p * kNR), b1 = hn::LoadU(d, bp + p * kNR + kLanes);
#pragma GCC unroll 12
    for (size_t r = 0; r < kMR; ++r) {
      const V av = hn::Set(d, ap[p * kMR + r]);
      acc0[r] = hn::MulAdd(av, b0, acc0[r]);
      acc1[r] = hn::MulAdd(av, b1, acc1[r]);
    }
  }
  store_block(acc0, acc1, c, ldc, mr, nr, add);
}

#if JIELONG_HAVE_AVX512_BF16
// bf16 products with f32 sums (vdpbf16ps: each f32 lane adds the products of
// one pair of bf16 lanes), for a backend whose Ops ask for them
// (Avx512Bf16). Operands are rounded to bf16 (ties to even) as they are
// packed, in pairs along k: A as [pair][row][2], B as [pair][column][2], so
// one 32-bit broadcast of A meets 16 columns × 2 depths.
inline void pack_a_bf16(Trans ta, const float* a, size_t lda, size_t i0, size_t p0, size_t mc, size_t kc,
                        uint16_t* dst) noexcept {
  const size_t pairs = (kc + 1) / 2;
  for (size_t i = 0; i < mc; i += kMR) {
    uint16_t* panel = dst + i * pairs * 2;
    for (size_t pp = 0; pp < pairs; ++pp)
      for (size_t r = 0; r < kMR; ++r)
        for (size_t e = 0; e < 2; ++e) {
          const size_t row = i0 + i + r, col = p0 + 2 * pp + e;
          const bool inside = i + r < mc && 2 * pp + e < kc;
          const float v = !inside ? 0.0f : ta == Trans::no ? a[row * lda + col] : a[col * lda + row];
          panel[(pp * kMR + r) * 2 + e] = f32_to_bf16(v);
        }
  }
}

inline void pack_b_bf16(Trans tb, const float* b, size_t ldb, size_t p0, size_t j0, size_t kc, size_t nc,
                        uint16_t* dst) noexcept {
  const size_t pairs = (kc + 1) / 2;
  for (size_t j = 0; j < nc; j += kNR) {
    uint16_t* panel = dst + j * pairs * 2;
    for (size_t pp = 0; pp < pairs; ++pp)
      for (size_t c = 0; c < kNR; ++c)
        for (size_t e = 0; e < 2; ++e) {
          const size_t row = p0 + 2 * pp + e, col = j0 + j + c;
          const bool inside = j + c < nc && 2 * pp + e < kc;
          const float v = !inside ? 0.0f : tb == Trans::no ? b[row * ldb + col] : b[col * ldb + row];
          panel[(pp * kNR + c) * 2 + e] = f32_to_bf16(v);
        }
  }
}

HWY_INLINE void micro_kernel_bf16(size_t pairs, const uint16_t* HWY_RESTRICT ap, const uint16_t* HWY_RESTRICT bp,
                                  float* c, size_t ldc, size_t mr, size_t nr, bool add) noexcept {
  const hn::ScalableTag<float> d;
  using V = decltype(hn::Zero(d));
  V acc0[kMR], acc1[kMR];
#pragma GCC unroll 12
  for (size_t r = 0; r < kMR; ++r) acc0[r] = acc1[r] = hn::Zero(d);
  for (size_t pp = 0; pp < pairs; ++pp) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp + pp * kNR * 2);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(bp + pp * kNR * 2 + 32);
#pragma GCC unroll 12
    for (size_t r = 0; r < kMR; ++r) {
      int32_t pair;
      std::memcpy(&pair, ap + (pp * kMR + r) * 2, sizeof pair);
      const __m512bh av = (__m512bh)_mm512_set1_epi32(pair);
      acc0[r].raw = _mm512_dpbf16_ps(acc0[r].raw, av, b0);
      acc1[r].raw = _mm512_dpbf16_ps(acc1[r].raw, av, b1);
    }
  }
  store_block(acc0, acc1, c, ldc, mr, nr, add);
}
#endif

// This thread's packing buffers, allocated on first use (nullptr if memory
// ran out). Per thread, not per call: a training step runs thousands of
// products.
inline float* pack_buffer() noexcept {
  struct Buffer {
    float* p = static_cast<float*>(aligned_alloc_bytes(kPackFloats * sizeof(float)));
    ~Buffer() { aligned_free(p); }
  };
  thread_local Buffer buffer;
  return buffer.p;
}

// Rows per tile: kMC, or fewer for short matrices so that a product still
// splits into a few tasks (a function of the shape only).
inline size_t tile_rows(size_t m, size_t n) noexcept {
  const size_t col_tiles = (n + kNC - 1) / kNC;
  size_t mc = kMC;
  while (mc > kMR && ((m + mc - 1) / mc) * col_tiles < 8) mc -= kMR;
  return mc;
}

}  // namespace gemm_detail

// C = op(A)·op(B), or C += op(A)·op(B) with `accumulate`, over `ex`.
// Scalar runs the twin; a backend whose Ops have gemm_bf16_products
// (Avx512Bf16 where it is compiled) the bf16 products; every other backend
// the blocked f32 path. The choice is the tag's: no CPU check here.
template <class B>
void gemm(Trans ta, Trans tb, size_t m, size_t n, size_t k, const float* a, size_t lda, const float* b, size_t ldb,
          float* c, size_t ldc, bool accumulate, Executor& ex) noexcept {
  if (m == 0 || n == 0) return;
  if constexpr (std::is_same_v<B, Scalar>) {
    parallel_for(ex, m, 16, [&](size_t i0, size_t i1) {
      gemm_ref(ta, tb, i1 - i0, n, k, ta == Trans::no ? a + i0 * lda : a + i0, lda, b, ldb, c + i0 * ldc, ldc,
               accumulate);
    });
  } else {
    namespace g = gemm_detail;
    if (k == 0) {
      if (!accumulate)
        for (size_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.0f);
      return;
    }
    const size_t mc_max = g::tile_rows(m, n);
    const size_t row_tiles = (m + mc_max - 1) / mc_max, col_tiles = (n + g::kNC - 1) / g::kNC;
    ex.run(row_tiles * col_tiles, [&](size_t task) {
      const size_t i0 = (task / col_tiles) * mc_max, j0 = (task % col_tiles) * g::kNC;
      const size_t mc = std::min(mc_max, m - i0), nc = std::min(g::kNC, n - j0);
      float* const pa = g::pack_buffer();
      if (pa == nullptr) {  // out of memory for the packing buffers: the plain loops, same product
        gemm_ref(ta, tb, mc, nc, k, ta == Trans::no ? a + i0 * lda : a + i0, lda,
                 tb == Trans::no ? b + j0 : b + j0 * ldb, ldb, c + i0 * ldc + j0, ldc, accumulate);
        return;
      }
      float* const pb = pa + g::kMC * g::kKC;
      for (size_t p0 = 0; p0 < k; p0 += g::kKC) {
        const size_t kc = std::min(g::kKC, k - p0);
        const bool add = accumulate || p0 > 0;
#if JIELONG_HAVE_AVX512_BF16
        if constexpr (requires { Ops<B>::gemm_bf16_products; }) {
          auto* const ha = reinterpret_cast<uint16_t*>(pa);
          auto* const hb = reinterpret_cast<uint16_t*>(pb);
          const size_t pairs = (kc + 1) / 2;
          g::pack_a_bf16(ta, a, lda, i0, p0, mc, kc, ha);
          g::pack_b_bf16(tb, b, ldb, p0, j0, kc, nc, hb);
          for (size_t j = 0; j < nc; j += g::kNR)
            for (size_t i = 0; i < mc; i += g::kMR)
              g::micro_kernel_bf16(pairs, ha + i * pairs * 2, hb + j * pairs * 2, c + (i0 + i) * ldc + j0 + j, ldc,
                                   std::min(g::kMR, mc - i), std::min(g::kNR, nc - j), add);
          continue;
        }
#endif
        g::pack_a(ta, a, lda, i0, p0, mc, kc, pa);
        g::pack_b(tb, b, ldb, p0, j0, kc, nc, pb);
        for (size_t j = 0; j < nc; j += g::kNR)
          for (size_t i = 0; i < mc; i += g::kMR)
            g::micro_kernel(kc, pa + i * kc, pb + j * kc, c + (i0 + i) * ldc + j0 + j, ldc,
                            std::min(g::kMR, mc - i), std::min(g::kNR, nc - j), add);
      }
    });
  }
}

// FLOPs of one product (a multiply-add counts two), for throughput figures.
constexpr double gemm_flops(size_t m, size_t n, size_t k) noexcept {
  return 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
}

}  // namespace jielong::kernels

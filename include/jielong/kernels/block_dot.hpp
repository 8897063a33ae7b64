// The per-format block logic of the quantized dot products, written once over
// a backend's small set of integer primitives:
//
//   struct P {
//     static int32_t dot_i8_32(const int8_t* w, const int8_t* x);  // Σ w[i]·x[i], 32 elements
//     static int32_t dot_i8_16(const int8_t* w, const int8_t* x);  // 16 elements
//   };
//
// Each block is first unpacked to signed 8-bit weights (a few shifts and masks
// the compiler vectorises), then handed to the primitive. Xsimd and Highway
// instantiate this; the VNNI backend has hand-fused kernels for the hot
// formats and uses this for the rest.
#pragma once

#include <cstddef>
#include <cstdint>

#include "jielong/core/quants.hpp"
#include "jielong/kernels/quantize_activation.hpp"

namespace jielong::kernels::block {

// 32 nibbles in element order (low nibbles are elements 0..15).
inline void unpack_nibbles(const uint8_t* qs, int8_t offset, int8_t* q) noexcept {
  for (int j = 0; j < 16; ++j) {
    q[j] = static_cast<int8_t>((qs[j] & 0xF) - offset);
    q[j + 16] = static_cast<int8_t>((qs[j] >> 4) - offset);
  }
}
inline void unpack_5bit(const uint8_t* qs, const uint8_t* qh_bytes, int8_t offset, int8_t* q) noexcept {
  const uint32_t qh = quants::load_qh(qh_bytes);
  for (int j = 0; j < 16; ++j) {
    q[j] = static_cast<int8_t>(((qs[j] & 0xF) | (((qh >> j) & 1u) << 4)) - offset);
    q[j + 16] = static_cast<int8_t>(((qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4)) - offset);
  }
}

template <class P>
float dot_q8act(DType t, const void* wrow, const ActQ8* a, size_t nb) noexcept {
  alignas(64) int8_t q[32];
  float sum = 0.0f;
  switch (t) {
    case DType::Q4_0:
      for (size_t i = 0; i < nb; ++i) {
        const auto& b = static_cast<const BlockQ4_0*>(wrow)[i];
        unpack_nibbles(b.qs, 8, q);
        sum += quants::h2f(b.d) * a[i].d * static_cast<float>(P::dot_i8_32(q, a[i].qs));
      }
      break;
    case DType::Q4_1:
      for (size_t i = 0; i < nb; ++i) {
        const auto& b = static_cast<const BlockQ4_1*>(wrow)[i];
        unpack_nibbles(b.qs, 0, q);
        sum += quants::h2f(b.d) * a[i].d * static_cast<float>(P::dot_i8_32(q, a[i].qs)) + quants::h2f(b.m) * a[i].s;
      }
      break;
    case DType::Q5_0:
      for (size_t i = 0; i < nb; ++i) {
        const auto& b = static_cast<const BlockQ5_0*>(wrow)[i];
        unpack_5bit(b.qs, b.qh, 16, q);
        sum += quants::h2f(b.d) * a[i].d * static_cast<float>(P::dot_i8_32(q, a[i].qs));
      }
      break;
    case DType::Q5_1:
      for (size_t i = 0; i < nb; ++i) {
        const auto& b = static_cast<const BlockQ5_1*>(wrow)[i];
        unpack_5bit(b.qs, b.qh, 0, q);
        sum += quants::h2f(b.d) * a[i].d * static_cast<float>(P::dot_i8_32(q, a[i].qs)) + quants::h2f(b.m) * a[i].s;
      }
      break;
    case DType::Q8_0:
      for (size_t i = 0; i < nb; ++i) {
        const auto& b = static_cast<const BlockQ8_0*>(wrow)[i];
        sum += quants::h2f(b.d) * a[i].d * static_cast<float>(P::dot_i8_32(b.qs, a[i].qs));
      }
      break;
    default: break;
  }
  return sum;
}

// The k-quants interleave: byte l of a 32-byte group holds elements l, l+32,
// l+64, l+96 (2-bit fields) or l, l+32 (nibbles). Unpacking a group of 32
// bytes gives 128 (or 64) consecutive elements.
inline void unpack_2bit_group(const uint8_t* qs, int8_t* q) noexcept {
  for (int f = 0; f < 4; ++f)
    for (int l = 0; l < 32; ++l) q[32 * f + l] = static_cast<int8_t>((qs[l] >> (2 * f)) & 3);
}

template <class P>
float dot_q8kact(DType t, const void* wrow, const ActQ8K* a, size_t nb) noexcept {
  alignas(64) int8_t q[256];
  float sum = 0.0f;
  for (size_t i = 0; i < nb; ++i) {
    const int8_t* x = a[i].qs;
    switch (t) {
      case DType::Q2_K: {
        const auto& b = static_cast<const BlockQ2_K*>(wrow)[i];
        unpack_2bit_group(b.qs, q);
        unpack_2bit_group(b.qs + 32, q + 128);
        int32_t isum = 0, msum = 0;
        for (int s = 0; s < 16; ++s) {
          isum += (b.scales[s] & 0xF) * P::dot_i8_16(q + 16 * s, x + 16 * s);
          msum += (b.scales[s] >> 4) * a[i].bsums[s];
        }
        sum += a[i].d * (quants::h2f(b.d) * static_cast<float>(isum) - quants::h2f(b.dmin) * static_cast<float>(msum));
        break;
      }
      case DType::Q3_K: {
        const auto& b = static_cast<const BlockQ3_K*>(wrow)[i];
        unpack_2bit_group(b.qs, q);
        unpack_2bit_group(b.qs + 32, q + 128);
        for (int e = 0; e < 256; ++e) {
          const int bit = e / 32;  // hmask bit of element e is bit (e/32) of hmask[e % 32]
          q[e] = static_cast<int8_t>(q[e] - (((b.hmask[e % 32] >> bit) & 1) ? 0 : 4));
        }
        int32_t isum = 0;
        for (int s = 0; s < 16; ++s) isum += quants::q3k_scale(b.scales, s) * P::dot_i8_16(q + 16 * s, x + 16 * s);
        sum += a[i].d * quants::h2f(b.d) * static_cast<float>(isum);
        break;
      }
      case DType::Q4_K:
      case DType::Q5_K: {
        const bool five = t == DType::Q5_K;
        const BlockQ4_K* b4 = static_cast<const BlockQ4_K*>(wrow) + i;
        const BlockQ5_K* b5 = static_cast<const BlockQ5_K*>(wrow) + i;
        const uint8_t* qs = five ? b5->qs : b4->qs;
        const uint8_t* scales = five ? b5->scales : b4->scales;
        for (int pair = 0; pair < 4; ++pair)
          for (int l = 0; l < 32; ++l) {
            q[64 * pair + l] = static_cast<int8_t>(qs[32 * pair + l] & 0xF);
            q[64 * pair + 32 + l] = static_cast<int8_t>(qs[32 * pair + l] >> 4);
          }
        if (five)
          for (int e = 0; e < 256; ++e) q[e] = static_cast<int8_t>(q[e] | (((b5->qh[e % 32] >> (e / 32)) & 1) << 4));
        int32_t isum = 0, msum = 0;
        for (int s = 0; s < 8; ++s) {
          uint8_t sc, m;
          quants::get_scale_min_k4(s, scales, sc, m);
          isum += sc * P::dot_i8_32(q + 32 * s, x + 32 * s);
          msum += m * (a[i].bsums[2 * s] + a[i].bsums[2 * s + 1]);
        }
        const float d = quants::h2f(five ? b5->d : b4->d), dmin = quants::h2f(five ? b5->dmin : b4->dmin);
        sum += a[i].d * (d * static_cast<float>(isum) - dmin * static_cast<float>(msum));
        break;
      }
      case DType::Q6_K: {
        const auto& b = static_cast<const BlockQ6_K*>(wrow)[i];
        for (int h = 0; h < 2; ++h)
          for (int l = 0; l < 32; ++l) {
            const uint8_t lo0 = b.ql[64 * h + l], lo1 = b.ql[64 * h + 32 + l], hi = b.qh[32 * h + l];
            q[128 * h + l] = static_cast<int8_t>(((lo0 & 0xF) | ((hi & 3) << 4)) - 32);
            q[128 * h + 32 + l] = static_cast<int8_t>(((lo1 & 0xF) | (((hi >> 2) & 3) << 4)) - 32);
            q[128 * h + 64 + l] = static_cast<int8_t>(((lo0 >> 4) | (((hi >> 4) & 3) << 4)) - 32);
            q[128 * h + 96 + l] = static_cast<int8_t>(((lo1 >> 4) | (((hi >> 6) & 3) << 4)) - 32);
          }
        int32_t isum = 0;
        for (int s = 0; s < 16; ++s) isum += b.scales[s] * P::dot_i8_16(q + 16 * s, x + 16 * s);
        sum += a[i].d * quants::h2f(b.d) * static_cast<float>(isum);
        break;
      }
      default: break;
    }
  }
  return sum;
}

// One output element for any quantized type.
template <class P>
float row_dot_quantized(DType t, const void* wrow, const void* act, size_t cols) noexcept {
  if (act_kind(t) == ActKind::q8) return dot_q8act<P>(t, wrow, static_cast<const ActQ8*>(act), cols / 32);
  return dot_q8kact<P>(t, wrow, static_cast<const ActQ8K*>(act), cols / 256);
}

// One output element of a vector backend O: float weights through O's own
// dot products, quantized ones through the block path over O's primitives P.
template <class O, class P>
float row_dot(DType t, const void* wrow, const void* act, size_t cols) noexcept {
  switch (t) {
    case DType::F32: return O::dot(static_cast<const float*>(act), static_cast<const float*>(wrow), cols);
    case DType::F16: return O::dot_f16(static_cast<const float*>(act), static_cast<const uint16_t*>(wrow), cols);
    case DType::BF16: return O::dot_bf16(static_cast<const float*>(act), static_cast<const uint16_t*>(wrow), cols);
    default: return row_dot_quantized<P>(t, wrow, act, cols);
  }
}

}  // namespace jielong::kernels::block

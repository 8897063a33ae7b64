// Quantized block formats, byte-compatible with ggml's blocks (ggml-common.h),
// and their scalar reference dequantizers and quantizers.
//
// These loops are the oracle the SIMD kernels are tested against, so they are
// written to be obviously right, not fast. The quantizers for Q8_0, Q4_0,
// Q4_1, Q5_0, Q5_1 follow ggml's reference quantizer operation for operation
// (same float expressions, same truncating casts), so a GGUF written by
// llama.cpp's quantize is reproduced byte for byte.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "jielong/core/dtype.hpp"
#include "jielong/core/half.hpp"
#include "jielong/core/status.hpp"

namespace jielong {

inline constexpr size_t QK4_0 = 32, QK4_1 = 32, QK5_0 = 32, QK5_1 = 32, QK8_0 = 32, QK8_1 = 32;
inline constexpr size_t QK_K = 256;       // elements of a k-quant super-block
inline constexpr size_t K_SCALE_SIZE = 12;  // packed 6-bit scales and mins of Q4_K/Q5_K

// Scales `d` (and mins `m`) are IEEE half floats stored as raw bits.
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[QK4_0 / 2];  // element j in the low nibble of qs[j], j+16 in the high nibble
};
struct BlockQ4_1 {
  uint16_t d, m;
  uint8_t qs[QK4_1 / 2];
};
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];  // fifth bit of element j is bit j of this little-endian word
  uint8_t qs[QK5_0 / 2];
};
struct BlockQ5_1 {
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[QK5_1 / 2];
};
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[QK8_0];
};
struct BlockQ8_1 {
  uint16_t d, s;  // s = d * sum(qs)
  int8_t qs[QK8_1];
};
// value = d * (scales[i] & 0xF) * q - dmin * (scales[i] >> 4), 16 sub-blocks of 16
struct BlockQ2_K {
  uint8_t scales[QK_K / 16];
  uint8_t qs[QK_K / 4];
  uint16_t d, dmin;
};
// value = d * (scale6 - 32) * (q2 + 4*hbit - 4), 16 sub-blocks of 16
struct BlockQ3_K {
  uint8_t hmask[QK_K / 8];
  uint8_t qs[QK_K / 4];
  uint8_t scales[12];
  uint16_t d;
};
// value = d * scale6 * q4 - dmin * min6, 8 sub-blocks of 32
struct BlockQ4_K {
  uint16_t d, dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qs[QK_K / 2];
};
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qh[QK_K / 8];
  uint8_t qs[QK_K / 2];
};
// value = d * scales[i] * (q6 - 32), 16 sub-blocks of 16
struct BlockQ6_K {
  uint8_t ql[QK_K / 2];
  uint8_t qh[QK_K / 4];
  int8_t scales[QK_K / 16];
  uint16_t d;
};
// The activation format of the k-quant dot products.
struct BlockQ8_K {
  float d;
  int8_t qs[QK_K];
  int16_t bsums[QK_K / 16];  // sums of each 16 qs
};

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 &&
              sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292);

namespace quants {

inline float h2f(uint16_t h) noexcept { return fp16_to_f32(h); }
inline uint16_t f2h(float f) noexcept { return f32_to_fp16(f); }

// ggml's round-to-nearest via the 1.5*2^23 trick (ties to even), for |x| < 2^22.
// x is pinned to a register first: a caller's product fused with the add into
// one FMA would round the exact product, not the float ggml rounds.
inline int nearest_int(float x) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  __asm__("" : "+x"(x));
#else
  volatile float pinned = x;
  x = pinned;
#endif
  const float v = x + 12582912.f;
  int32_t i;
  std::memcpy(&i, &v, sizeof i);
  return (i & 0x007fffff) - 0x00400000;
}

// A float to int8 as the cast would give for values in range (truncating);
// NaN (from NaN or infinite weights in a hostile file) gives 0 and values out
// of range saturate, where the cast itself would be undefined behaviour.
inline int8_t saturate_i8(float v) noexcept {
  if (!(v == v)) return 0;
  if (v >= 127.0f) return 127;
  if (v <= -128.0f) return -128;
  return static_cast<int8_t>(v);
}

// A rounded float product. ggml's reference quantizers compute x*id and then
// add the offset in two roundings; a compiler allowed to contract them into
// one FMA (g++ does by default) flips a quant on exact ties, so the product is
// pinned to a register first.
inline float mul_rounded(float a, float b) noexcept {
  float p = a * b;
#if defined(__GNUC__) || defined(__clang__)
  __asm__("" : "+x"(p));
#else
  volatile float v = p;
  p = v;
#endif
  return p;
}

// Q4_K / Q5_K pack 8 six-bit scales and 8 six-bit mins into 12 bytes.
inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t& d, uint8_t& m) noexcept {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
  }
}

// Q3_K packs 16 six-bit scales (biased by 32) into 12 bytes.
inline int q3k_scale(const uint8_t* s, int j) noexcept {
  const int low = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
  const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// ---------------------------------------------------------------- dequantize
// n is a multiple of the block size (checked by the dispatcher).

inline void dequantize_q4_0(const BlockQ4_0* x, float* y, size_t n) noexcept {
  for (size_t i = 0; i < n / QK4_0; ++i) {
    const float d = h2f(x[i].d);
    for (size_t j = 0; j < QK4_0 / 2; ++j) {
      y[i * QK4_0 + j] = static_cast<float>((x[i].qs[j] & 0xF) - 8) * d;
      y[i * QK4_0 + j + 16] = static_cast<float>((x[i].qs[j] >> 4) - 8) * d;
    }
  }
}
inline void dequantize_q4_1(const BlockQ4_1* x, float* y, size_t n) noexcept {
  for (size_t i = 0; i < n / QK4_1; ++i) {
    const float d = h2f(x[i].d), m = h2f(x[i].m);
    for (size_t j = 0; j < QK4_1 / 2; ++j) {
      y[i * QK4_1 + j] = static_cast<float>(x[i].qs[j] & 0xF) * d + m;
      y[i * QK4_1 + j + 16] = static_cast<float>(x[i].qs[j] >> 4) * d + m;
    }
  }
}
inline uint32_t load_qh(const uint8_t* qh) noexcept {
  uint32_t v;
  std::memcpy(&v, qh, 4);
  return v;
}
inline void dequantize_q5_0(const BlockQ5_0* x, float* y, size_t n) noexcept {
  for (size_t i = 0; i < n / QK5_0; ++i) {
    const float d = h2f(x[i].d);
    const uint32_t qh = load_qh(x[i].qh);
    for (size_t j = 0; j < QK5_0 / 2; ++j) {
      const int lo = (x[i].qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int hi = (x[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      y[i * QK5_0 + j] = static_cast<float>(lo - 16) * d;
      y[i * QK5_0 + j + 16] = static_cast<float>(hi - 16) * d;
    }
  }
}
inline void dequantize_q5_1(const BlockQ5_1* x, float* y, size_t n) noexcept {
  for (size_t i = 0; i < n / QK5_1; ++i) {
    const float d = h2f(x[i].d), m = h2f(x[i].m);
    const uint32_t qh = load_qh(x[i].qh);
    for (size_t j = 0; j < QK5_1 / 2; ++j) {
      const int lo = (x[i].qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int hi = (x[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      y[i * QK5_1 + j] = static_cast<float>(lo) * d + m;
      y[i * QK5_1 + j + 16] = static_cast<float>(hi) * d + m;
    }
  }
}
inline void dequantize_q8_0(const BlockQ8_0* x, float* y, size_t n) noexcept {
  for (size_t i = 0; i < n / QK8_0; ++i) {
    const float d = h2f(x[i].d);
    for (size_t j = 0; j < QK8_0; ++j) y[i * QK8_0 + j] = static_cast<float>(x[i].qs[j]) * d;
  }
}
inline void dequantize_q8_1(const BlockQ8_1* x, float* y, size_t n) noexcept {
  for (size_t i = 0; i < n / QK8_1; ++i) {
    const float d = h2f(x[i].d);
    for (size_t j = 0; j < QK8_1; ++j) y[i * QK8_1 + j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

// The k-quants store 256 elements as groups of 32 bytes whose 2-bit (or 4-bit)
// fields hold elements 32 apart; the index arithmetic below spells that out.
inline void dequantize_q2_k(const BlockQ2_K* x, float* y, size_t n) noexcept {
  for (size_t i = 0; i < n / QK_K; ++i) {
    const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
    for (size_t e = 0; e < QK_K; ++e) {
      const size_t half = e / 128, field = (e % 128) / 32, l = e % 32;  // byte qs[half*32 + l], bits 2*field
      const int q = (x[i].qs[half * 32 + l] >> (2 * field)) & 3;
      const uint8_t sc = x[i].scales[e / 16];
      y[i * QK_K + e] = d * static_cast<float>(sc & 0xF) * static_cast<float>(q) - dmin * static_cast<float>(sc >> 4);
    }
  }
}
inline void dequantize_q3_k(const BlockQ3_K* x, float* y, size_t n) noexcept {
  for (size_t i = 0; i < n / QK_K; ++i) {
    const float d = h2f(x[i].d);
    for (size_t e = 0; e < QK_K; ++e) {
      const size_t half = e / 128, field = (e % 128) / 32, l = e % 32;
      const int q2 = (x[i].qs[half * 32 + l] >> (2 * field)) & 3;
      const int hbit = (x[i].hmask[l] >> (half * 4 + field)) & 1;
      const int q = q2 + 4 * hbit - 4;
      y[i * QK_K + e] = d * static_cast<float>(q3k_scale(x[i].scales, static_cast<int>(e / 16))) * static_cast<float>(q);
    }
  }
}
inline void dequantize_q4_k(const BlockQ4_K* x, float* y, size_t n) noexcept {
  for (size_t i = 0; i < n / QK_K; ++i) {
    const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
    for (size_t e = 0; e < QK_K; ++e) {
      const size_t sub = e / 32, pair = e / 64, l = e % 32;  // sub-blocks 2p and 2p+1 share qs[32p..]
      const int q = (sub % 2 == 0) ? (x[i].qs[pair * 32 + l] & 0xF) : (x[i].qs[pair * 32 + l] >> 4);
      uint8_t sc, m;
      get_scale_min_k4(static_cast<int>(sub), x[i].scales, sc, m);
      y[i * QK_K + e] = d * static_cast<float>(sc) * static_cast<float>(q) - dmin * static_cast<float>(m);
    }
  }
}
inline void dequantize_q5_k(const BlockQ5_K* x, float* y, size_t n) noexcept {
  for (size_t i = 0; i < n / QK_K; ++i) {
    const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
    for (size_t e = 0; e < QK_K; ++e) {
      const size_t sub = e / 32, pair = e / 64, l = e % 32;
      const int q4 = (sub % 2 == 0) ? (x[i].qs[pair * 32 + l] & 0xF) : (x[i].qs[pair * 32 + l] >> 4);
      const int q = q4 | (((x[i].qh[l] >> sub) & 1) << 4);
      uint8_t sc, m;
      get_scale_min_k4(static_cast<int>(sub), x[i].scales, sc, m);
      y[i * QK_K + e] = d * static_cast<float>(sc) * static_cast<float>(q) - dmin * static_cast<float>(m);
    }
  }
}
inline void dequantize_q6_k(const BlockQ6_K* x, float* y, size_t n) noexcept {
  for (size_t i = 0; i < n / QK_K; ++i) {
    const float d = h2f(x[i].d);
    for (size_t e = 0; e < QK_K; ++e) {
      // elements 128h + 32f + l: low nibble from ql[64h + 32(f%2) + l] (f<2: low, else high nibble),
      // two high bits from qh[32h + l] at bits 2f.
      const size_t h = e / 128, f = (e % 128) / 32, l = e % 32;
      const uint8_t lbyte = x[i].ql[64 * h + 32 * (f % 2) + l];
      const int lo = f < 2 ? (lbyte & 0xF) : (lbyte >> 4);
      const int hi = (x[i].qh[32 * h + l] >> (2 * f)) & 3;
      const int q = (lo | (hi << 4)) - 32;
      y[i * QK_K + e] = d * static_cast<float>(x[i].scales[e / 16]) * static_cast<float>(q);
    }
  }
}
inline void dequantize_q8_k(const BlockQ8_K* x, float* y, size_t n) noexcept {
  for (size_t i = 0; i < n / QK_K; ++i)
    for (size_t j = 0; j < QK_K; ++j) y[i * QK_K + j] = x[i].d * static_cast<float>(x[i].qs[j]);
}

// ---------------------------------------------------------------- quantize

inline void quantize_q8_0(const float* x, BlockQ8_0* y, size_t n) noexcept {
  for (size_t i = 0; i < n / QK8_0; ++i) {
    float amax = 0.0f;
    for (size_t j = 0; j < QK8_0; ++j) amax = std::max(amax, std::fabs(x[i * QK8_0 + j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f2h(d);
    for (size_t j = 0; j < QK8_0; ++j) y[i].qs[j] = saturate_i8(std::round(x[i * QK8_0 + j] * id));
  }
}
inline void quantize_q8_1(const float* x, BlockQ8_1* y, size_t n) noexcept {
  for (size_t i = 0; i < n / QK8_1; ++i) {
    float amax = 0.0f;
    for (size_t j = 0; j < QK8_1; ++j) amax = std::max(amax, std::fabs(x[i * QK8_1 + j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f2h(d);
    int sum = 0;
    for (size_t j = 0; j < QK8_1; ++j) {
      y[i].qs[j] = saturate_i8(std::round(x[i * QK8_1 + j] * id));
      sum += y[i].qs[j];
    }
    y[i].s = f2h(static_cast<float>(sum) * d);
  }
}

// The element of largest magnitude, with its sign (first one on ties).
inline float signed_absmax(const float* x, size_t n) noexcept {
  float amax = 0.0f, max = 0.0f;
  for (size_t j = 0; j < n; ++j)
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  return max;
}

inline void quantize_q4_0(const float* x, BlockQ4_0* y, size_t n) noexcept {
  for (size_t i = 0; i < n / QK4_0; ++i) {
    const float* xb = x + i * QK4_0;
    // The largest element maps to -8 exactly, which uses the full signed range.
    const float d = signed_absmax(xb, QK4_0) / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f2h(d);
    for (size_t j = 0; j < QK4_0 / 2; ++j) {
      // ggml truncates through int8 after adding 8.5: round half up, then clamp 16 -> 15.
      const uint8_t lo = static_cast<uint8_t>(std::min<int>(15, saturate_i8(mul_rounded(xb[j], id) + 8.5f)));
      const uint8_t hi = static_cast<uint8_t>(std::min<int>(15, saturate_i8(mul_rounded(xb[j + 16], id) + 8.5f)));
      y[i].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}
inline void quantize_q4_1(const float* x, BlockQ4_1* y, size_t n) noexcept {
  for (size_t i = 0; i < n / QK4_1; ++i) {
    const float* xb = x + i * QK4_1;
    float min = xb[0], max = xb[0];
    for (size_t j = 1; j < QK4_1; ++j) {
      min = std::min(min, xb[j]);
      max = std::max(max, xb[j]);
    }
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f2h(d);
    y[i].m = f2h(min);
    for (size_t j = 0; j < QK4_1 / 2; ++j) {
      const uint8_t lo = static_cast<uint8_t>(std::min<int>(15, saturate_i8(mul_rounded(xb[j] - min, id) + 0.5f)));
      const uint8_t hi = static_cast<uint8_t>(std::min<int>(15, saturate_i8(mul_rounded(xb[j + 16] - min, id) + 0.5f)));
      y[i].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}
inline void quantize_q5_0(const float* x, BlockQ5_0* y, size_t n) noexcept {
  for (size_t i = 0; i < n / QK5_0; ++i) {
    const float* xb = x + i * QK5_0;
    const float d = signed_absmax(xb, QK5_0) / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f2h(d);
    uint32_t qh = 0;
    for (size_t j = 0; j < QK5_0 / 2; ++j) {
      const uint8_t lo = static_cast<uint8_t>(std::min<int>(31, saturate_i8(mul_rounded(xb[j], id) + 16.5f)));
      const uint8_t hi = static_cast<uint8_t>(std::min<int>(31, saturate_i8(mul_rounded(xb[j + 16], id) + 16.5f)));
      y[i].qs[j] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
      qh |= static_cast<uint32_t>((lo >> 4) & 1) << j;
      qh |= static_cast<uint32_t>((hi >> 4) & 1) << (j + 16);
    }
    std::memcpy(y[i].qh, &qh, 4);
  }
}
inline void quantize_q5_1(const float* x, BlockQ5_1* y, size_t n) noexcept {
  for (size_t i = 0; i < n / QK5_1; ++i) {
    const float* xb = x + i * QK5_1;
    float min = xb[0], max = xb[0];
    for (size_t j = 1; j < QK5_1; ++j) {
      min = std::min(min, xb[j]);
      max = std::max(max, xb[j]);
    }
    const float d = (max - min) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f2h(d);
    y[i].m = f2h(min);
    uint32_t qh = 0;
    for (size_t j = 0; j < QK5_1 / 2; ++j) {
      const uint8_t lo = static_cast<uint8_t>(saturate_i8(mul_rounded(xb[j] - min, id) + 0.5f));
      const uint8_t hi = static_cast<uint8_t>(saturate_i8(mul_rounded(xb[j + 16] - min, id) + 0.5f));
      y[i].qs[j] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
      qh |= static_cast<uint32_t>((lo >> 4) & 1) << j;
      qh |= static_cast<uint32_t>((hi >> 4) & 1) << (j + 16);
    }
    std::memcpy(y[i].qh, &qh, 4);
  }
}

inline void quantize_q8_k(const float* x, BlockQ8_K* y, size_t n) noexcept {
  for (size_t i = 0; i < n / QK_K; ++i) {
    const float* xb = x + i * QK_K;
    const float max = signed_absmax(xb, QK_K);
    if (max == 0.0f) {
      std::memset(&y[i], 0, sizeof(BlockQ8_K));
      continue;
    }
    const float iscale = -127.0f / max;
    for (size_t j = 0; j < QK_K; ++j) y[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * xb[j])));
    for (size_t j = 0; j < QK_K / 16; ++j) {
      int sum = 0;
      for (size_t l = 0; l < 16; ++l) sum += y[i].qs[16 * j + l];
      y[i].bsums[j] = static_cast<int16_t>(sum);
    }
    y[i].d = 1.0f / iscale;
  }
}

// Fits x ≈ scale * L - min with L in [0, nmax], min >= 0, by a short search over
// candidate scales minimising the weighted squared error (ggml's approach for
// Q4_K/Q5_K). Returns the scale; *the_min receives min. Every product rounds
// before its add, in ggml's order (w·(diff²), (w·l)·l), as ggml's reference
// make_qkx2_quants compiled without FMA contraction: the Q4_K/Q5_K bytes then
// match llama.cpp's quantizer exactly.
inline float fit_scale_min(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                           float rmin, float rdelta, int nstep) noexcept {
  float min = x[0], max = x[0];
  float sum_w = weights[0], sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    min = std::min(min, x[i]);
    max = std::max(max, x[i]);
    sum_w += weights[i];
    sum_x += mul_rounded(weights[i], x[i]);
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.0f;
  }
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
    L[i] = static_cast<uint8_t>(l);
    const float diff = mul_rounded(scale, static_cast<float>(l)) + min - x[i];
    best_error += mul_rounded(weights[i], diff * diff);
  }
  uint8_t Laux[32];
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + mul_rounded(rdelta, static_cast<float>(is)) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
      Laux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      sum_l += mul_rounded(w, static_cast<float>(l));
      sum_l2 += mul_rounded(w * static_cast<float>(l), static_cast<float>(l));
      sum_xl += mul_rounded(w * static_cast<float>(l), x[i]);
    }
    const float D = mul_rounded(sum_w, sum_l2) - mul_rounded(sum_l, sum_l);
    if (D > 0) {
      float this_scale = (mul_rounded(sum_w, sum_xl) - mul_rounded(sum_x, sum_l)) / D;
      float this_min = (mul_rounded(sum_l2, sum_x) - mul_rounded(sum_l, sum_xl)) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        const float diff = mul_rounded(this_scale, static_cast<float>(Laux[i])) + this_min - x[i];
        cur_error += mul_rounded(weights[i], diff * diff);
      }
      if (cur_error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

// Shared by Q4_K (nmax 15) and Q5_K (nmax 31): per-32 scale and min, each
// stored as 6 bits relative to the super-block's d and dmin.
inline void quantize_k_scale_min(const float* x, int nmax, uint16_t& d_out, uint16_t& dmin_out,
                                 uint8_t* packed_scales, uint8_t* L) noexcept {
  float scales[8], mins[8], weights[32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += mul_rounded(x[32 * j + l], x[32 * j + l]);
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
    scales[j] = nmax == 15 ? fit_scale_min(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], -1.0f, 0.1f, 20)
                           : fit_scale_min(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], -0.5f, 0.1f, 15);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  std::memset(packed_scales, 0, K_SCALE_SIZE);
  for (int j = 0; j < 8; ++j) {
    const uint8_t ls = static_cast<uint8_t>(std::min(63, nearest_int(inv_scale * scales[j])));
    const uint8_t lm = static_cast<uint8_t>(std::min(63, nearest_int(inv_min * mins[j])));
    if (j < 4) {
      packed_scales[j] = ls;
      packed_scales[j + 4] = lm;
    } else {
      packed_scales[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      packed_scales[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
      packed_scales[j - 0] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
  }
  d_out = f2h(max_scale / 63.f);
  dmin_out = f2h(max_min / 63.f);
  // Requantize against the rounded scales actually stored.
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    get_scale_min_k4(j, packed_scales, sc, m);
    const float d = h2f(d_out) * sc;
    if (d == 0.0f) continue;
    const float dm = h2f(dmin_out) * m;
    for (int ii = 0; ii < 32; ++ii)
      L[32 * j + ii] = static_cast<uint8_t>(std::clamp(nearest_int((x[32 * j + ii] + dm) / d), 0, nmax));
  }
}

inline void quantize_q4_k(const float* x, BlockQ4_K* y, size_t n) noexcept {
  for (size_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    uint8_t L[QK_K];
    quantize_k_scale_min(x, 15, y[i].d, y[i].dmin, y[i].scales, L);
    for (size_t pair = 0; pair < 4; ++pair)
      for (size_t l = 0; l < 32; ++l)
        y[i].qs[pair * 32 + l] = static_cast<uint8_t>(L[pair * 64 + l] | (L[pair * 64 + 32 + l] << 4));
  }
}
inline void quantize_q5_k(const float* x, BlockQ5_K* y, size_t n) noexcept {
  for (size_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    uint8_t L[QK_K];
    quantize_k_scale_min(x, 31, y[i].d, y[i].dmin, y[i].scales, L);
    std::memset(y[i].qh, 0, sizeof y[i].qh);
    for (size_t pair = 0; pair < 4; ++pair)
      for (size_t l = 0; l < 32; ++l) {
        const int lo = L[pair * 64 + l], hi = L[pair * 64 + 32 + l];
        y[i].qs[pair * 32 + l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
        y[i].qh[l] |= static_cast<uint8_t>(((lo >> 4) << (2 * pair)) | ((hi >> 4) << (2 * pair + 1)));
      }
  }
}

// Fits x ≈ scale * (L - nmax), L in [0, 2*nmax), trying 19 scales around the
// naive one and keeping the best by weighted error (weights x^2). The sums
// round as ggml's make_qx_quants does — (w·x)·l and (w·l)·l, each product
// rounded before the add — so Q6_K blocks come out byte-identical to
// llama.cpp's quantizer (an FMA or w·(l·l) tips the choice between two
// nearly equal scales now and then).
inline float fit_symmetric_scale(int n, int nmax, const float* x, int8_t* L) noexcept {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  if (amax < 1e-15f) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  float iscale = -static_cast<float>(nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += mul_rounded(w * x[i], static_cast<float>(l));
    suml2 += mul_rounded(w * static_cast<float>(l), static_cast<float>(l));
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
      const float w = x[i] * x[i];
      sumlx += mul_rounded(w * x[i], static_cast<float>(l));
      suml2 += mul_rounded(w * static_cast<float>(l), static_cast<float>(l));
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i)
        L[i] = static_cast<int8_t>(nmax + std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

inline void quantize_q6_k(const float* x, BlockQ6_K* y, size_t n) noexcept {
  for (size_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    int8_t L[QK_K];
    float scales[QK_K / 16];
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ++ib) {
      scales[ib] = fit_symmetric_scale(16, 32, x + 16 * ib, L + 16 * ib);
      if (std::fabs(scales[ib]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[ib]);
        max_scale = scales[ib];
      }
    }
    if (max_abs_scale < 1e-15f) {
      std::memset(&y[i], 0, sizeof(BlockQ6_K));
      continue;
    }
    const float iscale = -128.f / max_scale;
    y[i].d = f2h(1 / iscale);
    for (int ib = 0; ib < 16; ++ib) y[i].scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
    for (int j = 0; j < 16; ++j) {
      const float d = h2f(y[i].d) * y[i].scales[j];
      if (d == 0.0f) continue;
      for (int ii = 0; ii < 16; ++ii)
        L[16 * j + ii] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * j + ii] / d), -32, 31) + 32);
    }
    for (size_t h = 0; h < 2; ++h)
      for (size_t l = 0; l < 32; ++l) {
        const int q1 = L[128 * h + l], q2 = L[128 * h + l + 32], q3 = L[128 * h + l + 64], q4 = L[128 * h + l + 96];
        y[i].ql[64 * h + l] = static_cast<uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
        y[i].ql[64 * h + l + 32] = static_cast<uint8_t>((q2 & 0xF) | ((q4 & 0xF) << 4));
        y[i].qh[32 * h + l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
      }
  }
}

// ---------------------------------------------------------------- by dtype

inline bool can_dequantize(DType t) noexcept {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16: case DType::Q4_0: case DType::Q4_1:
    case DType::Q5_0: case DType::Q5_1: case DType::Q8_0: case DType::Q8_1: case DType::Q2_K:
    case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: case DType::Q8_K:
      return true;
    default:
      return false;
  }
}
inline bool can_quantize(DType t) noexcept {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16: case DType::Q4_0: case DType::Q4_1:
    case DType::Q5_0: case DType::Q5_1: case DType::Q8_0: case DType::Q8_1: case DType::Q4_K:
    case DType::Q5_K: case DType::Q6_K: case DType::Q8_K:
      return true;
    default:
      return false;
  }
}

// Scalar reference. n must be a multiple of t's block size; src points at
// row_bytes(t, n) bytes. Unknown types leave dst untouched (callers check
// can_dequantize when the type comes from a file).
inline void dequantize_row(DType t, const void* src, float* dst, size_t n) noexcept {
  switch (t) {
    case DType::F32: std::memcpy(dst, src, n * sizeof(float)); break;
    case DType::F16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = fp16_to_f32(h[i]);
      break;
    }
    case DType::BF16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(h[i]);
      break;
    }
    case DType::Q4_0: dequantize_q4_0(static_cast<const BlockQ4_0*>(src), dst, n); break;
    case DType::Q4_1: dequantize_q4_1(static_cast<const BlockQ4_1*>(src), dst, n); break;
    case DType::Q5_0: dequantize_q5_0(static_cast<const BlockQ5_0*>(src), dst, n); break;
    case DType::Q5_1: dequantize_q5_1(static_cast<const BlockQ5_1*>(src), dst, n); break;
    case DType::Q8_0: dequantize_q8_0(static_cast<const BlockQ8_0*>(src), dst, n); break;
    case DType::Q8_1: dequantize_q8_1(static_cast<const BlockQ8_1*>(src), dst, n); break;
    case DType::Q2_K: dequantize_q2_k(static_cast<const BlockQ2_K*>(src), dst, n); break;
    case DType::Q3_K: dequantize_q3_k(static_cast<const BlockQ3_K*>(src), dst, n); break;
    case DType::Q4_K: dequantize_q4_k(static_cast<const BlockQ4_K*>(src), dst, n); break;
    case DType::Q5_K: dequantize_q5_k(static_cast<const BlockQ5_K*>(src), dst, n); break;
    case DType::Q6_K: dequantize_q6_k(static_cast<const BlockQ6_K*>(src), dst, n); break;
    case DType::Q8_K: dequantize_q8_k(static_cast<const BlockQ8_K*>(src), dst, n); break;
    default: break;
  }
}

// Scalar reference quantizer: writes row_bytes(t, n) bytes at dst.
inline Status quantize_row(DType t, const float* src, void* dst, size_t n) {
  if (!can_quantize(t))
    return make_error(Code::unsupported, "quantize_row: no quantizer for type " + std::string(dtype_name(t)));
  const size_t block = dtype_info(t).block_size;
  if (n % block != 0)
    return make_error(Code::invalid_argument, "quantize_row: " + std::to_string(n) + " elements is not a multiple of " +
                                                  std::string(dtype_name(t)) + "'s block size " + std::to_string(block));
  switch (t) {
    case DType::F32: std::memcpy(dst, src, n * sizeof(float)); break;
    case DType::F16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; ++i) h[i] = f32_to_fp16(src[i]);
      break;
    }
    case DType::BF16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; ++i) h[i] = f32_to_bf16(src[i]);
      break;
    }
    case DType::Q4_0: quantize_q4_0(src, static_cast<BlockQ4_0*>(dst), n); break;
    case DType::Q4_1: quantize_q4_1(src, static_cast<BlockQ4_1*>(dst), n); break;
    case DType::Q5_0: quantize_q5_0(src, static_cast<BlockQ5_0*>(dst), n); break;
    case DType::Q5_1: quantize_q5_1(src, static_cast<BlockQ5_1*>(dst), n); break;
    case DType::Q8_0: quantize_q8_0(src, static_cast<BlockQ8_0*>(dst), n); break;
    case DType::Q8_1: quantize_q8_1(src, static_cast<BlockQ8_1*>(dst), n); break;
    case DType::Q4_K: quantize_q4_k(src, static_cast<BlockQ4_K*>(dst), n); break;
    case DType::Q5_K: quantize_q5_k(src, static_cast<BlockQ5_K*>(dst), n); break;
    case DType::Q6_K: quantize_q6_k(src, static_cast<BlockQ6_K*>(dst), n); break;
    case DType::Q8_K: quantize_q8_k(src, static_cast<BlockQ8_K*>(dst), n); break;
    default: break;
  }
  return Status::ok();
}

}  // namespace quants
}  // namespace jielong

// Element types of weights and caches. The numeric ids are ggml's, so a GGUF
// tensor's type field maps onto DType directly; block sizes and bytes follow
// ggml's block layouts (see core/quants.hpp for the blocks themselves).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

namespace jielong {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

struct DTypeInfo {
  DType type;
  std::string_view name;  // lower case, as llama.cpp's quantize spells it
  uint32_t block_size;    // elements per block
  uint32_t block_bytes;   // bytes per block
  bool quantized;
};

namespace detail {
inline constexpr DTypeInfo kDTypes[] = {
    {DType::F32, "f32", 1, 4, false},        {DType::F16, "f16", 1, 2, false},
    {DType::Q4_0, "q4_0", 32, 18, true},     {DType::Q4_1, "q4_1", 32, 20, true},
    {DType::Q5_0, "q5_0", 32, 22, true},     {DType::Q5_1, "q5_1", 32, 24, true},
    {DType::Q8_0, "q8_0", 32, 34, true},     {DType::Q8_1, "q8_1", 32, 36, true},
    {DType::Q2_K, "q2_k", 256, 84, true},    {DType::Q3_K, "q3_k", 256, 110, true},
    {DType::Q4_K, "q4_k", 256, 144, true},   {DType::Q5_K, "q5_k", 256, 176, true},
    {DType::Q6_K, "q6_k", 256, 210, true},   {DType::Q8_K, "q8_k", 256, 292, true},
    {DType::I8, "i8", 1, 1, false},          {DType::I16, "i16", 1, 2, false},
    {DType::I32, "i32", 1, 4, false},        {DType::I64, "i64", 1, 8, false},
    {DType::F64, "f64", 1, 8, false},        {DType::BF16, "bf16", 1, 2, false},
};
}  // namespace detail

// nullptr for ids jielong does not know (including ggml's IQ formats).
constexpr const DTypeInfo* dtype_info(uint32_t raw) noexcept {
  for (const DTypeInfo& info : detail::kDTypes)
    if (static_cast<uint32_t>(info.type) == raw) return &info;
  return nullptr;
}
constexpr const DTypeInfo& dtype_info(DType t) noexcept {
  const DTypeInfo* info = dtype_info(static_cast<uint32_t>(t));
  return info ? *info : detail::kDTypes[0];
}
constexpr std::string_view dtype_name(DType t) noexcept {
  const DTypeInfo* info = dtype_info(static_cast<uint32_t>(t));
  return info ? info->name : std::string_view("unknown");
}

// Case-insensitive ("Q4_0", "q4_0", "F16").
constexpr std::optional<DType> parse_dtype(std::string_view s) noexcept {
  for (const DTypeInfo& info : detail::kDTypes) {
    if (info.name.size() != s.size()) continue;
    bool same = true;
    for (size_t i = 0; i < s.size() && same; ++i) {
      char c = s[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      same = c == info.name[i];
    }
    if (same) return info.type;
  }
  return std::nullopt;
}

// Bytes of a row of n elements; 0 when n is not a whole number of blocks or
// the product overflows (callers treat 0 as "invalid shape" for n > 0).
constexpr size_t row_bytes(DType t, uint64_t n) noexcept {
  const DTypeInfo& info = dtype_info(t);
  if (n % info.block_size != 0) return 0;
  const uint64_t blocks = n / info.block_size;
  if (blocks > std::numeric_limits<size_t>::max() / info.block_bytes) return 0;
  return static_cast<size_t>(blocks * info.block_bytes);
}

}  // namespace jielong

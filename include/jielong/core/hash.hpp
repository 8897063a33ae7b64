// FNV-1a, 64 bits: the checksum of saved sessions and token shards, and the
// key of exact-duplicate removal. Not cryptographic; it catches damaged and
// truncated files, and two texts that differ hash apart with overwhelming odds.
#pragma once

#include <cstddef>
#include <cstdint>

namespace jielong {

inline constexpr uint64_t kFnv1aBasis = 0xcbf29ce484222325ull;

inline uint64_t fnv1a(const void* data, size_t n, uint64_t h = kFnv1aBasis) noexcept {
  const auto* b = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

}  // namespace jielong

// Code points for the tokenizers: UTF-8 in and out, general categories,
// white space, lower case, the base letter of a decomposed character, and the
// GPT-2 byte <-> code point table of byte-level BPE.
//
// UTF-8 decoding here follows the reference tokenizers, not a validator: a
// lead byte announces the length and only the continuation bits are checked,
// and a byte that starts nothing valid becomes U+FFFD and is skipped alone.
// `utf8_valid_prefix` below is the strict decoder used for output text.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "jielong/text/unicode_data.hpp"

namespace jielong::text {

// Coarse general category, one per code point (as \p{L}, \p{N}, ... see them).
enum class Category : uint8_t { letter = 1, number = 2, punctuation = 3, symbol = 4, mark = 5, separator = 6, other = 7 };

inline Category category(uint32_t cp) noexcept {
  if (cp >= 0x110000) return Category::other;
  const uint32_t* first = std::begin(unicode_data::kCategoryRanges);
  const uint32_t* last = std::end(unicode_data::kCategoryRanges);
  // The last range starting at or before cp.
  const uint32_t* it = std::upper_bound(first, last, cp, [](uint32_t v, uint32_t e) { return v < (e >> 3); });
  return static_cast<Category>(*(it - 1) & 7u);
}

inline bool is_whitespace(uint32_t cp) noexcept {
  return std::binary_search(std::begin(unicode_data::kWhitespace), std::end(unicode_data::kWhitespace), cp);
}

inline uint32_t to_lower(uint32_t cp) noexcept {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  const auto* first = std::begin(unicode_data::kLowerRuns);
  const auto* last = std::end(unicode_data::kLowerRuns);
  const auto* it = std::upper_bound(first, last, cp, [](uint32_t v, const unicode_data::LowerRun& r) { return v < r.first; });
  if (it == first) return cp;
  const auto& run = *(it - 1);
  const uint32_t off = cp - run.first;
  if (off % run.stride != 0 || off / run.stride >= run.count) return cp;
  return static_cast<uint32_t>(static_cast<int64_t>(cp) + run.delta);
}

// First code point of the canonical decomposition ('é' -> 'e'); cp itself when none.
inline uint32_t nfd_base(uint32_t cp) noexcept {
  if (cp < 0xC0) return cp;
  const auto* first = std::begin(unicode_data::kNfdRanges);
  const auto* last = std::end(unicode_data::kNfdRanges);
  const auto* it = std::upper_bound(first, last, cp, [](uint32_t v, const unicode_data::NfdRange& r) { return v < r.first; });
  if (it == first) return cp;
  const auto& r = *(it - 1);
  return cp <= r.last ? r.base : cp;
}

// Length that a lead byte announces (1 for continuation and invalid bytes).
constexpr size_t utf8_len(uint8_t lead) noexcept {
  constexpr uint8_t lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return lookup[lead >> 4];
}

// One code point at `offset` (advanced past it). Malformed input yields U+FFFD
// and advances one byte, so every byte is consumed exactly once.
inline uint32_t decode_utf8(std::string_view s, size_t& offset) noexcept {
  const auto b = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const auto cont = [&](size_t i) { return i < s.size() && (b(i) & 0xC0) == 0x80; };
  const uint8_t c0 = b(offset);
  if (!(c0 & 0x80)) {
    offset += 1;
    return c0;
  }
  if ((c0 & 0x40) && !(c0 & 0x20) && cont(offset + 1)) {
    const uint32_t cp = ((c0 & 0x1Fu) << 6) | (b(offset + 1) & 0x3Fu);
    offset += 2;
    return cp;
  }
  if ((c0 & 0x60) == 0x60 && !(c0 & 0x10) && cont(offset + 1) && cont(offset + 2)) {
    const uint32_t cp = ((c0 & 0x0Fu) << 12) | ((b(offset + 1) & 0x3Fu) << 6) | (b(offset + 2) & 0x3Fu);
    offset += 3;
    return cp;
  }
  if ((c0 & 0x70) == 0x70 && !(c0 & 0x08) && cont(offset + 1) && cont(offset + 2) && cont(offset + 3)) {
    const uint32_t cp = ((c0 & 0x07u) << 18) | ((b(offset + 1) & 0x3Fu) << 12) | ((b(offset + 2) & 0x3Fu) << 6) |
                        (b(offset + 3) & 0x3Fu);
    offset += 4;
    return cp;
  }
  offset += 1;
  return 0xFFFD;
}

inline void decode_utf8(std::string_view s, std::vector<uint32_t>& out) {
  out.clear();
  out.reserve(s.size());
  for (size_t off = 0; off < s.size();) out.push_back(decode_utf8(s, off));
}

inline void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | ((cp >> 18) & 0x07)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Strict UTF-8 (Unicode table 3-7). Returns how many bytes of s[0..] form one
// well-formed sequence (>0), 0 if s is a proper prefix of one (need more
// bytes), or -k if the first k bytes are a maximal ill-formed subpart (to be
// replaced by one U+FFFD, as Unicode recommends and Python does).
inline int utf8_sequence(std::string_view s) noexcept {
  if (s.empty()) return 0;
  const uint8_t c0 = static_cast<uint8_t>(s[0]);
  if (c0 < 0x80) return 1;
  int need;
  uint8_t lo = 0x80, hi = 0xBF;  // bounds of the second byte
  if (c0 >= 0xC2 && c0 <= 0xDF) {
    need = 1;
  } else if (c0 >= 0xE0 && c0 <= 0xEF) {
    need = 2;
    if (c0 == 0xE0) lo = 0xA0;
    if (c0 == 0xED) hi = 0x9F;
  } else if (c0 >= 0xF0 && c0 <= 0xF4) {
    need = 3;
    if (c0 == 0xF0) lo = 0x90;
    if (c0 == 0xF4) hi = 0x8F;
  } else {
    return -1;
  }
  for (int i = 1; i <= need; ++i) {
    if (static_cast<size_t>(i) >= s.size()) return 0;
    const uint8_t c = static_cast<uint8_t>(s[i]);
    const uint8_t l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
    if (c < l || c > h) return -i;
  }
  return need + 1;
}

// Valid UTF-8 for any bytes: each maximal ill-formed subpart becomes U+FFFD.
inline std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  while (!s.empty()) {
    const int k = utf8_sequence(s);
    if (k > 0) {
      out.append(s.substr(0, static_cast<size_t>(k)));
      s.remove_prefix(static_cast<size_t>(k));
    } else {
      out.append("\xEF\xBF\xBD");
      s.remove_prefix(k == 0 ? s.size() : static_cast<size_t>(-k));  // 0: truncated at the end
    }
  }
  return out;
}

// GPT-2's reversible map from bytes to printable code points: printable
// Latin-1 bytes map to themselves, the other 68 to U+0100 onwards in order.
struct ByteUnicodeTable {
  uint16_t byte_to_cp[256];
  int16_t cp_to_byte[0x144];  // -1 where no byte maps to the code point

  constexpr ByteUnicodeTable() : byte_to_cp{}, cp_to_byte{} {
    for (auto& v : cp_to_byte) v = -1;
    uint16_t n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      byte_to_cp[b] = printable ? static_cast<uint16_t>(b) : static_cast<uint16_t>(256 + n++);
      cp_to_byte[byte_to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};

inline constexpr ByteUnicodeTable kByteUnicode{};

// Appends the GPT-2 encoding of raw bytes.
inline void append_byte_encoded(std::string& out, std::string_view bytes) {
  for (char c : bytes) append_utf8(out, kByteUnicode.byte_to_cp[static_cast<uint8_t>(c)]);
}

// Decodes GPT-2 encoded text back to bytes; code points outside the table
// are kept as their UTF-8 (added tokens are stored unencoded).
inline void append_byte_decoded(std::string& out, std::string_view text) {
  for (size_t off = 0; off < text.size();) {
    const size_t start = off;
    const uint32_t cp = decode_utf8(text, off);
    if (cp < 0x144 && kByteUnicode.cp_to_byte[cp] >= 0) {
      out.push_back(static_cast<char>(kByteUnicode.cp_to_byte[cp]));
    } else {
      out.append(text.substr(start, off - start));
    }
  }
}

}  // namespace jielong::text

// The JSON-lines record `jielong eval` prints: one object per prompt with
// the prompt's tokens, the top logits at every prompt position and the greedy
// continuation (run::EvalRecord), laid out exactly as the llama.cpp reference
// files are, so the two can be compared line by line.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "jielong/run/eval.hpp"

namespace jielong::cli {

namespace json_detail {

// The length of the valid UTF-8 sequence starting at s[i], or 0.
inline size_t utf8_sequence(std::string_view s, size_t i) noexcept {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  size_t n;
  uint32_t cp;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) n = 2, cp = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF) n = 3, cp = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4) n = 4, cp = c & 0x07;
  else return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n;
}

}  // namespace json_detail

// A JSON string literal. Each byte that does not start a complete UTF-8
// sequence becomes one U+FFFD; control characters other than \n are
// \u00XX; U+FFFD is written as \ufffd; other characters are kept as UTF-8.
inline std::string json_string(std::string_view s) {
  std::string out = "\"";
  char buf[8];
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = json_detail::utf8_sequence(s, i);
    if (n == 0 || (n == 3 && s.substr(i, 3) == "\xEF\xBF\xBD")) {
      out += "\\ufffd";
      i += n == 0 ? 1 : n;
      continue;
    }
    if (n == 1) {
      if (c == '"') out += "\\\"";
      else if (c == '\\') out += "\\\\";
      else if (c == '\n') out += "\\n";
      else if (c < 0x20) {
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      } else out += static_cast<char>(c);
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  out += '"';
  return out;
}

// A float as C++ streams print it by default (6 significant digits, %g).
inline std::string json_float(float x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", static_cast<double>(x));
  return buf;
}

inline std::string hex_bytes(std::string_view s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(2 * s.size());
  for (unsigned char c : s) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

inline std::string to_json_line(const run::EvalRecord& r) {
  std::string o = "{\"prompt\":" + json_string(r.prompt) + ",\"tokens\":[";
  for (size_t i = 0; i < r.tokens.size(); ++i) o += (i ? "," : "") + std::to_string(r.tokens[i]);
  o += "],\"prompt_top\":[";
  for (size_t p = 0; p < r.prompt_top.size(); ++p) {
    o += p ? ",[" : "[";
    for (size_t k = 0; k < r.prompt_top[p].size(); ++k)
      o += (k ? ",[" : "[") + std::to_string(r.prompt_top[p][k].first) + "," + json_float(r.prompt_top[p][k].second) + "]";
    o += "]";
  }
  o += "],\"greedy\":[";
  for (size_t i = 0; i < r.greedy.size(); ++i) o += (i ? "," : "") + std::to_string(r.greedy[i]);
  o += "],\"text_hex\":\"" + hex_bytes(r.text) + "\",\"text\":" + json_string(r.text) + "}";
  return o;
}

}  // namespace jielong::cli

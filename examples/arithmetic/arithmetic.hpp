// Procedural arithmetic for the reasoning model (jielong-arith): problems of
// +, - and x on operands of a given number of digits, written either as a
// direct answer or as a scratchpad that works digit by digit with carries,
// the way it is taught on paper (a chain of thought the model writes before
// the answer).
//
//   direct       123+456=579
//   scratchpad   123+456:         one line per digit, least significant first:
//                3+6+0=9 c0       digit + digit + carry in = digit, carry out
//                2+5+0=7 c0
//                1+4+0=5 c0
//                =579             the answer, last
//
// Subtraction borrows ("3-6-0=7 b1"); a negative difference first swaps the
// operands ("-(456-123)"). Multiplication writes each partial product digit
// by digit ("3*7+2=3 c2": 3*7+2 = 23), its value ("=861"), then adds the
// shifted partial products with the addition scratchpad ("861+12300:").
// Every problem ends with a newline; in the data each starts a document.
//
// A problem is held out when a hash of (operation, a, b) falls in a tenth of
// its range: the training data never contains it, in either format, and the
// evaluation draws only such problems.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "jielong/core/status.hpp"
#include "jielong/text/vocab.hpp"
#include "jielong/train/bpe.hpp"

namespace jielong::arith {

enum class Op : uint8_t { add, sub, mul };
enum class Format : uint8_t { direct, scratchpad };

inline constexpr Op kOps[] = {Op::add, Op::sub, Op::mul};
inline constexpr Format kFormats[] = {Format::direct, Format::scratchpad};

inline char op_char(Op op) noexcept { return op == Op::add ? '+' : op == Op::sub ? '-' : '*'; }
inline const char* op_name(Op op) noexcept { return op == Op::add ? "addition" : op == Op::sub ? "subtraction" : "multiplication"; }
inline const char* format_name(Format f) noexcept { return f == Format::direct ? "direct" : "scratchpad"; }

// Digits per operand the data covers: + and - up to 4, x up to 2 (a 3x3
// scratchpad is longer than the 256-token context).
inline int max_digits(Op op) noexcept { return op == Op::mul ? 2 : 4; }

struct Problem {
  Op op;
  uint64_t a, b;
};

inline uint64_t mix64(uint64_t x) noexcept {  // splitmix64's finaliser
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

inline bool held_out(const Problem& p) noexcept {
  return mix64(mix64(static_cast<uint64_t>(p.op) * 1000003u + p.a) ^ p.b) % 10 == 0;
}

inline int64_t result(const Problem& p) noexcept {
  const auto a = static_cast<int64_t>(p.a), b = static_cast<int64_t>(p.b);
  return p.op == Op::add ? a + b : p.op == Op::sub ? a - b : a * b;
}

// Operands of exactly `digits` digits (1 digit: 0-9).
template <class Rng>
Problem sample(Op op, int digits, Rng& rng) {
  uint64_t lo = 1, hi = 9;
  for (int i = 1; i < digits; ++i) lo *= 10, hi = hi * 10 + 9;
  if (digits == 1) lo = 0;
  std::uniform_int_distribution<uint64_t> d(lo, hi);
  const uint64_t a = d(rng);
  return {op, a, d(rng)};
}

namespace detail {

inline std::vector<int> digits_of(uint64_t x) {  // least significant first
  std::vector<int> d;
  do {
    d.push_back(static_cast<int>(x % 10));
    x /= 10;
  } while (x);
  return d;
}

// a+b digit by digit, then "=sum".
inline void add_steps(uint64_t a, uint64_t b, std::string& s) {
  const std::vector<int> da = digits_of(a), db = digits_of(b);
  int carry = 0;
  for (size_t i = 0; i < std::max(da.size(), db.size()); ++i) {
    const int x = i < da.size() ? da[i] : 0, y = i < db.size() ? db[i] : 0, t = x + y + carry;
    s += std::to_string(x) + "+" + std::to_string(y) + "+" + std::to_string(carry) + "=" + std::to_string(t % 10) +
         " c" + std::to_string(t / 10) + "\n";
    carry = t / 10;
  }
  s += "=" + std::to_string(a + b) + "\n";
}

// a-b (a >= b) digit by digit with borrows, then "=difference".
inline void sub_steps(uint64_t a, uint64_t b, std::string& s) {
  const std::vector<int> da = digits_of(a), db = digits_of(b);
  int borrow = 0;
  for (size_t i = 0; i < da.size(); ++i) {
    const int x = da[i], y = i < db.size() ? db[i] : 0, t = x - y - borrow;
    const int next = t < 0 ? 1 : 0;
    s += std::to_string(x) + "-" + std::to_string(y) + "-" + std::to_string(borrow) + "=" + std::to_string(t + 10 * next) +
         " b" + std::to_string(next) + "\n";
    borrow = next;
  }
}

// a*y for one digit y, digit by digit, then "=product".
inline void mul_digit_steps(uint64_t a, int y, std::string& s) {
  int carry = 0;
  for (int x : digits_of(a)) {
    const int t = x * y + carry;
    s += std::to_string(x) + "*" + std::to_string(y) + "+" + std::to_string(carry) + "=" + std::to_string(t % 10) +
         " c" + std::to_string(t / 10) + "\n";
    carry = t / 10;
  }
  s += "=" + std::to_string(a * static_cast<uint64_t>(y)) + "\n";
}

}  // namespace detail

// What the model is given: "123+456=" or "123+456:\n".
inline std::string prompt(const Problem& p, Format f) {
  return std::to_string(p.a) + op_char(p.op) + std::to_string(p.b) + (f == Format::direct ? "=" : ":\n");
}

// What the model should write after the prompt, ending with a newline.
inline std::string completion(const Problem& p, Format f) {
  const int64_t r = result(p);
  if (f == Format::direct) return std::to_string(r) + "\n";
  std::string s;
  switch (p.op) {
    case Op::add: detail::add_steps(p.a, p.b, s); break;
    case Op::sub:
      if (p.a >= p.b) {
        detail::sub_steps(p.a, p.b, s);
      } else {
        s += "-(" + std::to_string(p.b) + "-" + std::to_string(p.a) + ")\n";
        detail::sub_steps(p.b, p.a, s);
      }
      s += "=" + std::to_string(r) + "\n";
      break;
    case Op::mul: {
      uint64_t sum = 0, shift = 1;
      for (int y : detail::digits_of(p.b)) {
        detail::mul_digit_steps(p.a, y, s);
        const uint64_t part = p.a * static_cast<uint64_t>(y) * shift;
        if (shift > 1) {
          s += std::to_string(sum) + "+" + std::to_string(part) + ":\n";
          detail::add_steps(sum, part, s);
        }
        sum += part;
        shift *= 10;
      }
      break;
    }
  }
  return s;
}

inline std::string document(const Problem& p, Format f) { return prompt(p, f) + completion(p, f); }

// The answer a completion gives: direct, its first line; scratchpad, the
// last line that starts with '='. nullopt when there is none.
inline std::optional<std::string> answer_of(std::string_view text, Format f) {
  if (f == Format::direct) {
    const size_t nl = text.find('\n');
    if (nl == std::string_view::npos) return std::nullopt;
    return std::string(text.substr(0, nl));
  }
  std::optional<std::string> last;
  size_t start = 0;
  while (start < text.size()) {
    const size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) break;  // an unfinished line is no answer
    if (text[start] == '=') last = std::string(text.substr(start + 1, nl - start - 1));
    start = nl + 1;
  }
  return last;
}

// Training documents: operation, digit count and format drawn uniformly
// (multiplication has fewer digit counts, so each is drawn as often as the
// others'), held-out problems skipped. Deterministic for a seed.
struct DataOptions {
  size_t documents = 200000;
  uint64_t seed = 1;
  int max_digits_add = 4;  // lower to make a smaller task (the tests' tiny run)
  int max_digits_mul = 2;
  bool mul = true, sub = true;
};

template <class Sink>  // Sink: void(const std::string& document)
void generate_training(const DataOptions& o, Sink&& sink) {
  std::mt19937_64 rng(o.seed);
  std::vector<std::pair<Op, int>> kinds;
  for (int d = 1; d <= o.max_digits_add; ++d) kinds.emplace_back(Op::add, d);
  if (o.sub)
    for (int d = 1; d <= o.max_digits_add; ++d) kinds.emplace_back(Op::sub, d);
  if (o.mul)
    for (int d = 1; d <= o.max_digits_mul; ++d) kinds.emplace_back(Op::mul, d);
  std::uniform_int_distribution<size_t> pick(0, kinds.size() - 1);
  std::uniform_int_distribution<int> fmt(0, 1);
  for (size_t n = 0; n < o.documents;) {
    const auto [op, digits] = kinds[pick(rng)];
    const Format f = kFormats[fmt(rng)];
    const Problem p = sample(op, digits, rng);
    if (held_out(p)) continue;
    sink(document(p, f));
    ++n;
  }
}

// 257 tokens leave no room for merges: a character-level vocabulary (the
// 256 bytes and <|endoftext|>) that llama.cpp reads as any byte-level BPE.
inline Result<text::Vocab> byte_vocab() {
  JIELONG_ASSIGN_OR_RETURN(train::BpeTrainer trainer, train::BpeTrainer::create({.vocab_size = 257}));
  JIELONG_ASSIGN_OR_RETURN(text::Vocab v, trainer.train([](int32_t, int32_t) { return true; }));
  v.name = "jielong-arith-bytes";
  return v;
}

// `count` held-out problems of one operation and digit count, for a seed.
inline std::vector<Problem> held_out_problems(Op op, int digits, size_t count, uint64_t seed) {
  std::mt19937_64 rng(seed * 31 + static_cast<uint64_t>(op) * 7 + static_cast<uint64_t>(digits));
  std::vector<Problem> out;
  while (out.size() < count) {
    const Problem p = sample(op, digits, rng);
    if (held_out(p)) out.push_back(p);
  }
  return out;
}

}  // namespace jielong::arith

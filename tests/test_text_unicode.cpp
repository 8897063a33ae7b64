// Unicode tables, the regex engine and the pre-tokenizer cuts. Expected
// values are written by hand from the Unicode character database and from
// reading the patterns (each case says why).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "jielong/text/pretokenizer.hpp"
#include "jielong/text/regex.hpp"
#include "jielong/text/unicode.hpp"

using namespace jielong::text;

TEST_CASE("unicode: categories, white space, case, decomposition") {
  CHECK(category('a') == Category::letter);
  CHECK(category('Z') == Category::letter);
  CHECK(category('7') == Category::number);
  CHECK(category('!') == Category::punctuation);
  CHECK(category('$') == Category::symbol);
  CHECK(category('~') == Category::symbol);
  CHECK(category(' ') == Category::separator);
  CHECK(category('\n') == Category::other);
  CHECK(category(0x00E9) == Category::letter);       // é
  CHECK(category(0x0416) == Category::letter);       // Ж
  CHECK(category(0x65E5) == Category::letter);       // 日
  CHECK(category(0x00BD) == Category::number);       // ½ (No)
  CHECK(category(0x0663) == Category::number);       // Arabic-Indic three
  CHECK(category(0x0301) == Category::mark);         // combining acute
  CHECK(category(0x2026) == Category::punctuation);  // …
  CHECK(category(0x1F999) == Category::symbol);      // 🦙
  CHECK(category(0x10FFFF) == Category::other);      // noncharacter
  CHECK(category(0x110000) == Category::other);      // past the end: no crash

  for (uint32_t cp : {0x09u, 0x0Au, 0x0Bu, 0x0Cu, 0x0Du, 0x20u, 0x85u, 0xA0u, 0x1680u, 0x2000u, 0x200Au, 0x2028u,
                      0x2029u, 0x202Fu, 0x205Fu, 0x3000u})
    CHECK_MESSAGE(is_whitespace(cp), cp);
  for (uint32_t cp : {0x41u, 0x200Bu /* zero width space is Cf, not white */, 0x1Fu, 0xFEFFu}) CHECK_FALSE(is_whitespace(cp));

  CHECK(to_lower('A') == 'a');
  CHECK(to_lower('a') == 'a');
  CHECK(to_lower(0x00C9) == 0x00E9);  // É -> é
  CHECK(to_lower(0x0416) == 0x0436);  // Ж -> ж
  CHECK(to_lower(0x0100) == 0x0101);  // Ā -> ā (stride-2 run)
  CHECK(to_lower(0x0101) == 0x0101);
  CHECK(to_lower(0x0130) == 'i');     // İ lowers to i + combining dot; the first code point is kept
  CHECK(to_lower(0x10400) == 0x10428);  // Deseret

  CHECK(nfd_base(0x00E9) == 'e');
  CHECK(nfd_base(0x00C5) == 'A');      // Å
  CHECK(nfd_base(0x1EC7) == 'e');      // ệ (two marks)
  CHECK(nfd_base(0x00DF) == 0x00DF);   // ß does not decompose
  CHECK(nfd_base(0xAC00) == 0x1100);   // 가 -> Hangul choseong kiyeok
}

TEST_CASE("unicode: UTF-8 decoding as the reference tokenizers do") {
  const std::string s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\xA6\x99";  // a é € 🦙
  std::vector<uint32_t> cps;
  decode_utf8(s, cps);
  CHECK(cps == std::vector<uint32_t>{'a', 0xE9, 0x20AC, 0x1F999});
  // A stray continuation byte and a truncated sequence each become U+FFFD,
  // consuming one byte, so what follows is still read.
  decode_utf8("\x80x\xE2\x82", cps);
  CHECK(cps == std::vector<uint32_t>{0xFFFD, 'x', 0xFFFD, 0xFFFD});
  std::string back;
  for (uint32_t cp : {0x24u, 0xA2u, 0x20ACu, 0x10348u}) append_utf8(back, cp);
  CHECK(back == "$\xC2\xA2\xE2\x82\xAC\xF0\x90\x8D\x88");
}

TEST_CASE("unicode: strict sequences for output text") {
  CHECK(utf8_sequence("a") == 1);
  CHECK(utf8_sequence("\xC3\xA9") == 2);
  CHECK(utf8_sequence("\xC3") == 0);          // wait for more
  CHECK(utf8_sequence("\xE2\x82") == 0);
  CHECK(utf8_sequence("\xF0\x9F\xA6\x99") == 4);
  CHECK(utf8_sequence("\x80") == -1);         // lone continuation
  CHECK(utf8_sequence("\xC0\x80") == -1);     // overlong lead
  CHECK(utf8_sequence("\xE0\x80\x80") == -1); // overlong: E0 needs A0..BF next
  CHECK(utf8_sequence("\xED\xA0\x80") == -1); // surrogate
  CHECK(utf8_sequence("\xE2\x28") == -1);     // lead then ASCII: only the lead is bad
  CHECK(utf8_sequence("\xF0\x9F\x28") == -2); // two bytes of a 4-byte sequence, then ASCII
  CHECK(utf8_sequence("\xF5\x80") == -1);
}

TEST_CASE("unicode: GPT-2 byte table") {
  // Printable Latin-1 maps to itself; space is the 33rd unprintable byte
  // (after 0x00..0x20), so U+0100 + 32 = U+0120 'Ġ'; newline is U+010A 'Ċ'.
  CHECK(kByteUnicode.byte_to_cp['a'] == 'a');
  CHECK(kByteUnicode.byte_to_cp[0xE9] == 0xE9);
  CHECK(kByteUnicode.byte_to_cp[' '] == 0x120);
  CHECK(kByteUnicode.byte_to_cp['\n'] == 0x10A);
  CHECK(kByteUnicode.byte_to_cp[0x00] == 0x100);
  CHECK(kByteUnicode.byte_to_cp[0xAD] == 0x143);  // soft hyphen, the last unprintable
  for (int b = 0; b < 256; ++b) CHECK(kByteUnicode.cp_to_byte[kByteUnicode.byte_to_cp[b]] == b);
  std::string enc, dec;
  append_byte_encoded(enc, " hi\n");
  CHECK(enc == "\xC4\xA0hi\xC4\x8A");
  append_byte_decoded(dec, enc);
  CHECK(dec == " hi\n");
}

namespace {
// All matches of `re` scanning left to right, as the pre-tokenizer does.
std::vector<std::string> scan(const Regex& re, std::string_view text) {
  std::vector<uint32_t> cps;
  decode_utf8(text, cps);
  if (re.mode() == Regex::Mode::collapsed)
    for (auto& c : cps) c = collapsed::collapse(c);
  std::vector<std::pair<uint32_t, size_t>> stack;
  std::vector<std::string> out;
  std::vector<uint32_t> orig;
  decode_utf8(text, orig);
  for (size_t pos = 0; pos < cps.size();) {
    const int64_t m = re.match_at(cps.data(), 0, cps.size(), pos, stack);
    if (m > 0) {
      std::string s;
      for (size_t i = pos; i < pos + static_cast<size_t>(m); ++i) append_utf8(s, orig[i]);
      out.push_back(s);
      pos += static_cast<size_t>(m);
    } else {
      ++pos;
    }
  }
  return out;
}

std::vector<std::string> split(std::string_view pre, std::string_view text) {
  const PreTokenizerPreset* p = find_pretokenizer_preset(pre);
  REQUIRE(p != nullptr);
  auto pt = PreTokenizer::create(p->regexes);
  REQUIRE(pt.ok());
  std::vector<std::string> words;
  PreTokenizer::Scratch s;
  pt->split(text, words, s);
  return words;
}
using V = std::vector<std::string>;
}  // namespace

TEST_CASE("regex: ECMAScript backtracking semantics") {
  auto re = [](std::string_view p, Regex::Mode m = Regex::Mode::unicode) {
    auto r = Regex::compile(p, m);
    REQUIRE_MESSAGE(r.ok(), r.status().to_string());
    return *r;
  };
  // First alternative that matches wins, even when a later one is longer.
  CHECK(scan(re("a|ab"), "ab") == V{"a"});
  // Greedy quantifier gives back so the rest can match.
  CHECK(scan(re("a+ab"), "aaab") == V{"aaab"});
  // Lazy quantifier takes as little as it can.
  CHECK(scan(re("a+?"), "aaa") == V{"a", "a", "a"});
  // {n,m} counts.
  CHECK(scan(re("\\d{1,3}"), "1234567") == V{"123", "456", "7"});
  // Negative lookahead at the end of input succeeds: \s+ keeps all spaces
  // there, but leaves the last one before a word.
  CHECK(scan(re("\\s+(?!\\S)"), "a   b  ") == V{"  ", "  "});
  CHECK(scan(re("x(?=y)"), "xyxz") == V{"x"});
  CHECK(scan(re("[^a-c]+"), "abcdefabc") == V{"def"});
  CHECK(scan(re("\\p{L}+"), "ab12ñ日") == V{"ab", "ñ日"});
  CHECK(scan(re("[\\p{N}x]+"), "a12x3b") == V{"12x3"});
  CHECK(scan(re("^a"), "aa") == V{"a"});
  CHECK(scan(re("a$"), "aa") == V{"a"});
  // Collapsed mode: é stands in as a letter, '~' is not in llama.cpp's
  // ASCII list for \p{S}.
  CHECK(scan(re("\\p{L}+", Regex::Mode::collapsed), "aé1") == V{"aé"});
  CHECK(scan(re("\\p{S}", Regex::Mode::collapsed), "~$") == V{"$"});
  // Codepoint mode refuses categories it cannot evaluate.
  CHECK_FALSE(Regex::compile("\\p{L}", Regex::Mode::codepoint).ok());
  for (std::string_view bad : {"(a", "a)", "[a", "a{2,1}", "*a", "\\", "(?<n>a)", "\\p{Xx}"})
    CHECK_MESSAGE(!Regex::compile(bad, Regex::Mode::unicode).ok(), bad);
}

TEST_CASE("pre-tokenizer: GPT-2 cuts") {
  // Contractions, letters with their leading space, digits, punctuation runs;
  // of two spaces before a word the first stands alone.
  CHECK(split("gpt-2", "Hello world's  test 123!!") ==
        V{"Hello", " world", "'s", " ", " test", " 123", "!!"});
  // Text between matches is kept as its own piece (a lone tab before a word).
  CHECK(split("gpt-2", "a\tb") == V{"a", "\t", "b"});
  CHECK(split("gpt-2", "") == V{});
}

TEST_CASE("pre-tokenizer: Llama-3 and Qwen2 cuts") {
  // Digits in threes (Llama 3) or one by one (Qwen2); a non-letter may lead a word.
  CHECK(split("llama3", "12345 x") == V{"123", "45", " x"});
  CHECK(split("qwen2", "123") == V{"1", "2", "3"});
  CHECK(split("llama3", "I'M (ok)\n\n") == V{"I", "'M", " (", "ok", ")\n\n"});
}

TEST_CASE("pre-tokenizer: starcoder splits digits before GPT-2's pattern") {
  CHECK(split("starcoder", "ab 42") == V{"ab", " ", "4", "2"});
}

TEST_CASE("pre-tokenizer: deepseek-coder keeps CJK runs and lone digits") {
  CHECK(split("deepseek-coder", "中文a1\n") == V{"中文", "a", "1", "\n"});
}

TEST_CASE("pre-tokenizer: unknown names") {
  CHECK(find_pretokenizer_preset("no-such-pre") == nullptr);
  CHECK(find_pretokenizer_preset("llama-bpe") == find_pretokenizer_preset("llama3"));
}

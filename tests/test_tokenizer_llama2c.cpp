// llama2.c tokenizer.bin files: the Llama 2 cases from llama2.c's own test
// (../shared/reference/llama2c-tokenizer.txt), and a hand-made vocabulary
// whose merges can be followed on paper.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "jielong/text/tokenizer.hpp"
#include "support/shared.hpp"

using namespace jielong::text;

namespace {
// A "..." C string with \n \t \" \\ escapes.
std::string unescape_c(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out.push_back(s[i]);
      continue;
    }
    const char e = s[++i];
    out.push_back(e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e);
  }
  return out;
}

// Writes a tokenizer.bin: max_token_length, then (score, length, bytes).
void write_llama2c(const std::string& path, const std::vector<std::pair<std::string, float>>& pieces) {
  std::ofstream f(path, std::ios::binary);
  int32_t max_len = 0;
  for (const auto& p : pieces) max_len = std::max<int32_t>(max_len, static_cast<int32_t>(p.first.size()));
  f.write(reinterpret_cast<const char*>(&max_len), 4);
  for (const auto& [text, score] : pieces) {
    const int32_t len = static_cast<int32_t>(text.size());
    f.write(reinterpret_cast<const char*>(&score), 4);
    f.write(reinterpret_cast<const char*>(&len), 4);
    f.write(text.data(), len);
  }
}

std::vector<std::pair<std::string, float>> tiny_pieces() {
  std::vector<std::pair<std::string, float>> p = {{"<unk>", 0}, {"<s>", 0}, {"</s>", 0}};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    p.push_back({buf, 0});
  }
  // ids 259.. : single characters, then merges with rising scores
  for (const char* s : {" ", "a", "b", "c"}) p.push_back({s, -10});
  p.push_back({"ab", -1});   // 263
  p.push_back({" a", -2});   // 264
  p.push_back({" ab", -0.5f});  // 265
  p.push_back({"bc", -0.1f});   // 266
  return p;
}
}  // namespace

TEST_CASE("llama2.c tokenizer: Llama 2 reference cases") {
  const auto ref = jielong::test::shared_file("reference/llama2c-tokenizer.txt");
  const auto bin = jielong::test::shared_file("models/llama2-tokenizer.bin");
  if (!ref || !bin) return;
  auto tok = Tokenizer::from_llama2c(*bin, 32000);
  REQUIRE_MESSAGE(tok.ok(), tok.status().to_string());
  CHECK(tok->n_tokens() == 32000);
  std::ifstream in(*ref);
  std::string line;
  int cases = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.rfind('\t');
    REQUIRE(tab != std::string::npos);
    const std::string prompt = unescape_c(std::string_view(line).substr(1, tab - 2));
    std::vector<int32_t> expected;
    std::istringstream ids(line.substr(tab + 1));
    for (int32_t id; ids >> id;) expected.push_back(id);
    auto got = tok->encode(prompt, {.add_bos = true, .parse_special = false});
    REQUIRE(got.ok());
    CHECK_MESSAGE(*got == expected, "prompt: \"" << prompt << "\"");
    ++cases;
  }
  CHECK(cases == 5);

  // encode_into: same ids into caller storage; too small a buffer says how many are needed.
  const std::string text = "I believe the meaning of life is";
  std::vector<int32_t> buf(16, -7);
  auto n = tok->encode_into(text, buf);
  REQUIRE(n.ok());
  CHECK(std::vector<int32_t>(buf.begin(), buf.begin() + static_cast<long>(*n)) == *tok->encode(text));
  std::vector<int32_t> small(3);
  auto too_small = tok->encode_into(text, small);
  CHECK(too_small.status().code() == jielong::Code::out_of_range);
  CHECK(too_small.status().message().find("needs 8 tokens") != std::string::npos);

  // One tokenizer, several threads: the same answers.
  std::vector<std::vector<int32_t>> results(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < results.size(); ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 50; ++rep) results[t] = *tok->encode(text + " " + std::to_string(rep));
    });
  for (auto& th : threads) th.join();
  for (const auto& r : results) CHECK(r == *tok->encode(text + " 49"));
}

TEST_CASE("llama2.c tokenizer: merges by score, byte fallback, specials") {
  jielong::test::TempDir dir;
  const std::string path = dir.file("tiny.bin");
  write_llama2c(path, tiny_pieces());
  auto tok = Tokenizer::from_llama2c(path);
  REQUIRE_MESSAGE(tok.ok(), tok.status().to_string());
  CHECK(tok->n_tokens() == 267);
  // "abc" -> "▁abc": pairs ▁a(-2) ab(-1) bc(-0.1): bc merges first, then
  // ▁a (ab is gone), and "▁a"+"bc" is no token: [▁a, bc].
  CHECK(*tok->encode("abc", {.add_bos = false}) == std::vector<int32_t>{264, 266});
  // "ab" -> "▁ab": ab(-1) beats ▁a(-2), then ▁+ab = ▁ab(-0.5).
  CHECK(*tok->encode("ab", {.add_bos = false}) == std::vector<int32_t>{265});
  // 'é' (C3 A9) is no piece: two byte tokens, <0xC3> = 3 + 0xC3.
  CHECK(*tok->encode("é", {.add_bos = false}) == std::vector<int32_t>{259, 3 + 0xC3, 3 + 0xA9});
  // BOS from the llama2.c convention (id 1); empty text is BOS only.
  CHECK(*tok->encode("", {.add_bos = true}) == std::vector<int32_t>{1});
  CHECK(*tok->encode("", {.add_bos = false}) == std::vector<int32_t>{});
  // Control tokens written in text: recognised when asked, text otherwise
  // ("</s>" then spells out as bytes, none of its letters being pieces).
  CHECK(*tok->encode("a</s>", {.add_bos = false, .parse_special = true}) == std::vector<int32_t>{264, 2});
  auto as_text = tok->encode("</s>", {.add_bos = false, .parse_special = false});
  CHECK(as_text->size() == 5);  // ▁ then < / s > as bytes
  CHECK((*as_text)[1] == 3 + '<');
  // Pieces: '▁' reads as a space, byte tokens as their byte.
  CHECK(tok->token_piece(265) == " ab");
  CHECK(tok->token_piece(3 + 0x0A) == "\n");
  CHECK(tok->token_piece(1) == "<s>");
  CHECK(tok->token_piece(-1).empty());
  CHECK(tok->token_piece(100000).empty());
  CHECK(tok->decode(std::vector<int32_t>{1, 265, 266}) == " abbc");
  CHECK(tok->decode(std::vector<int32_t>{265, 266}) == "abbc");  // the prefix space of the first word goes
}

TEST_CASE("llama2.c tokenizer: hostile files") {
  jielong::test::TempDir dir;
  auto write_raw = [&](const std::string& name, const std::string& bytes) {
    std::ofstream(dir.file(name), std::ios::binary) << bytes;
    return dir.file(name);
  };
  CHECK(Tokenizer::from_llama2c(dir.file("missing.bin")).status().code() == jielong::Code::io_error);
  CHECK(Tokenizer::from_llama2c(write_raw("empty.bin", "")).status().code() == jielong::Code::format_error);
  const std::string header("\x10\x00\x00\x00", 4);
  // A token whose length runs past the end of the file.
  const std::string entry = std::string("\x00\x00\x00\x00", 4) + std::string("\xFF\xFF\x00\x00", 4) + "abc";
  auto r = Tokenizer::from_llama2c(write_raw("long.bin", header + entry));
  CHECK(r.status().code() == jielong::Code::format_error);
  CHECK(r.status().message().find("token 0") != std::string::npos);
  // Truncated in the middle of a score.
  CHECK(Tokenizer::from_llama2c(write_raw("trunc.bin", header + "\x00\x00")).status().code() == jielong::Code::format_error);
  // Fewer tokens than the model says.
  jielong::test::TempDir d2;
  write_llama2c(d2.file("t.bin"), tiny_pieces());
  CHECK(Tokenizer::from_llama2c(d2.file("t.bin"), 512).status().code() == jielong::Code::format_error);
}

// Streaming detokenizer: whole UTF-8 characters only, byte tokens, U+FFFD
// for malformed bytes; and llama.cpp's own tokens and continuation text for
// stories260K (../shared/reference/llamacpp/stories260K.jsonl).
#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <vector>

#include "jielong/text/detokenizer.hpp"
#include "support/shared.hpp"

using namespace jielong::text;

namespace {
// Llama-2-like vocabulary: <unk> <s> </s>, 256 byte tokens (<0xNN> = 3 + NN),
// then a few pieces.
Tokenizer byte_vocab() {
  Vocab v = Vocab::with_defaults(VocabKind::spm);
  v.tokens = {"<unk>", "<s>", "</s>"};
  v.types = {TokenType::unknown, TokenType::control, TokenType::control};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    v.tokens.push_back(buf);
    v.types.push_back(TokenType::byte);
  }
  for (const char* t : {"\xE2\x96\x81Hello", "\xE2\x96\x81", "!", "\xC3\xA9"}) {  // 259 ▁Hello, 260 ▁, 261 !, 262 é
    v.tokens.push_back(t);
    v.types.push_back(TokenType::normal);
  }
  auto t = Tokenizer::create(std::move(v));
  REQUIRE(t.ok());
  return std::move(*t);
}
constexpr int32_t byte_id(int b) { return 3 + b; }

// Minimal JSON access for the reference lines: a string or an int array by key.
std::string json_string(const std::string& line, const std::string& key) {
  size_t p = line.find("\"" + key + "\":\"");
  REQUIRE(p != std::string::npos);
  p += key.size() + 4;
  std::string out;
  auto hex4 = [&](size_t at) { return static_cast<uint32_t>(std::stoul(line.substr(at, 4), nullptr, 16)); };
  while (line[p] != '"') {
    if (line[p] != '\\') {
      out.push_back(line[p++]);
      continue;
    }
    const char e = line[p + 1];
    p += 2;
    switch (e) {
      case 'n': out.push_back('\n'); break;
      case 't': out.push_back('\t'); break;
      case 'r': out.push_back('\r'); break;
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'u': {
        uint32_t cp = hex4(p);
        p += 4;
        if (cp >= 0xD800 && cp < 0xDC00) {  // surrogate pair
          cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4(p + 2) - 0xDC00);
          p += 6;
        }
        append_utf8(out, cp);
        break;
      }
      default: out.push_back(e);
    }
  }
  return out;
}

std::vector<int32_t> json_ints(const std::string& line, const std::string& key) {
  size_t p = line.find("\"" + key + "\":[");
  REQUIRE(p != std::string::npos);
  p += key.size() + 4;
  std::vector<int32_t> out;
  while (line[p] != ']') {
    size_t used = 0;
    out.push_back(std::stoi(line.substr(p), &used));
    p += used;
    if (line[p] == ',') ++p;
  }
  return out;
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}
}  // namespace

TEST_CASE("detokenizer: a character split over byte tokens comes out whole") {
  const Tokenizer tok = byte_vocab();
  Detokenizer d(tok);
  CHECK(d.push(259) == " Hello");
  // 🦙 = F0 9F A6 99: nothing until the fourth byte.
  CHECK(d.push(byte_id(0xF0)).empty());
  CHECK(d.push(byte_id(0x9F)).empty());
  CHECK(d.push(byte_id(0xA6)).empty());
  CHECK(d.pending() == 3);
  CHECK(d.push(byte_id(0x99)) == "\xF0\x9F\xA6\x99");
  CHECK(d.pending() == 0);
  // A two-byte character whose tail arrives with a normal piece.
  CHECK(d.push(byte_id(0xC3)).empty());
  CHECK(d.push(byte_id(0xA9)) == "\xC3\xA9");
  CHECK(d.push(261) == "!");
  CHECK(d.flush().empty());
}

TEST_CASE("detokenizer: malformed bytes become U+FFFD, never half a character") {
  const Tokenizer tok = byte_vocab();
  Detokenizer d(tok);
  const std::string fffd = "\xEF\xBF\xBD";
  CHECK(d.push(byte_id(0xFF)) == fffd);            // never valid
  CHECK(d.push(byte_id(0x80)) == fffd);            // lone continuation
  CHECK(d.push(byte_id(0xE2)).empty());            // could start €
  CHECK(d.push(261) == fffd + "!");                // ... but '!' follows: the lead alone is replaced
  CHECK(d.push(byte_id(0xE2)).empty());
  CHECK(d.push(byte_id(0x82)).empty());
  CHECK(d.flush() == fffd);                        // end of stream inside a character: one U+FFFD
  CHECK(d.push(byte_id(0xED)).empty());
  CHECK(d.push(byte_id(0xA0)) == fffd + fffd);     // ED A0 would be a surrogate: two bad subparts
}

TEST_CASE("detokenizer: specials and the leading space") {
  const Tokenizer tok = byte_vocab();
  {
    Detokenizer d(tok);
    CHECK(d.push(1).empty());  // <s> writes nothing by default
    CHECK(d.push(259) == " Hello");
    CHECK(d.push(2).empty());
  }
  {
    Detokenizer d(tok, {.render_special = true});
    CHECK(d.push(1) == "<s>");
    CHECK(d.push(0) == "<unk>");
  }
  {
    // llama_detokenize: the first token's leading space goes...
    Detokenizer d(tok, {.strip_leading_space = true});
    CHECK(d.push(259) == "Hello");
    CHECK(d.push(259) == " Hello");
    d.reset();
    // ... and a BOS in front counts as that first token.
    CHECK(d.push(1).empty());
    CHECK(d.push(259) == " Hello");
  }
  Detokenizer d(tok);
  CHECK(d.push(-5).empty());  // out of range: nothing, no crash
  CHECK(d.push(1 << 30).empty());
}

TEST_CASE("detokenizer: the stories260K vocabulary against llama.cpp") {
  // stories260K and the synth-llama models share tok512's vocabulary; the
  // synth models' random continuations are full of broken UTF-8.
  const auto bin = jielong::test::shared_file("models/stories260K/tok512.bin");
  if (!bin) return;
  auto tok = Tokenizer::from_llama2c(*bin, 512);
  REQUIRE_MESSAGE(tok.ok(), tok.status().to_string());
  int lines = 0, with_bad_bytes = 0;
  for (const char* model : {"stories260K", "synth-llama-f32", "synth-llama-f16", "synth-llama-bf16", "synth-llama-q8_0",
                            "synth-llama-q4_0", "synth-llama-q4_1", "synth-llama-q5_0", "synth-llama-q5_1", "synth-llama-q2_k",
                            "synth-llama-q3_k_m", "synth-llama-q4_k_m", "synth-llama-q5_k_m", "synth-llama-q6_k"}) {
    const auto jsonl = jielong::test::shared_file(std::string("reference/llamacpp/") + model + ".jsonl");
    if (!jsonl) continue;
    std::ifstream in(*jsonl);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      ++lines;
      const std::string prompt = json_string(line, "prompt");
      // llama.cpp's tokens of the prompt (GGUF form of the same vocabulary).
      CHECK_MESSAGE(*tok->encode(prompt) == json_ints(line, "tokens"), model << ": " << prompt);
      // Its continuation: concatenated pieces are the exact bytes (control
      // tokens such as </s> write nothing, as in llama.cpp's output)...
      const std::vector<int32_t> greedy = json_ints(line, "greedy");
      std::string bytes;
      for (int32_t id : greedy) bytes += tok->output_piece(id, /*render_special=*/false);
      CHECK(bytes == from_hex(json_string(line, "text_hex")));
      // ... and the stream is valid UTF-8 at every step, the same as decoding
      // all bytes at once (so where tokens split characters does not matter).
      Detokenizer d(*tok);
      std::string streamed;
      for (int32_t id : greedy) {
        const std::string_view part = d.push(id);
        CHECK(sanitize_utf8(part) == part);
        streamed += part;
      }
      streamed += d.flush();
      CHECK(streamed == sanitize_utf8(bytes));
      // The reference "text" marks bad bytes with U+FFFD too, but its count of
      // replacements per bad run is its own; every valid character agrees.
      auto without_fffd = [](std::string t) {
        for (size_t p; (p = t.find("\xEF\xBF\xBD")) != std::string::npos;) t.erase(p, 3);
        return t;
      };
      const std::string text = json_string(line, "text");
      CHECK_MESSAGE(without_fffd(streamed) == without_fffd(text), model << ": " << prompt);
      if (text.find("\xEF\xBF\xBD") != std::string::npos) ++with_bad_bytes;
    }
  }
  CHECK(lines >= 2);
  MESSAGE(lines << " continuations compared, " << with_bad_bytes << " with malformed UTF-8");
}

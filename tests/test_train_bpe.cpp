// Byte-level BPE training: merges on small texts worked out by hand, the
// incremental trainer against a plain recounting twin, the vocabulary
// through GGUF and back into text::Tokenizer, exact round trips on
// real text, and, where llama.cpp's llama-tokenize is at hand
// ($LLAMA_CPP_BIN), the same ids from it.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "jielong/io/gguf_writer.hpp"
#include "jielong/text/chat_template.hpp"
#include "jielong/text/gguf_vocab.hpp"
#include "jielong/train/bpe.hpp"
#include "jielong/train/corpus.hpp"
#include "support/shared.hpp"

using namespace jielong;
using namespace jielong::train;

namespace {

text::Vocab train_on(const std::vector<std::string>& docs, int32_t vocab_size, uint64_t min_pair_count = 2) {
  auto t = BpeTrainer::create({.vocab_size = vocab_size, .pre = "gpt-2", .min_pair_count = min_pair_count});
  REQUIRE(t.ok());
  for (const std::string& d : docs) t->add_text(d);
  auto v = t->train([](int32_t, int32_t) { return true; });
  REQUIRE(v.ok());
  return std::move(*v);
}

std::string write_vocab(const test::TempDir& dir, const text::Vocab& v) {
  io::GgufWriter w;
  w.add_string("general.architecture", "llama");
  text::add_vocab_metadata(w, v);
  const std::string path = dir.file("vocab.gguf");
  REQUIRE(w.write(path).is_ok());
  return path;
}

}  // namespace

TEST_CASE("BPE: 'aaabdaaabac' merges by hand") {
  // One word. Pair counts: aa 4, ab 2, bd/da/ba/ac 1 -> merge "a a".
  // Word: aa a b d aa a b a c; (aa,a) 2 and (a,b) 2 tie, the smaller left id
  // (a = 97 < aa = 256) wins -> "a b". Word: aa ab d aa ab a c; (aa,ab) 2 ->
  // "aa ab". Every pair then occurs once, below the minimum of 2.
  const text::Vocab v = train_on({"aaabdaaabac"}, 1000);
  REQUIRE(v.merges.size() == 3);
  CHECK(v.merges[0] == "a a");
  CHECK(v.merges[1] == "a b");
  CHECK(v.merges[2] == "aa ab");
  REQUIRE(v.tokens.size() == 260);
  CHECK(v.tokens[97] == "a");
  CHECK(v.tokens[256] == "aa");
  CHECK(v.tokens[257] == "ab");
  CHECK(v.tokens[258] == "aaab");
  CHECK(v.tokens[259] == "<|endoftext|>");
  CHECK(v.types[259] == text::TokenType::control);
  CHECK(v.bos_id == 259);
  CHECK(v.eos_id == 259);
  CHECK(v.add_bos);
}

TEST_CASE("BPE: words from the GPT-2 pre-tokenizer; ties by id; the vocabulary size caps the merges") {
  // Words "the", " cat", " the", " hat" (the space is byte 32, spelled 'Ġ').
  // Counts: (t,h) 2, (h,e) 2, (a,t) 2, the rest 1. Ties by left id: a=97
  // first, then h=104, then after "he" the pair (t,he) has 2 -> "t he".
  const text::Vocab v = train_on({"the cat the hat"}, 1000);
  REQUIRE(v.merges.size() == 3);
  CHECK(v.merges[0] == "a t");
  CHECK(v.merges[1] == "h e");
  CHECK(v.merges[2] == "t he");
  CHECK(v.tokens[32] == "\xC4\xA0");  // 'Ġ'

  auto tok = text::Tokenizer::create(v);
  REQUIRE(tok.ok());
  auto ids = tok->encode("the cat", {.add_bos = true, .parse_special = false});
  REQUIRE(ids.ok());
  // <|endoftext|> (259), "the" (258), ' ' (32), 'c' (99), "at" (256).
  CHECK(*ids == std::vector<int32_t>{259, 258, 32, 99, 256});

  const text::Vocab capped = train_on({"the cat the hat"}, 259);  // 256 bytes + 2 merges + <|endoftext|>
  REQUIRE(capped.merges.size() == 2);
  CHECK(capped.merges[1] == "h e");
  CHECK(capped.tokens.size() == 259u);

  // 257: the bytes and <|endoftext|>, no merges; every text is its bytes.
  const text::Vocab bytes_only = train_on({"the cat the hat"}, 257);
  CHECK(bytes_only.merges.empty());
  REQUIRE(bytes_only.tokens.size() == 257u);
  auto byte_tok = text::Tokenizer::create(bytes_only);
  REQUIRE(byte_tok.ok());
  auto byte_ids = byte_tok->encode("hat\xC3\xA9", {.add_bos = false});
  REQUIRE(byte_ids.ok());
  CHECK(*byte_ids == std::vector<int32_t>{'h', 'a', 't', 0xC3, 0xA9});

  auto bad = BpeTrainer::create({.vocab_size = 256});
  CHECK(bad.status().code() == Code::invalid_argument);
  auto unknown = BpeTrainer::create({.vocab_size = 300, .pre = "no-such"});
  CHECK(unknown.status().code() == Code::unsupported);
}

namespace {

// The plain way, as a twin of the incremental trainer: recount every pair
// over all words before each merge, take the most frequent (ties: smaller
// left id, then smaller right id), merge it left to right everywhere.
// Returns the merges as "left right" in GPT-2 spelling.
std::vector<std::string> naive_merges(const std::vector<std::string>& docs, size_t n_merges, uint64_t min_count) {
  auto preset = text::find_pretokenizer_preset("gpt-2");
  auto pt = text::PreTokenizer::create(preset->regexes);
  REQUIRE(pt.ok());
  std::map<std::string, uint64_t> counts;
  text::PreTokenizer::Scratch scratch;
  std::vector<std::string> words;
  for (const std::string& d : docs) {
    pt->split(d, words, scratch);
    for (const std::string& w : words) ++counts[w];
  }
  std::vector<std::string> bytes;  // id -> bytes
  for (int b = 0; b < 256; ++b) bytes.emplace_back(1, static_cast<char>(b));
  std::vector<std::pair<std::vector<int32_t>, uint64_t>> seqs;
  for (const auto& [w, c] : counts) {
    std::vector<int32_t> s;
    for (char ch : w) s.push_back(static_cast<uint8_t>(ch));
    seqs.emplace_back(std::move(s), c);
  }
  auto spell = [](const std::string& b) {
    std::string s;
    text::append_byte_encoded(s, b);
    return s;
  };
  std::vector<std::string> merges;
  while (merges.size() < n_merges) {
    std::map<std::pair<int32_t, int32_t>, uint64_t> pairs;  // ordered: ties resolve to the smallest key
    for (const auto& [s, c] : seqs)
      for (size_t i = 0; i + 1 < s.size(); ++i) pairs[{s[i], s[i + 1]}] += c;
    std::pair<int32_t, int32_t> best{-1, -1};
    uint64_t best_count = 0;
    for (const auto& [p, c] : pairs)
      if (c > best_count) best = p, best_count = c;
    if (best_count < min_count || best_count == 0) break;
    const std::string joined = bytes[best.first] + bytes[best.second];
    int32_t id = static_cast<int32_t>(std::find(bytes.begin(), bytes.end(), joined) - bytes.begin());
    if (id == static_cast<int32_t>(bytes.size())) bytes.push_back(joined);
    merges.push_back(spell(bytes[best.first]) + " " + spell(bytes[best.second]));
    for (auto& [s, c] : seqs) {
      std::vector<int32_t> out;
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == best.first && s[i + 1] == best.second) out.push_back(id), i += 2;
        else out.push_back(s[i++]);
      }
      s = std::move(out);
    }
  }
  return merges;
}

}  // namespace

TEST_CASE("BPE: deterministic, and the same ids after a GGUF round trip") {
  std::vector<std::string> docs;
  for (int i = 0; i < 200; ++i)
    docs.push_back("Line " + std::to_string(i) + ": the quick brown fox jumps over the lazy dog " + std::to_string(i * i));
  const text::Vocab a = train_on(docs, 400);
  const text::Vocab b = train_on(docs, 400);
  CHECK(a.tokens == b.tokens);
  CHECK(a.merges == b.merges);
  CHECK(a.tokens.size() == 400u);
  // Token texts are distinct (a merge that spells an existing token adds a
  // rank but no token, so there may be more merges than new tokens).
  CHECK(std::set<std::string>(a.tokens.begin(), a.tokens.end()).size() == a.tokens.size());
  CHECK(a.merges.size() >= a.tokens.size() - 257);

  test::TempDir dir;
  const std::string path = write_vocab(dir, a);
  auto from_file = text::Tokenizer::from_gguf(path);
  REQUIRE_MESSAGE(from_file.ok(), from_file.status().to_string());
  auto direct = text::Tokenizer::create(a);
  REQUIRE(direct.ok());
  CHECK(from_file->vocab().tokens == a.tokens);
  CHECK(from_file->vocab().merges == a.merges);
  CHECK(from_file->vocab().pre == "gpt-2");
  CHECK(from_file->bos() == 399);
  for (const std::string& d : docs) {
    auto x = direct->encode(d), y = from_file->encode(d);
    REQUIRE((x.ok() && y.ok()));
    CHECK(*x == *y);
    CHECK(from_file->decode(*y, {.remove_special = true}) == d);
  }
}

TEST_CASE("BPE: special tokens after <|endoftext|> as control tokens, ChatML's template with <|im_start|>") {
  auto t = BpeTrainer::create({.vocab_size = 270, .pre = "gpt-2", .specials = {"<|im_start|>", "<|im_end|>"}});
  REQUIRE(t.ok());
  for (int i = 0; i < 50; ++i) t->add_text("the user asked the model " + std::to_string(i) + " times");
  auto v = t->train([](int32_t, int32_t) { return true; });
  REQUIRE(v.ok());
  // 267 byte and merge tokens (the text has more than 11 pairs to merge), then the three specials in order.
  REQUIRE(v->tokens.size() == 270u);
  CHECK(v->tokens[267] == "<|endoftext|>");
  CHECK(v->tokens[268] == "<|im_start|>");
  CHECK(v->tokens[269] == "<|im_end|>");
  for (int id : {267, 268, 269}) CHECK(v->types[id] == text::TokenType::control);
  CHECK(v->types[266] == text::TokenType::normal);
  CHECK(v->bos_id == 267);
  CHECK(v->eos_id == 267);
  CHECK(v->eot_id == 269);  // a chat turn ends with <|im_end|>

  test::TempDir dir;
  const std::string path = write_vocab(dir, *v);
  auto meta = io::GgufFile::open(path);
  REQUIRE(meta.ok());
  auto tmpl = meta->get_string("tokenizer.chat_template");
  REQUIRE(tmpl.ok());
  CHECK(text::detect_chat_template(*tmpl) == text::ChatTemplate::chatml);
  // llama.cpp reads token_type 3 as a control token.
  auto types = meta->get_array("tokenizer.ggml.token_type");
  REQUIRE(types.ok());
  CHECK(*types->i32(268) == 3);

  auto tok = text::Tokenizer::from_gguf(path);
  REQUIRE_MESSAGE(tok.ok(), tok.status().to_string());
  CHECK(tok->is_eog(269));
  CHECK(tok->is_eog(267));
  const std::string turn = "<|im_start|>user\nthe model<|im_end|>\n";
  auto ids = tok->encode(turn, {.add_bos = false, .parse_special = true});
  REQUIRE(ids.ok());
  REQUIRE(ids->size() >= 4);
  CHECK(ids->front() == 268);
  CHECK(std::count(ids->begin(), ids->end(), 269) == 1);
  CHECK(tok->decode(*ids, {.render_special = true}) == turn);
  // As plain text (parse_special off) the specials are spelt with bytes.
  auto plain = tok->encode(turn, {.add_bos = false, .parse_special = false});
  REQUIRE(plain.ok());
  CHECK(std::count(plain->begin(), plain->end(), 268) == 0);

  // Without <|im_start|> no template is written; bad lists are refused.
  auto bare = BpeTrainer::create({.vocab_size = 300, .pre = "gpt-2", .specials = {"<tool>"}});
  REQUIRE(bare.ok());
  bare->add_text("a b c");
  auto bv = bare->train([](int32_t, int32_t) { return true; });
  REQUIRE(bv.ok());
  CHECK(bv->chat_template.empty());
  CHECK(bv->tokens.back() == "<tool>");
  CHECK(bv->eot_id == bv->bos_id);
  CHECK(BpeTrainer::create({.vocab_size = 257, .specials = {"<a>"}}).status().code() == Code::invalid_argument);
  CHECK(BpeTrainer::create({.vocab_size = 300, .specials = {"<a>", "<a>"}}).status().code() == Code::invalid_argument);
  CHECK(BpeTrainer::create({.vocab_size = 300, .specials = {"<|endoftext|>"}}).status().code() == Code::invalid_argument);
}

namespace {

// The installed fortunes (fortunes-min), or nullopt with a message.
std::optional<std::string> fortunes_text() {
  const char* path = "/usr/share/games/fortunes/fortunes";
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    MESSAGE("skipped: " << path << " not found (install fortunes-min, or JIELONG_SETUP_CORPORA=1 scripts/setup)");
    return std::nullopt;
  }
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("BPE: the incremental trainer makes the plain recounting trainer's merges") {
  auto check = [](const std::vector<std::string>& docs) {
    const text::Vocab v = train_on(docs, 256 + 400 + 1);
    const std::vector<std::string> twin = naive_merges(docs, v.merges.size(), 2);
    REQUIRE(v.merges.size() >= 60);
    CHECK(v.merges == twin);
  };
  std::vector<std::string> docs;
  for (int i = 0; i < 300; ++i)
    docs.push_back("Item " + std::to_string(i * 37) + ": the rain in Spain stays mainly in the plain, aaaa " +
                   std::to_string(i % 7) + " caf\xC3\xA9 said 'ok'.");
  check(docs);
  if (const auto text = fortunes_text()) {
    Corpus corpus;
    corpus.add("fortunes", SourceFormat::fortune, *text);
    check(corpus.train());
  }
}

TEST_CASE("BPE: exact round trip on real text (fortunes), and fewer tokens than bytes") {
  const auto text = fortunes_text();
  if (!text) return;
  Corpus corpus;
  corpus.add("fortunes", SourceFormat::fortune, *text);
  REQUIRE(corpus.train().size() > 100);
  const text::Vocab v = train_on(corpus.train(), 1024);
  auto tok = text::Tokenizer::create(v);
  REQUIRE(tok.ok());
  size_t bytes = 0, tokens = 0;
  for (const std::string& d : corpus.train()) {
    auto ids = tok->encode(d, {.add_bos = false, .parse_special = false});
    REQUIRE(ids.ok());
    CHECK(tok->decode(*ids) == d);
    bytes += d.size(), tokens += ids->size();
  }
  // The raw file as one text, special-token spelling and all.
  const std::string odd = *text + " <|endoftext|> caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x99\x82\t\r\n";
  auto ids = tok->encode(odd, {.add_bos = false, .parse_special = false});
  REQUIRE(ids.ok());
  CHECK(tok->decode(*ids) == odd);
  MESSAGE("fortunes, vocabulary 1024: " << bytes << " bytes, " << tokens << " tokens");
  CHECK(tokens * 2 < bytes);  // a 1024-token vocabulary halves English at least
}

TEST_CASE("BPE: llama.cpp's llama-tokenize gives the same ids ($LLAMA_CPP_BIN)") {
  const char* bin = std::getenv("LLAMA_CPP_BIN");
  if (!bin || !*bin) {
    MESSAGE("skipped: set LLAMA_CPP_BIN to the folder holding llama-tokenize");
    return;
  }
  const std::string exe = std::string(bin) + "/llama-tokenize";
  if (!std::filesystem::exists(exe)) {
    MESSAGE("skipped: " << exe << " not found");
    return;
  }
  const auto text = fortunes_text();
  if (!text) return;
  Corpus corpus;
  corpus.add("fortunes", SourceFormat::fortune, *text);
  const text::Vocab v = train_on(corpus.train(), 1024);
  test::TempDir dir;
  const std::string path = write_vocab(dir, v);
  auto tok = text::Tokenizer::from_gguf(path);
  REQUIRE(tok.ok());
  int compared = 0;
  for (size_t i = 0; i < corpus.train().size(); i += 7) {
    const std::string& d = corpus.train()[i];
    const std::string prompt = dir.file("prompt.txt");
    {
      std::ofstream(prompt, std::ios::binary) << d;
    }
    const std::string cmd = "'" + exe + "' -m '" + path + "' -f '" + prompt + "' --ids --log-disable --no-parse-special --no-escape 2>/dev/null";
    std::FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p);
    std::string out;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    REQUIRE(::pclose(p) == 0);
    auto ids = tok->encode(d, {.add_bos = true, .parse_special = false});
    REQUIRE(ids.ok());
    std::string ours = "[";
    for (size_t k = 0; k < ids->size(); ++k) ours += (k ? ", " : "") + std::to_string((*ids)[k]);
    ours += "]";
    CHECK_MESSAGE(out.substr(0, out.find_last_not_of("\n") + 1) == ours, d);
    ++compared;
  }
  MESSAGE(compared << " documents compared with llama-tokenize");
}

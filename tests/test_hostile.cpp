// Hostile model files: every malformed input gives a Status whose message
// names the file and the field, before anything is allocated from a size the
// file claims. Files are built here byte by byte (or written by the synth
// writer and then damaged), so each case knows exactly what it broke.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "jielong/core/mapped_file.hpp"
#include "jielong/io/gguf.hpp"
#include "jielong/io/gguf_writer.hpp"
#include "jielong/io/model_file.hpp"
#include "jielong/model/synth.hpp"
#include "jielong/run/load.hpp"
#include "jielong/run/session.hpp"
#include "jielong/text/tokenizer.hpp"

using namespace jielong;

namespace {

std::string temp_path(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir && *dir ? dir : "/tmp") + "/jielong-hostile-" + std::to_string(getpid()) + "-" + name;
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f);
  if (!bytes.empty()) REQUIRE(std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size());
  std::fclose(f);
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::vector<uint8_t> b;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  REQUIRE(f);
  uint8_t buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) b.insert(b.end(), buf, buf + n);
  std::fclose(f);
  return b;
}

// Little-endian GGUF bytes, written field by field.
struct Bytes {
  std::vector<uint8_t> b;
  Bytes& u32(uint32_t v) { return raw(&v, 4); }
  Bytes& i32(int32_t v) { return raw(&v, 4); }
  Bytes& u64(uint64_t v) { return raw(&v, 8); }
  Bytes& f32(float v) { return raw(&v, 4); }
  Bytes& str(std::string_view s) {
    u64(s.size());
    return raw(s.data(), s.size());
  }
  Bytes& raw(const void* p, size_t n) {
    const auto* c = static_cast<const uint8_t*>(p);
    b.insert(b.end(), c, c + n);
    return *this;
  }
  Bytes& pad_to(size_t align) {
    while (b.size() % align) b.push_back(0);
    return *this;
  }
};

constexpr uint32_t kGguf = 0x46554747u;

Result<io::GgufFile> parse(const Bytes& x) {
  return io::GgufFile::from_memory(
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(x.b.data()), x.b.size()), "hostile.gguf");
}

// The message must name the file and contain `what`.
void check_error(const Status& s, const std::string& what, const std::string& file = "hostile.gguf") {
  CAPTURE(s.to_string());
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.message().find(file) != std::string::npos);
  CHECK(s.message().find(what) != std::string::npos);
}

// A header with one f32 tensor of shape [ne0, ne1] at `offset`, and one u32 key.
Bytes one_tensor(uint64_t ne0, uint64_t ne1, uint32_t type = 0, uint64_t offset = 0, size_t data_bytes = 64) {
  Bytes x;
  x.u32(kGguf).u32(3).u64(1).u64(1);
  x.str("general.alignment").u32(4).u32(32);
  x.str("t").u32(2).u64(ne0).u64(ne1).u32(type).u64(offset);
  x.pad_to(32);
  x.b.resize(x.b.size() + data_bytes, 0);
  return x;
}

// A small, valid model written by the synth writer.
std::string synth_model(const std::string& name, size_t n_vocab = 300, const io::GgufFile* vocab = nullptr) {
  model::SynthSpec spec;
  spec.n_embd = 32;
  spec.n_ff = 64;
  spec.n_layers = 1;
  spec.n_heads = 4;
  spec.n_kv_heads = 2;
  spec.n_vocab = n_vocab;
  spec.n_ctx = 64;
  spec.vocab = vocab;
  const std::string path = temp_path(name);
  REQUIRE(model::write_synth_model(spec, path).is_ok());
  return path;
}

// llama2.c v0: the 7-field Config, then weights.
std::vector<uint8_t> llama2c_header(std::array<int32_t, 7> c, size_t extra = 0) {
  Bytes x;
  for (int32_t v : c) x.i32(v);
  x.b.resize(x.b.size() + extra, 0);
  return x.b;
}

}  // namespace

TEST_CASE("GGUF: empty file, directory, missing file") {
  const std::string empty = temp_path("empty.gguf");
  write_file(empty, {});
  auto e = io::GgufFile::open(empty);
  check_error(e.status(), "the magic runs past the end", empty);

  auto d = io::GgufFile::open(std::filesystem::temp_directory_path().string());
  REQUIRE_FALSE(d.ok());
  CHECK(d.status().message().find("directory") != std::string::npos);

  auto m = io::GgufFile::open(temp_path("does-not-exist.gguf"));
  REQUIRE_FALSE(m.ok());
  CHECK(m.status().code() == Code::io_error);
  CHECK(m.status().message().find("cannot open") != std::string::npos);

  // The same through the model loader.
  auto l = run::load(empty);
  REQUIRE_FALSE(l.ok());
  CHECK(l.status().message().find(empty) != std::string::npos);
  std::filesystem::remove(empty);
}

TEST_CASE("GGUF: magic and version") {
  Bytes bad;
  bad.u32(0x46554746u).u32(3).u64(0).u64(0);
  check_error(parse(bad).status(), "not a GGUF file");

  for (uint32_t v : {0u, 1u, 4u, 0xffffffffu}) {
    CAPTURE(v);
    Bytes x;
    x.u32(kGguf).u32(v).u64(0).u64(0);
    auto f = parse(x);
    check_error(f.status(), "version " + std::to_string(v));
    CHECK(f.status().code() == Code::unsupported);
  }
  Bytes ok;
  ok.u32(kGguf).u32(3).u64(0).u64(0);
  CHECK(parse(ok).ok());  // the minimal valid file: the cases above fail for the reason they name
}

TEST_CASE("GGUF: truncated at every header field") {
  Bytes x = one_tensor(16, 1);
  // Field boundaries of one_tensor's header: magic 4, version 8, counts 16/24,
  // key length 32, key 49, type 53, value 57, name length 65, name 66, rank 70,
  // dims 78/86, type 90, offset 98. Every prefix shorter than the header fails.
  const size_t header_end = 98;
  for (size_t cut = 0; cut < header_end; ++cut) {
    CAPTURE(cut);
    Bytes t;
    t.b.assign(x.b.begin(), x.b.begin() + cut);
    auto f = parse(t);
    REQUIRE_FALSE(f.ok());
    CHECK(f.status().code() == Code::format_error);
    // Either a field runs past the end, or a count is refused for not fitting in what is left.
    const std::string& msg = f.status().message();
    CHECK((msg.find("runs past the end") != std::string::npos || msg.find("cannot fit") != std::string::npos));
  }
  // Header complete but the data section is short.
  Bytes t;
  t.b.assign(x.b.begin(), x.b.end() - 1);
  check_error(parse(t).status(), "lies outside");
  CHECK(parse(x).ok());
}

TEST_CASE("GGUF: every prefix of a real model file fails cleanly") {
  const std::string path = synth_model("prefix.gguf");
  const std::vector<uint8_t> full = read_file(path);
  auto whole = io::GgufFile::open(path);
  REQUIRE(whole.ok());
  size_t failures = 0, n = 0;
  // Every byte of the metadata, then a stride through the tensor data.
  for (size_t cut = 0; cut < full.size(); cut += cut < 16384 ? 1 : 4099) {
    Bytes t;
    t.b.assign(full.begin(), full.begin() + cut);
    auto f = parse(t);
    ++n;
    if (!f.ok()) {
      ++failures;
      CHECK(f.status().code() == Code::format_error);
    }
  }
  CHECK(failures == n);  // a model with tensors is never valid when cut short
  std::filesystem::remove(path);
}

TEST_CASE("GGUF: counts of 2^60 are refused before allocating") {
  Bytes kv;
  kv.u32(kGguf).u32(3).u64(0).u64(uint64_t{1} << 60);
  check_error(parse(kv).status(), "metadata count 1152921504606846976 cannot fit");

  Bytes tn;
  tn.u32(kGguf).u32(3).u64(uint64_t{1} << 60).u64(0);
  check_error(parse(tn).status(), "tensor count 1152921504606846976 cannot fit");

  Bytes arr;
  arr.u32(kGguf).u32(3).u64(0).u64(1);
  arr.str("tokenizer.ggml.scores").u32(9).u32(6).u64(uint64_t{1} << 60);
  check_error(parse(arr).status(), "with 1152921504606846976 elements runs past the end");

  Bytes sarr;
  sarr.u32(kGguf).u32(3).u64(0).u64(1);
  sarr.str("tokenizer.ggml.tokens").u32(9).u32(8).u64(uint64_t{1} << 60);
  check_error(parse(sarr).status(), "with 1152921504606846976 strings runs past the end");
}

TEST_CASE("GGUF: string lengths past the end") {
  Bytes key;
  key.u32(kGguf).u32(3).u64(0).u64(1).u64(1000).raw("abc", 3).raw(std::string(20, '\0').data(), 20);
  check_error(parse(key).status(), "metadata key 0 of length 1000 runs past the end");

  Bytes huge;
  huge.u32(kGguf).u32(3).u64(0).u64(1).u64(~uint64_t{0}).raw(std::string(20, '\0').data(), 20);
  check_error(parse(huge).status(), "of length 18446744073709551615 runs past the end");

  Bytes val;
  val.u32(kGguf).u32(3).u64(0).u64(1).str("general.name").u32(8).u64(uint64_t{1} << 62);
  check_error(parse(val).status(), "value of key 'general.name' of length");

  Bytes elem;
  elem.u32(kGguf).u32(3).u64(0).u64(1).str("tokenizer.ggml.tokens").u32(9).u32(8).u64(2).str("a").u64(99);
  check_error(parse(elem).status(), "element 1 of length 99 runs past the end");
}

TEST_CASE("GGUF: value and element types out of range") {
  Bytes t;
  t.u32(kGguf).u32(3).u64(0).u64(1).str("k").u32(13).u32(0);
  check_error(parse(t).status(), "key 'k' has unknown value type 13");
  Bytes e;
  e.u32(kGguf).u32(3).u64(0).u64(1).str("k").u32(9).u32(99).u64(0);
  check_error(parse(e).status(), "unknown element type 99");
  Bytes dup;
  dup.u32(kGguf).u32(3).u64(0).u64(2).str("k").u32(4).u32(1).str("k").u32(4).u32(2);
  check_error(parse(dup).status(), "'k' appears twice");
  Bytes al;
  al.u32(kGguf).u32(3).u64(0).u64(1).str("general.alignment").u32(4).u32(24);
  check_error(parse(al).status(), "general.alignment = 24 (expected a power of two)");
}

TEST_CASE("GGUF: tensor shapes, types, offsets") {
  // Dimension products that overflow 64 bits (2^32 * 2^32), and zero dimensions.
  check_error(parse(one_tensor(uint64_t{1} << 32, uint64_t{1} << 32)).status(), "makes the element count overflow");
  check_error(parse(one_tensor(0, 4)).status(), "dimension 0 = 0 is zero");
  // Within 2^62 elements but far past the data.
  check_error(parse(one_tensor(uint64_t{1} << 30, uint64_t{1} << 30)).status(), "lies outside");
  // Unknown tensor type (4 and 5 were Q4_2/Q4_3, removed from ggml; 1000 never existed).
  for (uint32_t type : {4u, 5u, 1000u}) {
    auto f = parse(one_tensor(16, 1, type));
    check_error(f.status(), "tensor 't' has unknown type " + std::to_string(type));
    CHECK(f.status().code() == Code::unsupported);
  }
  // Q8_0 rows must be whole 32-element blocks.
  check_error(parse(one_tensor(16, 1, 8)).status(), "row length 16 is not a multiple of the q8_0 block size 32");
  // Offsets: misaligned, past the end, and so large that offset + size wraps.
  check_error(parse(one_tensor(16, 1, 0, 4)).status(), "offset 4 is not a multiple of the alignment 32");
  check_error(parse(one_tensor(16, 1, 0, 64)).status(), "lies outside the 64-byte data section");
  check_error(parse(one_tensor(16, 1, 0, ~uint64_t{31})).status(), "lies outside");
  // Rank.
  Bytes r;
  r.u32(kGguf).u32(3).u64(1).u64(0).str("t").u32(5).raw(std::string(40, '\0').data(), 40);
  check_error(parse(r).status(), "tensor 't' has rank 5 (expected 1 to 4)");
}

TEST_CASE("GGUF models: missing key, missing tensor, vocabulary disagreeing with the embedding") {
  const std::string good = synth_model("good.gguf");
  auto g = io::GgufFile::open(good);
  REQUIRE(g.ok());
  REQUIRE(run::load(good).ok());  // the copies below differ only by what they leave out

  // Rewrite the file leaving out one key or one tensor.
  // tokenizer_from: take the tokenizer.* keys from this file instead.
  auto rewrite = [&](const std::string& name, std::string_view skip_key, std::string_view skip_tensor,
                     const io::GgufFile* tokenizer_from = nullptr) {
    io::GgufWriter w;
    auto is_tok = [](std::string_view k) { return k.rfind("tokenizer.", 0) == 0; };
    for (const auto& kv : g->metadata())
      if (kv.key != skip_key && kv.key != "general.alignment" && !(tokenizer_from && is_tok(kv.key)))
        w.add_value(kv.key, kv.value);
    if (tokenizer_from)
      for (const auto& kv : tokenizer_from->metadata())
        if (is_tok(kv.key)) w.add_value(kv.key, kv.value);
    for (const auto& t : g->tensors()) {
      if (t.name == skip_tensor) continue;
      REQUIRE(w.add_tensor(t.name, t.type, std::span<const uint64_t>(t.ne, t.n_dims),
                           std::span<const std::byte>(t.data, t.n_bytes))
                  .is_ok());
    }
    const std::string path = temp_path(name);
    REQUIRE(w.write(path).is_ok());
    return path;
  };
  const std::string no_key = rewrite("no-key.gguf", "llama.block_count", "");
  auto a = run::load(no_key);
  REQUIRE_FALSE(a.ok());
  CHECK(a.status().message().find(no_key) != std::string::npos);
  CHECK(a.status().message().find("llama.block_count") != std::string::npos);

  const std::string no_tensor = rewrite("no-tensor.gguf", "", "blk.0.ffn_down.weight");
  auto b = run::load(no_tensor);
  REQUIRE_FALSE(b.ok());
  CHECK(b.status().message().find(no_tensor) != std::string::npos);
  CHECK(b.status().message().find("blk.0.ffn_down.weight") != std::string::npos);

  // A vocabulary of 400 tokens on a model whose embedding has 300 rows.
  const std::string big_vocab = synth_model("vocab400.gguf", 400);
  auto v = io::GgufFile::open(big_vocab);
  REQUIRE(v.ok());
  const std::string mixed = rewrite("mixed.gguf", "", "", &*v);
  auto c = run::load(mixed);
  REQUIRE_FALSE(c.ok());
  CHECK(c.status().message().find(mixed) != std::string::npos);
  CHECK(c.status().message().find("400") != std::string::npos);
  CHECK(c.status().message().find("300") != std::string::npos);
  for (const auto& p : {good, no_key, no_tensor, big_vocab, mixed}) std::filesystem::remove(p);
}

TEST_CASE("GGUF models: tokenizer metadata that disagrees with itself") {
  const std::string good = synth_model("tok-good.gguf");
  auto g = io::GgufFile::open(good);
  REQUIRE(g.ok());
  // The model with the keys in `drop` left out and `add` writing replacements.
  auto variant = [&](const std::string& name, std::vector<std::string_view> drop, auto add) {
    io::GgufWriter w;
    for (const auto& kv : g->metadata()) {
      bool skip = kv.key == "general.alignment";
      for (std::string_view d : drop) skip = skip || kv.key == d;
      if (!skip) w.add_value(kv.key, kv.value);
    }
    add(w);
    for (const auto& t : g->tensors())
      REQUIRE(w.add_tensor(t.name, t.type, std::span<const uint64_t>(t.ne, t.n_dims),
                           std::span<const std::byte>(t.data, t.n_bytes))
                  .is_ok());
    const std::string path = temp_path(name);
    REQUIRE(w.write(path).is_ok());
    return path;
  };
  auto expect = [&](const std::string& path, const std::string& what) {
    CAPTURE(path);
    auto l = run::load(path);
    CAPTURE(l.status().to_string());
    REQUIRE_FALSE(l.ok());
    CHECK(l.status().message().find(path) != std::string::npos);
    CHECK(l.status().message().find(what) != std::string::npos);
    std::filesystem::remove(path);
  };
  expect(variant("scores.gguf", {"tokenizer.ggml.scores"},
                 [](io::GgufWriter& w) { w.add_f32_array("tokenizer.ggml.scores", std::vector<float>(10, 0.0f)); }),
         "tokenizer.ggml.scores has 10");
  expect(variant("types.gguf", {"tokenizer.ggml.token_type"},
                 [](io::GgufWriter& w) { w.add_i32_array("tokenizer.ggml.token_type", std::vector<int32_t>(7, 1)); }),
         "tokenizer.ggml.token_type has 7");
  expect(variant("model.gguf", {"tokenizer.ggml.model"},
                 [](io::GgufWriter& w) { w.add_string("tokenizer.ggml.model", "no-such-model"); }),
         "no-such-model");
  expect(variant("empty.gguf", {"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"},
                 [](io::GgufWriter& w) { w.add_string_array("tokenizer.ggml.tokens", std::vector<std::string>{}); }),
         "tokenizer.ggml.tokens is empty");
  expect(variant("bpe.gguf", {"tokenizer.ggml.model"},
                 [](io::GgufWriter& w) { w.add_string("tokenizer.ggml.model", "gpt2"); }),
         "tokenizer.ggml.merges");
  // A BOS id outside the vocabulary is ignored (the SentencePiece default, 1, stays): every id encode gives is valid.
  {
    const std::string bos = variant("bos.gguf", {"tokenizer.ggml.bos_token_id"},
                                    [](io::GgufWriter& w) { w.add_u32("tokenizer.ggml.bos_token_id", 1u << 30); });
    auto l = run::load(bos);
    REQUIRE(l.ok());
    REQUIRE(l->tokenizer);
    CHECK(l->tokenizer->bos() == 1);
    auto ids = l->tokenizer->encode("hi");
    REQUIRE(ids.ok());
    REQUIRE(!ids->empty());
    for (int32_t id : *ids) CHECK(l->tokenizer->valid(id));
    std::filesystem::remove(bos);
  }
  // The tokens array given as numbers.
  expect(variant("kind.gguf", {"tokenizer.ggml.tokens"},
                 [](io::GgufWriter& w) { w.add_i32_array("tokenizer.ggml.tokens", std::vector<int32_t>(300, 0)); }),
         "tokenizer.ggml.tokens");
  std::filesystem::remove(good);
}

TEST_CASE("llama2.c checkpoints: zero, negative and huge header fields") {
  const std::array<int32_t, 7> good = {64, 172, 5, 8, 4, 512, 512};  // stories260K's shape
  const std::string path = temp_path("hostile.bin");
  const char* names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
  for (int field = 0; field < 7; ++field) {
    for (int32_t value : {0, -1, INT32_MIN}) {
      if (field == 5 && value == -1) continue;  // a negative vocab_size is run.c's "unshared classifier"
      CAPTURE(names[field]);
      CAPTURE(value);
      auto c = good;
      c[field] = value;
      write_file(path, llama2c_header(c, 4096));
      auto f = io::ModelFile::open(path);
      REQUIRE_FALSE(f.ok());
      CHECK(f.status().message().find(path) != std::string::npos);
      CHECK(f.status().message().find(std::string("llama2.c header field ") + names[field]) != std::string::npos);
    }
  }
  // Huge fields: refused as implausible or as larger than the file, without allocating their product.
  for (int field = 0; field < 7; ++field) {
    CAPTURE(names[field]);
    auto c = good;
    c[field] = INT32_MAX;
    if (field == 0) c[field] = 1 << 30;  // a multiple of n_heads, so the size check is reached
    write_file(path, llama2c_header(c, 4096));
    auto f = io::ModelFile::open(path);
    REQUIRE_FALSE(f.ok());
    CHECK(f.status().message().find(path) != std::string::npos);
  }
  // More kv heads than heads.
  auto kv = good;
  kv[4] = 16;
  write_file(path, llama2c_header(kv, 4096));
  auto f = io::ModelFile::open(path);
  REQUIRE_FALSE(f.ok());
  CHECK(f.status().message().find("not a multiple of the kv head count 16") != std::string::npos);
  // A valid header over too few weights.
  write_file(path, llama2c_header(good, 4096));
  auto shortf = io::ModelFile::open(path);
  REQUIRE_FALSE(shortf.ok());
  CHECK(shortf.status().message().find(path) != std::string::npos);
  // Shorter than the header.
  for (size_t cut : {0, 1, 4, 27}) {
    CAPTURE(cut);
    auto h = llama2c_header(good);
    h.resize(cut);
    write_file(path, h);
    auto t = io::ModelFile::open(path);
    REQUIRE_FALSE(t.ok());
    CHECK(t.status().message().find(path) != std::string::npos);
  }
  // ak42 (v2) with an unknown version and a bad group size.
  Bytes v;
  v.u32(0x616b3432u).i32(3);
  v.b.resize(256, 0);
  write_file(path, v.b);
  auto bad_version = io::ModelFile::open(path);
  REQUIRE_FALSE(bad_version.ok());
  CHECK(bad_version.status().message().find("version 3") != std::string::npos);
  // ak42 v2 whose vocab_size is INT32_MIN: refused by name (its magnitude does not fit an int32).
  Bytes v2;
  v2.u32(0x616b3432u).i32(2);
  for (int32_t x : {64, 172, 5, 8, 4, INT32_MIN, 512}) v2.i32(x);
  v2.raw("\x01", 1).i32(4);
  v2.b.resize(256, 0);
  write_file(path, v2.b);
  auto min_vocab = io::ModelFile::open(path);
  REQUIRE_FALSE(min_vocab.ok());
  CHECK(min_vocab.status().message().find("llama2.c header field vocab_size") != std::string::npos);
  std::filesystem::remove(path);
}

TEST_CASE("llama2.c tokenizer.bin: truncated, negative and huge lengths") {
  const std::string path = temp_path("tokenizer.bin");
  auto expect_error = [&](const Bytes& x, const std::string& what, int32_t n_tokens) {
    write_file(path, x.b);
    auto t = text::Tokenizer::from_llama2c(path, n_tokens);
    CAPTURE(t.status().to_string());
    REQUIRE_FALSE(t.ok());
    CHECK(t.status().message().find(path) != std::string::npos);
    CHECK(t.status().message().find(what) != std::string::npos);
  };
  expect_error(Bytes{}, "shorter than its header", 4);
  Bytes one;
  one.u32(8).f32(0.0f).i32(1).raw("a", 1).f32(0.0f);  // token 1: a score, no length
  expect_error(one, "token 1 is truncated", 4);
  Bytes neg;
  neg.u32(8).f32(0.0f).i32(-5);
  expect_error(neg, "token 0 has length", 4);
  Bytes huge;
  huge.u32(8).f32(0.0f).i32(INT32_MAX);
  expect_error(huge, "token 0 has length", 4);
  Bytes toolong;
  toolong.u32(8).f32(0.0f).i32(9).raw("abcdefghi", 9);
  expect_error(toolong, "token 0 has length", 4);
  auto n = text::Tokenizer::from_llama2c(path, -3);
  REQUIRE_FALSE(n.ok());
  CHECK(n.status().message().find("negative token count") != std::string::npos);
  std::filesystem::remove(path);
}

TEST_CASE("a session too large for memory is a Status, not an abort") {
  const std::string path = synth_model("oom.gguf");
  auto lm = run::load(path);
  REQUIRE(lm.ok());
  run::SessionOptions so;
  so.n_ctx = size_t{1} << 40;  // 2^40 positions x 64 floats x 2 (K, V): far past any machine
  auto s = run::Session::create(lm->model, so);
  REQUIRE_FALSE(s.ok());
  CAPTURE(s.status().to_string());
  CHECK((s.status().code() == Code::out_of_memory || s.status().code() == Code::invalid_argument));
  so.n_ctx = 16;  // the same model and options otherwise work
  CHECK(run::Session::create(lm->model, so).ok());
  std::filesystem::remove(path);
}

// A file shrunk by another process while mapped turns reads of the lost pages
// into SIGBUS; a library cannot take that signal over from its host. What it
// offers instead: everything is validated against the size at open time, and
// MappedFile::Mode::read_only_copy reads the file into memory for hosts whose
// files may change under them. This test shows both, in a child process.
TEST_CASE("a model file truncated while mapped") {
  const std::string path = temp_path("shrink.bin");
  std::vector<uint8_t> data(1 << 20, 7);
  write_file(path, data);
  auto run_child = [&](MappedFile::Mode mode) {
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      auto f = MappedFile::open(path, mode);
      if (!f.ok()) _exit(2);
      if (::truncate(path.c_str(), 0) != 0) _exit(3);
      volatile unsigned sum = 0;
      for (size_t i = 0; i < f->size(); i += 4096) sum = sum + static_cast<unsigned>(f->data()[i]);
      _exit(sum == 7u * 256 ? 0 : 4);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    write_file(path, data);  // restore for the next run
    return status;
  };
  const int copied = run_child(MappedFile::Mode::read_only_copy);
  CHECK(WIFEXITED(copied));
  CHECK(WEXITSTATUS(copied) == 0);
  const int mapped = run_child(MappedFile::Mode::map_or_read);
  // Mapped: the kernel raises SIGBUS on the first page past the new end (a
  // sanitizer runtime turns it into its own report and a non-zero exit).
  CAPTURE(mapped);
  CHECK((WIFSIGNALED(mapped) ? WTERMSIG(mapped) == SIGBUS : WEXITSTATUS(mapped) != 0));
  std::filesystem::remove(path);
}

// GGUF reader and writer: round trips, the shared files, and hostile input.
#include <doctest/doctest.h>

#include <array>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "jielong/io/gguf.hpp"
#include "jielong/io/gguf_writer.hpp"
#include "support/shared.hpp"

using namespace jielong;
using namespace jielong::io;

namespace {

std::span<const std::byte> as_bytes(const std::vector<float>& v) {
  return std::as_bytes(std::span<const float>(v));
}

// A small valid file: scalars of several types, a string array, a float
// array and two tensors (a 3×5 F32 matrix and a 64-element Q8_0 row pair).
struct Sample {
  std::vector<float> a = std::vector<float>(15);
  std::vector<std::byte> q = std::vector<std::byte>(2 * 2 * 34);
  std::vector<std::byte> image;
  Sample() {
    for (size_t i = 0; i < a.size(); ++i) a[i] = 0.5f * static_cast<float>(i) - 3.0f;
    for (size_t i = 0; i < q.size(); ++i) q[i] = static_cast<std::byte>(i * 7 + 1);
    GgufWriter w;
    w.add_string("general.architecture", "llama");
    w.add_u32("llama.block_count", 4);
    w.add_i32("test.negative", -7);
    w.add_u64("test.big", uint64_t{1} << 40);
    w.add_f32("test.eps", 1e-5f);
    w.add_bool("test.flag", true);
    w.add_u8("test.u8", 200);
    const std::vector<std::string> toks = {"<unk>", "a", "", "bc\xe2\x96\x81"};
    w.add_string_array("tokenizer.ggml.tokens", toks);
    const std::vector<float> scores = {0.0f, -1.5f, 2.25f, 3.0f};
    w.add_f32_array("tokenizer.ggml.scores", scores);
    const std::vector<int32_t> types = {2, 1, 1, 6};
    w.add_i32_array("tokenizer.ggml.token_type", types);
    REQUIRE(w.add_tensor("a.weight", DType::F32, {5, 3}, as_bytes(a)).is_ok());
    REQUIRE(w.add_tensor("q.weight", DType::Q8_0, {64, 2}, q).is_ok());
    image = w.to_bytes();
  }
};

size_t find_bytes(const std::vector<std::byte>& hay, std::string_view needle) {
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i)
    if (std::memcmp(hay.data() + i, needle.data(), needle.size()) == 0) return i;
  return std::string::npos;
}
template <class T>
void poke(std::vector<std::byte>& b, size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof v);
}
Result<GgufFile> read(const std::vector<std::byte>& b) { return GgufFile::from_memory(b, "test.gguf"); }

}  // namespace

TEST_CASE("gguf: write then read gives back every value and tensor") {
  Sample s;
  auto f = read(s.image);
  REQUIRE_MESSAGE(f.ok(), f.status().to_string());
  CHECK(f->version() == 3);
  CHECK(*f->get_string("general.architecture") == "llama");
  CHECK(*f->get_u32("llama.block_count") == 4);
  CHECK(*f->get_int("test.negative") == -7);
  CHECK(*f->get_int("test.big") == (int64_t{1} << 40));
  CHECK(*f->get_f32("test.eps") == 1e-5f);
  CHECK(*f->get_bool("test.flag"));
  CHECK(*f->get_u32("test.u8") == 200);
  auto toks = f->get_array("tokenizer.ggml.tokens");
  REQUIRE(toks.ok());
  CHECK(toks->type() == GgufType::string);
  REQUIRE(toks->size() == 4);
  CHECK(*toks->string(0) == "<unk>");
  CHECK(*toks->string(2) == "");
  CHECK(*toks->string(3) == "bc\xe2\x96\x81");
  CHECK(toks->string(4).status().code() == Code::out_of_range);
  CHECK(toks->f32(0).status().message().find("tokenizer.ggml.tokens") != std::string::npos);
  auto scores = f->get_array("tokenizer.ggml.scores");
  REQUIRE(scores.ok());
  CHECK(*scores->f32(1) == -1.5f);
  CHECK(*scores->f32(2) == 2.25f);
  CHECK_FALSE(scores->i32(0).ok());
  CHECK(*f->get_array("tokenizer.ggml.token_type")->i32(3) == 6);

  REQUIRE(f->tensors().size() == 2);
  const GgufTensorInfo* a = f->find_tensor("a.weight");
  REQUIRE(a != nullptr);
  CHECK(a->type == DType::F32);
  CHECK(a->n_dims == 2);
  CHECK(a->ne[0] == 5);
  CHECK(a->ne[1] == 3);
  CHECK(a->n_bytes == 60);
  CHECK(std::memcmp(a->data, s.a.data(), 60) == 0);
  CHECK((a->data - s.image.data()) % 32 == 0);
  const GgufTensorInfo* q = f->find_tensor("q.weight");
  REQUIRE(q != nullptr);
  CHECK(q->type == DType::Q8_0);
  CHECK(q->n_bytes == s.q.size());
  CHECK(std::memcmp(q->data, s.q.data(), s.q.size()) == 0);
  CHECK(q->offset % 32 == 0);
  CHECK(f->find_tensor("missing") == nullptr);
}

TEST_CASE("gguf: typed getters name the key and the types on mismatch") {
  Sample s;
  auto f = read(s.image);
  REQUIRE(f.ok());
  auto e = f->get_u32("general.architecture");
  REQUIRE_FALSE(e.ok());
  CHECK(e.status().message().find("general.architecture") != std::string::npos);
  CHECK(e.status().message().find("string") != std::string::npos);
  auto m = f->get_string("no.such.key");
  REQUIRE_FALSE(m.ok());
  CHECK(m.status().message().find("no.such.key") != std::string::npos);
  CHECK_FALSE(f->get_u32("test.negative").ok());  // -7 is not a u32
  CHECK_FALSE(f->get_f32("llama.block_count").ok());
  CHECK_FALSE(f->get_bool("test.u8").ok());
}

TEST_CASE("gguf: custom alignment is honoured by writer and reader") {
  std::vector<float> v(3, 1.0f), w2(5, 2.0f);
  GgufWriter w(64);
  REQUIRE(w.add_tensor("x", DType::F32, {3}, as_bytes(v)).is_ok());
  REQUIRE(w.add_tensor("y", DType::F32, {5}, as_bytes(w2)).is_ok());
  auto img = w.to_bytes();
  auto f = read(img);
  REQUIRE_MESSAGE(f.ok(), f.status().to_string());
  CHECK(f->alignment() == 64);
  CHECK(f->data_offset() % 64 == 0);
  CHECK(f->find_tensor("y")->offset == 64);
  CHECK(reinterpret_cast<const float*>(f->find_tensor("y")->data)[4] == 2.0f);
}

TEST_CASE("gguf: writer rejects a tensor whose bytes do not match its shape") {
  std::vector<float> v(10);
  GgufWriter w;
  CHECK_FALSE(w.add_tensor("x", DType::F32, {3, 3}, as_bytes(v)).is_ok());
  CHECK_FALSE(w.add_tensor("q", DType::Q8_0, {10}, as_bytes(v)).is_ok());  // 10 is not a whole block
}

TEST_CASE("gguf: a file truncated anywhere before its last tensor byte is an error") {
  Sample s;
  auto whole = read(s.image);
  REQUIRE(whole.ok());
  const GgufTensorInfo* last = whole->find_tensor("q.weight");
  const size_t needed = whole->data_offset() + last->offset + last->n_bytes;
  for (size_t n = 0; n < needed; ++n) {
    std::vector<std::byte> cut(s.image.begin(), s.image.begin() + static_cast<long>(n));
    auto f = read(cut);
    CHECK_MESSAGE(!f.ok(), "truncated at " << n);
    if (!f.ok()) CHECK(f.status().code() != Code::ok);
  }
}

TEST_CASE("gguf: hostile headers return a Status naming the problem") {
  Sample s;
  SUBCASE("wrong magic") {
    auto b = s.image;
    b[0] = std::byte{'X'};
    auto f = read(b);
    REQUIRE_FALSE(f.ok());
    CHECK(f.status().message().find("GGUF") != std::string::npos);
  }
  SUBCASE("version 1 is unsupported") {
    auto b = s.image;
    poke<uint32_t>(b, 4, 1);
    auto f = read(b);
    REQUIRE_FALSE(f.ok());
    CHECK(f.status().code() == Code::unsupported);
    CHECK(f.status().message().find("version 1") != std::string::npos);
  }
  SUBCASE("version 2 reads like 3") {
    auto b = s.image;
    poke<uint32_t>(b, 4, 2);
    CHECK(read(b).ok());
  }
  SUBCASE("version 99") {
    auto b = s.image;
    poke<uint32_t>(b, 4, 99);
    CHECK(read(b).status().code() == Code::unsupported);
  }
  SUBCASE("tensor count 2^60") {
    auto b = s.image;
    poke<uint64_t>(b, 8, uint64_t{1} << 60);
    auto f = read(b);
    REQUIRE_FALSE(f.ok());
    CHECK(f.status().message().find("tensor count") != std::string::npos);
  }
  SUBCASE("metadata count 2^60") {
    auto b = s.image;
    poke<uint64_t>(b, 16, uint64_t{1} << 60);
    auto f = read(b);
    REQUIRE_FALSE(f.ok());
    CHECK(f.status().message().find("metadata count") != std::string::npos);
  }
  SUBCASE("key length past the end") {
    auto b = s.image;
    poke<uint64_t>(b, 24, uint64_t{1} << 62);
    CHECK_FALSE(read(b).ok());
  }
  SUBCASE("string value length past the end") {
    auto b = s.image;
    const size_t at = find_bytes(b, "general.architecture") + 20 + 4;  // after key and type
    poke<uint64_t>(b, at, ~uint64_t{0});
    auto f = read(b);
    REQUIRE_FALSE(f.ok());
    CHECK(f.status().message().find("general.architecture") != std::string::npos);
  }
  SUBCASE("string array of 2^60 elements") {
    auto b = s.image;
    const size_t at = find_bytes(b, "tokenizer.ggml.tokens") + 21 + 4 + 4;  // key, type, element type
    poke<uint64_t>(b, at, uint64_t{1} << 60);
    auto f = read(b);
    REQUIRE_FALSE(f.ok());
    CHECK(f.status().message().find("tokenizer.ggml.tokens") != std::string::npos);
  }
  SUBCASE("float array of 2^61 elements (would overflow ×4)") {
    auto b = s.image;
    const size_t at = find_bytes(b, "tokenizer.ggml.scores") + 21 + 4 + 4;
    poke<uint64_t>(b, at, uint64_t{1} << 62);
    CHECK_FALSE(read(b).ok());
  }
  SUBCASE("unknown value type") {
    auto b = s.image;
    poke<uint32_t>(b, find_bytes(b, "llama.block_count") + 17, 77);
    auto f = read(b);
    REQUIRE_FALSE(f.ok());
    CHECK(f.status().message().find("llama.block_count") != std::string::npos);
  }
  // Tensor info of "a.weight": name, u32 n_dims, u64 ne[2], u32 type, u64 offset.
  const size_t ti = find_bytes(s.image, "a.weight") + 8;
  SUBCASE("rank 5") {
    auto b = s.image;
    poke<uint32_t>(b, ti, 5);
    CHECK(read(b).status().message().find("a.weight") != std::string::npos);
  }
  SUBCASE("overflowing dimensions") {
    auto b = s.image;
    poke<uint64_t>(b, ti + 4, uint64_t{1} << 40);
    poke<uint64_t>(b, ti + 12, uint64_t{1} << 40);
    auto f = read(b);
    REQUIRE_FALSE(f.ok());
    CHECK(f.status().message().find("a.weight") != std::string::npos);
  }
  SUBCASE("huge but non-overflowing dimensions are outside the file") {
    auto b = s.image;
    poke<uint64_t>(b, ti + 4, uint64_t{1} << 30);
    CHECK(read(b).status().message().find("outside") != std::string::npos);
  }
  SUBCASE("zero dimension") {
    auto b = s.image;
    poke<uint64_t>(b, ti + 4, 0);
    CHECK_FALSE(read(b).ok());
  }
  SUBCASE("unknown tensor type") {
    auto b = s.image;
    poke<uint32_t>(b, ti + 20, 16);  // ggml's IQ2_XXS: not supported
    auto f = read(b);
    REQUIRE_FALSE(f.ok());
    CHECK(f.status().code() == Code::unsupported);
    CHECK(f.status().message().find("a.weight") != std::string::npos);
  }
  SUBCASE("row not a whole number of blocks") {
    auto b = s.image;
    poke<uint32_t>(b, ti + 20, static_cast<uint32_t>(DType::Q4_0));  // 5 elements per row
    CHECK(read(b).status().message().find("block size") != std::string::npos);
  }
  SUBCASE("misaligned offset") {
    auto b = s.image;
    poke<uint64_t>(b, ti + 24, 4);
    CHECK(read(b).status().message().find("alignment") != std::string::npos);
  }
  SUBCASE("offset past the end") {
    auto b = s.image;
    poke<uint64_t>(b, ti + 24, uint64_t{1} << 20);
    CHECK(read(b).status().message().find("outside") != std::string::npos);
  }
  SUBCASE("offset near 2^64 (would wrap)") {
    auto b = s.image;
    poke<uint64_t>(b, ti + 24, ~uint64_t{0} - 31);
    CHECK_FALSE(read(b).ok());
  }
}

TEST_CASE("gguf: alignment key must be a power-of-two u32") {
  for (uint32_t al : {0u, 3u, 48u}) {
    GgufWriter w;
    w.add_u32("general.alignment", al);
    CHECK_FALSE(read(w.to_bytes()).ok());
  }
  GgufWriter w;
  w.add_string("general.alignment", "32");
  CHECK_FALSE(read(w.to_bytes()).ok());
}

TEST_CASE("gguf: duplicate keys and tensor names are errors") {
  GgufWriter w;
  w.add_u32("k", 1);
  w.add_u32("k", 2);
  CHECK(read(w.to_bytes()).status().message().find("'k'") != std::string::npos);
  std::vector<float> v(4);
  GgufWriter w2;
  REQUIRE(w2.add_tensor("t", DType::F32, {4}, as_bytes(v)).is_ok());
  REQUIRE(w2.add_tensor("t", DType::F32, {4}, as_bytes(v)).is_ok());
  CHECK_FALSE(read(w2.to_bytes()).ok());
}

TEST_CASE("gguf: random corruption of the header never crashes") {
  // Not a proof, but every outcome must be a value: ok or a Status.
  Sample s;
  auto whole = read(s.image);
  REQUIRE(whole.ok());
  std::mt19937 rng(1234);
  int errors = 0;
  for (int it = 0; it < 3000; ++it) {
    auto b = s.image;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k)
      b[rng() % whole->data_offset()] = static_cast<std::byte>(rng() & 0xff);
    auto f = read(b);
    if (!f.ok()) {
      ++errors;
      CHECK_FALSE(f.status().message().empty());
    } else {
      for (const auto& t : f->tensors()) {  // whatever was accepted lies inside the image
        CHECK(t.data >= b.data());
        CHECK(t.data + t.n_bytes <= b.data() + b.size());
      }
    }
  }
  CHECK(errors > 0);
}

TEST_CASE("gguf: shared model files open and expose their tensors") {
  const char* files[] = {"models/stories260K/stories260K.gguf", "models/synth/synth-llama-f32.gguf",
                         "models/synth/synth-llama-q4_k_m.gguf", "models/synth/synth-qwen2-q8_0.gguf"};
  for (const char* rel : files) {
    auto path = test::shared_file(rel);
    if (!path) continue;
    auto f = GgufFile::open(*path);
    REQUIRE_MESSAGE(f.ok(), f.status().to_string());
    CHECK(f->find_tensor("token_embd.weight") != nullptr);
    CHECK(f->find_tensor("blk.0.attn_q.weight") != nullptr);
    CHECK(f->get_string("general.architecture").ok());
    auto toks = f->get_array("tokenizer.ggml.tokens");
    REQUIRE(toks.ok());
    CHECK(toks->type() == GgufType::string);
    CHECK(toks->size() >= 512);
  }
}

TEST_CASE("gguf: every shared vocabulary file opens") {
  const char* names[] = {"llama-spm", "phi-3", "gpt-2", "falcon", "deepseek-coder", "deepseek-llm",
                         "starcoder", "mpt", "refact", "gpt-neox", "baichuan", "bert-bge"};
  for (const char* n : names) {
    auto path = test::shared_file(std::string("vocab/ggml-vocab-") + n + ".gguf");
    if (!path) continue;
    auto f = GgufFile::open(*path);
    REQUIRE_MESSAGE(f.ok(), f.status().to_string());
    CHECK(f->get_string("tokenizer.ggml.model").ok());
    CHECK(f->get_array("tokenizer.ggml.tokens")->size() > 1000);
  }
}

TEST_CASE("gguf: stories260K.gguf truncated at every byte of its header is an error") {
  auto path = test::shared_file("models/stories260K/stories260K.gguf");
  if (!path) return;
  auto whole = GgufFile::open(*path);
  REQUIRE(whole.ok());
  const auto all = whole->bytes();
  for (size_t n = 0; n <= whole->data_offset(); ++n) {
    std::vector<std::byte> cut(all.begin(), all.begin() + static_cast<long>(n));
    CHECK_MESSAGE(!read(cut).ok(), "truncated at " << n);
  }
}

TEST_CASE("gguf: a missing file is an i/o error naming it") {
  auto f = GgufFile::open("/nonexistent/dir/model.gguf");
  REQUIRE_FALSE(f.ok());
  CHECK(f.status().code() == Code::io_error);
  CHECK(f.status().message().find("/nonexistent/dir/model.gguf") != std::string::npos);
}

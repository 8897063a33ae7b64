// Hyper-parameters and the common model-file view: every shared model loads
// with the hyper-parameters listed in ../shared/README.md, the llama2.c and
// GGUF forms of stories260K agree, and bad headers are Status errors.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "jielong/io/gguf_writer.hpp"
#include "jielong/io/model_file.hpp"
#include "jielong/model/hparams.hpp"
#include "jielong/model/memory_plan.hpp"
#include "support/shared.hpp"

using namespace jielong;
using namespace jielong::io;
using jielong::model::Arch;
using jielong::model::HParams;

namespace {

HParams hparams_of(const ModelFile& f) {
  auto hp = model::hparams_from_file(f);
  REQUIRE_MESSAGE(hp.ok(), hp.status().to_string());
  return *hp;
}

struct Expect {
  const char* file;
  Arch arch;
  size_t embd, ff, layers, heads, kv_heads, vocab, ctx;  // 0: not stated by the README
  bool tied;
};

void check(const HParams& hp, const Expect& e) {
  INFO(std::string(e.file));
  CHECK(hp.arch == e.arch);
  CHECK(hp.n_embd == e.embd);
  if (e.ff) CHECK(hp.n_ff == e.ff);
  CHECK(hp.n_layers == e.layers);
  CHECK(hp.n_heads == e.heads);
  CHECK(hp.n_kv_heads == e.kv_heads);
  CHECK(hp.n_vocab == e.vocab);
  if (e.ctx) CHECK(hp.n_ctx_train == e.ctx);
  CHECK(hp.tied_embeddings == e.tied);
  CHECK(hp.head_dim == e.embd / e.heads);
}

std::string temp_path(const char* name) {
  return (std::filesystem::temp_directory_path() / (std::string("jielong-test-") + name)).string();
}

}  // namespace

TEST_CASE("hparams: every shared model loads with the README's hyper-parameters") {
  const Expect expects[] = {
      {"models/stories260K/stories260K.bin", Arch::llama, 64, 172, 5, 8, 4, 512, 512, true},
      // The GGUF conversion stores the classifier as its own tensor (a copy).
      {"models/stories260K/stories260K.gguf", Arch::llama, 64, 172, 5, 8, 4, 512, 0, false},
      {"models/stories260K/stories260K_q8.bin", Arch::llama, 64, 172, 5, 8, 4, 512, 512, true},
      {"models/aidreams260K/aidreams260K.bin", Arch::llama, 64, 0, 4, 4, 4, 512, 128, true},
  };
  for (const Expect& e : expects) {
    auto path = test::shared_file(e.file);
    if (!path) continue;
    auto f = ModelFile::open(*path);
    REQUIRE_MESSAGE(f.ok(), f.status().to_string());
    check(hparams_of(**f), e);
  }
  // (q2_k is tested below: llama.cpp stored its ffn_down as IQ4_NL.)
  const char* synth_types[] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0",
                               "q5_1", "q3_k_m", "q4_k_m", "q5_k_m", "q6_k"};
  for (const char* t : synth_types) {
    const std::string rel = std::string("models/synth/synth-llama-") + t + ".gguf";
    auto path = test::shared_file(rel);
    if (!path) continue;
    auto f = ModelFile::open(*path);
    REQUIRE_MESSAGE(f.ok(), f.status().to_string());
    check(hparams_of(**f), {rel.c_str(), Arch::llama, 256, 704, 4, 8, 2, 512, 0, (*f)->find_tensor("output.weight") == nullptr});
    CHECK_FALSE(hparams_of(**f).rope_neox);
  }
  // llama.cpp's Q2_K mix falls back to IQ4_NL (ggml type 20) for rows of 704,
  // which jielong does not read: a clear unsupported error naming the tensor.
  if (auto path = test::shared_file("models/synth/synth-llama-q2_k.gguf")) {
    auto f = ModelFile::open(*path);
    REQUIRE_FALSE(f.ok());
    CHECK(f.status().code() == Code::unsupported);
    CHECK(f.status().message().find("ffn_down") != std::string::npos);
    CHECK(f.status().message().find("20") != std::string::npos);
  }
  for (const char* t : {"f16", "q8_0"}) {
    const std::string rel = std::string("models/synth/synth-qwen2-") + t + ".gguf";
    auto path = test::shared_file(rel);
    if (!path) continue;
    auto f = ModelFile::open(*path);
    REQUIRE_MESSAGE(f.ok(), f.status().to_string());
    const HParams hp = hparams_of(**f);
    check(hp, {rel.c_str(), Arch::qwen2, 128, 384, 3, 4, 2, 50257, 0, true});
    CHECK(hp.qkv_bias);
    CHECK(hp.rope_neox);
  }
}

TEST_CASE("model file: stories260K .bin and .gguf hold identical tensors") {
  auto bin_path = test::shared_file("models/stories260K/stories260K.bin");
  auto gguf_path = test::shared_file("models/stories260K/stories260K.gguf");
  if (!bin_path || !gguf_path) return;
  auto bin = ModelFile::open(*bin_path);
  auto gguf = ModelFile::open(*gguf_path);
  REQUIRE(bin.ok());
  REQUIRE(gguf.ok());
  CHECK((*bin)->format() == ModelFormat::llama2c_v0);
  size_t compared = 0;
  for (const GgufTensorInfo& t : (*bin)->tensors()) {
    INFO(std::string(t.name));
    const GgufTensorInfo* g = (*gguf)->find_tensor(t.name);
    REQUIRE(g != nullptr);
    CHECK(g->type == DType::F32);
    CHECK(g->ne[0] == t.ne[0]);
    CHECK(g->ne[1] == t.ne[1]);
    REQUIRE(g->n_bytes == t.n_bytes);
    CHECK(std::memcmp(g->data, t.data, t.n_bytes) == 0);
    ++compared;
  }
  CHECK(compared == 2 + 5 * 9);  // embedding, final norm, 9 per layer
  // The GGUF's separate classifier is the .bin's shared embedding.
  const GgufTensorInfo* out = (*gguf)->find_tensor("output.weight");
  REQUIRE(out != nullptr);
  const GgufTensorInfo* embd = (*bin)->find_tensor("token_embd.weight");
  REQUIRE(out->n_bytes == embd->n_bytes);
  CHECK(std::memcmp(out->data, embd->data, embd->n_bytes) == 0);
  // Both forms name the same set (the GGUF may also carry e.g. rope tables).
  for (const char* n : {"token_embd.weight", "output_norm.weight", "blk.4.ffn_down.weight"})
    CHECK((*bin)->find_tensor(n) != nullptr);
}

TEST_CASE("model file: llama2.c Q8_0 export dequantizes close to the fp32 weights") {
  auto f32_path = test::shared_file("models/stories260K/stories260K.bin");
  auto q8_path = test::shared_file("models/stories260K/stories260K_q8.bin");
  if (!f32_path || !q8_path) return;
  auto a = ModelFile::open(*f32_path);
  auto b = ModelFile::open(*q8_path);
  REQUIRE(a.ok());
  REQUIRE_MESSAGE(b.ok(), b.status().to_string());
  CHECK((*b)->format() == ModelFormat::llama2c_q8);
  CHECK((*b)->llama2c_group_size() == 4);  // stated by the README
  const size_t G = (*b)->llama2c_group_size();
  for (const GgufTensorInfo& t : (*a)->tensors()) {
    INFO(std::string(t.name));
    const GgufTensorInfo* q = (*b)->find_tensor(t.name);
    REQUIRE(q != nullptr);
    const size_t n = t.n_bytes / 4;
    REQUIRE(q->n_elements() == n);
    // Matrices come as int8 groups with one scale each (the engine multiplies
    // them as runq.c does); norms and the token table as f32.
    std::vector<float> y(n);
    if (q->type == DType::I8) {
      REQUIRE(q->group_size == G);
      REQUIRE(q->group_scales != nullptr);
      const auto* v = reinterpret_cast<const int8_t*>(q->data);
      for (size_t j = 0; j < n; ++j) y[j] = static_cast<float>(v[j]) * q->group_scales[j / G];
    } else {
      REQUIRE(q->type == DType::F32);
      std::memcpy(y.data(), q->data, n * 4);
    }
    const auto* x = reinterpret_cast<const float*>(t.data);
    const bool is_norm = t.n_dims == 1;
    for (size_t g = 0; g < n; g += G) {
      // export.py: scale = max|w| / 127 per group, q = round(w / scale), so
      // |w - q·scale| <= scale / 2 (plus float rounding). Norms are stored exactly.
      float amax = 0;
      for (size_t j = g; j < g + G; ++j) amax = std::max(amax, std::fabs(x[j]));
      const float tol = is_norm ? 0.0f : amax / 127.0f * 0.5f + 1e-6f;
      for (size_t j = g; j < g + G; ++j)
        if (std::fabs(x[j] - y[j]) > tol) FAIL_CHECK("element " << j << ": " << x[j] << " vs " << y[j]);
    }
  }
}

TEST_CASE("hparams: GGUF keys, defaults, rope scaling and unsupported architectures") {
  auto make = [](const char* arch, auto&& extra) {
    GgufWriter w;
    w.add_string("general.architecture", arch);
    const std::string p = std::string(arch) + ".";
    w.add_u32(p + "embedding_length", 64);
    w.add_u32(p + "feed_forward_length", 96);
    w.add_u32(p + "block_count", 2);
    w.add_u32(p + "attention.head_count", 4);
    w.add_u32(p + "context_length", 256);
    w.add_string_array("tokenizer.ggml.tokens", std::vector<std::string>(100, "x"));
    extra(w, p);
    return w.to_bytes();
  };
  SUBCASE("defaults as llama.cpp") {
    auto img = make("llama", [](GgufWriter&, const std::string&) {});
    auto g = GgufFile::from_memory(img);
    REQUIRE(g.ok());
    auto hp = model::hparams_from_gguf(*g);
    REQUIRE_MESSAGE(hp.ok(), hp.status().to_string());
    CHECK(hp->n_kv_heads == 4);
    CHECK(hp->head_dim == 16);
    CHECK(hp->rope_dim == 16);
    CHECK(hp->n_vocab == 100);
    CHECK(hp->rms_norm_eps == 1e-5f);
    CHECK(hp->rope.freq_base == 10000.0f);
    CHECK(hp->rope.scaling == model::RopeScaling::none);
  }
  SUBCASE("GQA, epsilon, base, llama3 scaling") {
    auto img = make("llama", [](GgufWriter& w, const std::string& p) {
      w.add_u32(p + "attention.head_count_kv", 2);
      w.add_f32(p + "attention.layer_norm_rms_epsilon", 1e-6f);
      w.add_f32(p + "rope.freq_base", 500000.0f);
      w.add_string(p + "rope.scaling.type", "llama3");
      w.add_f32(p + "rope.scaling.factor", 8.0f);
      w.add_u32(p + "rope.scaling.original_context_length", 8192);
    });
    auto g = GgufFile::from_memory(img);
    auto hp = model::hparams_from_gguf(*g);
    REQUIRE_MESSAGE(hp.ok(), hp.status().to_string());
    CHECK(hp->n_kv_heads == 2);
    CHECK(hp->rms_norm_eps == 1e-6f);
    CHECK(hp->rope.freq_base == 500000.0f);
    CHECK(hp->rope.scaling == model::RopeScaling::llama3);
    CHECK(hp->rope.factor == 8.0f);
    CHECK(hp->rope.original_context == 8192.0f);
  }
  SUBCASE("linear scaling, old key") {
    auto img = make("llama", [](GgufWriter& w, const std::string& p) { w.add_f32(p + "rope.scale_linear", 4.0f); });
    auto g = GgufFile::from_memory(img);
    auto hp = model::hparams_from_gguf(*g);
    REQUIRE(hp.ok());
    CHECK(hp->rope.scaling == model::RopeScaling::linear);
    CHECK(hp->rope.factor == 4.0f);
  }
  SUBCASE("yarn is named as unsupported") {
    auto img = make("llama", [](GgufWriter& w, const std::string& p) { w.add_string(p + "rope.scaling.type", "yarn"); });
    auto hp = model::hparams_from_gguf(*GgufFile::from_memory(img));
    REQUIRE_FALSE(hp.ok());
    CHECK(hp.status().code() == Code::unsupported);
    CHECK(hp.status().message().find("yarn") != std::string::npos);
  }
  SUBCASE("unknown architecture is named") {
    auto img = make("mamba", [](GgufWriter&, const std::string&) {});
    auto hp = model::hparams_from_gguf(*GgufFile::from_memory(img));
    REQUIRE_FALSE(hp.ok());
    CHECK(hp.status().code() == Code::unsupported);
    CHECK(hp.status().message().find("mamba") != std::string::npos);
  }
  SUBCASE("missing required key is named") {
    GgufWriter w;
    w.add_string("general.architecture", "qwen2");
    w.add_u32("qwen2.embedding_length", 64);
    auto img = w.to_bytes();
    auto hp = model::hparams_from_gguf(*GgufFile::from_memory(img));
    REQUIRE_FALSE(hp.ok());
    CHECK(hp.status().message().find("qwen2.feed_forward_length") != std::string::npos);
  }
  SUBCASE("heads not dividing into kv heads") {
    auto img = make("llama", [](GgufWriter& w, const std::string& p) { w.add_u32(p + "attention.head_count_kv", 3); });
    auto hp = model::hparams_from_gguf(*GgufFile::from_memory(img));
    REQUIRE_FALSE(hp.ok());
    CHECK(hp.status().message().find("kv head") != std::string::npos);
  }
  SUBCASE("wrong key type is named") {
    auto img = make("llama", [](GgufWriter& w, const std::string& p) { w.add_string(p + "rope.freq_base", "1e4"); });
    auto hp = model::hparams_from_gguf(*GgufFile::from_memory(img));
    REQUIRE_FALSE(hp.ok());
    CHECK(hp.status().message().find("llama.rope.freq_base") != std::string::npos);
  }
}

TEST_CASE("llama2.c: sign of vocab_size selects shared or separate classifier") {
  // A tiny v0 checkpoint: dim 4, hidden 8, 1 layer, 2 heads, 2 kv heads, vocab 3, seq_len 2.
  auto write = [](int32_t vocab, size_t extra_floats) {
    const int32_t h[7] = {4, 8, 1, 2, 2, vocab, 2};
    const size_t V = 3, d = 4, ff = 8;
    size_t floats = V * d + d + 4 * d * d + d + 3 * d * ff + d + 2 * (d / 2);
    if (vocab < 0) floats += V * d;
    floats += extra_floats;
    std::vector<float> w(floats);
    for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i);
    const std::string path = temp_path(vocab < 0 ? "sep.bin" : "shared.bin");
    std::FILE* f = std::fopen(path.c_str(), "wb");
    std::fwrite(h, 4, 7, f);
    std::fwrite(w.data(), 4, w.size(), f);
    std::fclose(f);
    return path;
  };
  auto shared = ModelFile::open(write(3, 0));
  REQUIRE_MESSAGE(shared.ok(), shared.status().to_string());
  CHECK(hparams_of(**shared).tied_embeddings);
  CHECK((*shared)->find_tensor("output.weight") == nullptr);
  // Layout check by hand: embedding 12 floats, attn_norm 4, wq starts at float 16.
  CHECK(reinterpret_cast<const float*>((*shared)->find_tensor("blk.0.attn_q.weight")->data)[0] == 16.0f);
  // ffn_norm follows wq,wk,wv,wo: 16 + 4 + 4·16 = 84... wq..wo are 4×16 floats.
  CHECK(reinterpret_cast<const float*>((*shared)->find_tensor("blk.0.ffn_norm.weight")->data)[0] == 16.0f + 64.0f);
  auto sep = ModelFile::open(write(-3, 0));
  REQUIRE_MESSAGE(sep.ok(), sep.status().to_string());
  CHECK_FALSE(hparams_of(**sep).tied_embeddings);
  CHECK(hparams_of(**sep).n_vocab == 3);
  const GgufTensorInfo* out = (*sep)->find_tensor("output.weight");
  REQUIRE(out != nullptr);
  // The classifier comes after the final norm and the two 2×1 rope tables.
  const float first = 12 + 4 + 64 + 4 + 96 + 4 + 4;
  CHECK(reinterpret_cast<const float*>(out->data)[0] == first);
  // A wrong size is an error naming both sizes.
  auto bad = ModelFile::open(write(3, 1));
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("bytes") != std::string::npos);
}

TEST_CASE("llama2.c: hostile headers") {
  auto write = [](std::vector<int32_t> h) {
    const std::string path = temp_path("hostile.bin");
    std::FILE* f = std::fopen(path.c_str(), "wb");
    std::fwrite(h.data(), 4, h.size(), f);
    std::fclose(f);
    return path;
  };
  CHECK_FALSE(ModelFile::open(write({64})).ok());
  CHECK_FALSE(ModelFile::open(write({0, 1, 1, 1, 1, 1, 1})).ok());
  CHECK_FALSE(ModelFile::open(write({64, 172, 5, 8, 4, INT32_MIN, 512})).ok());
  CHECK_FALSE(ModelFile::open(write({0x7fffffff, 0x7fffffff, 0x7fffffff, 1, 1, 0x7fffffff, 0x7fffffff})).ok());
  CHECK_FALSE(ModelFile::open(write({64, 172, 5, 8, 3, 512, 512})).ok());  // 8 % 3
  // ak42 with a version other than 2, and truncated.
  std::vector<int32_t> ak(64, 0);
  ak[0] = static_cast<int32_t>(ModelFile::kAk42Magic);
  ak[1] = 1;
  CHECK(ModelFile::open(write(ak)).status().code() == Code::unsupported);
  ak[1] = 2;
  ak[2] = 64; ak[3] = 172; ak[4] = 5; ak[5] = 8; ak[6] = 4; ak[7] = 512; ak[8] = 512;
  CHECK_FALSE(ModelFile::open(write(ak)).ok());
  CHECK_FALSE(ModelFile::open(write({static_cast<int32_t>(ModelFile::kAk42Magic), 2})).ok());
  CHECK(ModelFile::open("/nonexistent/model.bin").status().code() == Code::io_error);
}

TEST_CASE("memory plan: hand-computed sizes for stories260K at a given context") {
  auto path = test::shared_file("models/stories260K/stories260K.gguf");
  if (!path) return;
  auto f = ModelFile::open(*path);
  REQUIRE(f.ok());
  const auto plan = model::plan_memory(**f, hparams_of(**f), 128, DType::F32);
  // Weights: all F32 — the sum of tensor bytes; KV cache: 2 (K,V) × 5 layers ×
  // 128 positions × (4 kv heads × 8 dims) × 4 bytes = 163840.
  size_t weights = 0;
  for (const auto& t : (*f)->tensors()) weights += t.n_bytes;
  CHECK(plan.weight_bytes == weights);
  CHECK(plan.kv_cache_bytes == 163840);
  CHECK(plan.logits_bytes == 512 * 4);
  CHECK(plan.total_bytes() >= plan.weight_bytes + plan.kv_cache_bytes + plan.logits_bytes);
  const auto f16 = model::plan_memory(**f, hparams_of(**f), 128, DType::F16);
  CHECK(f16.kv_cache_bytes == 163840 / 2);
}

TEST_CASE("llama2.c: shared checkpoints truncated or extended are errors, never crashes") {
  for (const char* rel : {"models/stories260K/stories260K.bin", "models/stories260K/stories260K_q8.bin"}) {
    auto path = test::shared_file(rel);
    if (!path) continue;
    std::FILE* in = std::fopen(path->c_str(), "rb");
    REQUIRE(in != nullptr);
    std::vector<char> bytes(1 << 21);
    bytes.resize(std::fread(bytes.data(), 1, bytes.size(), in));
    std::fclose(in);
    const std::string cut = temp_path("cut.bin");
    // Every length through the headers, then a spread over the weights, then one byte extra.
    std::vector<size_t> lengths;
    for (size_t n = 0; n < 300; ++n) lengths.push_back(n);
    for (size_t n = 300; n < bytes.size(); n += 4099) lengths.push_back(n);
    lengths.push_back(bytes.size() - 1);
    for (size_t n : lengths) {
      std::FILE* out = std::fopen(cut.c_str(), "wb");
      std::fwrite(bytes.data(), 1, n, out);
      std::fclose(out);
      auto f = ModelFile::open(cut);
      CHECK_MESSAGE(!f.ok(), rel << " truncated to " << n);
    }
    std::FILE* out = std::fopen(cut.c_str(), "wb");
    std::fwrite(bytes.data(), 1, bytes.size(), out);
    std::fputc(0, out);
    std::fclose(out);
    CHECK_FALSE(ModelFile::open(cut).ok());
    std::filesystem::remove(cut);
  }
}

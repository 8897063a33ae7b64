// Seeded random-weight models of any shape, for tests and benchmarks.
// Weights ~ N(0, 0.02²) (GPT-2's initialisation: activations stay sane
// through many layers), norms 1, biases N(0, 0.02²). The vocabulary is
// copied from another GGUF (every tokenizer.* key) or generated: a byte-level
// SentencePiece vocabulary (<unk> <s> </s>, 256 byte tokens, then "▁" and
// printable characters and letter pairs) so any text tokenizes; with
// `chatml`, its last two tokens are ChatML's control tokens and the file
// carries ChatML's template, so chat code runs on it.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "jielong/core/status.hpp"
#include "jielong/io/gguf.hpp"
#include "jielong/io/gguf_writer.hpp"
#include "jielong/io/quantize.hpp"
#include "jielong/model/hparams.hpp"
#include "jielong/text/chat_template.hpp"

namespace jielong::model {

// The shape of a synthetic model and how its weights are drawn. The tests'
// in-memory models (tests/test_model_fixture.hpp) extend it.
struct SynthSpec {
  Arch arch = Arch::llama;
  size_t n_embd = 256, n_ff = 704, n_layers = 4, n_heads = 8, n_kv_heads = 2, n_vocab = 512, n_ctx = 2048;
  bool tied = false;          // qwen2 models are usually tied
  uint64_t seed = 1;
  const io::QuantMix* mix = nullptr;     // nullptr: f32
  const io::GgufFile* vocab = nullptr;   // copy tokenizer.* from here
  bool chatml = false;                   // generated vocabulary: end with <|im_start|> <|im_end|>
  float rms_norm_eps = 1e-5f, rope_freq_base = 10000.0f;
};

// The hyper-parameters of a synthetic model (not validated: a test may bind
// a shape on purpose that a file could not hold).
inline HParams synth_hparams(const SynthSpec& spec) {
  HParams hp;
  hp.arch = spec.arch;
  hp.n_vocab = spec.n_vocab;
  hp.n_embd = spec.n_embd;
  hp.n_ff = spec.n_ff;
  hp.n_layers = spec.n_layers;
  hp.n_heads = spec.n_heads;
  hp.n_kv_heads = spec.n_kv_heads;
  hp.head_dim = spec.n_heads ? spec.n_embd / spec.n_heads : 0;
  hp.rope_dim = hp.head_dim;
  hp.n_ctx_train = spec.n_ctx;
  hp.rms_norm_eps = spec.rms_norm_eps;
  hp.rope.freq_base = spec.rope_freq_base;
  hp.rope_neox = spec.arch == Arch::qwen2;
  hp.qkv_bias = spec.arch == Arch::qwen2;
  hp.tied_embeddings = spec.tied;
  return hp;
}

namespace detail {
// splitmix64 → two uniforms → Box-Muller: a normal stream fixed by the seed.
struct NormalStream {
  uint64_t state;
  float spare = 0;
  bool has_spare = false;
  uint64_t next() noexcept {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float operator()() noexcept {
    if (has_spare) {
      has_spare = false;
      return spare;
    }
    const double u1 = (static_cast<double>(next() >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
    const double u2 = static_cast<double>(next() >> 11) * 0x1.0p-53;
    const double r = std::sqrt(-2.0 * std::log(u1)), a = 6.283185307179586 * u2;
    spare = static_cast<float>(r * std::sin(a));
    has_spare = true;
    return static_cast<float>(r * std::cos(a));
  }
};

inline void add_generated_vocab(io::GgufWriter& w, size_t n_vocab, bool chatml) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};  // unknown, control, control
  static const char* hex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">");
    types.push_back(6);  // byte
  }
  std::vector<std::string> more = {"\xe2\x96\x81"};  // "▁", SentencePiece's space
  for (char c = 33; c < 127; ++c) more.emplace_back(1, c);
  for (char a = 'a'; a <= 'z'; ++a) more.push_back("\xe2\x96\x81" + std::string(1, a));
  for (char a = 'a'; a <= 'z'; ++a)
    for (char b = 'a'; b <= 'z'; ++b) more.push_back(std::string(1, a) + b);
  for (size_t i = 0; tokens.size() < n_vocab; ++i) {
    tokens.push_back(i < more.size() ? more[i] : "<extra_" + std::to_string(i) + ">");
    types.push_back(i < more.size() ? 1 : 4);  // normal, or user-defined filler
  }
  tokens.resize(n_vocab);
  types.resize(n_vocab);
  if (chatml) {  // in place of the last two: the ids of everything else stay as without
    tokens[n_vocab - 2] = "<|im_start|>";
    tokens[n_vocab - 1] = "<|im_end|>";
    types[n_vocab - 2] = types[n_vocab - 1] = 3;  // control
  }
  std::vector<float> scores(n_vocab);
  for (size_t i = 0; i < n_vocab; ++i) scores[i] = i < 259 ? 0.0f : -static_cast<float>(i - 259);
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_f32_array("tokenizer.ggml.scores", scores);
  w.add_i32_array("tokenizer.ggml.token_type", types);
  w.add_u32("tokenizer.ggml.unknown_token_id", 0);
  w.add_u32("tokenizer.ggml.bos_token_id", 1);
  w.add_u32("tokenizer.ggml.eos_token_id", 2);
  w.add_bool("tokenizer.ggml.add_bos_token", true);
  w.add_bool("tokenizer.ggml.add_eos_token", false);
  if (chatml) w.add_string("tokenizer.chat_template", std::string(text::kChatmlJinja));
}
}  // namespace detail

// The metadata of a llama-family model file: architecture, name, every
// hyper-parameter key the loader (hparams_from_gguf) and llama.cpp read, and
// the vocabulary, copied from `vocab` (every tokenizer.* key) or generated.
inline void add_model_metadata(io::GgufWriter& w, const HParams& hp, const std::string& name,
                               const io::GgufFile* vocab, bool chatml = false) {
  const std::string a = arch_name(hp.arch);
  w.add_string("general.architecture", a);
  w.add_string("general.name", name);
  w.add_u32(a + ".context_length", static_cast<uint32_t>(hp.n_ctx_train));
  w.add_u32(a + ".embedding_length", static_cast<uint32_t>(hp.n_embd));
  w.add_u32(a + ".block_count", static_cast<uint32_t>(hp.n_layers));
  w.add_u32(a + ".feed_forward_length", static_cast<uint32_t>(hp.n_ff));
  w.add_u32(a + ".rope.dimension_count", static_cast<uint32_t>(hp.rope_dim));
  w.add_u32(a + ".attention.head_count", static_cast<uint32_t>(hp.n_heads));
  w.add_u32(a + ".attention.head_count_kv", static_cast<uint32_t>(hp.n_kv_heads));
  w.add_f32(a + ".attention.layer_norm_rms_epsilon", hp.rms_norm_eps);
  w.add_f32(a + ".rope.freq_base", hp.rope.freq_base);
  if (vocab) {
    for (const io::GgufKv& kv : vocab->metadata())
      if (kv.key.substr(0, 10) == "tokenizer.") w.add_value(kv.key, kv.value);
  } else {
    detail::add_generated_vocab(w, hp.n_vocab, chatml);
  }
}

inline Status write_synth_model(const SynthSpec& s, const std::string& out_path) {
  SynthSpec spec = s;
  if (spec.vocab) {
    JIELONG_ASSIGN_OR_RETURN(io::GgufArray toks, spec.vocab->get_array("tokenizer.ggml.tokens"));
    spec.n_vocab = toks.size();
  } else if (spec.n_vocab < 259 + (spec.chatml ? 2 : 0)) {
    return make_error(Code::invalid_argument, "synth: a generated vocabulary needs at least 259 tokens (3 special + "
                                              "256 bytes), and 2 more for ChatML, not " + std::to_string(spec.n_vocab));
  }
  if (spec.vocab && spec.chatml)
    return make_error(Code::invalid_argument, "synth: ChatML tokens are for a generated vocabulary, not a copied one");
  const HParams hp = synth_hparams(spec);
  JIELONG_TRY(hp.validate("synth"));
  if (hp.n_embd % hp.n_heads != 0)
    return make_error(Code::invalid_argument, "synth: the width " + std::to_string(hp.n_embd) + " is not a multiple of the head count " + std::to_string(hp.n_heads));

  io::GgufWriter w;
  add_model_metadata(w, hp, "synthetic-" + std::string(arch_name(spec.arch)), spec.vocab, spec.chatml);

  // Every tensor's values, in the order llama.cpp's converters write them.
  std::vector<std::vector<float>> store;
  store.reserve(4 + hp.n_layers * 12);
  detail::NormalStream rng{spec.seed};
  struct Pending {
    std::string name;
    size_t cols, rows;
  };
  std::vector<Pending> pending;
  auto tensor = [&](std::string name, size_t cols, size_t rows, bool ones) {
    auto& v = store.emplace_back(cols * rows);
    for (float& x : v) x = ones ? 1.0f : 0.02f * rng();
    pending.push_back({std::move(name), cols, rows});
  };
  const size_t d = hp.n_embd, q = hp.q_dim(), kv = hp.kv_dim(), ff = hp.n_ff;
  tensor("token_embd.weight", d, hp.n_vocab, false);
  tensor("output_norm.weight", d, 1, true);
  if (!spec.tied) tensor("output.weight", d, hp.n_vocab, false);
  for (size_t l = 0; l < hp.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    tensor(p + "attn_norm.weight", d, 1, true);
    tensor(p + "attn_q.weight", d, q, false);
    tensor(p + "attn_k.weight", d, kv, false);
    tensor(p + "attn_v.weight", d, kv, false);
    if (spec.arch == Arch::qwen2) {
      tensor(p + "attn_q.bias", q, 1, false);
      tensor(p + "attn_k.bias", kv, 1, false);
      tensor(p + "attn_v.bias", kv, 1, false);
    }
    tensor(p + "attn_output.weight", q, d, false);
    tensor(p + "ffn_norm.weight", d, 1, true);
    tensor(p + "ffn_gate.weight", d, ff, false);
    tensor(p + "ffn_down.weight", ff, d, false);
    tensor(p + "ffn_up.weight", d, ff, false);
  }
  for (size_t i = 0; i < pending.size(); ++i) {
    const Pending& t = pending[i];
    const uint64_t two[2] = {t.cols, t.rows};
    JIELONG_TRY(w.add_tensor(t.name, DType::F32, std::span<const uint64_t>(two, t.rows == 1 ? 1 : 2),
                             std::as_bytes(std::span<const float>(store[i]))));
  }
  return io::write_model_file(w, out_path, spec.mix);
}

}  // namespace jielong::model

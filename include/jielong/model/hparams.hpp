// Hyper-parameters of a decoder-only transformer: one struct for every
// supported architecture, filled from GGUF keys (named as llama.cpp writes
// them: "<arch>.embedding_length", ...) or from a llama2.c header, then
// validated. The one source of truth for the model: Model reads the rotary
// layout and width and whether there are QKV biases from here. Architectures: llama (Llama 1/2/3, Mistral, TinyLlama, SmolLM;
// GQA; tied or separate classifier; linear or llama3 rope scaling) and qwen2
// (QKV bias, NEOX rope, usually tied).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "jielong/core/status.hpp"
#include "jielong/io/gguf.hpp"
#include "jielong/io/llama2c.hpp"
#include "jielong/io/model_file.hpp"
#include "jielong/model/rope.hpp"

namespace jielong::model {

enum class Arch { llama, qwen2 };

inline const char* arch_name(Arch a) noexcept { return a == Arch::qwen2 ? "qwen2" : "llama"; }

struct HParams {
  Arch arch = Arch::llama;
  std::string name;          // general.name, informational
  size_t n_vocab = 0;
  size_t n_embd = 0;         // model width
  size_t n_ff = 0;           // feed-forward width
  size_t n_layers = 0;
  size_t n_heads = 0;
  size_t n_kv_heads = 0;     // < n_heads: grouped-query attention
  size_t head_dim = 0;
  size_t n_ctx_train = 0;    // context the model was trained with
  size_t rope_dim = 0;       // rotated dims per head (== head_dim for llama/qwen2)
  float rms_norm_eps = 1e-5f;
  RopeParams rope{};
  bool rope_neox = false;    // rotate (i, i + rot_dim/2) pairs instead of (2i, 2i+1)
  bool qkv_bias = false;     // attn_{q,k,v}.bias: qwen2's, or a llama file's that has them
  bool tied_embeddings = true;  // no output.weight: the classifier is token_embd

  size_t q_dim() const noexcept { return n_heads * head_dim; }
  size_t kv_dim() const noexcept { return n_kv_heads * head_dim; }

  Status validate(const std::string& where) const {
    auto bad = [&](const std::string& what) { return make_error(Code::format_error, where + ": " + what); };
    if (n_vocab == 0 || n_embd == 0 || n_ff == 0 || n_layers == 0 || n_heads == 0 || n_kv_heads == 0)
      return bad("vocabulary, width, feed-forward width, layers and heads must all be > 0 (got vocab " +
                 std::to_string(n_vocab) + ", embd " + std::to_string(n_embd) + ", ff " + std::to_string(n_ff) +
                 ", layers " + std::to_string(n_layers) + ", heads " + std::to_string(n_heads) + ", kv heads " +
                 std::to_string(n_kv_heads) + ")");
    const size_t limit = size_t{1} << 24;
    if (n_vocab > limit || n_embd > limit || n_ff > limit || n_layers > 4096 || n_heads > 4096 ||
        n_kv_heads > 4096 || head_dim > 65536 || n_ctx_train > (size_t{1} << 26))
      return bad("a dimension is implausibly large");
    if (n_heads % n_kv_heads != 0)
      return bad("head count " + std::to_string(n_heads) + " is not a multiple of the kv head count " +
                 std::to_string(n_kv_heads));
    if (head_dim == 0 || head_dim % 2 != 0)
      return bad("head dimension " + std::to_string(head_dim) + " must be even and > 0");
    if (rope_dim == 0 || rope_dim % 2 != 0 || rope_dim > head_dim)
      return bad("rope dimension " + std::to_string(rope_dim) + " must be even and at most the head dimension " +
                 std::to_string(head_dim));
    if (n_ctx_train == 0) return bad("context length must be > 0");
    if (!(rms_norm_eps > 0.0f) || !(rms_norm_eps < 1.0f)) return bad("rms norm epsilon must be in (0, 1)");
    if (!(rope.freq_base > 0.0f)) return bad("rope frequency base must be > 0");
    if (rope.scaling != RopeScaling::none && !(rope.factor > 0.0f)) return bad("rope scaling factor must be > 0");
    return Status::ok();
  }
};

inline RopeParams rope_params(const HParams& hp) noexcept { return hp.rope; }

// Fills from GGUF metadata and the shapes of token_embd/output (vocabulary
// size, tied classifier). Missing optional keys take llama.cpp's defaults.
inline Result<HParams> hparams_from_gguf(const io::GgufFile& f) {
  HParams hp;
  JIELONG_ASSIGN_OR_RETURN(std::string_view a, f.get_string("general.architecture"));
  const std::string arch(a);
  if (arch == "llama") hp.arch = Arch::llama;
  else if (arch == "qwen2") hp.arch = Arch::qwen2;
  else
    return make_error(Code::unsupported, f.name() + ": architecture '" + arch +
                                             "' is not supported (expected llama or qwen2)");
  if (auto n = f.get_string("general.name"); n.ok()) hp.name = std::string(*n);
  const std::string p = arch + ".";

  auto req = [&](const char* key, size_t& out) -> Status {
    JIELONG_ASSIGN_OR_RETURN(uint32_t v, f.get_u32(p + key));
    out = v;
    return Status::ok();
  };
  auto opt = [&](const char* key, size_t& out, size_t fallback) -> Status {
    if (!f.has(p + key)) {
      out = fallback;
      return Status::ok();
    }
    return req(key, out);
  };
  auto opt_f = [&](const char* key, float& out, float fallback) -> Status {
    if (!f.has(p + key)) {
      out = fallback;
      return Status::ok();
    }
    JIELONG_ASSIGN_OR_RETURN(out, f.get_f32(p + key));
    return Status::ok();
  };
  JIELONG_TRY(req("embedding_length", hp.n_embd));
  JIELONG_TRY(req("feed_forward_length", hp.n_ff));
  JIELONG_TRY(req("block_count", hp.n_layers));
  JIELONG_TRY(req("attention.head_count", hp.n_heads));
  JIELONG_TRY(opt("attention.head_count_kv", hp.n_kv_heads, hp.n_heads));
  JIELONG_TRY(req("context_length", hp.n_ctx_train));
  JIELONG_TRY(opt_f("attention.layer_norm_rms_epsilon", hp.rms_norm_eps, 1e-5f));
  JIELONG_TRY(opt_f("rope.freq_base", hp.rope.freq_base, 10000.0f));
  if (hp.n_heads == 0) return make_error(Code::format_error, f.name() + ": key '" + p + "attention.head_count' is 0");
  JIELONG_TRY(opt("attention.key_length", hp.head_dim, hp.n_embd / hp.n_heads));
  JIELONG_TRY(opt("rope.dimension_count", hp.rope_dim, hp.head_dim));

  // Rope scaling: "rope.scaling.type" (none|linear|llama3|yarn|...), or the
  // older "rope.scale_linear" factor.
  if (f.has(p + "rope.scaling.type")) {
    JIELONG_ASSIGN_OR_RETURN(std::string_view type, f.get_string(p + "rope.scaling.type"));
    if (type == "linear") hp.rope.scaling = RopeScaling::linear;
    else if (type == "llama3") hp.rope.scaling = RopeScaling::llama3;
    else if (type != "none")
      return make_error(Code::unsupported, f.name() + ": rope scaling '" + std::string(type) + "' in key '" + p +
                                               "rope.scaling.type' (expected none, linear or llama3)");
    JIELONG_TRY(opt_f("rope.scaling.factor", hp.rope.factor, 1.0f));
    size_t orig = 0;
    JIELONG_TRY(opt("rope.scaling.original_context_length", orig, 8192));
    hp.rope.original_context = static_cast<float>(orig);
  } else if (f.has(p + "rope.scale_linear")) {
    JIELONG_ASSIGN_OR_RETURN(hp.rope.factor, f.get_f32(p + "rope.scale_linear"));
    if (hp.rope.factor != 1.0f) hp.rope.scaling = RopeScaling::linear;
  }
  if (hp.rope.scaling == RopeScaling::none) hp.rope.factor = 1.0f;

  hp.rope_neox = hp.arch == Arch::qwen2;
  hp.qkv_bias = hp.arch == Arch::qwen2 || f.find_tensor("blk.0.attn_q.bias") != nullptr;
  hp.tied_embeddings = f.find_tensor("output.weight") == nullptr;

  if (const io::GgufTensorInfo* e = f.find_tensor("token_embd.weight")) {
    if (e->n_dims != 2)
      return make_error(Code::format_error, f.name() + ": tensor 'token_embd.weight' has rank " +
                                                std::to_string(e->n_dims) + " (expected 2)");
    if (e->ne[0] != hp.n_embd)
      return make_error(Code::format_error, f.name() + ": tensor 'token_embd.weight' rows have " +
                                                std::to_string(e->ne[0]) + " elements (expected " + p +
                                                "embedding_length = " + std::to_string(hp.n_embd) + ")");
    hp.n_vocab = static_cast<size_t>(e->ne[1]);
  } else if (auto toks = f.get_array("tokenizer.ggml.tokens"); toks.ok()) {
    hp.n_vocab = toks->size();
  } else if (f.has(p + "vocab_size")) {
    JIELONG_TRY(req("vocab_size", hp.n_vocab));
  }
  JIELONG_TRY(hp.validate(f.name()));
  return hp;
}

// From a llama2.c header (io/llama2c.hpp): always llama, run.c's constants.
inline Result<HParams> hparams_from_llama2c(const io::Llama2cHeader& c, const std::string& where) {
  HParams hp;
  hp.arch = Arch::llama;
  hp.n_embd = c.dim;
  hp.n_ff = c.hidden_dim;
  hp.n_layers = c.n_layers;
  hp.n_heads = c.n_heads;
  hp.n_kv_heads = c.n_kv_heads;
  hp.n_vocab = c.vocab_size;
  hp.n_ctx_train = c.seq_len;
  hp.head_dim = c.head_dim();
  hp.rope_dim = hp.head_dim;
  hp.rms_norm_eps = 1e-5f;  // run.c's constant
  hp.rope.freq_base = 10000.0f;
  hp.tied_embeddings = c.shared_classifier;
  JIELONG_TRY(hp.validate(where));
  return hp;
}

// The hyper-parameters of a model file of either format.
inline Result<HParams> hparams_from_file(const io::ModelFile& f) {
  if (const io::GgufFile* g = f.gguf()) return hparams_from_gguf(*g);
  return hparams_from_llama2c(*f.llama2c(), f.path());
}

}  // namespace jielong::model

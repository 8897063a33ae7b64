// The trainable parameters of a llama-family model as the engine runs it
// (model/model.hpp binds the same tensors): one contiguous block of floats,
// and a gradient block of the same layout (llm.c's arrangement), so that the
// optimizer, gradient clipping and checkpoints each walk one array.
//
// Shapes follow the engine's weights, row-major, GGUF names:
//   token_embd [n_vocab][n_embd]           output_norm [n_embd]
//   output     [n_vocab][n_embd]  (absent when tied: the classifier is token_embd)
//   per layer: attn_norm [n_embd], attn_q [q_dim][n_embd], attn_k/attn_v [kv_dim][n_embd],
//              attn_q/k/v.bias [q_dim]/[kv_dim] (qwen2), attn_output [n_embd][q_dim],
//              ffn_norm [n_embd], ffn_gate/ffn_up [n_ff][n_embd], ffn_down [n_embd][n_ff]
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "jielong/core/status.hpp"
#include "jielong/model/hparams.hpp"

namespace jielong::train {

// One tensor of the block: its GGUF name, shape and place.
struct ParamTensor {
  std::string name;
  size_t rows, cols;   // a vector is 1 × cols
  size_t offset;       // floats from the start of the block
  bool decay;          // weight decay applies: matrices, not norms, biases or embeddings
  bool embedding;      // token_embd (decayed only when asked, as GPT-2's recipe leaves it)
  size_t size() const noexcept { return rows * cols; }
};

// Where one layer's tensors start; P is size_t (offsets) or float* (a view).
template <class P>
struct LayerParams {
  P attn_norm{}, wq{}, wk{}, wv{}, bq{}, bk{}, bv{}, wo{}, ffn_norm{}, w_gate{}, w_up{}, w_down{};
};
template <class P>
struct ModelParams {
  P token_embd{}, output_norm{}, output{};  // output == token_embd when tied
  std::vector<LayerParams<P>> layers;
};

// The layout of the block for a model's hyper-parameters.
class ParamLayout {
 public:
  static Result<ParamLayout> create(const model::HParams& hp) {
    JIELONG_TRY(hp.validate("train"));
    if (hp.head_dim * hp.n_heads != hp.n_embd)  // the GGUF files written here carry no separate head size
      return make_error(Code::invalid_argument, "train: heads × head dimension must equal the width " +
                                                    std::to_string(hp.n_embd));
    if (hp.rope_dim != hp.head_dim)
      return make_error(Code::invalid_argument, "train: the rope dimension must equal the head dimension (" +
                                                    std::to_string(hp.head_dim) + "), not " +
                                                    std::to_string(hp.rope_dim));
    ParamLayout L;
    L.hp_ = hp;
    const size_t d = hp.n_embd, q = hp.q_dim(), kv = hp.kv_dim(), ff = hp.n_ff;
    auto add = [&](std::string name, size_t rows, size_t cols, bool decay, bool embedding = false) {
      L.tensors_.push_back({std::move(name), rows, cols, L.total_, decay, embedding});
      L.total_ += rows * cols;
      return L.tensors_.back().offset;
    };
    L.offsets_.token_embd = add("token_embd.weight", hp.n_vocab, d, false, true);
    L.offsets_.output_norm = add("output_norm.weight", 1, d, false);
    L.offsets_.output = hp.tied_embeddings ? L.offsets_.token_embd : add("output.weight", hp.n_vocab, d, true);
    const bool bias = hp.arch == model::Arch::qwen2;
    for (size_t l = 0; l < hp.n_layers; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      LayerParams<size_t> o;
      o.attn_norm = add(p + "attn_norm.weight", 1, d, false);
      o.wq = add(p + "attn_q.weight", q, d, true);
      o.wk = add(p + "attn_k.weight", kv, d, true);
      o.wv = add(p + "attn_v.weight", kv, d, true);
      if (bias) {
        o.bq = add(p + "attn_q.bias", 1, q, false);
        o.bk = add(p + "attn_k.bias", 1, kv, false);
        o.bv = add(p + "attn_v.bias", 1, kv, false);
      }
      o.wo = add(p + "attn_output.weight", d, q, true);
      o.ffn_norm = add(p + "ffn_norm.weight", 1, d, false);
      o.w_gate = add(p + "ffn_gate.weight", ff, d, true);
      o.w_up = add(p + "ffn_up.weight", ff, d, true);
      o.w_down = add(p + "ffn_down.weight", d, ff, true);
      L.offsets_.layers.push_back(o);
    }
    L.has_bias_ = bias;
    return L;
  }

  const model::HParams& hparams() const noexcept { return hp_; }
  const std::vector<ParamTensor>& tensors() const noexcept { return tensors_; }
  size_t size() const noexcept { return total_; }  // floats in the block
  bool has_bias() const noexcept { return has_bias_; }

  // Pointers into a block of size() values (parameters or gradients).
  template <class T>
  ModelParams<T*> view(T* base) const {
    ModelParams<T*> v;
    v.token_embd = base + offsets_.token_embd;
    v.output_norm = base + offsets_.output_norm;
    v.output = base + offsets_.output;
    for (const LayerParams<size_t>& o : offsets_.layers) {
      LayerParams<T*> p;
      p.attn_norm = base + o.attn_norm;
      p.wq = base + o.wq;
      p.wk = base + o.wk;
      p.wv = base + o.wv;
      if (has_bias_) {
        p.bq = base + o.bq;
        p.bk = base + o.bk;
        p.bv = base + o.bv;
      }
      p.wo = base + o.wo;
      p.ffn_norm = base + o.ffn_norm;
      p.w_gate = base + o.w_gate;
      p.w_up = base + o.w_up;
      p.w_down = base + o.w_down;
      v.layers.push_back(p);
    }
    return v;
  }

 private:
  model::HParams hp_;
  std::vector<ParamTensor> tensors_;
  ModelParams<size_t> offsets_;
  size_t total_ = 0;
  bool has_bias_ = false;
};

// GPT-2's initialisation (as model/synth.hpp makes random models): matrices and
// embeddings ~ N(0, 0.02²), the residual projections (attn_output, ffn_down)
// scaled by 1/√(2·n_layers) so the residual stream's variance does not grow
// with depth, norms 1, biases 0. `normal` yields N(0, 1) samples.
template <class Normal>
void init_params(const ParamLayout& layout, float* params, Normal&& normal) {
  const float residual_scale = 0.02f / std::sqrt(2.0f * static_cast<float>(layout.hparams().n_layers));
  for (const ParamTensor& t : layout.tensors()) {
    float* p = params + t.offset;
    const bool norm = t.name.find("_norm.") != std::string::npos, bias = t.name.find(".bias") != std::string::npos;
    const bool residual = t.name.find("attn_output") != std::string::npos || t.name.find("ffn_down") != std::string::npos;
    for (size_t i = 0; i < t.size(); ++i)
      p[i] = norm ? 1.0f : bias ? 0.0f : (residual ? residual_scale : 0.02f) * normal();
  }
}

}  // namespace jielong::train

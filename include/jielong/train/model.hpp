// A llama-family model being trained: parameters, gradients and the saved
// activations of one batch of B sequences of T tokens, with the whole
// forward pass (to the mean cross-entropy over unmasked tokens) and its
// backward pass. The forward computes what the engine's Transformer
// computes (model/transformer.hpp), op for op.
//
//   auto m = train::Model<>::create(hp, B, T).value();
//   train::init_params(m.layout(), m.params(), normal);
//   m.zero_grad();
//   double loss = m.forward(tokens, targets, mask, pool);   // tokens, targets, mask: [B][T]
//   m.backward(pool);                                       // grads += dloss/dparams
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "jielong/core/executor.hpp"
#include "jielong/core/status.hpp"
#include "jielong/kernels/kernels.hpp"
#include "jielong/model/hparams.hpp"
#include "jielong/model/rope.hpp"
#include "jielong/train/ops.hpp"
#include "jielong/train/params.hpp"

namespace jielong::train {

template <class T = float, class B = kernels::Best>
class Model {
 public:
  static Result<Model> create(const model::HParams& hp, size_t batch, size_t seq_len) {
    if (batch == 0 || seq_len == 0)
      return make_error(Code::invalid_argument, "train: batch and sequence length must be > 0");
    if (hp.n_ctx_train && seq_len > hp.n_ctx_train)
      return make_error(Code::invalid_argument, "train: sequence length " + std::to_string(seq_len) +
                                                    " exceeds the context " + std::to_string(hp.n_ctx_train));
    Model m;
    JIELONG_ASSIGN_OR_RETURN(m.layout_, ParamLayout::create(hp));
    m.B_ = batch;
    m.T_ = seq_len;
    m.params_.assign(m.layout_.size(), T(0));
    m.grads_.assign(m.layout_.size(), T(0));
    m.allocate();
    // The rotary angles of every position, as the engine computes them.
    const size_t half = hp.head_dim / 2;
    std::vector<float> inv_freq(half);
    model::rope_inv_freq(model::rope_params(hp), hp.head_dim, inv_freq);
    m.cos_.resize(seq_len * half);
    m.sin_.resize(seq_len * half);
    for (size_t t = 0; t < seq_len; ++t)
      kernels::rope_angles(static_cast<float>(t), inv_freq.data(), hp.head_dim, m.cos_.data() + t * half,
                           m.sin_.data() + t * half);
    return m;
  }

  const ParamLayout& layout() const noexcept { return layout_; }
  const model::HParams& hparams() const noexcept { return layout_.hparams(); }
  T* params() noexcept { return params_.data(); }
  const T* params() const noexcept { return params_.data(); }
  T* grads() noexcept { return grads_.data(); }
  const T* grads() const noexcept { return grads_.data(); }
  size_t batch() const noexcept { return B_; }
  size_t seq_len() const noexcept { return T_; }
  void zero_grad() noexcept { std::fill(grads_.begin(), grads_.end(), T(0)); }

  // tokens[B][T] (ids < n_vocab). With targets, returns the mean loss over
  // the tokens whose mask is set (mask nullptr: all) and keeps what
  // backward() needs; without, leaves the logits [B·T][n_vocab] in logits().
  double forward(const int32_t* tokens, const int32_t* targets, const uint8_t* mask, Executor& ex) noexcept {
    const model::HParams& hp = hparams();
    const size_t N = B_ * T_, d = hp.n_embd, qd = hp.q_dim(), kvd = hp.kv_dim(), ff = hp.n_ff, V = hp.n_vocab;
    const ModelParams<T*> P = layout_.view(params_.data());
    const kernels::RopeLayout rope = hp.arch == model::Arch::qwen2 ? kernels::RopeLayout::neox : kernels::RopeLayout::normal;
    tokens_.assign(tokens, tokens + N);
    ops::embedding_forward(a_.res[0], tokens, P.token_embd, N, d);
    for (size_t l = 0; l < hp.n_layers; ++l) {
      const LayerParams<T*>& W = P.layers[l];
      Layer& A = a_.layers[l];
      const T* in = a_.res[l];
      // attention block: x_mid = in + Wo·Attention(RoPE(Wq·xn), RoPE(Wk·xn), Wv·xn), xn = RMSNorm(in)
      ops::rmsnorm_forward(A.xn1, A.rstd1, in, W.attn_norm, N, d, hp.rms_norm_eps, ex);
      ops::linear_forward<B>(A.q, A.xn1, W.wq, W.bq, N, d, qd, ex);
      ops::linear_forward<B>(A.k, A.xn1, W.wk, W.bk, N, d, kvd, ex);
      ops::linear_forward<B>(A.v, A.xn1, W.wv, W.bv, N, d, kvd, ex);
      ops::rope_forward(A.q, N, hp.n_heads, hp.head_dim, T_, cos_.data(), sin_.data(), rope);
      ops::rope_forward(A.k, N, hp.n_kv_heads, hp.head_dim, T_, cos_.data(), sin_.data(), rope);
      ops::attention_forward<B>(A.att_out, A.att, A.q, A.k, A.v, attn_shape(), ex);
      ops::linear_forward<B>(A.x_mid, A.att_out, W.wo, static_cast<const T*>(nullptr), N, qd, d, ex);
      add(A.x_mid, in, N * d);
      // feed-forward block: out = x_mid + W_down·(silu(W_gate·xn) ⊙ W_up·xn), xn = RMSNorm(x_mid)
      ops::rmsnorm_forward(A.xn2, A.rstd2, A.x_mid, W.ffn_norm, N, d, hp.rms_norm_eps, ex);
      ops::linear_forward<B>(A.gate, A.xn2, W.w_gate, static_cast<const T*>(nullptr), N, d, ff, ex);
      ops::linear_forward<B>(A.up, A.xn2, W.w_up, static_cast<const T*>(nullptr), N, d, ff, ex);
      ops::swiglu_forward(A.h, A.gate, A.up, N * ff);
      ops::linear_forward<B>(a_.res[l + 1], A.h, W.w_down, static_cast<const T*>(nullptr), N, ff, d, ex);
      add(a_.res[l + 1], A.x_mid, N * d);
    }
    // logits = W_out · RMSNorm(x)
    ops::rmsnorm_forward(a_.xnf, a_.rstdf, a_.res[hp.n_layers], P.output_norm, N, d, hp.rms_norm_eps, ex);
    ops::linear_forward<B>(a_.logits, a_.xnf, P.output, static_cast<const T*>(nullptr), N, d, V, ex);
    if (!targets) return 0.0;
    targets_.assign(targets, targets + N);
    if (mask) mask_.assign(mask, mask + N);
    else mask_.clear();
    return ops::cross_entropy_forward<B>(a_.logits, a_.losses, targets, mask ? mask_.data() : nullptr, N, V, ex);
  }

  // Adds the gradient of the last forward()'s loss to grads(). Call once per
  // forward with targets.
  void backward(Executor& ex) noexcept {
    const model::HParams& hp = hparams();
    const size_t N = B_ * T_, d = hp.n_embd, qd = hp.q_dim(), kvd = hp.kv_dim(), ff = hp.n_ff, V = hp.n_vocab;
    const ModelParams<T*> P = layout_.view(params_.data()), G = layout_.view(grads_.data());
    const kernels::RopeLayout rope = hp.arch == model::Arch::qwen2 ? kernels::RopeLayout::neox : kernels::RopeLayout::normal;
    const uint8_t* mask = mask_.empty() ? nullptr : mask_.data();
    T* const dlogits = a_.logits;  // the probabilities become their gradient
    ops::cross_entropy_backward(dlogits, targets_.data(), mask, N, V, ex);
    ops::linear_backward<B>(g_.dxn, false, G.output, static_cast<T*>(nullptr), dlogits, a_.xnf, P.output, N, d, V, ex);
    std::fill(g_.dres, g_.dres + N * d, T(0));  // d(loss)/d(residual stream), carried down the layers
    ops::rmsnorm_backward(g_.dres, G.output_norm, g_.dxn, a_.res[hp.n_layers], P.output_norm, a_.rstdf, N, d, ex);
    for (size_t l = hp.n_layers; l-- > 0;) {
      const LayerParams<T*>& W = P.layers[l];
      const LayerParams<T*>& dW = G.layers[l];
      Layer& A = a_.layers[l];
      // feed-forward block (dres is d out = d x_mid through the residual)
      ops::linear_backward<B>(g_.dh, false, dW.w_down, static_cast<T*>(nullptr), g_.dres, A.h, W.w_down, N, ff, d, ex);
      ops::swiglu_backward(g_.dgate, g_.dup, g_.dh, A.gate, A.up, N * ff);
      ops::linear_backward<B>(g_.dxn, false, dW.w_gate, static_cast<T*>(nullptr), g_.dgate, A.xn2, W.w_gate, N, d, ff, ex);
      ops::linear_backward<B>(g_.dxn, true, dW.w_up, static_cast<T*>(nullptr), g_.dup, A.xn2, W.w_up, N, d, ff, ex);
      ops::rmsnorm_backward(g_.dres, dW.ffn_norm, g_.dxn, A.x_mid, W.ffn_norm, A.rstd2, N, d, ex);
      // attention block (dres is now d x_mid = d in through the residual)
      ops::linear_backward<B>(g_.datt, false, dW.wo, static_cast<T*>(nullptr), g_.dres, A.att_out, W.wo, N, qd, d, ex);
      ops::attention_backward<B>(g_.dq, g_.dk, g_.dv, g_.datt, A.att, A.q, A.k, A.v, attn_shape(), g_.attn_scratch, ex);
      ops::rope_backward(g_.dq, N, hp.n_heads, hp.head_dim, T_, cos_.data(), sin_.data(), rope);
      ops::rope_backward(g_.dk, N, hp.n_kv_heads, hp.head_dim, T_, cos_.data(), sin_.data(), rope);
      ops::linear_backward<B>(g_.dxn, false, dW.wq, dW.bq, g_.dq, A.xn1, W.wq, N, d, qd, ex);
      ops::linear_backward<B>(g_.dxn, true, dW.wk, dW.bk, g_.dk, A.xn1, W.wk, N, d, kvd, ex);
      ops::linear_backward<B>(g_.dxn, true, dW.wv, dW.bv, g_.dv, A.xn1, W.wv, N, d, kvd, ex);
      ops::rmsnorm_backward(g_.dres, dW.attn_norm, g_.dxn, a_.res[l], W.attn_norm, A.rstd1, N, d, ex);
    }
    ops::embedding_backward(G.token_embd, g_.dres, tokens_.data(), N, d, ex);
  }

  // After forward() without targets: [B·T][n_vocab].
  const T* logits() const noexcept { return a_.logits; }
  // Values held for activations and their gradients (for memory figures).
  size_t activation_floats() const noexcept { return act_.size(); }

  // The same, before creating a model: the saved activations of every layer
  // (the attention weights grow as T²), the logits, and the gradient buffers
  // one layer's backward reuses.
  static size_t activation_count(const model::HParams& hp, size_t batch, size_t seq_len) noexcept {
    const size_t N = batch * seq_len, d = hp.n_embd, qd = hp.q_dim(), kvd = hp.kv_dim(), ff = hp.n_ff;
    const size_t per_layer = 2 * N * d + 2 * N + 2 * N * qd + 2 * N * kvd + batch * hp.n_heads * seq_len * seq_len +
                             N * d + 3 * N * ff;
    const size_t grads = 2 * N * d + 2 * N * qd + 2 * N * kvd + 3 * N * ff + batch * hp.n_kv_heads * seq_len * seq_len;
    return (hp.n_layers + 1) * N * d + hp.n_layers * per_layer + N * d + N + N * hp.n_vocab + N + grads;
  }

 private:
  struct Layer {
    T *xn1, *rstd1, *q, *k, *v, *att, *att_out, *x_mid, *xn2, *rstd2, *gate, *up, *h;
  };
  struct Acts {
    std::vector<T*> res;  // [n_layers + 1][N][d]: the residual stream entering each layer, and leaving the last
    std::vector<Layer> layers;
    T *xnf, *rstdf, *logits, *losses;
  };
  struct Grads {
    T *dres, *dxn, *dq, *dk, *dv, *datt, *dgate, *dup, *dh, *attn_scratch;
  };

  ops::AttnShape attn_shape() const noexcept {
    const model::HParams& hp = hparams();
    return {B_, T_, hp.n_heads, hp.n_kv_heads, hp.head_dim};
  }

  static void add(T* y, const T* x, size_t n) noexcept {
    for (size_t i = 0; i < n; ++i) y[i] += x[i];
  }

  void allocate() {
    const model::HParams& hp = hparams();
    const size_t N = B_ * T_, d = hp.n_embd, qd = hp.q_dim(), kvd = hp.kv_dim(), ff = hp.n_ff, V = hp.n_vocab;
    act_.assign(activation_count(hp, B_, T_), T(0));
    T* p = act_.data();
    auto take = [&](size_t n) {
      T* r = p;
      p += n;
      return r;
    };
    for (size_t l = 0; l <= hp.n_layers; ++l) a_.res.push_back(take(N * d));
    for (size_t l = 0; l < hp.n_layers; ++l) {
      Layer L;
      L.xn1 = take(N * d);      // [N][d]
      L.rstd1 = take(N);        // [N]
      L.q = take(N * qd);       // [N][q_dim], after RoPE
      L.k = take(N * kvd);      // [N][kv_dim], after RoPE
      L.v = take(N * kvd);      // [N][kv_dim]
      L.att = take(B_ * hp.n_heads * T_ * T_);  // [B][n_heads][T][T] softmax weights
      L.att_out = take(N * qd); // [N][q_dim]
      L.x_mid = take(N * d);    // [N][d] residual after attention
      L.xn2 = take(N * d);      // [N][d]
      L.rstd2 = take(N);        // [N]
      L.gate = take(N * ff);    // [N][n_ff] before silu
      L.up = take(N * ff);      // [N][n_ff]
      L.h = take(N * ff);       // [N][n_ff] silu(gate)·up
      a_.layers.push_back(L);
    }
    a_.xnf = take(N * d);       // [N][d]
    a_.rstdf = take(N);         // [N]
    a_.logits = take(N * V);    // [N][n_vocab] logits, then probabilities, then their gradient
    a_.losses = take(N);        // [N]
    g_.dres = take(N * d);
    g_.dxn = take(N * d);
    g_.dq = take(N * qd);
    g_.datt = take(N * qd);
    g_.dk = take(N * kvd);
    g_.dv = take(N * kvd);
    g_.dgate = take(N * ff);
    g_.dup = take(N * ff);
    g_.dh = take(N * ff);
    g_.attn_scratch = take(B_ * hp.n_kv_heads * T_ * T_);  // [B][kv_heads][T][T]
  }

  ParamLayout layout_;
  size_t B_ = 0, T_ = 0;
  std::vector<T> params_, grads_, act_;
  std::vector<float> cos_, sin_;  // [T][head_dim/2]
  std::vector<int32_t> tokens_, targets_;
  std::vector<uint8_t> mask_;
  Acts a_;
  Grads g_;
};

// Memory a training run holds, in bytes: parameters, gradients, AdamW's two
// moments (each the size of the parameters) and activations, all f32.
struct TrainMemory {
  size_t params = 0, grads = 0, moments = 0, activations = 0;
  size_t total() const noexcept { return params + grads + moments + activations; }
};

inline Result<TrainMemory> memory_plan(const model::HParams& hp, size_t batch, size_t seq_len) {
  JIELONG_ASSIGN_OR_RETURN(ParamLayout layout, ParamLayout::create(hp));
  TrainMemory m;
  m.params = m.grads = layout.size() * sizeof(float);
  m.moments = 2 * m.params;
  m.activations = Model<float>::activation_count(hp, batch, seq_len) * sizeof(float);
  return m;
}

}  // namespace jielong::train

// The decoder-only transformer forward pass (LLaMA: Touvron et al. 2023;
// Qwen2 differs only by QKV biases and the rope layout), templated over a
// kernel backend so that a test can run it on Scalar and compare with Best.
//
// One call processes a batch of consecutive tokens at positions
// [pos0, pos0 + n): a single decode step is the batch of one, a prompt is
// processed in batches through the matmul path. Each token attends to the
// cache up to and including its own position (the causal mask), so both
// paths compute every number in the same way.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "jielong/core/arena.hpp"
#include "jielong/core/executor.hpp"
#include "jielong/core/half.hpp"
#include "jielong/core/status.hpp"
#include "jielong/kernels/kernels.hpp"
#include "jielong/kernels/small_heads.hpp"
#include "jielong/model/kv_cache.hpp"
#include "jielong/model/model.hpp"

namespace jielong::model {

// Working memory of one forward pass for batches of up to n_batch tokens,
// carved from one arena at session creation. The attention block's buffers
// (q, k, v, att_out) and the feed-forward block's (hb, hb2) are never live
// at once, so they share one region.
struct Scratch {
  size_t n_batch = 0;
  float* x = nullptr;         // [n_batch][n_embd] the residual stream
  float* xb = nullptr;        // [n_batch][n_embd] normalised input of a block
  float* xb2 = nullptr;       // [n_batch][n_embd] output of a block, before the residual add
  float* q = nullptr;         // [n_batch][n_heads·head_dim]       (attention)
  float* k = nullptr;         // [n_batch][n_kv_heads·head_dim]    (attention)
  float* v = nullptr;         // [n_batch][n_kv_heads·head_dim]    (attention)
  float* att_out = nullptr;   // [n_batch][n_heads·head_dim] attention-weighted values
  float* scores = nullptr;    // [score_slots][n_heads][n_ctx] attention weights, a token per slot
  size_t score_slots = 1;     // tokens whose attention can run at once (prefill)
  float* hb = nullptr;        // [n_batch][n_ff] gate, then silu(gate)·up   (feed-forward, over q..att_out)
  float* hb2 = nullptr;       // [n_batch][n_ff] up                         (feed-forward)
  float* rope = nullptr;      // [n_batch][rope_dim] cos, then sin, of each token's rotary angles
  std::span<std::byte> act;   // quantized activations for matmul
  Arena arena;

  // score_slots: how many tokens' attention may run in parallel in a prefill
  // (the executor's concurrency; more costs memory and buys nothing). At most
  // n_batch and 64: each slot is n_heads·n_ctx floats, which the memory plan
  // counts per batch token.
  static Result<Scratch> create(const Model& m, size_t n_ctx, size_t n_batch, size_t score_slots = 1) {
    const HParams& hp = m.hparams();
    const size_t q_dim = hp.n_heads * hp.head_dim, kv_dim = hp.n_kv_heads * hp.head_dim;
    size_t act_bytes = 0;
    auto need = [&](const WeightView& w) { act_bytes = std::max(act_bytes, kernels::matvec_scratch_bytes(w.type, w.cols, n_batch)); };
    for (const auto& L : m.weights().layers) {
      need(L.wq), need(L.wk), need(L.wv), need(L.wo), need(L.w_gate), need(L.w_up), need(L.w_down);
    }
    need(m.weights().output);
    score_slots = std::clamp<size_t>(score_slots, 1, std::clamp<size_t>(n_batch, 1, 64));
    auto line = [](size_t n) { return align_up(n, kCacheLine / sizeof(float)); };  // whole cache lines of floats
    const size_t q_floats = line(n_batch * q_dim), kv_floats = line(n_batch * kv_dim);
    const size_t ff_floats = line(n_batch * hp.n_ff);
    const size_t attn_floats = 2 * q_floats + 2 * kv_floats, ffn_floats = 2 * ff_floats;
    const size_t rope_floats = line(n_batch * m.rope_dim());
    const size_t floats = n_batch * 3 * hp.n_embd + std::max(attn_floats, ffn_floats) +
                          score_slots * hp.n_heads * n_ctx + rope_floats;
    Scratch s;
    s.n_batch = n_batch;
    s.score_slots = score_slots;
    JIELONG_ASSIGN_OR_RETURN(s.arena, Arena::create(floats * sizeof(float) + act_bytes + 16 * kCacheLine));
    auto take = [&](size_t n) { return s.arena.allocate<float>(n); };
    s.x = take(n_batch * hp.n_embd);
    s.xb = take(n_batch * hp.n_embd);
    s.xb2 = take(n_batch * hp.n_embd);
    float* const shared = take(std::max(attn_floats, ffn_floats));
    s.q = shared;
    s.k = s.q + q_floats;  // each buffer starts on a cache line
    s.v = s.k + kv_floats;
    s.att_out = s.v + kv_floats;
    s.hb = shared;
    s.hb2 = s.hb + ff_floats;
    s.scores = take(score_slots * hp.n_heads * n_ctx);
    s.rope = take(rope_floats);
    std::byte* act = act_bytes ? s.arena.allocate<std::byte>(act_bytes) : nullptr;
    s.act = std::span<std::byte>(act, act ? act_bytes : 0);
    if (!shared || !s.scores || (rope_floats && !s.rope) || (act_bytes && !act))
      return make_error(Code::internal, "scratch arena too small");
    return s;
  }
};

// Which logits a forward pass writes.
enum class LogitsFor { none, last, all };

template <class B>
class Transformer {
 public:
  // `stop`, if given, is looked at before each layer and each token's
  // attention: once it is set the pass returns early and its outputs (logits,
  // this batch's cache rows) are garbage, for the caller to discard.
  Transformer(const Model& m, KvCache& kv, Scratch& s, Executor& ex,
              const std::atomic<bool>* stop = nullptr) noexcept
      : m_(m), hp_(m.hparams()), w_(m.weights()), kv_(kv), s_(s), ex_(ex), stop_(stop) {}

  // tokens[n] at positions [pos0, pos0 + n), n <= s.n_batch, pos0 + n <= n_ctx.
  // logits: [vocab] for LogitsFor::last, [n][vocab] for LogitsFor::all.
  void forward(const int32_t* tokens, size_t n, size_t pos0, float* logits, LogitsFor which) noexcept {
    const size_t d = hp_.n_embd, rd = m_.rope_dim();
    embed(tokens, n, s_.x);
    for (size_t t = 0; t < n; ++t) {  // the rotary angles of each position, for every layer
      float* cos_t = s_.rope + t * rd;  // [rd/2], then sin [rd/2]
      kernels::rope_angles(static_cast<float>(pos0 + t), m_.inv_freq(), rd, cos_t, cos_t + rd / 2);
    }
    for (size_t l = 0; l < w_.layers.size(); ++l) {
      if (stopped()) return;
      const LayerWeights& L = w_.layers[l];
      rmsnorm_rows(s_.xb, s_.x, L.attn_norm, n);             // xb  = RMSNorm(x)
      attention(l, L, n, pos0);                              // xb2 = Attention(xb)
      add_rows(s_.x, s_.xb2, n, d);                          // x  += xb2
      rmsnorm_rows(s_.xb, s_.x, L.ffn_norm, n);              // xb  = RMSNorm(x)
      feed_forward(L, n);                                    // xb2 = SwiGLU-FFN(xb)
      add_rows(s_.x, s_.xb2, n, d);                          // x  += xb2
    }
    classify(n, logits, which);                              // logits = W_out · RMSNorm(x)
  }

 private:
  bool stopped() const noexcept { return stop_ && stop_->load(std::memory_order_relaxed); }

  // x[t] = token_embd[tokens[t]], dequantized from whatever format it has.
  void embed(const int32_t* tokens, size_t n, float* x) noexcept {
    for (size_t t = 0; t < n; ++t)
      kernels::dequantize_view_row<B>(w_.token_embd, static_cast<size_t>(tokens[t]), x + t * hp_.n_embd);
  }

  void rmsnorm_rows(float* out, const float* x, const float* weight, size_t n) noexcept {
    for (size_t t = 0; t < n; ++t)
      kernels::rmsnorm<B>(out + t * hp_.n_embd, x + t * hp_.n_embd, weight, hp_.n_embd, hp_.rms_norm_eps);
  }

  static void add_rows(float* y, const float* x, size_t n, size_t dim) noexcept { kernels::add<B>(y, x, n * dim); }

  static void add_bias(float* y, const float* bias, size_t n, size_t dim) noexcept {
    if (bias == nullptr) return;
    for (size_t t = 0; t < n; ++t) kernels::add<B>(y + t * dim, bias, dim);
  }

  void project(const WeightView& w, const float* x, size_t n, float* y) noexcept {
    kernels::matmul<B>(w, x, n, y, s_.act, ex_);
  }

  // y[i] = x · W[i]ᵀ for matrices that read the same input (Q, K, V; gate,
  // up): the input quantized once, one parallel region for all of them, the
  // same numbers as project() on each.
  template <size_t N>
  void project_same_input(const WeightView* const (&w)[N], const float* x, size_t n, float* const (&y)[N]) noexcept {
    kernels::matmul_same_input<B>(w, x, n, y, s_.act, ex_);
  }

  // Multi-head attention with grouped-query sharing (Ainslie et al. 2023):
  // query head h reads key/value head h / (n_heads / n_kv_heads).
  void attention(size_t l, const LayerWeights& L, size_t n, size_t pos0) noexcept {
    const size_t hd = hp_.head_dim, q_dim = hp_.n_heads * hd, kv_dim = hp_.n_kv_heads * hd;
    // q[n][q_dim] = xb · Wqᵀ,  k[n][kv_dim] = xb · Wkᵀ,  v[n][kv_dim] = xb · Wvᵀ
    project_same_input({&L.wq, &L.wk, &L.wv}, s_.xb, n, {s_.q, s_.k, s_.v});
    add_bias(s_.q, L.bq, n, q_dim);
    add_bias(s_.k, L.bk, n, kv_dim);
    add_bias(s_.v, L.bv, n, kv_dim);
    const size_t rd = m_.rope_dim();
    for (size_t t = 0; t < n; ++t) {
      const float *cos_t = s_.rope + t * rd, *sin_t = cos_t + rd / 2;
      kernels::rope_rotate<B>(s_.q + t * q_dim, hp_.n_heads, hd, rd, cos_t, sin_t, m_.rope_layout());
      kernels::rope_rotate<B>(s_.k + t * kv_dim, hp_.n_kv_heads, hd, rd, cos_t, sin_t, m_.rope_layout());
      kv_.store<B>(l, pos0 + t, s_.k + t * kv_dim, s_.v + t * kv_dim);
    }
    // With an f16 cache, q and the attention weights meet K and V in f16, as
    // ggml computes it: this keeps the logits within ~1e-3 of llama.cpp's.
    if (kv_.type() == KvType::f16) round_to_f16(s_.q, n * q_dim);
    if (n == 1) {
      attend(l, pos0, s_.q, s_.att_out);
    } else {
      // Prefill: the tokens share out the work, each task with its own
      // scores rows, one hand-off per layer instead of one per token. A
      // token's numbers do not depend on the task that computes them.
      const size_t chunks = std::min(n, s_.score_slots), per = (n + chunks - 1) / chunks;
      // q·k and w·v for every head, token and position (at most; causal)
      const size_t work = 2 * n * (pos0 + n) * hp_.n_heads * hp_.head_dim;
      parallel_for_work(ex_, n, per, work, [&](size_t t0, size_t t1) {
        float* scores = s_.scores + (t0 / per) * hp_.n_heads * kv_.n_ctx();  // this task's slot
        for (size_t t = t0; t < t1 && !stopped(); ++t)
          attend_heads(l, pos0 + t, s_.q + t * q_dim, s_.att_out + t * q_dim, 0, hp_.n_heads, scores);
      });
    }
    project(L.wo, s_.att_out, n, s_.xb2);                    // xb2[n][n_embd] = att_out · Woᵀ
  }

  // out[q_dim] = softmax(q·Kᵀ/√head_dim) · V over positions [0, pos], the
  // heads shared out over the executor (one token: a decode step).
  void attend(size_t l, size_t pos, const float* q, float* out) noexcept {
    const size_t hd = hp_.head_dim, n_pos = pos + 1;
    // Heads are independent, so any split gives the same bits; split only
    // when a head has enough work to pay for handing it to another thread.
    // Small heads stay in halves at most: their values are mixed for all
    // heads of a task together.
    const size_t grain = n_pos * hd < 4096 ? hp_.n_heads : hd < 16 ? (hp_.n_heads + 1) / 2 : 1;
    parallel_for(ex_, hp_.n_heads, grain,
                 [&](size_t h0, size_t h1) { attend_heads(l, pos, q, out, h0, h1, s_.scores); });
  }

  // The heads [h0, h1) of one token's attention. scores: [n_heads][n_ctx].
  void attend_heads(size_t l, size_t pos, const float* q, float* out, size_t h0, size_t h1,
                    float* scores_base) noexcept {
    const size_t hd = hp_.head_dim, n_ctx = kv_.n_ctx(), group = hp_.n_heads / hp_.n_kv_heads;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const size_t n_pos = pos + 1;
    const bool f16 = kv_.type() == KvType::f16;
    if (hd < 16) small_head_scores(l, q, h0, h1, group, n_ctx, n_pos, f16, scores_base);
    for (size_t h = h0; h < h1; ++h) {
      const size_t off = (h / group) * hd;                   // this head's kv slice of a cache row
      const float* qh = q + h * hd;
      float* scores = scores_base + h * n_ctx;               // [n_pos]
      // scores[j] = softmax_j(q·K[j] / √head_dim) over every cached position.
      if (hd >= 16)
        for (size_t j = 0; j < n_pos; ++j) scores[j] = head_dot(qh, kv_.k_row(l, j), off, hd, f16);
      kernels::scale<B>(scores, scale, n_pos);
      kernels::softmax<B>(scores, n_pos);
      if (f16) round_to_f16(scores, n_pos);
      if (hd < 16) continue;                                 // small heads mix together below
      float* oh = out + h * hd;                              // [head_dim] = Σ_j scores[j]·V[j]
      std::fill(oh, oh + hd, 0.0f);
      for (size_t j = 0; j < n_pos; ++j) head_axpy(scores[j], kv_.v_row(l, j), off, oh, hd, f16);
    }
    if (hd < 16) small_heads_mix(l, h0, h1, group, n_ctx, n_pos, f16, scores_base, out);
  }

  static void round_to_f16(float* x, size_t n) noexcept { kernels::f16_round_trip<B>(x, n); }

  // One head's slice [off, off + hd) of a cache row, against q or into out.
  static float head_dot(const float* q, const void* row, size_t off, size_t hd, bool f16) noexcept {
    if (f16) return kernels::dot_f16<B>(q, static_cast<const uint16_t*>(row) + off, hd);
    return kernels::dot<B>(q, static_cast<const float*>(row) + off, hd);
  }
  static void head_axpy(float a, const void* row, size_t off, float* out, size_t hd, bool f16) noexcept {
    if (f16) return kernels::axpy_f16<B>(a, static_cast<const uint16_t*>(row) + off, out, hd);
    kernels::axpy<B>(a, static_cast<const float*>(row) + off, out, hd);
  }

  // Heads below one vector (llama2.c's tiny models have head_dim 8): the
  // per-position vector kernels cost more in set-up than in arithmetic, so
  // all positions go to one small-head kernel, which sums in the plain
  // loop's order on every backend.
  kernels::small_heads::Rows head_rows(const void* row0, size_t off, bool f16) const noexcept {
    return {static_cast<const std::byte*>(row0) + off * (f16 ? 2 : 4), kv_.row_bytes(), f16};
  }
  // scores_h[j] = q_h·K[j] for the heads [h0, h1), the query heads of one
  // kv head together (its keys are read once for all of them).
  void small_head_scores(size_t l, const float* q, size_t h0, size_t h1, size_t group, size_t n_ctx, size_t n_pos,
                         bool f16, float* scores_base) const noexcept {
    namespace sh = kernels::small_heads;
    const size_t hd = hp_.head_dim;
    for (size_t c0 = h0; c0 < h1;) {
      const size_t c1 = std::min({h1, (c0 / group + 1) * group, c0 + sh::kMaxHeads});  // one kv head's query heads
      const float* qs[sh::kMaxHeads];
      float* out[sh::kMaxHeads];
      for (size_t h = c0; h < c1; ++h) {
        qs[h - c0] = q + h * hd;
        out[h - c0] = scores_base + h * n_ctx;
      }
      const auto k = head_rows(kv_.k_row(l, 0), (c0 / group) * hd, f16);
      kernels::small_head_scores<B>(qs, c1 - c0, k, hd, n_pos, out);
      c0 = c1;
    }
  }
  // out[h] = Σ_j scores_h[j]·V[j] for the heads [h0, h1), in chunks of
  // kernels::small_heads::kMaxHeads.
  void small_heads_mix(size_t l, size_t h0, size_t h1, size_t group, size_t n_ctx, size_t n_pos, bool f16,
                       const float* scores_base, float* out) const noexcept {
    namespace sh = kernels::small_heads;
    const size_t hd = hp_.head_dim;
    for (size_t c0 = h0; c0 < h1; c0 += sh::kMaxHeads) {
      const size_t nh = std::min(sh::kMaxHeads, h1 - c0);
      const float* w[sh::kMaxHeads];
      sh::Rows v[sh::kMaxHeads];
      float* o[sh::kMaxHeads];
      for (size_t i = 0; i < nh; ++i) {
        const size_t h = c0 + i;
        w[i] = scores_base + h * n_ctx;
        v[i] = head_rows(kv_.v_row(l, 0), (h / group) * hd, f16);
        o[i] = out + h * hd;
      }
      kernels::small_head_mix<B>(w, v, nh, hd, n_pos, o);
    }
  }

  // SwiGLU feed-forward (Shazeer 2020): W_down · (silu(W_gate·x) ⊙ W_up·x).
  void feed_forward(const LayerWeights& L, size_t n) noexcept {
    const size_t ff = hp_.n_ff;
    // hb[n][n_ff] = xb · W_gateᵀ,  hb2[n][n_ff] = xb · W_upᵀ
    project_same_input({&L.w_gate, &L.w_up}, s_.xb, n, {s_.hb, s_.hb2});
    kernels::swiglu<B>(s_.hb, s_.hb, s_.hb2, n * ff);        // hb = silu(hb) ⊙ hb2
    project(L.w_down, s_.hb, n, s_.xb2);                     // xb2[n][n_embd] = hb · W_downᵀ
  }

  void classify(size_t n, float* logits, LogitsFor which) noexcept {
    const size_t d = hp_.n_embd;
    if (which == LogitsFor::none) return;
    if (which == LogitsFor::last) {
      kernels::rmsnorm<B>(s_.xb, s_.x + (n - 1) * d, w_.output_norm, d, hp_.rms_norm_eps);
      project(w_.output, s_.xb, 1, logits);                  // logits[n_vocab]
      return;
    }
    rmsnorm_rows(s_.xb, s_.x, w_.output_norm, n);
    project(w_.output, s_.xb, n, logits);                    // logits[n][n_vocab]
  }

  const Model& m_;
  const HParams& hp_;
  const Weights& w_;
  KvCache& kv_;
  Scratch& s_;
  Executor& ex_;
  const std::atomic<bool>* stop_;
};

}  // namespace jielong::model

// AdamW (Loshchilov and Hutter 2019, "Decoupled weight decay
// regularization") with a linear warmup then cosine decay of the learning
// rate, clipping by the global gradient norm, and gradient accumulation (the
// gradients of several micro-batches summed, then scaled once). The update
// is PyTorch's torch.optim.AdamW step, in float, element for element:
//   p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//   p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε)
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numbers>
#include <vector>

#include "jielong/core/executor.hpp"
#include "jielong/train/params.hpp"

namespace jielong::train {

struct AdamWConfig {
  float lr = 1e-3f;             // peak learning rate
  float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f;
  float weight_decay = 0.1f;    // on matrices; norms and biases never
  bool decay_embeddings = false;
  float grad_clip = 1.0f;       // max global norm; 0 = no clipping
  size_t warmup_steps = 0;      // linear warmup from lr/warmup to lr
  size_t total_steps = 0;       // cosine decay to min_lr_ratio·lr at this step; 0 = constant after warmup
  float min_lr_ratio = 0.1f;
};

// The learning rate of step `step` (0-based).
inline float learning_rate(const AdamWConfig& c, size_t step) noexcept {
  if (step < c.warmup_steps) return c.lr * static_cast<float>(step + 1) / static_cast<float>(c.warmup_steps);
  if (c.total_steps <= c.warmup_steps) return c.lr;
  const double progress =
      std::min(1.0, static_cast<double>(step - c.warmup_steps) / static_cast<double>(c.total_steps - c.warmup_steps));
  const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  return static_cast<float>(c.lr * (c.min_lr_ratio + (1.0 - c.min_lr_ratio) * cosine));
}

namespace detail {
constexpr size_t kNormChunk = 1 << 14;  // fixed chunks: the norm's bits do not depend on threads
}

// √Σ g² over n values, summed in double per fixed chunk, chunks in order.
inline double global_norm(const float* g, size_t n, Executor& ex) {
  const size_t chunks = (n + detail::kNormChunk - 1) / detail::kNormChunk;
  std::vector<double> partial(chunks, 0.0);
  parallel_for(ex, n, detail::kNormChunk, [&](size_t i0, size_t i1) {
    double s = 0;
    for (size_t i = i0; i < i1; ++i) s += static_cast<double>(g[i]) * g[i];
    partial[i0 / detail::kNormChunk] = s;
  });
  double total = 0;
  for (double s : partial) total += s;
  return std::sqrt(total);
}

class AdamW {
 public:
  AdamW(const ParamLayout& layout, const AdamWConfig& config)
      : layout_(&layout), config_(config), m_(layout.size(), 0.0f), v_(layout.size(), 0.0f) {}

  const AdamWConfig& config() const noexcept { return config_; }
  size_t steps_taken() const noexcept { return t_; }
  void set_steps_taken(size_t t) noexcept { t_ = t; }  // with the moments, to resume a run
  std::vector<float>& first_moment() noexcept { return m_; }
  std::vector<float>& second_moment() noexcept { return v_; }

  struct StepInfo {
    float lr;
    double grad_norm;  // of the scaled gradient, before clipping
  };

  // One update from grads (the sum of `accumulated` micro-batches' mean-loss
  // gradients; scaled by 1/accumulated first). grads is left scaled and
  // clipped, as the update used it.
  StepInfo step(float* params, float* grads, size_t accumulated, Executor& ex) {
    const size_t n = layout_->size();
    if (accumulated > 1) {
      const float s = 1.0f / static_cast<float>(accumulated);
      for (size_t i = 0; i < n; ++i) grads[i] *= s;
    }
    const double norm = global_norm(grads, n, ex);
    // torch.nn.utils.clip_grad_norm_: coefficient max_norm / (norm + 1e-6), at most 1.
    if (config_.grad_clip > 0) {
      const float coef = static_cast<float>(static_cast<double>(config_.grad_clip) / (norm + 1e-6));
      if (coef < 1.0f)
        for (size_t i = 0; i < n; ++i) grads[i] *= coef;
    }
    const float lr = learning_rate(config_, t_);
    ++t_;
    const float b1 = config_.beta1, b2 = config_.beta2;
    const float bias1 = 1.0f - std::pow(b1, static_cast<float>(t_));
    const float bias2_sqrt = std::sqrt(1.0f - std::pow(b2, static_cast<float>(t_)));
    const float step_size = lr / bias1;
    for (const ParamTensor& t : layout_->tensors()) {
      const bool decay = t.decay || (t.embedding && config_.decay_embeddings);
      const float keep = decay ? 1.0f - lr * config_.weight_decay : 1.0f;
      parallel_for(ex, t.size(), 1 << 14, [&](size_t i0, size_t i1) {
        for (size_t i = t.offset + i0; i < t.offset + i1; ++i) {
          params[i] *= keep;
          m_[i] = b1 * m_[i] + (1.0f - b1) * grads[i];
          v_[i] = b2 * v_[i] + (1.0f - b2) * grads[i] * grads[i];
          const float denom = std::sqrt(v_[i]) / bias2_sqrt + config_.eps;
          params[i] -= step_size * (m_[i] / denom);
        }
      });
    }
    return {lr, norm};
  }

 private:
  const ParamLayout* layout_;
  AdamWConfig config_;
  std::vector<float> m_, v_;  // same layout as the parameters
  size_t t_ = 0;
};

}  // namespace jielong::train

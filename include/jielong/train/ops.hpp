// The llama block's operations as forward/backward pairs (llm.c's scheme:
// the forward saves what the backward needs, the backward adds into the
// gradients). Every op is a template over the number type: float for
// training, double for the finite-difference tests, which compare the float
// backward with the double one and the double one with the slope of the
// double forward.
//
// Shapes: N = B·T tokens in rows, B sequences of T positions each; D the
// width of a row. Gradients named d* are accumulated (+=) unless a function
// says it writes them. Every reduction over tokens is cut by the shape alone
// (columns or sequences per task, tokens in order), so the bits do not
// depend on the number of threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "jielong/core/executor.hpp"
#include "jielong/kernels/backend.hpp"
#include "jielong/kernels/gemm.hpp"
#include "jielong/kernels/kernels.hpp"
#include "jielong/kernels/scalar.hpp"

namespace jielong::train::ops {

namespace detail {
// Rows per task for row-wise work of `width` values: about 16k values a task.
inline size_t row_grain(size_t width) noexcept { return std::max<size_t>(1, 16384 / std::max<size_t>(width, 1)); }
// Column chunks for reductions over rows (each column summed in row order).
constexpr size_t kColumnGrain = 64;
}  // namespace detail

// ---- embedding: out[t] = table[tokens[t]] -----------------------------------
template <class T>
void embedding_forward(T* out, const int32_t* tokens, const T* table, size_t n, size_t d) noexcept {
  for (size_t t = 0; t < n; ++t) std::copy(table + tokens[t] * d, table + (tokens[t] + 1) * d, out + t * d);
}
// dtable[tokens[t]] += dout[t]; columns are shared out, tokens added in order.
template <class T>
void embedding_backward(T* dtable, const T* dout, const int32_t* tokens, size_t n, size_t d, Executor& ex) noexcept {
  parallel_for(ex, d, detail::kColumnGrain * 4, [&](size_t c0, size_t c1) {
    for (size_t t = 0; t < n; ++t)
      for (size_t c = c0; c < c1; ++c) dtable[tokens[t] * d + c] += dout[t * d + c];
  });
}

// ---- RMSNorm (Zhang and Sennrich 2019): y = x · r · w, r = 1/√(mean(x²) + ε) --
// rstd[n] saves r for the backward.
template <class T>
void rmsnorm_forward(T* out, T* rstd, const T* x, const T* w, size_t n, size_t d, float eps, Executor& ex) noexcept {
  parallel_for(ex, n, detail::row_grain(d), [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t) {
      const T* xt = x + t * d;
      double ss = 0;  // in double, as the engine's reference rmsnorm
      for (size_t i = 0; i < d; ++i) ss += static_cast<double>(xt[i]) * xt[i];
      const T r = static_cast<T>(1.0 / std::sqrt(ss / static_cast<double>(d) + eps));
      rstd[t] = r;
      for (size_t i = 0; i < d; ++i) out[t * d + i] = xt[i] * r * w[i];
    }
  });
}
// dx_i += r·w_i·dy_i − x_i·r³/D·Σ_j dy_j·w_j·x_j;  dw_i += Σ_t dy_i·x_i·r.
template <class T>
void rmsnorm_backward(T* dx, T* dw, const T* dout, const T* x, const T* w, const T* rstd, size_t n, size_t d,
                      Executor& ex) noexcept {
  parallel_for(ex, n, detail::row_grain(d), [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t) {
      const T *xt = x + t * d, *dy = dout + t * d;
      const T r = rstd[t];
      T dot = 0;
      for (size_t i = 0; i < d; ++i) dot += dy[i] * w[i] * xt[i];
      const T c = dot * r * r * r / static_cast<T>(d);
      for (size_t i = 0; i < d; ++i) dx[t * d + i] += r * w[i] * dy[i] - c * xt[i];
    }
  });
  parallel_for(ex, d, detail::kColumnGrain, [&](size_t c0, size_t c1) {
    for (size_t t = 0; t < n; ++t)
      for (size_t i = c0; i < c1; ++i) dw[i] += dout[t * d + i] * x[t * d + i] * rstd[t];
  });
}

// ---- linear: y[n][out] = x[n][in] · W[out][in]ᵀ (+ bias) ---------------------
// B picks the GEMM for float; double runs the definition.
template <class B, class T>
void matmul(kernels::Trans ta, kernels::Trans tb, size_t m, size_t n, size_t k, const T* a, size_t lda, const T* b,
            size_t ldb, T* c, size_t ldc, bool accumulate, Executor& ex) noexcept {
  if constexpr (std::is_same_v<T, float>)
    kernels::gemm<B>(ta, tb, m, n, k, a, lda, b, ldb, c, ldc, accumulate, ex);
  else
    kernels::gemm_ref(ta, tb, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
}

template <class B, class T>
void linear_forward(T* y, const T* x, const T* w, const T* bias, size_t n, size_t in, size_t out,
                    Executor& ex) noexcept {
  matmul<B>(kernels::Trans::no, kernels::Trans::yes, n, out, in, x, in, w, in, y, out, false, ex);
  if (bias)
    for (size_t t = 0; t < n; ++t)
      for (size_t j = 0; j < out; ++j) y[t * out + j] += bias[j];
}
// dx (written, or added with accumulate_dx) = dy · W;  dW += dyᵀ · x;  db += Σ_t dy.
template <class B, class T>
void linear_backward(T* dx, bool accumulate_dx, T* dw, T* dbias, const T* dy, const T* x, const T* w, size_t n,
                     size_t in, size_t out, Executor& ex) noexcept {
  if (dx) matmul<B>(kernels::Trans::no, kernels::Trans::no, n, in, out, dy, out, w, in, dx, in, accumulate_dx, ex);
  matmul<B>(kernels::Trans::yes, kernels::Trans::no, out, in, n, dy, out, x, in, dw, in, true, ex);
  if (dbias)
    parallel_for(ex, out, detail::kColumnGrain, [&](size_t c0, size_t c1) {
      for (size_t t = 0; t < n; ++t)
        for (size_t j = c0; j < c1; ++j) dbias[j] += dy[t * out + j];
    });
}

// ---- rotary position embedding ----------------------------------------------
// x[n][n_heads·head_dim], token t at position t % T; cos/sin: [T][head_dim/2]
// (kernels::rope_angles of each position). The backward turns the gradient
// back by the same angle (a rotation's transpose is its inverse).
template <class T>
void rope_forward(T* x, size_t n, size_t n_heads, size_t hd, size_t seq_len, const float* cos, const float* sin,
                  kernels::RopeLayout layout, bool inverse = false) noexcept {
  const size_t half = hd / 2;
  for (size_t t = 0; t < n; ++t) {
    const float *c = cos + (t % seq_len) * half, *s = sin + (t % seq_len) * half;
    for (size_t h = 0; h < n_heads; ++h) {
      T* xh = x + (t * n_heads + h) * hd;
      for (size_t i = 0; i < half; ++i) {
        const size_t i0 = layout == kernels::RopeLayout::normal ? 2 * i : i;
        const size_t i1 = layout == kernels::RopeLayout::normal ? 2 * i + 1 : i + half;
        if constexpr (std::is_same_v<T, float>) {
          kernels::rope_pair(xh[i0], xh[i1], c[i], inverse ? -s[i] : s[i]);  // the engine's bits
        } else {
          const T a = xh[i0], b = xh[i1], sn = inverse ? -s[i] : s[i];
          xh[i0] = a * c[i] - b * sn;
          xh[i1] = a * sn + b * c[i];
        }
      }
    }
  }
}
template <class T>
void rope_backward(T* dx, size_t n, size_t n_heads, size_t hd, size_t seq_len, const float* cos, const float* sin,
                   kernels::RopeLayout layout) noexcept {
  rope_forward(dx, n, n_heads, hd, seq_len, cos, sin, layout, true);
}

// ---- causal self-attention with grouped-query heads -------------------------
// q[N][H·hd], k, v[N][KV·hd] (rows of sequence b at b·T ..), out[N][H·hd],
// att[B][H][T][T] the softmax weights (row t holds positions 0..t).
struct AttnShape {
  size_t batch, seq_len, n_heads, n_kv_heads, head_dim;
  size_t q_dim() const noexcept { return n_heads * head_dim; }
  size_t kv_dim() const noexcept { return n_kv_heads * head_dim; }
  size_t group() const noexcept { return n_heads / n_kv_heads; }
};

// Each (sequence, head) is a few small matrix products (scores = Q·Kᵀ,
// out = P·V, and their transposes backward) run on the calling task, in row
// blocks of kAttnRows so that the causal zeros above the diagonal cost at
// most one block's worth of work per block row.
constexpr size_t kAttnRows = 64;

template <class B, class T>
void attention_forward(T* out, T* att, const T* q, const T* k, const T* v, const AttnShape& s, Executor& ex) noexcept {
  using kernels::Trans;
  const size_t T_ = s.seq_len, hd = s.head_dim, qd = s.q_dim(), kvd = s.kv_dim();
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(hd)));
  parallel_for(ex, s.batch * s.n_heads, 1, [&](size_t i0, size_t i1) {
    SerialExecutor serial;
    for (size_t i = i0; i < i1; ++i) {
      const size_t b = i / s.n_heads, h = i % s.n_heads, kvh = h / s.group();
      const T* Q = q + b * T_ * qd + h * hd;     // [T][hd], row stride q_dim
      const T* K = k + b * T_ * kvd + kvh * hd;  // [T][hd], row stride kv_dim
      const T* V = v + b * T_ * kvd + kvh * hd;
      T* O = out + b * T_ * qd + h * hd;
      T* P = att + i * T_ * T_;                  // [T][T]
      for (size_t r0 = 0; r0 < T_; r0 += kAttnRows) {  // P[r][0..r1) = Q[r]·K[0..r1)ᵀ
        const size_t r1 = std::min(T_, r0 + kAttnRows);
        matmul<B>(Trans::no, Trans::yes, r1 - r0, r1, hd, Q + r0 * qd, qd, K, kvd, P + r0 * T_, T_, false, serial);
      }
      for (size_t t = 0; t < T_; ++t) {  // P[t] = softmax(scale · P[t][0..t]), zeros after t
        T* a = P + t * T_;
        std::fill(a + t + 1, a + T_, T(0));
        if constexpr (std::is_same_v<T, float>) {  // the engine's kernels, as its attention runs them
          kernels::scale<B>(a, scale, t + 1);
          kernels::softmax<B>(a, t + 1);
          continue;
        }
        T max = -INFINITY;
        for (size_t j = 0; j <= t; ++j) {
          a[j] *= scale;
          max = std::max(max, a[j]);
        }
        double sum = 0;
        for (size_t j = 0; j <= t; ++j) {
          a[j] = std::exp(a[j] - max);
          sum += a[j];
        }
        const T inv = static_cast<T>(1.0 / sum);
        for (size_t j = 0; j <= t; ++j) a[j] *= inv;
      }
      for (size_t r0 = 0; r0 < T_; r0 += kAttnRows) {  // O[r] = P[r][0..r1) · V[0..r1)
        const size_t r1 = std::min(T_, r0 + kAttnRows);
        matmul<B>(Trans::no, Trans::no, r1 - r0, hd, r1, P + r0 * T_, T_, V, kvd, O + r0 * qd, qd, false, serial);
      }
    }
  });
}

// dq, dk, dv are written. Each task owns one (sequence, kv head): its keys and
// values gather gradient from the group's query heads in a fixed order.
// scratch: [B·KV][T][T] values.
template <class B, class T>
void attention_backward(T* dq, T* dk, T* dv, const T* dout, const T* att, const T* q, const T* k, const T* v,
                        const AttnShape& s, T* scratch, Executor& ex) noexcept {
  using kernels::Trans;
  const size_t T_ = s.seq_len, hd = s.head_dim, qd = s.q_dim(), kvd = s.kv_dim();
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(hd)));
  parallel_for(ex, s.batch * s.n_kv_heads, 1, [&](size_t i0, size_t i1) {
    SerialExecutor serial;
    for (size_t i = i0; i < i1; ++i) {
      const size_t b = i / s.n_kv_heads, kvh = i % s.n_kv_heads;
      const T* K = k + b * T_ * kvd + kvh * hd;  // [T][hd], row stride kv_dim
      const T* V = v + b * T_ * kvd + kvh * hd;
      T* dK = dk + b * T_ * kvd + kvh * hd;
      T* dV = dv + b * T_ * kvd + kvh * hd;
      T* dS = scratch + i * T_ * T_;             // [T][T]: d(weights), then d(scores)
      for (size_t t = 0; t < T_; ++t) {
        std::fill(dK + t * kvd, dK + t * kvd + hd, T(0));
        std::fill(dV + t * kvd, dV + t * kvd + hd, T(0));
      }
      for (size_t h = kvh * s.group(); h < (kvh + 1) * s.group(); ++h) {
        const T* P = att + (b * s.n_heads + h) * T_ * T_;
        const T* Q = q + b * T_ * qd + h * hd;
        const T* dO = dout + b * T_ * qd + h * hd;
        for (size_t r0 = 0; r0 < T_; r0 += kAttnRows) {  // out = P·V:  dP[r][0..r1) = dO[r]·V[0..r1)ᵀ
          const size_t r1 = std::min(T_, r0 + kAttnRows);
          matmul<B>(Trans::no, Trans::yes, r1 - r0, r1, hd, dO + r0 * qd, qd, V, kvd, dS + r0 * T_, T_, false, serial);
        }
        for (size_t t = 0; t < T_; ++t) {  // softmax: dS = P ⊙ (dP − Σ P·dP) · scale (scores = scale·q·k)
          const T* a = P + t * T_;
          T* d = dS + t * T_;
          T dsum = 0;
          for (size_t j = 0; j <= t; ++j) dsum += a[j] * d[j];
          for (size_t j = 0; j <= t; ++j) d[j] = a[j] * (d[j] - dsum) * scale;
          std::fill(d + t + 1, d + T_, T(0));
        }
        for (size_t r0 = 0; r0 < T_; r0 += kAttnRows) {
          const size_t r1 = std::min(T_, r0 + kAttnRows);
          // dQ[r] = dS[r][0..r1) · K[0..r1)
          matmul<B>(Trans::no, Trans::no, r1 - r0, hd, r1, dS + r0 * T_, T_, K, kvd, dq + b * T_ * qd + h * hd + r0 * qd,
                    qd, false, serial);
          // dK[r] += Σ_{t ≥ r0} dS[t][r]·Q[t],  dV[r] += Σ_{t ≥ r0} P[t][r]·dO[t]  (rows r of this block)
          matmul<B>(Trans::yes, Trans::no, r1 - r0, hd, T_ - r0, dS + r0 * T_ + r0, T_, Q + r0 * qd, qd, dK + r0 * kvd,
                    kvd, true, serial);
          matmul<B>(Trans::yes, Trans::no, r1 - r0, hd, T_ - r0, P + r0 * T_ + r0, T_, dO + r0 * qd, qd, dV + r0 * kvd,
                    kvd, true, serial);
        }
      }
    }
  });
}

// ---- SwiGLU (Shazeer 2020): h = silu(g)·u, silu(g) = g·σ(g) ------------------
template <class T>
void swiglu_forward(T* h, const T* g, const T* u, size_t n) noexcept {
  for (size_t i = 0; i < n; ++i) h[i] = g[i] / (T(1) + std::exp(-g[i])) * u[i];  // the engine's formula
}
// dg = dh·u·σ(g)·(1 + g·(1 − σ(g))),  du = dh·silu(g); both written.
template <class T>
void swiglu_backward(T* dg, T* du, const T* dh, const T* g, const T* u, size_t n) noexcept {
  for (size_t i = 0; i < n; ++i) {
    const T sig = T(1) / (T(1) + std::exp(-g[i]));
    du[i] = dh[i] * g[i] * sig;
    dg[i] = dh[i] * u[i] * sig * (T(1) + g[i] * (T(1) - sig));
  }
}

// ---- cross-entropy over the vocabulary, with a loss mask -------------------
// logits[n][V] become probabilities in place; losses[t] = −log p(target_t)
// (0 where masked out). Returns Σ losses / count of unmasked tokens. Float
// rows go through backend B's softmax: the vocabulary's exponentials are
// most of this op, and a vector exp takes a fraction of libm's time.
template <class B = kernels::Best, class T>
double cross_entropy_forward(T* logits, T* losses, const int32_t* targets, const uint8_t* mask, size_t n, size_t V,
                             Executor& ex) noexcept {
  parallel_for(ex, n, detail::row_grain(V), [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t) {
      T* p = logits + t * V;
      if constexpr (std::is_same_v<T, float>) {
        kernels::softmax<B>(p, V);
      } else {
        const T max = *std::max_element(p, p + V);
        double sum = 0;
        for (size_t j = 0; j < V; ++j) {
          p[j] = std::exp(p[j] - max);
          sum += p[j];
        }
        const T inv = static_cast<T>(1.0 / sum);
        for (size_t j = 0; j < V; ++j) p[j] *= inv;
      }
      losses[t] = (mask && !mask[t]) ? T(0) : static_cast<T>(-std::log(static_cast<double>(p[targets[t]])));
    }
  });
  double total = 0;
  size_t count = 0;
  for (size_t t = 0; t < n; ++t)
    if (!mask || mask[t]) {
      total += losses[t];
      ++count;
    }
  return count ? total / static_cast<double>(count) : 0.0;
}
// The loss is the mean over unmasked tokens: dlogits = (p − onehot) / count,
// 0 on masked rows. Overwrites probs with dlogits.
template <class T>
void cross_entropy_backward(T* probs, const int32_t* targets, const uint8_t* mask, size_t n, size_t V,
                            Executor& ex) noexcept {
  size_t count = 0;
  for (size_t t = 0; t < n; ++t) count += !mask || mask[t];
  const T scale = count ? T(1) / static_cast<T>(count) : T(0);
  parallel_for(ex, n, detail::row_grain(V), [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t) {
      T* p = probs + t * V;
      if (mask && !mask[t]) {
        std::fill(p, p + V, T(0));
        continue;
      }
      for (size_t j = 0; j < V; ++j) p[j] *= scale;
      p[targets[t]] -= scale;
    }
  });
}

}  // namespace jielong::train::ops

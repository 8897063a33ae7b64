// A small transformer with seeded random weights, built in memory, and a
// naive reference forward pass written straight from the equations (double
// accumulation, no cache, recomputing the whole sequence). Tests use it when
// ../shared is absent and to check the engine against the equations.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "jielong/core/dtype.hpp"
#include "jielong/kernels/kernels.hpp"
#include "jielong/model/model.hpp"
#include "jielong/model/synth.hpp"
#include "jielong/run/session.hpp"

namespace jielong::test {

struct SynthTensor {
  DType type;
  uint32_t n_dims;
  uint64_t ne[4];
  const std::byte* data;
  size_t n_bytes;
};

// The library's synthetic-model spec, smaller by default, with the stored
// type of the matrices (the file writer takes a quantization mix instead).
struct SynthSpec : model::SynthSpec {
  DType matrix_type = DType::F32;
  SynthSpec() {
    n_vocab = 64;
    n_embd = 64;
    n_ff = 96;
    n_layers = 2;
    n_heads = 4;
    n_kv_heads = 2;
    n_ctx = 64;
  }
};

// Owns the f32 master weights (for the naive reference) and their stored
// form (for the engine), and answers find_tensor like a model file.
class SynthFile {
 public:
  explicit SynthFile(const SynthSpec& s) : spec_(s) {
    std::mt19937 rng(static_cast<std::mt19937::result_type>(s.seed));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const size_t hd = s.n_embd / s.n_heads, q_dim = s.n_heads * hd, kv_dim = s.n_kv_heads * hd;
    auto add = [&](const std::string& name, size_t cols, size_t rows, float scale, float offset, bool matrix) {
      std::vector<float>& w = master_[name];
      w.resize(cols * rows);
      for (float& x : w) x = offset + scale * normal(rng);
      const DType t = matrix ? s.matrix_type : DType::F32;
      if (t != DType::F32) {
        // Keep the master equal to what the file stores, so the reference
        // sees the same weights as the engine.
        std::vector<std::byte>& b = bytes_[name];
        b.resize(row_bytes(t, cols) * rows);
        for (size_t r = 0; r < rows; ++r) {
          (void)kernels::quantize_row<kernels::Scalar>(t, w.data() + r * cols, b.data() + r * row_bytes(t, cols), cols);
          kernels::dequantize_row<kernels::Scalar>(t, b.data() + r * row_bytes(t, cols), w.data() + r * cols, cols);
        }
      } else {
        bytes_[name].resize(w.size() * 4);
        std::memcpy(bytes_[name].data(), w.data(), w.size() * 4);
      }
      SynthTensor ti{t, rows == 1 && !matrix ? 1u : 2u, {cols, rows, 1, 1}, bytes_[name].data(), bytes_[name].size()};
      tensors_[name] = ti;
    };
    const float ws = 1.0f / std::sqrt(static_cast<float>(s.n_embd));
    add("token_embd.weight", s.n_embd, s.n_vocab, 1.0f, 0.0f, true);
    add("output_norm.weight", s.n_embd, 1, 0.1f, 1.0f, false);
    if (!s.tied) add("output.weight", s.n_embd, s.n_vocab, ws, 0.0f, true);
    for (size_t l = 0; l < s.n_layers; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      add(p + "attn_norm.weight", s.n_embd, 1, 0.1f, 1.0f, false);
      add(p + "attn_q.weight", s.n_embd, q_dim, ws, 0.0f, true);
      add(p + "attn_k.weight", s.n_embd, kv_dim, ws, 0.0f, true);
      add(p + "attn_v.weight", s.n_embd, kv_dim, ws, 0.0f, true);
      if (s.arch == model::Arch::qwen2) {
        add(p + "attn_q.bias", q_dim, 1, 0.1f, 0.0f, false);
        add(p + "attn_k.bias", kv_dim, 1, 0.1f, 0.0f, false);
        add(p + "attn_v.bias", kv_dim, 1, 0.1f, 0.0f, false);
      }
      add(p + "attn_output.weight", q_dim, s.n_embd, ws, 0.0f, true);
      add(p + "ffn_norm.weight", s.n_embd, 1, 0.1f, 1.0f, false);
      add(p + "ffn_gate.weight", s.n_embd, s.n_ff, ws, 0.0f, true);
      add(p + "ffn_up.weight", s.n_embd, s.n_ff, ws, 0.0f, true);
      add(p + "ffn_down.weight", s.n_ff, s.n_embd, 1.0f / std::sqrt(static_cast<float>(s.n_ff)), 0.0f, true);
    }
  }

  const SynthTensor* find_tensor(std::string_view name) const {
    auto it = tensors_.find(std::string(name));
    return it == tensors_.end() ? nullptr : &it->second;
  }
  void remove(const std::string& name) { tensors_.erase(name); }
  SynthTensor* tensor(const std::string& name) { return &tensors_.at(name); }
  const std::vector<float>& master(const std::string& name) const { return master_.at(name); }
  const SynthSpec& spec() const { return spec_; }

  model::HParams hparams() const { return model::synth_hparams(spec_); }

 private:
  SynthSpec spec_;
  std::map<std::string, std::vector<float>> master_;
  std::map<std::string, std::vector<std::byte>> bytes_;
  std::map<std::string, SynthTensor> tensors_;
};

inline std::shared_ptr<const model::Model> bind_synth(std::shared_ptr<const SynthFile> f) {
  const auto hp = f->hparams();
  auto m = model::Model::bind<SynthFile>(f, hp, "synthetic");
  REQUIRE_MESSAGE(m.ok(), m.status().to_string());
  return *m;
}

// Token ids of the synthetic models' tests (vocabulary 64).
inline const std::vector<int32_t> kIds = {1, 17, 42, 5, 63, 0, 9, 9, 30, 2, 11, 50};

// Largest |a[i] - b[i]|.
template <class T>
double max_abs_diff(const std::vector<float>& a, const std::vector<T>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
  return m;
}

// logits[n_tokens][n_vocab] of the whole sequence, from a session on `backend`.
inline std::vector<float> all_logits(std::shared_ptr<const model::Model> m, const std::vector<int32_t>& ids,
                                     run::Backend backend, model::KvType kv = model::KvType::f32,
                                     size_t n_batch = 64) {
  run::SessionOptions so;
  so.n_ctx = 64;
  so.backend = backend;
  so.kv_type = kv;
  so.n_batch = n_batch;
  auto s = run::Session::create(std::move(m), so);
  REQUIRE(s.ok());
  std::vector<float> out(ids.size() * s->n_vocab());
  REQUIRE(s->prefill_all(ids, out).is_ok());
  return out;
}

// logits[n_tokens][n_vocab] of the whole sequence, from the equations.
inline std::vector<double> naive_forward(const SynthFile& f, const std::vector<int32_t>& tokens) {
  const SynthSpec& s = f.spec();
  const size_t n = tokens.size(), d = s.n_embd, hd = d / s.n_heads, kvd = s.n_kv_heads * hd;
  const size_t group = s.n_heads / s.n_kv_heads;
  const bool neox = s.arch == model::Arch::qwen2;
  auto W = [&](const std::string& name) -> const std::vector<float>& { return f.master(name); };
  auto has = [&](const std::string& name) { return f.find_tensor(name) != nullptr; };
  // y[rows] = W[rows][cols] x[cols]
  auto matvec = [](const std::vector<float>& w, const std::vector<double>& x, size_t rows) {
    const size_t cols = x.size();
    std::vector<double> y(rows, 0.0);
    for (size_t r = 0; r < rows; ++r)
      for (size_t c = 0; c < cols; ++c) y[r] += static_cast<double>(w[r * cols + c]) * x[c];
    return y;
  };
  auto rmsnorm = [&](const std::vector<double>& x, const std::vector<float>& w) {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double scale = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + 1e-5);
    std::vector<double> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * scale * w[i];
    return y;
  };
  auto rope = [&](std::vector<double>& v, size_t heads, size_t pos) {
    for (size_t h = 0; h < heads; ++h)
      for (size_t i = 0; i < hd / 2; ++i) {
        const double theta = static_cast<double>(pos) * std::pow(10000.0, -2.0 * static_cast<double>(i) / static_cast<double>(hd));
        const size_t a = h * hd + (neox ? i : 2 * i), b = h * hd + (neox ? i + hd / 2 : 2 * i + 1);
        const double x0 = v[a], x1 = v[b];
        v[a] = x0 * std::cos(theta) - x1 * std::sin(theta);
        v[b] = x0 * std::sin(theta) + x1 * std::cos(theta);
      }
  };
  std::vector<std::vector<double>> x(n, std::vector<double>(d));
  for (size_t t = 0; t < n; ++t)
    for (size_t i = 0; i < d; ++i) x[t][i] = W("token_embd.weight")[static_cast<size_t>(tokens[t]) * d + i];
  for (size_t l = 0; l < s.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    std::vector<std::vector<double>> q(n), k(n), v(n);
    for (size_t t = 0; t < n; ++t) {
      const auto xn = rmsnorm(x[t], W(p + "attn_norm.weight"));
      q[t] = matvec(W(p + "attn_q.weight"), xn, s.n_heads * hd);
      k[t] = matvec(W(p + "attn_k.weight"), xn, kvd);
      v[t] = matvec(W(p + "attn_v.weight"), xn, kvd);
      if (has(p + "attn_q.bias")) {
        for (size_t i = 0; i < q[t].size(); ++i) q[t][i] += W(p + "attn_q.bias")[i];
        for (size_t i = 0; i < kvd; ++i) k[t][i] += W(p + "attn_k.bias")[i], v[t][i] += W(p + "attn_v.bias")[i];
      }
      rope(q[t], s.n_heads, t);
      rope(k[t], s.n_kv_heads, t);
    }
    for (size_t t = 0; t < n; ++t) {
      std::vector<double> att(s.n_heads * hd, 0.0);
      for (size_t h = 0; h < s.n_heads; ++h) {
        const size_t kh = h / group;
        std::vector<double> sc(t + 1);
        double mx = -1e300, sum = 0;
        for (size_t j = 0; j <= t; ++j) {
          double dot = 0;
          for (size_t i = 0; i < hd; ++i) dot += q[t][h * hd + i] * k[j][kh * hd + i];
          sc[j] = dot / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, sc[j]);
        }
        for (double& e : sc) sum += (e = std::exp(e - mx));
        for (size_t j = 0; j <= t; ++j)
          for (size_t i = 0; i < hd; ++i) att[h * hd + i] += sc[j] / sum * v[j][kh * hd + i];
      }
      const auto o = matvec(W(p + "attn_output.weight"), att, d);
      for (size_t i = 0; i < d; ++i) x[t][i] += o[i];
      const auto xn = rmsnorm(x[t], W(p + "ffn_norm.weight"));
      auto g = matvec(W(p + "ffn_gate.weight"), xn, s.n_ff);
      const auto u = matvec(W(p + "ffn_up.weight"), xn, s.n_ff);
      for (size_t i = 0; i < s.n_ff; ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
      const auto down = matvec(W(p + "ffn_down.weight"), g, d);
      for (size_t i = 0; i < d; ++i) x[t][i] += down[i];
    }
  }
  std::vector<double> logits;
  const auto& out = has("output.weight") ? W("output.weight") : W("token_embd.weight");
  for (size_t t = 0; t < n; ++t) {
    const auto y = matvec(out, rmsnorm(x[t], W("output_norm.weight")), s.n_vocab);
    logits.insert(logits.end(), y.begin(), y.end());
  }
  return logits;
}

}  // namespace jielong::test

// The training ops' backward passes against finite differences, in double:
// for a random weighting r of an op's outputs, the analytic gradient of
// L = Σ r·y must match the central difference (L(x+h) − L(x−h))/2h of the
// double forward for every input element. With h = 1e-5 the truncation
// error is ~h²·|L'''| ≈ 1e-10 and the rounding error ~1e-16·|L|/h ≈ 1e-11,
// so 1e-7 relative to the largest gradient is a tight bound that any wrong
// term (a factor, a sign, a missed path) exceeds by orders of magnitude.
// Then the float ops (what training runs, with the blocked GEMM) against
// the double ones on the same inputs, within 1e-4 relative (float rounding
// over sums of up to a few hundred terms).
// Odd sizes throughout; GQA; both rope layouts; a masked loss; the whole
// model with tied and untied classifiers, llama and qwen2 (biases, neox rope).
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include <doctest/doctest.h>

#include "jielong/train/model.hpp"
#include "jielong/train/ops.hpp"

using namespace jielong;
namespace ops = jielong::train::ops;
namespace k = jielong::kernels;

namespace {

using Vec = std::vector<double>;

Vec randv(size_t n, uint32_t seed, double scale = 1.0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd(0.0, scale);
  Vec v(n);
  for (double& x : v) x = nd(rng);
  return v;
}

double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// The largest |analytic − numeric| over every element of every input, as a
// fraction of the largest |analytic|. fwd() returns the outputs; bwd(r)
// returns the gradient of Σ r·y for each input, in the order of `inputs`.
double fd_error(std::vector<Vec*> inputs, const std::function<Vec()>& fwd, const std::function<std::vector<Vec>(const Vec&)>& bwd) {
  const Vec y = fwd();
  const Vec r = randv(y.size(), 99);
  const std::vector<Vec> grads = bwd(r);
  constexpr double h = 1e-5;
  double worst = 0, scale = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Vec& x = *inputs[i];
    for (size_t j = 0; j < x.size(); ++j) {
      const double keep = x[j];
      x[j] = keep + h;
      const double lp = dot(r, fwd());
      x[j] = keep - h;
      const double lm = dot(r, fwd());
      x[j] = keep;
      worst = std::max(worst, std::fabs((lp - lm) / (2 * h) - grads[i][j]));
      scale = std::max(scale, std::fabs(grads[i][j]));
    }
  }
  REQUIRE(scale > 0);
  return worst / scale;
}

constexpr double kFdTol = 1e-7;

}  // namespace

TEST_CASE("rmsnorm backward matches finite differences") {
  SerialExecutor ex;
  const size_t n = 3, d = 7;
  Vec x = randv(n * d, 1), w = randv(d, 2);
  Vec rstd(n);
  auto fwd = [&] {
    Vec y(n * d);
    ops::rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), n, d, 1e-5f, ex);
    return y;
  };
  auto bwd = [&](const Vec& r) {
    fwd();
    Vec dx(n * d, 0.0), dw(d, 0.0);
    ops::rmsnorm_backward(dx.data(), dw.data(), r.data(), x.data(), w.data(), rstd.data(), n, d, ex);
    return std::vector<Vec>{dx, dw};
  };
  CHECK(fd_error({&x, &w}, fwd, bwd) < kFdTol);
}

TEST_CASE("linear backward (with bias) matches finite differences") {
  SerialExecutor ex;
  const size_t n = 5, in = 7, out = 3;
  Vec x = randv(n * in, 3), w = randv(out * in, 4), b = randv(out, 5);
  auto fwd = [&] {
    Vec y(n * out);
    ops::linear_forward<k::Scalar>(y.data(), x.data(), w.data(), b.data(), n, in, out, ex);
    return y;
  };
  auto bwd = [&](const Vec& r) {
    Vec dx(n * in, 0.0), dw(out * in, 0.0), db(out, 0.0);
    ops::linear_backward<k::Scalar>(dx.data(), false, dw.data(), db.data(), r.data(), x.data(), w.data(), n, in, out, ex);
    return std::vector<Vec>{dx, dw, db};
  };
  CHECK(fd_error({&x, &w, &b}, fwd, bwd) < kFdTol);
}

TEST_CASE("rope backward matches finite differences, both layouts") {
  const size_t seq = 3, n = 6, heads = 2, hd = 6;
  std::vector<float> inv_freq(hd / 2), cos(seq * hd / 2), sin(seq * hd / 2);
  model::rope_inv_freq(model::RopeParams{}, hd, inv_freq);
  for (size_t t = 0; t < seq; ++t) k::rope_angles(static_cast<float>(t), inv_freq.data(), hd, &cos[t * hd / 2], &sin[t * hd / 2]);
  for (k::RopeLayout layout : {k::RopeLayout::normal, k::RopeLayout::neox}) {
    Vec x = randv(n * heads * hd, 6);
    auto fwd = [&] {
      Vec y = x;
      ops::rope_forward(y.data(), n, heads, hd, seq, cos.data(), sin.data(), layout);
      return y;
    };
    auto bwd = [&](const Vec& r) {
      Vec dx = r;
      ops::rope_backward(dx.data(), n, heads, hd, seq, cos.data(), sin.data(), layout);
      return std::vector<Vec>{dx};
    };
    CHECK(fd_error({&x}, fwd, bwd) < kFdTol);
  }
}

TEST_CASE("rope forward on floats is the engine's rotation") {
  // The trainer must rotate as model/transformer.hpp does (kernels::rope_rotate).
  const size_t heads = 3, hd = 8;
  std::vector<float> inv_freq(hd / 2), cos(hd / 2), sin(hd / 2);
  model::rope_inv_freq(model::RopeParams{}, hd, inv_freq);
  k::rope_angles(5.0f, inv_freq.data(), hd, cos.data(), sin.data());
  for (k::RopeLayout layout : {k::RopeLayout::normal, k::RopeLayout::neox}) {
    std::vector<float> x(heads * hd);
    for (size_t i = 0; i < x.size(); ++i) x[i] = 0.1f * static_cast<float>(i) - 1.0f;
    std::vector<float> engine = x, trainer(heads * hd * 6, 0.0f);
    std::copy(x.begin(), x.end(), trainer.begin() + 5 * heads * hd);  // token 5 of a 6-long sequence
    std::vector<float> cos6(6 * hd / 2), sin6(6 * hd / 2);
    for (size_t t = 0; t < 6; ++t) k::rope_angles(static_cast<float>(t), inv_freq.data(), hd, &cos6[t * hd / 2], &sin6[t * hd / 2]);
    k::rope_rotate<k::Scalar>(engine.data(), heads, hd, hd, cos.data(), sin.data(), layout);
    ops::rope_forward(trainer.data(), 6, heads, hd, 6, cos6.data(), sin6.data(), layout);
    CHECK(std::equal(engine.begin(), engine.end(), trainer.begin() + 5 * heads * hd));
  }
}

TEST_CASE("causal attention backward (GQA) matches finite differences") {
  SerialExecutor ex;
  // 4 query heads sharing 2 kv heads, head_dim 3; 67 positions cross the
  // 64-row blocks of the attention products.
  for (const ops::AttnShape s : {ops::AttnShape{2, 5, 4, 2, 3}, ops::AttnShape{1, 67, 4, 2, 3}}) {
    CAPTURE(s.seq_len);
    const size_t N = s.batch * s.seq_len;
    Vec q = randv(N * s.q_dim(), 7), kk = randv(N * s.kv_dim(), 8), v = randv(N * s.kv_dim(), 9);
    Vec att(s.batch * s.n_heads * s.seq_len * s.seq_len);
    auto fwd = [&] {
      Vec y(N * s.q_dim());
      ops::attention_forward<k::Scalar>(y.data(), att.data(), q.data(), kk.data(), v.data(), s, ex);
      return y;
    };
    auto bwd = [&](const Vec& r) {
      fwd();
      Vec dq(q.size()), dk(kk.size()), dv(v.size()), scratch(s.batch * s.n_kv_heads * s.seq_len * s.seq_len);
      ops::attention_backward<k::Scalar>(dq.data(), dk.data(), dv.data(), r.data(), att.data(), q.data(), kk.data(),
                                         v.data(), s, scratch.data(), ex);
      return std::vector<Vec>{dq, dk, dv};
    };
    CHECK(fd_error({&q, &kk, &v}, fwd, bwd) < kFdTol);
  }
}

TEST_CASE("swiglu backward matches finite differences") {
  const size_t n = 11;
  Vec g = randv(n, 10, 2.0), u = randv(n, 11);
  auto fwd = [&] {
    Vec h(n);
    ops::swiglu_forward(h.data(), g.data(), u.data(), n);
    return h;
  };
  auto bwd = [&](const Vec& r) {
    Vec dg(n), du(n);
    ops::swiglu_backward(dg.data(), du.data(), r.data(), g.data(), u.data(), n);
    return std::vector<Vec>{dg, du};
  };
  CHECK(fd_error({&g, &u}, fwd, bwd) < kFdTol);
}

TEST_CASE("cross-entropy backward with a loss mask matches finite differences") {
  SerialExecutor ex;
  const size_t n = 4, V = 9;
  Vec logits = randv(n * V, 12, 2.0);
  const std::vector<int32_t> targets = {3, 0, 8, 5};
  const std::vector<uint8_t> mask = {1, 0, 1, 1};
  auto fwd = [&] {
    Vec p = logits, losses(n);
    return Vec{ops::cross_entropy_forward(p.data(), losses.data(), targets.data(), mask.data(), n, V, ex)};
  };
  auto bwd = [&](const Vec& r) {
    Vec p = logits, losses(n);
    ops::cross_entropy_forward(p.data(), losses.data(), targets.data(), mask.data(), n, V, ex);
    ops::cross_entropy_backward(p.data(), targets.data(), mask.data(), n, V, ex);
    for (double& x : p) x *= r[0];
    return std::vector<Vec>{p};
  };
  CHECK(fd_error({&logits}, fwd, bwd) < kFdTol);
  // The loss by hand: the mean of −log softmax at the targets over the three unmasked rows.
  double expect = 0;
  for (size_t t : {size_t{0}, size_t{2}, size_t{3}}) {
    double z = 0;
    for (size_t j = 0; j < V; ++j) z += std::exp(logits[t * V + j]);
    expect += std::log(z) - logits[t * V + targets[t]];
  }
  CHECK(fwd()[0] == doctest::Approx(expect / 3).epsilon(1e-12));
}

TEST_CASE("embedding backward matches finite differences (a token repeated)") {
  SerialExecutor ex;
  const size_t V = 5, d = 3;
  Vec table = randv(V * d, 13);
  const std::vector<int32_t> tokens = {4, 1, 4, 0};
  auto fwd = [&] {
    Vec y(tokens.size() * d);
    ops::embedding_forward(y.data(), tokens.data(), table.data(), tokens.size(), d);
    return y;
  };
  auto bwd = [&](const Vec& r) {
    Vec dt(V * d, 0.0);
    ops::embedding_backward(dt.data(), r.data(), tokens.data(), tokens.size(), d, ex);
    return std::vector<Vec>{dt};
  };
  CHECK(fd_error({&table}, fwd, bwd) < kFdTol);
}

namespace {

model::HParams tiny_hparams(model::Arch arch, bool tied) {
  model::HParams hp;
  hp.arch = arch;
  hp.n_vocab = 23;
  hp.n_embd = 12;
  hp.n_ff = 19;
  hp.n_layers = 2;
  hp.n_heads = 3;
  hp.n_kv_heads = arch == model::Arch::qwen2 ? 1 : 3;
  hp.head_dim = 4;
  hp.rope_dim = 4;
  hp.n_ctx_train = 16;
  hp.tied_embeddings = tied;
  hp.rope_neox = arch == model::Arch::qwen2;
  return hp;
}

template <class T, class B>
void fill_params(train::Model<T, B>& m, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  // Larger than training's initialisation, and norms away from 1, so every
  // path carries a gradient of a size finite differences can see.
  for (const train::ParamTensor& t : m.layout().tensors())
    for (size_t i = 0; i < t.size(); ++i)
      m.params()[t.offset + i] = static_cast<T>(t.rows == 1 ? 1.0 + 0.3 * nd(rng) : 0.3 * nd(rng));
}

}  // namespace

TEST_CASE("the whole model's gradients match finite differences; float matches double") {
  SerialExecutor ex;
  ThreadPool pool2(2);
  const size_t B = 2, T = 5;
  const std::vector<int32_t> tokens = {1, 7, 22, 3, 3, 0, 5, 9, 14, 2}, targets = {7, 22, 3, 3, 4, 5, 9, 14, 2, 11};
  const std::vector<uint8_t> mask = {1, 1, 0, 1, 1, 0, 1, 1, 1, 1};
  for (model::Arch arch : {model::Arch::llama, model::Arch::qwen2})
    for (bool tied : {true, false}) {
      CAPTURE(model::arch_name(arch));
      CAPTURE(tied);
      auto md = train::Model<double, k::Scalar>::create(tiny_hparams(arch, tied), B, T);
      REQUIRE(md.ok());
      train::Model<double, k::Scalar>& m = md.value();
      fill_params(m, 21);
      m.zero_grad();
      m.forward(tokens.data(), targets.data(), mask.data(), ex);
      m.backward(ex);
      const std::vector<double> grads(m.grads(), m.grads() + m.layout().size());
      // Every 7th parameter (each tensor is hit; the full set takes too long).
      constexpr double h = 1e-5;
      double worst = 0, scale = 0;
      for (size_t i = 0; i < m.layout().size(); i += 7) {
        const double keep = m.params()[i];
        m.params()[i] = keep + h;
        const double lp = m.forward(tokens.data(), targets.data(), mask.data(), ex);
        m.params()[i] = keep - h;
        const double lm = m.forward(tokens.data(), targets.data(), mask.data(), ex);
        m.params()[i] = keep;
        worst = std::max(worst, std::fabs((lp - lm) / (2 * h) - grads[i]));
        scale = std::max(scale, std::fabs(grads[i]));
      }
      CHECK(worst / scale < kFdTol);

      auto mf = train::Model<float>::create(tiny_hparams(arch, tied), B, T);
      REQUIRE(mf.ok());
      for (size_t i = 0; i < m.layout().size(); ++i) mf.value().params()[i] = static_cast<float>(m.params()[i]);
      mf.value().zero_grad();
      const double lf = mf.value().forward(tokens.data(), targets.data(), mask.data(), pool2);
      mf.value().backward(pool2);
      const double ld = m.forward(tokens.data(), targets.data(), mask.data(), ex);
      CHECK(lf == doctest::Approx(ld).epsilon(1e-5));
      double fworst = 0;
      for (size_t i = 0; i < grads.size(); ++i) fworst = std::max(fworst, std::fabs(mf.value().grads()[i] - grads[i]));
      CHECK(fworst / scale < 1e-4);
    }
}

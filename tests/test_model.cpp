// The transformer against the equations (a naive double-precision forward
// pass), backends against each other, rope frequencies by hand, weight
// binding errors.
#include <doctest/doctest.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "jielong/model/kv_cache.hpp"
#include "jielong/model/model.hpp"
#include "jielong/model/rope.hpp"
#include "jielong/run/session.hpp"
#include "test_model_fixture.hpp"

using namespace jielong;
using jielong::test::SynthFile;
using jielong::test::SynthSpec;
using jielong::test::all_logits;
using jielong::test::kIds;
using jielong::test::max_abs_diff;

TEST_CASE("rope frequencies by hand") {
  float f[2];
  model::RopeParams p;  // base 10000, rot_dim 4: 10000^0, 10000^-1/2
  model::rope_inv_freq(p, 4, f);
  CHECK(f[0] == doctest::Approx(1.0f));
  CHECK(f[1] == doctest::Approx(0.01f));
  p.scaling = model::RopeScaling::linear;
  p.factor = 4.0f;
  model::rope_inv_freq(p, 4, f);
  CHECK(f[0] == doctest::Approx(0.25f));
  CHECK(f[1] == doctest::Approx(0.0025f));
  // llama3, original context 8192, low 1, high 4, factor 8: wavelengths
  // shorter than 8192/4 = 2048 keep their frequency, longer than 8192 are
  // divided by 8, between they blend with smooth = (8192/λ - 1) / 3.
  p = {};
  p.freq_base = 500000.0f;
  p.scaling = model::RopeScaling::llama3;
  p.factor = 8.0f;
  std::vector<float> g(64);
  model::rope_inv_freq(p, 128, g);
  for (size_t i = 0; i < 64; ++i) {
    const double base = std::pow(500000.0, -2.0 * static_cast<double>(i) / 128.0);
    const double wavelen = 2 * std::numbers::pi / base;
    double want = base;
    if (wavelen > 8192) want = base / 8;
    else if (wavelen >= 2048) {
      const double smooth = (8192 / wavelen - 1) / 3;
      want = (1 - smooth) * base / 8 + smooth * base;
    }
    CHECK(g[i] == doctest::Approx(want).epsilon(1e-5));
  }
  // A stored per-pair divisor replaces the computed correction.
  const float factors[2] = {2.0f, 4.0f};
  model::rope_inv_freq(model::RopeParams{}, 4, f, factors);
  CHECK(f[0] == doctest::Approx(0.5f));
  CHECK(f[1] == doctest::Approx(0.0025f));
}

TEST_CASE("forward pass matches the equations (llama, GQA, separate classifier)") {
  auto file = std::make_shared<SynthFile>(SynthSpec{});
  const auto m = jielong::test::bind_synth(file);
  const auto want = jielong::test::naive_forward(*file, kIds);
  // f32 weights and cache, float accumulation over ≤ 96 terms against
  // double: logits (|l| ~ 3) agree to ~1e-5; 1e-4 leaves room.
  CHECK(max_abs_diff(all_logits(m, kIds, run::Backend::scalar), want) < 1e-4);
  CHECK(max_abs_diff(all_logits(m, kIds, run::Backend::best), want) < 1e-4);
  // Batches of 5 (prompt split mid-way) compute the same thing.
  CHECK(max_abs_diff(all_logits(m, kIds, run::Backend::best, model::KvType::f32, 5), want) < 1e-4);
  // An f16 cache (and f16 q/attention weights) costs ~1e-3 relative.
  CHECK(max_abs_diff(all_logits(m, kIds, run::Backend::best, model::KvType::f16), want) < 2e-2);
}

TEST_CASE("forward pass matches the equations (qwen2: biases, neox rope, tied classifier)") {
  SynthSpec spec;
  spec.arch = model::Arch::qwen2;
  spec.tied = true;
  spec.n_kv_heads = 1;
  auto file = std::make_shared<SynthFile>(spec);
  const auto m = jielong::test::bind_synth(file);
  CHECK(m->weights().tied_output);
  CHECK(m->rope_layout() == kernels::RopeLayout::neox);
  const auto want = jielong::test::naive_forward(*file, kIds);
  CHECK(max_abs_diff(all_logits(m, kIds, run::Backend::scalar), want) < 1e-4);
  CHECK(max_abs_diff(all_logits(m, kIds, run::Backend::best), want) < 1e-4);
}

TEST_CASE("quantized weights: Scalar and Best agree, and stay near the equations") {
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::F16}) {
    CAPTURE(dtype_name(t));
    SynthSpec spec;
    spec.matrix_type = t;
    spec.n_embd = 256;  // k-quant and q8 blocks need multiples of 32/256
    spec.n_ff = 256;
    auto file = std::make_shared<SynthFile>(spec);
    const auto m = jielong::test::bind_synth(file);
    const auto scalar = all_logits(m, kIds, run::Backend::scalar);
    const auto best = all_logits(m, kIds, run::Backend::best);
    double d = 0;
    for (size_t i = 0; i < scalar.size(); ++i) d = std::max(d, static_cast<double>(std::fabs(scalar[i] - best[i])));
    // Same integer dot products; only float summation order differs.
    CHECK(d < 1e-3);
    // The reference uses the dequantized weights with exact activations: the
    // gap is the 8-bit activation rounding (~0.5% per product), well under 0.1
    // on logits of magnitude ~3.
    CHECK(max_abs_diff(best, jielong::test::naive_forward(*file, kIds)) < 0.1);
  }
}

TEST_CASE("binding errors name the tensor") {
  {
    auto file = std::make_shared<SynthFile>(SynthSpec{});
    file->remove("blk.1.ffn_up.weight");
    auto m = model::Model::bind<SynthFile>(file, file->hparams(), "x.gguf");
    REQUIRE(!m.ok());
    CHECK(m.status().message().find("blk.1.ffn_up.weight") != std::string::npos);
    CHECK(m.status().message().find("x.gguf") != std::string::npos);
  }
  {
    auto file = std::make_shared<SynthFile>(SynthSpec{});
    file->tensor("blk.0.attn_k.weight")->ne[1] = 17;
    auto m = model::Model::bind<SynthFile>(file, file->hparams(), "x.gguf");
    REQUIRE(!m.ok());
    CHECK(m.status().code() == Code::format_error);
    CHECK(m.status().message().find("blk.0.attn_k.weight") != std::string::npos);
  }
  {
    auto file = std::make_shared<SynthFile>(SynthSpec{});
    file->tensor("output.weight")->n_bytes = 10;
    auto m = model::Model::bind<SynthFile>(file, file->hparams(), "x.gguf");
    REQUIRE(!m.ok());
    CHECK(m.status().message().find("output.weight") != std::string::npos);
  }
}

TEST_CASE("kv cache: sizes, f16 storage, prefix copy") {
  auto c = model::KvCache::create(2, 8, 4, model::KvType::f16);
  REQUIRE(c.ok());
  CHECK(c->bytes() == 2 * 2 * 8 * 4 * 2);
  const float k[4] = {1.0f, -2.5f, 0.333333f, 65504.0f}, v[4] = {0.5f, 0.25f, -1.0f, 3.0f};
  c->store<kernels::Scalar>(1, 3, k, v);
  const auto* kr = static_cast<const uint16_t*>(c->k_row(1, 3));
  CHECK(fp16_to_f32(kr[1]) == -2.5f);
  CHECK(fp16_to_f32(kr[2]) == doctest::Approx(0.333333f).epsilon(1e-3));  // f16: 11 significant bits
  auto copy = c->copy_prefix(4);
  REQUIRE(copy.ok());
  CHECK(std::memcmp(copy->k_row(1, 3), c->k_row(1, 3), c->row_bytes()) == 0);
  CHECK(std::memcmp(copy->v_row(1, 3), c->v_row(1, 3), c->row_bytes()) == 0);
  CHECK(!model::KvCache::create(0, 8, 4, model::KvType::f32).ok());
  CHECK(!model::KvCache::create(1, size_t{1} << 62, size_t{1} << 10, model::KvType::f32).ok());
}

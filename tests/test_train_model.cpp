// The trainer as a whole (its gradients against PyTorch are in
// test_train_torch.cpp): its forward against the engine's logits on the GGUF
// it exports; the same loss bits on any number
// of threads; and a tiny model that learns a repetitive text.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <unistd.h>

#include <doctest/doctest.h>

#include "jielong/io/quantize.hpp"
#include "jielong/model/synth.hpp"
#include "jielong/run/load.hpp"
#include "jielong/run/session.hpp"
#include "jielong/train/adamw.hpp"
#include "jielong/train/export.hpp"
#include "jielong/train/model.hpp"
#include "support/shared.hpp"
#include "support/train_model.hpp"
#include "support/strided_threads.hpp"

using namespace jielong;
namespace fs = std::filesystem;

namespace {

using test::hparams;
using test::make_model;
using test::random_tokens;
using test::temp_dir;

}  // namespace

TEST_CASE("the exported GGUF loads in the engine and its logits equal the trainer's") {
  struct Case {
    model::Arch arch;
    bool tied;
    size_t kv_heads;
  };
  for (const Case c : {Case{model::Arch::llama, false, 2}, Case{model::Arch::qwen2, true, 2}}) {
    CAPTURE(model::arch_name(c.arch));
    const size_t T = 13;
    const model::HParams hp = hparams(c.arch, 300, 64, 2, 4, c.kv_heads, 96, c.tied);
    train::Model<float> m = make_model(hp, 1, T, 9);
    // Norms and biases away from their initial 1 and 0, so a misplaced tensor shows.
    for (const train::ParamTensor& t : m.layout().tensors())
      if (t.rows == 1)
        for (size_t i = 0; i < t.size(); ++i) m.params()[t.offset + i] += 0.1f * std::cos(static_cast<float>(i + t.offset));
    const std::vector<int32_t> tokens = random_tokens(T, hp.n_vocab, 3);
    SerialExecutor ex;
    m.forward(tokens.data(), nullptr, nullptr, ex);
    const std::vector<float> trainer(m.logits(), m.logits() + T * hp.n_vocab);

    const fs::path path = temp_dir("export") / "model.gguf";
    REQUIRE(train::export_gguf(m.layout(), m.params(), path.string()).is_ok());
    for (bool repack : {false, true}) {
      CAPTURE(repack);
      run::LoadOptions lo;
      lo.no_repack = !repack;
      auto lm = run::load(path.string(), "", lo);
      REQUIRE_MESSAGE(lm.ok(), lm.status().to_string());
      run::SessionOptions so;
      so.n_ctx = 32;
      so.n_threads = 1;
      so.kv_type = model::KvType::f32;
      auto s = run::Session::create(lm->model, so);
      REQUIRE_MESSAGE(s.ok(), s.status().to_string());
      std::vector<float> engine(T * hp.n_vocab);
      REQUIRE(s->prefill_all(std::span<const int32_t>(tokens), engine).is_ok());
      // The same operations in float; they differ only in summation order
      // (the engine's dot products vs the blocked GEMM), ~1e-7 relative on
      // logits of size ~1.
      float worst = 0, scale = 0;
      for (size_t i = 0; i < engine.size(); ++i) {
        worst = std::max(worst, std::fabs(engine[i] - trainer[i]));
        scale = std::max(scale, std::fabs(trainer[i]));
      }
      MESSAGE(std::string(model::arch_name(c.arch)) << std::string(repack ? " repacked" : "") << ": max |engine - trainer| logit = " << worst
                                       << " (largest " << scale << ")");
      CHECK(scale > 0.1f);
      CHECK(worst < 1e-5f);
    }
    // Q8_0 for shipping: loads, and the logits stay close (8-bit weights and activations).
    const fs::path q8 = path.parent_path() / "model-q8_0.gguf";
    train::ExportOptions eo;
    eo.mix = io::find_quant_mix("q8_0");
    REQUIRE(eo.mix != nullptr);
    REQUIRE(train::export_gguf(m.layout(), m.params(), q8.string(), eo).is_ok());
    auto lq = run::load(q8.string());
    REQUIRE_MESSAGE(lq.ok(), lq.status().to_string());
    fs::remove_all(path.parent_path());
  }
}

TEST_CASE("export refuses a vocabulary too small to generate") {
  const model::HParams hp = hparams(model::Arch::llama, 100, 16, 1, 2, 2, 24, true);
  train::Model<float> m = make_model(hp, 1, 4, 1);
  const Status st = train::export_gguf(m.layout(), m.params(), (fs::temp_directory_path() / "never.gguf").string());
  CHECK(!st.is_ok());
  CHECK(st.to_string().find("259") != std::string::npos);
}

namespace {

// A few AdamW steps on one batch; the loss of each step.
std::vector<double> train_steps(Executor& ex, size_t steps) {
  const model::HParams hp = hparams(model::Arch::llama, 97, 48, 2, 6, 2, 80, false);
  const size_t B = 4, T = 33;
  train::Model<float> m = make_model(hp, B, T, 77);
  const std::vector<int32_t> tokens = random_tokens(B * T, hp.n_vocab, 4), targets = random_tokens(B * T, hp.n_vocab, 5);
  train::AdamWConfig oc;
  oc.lr = 3e-3f;
  train::AdamW opt(m.layout(), oc);
  std::vector<double> losses;
  for (size_t s = 0; s < steps; ++s) {
    m.zero_grad();
    losses.push_back(m.forward(tokens.data(), targets.data(), nullptr, ex));
    m.backward(ex);
    opt.step(m.params(), m.grads(), 1, ex);
  }
  return losses;
}

}  // namespace

TEST_CASE("a seed gives the same loss bits on 1, 2 and 3 threads") {
  SerialExecutor serial;
  ThreadPool pool2(2);
  test::StridedThreads strided(3);
  const std::vector<double> one = train_steps(serial, 4);
  CHECK(train_steps(pool2, 4) == one);
  CHECK(train_steps(strided, 4) == one);
  CHECK(one.back() < one.front());
}

// Also with bf16 products in every matrix product (kernels::Avx512Bf16).
TEST_CASE_TEMPLATE("a tiny model learns a repetitive text far below its unigram entropy", B, kernels::Best,
                   kernels::Avx512Bf16) {
  if (std::is_same_v<B, kernels::Avx512Bf16> && !kernels::bf16_available()) {
    MESSAGE("bf16 products skipped: this build or CPU has no AVX512_BF16");
    return;
  }
  const std::string text =
      "the cat sat on the mat. the dog sat on the log. a bird sang in the tree. "
      "the cat saw the bird. the dog saw the cat. ";
  // Byte tokens; the unigram entropy of the text's bytes, in nats.
  std::vector<double> freq(128, 0);
  for (unsigned char ch : text) freq[ch] += 1;
  double unigram = 0;
  for (double f : freq)
    if (f > 0) unigram -= f / text.size() * std::log(f / text.size());
  const model::HParams hp = hparams(model::Arch::llama, 128, 48, 2, 4, 2, 128, true);
  const size_t n_seq = 8, T = 48;
  auto created = train::Model<float, B>::create(hp, n_seq, T);
  REQUIRE(created.ok());
  train::Model<float, B>& m = created.value();
  model::detail::NormalStream normal{3};
  train::init_params(m.layout(), m.params(), normal);
  train::AdamWConfig oc;
  oc.lr = 1e-2f;
  oc.warmup_steps = 10;
  oc.total_steps = 150;
  oc.weight_decay = 0.0f;
  train::AdamW opt(m.layout(), oc);
  ThreadPool pool(2);
  std::vector<int32_t> tokens(n_seq * T), targets(n_seq * T);
  double loss = 0;
  for (size_t step = 0; step < oc.total_steps; ++step) {
    for (size_t b = 0; b < n_seq; ++b) {  // windows at shifting offsets of the repeated text
      const size_t start = (step * 7 + b * 13) % text.size();
      for (size_t t = 0; t < T; ++t) {
        tokens[b * T + t] = static_cast<unsigned char>(text[(start + t) % text.size()]);
        targets[b * T + t] = static_cast<unsigned char>(text[(start + t + 1) % text.size()]);
      }
    }
    m.zero_grad();
    loss = m.forward(tokens.data(), targets.data(), nullptr, pool);
    m.backward(pool);
    opt.step(m.params(), m.grads(), 1, pool);
  }
  MESSAGE("unigram entropy " << unigram << " nats; loss after " << oc.total_steps << " steps " << loss);
  CHECK(loss < 0.25 * unigram);
}

TEST_CASE("learning rate: linear warmup, then cosine to the floor") {
  train::AdamWConfig c;
  c.lr = 1.0f;
  c.warmup_steps = 4;
  c.total_steps = 14;
  c.min_lr_ratio = 0.1f;
  CHECK(train::learning_rate(c, 0) == doctest::Approx(0.25));
  CHECK(train::learning_rate(c, 3) == doctest::Approx(1.0));
  CHECK(train::learning_rate(c, 4) == doctest::Approx(1.0));
  CHECK(train::learning_rate(c, 9) == doctest::Approx(0.55));  // half way: 0.1 + 0.9·0.5
  CHECK(train::learning_rate(c, 14) == doctest::Approx(0.1));
  CHECK(train::learning_rate(c, 100) == doctest::Approx(0.1));
}

TEST_CASE("gradient accumulation: two half-batches equal one whole batch") {
  // The mean loss over 2·T tokens is the mean of the two halves' means when
  // both have T unmasked tokens, so the accumulated gradient scaled by 1/2
  // must equal the whole batch's gradient up to float rounding.
  const model::HParams hp = hparams(model::Arch::llama, 50, 16, 1, 2, 1, 24, true);
  const size_t T = 9;
  train::Model<float> whole = make_model(hp, 2, T, 8), half = make_model(hp, 1, T, 8);
  const std::vector<int32_t> tokens = random_tokens(2 * T, hp.n_vocab, 6), targets = random_tokens(2 * T, hp.n_vocab, 7);
  SerialExecutor ex;
  whole.zero_grad();
  whole.forward(tokens.data(), targets.data(), nullptr, ex);
  whole.backward(ex);
  half.zero_grad();
  for (size_t b = 0; b < 2; ++b) {
    half.forward(tokens.data() + b * T, targets.data() + b * T, nullptr, ex);
    half.backward(ex);
  }
  train::AdamWConfig oc;
  oc.grad_clip = 0;
  train::AdamW opt_whole(whole.layout(), oc), opt_half(half.layout(), oc);
  opt_whole.step(whole.params(), whole.grads(), 1, ex);
  opt_half.step(half.params(), half.grads(), 2, ex);
  double worst = 0, scale = 0;
  for (size_t i = 0; i < whole.layout().size(); ++i) {
    worst = std::max(worst, static_cast<double>(std::fabs(whole.grads()[i] - half.grads()[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(whole.grads()[i])));
  }
  CHECK(worst / scale < 1e-5);
}

// The parameter block of stories260K's hyper-parameters against the real
// model's file (../shared): the same tensor names and shapes, llama2.c's
// 260K parameters (512·64 embedding + 5 × 45,440 per layer + 64 final norm =
// 260,032, counted by hand; the GGUF stores the shared classifier once more
// as output.weight, 512·64 more), and with the file's weights loaded the
// trainer's logits equal the engine's (which test_reference checks against
// llama.cpp).
TEST_CASE("stories260K: the layout matches the real file, and the trainer's logits the engine's") {
  const auto path = test::shared_file("models/stories260K/stories260K.gguf");
  if (!path) return;
  auto file = io::GgufFile::open(*path);
  REQUIRE(file.ok());
  auto hp = model::hparams_from_gguf(*file);
  REQUIRE(hp.ok());
  auto layout = train::ParamLayout::create(*hp);
  REQUIRE_MESSAGE(layout.ok(), layout.status().to_string());
  CHECK(layout->size() == 260032 + (file->find_tensor("output.weight") ? 512 * 64 : 0));
  for (const train::ParamTensor& t : layout->tensors()) {
    CAPTURE(t.name);
    const io::GgufTensorInfo* info = file->find_tensor(t.name);
    REQUIRE(info != nullptr);
    CHECK(info->type == DType::F32);
    CHECK(info->ne[0] == t.cols);
    CHECK((info->n_dims == 1 ? 1 : info->ne[1]) == t.rows);
  }
  const size_t T = 24;
  auto m = train::Model<float>::create(*hp, 1, T);
  REQUIRE(m.ok());
  for (const train::ParamTensor& t : layout->tensors())
    std::memcpy(m->params() + t.offset, file->find_tensor(t.name)->data, t.size() * sizeof(float));
  const std::vector<int32_t> tokens = random_tokens(T, hp->n_vocab, 11);
  ThreadPool pool(2);
  m->forward(tokens.data(), nullptr, nullptr, pool);
  auto lm = run::load(*path);
  REQUIRE(lm.ok());
  run::SessionOptions so;
  so.n_ctx = 64;
  so.kv_type = model::KvType::f32;
  auto s = run::Session::create(lm->model, so);
  REQUIRE(s.ok());
  std::vector<float> engine(T * hp->n_vocab);
  REQUIRE(s->prefill_all(std::span<const int32_t>(tokens), engine).is_ok());
  float worst = 0;
  for (size_t i = 0; i < engine.size(); ++i) worst = std::max(worst, std::fabs(engine[i] - m->logits()[i]));
  MESSAGE("stories260K: max |engine - trainer| logit = " << worst);
  CHECK(worst < 1e-4f);  // logits of size ~10: 1e-5 relative
}

TEST_CASE("memory plan: parameters, gradients, two moments and the model's own activation buffers") {
  const model::HParams hp = hparams(model::Arch::llama, 300, 32, 2, 4, 2, 48, false);
  auto plan = train::memory_plan(hp, 3, 17);
  REQUIRE(plan.ok());
  train::Model<float> m = make_model(hp, 3, 17, 1);
  CHECK(plan->params == m.layout().size() * sizeof(float));
  CHECK(plan->moments == 2 * plan->params);
  CHECK(plan->activations == m.activation_floats() * sizeof(float));
  // By hand: 300·32 embedding + 300·32 classifier + 32 final norm + 2 layers ×
  // (2·32 norms + 32·32 q + 2·16·32 k, v + 32·32 output + 3·48·32 feed-forward).
  CHECK(m.layout().size() == 300 * 32 * 2 + 32 + 2 * (64 + 1024 + 1024 + 1024 + 4608));
  CHECK(!train::memory_plan(hparams(model::Arch::llama, 300, 30, 1, 4, 2, 48, false), 1, 4).ok());  // 30 % 4 heads
}

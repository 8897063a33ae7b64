// Small trained-model helpers the train tests share: a llama shape as
// hyper-parameters, a model with seeded weights, random tokens, a scratch
// folder.
#pragma once

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include <doctest/doctest.h>

#include "jielong/model/synth.hpp"
#include "jielong/train/model.hpp"
#include "jielong/train/params.hpp"

namespace jielong::test {

namespace fs = std::filesystem;

inline model::HParams hparams(model::Arch arch, size_t vocab, size_t embd, size_t layers, size_t heads, size_t kv_heads,
                       size_t ff, bool tied) {
  model::SynthSpec spec;
  spec.arch = arch;
  spec.n_vocab = vocab;
  spec.n_embd = embd;
  spec.n_ff = ff;
  spec.n_layers = layers;
  spec.n_heads = heads;
  spec.n_kv_heads = kv_heads;
  spec.n_ctx = 128;
  spec.tied = tied;
  return model::synth_hparams(spec);
}

inline train::Model<float> make_model(const model::HParams& hp, size_t B, size_t T, uint64_t seed) {
  auto m = train::Model<float>::create(hp, B, T);
  REQUIRE_MESSAGE(m.ok(), m.status().to_string());
  model::detail::NormalStream normal{seed};
  train::init_params(m.value().layout(), m.value().params(), normal);
  return std::move(m.value());
}

inline std::vector<int32_t> random_tokens(size_t n, size_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (int32_t& x : t) x = static_cast<int32_t>(rng() % vocab);
  return t;
}

inline fs::path temp_dir(const std::string& what) {
  const fs::path p = fs::temp_directory_path() / ("jielong-train-" + what + "-" + std::to_string(::getpid()));
  fs::create_directories(p);
  return p;
}

}  // namespace jielong::test

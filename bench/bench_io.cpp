// Model-file costs: opening (parsing and validating) GGUF files, and
// quantizing a model end to end. Needs ../shared (or $JIELONG_SHARED).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "jielong/io/gguf.hpp"
#include "jielong/io/model_file.hpp"
#include "jielong/io/quantize.hpp"

#include "support/shared.hpp"

namespace {

using jielong::bench::shared_path;

// A 50257-token GPT-2 vocabulary with 50000 merges: string-array indexing dominates.
void BM_GgufOpenQwen2(benchmark::State& state) {
  auto path = shared_path("models/synth/synth-qwen2-q8_0.gguf");
  if (!path) return state.SkipWithError("../shared not found");
  for (auto _ : state) {
    auto f = jielong::io::GgufFile::open(*path);
    if (!f.ok()) return state.SkipWithError(f.status().message().c_str());
    benchmark::DoNotOptimize(f->tensors().data());
  }
}
BENCHMARK(BM_GgufOpenQwen2)->Unit(benchmark::kMillisecond);

// llama2.c v2: the Q8_0 groups are dequantized to f32 while opening.
void BM_ModelFileOpenLlama2cQ8(benchmark::State& state) {
  auto path = shared_path("models/stories260K/stories260K_q8.bin");
  if (!path) return state.SkipWithError("../shared not found");
  for (auto _ : state) {
    auto f = jielong::io::ModelFile::open(*path);
    if (!f.ok()) return state.SkipWithError(f.status().message().c_str());
    benchmark::DoNotOptimize(f->get());
  }
}
BENCHMARK(BM_ModelFileOpenLlama2cQ8)->Unit(benchmark::kMillisecond);

// synth-llama-f32 (≈ 4.9 M weights) to a mix, written to a temporary file.
void BM_QuantizeSynthLlama(benchmark::State& state, const char* mix_name) {
  auto path = shared_path("models/synth/synth-llama-f32.gguf");
  if (!path) return state.SkipWithError("../shared not found");
  auto in = jielong::io::GgufFile::open(*path);
  if (!in.ok()) return state.SkipWithError(in.status().message().c_str());
  const std::string out = (std::filesystem::temp_directory_path() / "jielong-bench-quantize.gguf").string();
  for (auto _ : state) {
    jielong::Status st = jielong::io::quantize_model(*in, out, *jielong::io::find_quant_mix(mix_name));
    if (!st.is_ok()) return state.SkipWithError(st.message().c_str());
  }
  std::filesystem::remove(out);
}
BENCHMARK_CAPTURE(BM_QuantizeSynthLlama, q8_0, "q8_0")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_QuantizeSynthLlama, q4_k_m, "q4_k_m")->Unit(benchmark::kMillisecond);

}  // namespace
BENCHMARK_MAIN();

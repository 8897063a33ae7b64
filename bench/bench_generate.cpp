// Whole-model speed: prompt processing (prefill of 128 tokens) and decoding
// (one greedy step = sample + forward pass), in tokens per second, on the
// shared models. Models are found through $JIELONG_SHARED or ../shared beside
// the source tree; absent models are skipped.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "jielong/run/load.hpp"
#include "jielong/run/session.hpp"
#include "support/shared.hpp"

namespace {

std::vector<int32_t> prompt_ids(size_t n, size_t n_vocab) {
  std::vector<int32_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((i * 37 + 3) % n_vocab);
  return ids;
}

void run_bench(benchmark::State& state, const char* relative, const char* tokenizer, bool decode) {
  const std::string path = jielong::bench::shared_path(relative).value_or(std::string());
  if (path.empty()) {
    state.SkipWithError("model not found (set JIELONG_SHARED)");
    return;
  }
  auto lm = jielong::run::load(path, tokenizer ? jielong::bench::shared_path(tokenizer).value_or(std::string()) : std::string());
  if (!lm.ok()) {
    state.SkipWithError(lm.status().to_string().c_str());
    return;
  }
  jielong::run::SessionOptions so;
  so.n_ctx = 512;
  so.n_batch = 128;
  so.n_threads = static_cast<size_t>(state.range(0));
  so.kv_type = jielong::model::KvType::f16;
  auto s = jielong::run::Session::create(lm->model, so);
  if (!s.ok()) {
    state.SkipWithError(s.status().to_string().c_str());
    return;
  }
  const auto prompt = prompt_ids(128, s->n_vocab());
  size_t tokens = 0;
  for (auto _ : state) {
    state.PauseTiming();
    (void)s->rewind(s->position());
    if (decode) (void)s->prefill(std::span<const int32_t>(prompt).first(16));
    state.ResumeTiming();
    if (decode) {
      for (int i = 0; i < 64; ++i) benchmark::DoNotOptimize(s->step());
      tokens += 64;
    } else {
      benchmark::DoNotOptimize(s->prefill(prompt));
      tokens += prompt.size();
    }
  }
  state.counters["tok/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
}

}  // namespace

#define JIELONG_MODEL_BENCH(name, file, tok)                                                              \
  static void BM_Prefill128_##name(benchmark::State& s) { run_bench(s, file, tok, false); }               \
  static void BM_Decode64_##name(benchmark::State& s) { run_bench(s, file, tok, true); }                  \
  BENCHMARK(BM_Prefill128_##name)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);          \
  BENCHMARK(BM_Decode64_##name)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

JIELONG_MODEL_BENCH(stories260K, "models/stories260K/stories260K.bin", "models/stories260K/tok512.bin")
JIELONG_MODEL_BENCH(synth_f32, "models/synth/synth-llama-f32.gguf", nullptr)
JIELONG_MODEL_BENCH(synth_q8_0, "models/synth/synth-llama-q8_0.gguf", nullptr)
JIELONG_MODEL_BENCH(synth_q4_0, "models/synth/synth-llama-q4_0.gguf", nullptr)

BENCHMARK_MAIN();

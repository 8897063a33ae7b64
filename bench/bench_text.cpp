// Tokenizer throughput: encode (SPM from llama2.c's Llama 2 tokenizer.bin)
// and streaming detokenization. Needs ../shared (or $JIELONG_SHARED).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "jielong/text/detokenizer.hpp"
#include "jielong/text/tokenizer.hpp"

#include "support/shared.hpp"

namespace {

using jielong::bench::shared_path;

// About 10 KB of mixed English prose, code and some non-ASCII.
std::string sample_text() {
  const std::string para =
      "Once upon a time, in a land far away, there lived a little girl named Lily. She loved to play "
      "outside in the park with her friends — and with her dog, Max! def f(x):\n    return x * 2  # doubled\n"
      "Prices: 3.14, 42, 1000000. Ünïcödé, 日本語, emoji 🦙.\n";
  std::string s;
  while (s.size() < 10000) s += para;
  return s;
}

const jielong::text::Tokenizer* llama2() {
  static std::optional<jielong::text::Tokenizer> tok = []() -> std::optional<jielong::text::Tokenizer> {
    auto path = shared_path("models/llama2-tokenizer.bin");
    if (!path) return std::nullopt;
    auto t = jielong::text::Tokenizer::from_llama2c(*path, 32000);
    if (!t.ok()) return std::nullopt;
    return std::move(*t);
  }();
  return tok ? &*tok : nullptr;
}

void BM_EncodeSpmLlama2(benchmark::State& state) {
  const auto* tok = llama2();
  if (!tok) {
    state.SkipWithError("../shared/models/llama2-tokenizer.bin not found");
    return;
  }
  const std::string text = sample_text();
  size_t n_tokens = 0;
  for (auto _ : state) {
    auto ids = tok->encode(text);
    n_tokens = ids->size();
    benchmark::DoNotOptimize(ids->data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(n_tokens);
}
BENCHMARK(BM_EncodeSpmLlama2);

void BM_DetokenizeStream(benchmark::State& state) {
  const auto* tok = llama2();
  if (!tok) {
    state.SkipWithError("../shared/models/llama2-tokenizer.bin not found");
    return;
  }
  const auto ids = *tok->encode(sample_text());
  jielong::text::Detokenizer d(*tok);
  size_t bytes = 0;
  for (auto _ : state) {
    for (int32_t id : ids) bytes += d.push(id).size();
    d.flush();
  }
  benchmark::DoNotOptimize(bytes);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * ids.size()));
}
BENCHMARK(BM_DetokenizeStream);

}  // namespace

BENCHMARK_MAIN();

// Time-sliced work for games: how long advance(budget) really takes per call
// (p50, p99, max, and the worst overrun past the budget) for the sm135 shape
// in Q4_0 at 1 ms and 4 ms budgets, while it processes a 128-token prompt and
// generates 64 tokens; and how soon cancel() from another thread stops a
// prefill. The model is synthetic (random weights of the sm135 shape, made
// once into /tmp, or $JIELONG_SM135_Q4_0): timing does not depend on the
// weights' values.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "jielong/io/quantize.hpp"
#include "jielong/model/synth.hpp"
#include "jielong/run/load.hpp"
#include "jielong/run/session.hpp"

namespace {

using namespace jielong;
using Clock = std::chrono::steady_clock;

// jielong synth --embd 576 --ff 1536 --layers 30 --heads 9 --kv-heads 3
//   --vocab-size 32000 --tied --type q4_0
const run::LoadedModel* sm135() {
  static const run::LoadedModel* m = [] () -> const run::LoadedModel* {
    const char* env = std::getenv("JIELONG_SM135_Q4_0");
    const std::string path = env && *env ? env : "/tmp/jielong-sm135-q4_0.gguf";
    if (!std::filesystem::exists(path)) {
      model::SynthSpec spec;
      spec.n_embd = 576, spec.n_ff = 1536, spec.n_layers = 30, spec.n_heads = 9, spec.n_kv_heads = 3;
      spec.n_vocab = 32000, spec.n_ctx = 2048, spec.tied = true;
      spec.mix = io::find_quant_mix("q4_0");
      if (!spec.mix || !model::write_synth_model(spec, path).is_ok()) return nullptr;
    }
    auto lm = run::load(path);
    return lm.ok() ? new run::LoadedModel(std::move(*lm)) : nullptr;
  }();
  return m;
}

std::vector<int32_t> prompt_ids(size_t n, size_t n_vocab) {
  std::vector<int32_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((i * 37 + 3) % n_vocab);
  return ids;
}

double pct(std::vector<double>& v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5))];
}

// Args: budget in µs, threads.
void BM_advance_slices(benchmark::State& state) {
  const run::LoadedModel* lm = sm135();
  if (!lm) {
    state.SkipWithError("could not make or load the sm135 Q4_0 model");
    return;
  }
  const auto budget = std::chrono::microseconds(state.range(0));
  run::SessionOptions so;
  so.n_ctx = 256;
  so.n_batch = 32;
  so.n_threads = static_cast<size_t>(state.range(1));
  so.kv_type = model::KvType::f16;
  auto s = run::Session::create(lm->model, so);
  if (!s.ok()) {
    state.SkipWithError(s.status().to_string().c_str());
    return;
  }
  const auto ids = prompt_ids(128, lm->model->hparams().n_vocab);
  std::vector<double> slices;  // ms per advance() call
  size_t tokens = 0;
  double busy_ms = 0;
  for (auto _ : state) {
    (void)s->rewind(s->position());
    if (!s->queue(ids, 64).is_ok()) {
      state.SkipWithError("queue failed");
      return;
    }
    for (bool done = false; !done;) {
      const auto t0 = Clock::now();
      auto r = s->advance(budget);
      const double d = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      if (!r.ok()) {
        state.SkipWithError(r.status().to_string().c_str());
        return;
      }
      slices.push_back(d);
      busy_ms += d;
      tokens += r->prompt_tokens + r->generated;
      done = r->done;
    }
  }
  const double b = std::chrono::duration<double, std::milli>(budget).count();
  std::vector<double> v = slices;
  state.counters["slices"] = static_cast<double>(slices.size());
  state.counters["p50_ms"] = pct(v, 0.50);
  state.counters["p99_ms"] = pct(v, 0.99);
  state.counters["max_ms"] = v.back();
  state.counters["max_overrun_ms"] = std::max(0.0, v.back() - b);
  state.counters["over_budget_%"] =
      100.0 * static_cast<double>(std::count_if(v.begin(), v.end(), [&](double x) { return x > b; })) /
      static_cast<double>(v.size());
  state.counters["tok/s_busy"] = static_cast<double>(tokens) / (busy_ms / 1e3);
}
BENCHMARK(BM_advance_slices)
    ->ArgNames({"budget_us", "threads"})
    ->Args({1000, 1})
    ->Args({4000, 1})
    ->Args({1000, 2})
    ->Args({4000, 2})
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);

// Time from cancel() to the prefill (batches of 64) returning
// Code::cancelled, against one layer's share of a decode step and of a
// 64-token prefill batch (a cancel waits for one parallel task or one
// token's attention).
void BM_cancel_latency(benchmark::State& state) {
  const run::LoadedModel* lm = sm135();
  if (!lm) {
    state.SkipWithError("could not make or load the sm135 Q4_0 model");
    return;
  }
  run::SessionOptions so;
  so.n_ctx = 512;
  so.n_batch = 64;
  so.n_threads = static_cast<size_t>(state.range(0));
  auto s = run::Session::create(lm->model, so);
  if (!s.ok()) {
    state.SkipWithError(s.status().to_string().c_str());
    return;
  }
  const auto ids = prompt_ids(256, lm->model->hparams().n_vocab);
  std::vector<double> latency_ms;
  for (auto _ : state) {
    (void)s->rewind(s->position());
    std::atomic<int64_t> cancelled_at{0};
    std::thread t([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      cancelled_at = Clock::now().time_since_epoch().count();
      s->cancel();
    });
    const Status st = s->prefill(ids);
    const int64_t returned = Clock::now().time_since_epoch().count();
    t.join();
    if (st.code() == Code::cancelled)
      latency_ms.push_back(static_cast<double>(returned - cancelled_at.load()) / 1e6);
  }
  // One decode step and one 64-token prefill batch, for the per-layer times.
  (void)s->rewind(s->position());
  auto t0 = Clock::now();
  (void)s->prefill(std::span<const int32_t>(ids.data(), 64));
  const double batch_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  t0 = Clock::now();
  for (int i = 0; i < 16; ++i) (void)s->step();
  const double step_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / 16;
  if (latency_ms.empty()) {
    state.SkipWithError("the prefill always finished before the cancel");
    return;
  }
  state.counters["cancel_p50_ms"] = pct(latency_ms, 0.5);
  state.counters["cancel_max_ms"] = latency_ms.back();
  state.counters["decode_layer_ms"] = step_ms / static_cast<double>(lm->model->hparams().n_layers);
  state.counters["prefill64_layer_ms"] = batch_ms / static_cast<double>(lm->model->hparams().n_layers);
}
BENCHMARK(BM_cancel_latency)->ArgNames({"threads"})->Arg(1)->Arg(2)->Iterations(20)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();

// Training throughput against the machine's multiply-add peak, measured in
// the same run (see bench/README.md).
//
//   BM_FmaPeak                          independent vector FMA chains on every thread: FLOP/s
//   BM_Gemm/<case>/<tokens>/<out>/<in>  one product of a linear layer: FLOP/s (2·tokens·out·in)
//   BM_TrainStep/<width>/<layers>/...   forward + backward + AdamW: tok/s, model FLOP/s
//   of_peak                             FLOP/s over BM_FmaPeak's rate, probed in the same run
//
// Threads: $JIELONG_THREADS, default all cores.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <type_traits>
#include <vector>

#include <benchmark/benchmark.h>

#include "jielong/core/executor.hpp"
#include "jielong/kernels/gemm.hpp"
#include "jielong/kernels/kernels.hpp"
#include "jielong/model/synth.hpp"
#include "jielong/train/adamw.hpp"
#include "jielong/train/model.hpp"

#include "support/pool.hpp"

using namespace jielong;
namespace k = jielong::kernels;

namespace {

using bench::pool;

std::vector<float> filled(size_t n, float v) { return std::vector<float>(n, v); }

// Independent chains of vector multiply-adds per thread, at least the
// latency of one FMA times the two FMA ports (4 × 2): FLOP/s of `steps`
// rounds on every thread of the pool. 16 chains on AVX-512's 32 registers;
// 12 on the 16 of AVX2, where 16 chains and their two operands do not fit
// and two chains go through the stack every step (../shared/tools/fma_peak.c's
// 16 do the same there: it reads less than half of the AVX2 peak).
double fma_run(size_t steps, double* seconds) {
  namespace hn = hwy::HWY_NAMESPACE;
#if HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3
  constexpr size_t kChains = 12;
#else
  constexpr size_t kChains = 16;
#endif
  const size_t n_threads = pool().concurrency();
  std::vector<float> sink(n_threads * 64);
  const auto t0 = std::chrono::steady_clock::now();
  pool().run(n_threads, [&](size_t t) {
    const hn::ScalableTag<float> d;
    using V = decltype(hn::Zero(d));
    V acc[kChains];
    const V a = hn::Set(d, 0.999999f), b = hn::Set(d, 1e-7f);
    for (size_t j = 0; j < kChains; ++j) acc[j] = hn::Set(d, static_cast<float>(j));
    for (size_t i = 0; i < steps; ++i) {
#pragma GCC unroll 16
      for (size_t j = 0; j < kChains; ++j) acc[j] = hn::MulAdd(acc[j], a, b);
    }
    V s = acc[0];
    for (size_t j = 1; j < kChains; ++j) s = hn::Add(s, acc[j]);
    sink[t * 64] = hn::GetLane(hn::SumOfLanes(d, s));
  });
  benchmark::DoNotOptimize(sink.data());
  *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return 2.0 * static_cast<double>(hn::Lanes(hn::ScalableTag<float>())) * kChains * steps * n_threads / *seconds;
}

// The peak, probed once per run (best of three), for the of_peak counters.
double fma_peak() {
  static const double peak = [] {
    double best = 0, s;
    for (int i = 0; i < 3; ++i) best = std::max(best, fma_run(size_t{1} << 22, &s));
    return best;
  }();
  return peak;
}

// FLOP/s and the fraction of the probed peak, from the loop's wall time.
void report_flops(benchmark::State& state, double flops_per_iteration, std::chrono::steady_clock::time_point t0) {
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double rate = flops_per_iteration * static_cast<double>(state.iterations()) / seconds;
  state.counters["FLOP/s"] = rate;
  state.counters["of_peak"] = rate / fma_peak();
}

void BM_FmaPeak(benchmark::State& state) {
  double flops = 0;
  for (auto _ : state) {
    double seconds;
    const double rate = fma_run(size_t{1} << 20, &seconds);
    flops += rate * seconds;
    state.SetIterationTime(seconds);
  }
  state.counters["FLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsRate);
  state.counters["threads"] = static_cast<double>(pool().concurrency());
}
BENCHMARK(BM_FmaPeak)->Unit(benchmark::kMillisecond)->UseManualTime();

#if JIELONG_HAVE_AVX512_BF16
// The same probe for vdpbf16ps (16 chains per thread): FLOP/s counting a
// lane's two products and two adds as four.
void BM_Bf16DotPeak(benchmark::State& state) {
  constexpr size_t kChains = 16, kSteps = size_t{1} << 20;
  if (!k::bf16_available()) return state.SkipWithError("this CPU has no AVX512_BF16");
  const size_t n_threads = pool().concurrency();
  std::vector<float> sink(n_threads * 64);
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    pool().run(n_threads, [&](size_t t) {
      __m512 acc[kChains];
      const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3380);
      for (size_t j = 0; j < kChains; ++j) acc[j] = _mm512_set1_ps(static_cast<float>(j));
      for (size_t i = 0; i < kSteps; ++i) {
#pragma GCC unroll 16
        for (size_t j = 0; j < kChains; ++j) acc[j] = _mm512_dpbf16_ps(acc[j], a, b);
      }
      __m512 s = acc[0];
      for (size_t j = 1; j < kChains; ++j) s = _mm512_add_ps(s, acc[j]);
      sink[t * 64] = _mm512_reduce_add_ps(s);
    });
    benchmark::DoNotOptimize(sink.data());
  }
  report_flops(state, 4.0 * 16 * kChains * kSteps * static_cast<double>(n_threads), t0);
}
BENCHMARK(BM_Bf16DotPeak)->Unit(benchmark::kMillisecond)->UseRealTime();
#endif

// Whether backend B's own code runs on this CPU (Avx512Bf16 asks for it).
template <class B>
bool runnable(benchmark::State& state) {
  if (!std::is_same_v<B, k::Avx512Bf16> || k::bf16_available()) return true;
  state.SkipWithError("this CPU has no AVX512_BF16");
  return false;
}

// args: case (0 forward X·Wᵀ, 1 dX = dY·W, 2 dW += dYᵀ·X), tokens, out, in.
template <class B>
void BM_Gemm(benchmark::State& state) {
  if (!runnable<B>(state)) return;
  const int which = static_cast<int>(state.range(0));
  const size_t tokens = static_cast<size_t>(state.range(1)), out = static_cast<size_t>(state.range(2)),
               in = static_cast<size_t>(state.range(3));
  const std::vector<float> x = filled(tokens * in, 0.5f), w = filled(out * in, 0.25f), dy = filled(tokens * out, 0.125f);
  std::vector<float> y(tokens * out), dx(tokens * in), dw(out * in);
  fma_peak();  // probed before the clock starts
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    switch (which) {
      case 0:
        k::gemm<B>(k::Trans::no, k::Trans::yes, tokens, out, in, x.data(), in, w.data(), in, y.data(), out, false,
                         pool());
        break;
      case 1:
        k::gemm<B>(k::Trans::no, k::Trans::no, tokens, in, out, dy.data(), out, w.data(), in, dx.data(), in, false,
                         pool());
        break;
      default:
        k::gemm<B>(k::Trans::yes, k::Trans::no, out, in, tokens, dy.data(), out, x.data(), in, dw.data(), in, true,
                         pool());
        break;
    }
    benchmark::ClobberMemory();
  }
  report_flops(state, k::gemm_flops(tokens, out, in), t0);
  static const char* names[] = {"fwd_XWt", "bwd_dYW", "bwd_dYtX"};
  state.SetLabel(names[which]);
}
BENCHMARK_TEMPLATE(BM_Gemm, k::Best)
    ->ArgsProduct({{0, 1, 2}, {1024}, {768}, {768}})   // GPT-2 small's attention projection, 1024 tokens
    ->ArgsProduct({{0, 1, 2}, {1024}, {3072}, {768}})  // its MLP
    ->ArgsProduct({{0, 1, 2}, {512}, {384}, {384}})    // a 6-layer 384-wide model
    ->ArgsProduct({{0, 1, 2}, {1024}, {512}, {64}})    // stories260K-sized: classifier of a 64-wide model
    ->ArgsProduct({{0, 1, 2}, {4096}, {512}, {192}})   // models/jielong-base.recipe: its feed-forward, 16 × 256 tokens
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
// bf16 products with f32 sums: of_peak stays against the f32 probe (one
// vdpbf16ps does two multiply-adds a lane, so its peak is twice that).
#if JIELONG_HAVE_AVX512_BF16
BENCHMARK_TEMPLATE(BM_Gemm, k::Avx512Bf16)
    ->ArgsProduct({{0, 1, 2}, {1024}, {768}, {768}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
#endif

// One training step (forward, backward, AdamW update) of a llama-family
// model on B sequences of T random tokens. FLOP/s counts the model FLOPs as
// llm.c's benchmark does: 6·params + 12·layers·T·width per token (the
// matrix products forward and backward, and attention's scores and mixing).
// args: width, layers, heads, kv heads, feed-forward, vocabulary, B, T.
template <class Backend>
void BM_TrainStep(benchmark::State& state) {
  if (!runnable<Backend>(state)) return;
  model::HParams hp;
  hp.n_embd = static_cast<size_t>(state.range(0));
  hp.n_layers = static_cast<size_t>(state.range(1));
  hp.n_heads = static_cast<size_t>(state.range(2));
  hp.n_kv_heads = static_cast<size_t>(state.range(3));
  hp.n_ff = static_cast<size_t>(state.range(4));
  hp.n_vocab = static_cast<size_t>(state.range(5));
  hp.head_dim = hp.rope_dim = hp.n_embd / hp.n_heads;
  const size_t B = static_cast<size_t>(state.range(6)), T = static_cast<size_t>(state.range(7));
  hp.n_ctx_train = T;
  hp.tied_embeddings = true;
  auto created = train::Model<float, Backend>::create(hp, B, T);
  if (!created.ok()) {
    state.SkipWithError(created.status().to_string().c_str());
    return;
  }
  train::Model<float, Backend>& m = created.value();
  model::detail::NormalStream normal{1};
  train::init_params(m.layout(), m.params(), normal);
  std::vector<int32_t> tokens(B * T), targets(B * T);
  for (size_t i = 0; i < tokens.size(); ++i) {
    tokens[i] = static_cast<int32_t>((i * 7919) % hp.n_vocab);
    targets[i] = static_cast<int32_t>((i * 104729 + 1) % hp.n_vocab);
  }
  train::AdamW opt(m.layout(), train::AdamWConfig{});
  auto step = [&] {
    m.zero_grad();
    const double loss = m.forward(tokens.data(), targets.data(), nullptr, pool());
    m.backward(pool());
    opt.step(m.params(), m.grads(), 1, pool());
    return loss;
  };
  step();  // first touch of every buffer, outside the clock
  fma_peak();
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) benchmark::DoNotOptimize(step());
  const double params = static_cast<double>(m.layout().size());
  const double per_token = 6.0 * params + 12.0 * static_cast<double>(hp.n_layers * T * hp.n_embd);
  report_flops(state, per_token * static_cast<double>(B * T), t0);
  state.counters["tok/s"] = benchmark::Counter(static_cast<double>(B * T), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["params"] = params;
}
BENCHMARK_TEMPLATE(BM_TrainStep, k::Best)
    ->Args({64, 5, 8, 4, 172, 512, 4, 256})      // stories260K's shape
    ->Args({128, 4, 4, 4, 384, 2048, 8, 128})    // ~1M parameters
    ->Args({384, 6, 6, 6, 1024, 50257, 4, 256})  // llm.c's small_L6C384 (GPT-2 vocabulary, tied), SwiGLU width 1024
    ->Args({192, 6, 6, 3, 512, 4096, 16, 256})   // models/jielong-base.recipe
    ->Args({384, 6, 6, 6, 1024, 8192, 16, 256})  // a wider shipped shape: heads of 64, vocabulary 8192
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);
#if JIELONG_HAVE_AVX512_BF16
BENCHMARK_TEMPLATE(BM_TrainStep, k::Avx512Bf16)
    ->Args({384, 6, 6, 6, 1024, 50257, 4, 256})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);
#endif

}  // namespace

BENCHMARK_MAIN();

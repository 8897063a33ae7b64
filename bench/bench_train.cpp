// Training throughput against the machine's multiply-add peak, measured in
// the same run (see bench/README.md).
//
//   BM_FmaPeak                          independent vector FMA chains on every thread: FLOP/s
//   BM_Gemm/<case>/<m>x<n>x<k>          one product of a linear layer: FLOP/s (2·m·n·k)
//
// Threads: $JIELONG_THREADS, default all cores.
#include <cstdlib>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include "jielong/core/executor.hpp"
#include "jielong/kernels/gemm.hpp"
#include "jielong/kernels/kernels.hpp"

#include "support/pool.hpp"

using namespace jielong;
namespace k = jielong::kernels;

namespace {

using bench::pool;

std::vector<float> filled(size_t n, float v) { return std::vector<float>(n, v); }

// 16 independent chains of vector multiply-adds per thread (the latency of
// one FMA times the two FMA ports), as ../shared/tools/fma_peak.c measures.
void BM_FmaPeak(benchmark::State& state) {
  namespace hn = hwy::HWY_NAMESPACE;
  constexpr size_t kChains = 16, kSteps = 1 << 20;
  const size_t n_threads = pool().concurrency();
  std::vector<float> sink(n_threads * 64);
  for (auto _ : state) {
    pool().run(n_threads, [&](size_t t) {
      const hn::ScalableTag<float> d;
      using V = decltype(hn::Zero(d));
      V acc[kChains];
      const V a = hn::Set(d, 0.999999f), b = hn::Set(d, 1e-7f);
      for (size_t j = 0; j < kChains; ++j) acc[j] = hn::Set(d, static_cast<float>(j));
      for (size_t i = 0; i < kSteps; ++i) {
#pragma GCC unroll 16
        for (size_t j = 0; j < kChains; ++j) acc[j] = hn::MulAdd(acc[j], a, b);
      }
      V s = acc[0];
      for (size_t j = 1; j < kChains; ++j) s = hn::Add(s, acc[j]);
      sink[t * 64] = hn::GetLane(hn::SumOfLanes(d, s));
    });
    benchmark::DoNotOptimize(sink.data());
  }
  const double flops = 2.0 * static_cast<double>(hn::Lanes(hn::ScalableTag<float>())) * kChains * kSteps * n_threads;
  state.counters["FLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = static_cast<double>(n_threads);
}
BENCHMARK(BM_FmaPeak)->Unit(benchmark::kMillisecond)->UseRealTime();

// args: case (0 forward X·Wᵀ, 1 dX = dY·W, 2 dW += dYᵀ·X), tokens, out, in.
void BM_Gemm(benchmark::State& state) {
  const int which = static_cast<int>(state.range(0));
  const size_t tokens = static_cast<size_t>(state.range(1)), out = static_cast<size_t>(state.range(2)),
               in = static_cast<size_t>(state.range(3));
  const std::vector<float> x = filled(tokens * in, 0.5f), w = filled(out * in, 0.25f), dy = filled(tokens * out, 0.125f);
  std::vector<float> y(tokens * out), dx(tokens * in), dw(out * in);
  for (auto _ : state) {
    switch (which) {
      case 0:
        k::gemm<k::Best>(k::Trans::no, k::Trans::yes, tokens, out, in, x.data(), in, w.data(), in, y.data(), out, false,
                         pool());
        break;
      case 1:
        k::gemm<k::Best>(k::Trans::no, k::Trans::no, tokens, in, out, dy.data(), out, w.data(), in, dx.data(), in, false,
                         pool());
        break;
      default:
        k::gemm<k::Best>(k::Trans::yes, k::Trans::no, out, in, tokens, dy.data(), out, x.data(), in, dw.data(), in, true,
                         pool());
        break;
    }
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] =
      benchmark::Counter(k::gemm_flops(tokens, out, in), benchmark::Counter::kIsIterationInvariantRate);
  static const char* names[] = {"fwd_XWt", "bwd_dYW", "bwd_dYtX"};
  state.SetLabel(names[which]);
}
BENCHMARK(BM_Gemm)
    ->ArgsProduct({{0, 1, 2}, {1024}, {768}, {768}})   // GPT-2 small's attention projection, 1024 tokens
    ->ArgsProduct({{0, 1, 2}, {1024}, {3072}, {768}})  // its MLP
    ->ArgsProduct({{0, 1, 2}, {512}, {384}, {384}})    // a 6-layer 384-wide model
    ->ArgsProduct({{0, 1, 2}, {1024}, {512}, {64}})    // stories260K-sized: classifier of a 64-wide model
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();

// The cost of handing work to threads: a decode step of a small model runs a
// few hundred parallel loops, so this latency bounds tokens/s from above.
#include <benchmark/benchmark.h>

#include <atomic>

#include "jielong/core/executor.hpp"

namespace {

void BM_PoolDispatch(benchmark::State& state) {
  jielong::ThreadPool pool(static_cast<size_t>(state.range(0)));
  std::atomic<size_t> sink{0};
  for (auto _ : state) {
    pool.run(pool.concurrency(), [&](size_t i) { sink.fetch_add(i, std::memory_order_relaxed); });
  }
  benchmark::DoNotOptimize(sink.load());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PoolDispatch)->Arg(1)->Arg(2)->UseRealTime();

void BM_SerialDispatch(benchmark::State& state) {
  jielong::SerialExecutor serial;
  size_t sink = 0;
  for (auto _ : state) {
    jielong::parallel_for(serial, 64, 16, [&](size_t b, size_t e) { sink += e - b; });
    benchmark::DoNotOptimize(sink);
  }
}
BENCHMARK(BM_SerialDispatch);

}  // namespace

BENCHMARK_MAIN();

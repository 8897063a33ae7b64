// Kernel throughput against the machine's memory read bandwidth, measured in
// the same run (see bench/README.md for how to read the table).
//
//   BM_ReadBandwidth                         streaming read of 1 GiB, bytes/s
//   BM_Matvec/<type>/<backend>/<rows>x<cols> decode: bytes/s = weight bytes read per second
//   BM_MatvecStream/<type>/<backend>/<rows>x<cols>  decode over 512 MiB of distinct matrices in turn
//                                            (from memory, a parallel region each, as in a model)
//   BM_Matmul/<type>/<backend>/<rows>x<cols>/<tokens>  prefill: FLOP/s (2·rows·cols·tokens)
//
// Threads: $JIELONG_THREADS, default all cores. Weights are seeded random
// rows quantized once and tiled over the matrix (speed does not depend on the
// values, and tiling keeps setup fast; every row is still a distinct read).
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include "jielong/core/executor.hpp"
#include "jielong/core/memory.hpp"
#include "jielong/kernels/kernels.hpp"
#include "jielong/kernels/stream.hpp"

#include "support/pool.hpp"

using namespace jielong;
namespace k = jielong::kernels;

namespace {

using bench::pool;


void BM_ReadBandwidth(benchmark::State& state) {
  constexpr size_t kBytes = size_t{1} << 30;
  HugePageBuffer buf(kBytes);  // huge pages where the system allows: the limit at its best
  std::memset(buf.data(), 1, kBytes);  // fault every page in before timing
  const size_t n_chunks = 64;        // fixed partition, as the kernels use
  std::vector<float> partial(n_chunks);
  for (auto _ : state) {
    parallel_for(pool(), n_chunks, 1, [&](size_t c0, size_t c1) {
      for (size_t c = c0; c < c1; ++c) {
        const auto* p = reinterpret_cast<const float*>(buf.data() + c * (kBytes / n_chunks));
        partial[c] = k::stream_sum(p, kBytes / n_chunks / sizeof(float));
      }
    });
    benchmark::DoNotOptimize(partial.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(kBytes));
  state.counters["threads"] = static_cast<double>(pool().concurrency());
}

// A rows x cols matrix of `type`: 64 distinct quantized rows tiled.
// With `panels`, Q4_0/Q8_0/Q4_K rows are repacked as the engine loads them
// (kernels/panels.hpp).
struct BenchMatrix {
  BenchMatrix(DType type, size_t rows, size_t cols, bool panels = false) : bytes(row_bytes(type, cols) * rows) {
    const size_t rb = row_bytes(type, cols);
    constexpr size_t kDistinct = 64;
    std::vector<uint8_t> pattern(rb * kDistinct);
    std::mt19937 rng(42);
    std::normal_distribution<float> nd(0.0f, 0.02f);
    std::vector<float> row(cols);
    for (size_t r = 0; r < kDistinct; ++r) {
      for (float& v : row) v = nd(rng);
      (void)quants::quantize_row(type, row.data(), pattern.data() + r * rb, cols);
    }
    for (size_t r = 0; r < rows; ++r) std::memcpy(bytes.data() + r * rb, pattern.data() + (r % kDistinct) * rb, rb);
    view = k::WeightView{type, bytes.data(), rows, cols, rb};
    if (panels && k::panels::supported(type)) {
      HugePageBuffer packed(bytes.size());
      view.panel_rows = k::panels::pack_matrix(type, bytes.data(), rows, cols, packed.data());
      bytes = std::move(packed);
      view.data = bytes.data();
    }
  }
  HugePageBuffer bytes;  // as weights read with --no-mmap
  k::WeightView view;
};

// `count` distinct rows x cols matrices, one matvec each in turn per iteration.
template <class B>
void run_matvecs(benchmark::State& state, DType type, size_t rows, size_t cols, bool panels, size_t count) {
  std::vector<std::unique_ptr<BenchMatrix>> ms;
  for (size_t i = 0; i < count; ++i) ms.push_back(std::make_unique<BenchMatrix>(type, rows, cols, panels));
  std::vector<float> x(cols), y(rows);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (float& v : x) v = nd(rng);
  AlignedBuffer scratch(k::matvec_scratch_bytes(type, cols) + 64);
  const std::span<std::byte> s(scratch.data(), scratch.size());
  for (auto _ : state) {
    for (const auto& m : ms) k::matvec<B>(m->view, x.data(), y.data(), s, pool());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(count * ms[0]->bytes.size()));
}

template <class B>
void BM_Matvec(benchmark::State& state, DType type, size_t rows, size_t cols, bool panels) {
  run_matvecs<B>(state, type, rows, cols, panels, 1);
}

// Decode from memory as a model meets it: distinct matrices of one shape,
// 512 MiB in all (past any last-level cache), one matvec each in turn, so
// every matrix starts cold and every call is its own parallel region.
template <class B>
void BM_MatvecStream(benchmark::State& state, DType type, size_t rows, size_t cols, bool panels) {
  const size_t one = row_bytes(type, cols) * rows;
  run_matvecs<B>(state, type, rows, cols, panels, std::max<size_t>(2, (size_t{512} << 20) / one));
}

template <class B>
void BM_Matmul(benchmark::State& state, DType type, size_t rows, size_t cols, size_t tokens, bool panels) {
  BenchMatrix m(type, rows, cols, panels);
  std::vector<float> x(cols * tokens), y(rows * tokens);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (float& v : x) v = nd(rng);
  AlignedBuffer scratch(k::matvec_scratch_bytes(type, cols, tokens) + 64);
  const std::span<std::byte> s(scratch.data(), scratch.size());
  for (auto _ : state) {
    k::matmul<B>(m.view, x.data(), tokens, y.data(), s, pool());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(rows * cols * tokens),
                                                benchmark::Counter::kIsIterationInvariantRate);
}

struct Shape {
  size_t rows, cols;
};

// backend "panels": Best on the engine's repacked layout (Q4_0, Q8_0, Q4_K, F32).
// 172x64: the feed-forward matrices of llama2.c's stories260K (short rows,
// in L1: the per-row overhead of a kernel shows).
template <class B>
void register_backend(const char* backend, bool panels = false) {
  const DType types[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0,
                         DType::Q4_1, DType::Q5_0, DType::Q4_K, DType::Q5_K, DType::Q6_K};
  const Shape shapes[] = {{2048, 2048}, {5632, 2048}, {2048, 5632}, {32000, 2048}, {1536, 576}, {172, 64}};
  for (DType t : types)
    for (const Shape& sh : shapes) {
      if (row_bytes(t, sh.cols) == 0) continue;  // 576 is not a multiple of 256: no k-quants there
      if (panels && !k::panels::supported(t)) continue;
      const std::string name = "BM_Matvec/" + std::string(dtype_name(t)) + "/" + backend + "/" + std::to_string(sh.rows) +
                               "x" + std::to_string(sh.cols);
      benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) { BM_Matvec<B>(st, t, sh.rows, sh.cols, panels); })
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
    }
}

// The stream benchmark on the shapes of a tl1b layer (2048x2048: Wq, Wo;
// 5632x2048: gate, up; 2048x5632: down).
template <class B>
void register_stream(const char* backend, bool panels = false) {
  const DType types[] = {DType::F16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K};
  const Shape shapes[] = {{2048, 2048}, {5632, 2048}, {2048, 5632}};
  for (DType t : types)
    for (const Shape& sh : shapes) {
      if (panels && !k::panels::supported(t)) continue;
      const std::string name = "BM_MatvecStream/" + std::string(dtype_name(t)) + "/" + backend + "/" +
                               std::to_string(sh.rows) + "x" + std::to_string(sh.cols);
      benchmark::RegisterBenchmark(name.c_str(),
                                   [=](benchmark::State& st) { BM_MatvecStream<B>(st, t, sh.rows, sh.cols, panels); })
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
}

template <class B>
void register_matmul(const char* backend, bool panels = false) {
  const DType types[] = {DType::F16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K};
  const Shape shapes[] = {{2048, 2048}, {5632, 2048}};
  for (DType t : types)
    for (const Shape& sh : shapes) {
      if (panels && !k::panels::supported(t)) continue;
      const size_t tokens = 128;
      const std::string name = "BM_Matmul/" + std::string(dtype_name(t)) + "/" + backend + "/" + std::to_string(sh.rows) +
                               "x" + std::to_string(sh.cols) + "/" + std::to_string(tokens);
      benchmark::RegisterBenchmark(name.c_str(),
                                   [=](benchmark::State& st) { BM_Matmul<B>(st, t, sh.rows, sh.cols, tokens, panels); })
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
}

}  // namespace

int main(int argc, char** argv) {
  pool();  // start the workers before anything is timed
  benchmark::RegisterBenchmark("BM_ReadBandwidth", BM_ReadBandwidth)->UseRealTime()->Unit(benchmark::kMillisecond);
  register_backend<k::Scalar>("scalar");
  register_backend<k::Xsimd>("xsimd");
  register_backend<k::Highway>("highway");
  register_backend<k::Best>("best");
  register_backend<k::Best>("panels", true);
  register_stream<k::Best>("best");
  register_stream<k::Best>("panels", true);
  register_matmul<k::Highway>("highway");
  register_matmul<k::Best>("best");
  register_matmul<k::Best>("panels", true);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

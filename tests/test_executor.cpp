// Executors: every index exactly once, fixed partitions, nesting, host
// executors, several callers at once.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>
#include <vector>

#include "jielong/core/executor.hpp"

using namespace jielong;

namespace {

// A host's own job system, as a game would plug in: runs the tasks in reverse
// order on freshly started threads.
class ReverseThreadsExecutor final : public Executor {
 public:
  size_t concurrency() const noexcept override { return 3; }
  void run(size_t n_tasks, FunctionRef<void(size_t)> task) noexcept override {
    std::vector<std::thread> threads;
    for (size_t t = 0; t < 3; ++t)
      threads.emplace_back([&, t] {
        for (size_t i = n_tasks; i-- > 0;)
          if (i % 3 == t) task(i);
      });
    for (auto& th : threads) th.join();
  }
};

// A float sum whose rounding depends on how the range is cut.
float chunked_sum(Executor& ex, const std::vector<float>& v, size_t grain) {
  const size_t n_chunks = (v.size() + grain - 1) / grain;
  std::vector<float> partial(n_chunks, 0.0f);
  parallel_for(ex, v.size(), grain, [&](size_t begin, size_t end) {
    float s = 0.0f;
    for (size_t i = begin; i < end; ++i) s += v[i];
    partial[begin / grain] = s;
  });
  float total = 0.0f;
  for (float p : partial) total += p;
  return total;
}

}  // namespace

TEST_CASE("parallel_for visits every index exactly once") {
  SerialExecutor serial;
  ThreadPool pool1(1), pool2(2), pool3(3), pool5(5);
  ReverseThreadsExecutor host;
  Executor* executors[] = {&serial, &pool1, &pool2, &pool3, &pool5, &host};
  for (Executor* ex : executors) {
    for (size_t n : {size_t{0}, size_t{1}, size_t{3}, size_t{7}, size_t{16}, size_t{17}, size_t{255}, size_t{4097}}) {
      for (size_t grain : {size_t{0}, size_t{1}, size_t{3}, size_t{64}, size_t{5000}}) {
        std::vector<std::atomic<int>> seen(n);
        parallel_for(*ex, n, grain, [&](size_t begin, size_t end) {
          CHECK(begin < end);
          CHECK(end <= n);
          if (grain > 0) CHECK(begin % grain == 0);
          for (size_t i = begin; i < end; ++i) seen[i].fetch_add(1);
        });
        for (size_t i = 0; i < n; ++i) REQUIRE(seen[i].load() == 1);
      }
    }
  }
}

TEST_CASE("results do not depend on the executor or its thread count") {
  std::vector<float> v(100003);
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(static_cast<float>(i)) * 1e3f + 1e-3f * static_cast<float>(i);
  SerialExecutor serial;
  const float reference = chunked_sum(serial, v, 1000);
  ThreadPool pool2(2), pool4(4);
  ReverseThreadsExecutor host;
  for (int rep = 0; rep < 5; ++rep) {
    CHECK(chunked_sum(pool2, v, 1000) == reference);  // bit-identical, not approximately equal
    CHECK(chunked_sum(pool4, v, 1000) == reference);
    CHECK(chunked_sum(host, v, 1000) == reference);
  }
}

TEST_CASE("nested parallel_for runs the inner loop without deadlock") {
  ThreadPool pool(2);
  std::vector<std::atomic<int>> seen(40 * 50);
  parallel_for(pool, 40, 1, [&](size_t ob, size_t oe) {
    for (size_t o = ob; o < oe; ++o)
      parallel_for(pool, 50, 7, [&](size_t ib, size_t ie) {
        for (size_t i = ib; i < ie; ++i) seen[o * 50 + i].fetch_add(1);
      });
  });
  for (auto& s : seen) REQUIRE(s.load() == 1);
}

TEST_CASE("several host threads share one pool") {
  ThreadPool pool(2);
  std::vector<std::thread> callers;
  std::atomic<int> failures{0};
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      for (int rep = 0; rep < 200; ++rep) {
        std::vector<int> out(97, 0);
        parallel_for(pool, out.size(), 5, [&](size_t b, size_t e) {
          for (size_t i = b; i < e; ++i) out[i] = static_cast<int>(i) * 2;
        });
        for (size_t i = 0; i < out.size(); ++i)
          if (out[i] != static_cast<int>(i) * 2) failures.fetch_add(1);
      }
    });
  for (auto& t : callers) t.join();
  CHECK(failures.load() == 0);
  CHECK(pool.concurrency() == 2);
}

TEST_CASE("a pool is created and destroyed cleanly, used or not") {
  for (int i = 0; i < 20; ++i) {
    ThreadPool unused(3);
    ThreadPool used(2);
    std::atomic<size_t> n{0};
    used.run(10, [&](size_t) { n.fetch_add(1); });
    CHECK(n.load() == 10);
  }
  ThreadPool automatic;  // one thread per hardware thread
  CHECK(automatic.concurrency() >= 1);
}

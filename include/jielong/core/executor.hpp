// Executor: where parallel loops run. The library never starts threads of its
// own accord; it asks an Executor. A host passes its job system (implement
// `run`) or uses ThreadPool. Work is cut into a fixed set of tasks that depends
// only on the problem size, never on the number of threads, so every result
// is bit-identical whichever thread computes which task.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "jielong/core/function_ref.hpp"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <immintrin.h>
#define JIELONG_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define JIELONG_CPU_RELAX() __asm__ __volatile__("yield")
#else
#define JIELONG_CPU_RELAX() ((void)0)
#endif

namespace jielong {

class Executor {
 public:
  virtual ~Executor() = default;
  // How many threads may run tasks at once (>= 1); a hint for choosing grains.
  virtual size_t concurrency() const noexcept = 0;
  // Calls task(i) exactly once for every i in [0, n_tasks), on any threads,
  // and returns when all calls have returned. Must be safe to call from
  // inside a task (nested use runs the inner loop on the calling thread).
  virtual void run(size_t n_tasks, FunctionRef<void(size_t)> task) noexcept = 0;
};

// Runs everything on the calling thread.
class SerialExecutor final : public Executor {
 public:
  size_t concurrency() const noexcept override { return 1; }
  void run(size_t n_tasks, FunctionRef<void(size_t)> task) noexcept override {
    for (size_t i = 0; i < n_tasks; ++i) task(i);
  }
};

// f(begin, end) over [0, n) in chunks of `grain` items: chunk c is
// [c*grain, min(n, (c+1)*grain)) whatever the executor.
template <class F>
void parallel_for(Executor& ex, size_t n, size_t grain, F&& f) noexcept {
  if (n == 0) return;
  if (grain == 0) grain = 1;
  const size_t n_chunks = (n + grain - 1) / grain;
  if (n_chunks == 1) {
    f(size_t{0}, n);
    return;
  }
  ex.run(n_chunks, [&](size_t c) {
    const size_t begin = c * grain;
    f(begin, std::min(n, begin + grain));
  });
}

// A fixed set of worker threads; the calling thread works too, so
// ThreadPool(2) starts one extra thread. Idle workers spin for a few
// microseconds (a decode step hands out work every ~100 µs, and waking a
// sleeping thread costs more than that), then sleep on a condition variable,
// so an idle pool uses no CPU.
class ThreadPool final : public Executor {
 public:
  // n_threads == 0: one per hardware thread.
  explicit ThreadPool(size_t n_threads = 0) {
    if (n_threads == 0) n_threads = std::max(1u, std::thread::hardware_concurrency());
    workers_.reserve(n_threads - 1);
    // The generation is read here, not in the new thread: a job submitted
    // before a worker starts running must still count as new to it.
    const uint64_t start = generation_.load(std::memory_order_relaxed);
    for (size_t i = 0; i + 1 < n_threads; ++i) workers_.emplace_back([this, start] { worker_loop(start); });
  }
  ~ThreadPool() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t concurrency() const noexcept override { return workers_.size() + 1; }

  void run(size_t n_tasks, FunctionRef<void(size_t)> task) noexcept override {
    if (n_tasks == 0) return;
    if (n_tasks == 1 || workers_.empty() || inside_pool()) {  // nested or trivial: run here
      for (size_t i = 0; i < n_tasks; ++i) task(i);
      return;
    }
    std::lock_guard<std::mutex> submit(submit_mutex_);  // one job at a time; other callers wait
    job_ = &task;
    n_tasks_ = n_tasks;
    next_task_.store(0, std::memory_order_relaxed);
    workers_done_.store(0, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    inside_pool() = true;
    work();
    inside_pool() = false;
    // Wait for the workers to leave the job (they may still be finishing a task).
    const size_t n_workers = workers_.size();
    for (int spin = 0; workers_done_.load(std::memory_order_acquire) != n_workers; ++spin) {
      if (spin < kSpinIterations) {
        JIELONG_CPU_RELAX();
      } else {
        std::unique_lock<std::mutex> lock(mutex_);
        done_.wait(lock, [&] { return workers_done_.load(std::memory_order_acquire) == n_workers; });
      }
    }
    job_ = nullptr;
  }

 private:
  static constexpr int kSpinIterations = 20000;  // a few tens of µs of pause instructions

  static bool& inside_pool() noexcept {
    thread_local bool inside = false;
    return inside;
  }

  void work() noexcept {
    const FunctionRef<void(size_t)>& task = *job_;
    for (size_t i; (i = next_task_.fetch_add(1, std::memory_order_relaxed)) < n_tasks_;) task(i);
  }

  void worker_loop(uint64_t seen) noexcept {
    inside_pool() = true;
    for (;;) {
      // Spin briefly for the next job, then sleep.
      int spin = 0;
      while (generation_.load(std::memory_order_acquire) == seen && spin < kSpinIterations) {
        JIELONG_CPU_RELAX();
        ++spin;
      }
      if (generation_.load(std::memory_order_acquire) == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      }
      seen = generation_.load(std::memory_order_acquire);
      if (stop_) return;
      work();
      if (workers_done_.fetch_add(1, std::memory_order_acq_rel) + 1 == workers_.size()) {
        std::lock_guard<std::mutex> lock(mutex_);  // pairs with the waiter's predicate check
        done_.notify_one();
      }
    }
  }

  std::vector<std::thread> workers_;
  std::mutex submit_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<size_t> next_task_{0};
  std::atomic<size_t> workers_done_{0};
  const FunctionRef<void(size_t)>* job_ = nullptr;
  size_t n_tasks_ = 0;
  bool stop_ = false;
};

}  // namespace jielong

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

// Loops of fewer multiply-adds (or comparable steps) than this run on the
// calling thread: a hand-off to a waiting worker and the wait for its last
// task cost about as much as this many multiply-adds on one core (a pool
// dispatch alone takes ~0.25 µs in bench_core; the worker then reads the
// activations into its own cache), so splitting smaller loops makes a tiny
// model slower at two threads than at one.
inline constexpr size_t kMinParallelWork = size_t{1} << 16;

// parallel_for for a loop of `work` multiply-adds in all: below
// kMinParallelWork the same chunks run one after another on the calling
// thread, so the results are the same bits either way.
template <class F>
void parallel_for_work(Executor& ex, size_t n, size_t grain, size_t work, F&& f) noexcept {
  if (work < kMinParallelWork) {
    SerialExecutor here;
    parallel_for(here, n, grain, f);
  } else {
    parallel_for(ex, n, grain, f);
  }
}

// A fixed set of worker threads; the calling thread works too, so
// ThreadPool(2) starts one extra thread. Idle workers spin for a few
// microseconds (a decode step hands out work every ~100 µs, and waking a
// sleeping thread costs more than that), then sleep on a condition variable,
// so an idle pool uses no CPU.
//
// A worker joins a job before taking tasks from it, and the caller, once the
// task counter is exhausted, closes the job and waits only for the workers
// that joined (they are finishing their last task). A worker that wakes late
// finds the job closed and goes back to waiting: small jobs never wait for a
// sleeping thread to wake up.
class ThreadPool final : public Executor {
 public:
  // n_threads == 0: one per hardware thread.
  explicit ThreadPool(size_t n_threads = 0) {
    if (n_threads == 0) n_threads = std::max(1u, std::thread::hardware_concurrency());
    workers_.reserve(n_threads - 1);
    // The sequence is read here, not in the new thread: a job (or the stop)
    // published before a worker starts running must still count as new to it.
    const uint64_t start = state_.load(std::memory_order_relaxed) & kSeqMask;
    for (size_t i = 0; i + 1 < n_threads; ++i) workers_.emplace_back([this, start] { worker_loop(start); });
  }
  ~ThreadPool() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_.store(true, std::memory_order_relaxed);
      state_.fetch_add(kSeqOne, std::memory_order_release);
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
    {
      // Publish: a new sequence number, open, nobody joined yet.
      std::lock_guard<std::mutex> lock(mutex_);
      const uint64_t seq = (state_.load(std::memory_order_relaxed) & kSeqMask) + kSeqOne;
      state_.store(seq | kOpen, std::memory_order_release);
    }
    if (sleepers_.load(std::memory_order_acquire) != 0) wake_.notify_all();
    inside_pool() = true;
    work();
    inside_pool() = false;
    // Close the job; wait for the workers that joined to finish their tasks.
    uint64_t s = state_.fetch_and(~kOpen, std::memory_order_acq_rel) & ~kOpen;
    for (int spin = 0; (s & kCountMask) != 0; ++spin) {
      if (spin < kSpinIterations) {
        JIELONG_CPU_RELAX();
      } else {
        std::unique_lock<std::mutex> lock(mutex_);
        done_.wait(lock, [&] { return (state_.load(std::memory_order_acquire) & kCountMask) == 0; });
      }
      s = state_.load(std::memory_order_acquire);
    }
    job_ = nullptr;
  }

 private:
  static constexpr int kSpinIterations = 20000;  // a few tens of µs of pause instructions
  // state_: job sequence number (bits 32..63), open flag (bit 31), number of
  // workers inside the job (bits 0..30).
  static constexpr uint64_t kSeqOne = uint64_t{1} << 32;
  static constexpr uint64_t kSeqMask = ~(kSeqOne - 1);
  static constexpr uint64_t kOpen = uint64_t{1} << 31;
  static constexpr uint64_t kCountMask = kOpen - 1;

  static bool& inside_pool() noexcept {
    thread_local bool inside = false;
    return inside;
  }

  void work() noexcept {
    const FunctionRef<void(size_t)>& task = *job_;
    for (size_t i; (i = next_task_.fetch_add(1, std::memory_order_relaxed)) < n_tasks_;) task(i);
  }

  // Joins the open job of sequence `seq`; false if it is closed or gone.
  bool join(uint64_t seq) noexcept {
    uint64_t s = state_.load(std::memory_order_acquire);
    while ((s & kSeqMask) == seq && (s & kOpen)) {
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) return true;
    }
    return false;
  }

  void leave() noexcept {
    const uint64_t before = state_.fetch_sub(1, std::memory_order_acq_rel);
    if ((before & kCountMask) == 1 && !(before & kOpen)) {  // the last one out of a closed job
      std::lock_guard<std::mutex> lock(mutex_);  // pairs with the waiter's predicate check
      done_.notify_one();
    }
  }

  void worker_loop(uint64_t seen) noexcept {
    inside_pool() = true;
    for (;;) {
      // Spin briefly for the next job, then sleep.
      int spin = 0;
      while ((state_.load(std::memory_order_acquire) & kSeqMask) == seen && spin < kSpinIterations) {
        JIELONG_CPU_RELAX();
        ++spin;
      }
      if ((state_.load(std::memory_order_acquire) & kSeqMask) == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        sleepers_.fetch_add(1, std::memory_order_acq_rel);
        wake_.wait(lock, [&] { return (state_.load(std::memory_order_acquire) & kSeqMask) != seen; });
        sleepers_.fetch_sub(1, std::memory_order_acq_rel);
      }
      seen = state_.load(std::memory_order_acquire) & kSeqMask;
      if (stop_.load(std::memory_order_relaxed)) return;  // set before the sequence bump we saw
      if (!join(seen)) continue;  // woke too late: the caller finished it
      work();
      leave();
    }
  }

  std::vector<std::thread> workers_;
  std::mutex submit_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::atomic<uint64_t> state_{0};
  std::atomic<size_t> next_task_{0};
  std::atomic<int> sleepers_{0};
  const FunctionRef<void(size_t)>* job_ = nullptr;
  size_t n_tasks_ = 0;
  std::atomic<bool> stop_{false};
};

}  // namespace jielong

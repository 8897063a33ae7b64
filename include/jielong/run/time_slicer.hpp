// TimeSlicer: runs a piece of work (a forward pass) in slices of wall-clock
// time, and makes it cancellable from any thread.
//
// The work runs on a stack of its own (a ucontext fiber) and reaches every
// parallel loop through gate(), an Executor in front of the real one. The
// gate skips the remaining tasks once cancelled and, inside a slice, hands
// control back to the caller of start()/resume() when the next round of tasks
// would end past the deadline; resume() continues exactly there. Each task
// writes its own outputs, so the slicing does not change a bit of the result.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

#include <ucontext.h>

#include "jielong/core/executor.hpp"
#include "jielong/core/function_ref.hpp"
#include "jielong/core/status.hpp"

namespace jielong::run {

class TimeSlicer {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr size_t kStack = size_t{1} << 20;  // the fiber's stack

  // On the heap: the contexts point into it and must not move.
  static Result<std::unique_ptr<TimeSlicer>> create(Executor* inner) {
    std::unique_ptr<TimeSlicer> t(new (std::nothrow) TimeSlicer());
    if (!t) return make_error(Code::out_of_memory, "time slicer");
    t->gate_.inner = inner;
    t->gate_.sl = t.get();
    t->stack_.reset(new (std::nothrow) std::byte[kStack]);
    if (!t->stack_) return make_error(Code::out_of_memory, "time slicer: stack for time-sliced work");
    return t;
  }

  // The executor the work's parallel loops go through.
  Executor& gate() noexcept { return gate_; }
  std::atomic<bool>& cancel_flag() noexcept { return cancel_; }
  bool cancelled() const noexcept { return cancel_.load(std::memory_order_acquire); }
  void request_cancel() noexcept { cancel_.store(true, std::memory_order_release); }
  void clear_cancel() noexcept { cancel_.store(false, std::memory_order_release); }

  // A slice lasts until `deadline`: work started or resumed before end_slice()
  // pauses there. Outside a slice the work runs to its end.
  void begin_slice(clock::time_point deadline) noexcept {
    deadline_ = deadline;
    use_deadline_ = true;
    ran_ = false;
  }
  void end_slice() noexcept { use_deadline_ = false; }
  clock::time_point deadline() const noexcept { return deadline_; }

  // True while started work is paused between two slices.
  bool suspended() const noexcept { return suspended_; }

  // Runs job(ctx) on the fiber until it ends or pauses (then suspended()).
  void start(void (*job)(void*), void* ctx) noexcept {
    job_ = job;
    job_ctx_ = ctx;
    getcontext(&fiber_);
    fiber_.uc_stack.ss_sp = stack_.get();
    fiber_.uc_stack.ss_size = kStack;
    fiber_.uc_link = &host_;
    const auto p = reinterpret_cast<uintptr_t>(this);
    makecontext(&fiber_, reinterpret_cast<void (*)()>(&fiber_main), 2, static_cast<unsigned>(p >> 32),
                static_cast<unsigned>(p & 0xffffffffu));
    suspended_ = true;
    resume();
  }

  // Continues paused work until it ends or pauses again.
  void resume() noexcept {
    in_fiber_ = true;
    swapcontext(&host_, &fiber_);
    in_fiber_ = false;
  }

 private:
  TimeSlicer() = default;

  class Gate final : public Executor {
   public:
    Executor* inner = nullptr;
    TimeSlicer* sl = nullptr;
    size_t concurrency() const noexcept override { return inner->concurrency(); }
    void run(size_t n_tasks, FunctionRef<void(size_t)> task) noexcept override {
      if (sl->cancel_.load(std::memory_order_acquire)) return;
      if (!(sl->in_fiber_ && sl->use_deadline_)) {
        // Each task looks at the flag first, so a cancel is seen within one
        // task (a slice of one matmul), not at the end of the loop.
        auto guarded = [&](size_t i) {
          if (!sl->cancel_.load(std::memory_order_relaxed)) task(i);
        };
        return inner->run(n_tasks, guarded);
      }
      // Sliced: hand out the tasks a round at a time and check the clock
      // between rounds, so one large matmul can also be paused.
      // A round is not started when the last one says it would end past the
      // deadline, unless this slice has not run one yet (progress).
      const size_t round = std::max<size_t>(1, inner->concurrency());
      for (size_t b = 0; b < n_tasks; b += round) {
        clock::time_point t0 = clock::now();
        if (sl->ran_ && t0 + sl->round_estimate_ >= sl->deadline_) {
          swapcontext(&sl->fiber_, &sl->host_);  // pause; the next resume() continues here
          t0 = clock::now();
        }
        if (sl->cancel_.load(std::memory_order_acquire)) return;
        auto part = [&](size_t i) { task(b + i); };
        inner->run(std::min(round, n_tasks - b), part);
        sl->ran_ = true;
        // The estimate follows a shorter round gradually and a longer one
        // at most 4× per round: one round stretched by the thread being
        // preempted must not stall the following slices.
        const auto e = sl->round_estimate_;
        auto d = clock::now() - t0;
        if (e != clock::duration::zero()) d = std::min<clock::duration>(d, 4 * e);
        sl->round_estimate_ = std::max<clock::duration>(d, e - e / 4);
      }
    }
  };

  static void fiber_main(unsigned hi, unsigned lo) noexcept {
    auto* sl = reinterpret_cast<TimeSlicer*>((static_cast<uintptr_t>(hi) << 32) | static_cast<uintptr_t>(lo));
    sl->job_(sl->job_ctx_);
    sl->suspended_ = false;  // returns to host_ through uc_link
  }

  std::atomic<bool> cancel_{false};
  Gate gate_;
  ucontext_t host_{}, fiber_{};  // not movable: ucontext_t points into itself
  std::unique_ptr<std::byte[]> stack_;
  void (*job_)(void*) = nullptr;
  void* job_ctx_ = nullptr;
  bool in_fiber_ = false, suspended_ = false, use_deadline_ = false;
  bool ran_ = false;  // this slice has run a round of tasks
  clock::time_point deadline_{};
  clock::duration round_estimate_{};  // time of one round of tasks
};

}  // namespace jielong::run

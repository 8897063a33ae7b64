// An executor that runs the tasks on n fresh threads, each taking every n-th
// task from the end: a different order and a different thread for each task
// than SerialExecutor, so any dependence on either shows up as a changed bit.
#pragma once

#include <cstddef>
#include <thread>
#include <vector>

#include "jielong/core/executor.hpp"

namespace jielong::test {

class StridedThreads final : public Executor {
 public:
  explicit StridedThreads(size_t n) : n_(n) {}
  size_t concurrency() const noexcept override { return n_; }
  void run(size_t n_tasks, FunctionRef<void(size_t)> task) noexcept override {
    std::vector<std::thread> threads;
    for (size_t t = 0; t < n_; ++t)
      threads.emplace_back([&, t] {
        for (size_t i = t; i < n_tasks; i += n_) task(n_tasks - 1 - i);
      });
    for (auto& th : threads) th.join();
  }

 private:
  size_t n_;
};

}  // namespace jielong::test

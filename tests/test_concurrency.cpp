// Several sessions on one shared Model in several threads give exactly the
// results of running them one after another (the Model is immutable; each
// Session owns its cache, scratch and sampler). Run under ThreadSanitizer by
// scripts/sanitize.
#include <doctest/doctest.h>

#include <cstring>
#include <thread>
#include <vector>

#include "jielong/run/session.hpp"
#include "test_model_fixture.hpp"

using namespace jielong;

namespace {

struct Run {
  std::vector<int32_t> tokens;  // sampled ids
  std::vector<float> logits;    // the last step's logits
};

// A session with its own seed and prompt, sampling with temperature so that
// the RNG state matters too.
Run run_session(std::shared_ptr<const model::Model> m, size_t index, size_t threads) {
  run::SessionOptions so;
  so.n_ctx = 48;
  so.n_threads = threads;
  so.sampling.temperature = 0.9f;
  so.sampling.top_k = 20;
  so.sampling.seed = 1000 + index;
  auto s = run::Session::create(std::move(m), so);
  REQUIRE_MESSAGE(s.ok(), s.status().to_string());
  std::vector<int32_t> prompt = {1};
  for (size_t i = 0; i < 4 + index; ++i) prompt.push_back(static_cast<int32_t>((7 * i + 3 * index) % 200 + 2));
  REQUIRE(s->prefill(prompt).is_ok());
  Run r;
  for (int i = 0; i < 12; ++i) {
    auto t = s->step();
    REQUIRE_MESSAGE(t.ok(), t.status().to_string());
    r.tokens.push_back(*t);
  }
  r.logits.assign(s->logits().begin(), s->logits().end());
  return r;
}

}  // namespace

TEST_CASE("sessions on one model in parallel threads == one after another") {
  test::SynthSpec spec;
  spec.matrix_type = DType::Q8_0;
  spec.n_embd = 64;
  spec.n_ff = 128;
  auto m = test::bind_synth(std::make_shared<test::SynthFile>(spec));
  constexpr size_t kSessions = 4;

  std::vector<Run> sequential;
  for (size_t i = 0; i < kSessions; ++i) sequential.push_back(run_session(m, i, 1));

  for (size_t threads_per_session : {1, 2}) {
    CAPTURE(threads_per_session);
    std::vector<Run> parallel(kSessions);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < kSessions; ++i)
      threads.emplace_back([&, i] { parallel[i] = run_session(m, i, threads_per_session); });
    for (auto& t : threads) t.join();
    for (size_t i = 0; i < kSessions; ++i) {
      CAPTURE(i);
      CHECK(parallel[i].tokens == sequential[i].tokens);
      REQUIRE(parallel[i].logits.size() == sequential[i].logits.size());
      CHECK(std::memcmp(parallel[i].logits.data(), sequential[i].logits.data(),
                        sequential[i].logits.size() * sizeof(float)) == 0);
    }
  }
  // Different seeds and prompts really give different runs (the comparison above means something).
  CHECK(sequential[0].tokens != sequential[1].tokens);
}

TEST_CASE("one thread pool shared by sessions in several threads") {
  test::SynthSpec spec;
  spec.n_embd = 64;
  spec.n_ff = 128;
  auto m = test::bind_synth(std::make_shared<test::SynthFile>(spec));
  ThreadPool pool(2);
  auto once = [&](Executor* ex) {
    run::SessionOptions so;
    so.n_ctx = 32;
    so.executor = ex;
    auto s = run::Session::create(m, so);
    REQUIRE(s.ok());
    const std::vector<int32_t> prompt = {1, 4, 9, 16, 25};
    REQUIRE(s->prefill(prompt).is_ok());
    return std::vector<float>(s->logits().begin(), s->logits().end());
  };
  SerialExecutor serial;
  const std::vector<float> expect = once(&serial);
  std::vector<std::vector<float>> got(3);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i) threads.emplace_back([&, i] { got[i] = once(&pool); });
  for (auto& t : threads) t.join();
  for (const auto& g : got) CHECK(g == expect);
}

// What games and apps need from a session: time-sliced advance() resumable
// mid-prompt, cancellation from another thread, save/load to memory and to a
// file (validated), a host executor, an idle pool that does not burn CPU.
// Expected values come from the plain prefill()/step() path of a second
// session: slicing, cancelling and restoring must not change a bit.
#include <doctest/doctest.h>

#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "jielong/run/session.hpp"
#include "jielong/run/session_io.hpp"
#include "test_model_fixture.hpp"

// Its own namespace: tests_run.cpp builds this file with test_session.cpp,
// whose helpers have the same names.
namespace session_games {

using namespace jielong;
using namespace std::chrono_literals;

namespace {

// Wide enough that every matmul is split into several parallel tasks, so a
// forward pass has pause points inside it.
std::shared_ptr<const model::Model> wide_model(uint32_t seed = 1, size_t n_layers = 2) {
  test::SynthSpec spec;
  spec.matrix_type = DType::Q8_0;
  spec.n_vocab = 256;
  spec.n_embd = 256;
  spec.n_ff = 512;
  spec.n_heads = 8;
  spec.n_kv_heads = 4;
  spec.n_layers = n_layers;
  spec.n_ctx = 512;
  spec.seed = seed;
  return test::bind_synth(std::make_shared<test::SynthFile>(spec));
}

sample::SamplerParams sampling() {
  sample::SamplerParams p;
  p.temperature = 0.8f;
  p.top_k = 40;
  p.top_p = 0.95f;
  p.repeat_penalty = 1.1f;
  p.penalty_last_n = 16;
  p.seed = 1234;
  return p;
}

run::Session make(std::shared_ptr<const model::Model> m, size_t n_ctx = 96, size_t n_batch = 16,
                  size_t threads = 1, Executor* ex = nullptr, const sample::SamplerParams& sp = sampling()) {
  run::SessionOptions so;
  so.n_ctx = n_ctx;
  so.n_batch = n_batch;
  so.n_threads = threads;
  so.executor = ex;
  so.sampling = sp;
  auto s = run::Session::create(std::move(m), so);
  REQUIRE_MESSAGE(s.ok(), s.status().to_string());
  return std::move(*s);
}

bool same(std::span<const float> a, std::span<const float> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::vector<int32_t> prompt(size_t n) {
  std::vector<int32_t> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<int32_t>((i * 37 + 11) % 256);
  return p;
}

// prefill + n steps: the reference every other path is compared with.
struct Reference {
  std::vector<int32_t> tokens;
  std::vector<float> logits;
};
Reference reference(std::shared_ptr<const model::Model> m, const std::vector<int32_t>& p, size_t n) {
  run::Session s = make(std::move(m));
  REQUIRE(s.prefill(p).is_ok());
  for (size_t i = 0; i < n; ++i) REQUIRE(s.step().ok());
  return {std::vector<int32_t>(s.tokens().begin(), s.tokens().end()),
          std::vector<float>(s.logits().begin(), s.logits().end())};
}

}  // namespace

TEST_CASE("advance() in slices of any budget == prefill + step, resumable mid-prompt") {
  const auto m = wide_model();
  const auto p = prompt(40);  // 3 chunks of n_batch 16
  const Reference ref = reference(m, p, 12);
  for (auto budget : {0ns, 20000ns, 200000ns, 1000000000ns}) {
    CAPTURE(budget.count());
    run::Session s = make(m);
    REQUIRE(s.queue(p, 12).is_ok());
    size_t calls = 0, prompt_seen = 0, generated = 0;
    bool paused_mid_prompt = false;
    for (;;) {
      auto r = s.advance(budget);
      REQUIRE_MESSAGE(r.ok(), r.status().to_string());
      ++calls;
      prompt_seen += r->prompt_tokens;
      generated += r->generated;
      if (s.busy() && s.queued_prompt() > 0) paused_mid_prompt = true;
      if (r->done) break;
      REQUIRE(calls < 100000);
    }
    CHECK(prompt_seen == p.size());
    CHECK(generated == 12);
    CHECK(std::vector<int32_t>(s.tokens().begin(), s.tokens().end()) == ref.tokens);
    CHECK(same(s.logits(), ref.logits));
    // A zero budget stops at the first pause point of every pass: the prompt
    // must have been left mid-pass at least once.
    if (budget == 0ns) {
      CHECK(paused_mid_prompt);
      CHECK(calls > 3 + 12);
    }
  }
}

TEST_CASE("advance() stops at the stop token without appending it") {
  const auto m = wide_model();
  const auto p = prompt(10);
  const Reference ref = reference(m, p, 6);
  const int32_t stop = ref.tokens[p.size() + 3];  // the 4th generated token
  // The stop token may have been generated earlier too; find its first use.
  size_t first = p.size();
  while (ref.tokens[first] != stop) ++first;
  run::Session s = make(m);
  REQUIRE(s.queue(p, 6, stop).is_ok());
  run::AdvanceResult total;
  for (;;) {
    auto r = s.advance(1s);
    REQUIRE(r.ok());
    total.generated += r->generated;
    total.stopped |= r->stopped;
    if (r->done) break;
  }
  CHECK(total.stopped);
  CHECK(s.position() == first);
  CHECK(std::equal(s.tokens().begin(), s.tokens().end(), ref.tokens.begin()));
}

TEST_CASE("queue() errors leave the session as it was") {
  const auto m = wide_model();
  run::Session s = make(m, 32);
  CHECK(s.queue(prompt(33)).code() == Code::out_of_range);
  const int32_t bad[] = {1, 256};
  CHECK(s.queue(bad).code() == Code::out_of_range);
  CHECK(s.queue({}, 5).code() == Code::invalid_argument);  // nothing to sample from
  CHECK(s.position() == 0);
  CHECK(s.queued_prompt() == 0);
  // While a pass is suspended, the plain calls refuse instead of corrupting it.
  REQUIRE(s.queue(prompt(20)).is_ok());
  REQUIRE(s.advance(0ns).ok());
  REQUIRE(s.busy());
  CHECK(s.prefill(prompt(2)).code() == Code::invalid_argument);
  CHECK(s.step().status().code() == Code::invalid_argument);
  CHECK(!s.fork().ok());
  CHECK(run::SessionIo::save(s).status().code() == Code::invalid_argument);
}

TEST_CASE("cancelling a suspended advance() rewinds to a consistent position") {
  const auto m = wide_model();
  const auto p1 = prompt(20), p2 = prompt(30);
  // Reference: p1 + 4 steps, never touched by p2.
  run::Session ref = make(m);
  REQUIRE(ref.prefill(p1).is_ok());
  for (int i = 0; i < 4; ++i) REQUIRE(ref.step().ok());

  run::Session s = make(m);
  REQUIRE(s.queue(p1, 4).is_ok());
  for (bool done = false; !done;) {
    auto r = s.advance(1s);
    REQUIRE(r.ok());
    done = r->done;
  }
  // Mid-prompt: cancel after some chunks went in; back to before p2.
  REQUIRE(s.queue(p2, 3).is_ok());
  // Advance until the first chunk of p2 is in and the second is running.
  for (int i = 0; i < 100000 && s.position() == ref.position(); ++i) REQUIRE(s.advance(0ns).ok());
  REQUIRE(s.position() > ref.position());  // some of p2 is in
  REQUIRE(s.queued_prompt() > 0);
  s.cancel();
  auto r = s.advance(0ns);
  CHECK(r.status().code() == Code::cancelled);
  CHECK(!s.busy());
  CHECK(s.position() == ref.position());
  CHECK(same(s.logits(), ref.logits()));
  // Mid-token: cancel while generating; the sampler is rewound too.
  REQUIRE(s.queue({}, 2).is_ok());
  REQUIRE(s.advance(0ns).ok());
  REQUIRE(s.busy());
  s.cancel();
  CHECK(s.advance(0ns).status().code() == Code::cancelled);
  CHECK(s.position() == ref.position());
  // And it carries on exactly like the untouched reference.
  for (int i = 0; i < 5; ++i) {
    auto a = s.step(), b = ref.step();
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    CHECK(*a == *b);
  }
  CHECK(same(s.logits(), ref.logits()));
}

TEST_CASE("cancel() from another thread stops a long prefill; the session stays usable") {
  const auto m = wide_model(3, 8);
  const auto p = prompt(400);
  run::Session s = make(m, 512, 8);
  const auto p0 = prompt(5);
  REQUIRE(s.prefill(p0).is_ok());
  const std::vector<float> before(s.logits().begin(), s.logits().end());
  // Time a whole prefill first, then cancel halfway through another one.
  run::Session timing = make(m, 512, 8);
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(timing.prefill(p).is_ok());
  const auto full = std::chrono::steady_clock::now() - t0;
  std::atomic<bool> started{false};
  std::thread canceller([&] {
    while (!started.load()) std::this_thread::yield();
    std::this_thread::sleep_for(full / 2);
    s.cancel();
  });
  started = true;
  const Status st = s.prefill(p);
  canceller.join();
  if (st.is_ok()) {
    MESSAGE("skipped: the prefill finished before the cancel arrived (machine too busy)");
    REQUIRE(s.rewind(p.size()).is_ok());
  } else {
    CHECK(st.code() == Code::cancelled);
  }
  CHECK(s.position() == p0.size());
  CHECK(same(s.logits(), before));
  // Usable: the same prefill now gives what a fresh session gives.
  REQUIRE(s.prefill(p).is_ok());
  run::Session fresh = make(m, 512, 8);
  REQUIRE(fresh.prefill(p0).is_ok());
  REQUIRE(fresh.prefill(p).is_ok());
  CHECK(same(s.logits(), fresh.logits()));
}

TEST_CASE("save/load: memory and file; the restored session continues exactly") {
  const auto m = wide_model();
  const auto p = prompt(25);
  run::Session a = make(m);
  REQUIRE(a.prefill(p).is_ok());
  for (int i = 0; i < 20; ++i) REQUIRE(a.step().ok());  // fills the penalty window (16)
  auto saved = run::SessionIo::save(a);
  REQUIRE_MESSAGE(saved.ok(), saved.status().to_string());
  CHECK(saved->size() == run::SessionIo::saved_size(a));
  const std::string path = "/tmp/jielong_test_session_" + std::to_string(::getpid()) + ".jls";
  REQUIRE(run::SessionIo::save_file(a, path).is_ok());

  run::Session b = make(m), c = make(m);
  REQUIRE(b.prefill(prompt(3)).is_ok());  // whatever it held is replaced
  REQUIRE(run::SessionIo::load(b, *saved).is_ok());
  REQUIRE(run::SessionIo::load_file(c, path).is_ok());
  std::remove(path.c_str());
  CHECK(b.position() == a.position());
  CHECK(same(b.logits(), a.logits()));
  for (int i = 0; i < 15; ++i) {
    auto ta = a.step(), tb = b.step(), tc = c.step();
    REQUIRE(ta.ok());
    REQUIRE(tb.ok());
    REQUIRE(tc.ok());
    CHECK(*ta == *tb);
    CHECK(*ta == *tc);
  }
  CHECK(same(a.logits(), b.logits()));
  CHECK(same(a.logits(), c.logits()));
}

TEST_CASE("save/load keeps mirostat's mu: the restored session continues exactly") {
  // Mirostat steers mu after every draw; a restore that reset mu to 2·tau
  // would pick other tokens within a few steps.
  const auto m = wide_model();
  sample::SamplerParams sp = sampling();
  sp.mirostat = 2;
  sp.mirostat_tau = 3.0f;
  sp.mirostat_eta = 0.5f;
  run::Session a = make(m, 96, 16, 1, nullptr, sp);
  REQUIRE(a.prefill(prompt(10)).is_ok());
  for (int i = 0; i < 10; ++i) REQUIRE(a.step().ok());
  const sample::SamplerChain::State st = a.sampler().state();
  REQUIRE(st.has_mu);
  CHECK(st.mu != doctest::Approx(2.0f * sp.mirostat_tau));  // it has moved
  auto saved = run::SessionIo::save(a);
  REQUIRE_MESSAGE(saved.ok(), saved.status().to_string());
  run::Session b = make(m, 96, 16, 1, nullptr, sp);
  REQUIRE(run::SessionIo::load(b, *saved).is_ok());
  CHECK(b.sampler().state().mu == st.mu);
  for (int i = 0; i < 20; ++i) {
    auto ta = a.step(), tb = b.step();
    REQUIRE(ta.ok());
    REQUIRE(tb.ok());
    CHECK(*ta == *tb);
  }
  CHECK(a.sampler().state().mu == b.sampler().state().mu);
}

TEST_CASE("a cancelled step() leaves the RNG and mirostat's mu as they were") {
  const auto m = wide_model();
  sample::SamplerParams sp = sampling();
  sp.mirostat = 2;
  sp.mirostat_eta = 0.5f;
  run::Session a = make(m, 96, 16, 1, nullptr, sp), b = make(m, 96, 16, 1, nullptr, sp);
  REQUIRE(a.prefill(prompt(10)).is_ok());
  REQUIRE(b.prefill(prompt(10)).is_ok());
  a.cancel();  // no call running: the next one is cancelled
  CHECK(a.step().status().code() == Code::cancelled);
  CHECK(a.position() == 10);
  CHECK(a.sampler().state().mu == b.sampler().state().mu);
  for (int i = 0; i < 8; ++i) {
    auto ta = a.step(), tb = b.step();
    REQUIRE(ta.ok());
    REQUIRE(tb.ok());
    CHECK(*ta == *tb);
  }
}

TEST_CASE("save/load: damaged, truncated or foreign saves are clean errors; the target is untouched") {
  const auto m = wide_model();
  run::Session a = make(m);
  REQUIRE(a.prefill(prompt(12)).is_ok());
  auto saved = run::SessionIo::save(a);
  REQUIRE(saved.ok());
  const std::vector<std::byte> good = *saved;

  run::Session t = make(m);
  REQUIRE(t.prefill(prompt(4)).is_ok());
  const std::vector<float> before(t.logits().begin(), t.logits().end());
  auto untouched = [&] {
    CHECK(t.position() == 4);
    CHECK(same(t.logits(), before));
  };
  // Every truncation length of the header, and a few of the body.
  for (size_t n : {size_t{0}, size_t{7}, size_t{50}, size_t{95}, size_t{103}, good.size() / 2, good.size() - 1}) {
    CAPTURE(n);
    CHECK(!run::SessionIo::load(t, std::span<const std::byte>(good.data(), n)).is_ok());
    untouched();
  }
  // One flipped bit anywhere is caught (checksum, or the header checks).
  for (size_t i : {size_t{0}, size_t{9}, size_t{60}, size_t{100}, good.size() / 2, good.size() - 9, good.size() - 1}) {
    CAPTURE(i);
    std::vector<std::byte> bad = good;
    bad[i] ^= std::byte{0x10};
    const Status st = run::SessionIo::load(t, bad);
    CHECK(!st.is_ok());
    CHECK(!st.message().empty());
    untouched();
  }
  // Another model of the same shape (other weights): refused.
  run::Session other = make(wide_model(2));
  CHECK(run::SessionIo::load(other, good).code() == Code::invalid_argument);
  // A context too small for the saved position.
  run::Session small = make(m, 8);
  CHECK(run::SessionIo::load(small, good).code() == Code::out_of_range);
  // A missing file.
  CHECK(run::SessionIo::load_file(t, "/nonexistent/dir/x.jls").code() == Code::io_error);
  untouched();
}

namespace {
// A host job system: counts the jobs it was given, runs them inline.
struct CountingExecutor final : Executor {
  std::atomic<size_t> jobs{0};
  size_t concurrency() const noexcept override { return 1; }
  void run(size_t n, FunctionRef<void(size_t)> task) noexcept override {
    jobs += 1;
    for (size_t i = 0; i < n; ++i) task(i);
  }
};
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}
}  // namespace

TEST_CASE("a host executor runs the parallel loops and gives the same numbers") {
  const auto m = wide_model();
  CountingExecutor host;
  run::Session s = make(m, 96, 16, 1, &host), own = make(m, 96, 16, 2);
  REQUIRE(s.prefill(prompt(20)).is_ok());
  REQUIRE(own.prefill(prompt(20)).is_ok());
  CHECK(host.jobs.load() > 0);
  CHECK(same(s.logits(), own.logits()));
}

TEST_CASE("an idle thread pool uses (almost) no CPU") {
  // Idle workers spin a few microseconds and then sleep: over one idle
  // second the process should use far less than one core-second. 50 ms
  // leaves room for wake-ups and the test harness.
  ThreadPool pool(2);
  std::atomic<int> hits{0};
  pool.run(4, [&](size_t) { hits++; });
  REQUIRE(hits.load() == 4);
  const double c0 = cpu_seconds();
  std::this_thread::sleep_for(1s);
  const double idle = cpu_seconds() - c0;
  MESSAGE("CPU time of an idle second with a 2-thread pool: " << idle * 1e3 << " ms");
  CHECK(idle < 0.05);
}

}  // namespace session_games

// After a session is created, prefill, step, advance and sampling allocate
// nothing. This binary replaces the global operator new/delete and malloc
// family and counts calls while a flag is armed; the count over 100 steps
// must be zero. The pool's worker threads are counted too (the counter is
// global).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

#include "jielong/run/session.hpp"
#include "test_model_fixture.hpp"

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);
}

namespace {
std::atomic<bool> g_armed{false};
std::atomic<size_t> g_allocs{0};
inline void note() noexcept {
  if (g_armed.load(std::memory_order_relaxed)) g_allocs.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

extern "C" {
void* malloc(size_t n) {
  note();
  return __libc_malloc(n);
}
void* calloc(size_t a, size_t b) {
  note();
  return __libc_calloc(a, b);
}
void* realloc(void* p, size_t n) {
  note();
  return __libc_realloc(p, n);
}
void free(void* p) { __libc_free(p); }
int posix_memalign(void** out, size_t align, size_t n) {
  note();
  void* p = __libc_memalign(align, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
void* aligned_alloc(size_t align, size_t n) {
  note();
  return __libc_memalign(align, n);
}
}

void* operator new(size_t n) {
  note();
  if (void* p = __libc_malloc(n ? n : 1)) return p;
  std::abort();
}
void* operator new[](size_t n) { return operator new(n); }
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  note();
  return __libc_malloc(n ? n : 1);
}
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return operator new(n, std::nothrow); }
void* operator new(size_t n, std::align_val_t a) {
  note();
  if (void* p = __libc_memalign(static_cast<size_t>(a), n ? n : 1)) return p;
  std::abort();
}
void* operator new[](size_t n, std::align_val_t a) { return operator new(n, a); }
void* operator new(size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  note();
  return __libc_memalign(static_cast<size_t>(a), n ? n : 1);
}
void operator delete(void* p) noexcept { __libc_free(p); }
void operator delete[](void* p) noexcept { __libc_free(p); }
void operator delete(void* p, size_t) noexcept { __libc_free(p); }
void operator delete[](void* p, size_t) noexcept { __libc_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { __libc_free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { __libc_free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { __libc_free(p); }

using namespace jielong;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<const model::Model> wide_model() {
  test::SynthSpec spec;
  spec.matrix_type = DType::Q8_0;
  spec.n_vocab = 256;
  spec.n_embd = 256;
  spec.n_ff = 512;
  spec.n_heads = 8;
  spec.n_kv_heads = 4;
  spec.n_ctx = 512;
  return test::bind_synth(std::make_shared<test::SynthFile>(spec));
}

run::Session make(std::shared_ptr<const model::Model> m, size_t threads, bool greedy, model::KvType kv) {
  run::SessionOptions so;
  so.n_ctx = 256;
  so.n_batch = 16;
  so.n_threads = threads;
  so.kv_type = kv;
  if (!greedy) {
    so.sampling.temperature = 0.9f;
    so.sampling.top_k = 40;
    so.sampling.top_p = 0.9f;
    so.sampling.min_p = 0.02f;
    so.sampling.repeat_penalty = 1.1f;
    so.sampling.seed = 7;
  } else {
    so.sampling = sample::SamplerParams::greedy();
  }
  auto s = run::Session::create(std::move(m), so);
  REQUIRE_MESSAGE(s.ok(), s.status().to_string());
  return std::move(*s);
}

struct Armed {
  Armed() {
    g_allocs = 0;
    g_armed = true;
  }
  ~Armed() { g_armed = false; }
};

}  // namespace

TEST_CASE("the counter sees allocations (so a zero below means something)") {
  size_t n;
  {
    Armed a;
    std::vector<int>* v = new std::vector<int>(100);
    void* p = std::malloc(10);
    std::free(p);
    delete v;
    n = g_allocs.load();
  }
  CHECK(n >= 3);
}

TEST_CASE("prefill, 100 steps and sampling allocate nothing") {
  const auto m = wide_model();
  for (size_t threads : {size_t{1}, size_t{2}}) {
    for (bool greedy : {true, false}) {
      for (model::KvType kv : {model::KvType::f32, model::KvType::f16}) {
        CAPTURE(threads);
        CAPTURE(greedy);
        run::Session s = make(m, threads, greedy, kv);
        std::vector<int32_t> prompt(40);
        for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 13 + 5) % 256);
        std::this_thread::sleep_for(10ms);  // let the pool's threads finish starting (their own allocations)
        bool ok = true;
        size_t n;
        {
          Armed a;
          ok &= s.prefill(prompt).is_ok();
          for (int i = 0; i < 100; ++i) ok &= s.step().ok();
          ok &= s.rewind(10).is_ok();
          n = g_allocs.load();
        }
        REQUIRE(ok);
        CHECK(n == 0);
      }
    }
  }
}

TEST_CASE("queue + advance in 0-budget slices over 100 tokens allocate nothing") {
  const auto m = wide_model();
  run::Session s = make(m, 2, false, model::KvType::f16);
  std::vector<int32_t> prompt(40);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 29 + 3) % 256);
  std::this_thread::sleep_for(10ms);
  bool ok = true;
  size_t n, calls = 0, generated = 0;
  {
    Armed a;
    ok &= s.queue(prompt, 100).is_ok();
    for (bool done = false; !done && ok && calls < 1000000; ++calls) {
      auto r = s.advance(0ns);
      ok &= r.ok();
      if (r.ok()) {
        done = r->done;
        generated += r->generated;
      }
    }
    n = g_allocs.load();
  }
  REQUIRE(ok);
  CHECK(generated == 100);
  CHECK(calls > 100);
  CHECK(n == 0);
}

// The C API: this file is the one translation unit with the implementation.
// It drives a model written by model/synth.hpp through the C functions only and
// compares with the C++ Session on the same file; it also compiles jielong.h
// and the C example as C99 with -Wall -Wextra -Werror -pedantic.
#define JIELONG_IMPLEMENTATION
#include "jielong/jielong.h"

#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "jielong/model/synth.hpp"
#include "jielong/run/load.hpp"
#include "jielong/run/generate.hpp"
#include "jielong/run/session.hpp"
#include "support/skip.hpp"
#include "jielong/run/session_io.hpp"

using namespace jielong;

namespace {

const std::string& model_path() {
  static const std::string path = [] {
    std::string p = "/tmp/jielong_test_capi_" + std::to_string(::getpid()) + ".gguf";
    model::SynthSpec spec;
    spec.n_embd = 128;
    spec.n_ff = 256;
    spec.n_layers = 2;
    spec.n_heads = 4;
    spec.n_kv_heads = 2;
    spec.n_vocab = 300;
    spec.n_ctx = 256;
    const Status st = model::write_synth_model(spec, p);
    REQUIRE_MESSAGE(st.is_ok(), st.to_string());
    return p;
  }();
  return path;
}

struct Cleanup {
  ~Cleanup() { std::remove(("/tmp/jielong_test_capi_" + std::to_string(::getpid()) + ".gguf").c_str()); }
} cleanup;

int collect(void* user, const char* piece, size_t n) {
  static_cast<std::string*>(user)->append(piece, n);
  return 0;
}

int shell(const std::string& cmd) {
  const int rc = std::system(cmd.c_str());
  return rc;
}

}  // namespace

TEST_CASE("C API: load, tokenize, prefill, step match the C++ session bit for bit") {
  jl_model* m = nullptr;
  REQUIRE(jl_model_load(model_path().c_str(), nullptr, &m) == JL_OK);
  CHECK(jl_model_n_vocab(m) == 300);
  int32_t ids[64];
  size_t n = 0;
  REQUIRE(jl_tokenize(m, "hello world", 1, ids, 64, &n) == JL_OK);
  REQUIRE(n > 1);
  CHECK(ids[0] == jl_model_bos(m));
  // Too little room: the count needed, and an error.
  size_t need = 0;
  CHECK(jl_tokenize(m, "hello world", 1, ids, 1, &need) == JL_OUT_OF_RANGE);
  CHECK(need == n);
  CHECK(std::strlen(jl_last_error()) > 0);

  jl_session_params p = jl_session_default_params();
  p.n_ctx = 64;
  p.temperature = 0.7f;
  p.seed = 9;
  jl_session* s = nullptr;
  REQUIRE(jl_session_new(m, &p, &s) == JL_OK);
  REQUIRE(jl_prefill(s, ids, n) == JL_OK);
  std::vector<int32_t> c_tokens;
  for (int i = 0; i < 10; ++i) {
    int32_t t = -1;
    REQUIRE(jl_step(s, &t) == JL_OK);
    c_tokens.push_back(t);
  }
  size_t n_vocab = 0;
  const float* logits = jl_session_logits(s, &n_vocab);
  REQUIRE(logits);
  REQUIRE(n_vocab == 300);

  // The same through the C++ API.
  auto lm = run::load(model_path());
  REQUIRE(lm.ok());
  run::SessionOptions so;
  so.n_ctx = 64;
  so.sampling.temperature = 0.7f;
  so.sampling.top_k = 40;
  so.sampling.top_p = 0.95f;
  so.sampling.min_p = 0.05f;
  so.sampling.seed = 9;
  auto cs = run::Session::create(lm->model, so);
  REQUIRE(cs.ok());
  REQUIRE(cs->prefill(std::span<const int32_t>(ids, n)).is_ok());
  for (int i = 0; i < 10; ++i) {
    auto t = cs->step();
    REQUIRE(t.ok());
    CHECK(*t == c_tokens[static_cast<size_t>(i)]);
  }
  CHECK(std::memcmp(cs->logits().data(), logits, n_vocab * sizeof(float)) == 0);
  CHECK(jl_session_position(s) == n + 10);
  CHECK(jl_session_token(s, n) == c_tokens[0]);
  CHECK(jl_session_token(s, 1000) == -1);

  // Errors are codes with messages, never crashes.
  const int32_t bad = 5000;
  CHECK(jl_prefill(s, &bad, 1) == JL_OUT_OF_RANGE);
  CHECK(jl_prefill(nullptr, &bad, 1) == JL_INVALID_ARGUMENT);
  jl_model* missing = reinterpret_cast<jl_model*>(&n);  // must be reset to NULL on failure
  CHECK(jl_model_load("/nonexistent.gguf", nullptr, &missing) != JL_OK);
  CHECK(missing == nullptr);
  CHECK(std::string(jl_last_error()).find("/nonexistent.gguf") != std::string::npos);
  // Read into memory: the same model (the same logits after the same prompt).
  jl_model* copied = nullptr;
  CHECK(jl_model_load_ex(model_path().c_str(), nullptr, 4, &copied) == JL_INVALID_ARGUMENT);
  CHECK(std::string(jl_last_error()).find("unknown flags 4") != std::string::npos);
  jl_model* plain = nullptr;  // both flags together are valid
  CHECK(jl_model_load_ex(model_path().c_str(), nullptr, JL_LOAD_NO_MMAP | JL_LOAD_NO_REPACK, &plain) == JL_OK);
  jl_model_free(plain);
  REQUIRE(jl_model_load_ex(model_path().c_str(), nullptr, JL_LOAD_NO_MMAP, &copied) == JL_OK);
  {
    jl_session* a = nullptr;
    jl_session* b = nullptr;
    const jl_session_params dp = jl_session_default_params();
    REQUIRE(jl_session_new(m, &dp, &a) == JL_OK);
    REQUIRE(jl_session_new(copied, &dp, &b) == JL_OK);
    const int32_t prompt[3] = {1, 2, 3};
    REQUIRE(jl_prefill(a, prompt, 3) == JL_OK);
    REQUIRE(jl_prefill(b, prompt, 3) == JL_OK);
    size_t na = 0, nb = 0;
    const float* la = jl_session_logits(a, &na);
    const float* lb = jl_session_logits(b, &nb);
    REQUIRE(la != nullptr);
    REQUIRE(lb != nullptr);
    REQUIRE(na == static_cast<size_t>(jl_model_n_vocab(m)));
    REQUIRE(nb == na);
    CHECK(std::memcmp(la, lb, na * sizeof(float)) == 0);
    jl_session_free(a);
    jl_session_free(b);
  }
  jl_model_free(copied);
  jl_session_free(s);
  jl_model_free(m);
  jl_model_free(nullptr);
  jl_session_free(nullptr);
}

TEST_CASE("C API: generate with a callback, advance, save/load, cancel, memory plan") {
  jl_model* m = nullptr;
  REQUIRE(jl_model_load(model_path().c_str(), nullptr, &m) == JL_OK);
  jl_session_params p = jl_session_default_params();
  p.n_ctx = 128;
  p.seed = 3;
  p.temperature = 0.9f;
  // Penalties over a window that holds the prompt: a save must carry the
  // prompt tokens generate() accepted, or the restored sessions drift.
  p.repeat_penalty = 1.8f;
  p.penalty_last_n = 32;
  jl_session *a = nullptr, *b = nullptr;
  REQUIRE(jl_session_new(m, &p, &a) == JL_OK);
  REQUIRE(jl_session_new(m, &p, &b) == JL_OK);
  std::string text;
  size_t n_gen = 0;
  REQUIRE(jl_generate(a, "once upon", 12, collect, &text, &n_gen) == JL_OK);
  CHECK(n_gen <= 12);
  CHECK(jl_session_position(a) > n_gen);

  // Save to memory (size query first), load into b: both continue alike.
  size_t size = 0;
  REQUIRE(jl_session_save(a, nullptr, 0, &size) == JL_OK);
  std::vector<unsigned char> buf(size);
  REQUIRE(jl_session_save(a, buf.data(), buf.size(), &size) == JL_OK);
  CHECK(jl_session_save(a, buf.data(), 10, &size) == JL_INVALID_ARGUMENT);
  REQUIRE(jl_session_load(b, buf.data(), buf.size()) == JL_OK);
  buf[buf.size() / 2] ^= 1;
  CHECK(jl_session_load(b, buf.data(), buf.size()) == JL_FORMAT_ERROR);
  CHECK(jl_session_load(b, buf.data(), 17) == JL_FORMAT_ERROR);
  const std::string file = "/tmp/jielong_test_capi_" + std::to_string(::getpid()) + ".jls";
  REQUIRE(jl_session_save_file(a, file.c_str()) == JL_OK);
  jl_session* c = nullptr;
  REQUIRE(jl_session_new(m, &p, &c) == JL_OK);
  REQUIRE(jl_session_load_file(c, file.c_str()) == JL_OK);
  std::remove(file.c_str());
  for (int i = 0; i < 16; ++i) {
    int32_t ta, tb, tc;
    REQUIRE(jl_step(a, &ta) == JL_OK);
    REQUIRE(jl_step(b, &tb) == JL_OK);
    REQUIRE(jl_step(c, &tc) == JL_OK);
    CHECK(ta == tb);
    CHECK(ta == tc);
  }

  // Time-sliced: queue a prompt and 5 tokens, advance in zero budgets.
  int32_t ids[32];
  size_t n = 0;
  REQUIRE(jl_tokenize(m, " and then", 0, ids, 32, &n) == JL_OK);
  const size_t before = jl_session_position(a);
  REQUIRE(jl_queue(a, ids, n, 5, -1) == JL_OK);
  jl_advance_result r{};
  size_t generated = 0, calls = 0;
  while (!r.done && calls++ < 100000) {
    REQUIRE(jl_advance(a, 0, &r) == JL_OK);
    generated += r.generated;
  }
  CHECK(generated == 5);
  CHECK(jl_session_position(a) == before + n + 5);

  // Cancel a queued job: the session is back where the queue started.
  REQUIRE(jl_queue(a, ids, n, 5, -1) == JL_OK);
  REQUIRE(jl_advance(a, 0, &r) == JL_OK);
  jl_cancel(a);
  CHECK(jl_advance(a, 0, &r) == JL_CANCELLED);
  CHECK(jl_session_position(a) == before + n + 5);

  uint64_t plan = 0;
  REQUIRE(jl_memory_plan(model_path().c_str(), 128, 0, &plan) == JL_OK);
  CHECK(plan > 0);
  CHECK(jl_memory_plan("/nonexistent.gguf", 128, 0, &plan) == JL_IO_ERROR);

  jl_session_free(c);
  jl_session_free(b);
  jl_session_free(a);
  jl_model_free(m);
}

TEST_CASE("jielong.h and the C example compile as C99 with -Wall -Wextra -Werror -pedantic") {
  const std::string src = JIELONG_SOURCE_DIR;
  if (shell("command -v gcc >/dev/null 2>&1") != 0) {
    jielong::test::skip("gcc not found");
    return;
  }
  const std::string out = "/tmp/jielong_test_capi_" + std::to_string(::getpid()) + ".o";
  const std::string flags = " -std=c99 -Wall -Wextra -Werror -pedantic -I" + src + "/include -c -o " + out;
  // The header alone, as its own translation unit.
  CHECK(shell("gcc -x c -fsyntax-only -std=c99 -Wall -Wextra -Werror -pedantic " + src + "/include/jielong/jielong.h") == 0);
  CHECK(shell("printf '#include \"jielong/jielong.h\"\\nint main(void) { return jl_version() == 0; }\\n' | gcc -x c" +
            flags + " -") == 0);
  CHECK(shell("gcc" + flags + " " + src + "/examples/c/chat.c") == 0);
  std::remove(out.c_str());
}

TEST_CASE("run::generate puts the prompt in the penalty window that a save carries") {
  // The C++ twin of the C test above: after generate(), a saved and restored
  // session must keep penalising the prompt's tokens exactly as the original.
  auto lm = run::load(model_path());
  REQUIRE(lm.ok());
  REQUIRE(lm->tokenizer);
  run::SessionOptions so;
  so.n_ctx = 128;
  so.sampling.temperature = 0.9f;
  so.sampling.repeat_penalty = 1.8f;
  so.sampling.penalty_last_n = 32;
  so.sampling.seed = 3;
  auto a = run::Session::create(lm->model, so), b = run::Session::create(lm->model, so);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  run::GenerateParams gp;
  gp.max_tokens = 4;
  gp.stop_at_eog = false;
  auto r = run::generate(*a, *lm->tokenizer, "once upon a time there was", gp, [](std::string_view) { return true; });
  REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  auto saved = run::SessionIo::save(*a);
  REQUIRE(saved.ok());
  REQUIRE(run::SessionIo::load(*b, *saved).is_ok());
  for (int i = 0; i < 16; ++i) {
    auto ta = a->step(), tb = b->step();
    REQUIRE(ta.ok());
    REQUIRE(tb.ok());
    CHECK(*ta == *tb);
  }
}

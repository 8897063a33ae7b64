// For a seed: the same tokens and bit-identical logits at every step for any
// thread count, any slice budget, and across a save/load in the middle. The
// reference is a one-thread prefill + step run of the same session type; the
// other runs must match it exactly (memcmp, no tolerance), because the
// parallel loops partition work by size only and every task writes its own
// outputs. With ../shared present, the same holds for stories260K, and
// `jielong eval --threads 1` and `--threads 2` print the same numbers.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "jielong/io/quantize.hpp"
#include "jielong/model/synth.hpp"
#include "jielong/run/load.hpp"
#include "jielong/run/session.hpp"
#include "jielong/run/session_io.hpp"
#include "support/shared.hpp"
#include "test_model_fixture.hpp"

using namespace jielong;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<const model::Model> wide_model(DType t) {
  test::SynthSpec spec;
  spec.matrix_type = t;
  spec.n_vocab = 256;
  spec.n_embd = 256;
  spec.n_ff = 512;
  spec.n_heads = 8;
  spec.n_kv_heads = 4;
  spec.n_layers = 3;
  spec.n_ctx = 512;
  return test::bind_synth(std::make_shared<test::SynthFile>(spec));
}

run::Session make(std::shared_ptr<const model::Model> m, size_t threads, model::KvType kv) {
  run::SessionOptions so;
  so.n_ctx = 128;
  so.n_batch = 16;
  so.n_threads = threads;
  so.kv_type = kv;
  so.sampling.temperature = 1.0f;
  so.sampling.top_k = 50;
  so.sampling.top_p = 0.95f;
  so.sampling.repeat_penalty = 1.15f;
  so.sampling.penalty_last_n = 8;
  so.sampling.seed = 42;
  auto s = run::Session::create(std::move(m), so);
  REQUIRE_MESSAGE(s.ok(), s.status().to_string());
  return std::move(*s);
}

// Tokens and the logits after every step, flattened.
struct Trace {
  std::vector<int32_t> tokens;
  std::vector<float> logits;
  bool operator==(const Trace& o) const {
    return tokens == o.tokens && logits.size() == o.logits.size() &&
           std::memcmp(logits.data(), o.logits.data(), logits.size() * sizeof(float)) == 0;
  }
};

void record(const run::Session& s, Trace& t) { t.logits.insert(t.logits.end(), s.logits().begin(), s.logits().end()); }

constexpr int kSteps = 30;
std::vector<int32_t> prompt() {
  std::vector<int32_t> p(37);
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<int32_t>((i * 71 + 2) % 256);
  return p;
}

Trace run_steps(run::Session s, int save_at = -1) {
  Trace t;
  REQUIRE(s.prefill(prompt()).is_ok());
  record(s, t);
  for (int i = 0; i < kSteps; ++i) {
    if (i == save_at) {
      // Continue in a brand-new session restored from the saved bytes.
      auto bytes = run::SessionIo::save(s);
      REQUIRE(bytes.ok());
      auto fresh = run::Session::create(s.model_ptr(), s.options());
      REQUIRE(fresh.ok());
      REQUIRE(run::SessionIo::load(*fresh, *bytes).is_ok());
      s = std::move(*fresh);
    }
    REQUIRE(s.step().ok());
    record(s, t);
  }
  t.tokens.assign(s.tokens().begin(), s.tokens().end());
  return t;
}

Trace run_sliced(run::Session s, std::chrono::nanoseconds budget) {
  Trace t;
  REQUIRE(s.queue(prompt()).is_ok());
  for (bool done = false; !done;) {
    auto r = s.advance(budget);
    REQUIRE(r.ok());
    done = r->done;
  }
  record(s, t);
  for (int i = 0; i < kSteps; ++i) {
    REQUIRE(s.queue({}, 1).is_ok());
    for (bool done = false; !done;) {
      auto r = s.advance(budget);
      REQUIRE(r.ok());
      done = r->done;
    }
    record(s, t);
  }
  t.tokens.assign(s.tokens().begin(), s.tokens().end());
  return t;
}

}  // namespace

TEST_CASE("same seed → same tokens and logits for 1 or 2 threads, any slice budget, across save/load") {
  for (DType t : {DType::F32, DType::Q8_0, DType::Q4_0}) {
    for (model::KvType kv : {model::KvType::f32, model::KvType::f16}) {
      CAPTURE(dtype_name(t));
      const auto m = wide_model(t);
      const Trace ref = run_steps(make(m, 1, kv));
      REQUIRE(ref.tokens.size() == prompt().size() + kSteps);
      CHECK(run_steps(make(m, 2, kv)) == ref);
      CHECK(run_steps(make(m, 1, kv), 11) == ref);
      CHECK(run_steps(make(m, 2, kv), 0) == ref);
      for (auto budget : {0ns, 30000ns, 1000000000ns}) {
        CAPTURE(budget.count());
        CHECK(run_sliced(make(m, 1, kv), budget) == ref);
        CHECK(run_sliced(make(m, 2, kv), budget) == ref);
      }
    }
  }
}

TEST_CASE("stories260K: 1 and 2 threads, sliced and restored give the same bits") {
  const auto model = test::shared_file("models/stories260K/stories260K.bin");
  const auto tok = test::shared_file("models/stories260K/tok512.bin");
  if (!model || !tok) {
    MESSAGE("skipped: ../shared/models/stories260K not found");
    return;
  }
  auto lm = run::load(*model, *tok);
  REQUIRE_MESSAGE(lm.ok(), lm.status().to_string());
  const Trace ref = run_steps(make(lm->model, 1, model::KvType::f32));
  CHECK(run_steps(make(lm->model, 2, model::KvType::f32), 7) == ref);
  CHECK(run_sliced(make(lm->model, 2, model::KvType::f32), 0ns) == ref);
}

TEST_CASE("a model read into memory (no_mmap) gives the bits of the mapped file") {
  // GGUF, 13 MB: read into a huge-page buffer. And, with ../shared, a
  // llama2.c checkpoint (1 MB: an ordinary aligned buffer).
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("jielong-no-mmap-" + std::to_string(::getpid()) + ".gguf")).string();
  model::SynthSpec spec;  // 256 wide, 4 layers, f32
  spec.n_vocab = 300;
  const Status written = model::write_synth_model(spec, path);
  REQUIRE_MESSAGE(written.is_ok(), written.to_string());
  struct Case { std::string model, tok; };
  std::vector<Case> cases{{path, ""}};
  const auto bin = test::shared_file("models/stories260K/stories260K.bin");
  const auto tok = test::shared_file("models/stories260K/tok512.bin");
  if (bin && tok) cases.push_back({*bin, *tok});
  for (const Case& c : cases) {
    CAPTURE(c.model);
    auto mapped = run::load(c.model, c.tok);
    run::LoadOptions lo;
    lo.no_mmap = true;
    auto copied = run::load(c.model, c.tok, lo);
    REQUIRE_MESSAGE(mapped.ok(), mapped.status().to_string());
    REQUIRE_MESSAGE(copied.ok(), copied.status().to_string());
    CHECK(run_steps(make(copied->model, 1, model::KvType::f32)) ==
          run_steps(make(mapped->model, 1, model::KvType::f32)));
  }
  std::filesystem::remove(path);
}

TEST_CASE("Q4_0/Q8_0/Q4_K repacked into panels at load: the same bits mapped or read, on 1 or 2 threads") {
  // Q8_0 with a tied output: the classifier is repacked and the embedding
  // looks its rows up in the panels, while the file's copy of them is given
  // back (read into memory: zeroed, so a lookup there would show).
  for (const std::string mix : {"q4_0", "q8_0", "q4_k"}) {
    CAPTURE(mix);
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("jielong-panels-" + std::to_string(::getpid()) + "-" + mix + ".gguf")).string();
    model::SynthSpec spec;  // 256 wide, 704 ff, 4 layers
    spec.mix = io::find_quant_mix(mix);
    spec.tied = mix == "q8_0";
    const Status written = model::write_synth_model(spec, path);
    REQUIRE_MESSAGE(written.is_ok(), written.to_string());
    run::LoadOptions copy, plain;
    copy.no_mmap = true;
    plain.no_repack = true;
    auto packed = run::load(path);
    auto packed_copy = run::load(path, "", copy);
    auto unpacked = run::load(path, "", plain);
    REQUIRE_MESSAGE(packed.ok(), packed.status().to_string());
    REQUIRE_MESSAGE(packed_copy.ok(), packed_copy.status().to_string());
    REQUIRE_MESSAGE(unpacked.ok(), unpacked.status().to_string());
    CHECK(unpacked->model->panel_bytes() == 0);
    if (kernels::panels_preferred()) CHECK(packed->model->panel_bytes() > 0);
    const Trace ref = run_steps(make(packed->model, 1, model::KvType::f32));
    CHECK(run_steps(make(packed->model, 2, model::KvType::f32), 11) == ref);
    CHECK(run_steps(make(packed_copy->model, 1, model::KvType::f32)) == ref);
    // Against the file's layout: the same integer block sums, added in
    // another order. The float difference can flip the rounding of an 8-bit
    // activation in a later layer, which moves these logits (largest ~0.9)
    // by ~0.01; a misplaced block or row moves them by a whole term (a
    // panel matrix read as rows: > 0.5). So: within 5% of the largest, and
    // the same token first.
    run::Session a = make(packed->model, 1, model::KvType::f32), b = make(unpacked->model, 1, model::KvType::f32);
    REQUIRE(a.prefill(prompt()).is_ok());
    REQUIRE(b.prefill(prompt()).is_ok());
    float worst = 0, peak = 0;
    size_t best_a = 0, best_b = 0;
    for (size_t i = 0; i < a.logits().size(); ++i) {
      worst = std::max(worst, std::fabs(a.logits()[i] - b.logits()[i]));
      peak = std::max(peak, std::fabs(b.logits()[i]));
      if (a.logits()[i] > a.logits()[best_a]) best_a = i;
      if (b.logits()[i] > b.logits()[best_b]) best_b = i;
    }
    CHECK(worst <= 0.05f * peak);
    CHECK(best_a == best_b);
    // A session saved on one layout restores on the other: the model's
    // fingerprint reads the file's bytes of the embedding, repacked or not.
    auto saved = run::SessionIo::save(a);
    REQUIRE(saved.ok());
    run::Session c = make(unpacked->model, 1, model::KvType::f32);
    const Status restored = run::SessionIo::load(c, *saved);
    CHECK_MESSAGE(restored.is_ok(), restored.to_string());
    std::filesystem::remove(path);
  }
}

namespace {
// KiB of `path`'s mappings resident in this process (/proc/self/smaps), or
// -1 where the system does not say.
long resident_kib(const std::string& path) {
  FILE* f = std::fopen("/proc/self/smaps", "r");
  if (!f) return -1;
  char line[4096];
  bool in = false, found = false;
  long kib = 0;
  while (std::fgets(line, sizeof line, f)) {
    std::string l(line);
    if (!l.empty() && l.back() == '\n') l.pop_back();
    // A mapping's header starts with its address range, "lo-hi", in hex.
    const std::string first = l.substr(0, l.find(' '));
    const bool header = first.find('-') != std::string::npos &&
                        first.find_first_not_of("0123456789abcdef-") == std::string::npos;
    if (header) {
      in = l.size() >= path.size() && l.compare(l.size() - path.size(), path.size(), path) == 0;
      found = found || in;
    } else if (in && l.rfind("Rss:", 0) == 0) {
      kib += std::strtol(l.c_str() + 4, nullptr, 10);
    }
  }
  std::fclose(f);
  return found ? kib : -1;
}
}  // namespace

TEST_CASE("repacking gives back every page of the mapped file that nothing reads any more") {
  // All matrices Q8_0, classifier tied: after the load nothing reads the
  // tensor data from the file (matrices in panels, the embedding looked up
  // in them, norms copied to f32), and the metadata is read (the tokenizer
  // built), so of the mapping only the pages from the start of the tensor
  // data to the first packed matrix and after the last may stay. Without
  // giving those back per step, the pages the slices share, the norms' pages
  // and those mapped around each read stay resident; without giving the
  // metadata back, its pages stay.
  if (!kernels::panels_preferred()) {
    MESSAGE("skipped: this CPU runs no panel kernels, so nothing is repacked");
    return;
  }
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("jielong-pages-" + std::to_string(::getpid()) + ".gguf")).string();
  model::SynthSpec spec;
  spec.mix = io::find_quant_mix("q8_0");
  spec.tied = true;
  spec.n_layers = 6;
  spec.n_vocab = 2000;
  REQUIRE(model::write_synth_model(spec, path).is_ok());
  auto file = io::GgufFile::open(path, MappedFile::Mode::read_only_copy);  // not a second mapping
  REQUIRE(file.ok());
  const std::byte* base = file->bytes().data();
  size_t lo = file->bytes().size(), hi = 0;
  for (const auto& t : file->tensors())
    if (t.n_dims == 2 && kernels::panels::supported(t.type)) {
      const size_t at = static_cast<size_t>(static_cast<const std::byte*>(t.data) - base);
      lo = std::min(lo, at);
      hi = std::max(hi, at + t.n_bytes);
    }
  REQUIRE(lo < hi);
  const size_t page = page_bytes(), size = file->bytes().size();
  auto up = [&](size_t n) { return (n + page - 1) / page * page; };
  const size_t data = file->data_offset();
  // whole pages touching [data, lo) and [hi, size)
  const size_t may_stay = (up(lo) - data / page * page) + (up(size) - hi / page * page);
  REQUIRE(data >= 2 * page);  // the metadata (a 2000-token vocabulary) spans whole pages to give back
  auto model = run::load(path);
  REQUIRE_MESSAGE(model.ok(), model.status().to_string());
  REQUIRE(model->model->panel_bytes() > 0);
  const long kib = resident_kib(path);
  if (kib < 0) {
    MESSAGE("skipped: /proc/self/smaps does not list the mapping");
  } else {
    CAPTURE(kib);
    CAPTURE(size);
    CAPTURE(may_stay);
    CAPTURE(data);
    CAPTURE(lo);
    CHECK(static_cast<size_t>(kib) * 1024 <= may_stay);
    CHECK(may_stay < size / 4);  // the bound means something: most of the file is tensor data
    // And the model still works from the panels alone.
    run::Session s = make(model->model, 1, model::KvType::f32);
    CHECK(s.prefill(prompt()).is_ok());
  }
  std::filesystem::remove(path);
}

#ifdef JIELONG_CLI_PATH
TEST_CASE("jielong eval --threads 1 and --threads 2 print the same numbers") {
  const auto model = test::shared_file("models/stories260K/stories260K.bin");
  const auto tok = test::shared_file("models/stories260K/tok512.bin");
  if (!model || !tok) {
    MESSAGE("skipped: ../shared/models/stories260K not found");
    return;
  }
  auto run_cli = [&](int threads) {
    const std::string cmd = std::string(JIELONG_CLI_PATH) + " eval -m " + *model + " -z " + *tok +
                            " -p 'Once upon a time' --threads " +
                            std::to_string(threads);
    // Standard output only (the numbers); the command must also exit 0.
    std::string out;
    std::FILE* f = popen(cmd.c_str(), "r");
    REQUIRE(f != nullptr);
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
    const int status = pclose(f);
    CAPTURE(threads);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    return out;
  };
  const std::string one = run_cli(1), two = run_cli(2);
  CAPTURE(one);
  CHECK(one.find("\"prompt_top\"") != std::string::npos);
  CHECK(one == two);
}
#endif

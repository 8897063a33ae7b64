// The training loop and its state file: a resumed run equals the run that
// was never stopped (every loss bit and every weight), damaged or hostile
// state files are refused with a reason, a NaN stops a step without touching
// the weights, and a tiny model learns a tiny text to near-zero loss.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <doctest/doctest.h>

#include "jielong/core/hash.hpp"
#include "jielong/io/gguf.hpp"
#include "jielong/train/trainer.hpp"
#include "support/cli.hpp"
#include "support/shared.hpp"

// Its own namespace: tests_train.cpp builds this file with test_train_data.cpp,
// whose helpers have the same names.
namespace train_trainer {

using namespace jielong;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& what) {
  const fs::path p = fs::temp_directory_path() / ("jielong-trainer-" + what + "-" + std::to_string(::getpid()));
  fs::create_directories(p);
  return p;
}

// A shard of `n` tokens repeating `cycle`.
train::TokenShard make_shard(const fs::path& path, const std::vector<int32_t>& cycle, size_t n, uint32_t vocab) {
  auto w = train::ShardWriter::create(path.string(), vocab);
  REQUIRE_MESSAGE(w.ok(), w.status().to_string());
  std::vector<int32_t> tokens(n);
  for (size_t i = 0; i < n; ++i) tokens[i] = cycle[i % cycle.size()];
  REQUIRE(w->append(tokens).is_ok());
  REQUIRE(w->finish().is_ok());
  auto s = train::TokenShard::open(path.string());
  REQUIRE_MESSAGE(s.ok(), s.status().to_string());
  return std::move(*s);
}

std::vector<int32_t> random_cycle(size_t n, uint32_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> c(n);
  for (int32_t& x : c) x = static_cast<int32_t>(rng() % vocab);
  return c;
}

const train::ModelShape kShape{.n_vocab = 48, .n_embd = 32, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                               .n_ff = 48, .n_ctx = 32, .tied_embeddings = true};

train::TrainConfig small_config(size_t steps) {
  train::TrainConfig c;
  c.batch = 3;
  c.seq_len = 16;
  c.accumulation = 2;
  c.steps = steps;
  c.eval_batches = 2;
  c.seed = 7;
  c.optimizer.lr = 3e-3f;
  c.optimizer.warmup_steps = 3;
  c.eval_every = 4;
  return c;
}

std::vector<unsigned char> file_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void write_bytes(const fs::path& p, const std::vector<unsigned char>& b) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}
// Re-seals a state file after an edit, as a hostile writer would.
void reseal(std::vector<unsigned char>& b) {
  const uint64_t sum = fnv1a(b.data(), b.size() - 8);
  std::memcpy(b.data() + b.size() - 8, &sum, 8);
}

}  // namespace

TEST_CASE("resume from a state file equals the uninterrupted run: every loss bit and every weight") {
  const fs::path dir = temp_dir("resume");
  const auto train_shard = make_shard(dir / "train.bin", random_cycle(301, 48, 1), 3000, 48);
  const auto val_shard = make_shard(dir / "val.bin", random_cycle(301, 48, 2), 500, 48);
  const size_t total = 12, stop_at = 5;
  ThreadPool pool(2);

  auto whole = train::Trainer::create(kShape, small_config(total), train_shard, &val_shard);
  REQUIRE_MESSAGE(whole.ok(), whole.status().to_string());
  std::vector<double> losses_whole, val_whole;
  for (size_t s = 0; s < total; ++s) {
    auto st = whole->step(pool);
    REQUIRE_MESSAGE(st.ok(), st.status().to_string());
    CHECK(st->step == s + 1);
    losses_whole.push_back(st->loss);
    if (st->step % 4 == 0) val_whole.push_back(whole->validate(pool));
  }

  std::vector<double> losses_split, val_split;
  {
    auto first = train::Trainer::create(kShape, small_config(total), train_shard, &val_shard);
    REQUIRE(first.ok());
    for (size_t s = 0; s < stop_at; ++s) {
      auto st = first->step(pool);
      REQUIRE(st.ok());
      losses_split.push_back(st->loss);
      if (st->step % 4 == 0) val_split.push_back(first->validate(pool));
    }
    REQUIRE(first->save_state((dir / "run.state").string()).is_ok());
  }
  CHECK_FALSE(fs::exists(dir / "run.state.tmp"));
  auto second = train::Trainer::resume((dir / "run.state").string(), train_shard, &val_shard);
  REQUIRE_MESSAGE(second.ok(), second.status().to_string());
  CHECK(second->step_index() == stop_at);
  CHECK(second->config().accumulation == 2);
  CHECK(second->config().eval_every == 4);
  CHECK(second->shape().n_embd == kShape.n_embd);
  for (size_t s = stop_at; s < total; ++s) {
    auto st = second->step(pool);
    REQUIRE(st.ok());
    losses_split.push_back(st->loss);
    if (st->step % 4 == 0) val_split.push_back(second->validate(pool));
  }
  // Bit for bit: the same batches, the same reductions, the same moments.
  REQUIRE(losses_split.size() == losses_whole.size());
  for (size_t i = 0; i < total; ++i) CHECK_MESSAGE(losses_split[i] == losses_whole[i], "step " << i + 1);
  CHECK(val_split == val_whole);
  const size_t n = whole->layout().size();
  CHECK(std::memcmp(whole->model().params(), second->model().params(), n * sizeof(float)) == 0);
  // The run learnt something, so the comparison compared a moving thing.
  CHECK(losses_whole.back() < losses_whole.front());
  fs::remove_all(dir);
}

TEST_CASE("hostile and damaged state files are refused with a reason") {
  const fs::path dir = temp_dir("hostile");
  const auto train_shard = make_shard(dir / "train.bin", random_cycle(101, 48, 3), 1000, 48);
  auto t = train::Trainer::create(kShape, small_config(4), train_shard, nullptr);
  REQUIRE(t.ok());
  ThreadPool pool(1);
  REQUIRE(t->step(pool).ok());
  const fs::path good = dir / "good.state", bad = dir / "bad.state";
  REQUIRE(t->save_state(good.string()).is_ok());
  const std::vector<unsigned char> bytes = file_bytes(good);
  REQUIRE(bytes.size() == train::Trainer::kStateHeaderBytes + 3 * t->layout().size() * sizeof(float) + 8);
  REQUIRE(train::Trainer::resume(good.string(), train_shard, nullptr).ok());

  auto refused = [&](const std::vector<unsigned char>& b, const std::string& why) {
    write_bytes(bad, b);
    auto r = train::Trainer::resume(bad.string(), train_shard, nullptr);
    REQUIRE_FALSE(r.ok());
    INFO(r.status().to_string());
    CHECK(r.status().message().find(why) != std::string::npos);
  };
  SUBCASE("missing") {
    auto r = train::Trainer::resume((dir / "absent.state").string(), train_shard, nullptr);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::io_error);
  }
  SUBCASE("truncated anywhere") {
    for (size_t len : {size_t{0}, size_t{7}, size_t{16}, train::Trainer::kStateHeaderBytes, bytes.size() / 2,
                       bytes.size() - 1})
      refused(std::vector<unsigned char>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(len)),
              len < train::Trainer::kStateHeaderBytes + 8 ? "truncated" : "checksum");
  }
  SUBCASE("bad magic") {
    auto b = bytes;
    b[0] = 'X';
    refused(b, "bad magic");
  }
  SUBCASE("newer version") {
    auto b = bytes;
    b[8] = 3;
    refused(b, "version 3");
  }
  SUBCASE("other training data") {
    const auto other = make_shard(dir / "other.bin", random_cycle(101, 48, 9), 1000, 48);
    auto r = train::Trainer::resume(good.string(), other, nullptr);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("training data differs") != std::string::npos);
  }
  SUBCASE("answer masks for a plain run") {
    std::vector<int32_t> ones(1000, 1);
    auto mask = train::TokenShard::from_tokens(ones, 2);
    REQUIRE(mask.ok());
    auto r = train::Trainer::resume(good.string(), train_shard, nullptr, 0, {&*mask, nullptr});
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("plain language modelling") != std::string::npos);
  }

  SUBCASE("one weight bit flipped") {
    auto b = bytes;
    b[train::Trainer::kStateHeaderBytes + 100] ^= 0x10;
    refused(b, "checksum");
  }
  // Header fields (u64 after the first 16 bytes) rewritten and resealed.
  auto sealed_field = [&](size_t field, uint64_t value) {
    auto b = bytes;
    std::memcpy(b.data() + 16 + 8 * field, &value, 8);
    reseal(b);
    return b;
  };
  SUBCASE("a shape that needs more weights than the file holds") { refused(sealed_field(1, 4096), "does not fit"); }
  SUBCASE("a different but small shape") { refused(sealed_field(5, 40), "needs"); }
  SUBCASE("an absurd batch") { refused(sealed_field(8, uint64_t{1} << 40), "too large"); }
  SUBCASE("zero heads") { refused(sealed_field(3, 0), "heads"); }
  SUBCASE("a step past the end of the run") { refused(sealed_field(16, 99), "past the run"); }
  SUBCASE("a version 1 file (before the interval, masks and data checksum) still loads") {
    auto b = bytes;
    b[8] = 1;
    const size_t v1_fields_end = 16 + 8 * train::Trainer::kStateFieldsV1;
    b.erase(b.begin() + static_cast<std::ptrdiff_t>(v1_fields_end),
            b.begin() + static_cast<std::ptrdiff_t>(v1_fields_end + 8 * 3));
    reseal(b);
    write_bytes(bad, b);
    auto r = train::Trainer::resume(bad.string(), train_shard, nullptr);
    REQUIRE_MESSAGE(r.ok(), r.status().to_string());
    CHECK(r->config().eval_every == 100);
    CHECK(r->step_index() == 1);
    CHECK(std::memcmp(r->model().params(), t->model().params(), t->layout().size() * sizeof(float)) == 0);
  }
  SUBCASE("an evaluation interval of zero") { refused(sealed_field(18, 0), "evaluation interval"); }
  fs::remove_all(dir);
}

TEST_CASE("a NaN stops the step with a message and leaves weights, moments and data position as they were") {
  const fs::path dir = temp_dir("nan");
  const auto train_shard = make_shard(dir / "train.bin", random_cycle(101, 48, 4), 1000, 48);
  auto t = train::Trainer::create(kShape, small_config(10), train_shard, nullptr);
  REQUIRE(t.ok());
  SerialExecutor ex;
  REQUIRE(t->step(ex).ok());
  REQUIRE(t->save_state((dir / "before.state").string()).is_ok());
  // One poisoned weight of the first layer's query projection: every logit
  // downstream of it is NaN.
  float* wq = t->layout().view(t->model().params()).layers[0].wq;
  const float kept = wq[5];
  wq[5] = std::nanf("");
  auto st = t->step(ex);
  REQUIRE_FALSE(st.ok());
  INFO(st.status().to_string());
  CHECK(st.status().message().find("loss is NaN") != std::string::npos);
  CHECK(st.status().message().find("weights of step 1") != std::string::npos);
  CHECK(t->step_index() == 1);
  wq[5] = kept;
  REQUIRE(t->save_state((dir / "after.state").string()).is_ok());
  CHECK(file_bytes(dir / "before.state") == file_bytes(dir / "after.state"));
  // Infinite weights: the loss is NaN or infinite, never a silent update.
  wq[5] = INFINITY;
  auto inf = t->step(ex);
  REQUIRE_FALSE(inf.ok());
  CHECK(inf.status().message().find("stopped with the weights of step 1") != std::string::npos);
  wq[5] = kept;
  CHECK(t->step(ex).ok());
  fs::remove_all(dir);
}

TEST_CASE("a tiny model learns a tiny text to near-zero loss") {
  // A cycle of 40 distinct tokens: each token determines the next, so a
  // perfect model has zero loss; an untrained one ln(48) = 3.87.
  const fs::path dir = temp_dir("overfit");
  std::vector<int32_t> cycle(40);
  std::iota(cycle.begin(), cycle.end(), 4);
  std::shuffle(cycle.begin(), cycle.end(), std::mt19937(11));
  const auto train_shard = make_shard(dir / "train.bin", cycle, 2000, 48);
  const auto val_shard = make_shard(dir / "val.bin", cycle, 400, 48);
  train::TrainConfig c = small_config(150);
  c.accumulation = 1;
  c.batch = 4;
  c.optimizer.lr = 1e-2f;
  c.optimizer.warmup_steps = 10;
  auto t = train::Trainer::create(kShape, c, train_shard, &val_shard);
  REQUIRE(t.ok());
  ThreadPool pool(2);
  const double val0 = t->validate(pool);
  CHECK(val0 == doctest::Approx(std::log(48.0)).epsilon(0.05));
  double loss = 0;
  while (t->step_index() < c.steps) {
    auto st = t->step(pool);
    REQUIRE(st.ok());
    loss = st->loss;
  }
  const double val = t->validate(pool);
  MESSAGE("loss " << val0 << " -> train " << loss << ", validation " << val);
  CHECK(loss < 0.02);
  CHECK(val < 0.02);
  fs::remove_all(dir);
}

TEST_CASE("memory estimate: parameters, gradients, two moments and the activations") {
  const fs::path dir = temp_dir("memory");
  const auto train_shard = make_shard(dir / "train.bin", random_cycle(101, 48, 5), 1000, 48);
  auto t = train::Trainer::create(kShape, small_config(4), train_shard, nullptr);
  REQUIRE(t.ok());
  // Tied 48 x 32 embedding, final norm, per layer two norms, q (32x32),
  // k and v (16x32 each with 2 kv heads of 8), output (32x32), gate, up
  // (48x32) and down (32x48): counted by hand.
  const size_t per_layer = 2 * 32 + 32 * 32 + 2 * 16 * 32 + 32 * 32 + 3 * 48 * 32;
  const size_t params = 48 * 32 + 32 + 2 * per_layer;
  CHECK(t->layout().size() == params);
  const train::MemoryEstimate m = t->memory();
  CHECK(m.params == params * 4);
  CHECK(m.grads == params * 4);
  CHECK(m.moments == 2 * params * 4);
  CHECK(m.activations == t->model().activation_floats() * 4);
  CHECK(m.total() == m.params + m.grads + m.moments + m.activations);
  fs::remove_all(dir);
}

#ifdef JIELONG_CLI_PATH
namespace {

std::string slurp_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// Every element of an XML text closed in order (<a ...> ... </a> or <a .../>);
// the names of the elements seen, in order.
std::vector<std::string> xml_elements(const std::string& xml, bool& well_formed) {
  std::vector<std::string> open, seen;
  well_formed = true;
  for (size_t i = xml.find('<'); i != std::string::npos; i = xml.find('<', i + 1)) {
    const size_t end = xml.find('>', i);
    if (end == std::string::npos) return well_formed = false, seen;
    const std::string tag = xml.substr(i + 1, end - i - 1);
    if (tag.empty()) return well_formed = false, seen;
    if (tag[0] == '/') {
      if (open.empty() || open.back() != tag.substr(1)) return well_formed = false, seen;
      open.pop_back();
      continue;
    }
    const std::string name = tag.substr(0, tag.find_first_of(" /"));
    seen.push_back(name);
    if (tag.back() != '/') open.push_back(name);
  }
  well_formed = well_formed && open.empty();
  return seen;
}

// The points of <polyline class="NAME" ... points="x,y x,y"/>.
std::vector<std::pair<double, double>> polyline_points(const std::string& svg, const std::string& name) {
  std::vector<std::pair<double, double>> out;
  const size_t at = svg.find("<polyline class=\"" + name + "\"");
  if (at == std::string::npos) return out;
  const size_t p = svg.find("points=\"", at) + 8;
  std::istringstream in(svg.substr(p, svg.find('"', p) - p));
  std::string pair;
  while (in >> pair) {
    const size_t comma = pair.find(',');
    out.emplace_back(std::stod(pair.substr(0, comma)), std::stod(pair.substr(comma + 1)));
  }
  return out;
}

}  // namespace

TEST_CASE("jielong train end to end: dry run, training, CSV, SVG, checkpoint and resume") {
  using test::run_jielong;
  test::TempDir dir;
  std::string text;
  for (int i = 0; i < 80; ++i)
    text += "Paragraph " + std::to_string(i) + " says the quick brown fox jumps over " + std::to_string(i * 7) +
            " lazy dogs.\n\n";
  {
    std::ofstream(dir.file("in.txt")) << text;
  }
  const std::string tok = dir.file("tok.gguf"), data = dir.file("data"), out = dir.file("m.gguf"),
                    log = dir.file("m.csv");
  REQUIRE(run_jielong("train-tokenizer --vocab-size 300 -o " + tok + " " + dir.file("in.txt")).code == 0);
  REQUIRE(run_jielong("prepare-data -m " + tok + " -o " + data + " --validation 0.2 " + dir.file("in.txt")).code == 0);
  const std::string shape = " --embd 32 --layers 2 --heads 4 --kv-heads 2 --ff 64 --ctx 16 --batch 2 -t 2";

  SUBCASE("dry run: the parameter count and memory, counted by hand") {
    const test::Run r = run_jielong("train --data " + data + " -m " + tok + " --dry-run" + shape, true);
    INFO(r.out);
    REQUIRE(r.code == 0);
    // 300 x 32 tied embedding + final norm; per layer 2 norms, q and o 32x32,
    // k and v 16x32, gate and up 64x32, down 32x64.
    const size_t params = 300 * 32 + 32 + 2 * (2 * 32 + 2 * 32 * 32 + 2 * 16 * 32 + 3 * 64 * 32);
    CHECK(r.out.find("model: " + std::to_string(params) + " parameters") != std::string::npos);
    CHECK(r.out.find("2 moments") != std::string::npos);
    CHECK(r.out.find("activations") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(out));
  }
  SUBCASE("a recipe file holds the flags; the command line after it overrides them") {
    {
      std::ofstream(dir.file("r.recipe")) << "# a comment --embd 999\n--embd 48 --layers 3   # trailing comment\n"
                                             "--heads 4\t--kv-heads 2\n--ff 64 --ctx 16 --batch 2\n";
    }
    const test::Run r =
        run_jielong("train --data " + data + " -m " + tok + " --dry-run --recipe " + dir.file("r.recipe") + " --layers 2",
                    true);
    INFO(r.out);
    REQUIRE(r.code == 0);
    CHECK(r.out.find("embd 48, layers 2, heads 4/2 kv, ff 64, ctx 16") != std::string::npos);
    const test::Run missing = run_jielong("train --data " + data + " -m " + tok + " --dry-run --recipe " +
                                              dir.file("absent.recipe"),
                                          true);
    CHECK(missing.code == 1);
    CHECK(missing.out.find("absent.recipe") != std::string::npos);
  }
  SUBCASE("training writes the model, state, CSV and SVG; resume continues the log") {
    const test::Run r = run_jielong("train --data " + data + " -m " + tok + " -o " + out + shape +
                                        " --steps 12 --warmup 2 --lr 3e-3 --eval-every 4 --log " + log + " --q8 " +
                                        dir.file("m.q8_0.gguf"),
                                    true);
    INFO(r.out);
    REQUIRE(r.code == 0);
    CHECK(r.out.find("step 12/12") != std::string::npos);
    CHECK(r.out.find("tok/s") != std::string::npos);
    for (const char* f : {"m.gguf", "m.gguf.state", "m.q8_0.gguf", "m.csv", "m.svg"})
      CHECK_MESSAGE(std::filesystem::exists(dir.file(f)), f);
    CHECK_FALSE(std::filesystem::exists(out + ".tmp"));
    CHECK(run_jielong("info " + out).code == 0);
    CHECK(run_jielong("info " + dir.file("m.q8_0.gguf")).code == 0);

    // CSV: the header, one row per step, a validation loss at steps 4, 8, 12.
    std::istringstream csv(slurp_text(log));
    std::string line;
    std::getline(csv, line);
    CHECK(line == "step,loss,val_loss,lr,tokens_per_s");
    size_t rows = 0;
    std::vector<double> val;
    while (std::getline(csv, line)) {
      ++rows;
      unsigned step = 0;
      double loss = 0, lr = 0, rate = 0;
      char v[32] = "";
      const int got = std::sscanf(line.c_str(), "%u,%lf,%31[^,],%lf,%lf", &step, &loss, v, &lr, &rate);
      const bool has_val = got == 5;
      if (!has_val) CHECK(std::sscanf(line.c_str(), "%u,%lf,,%lf,%lf", &step, &loss, &lr, &rate) == 4);
      CHECK(step == rows);
      CHECK(std::isfinite(loss));
      CHECK(lr > 0);
      CHECK(rate > 0);
      CHECK(has_val == (step % 4 == 0));
      if (has_val) val.push_back(std::stod(v));
    }
    CHECK(rows == 12);
    REQUIRE(val.size() == 3);
    CHECK(val.back() < val.front());

    // SVG: well formed, a train curve of 12 points and a validation curve of
    // 3, inside the picture.
    const std::string svg = slurp_text(dir.file("m.svg"));
    bool ok = false;
    const std::vector<std::string> elements = xml_elements(svg, ok);
    CHECK(ok);
    REQUIRE_FALSE(elements.empty());
    CHECK(elements.front() == "svg");
    const auto train_pts = polyline_points(svg, "train"), val_pts = polyline_points(svg, "validation");
    CHECK(train_pts.size() == 12);
    CHECK(val_pts.size() == 3);
    for (const auto& [x, y] : train_pts) {
      CHECK(x >= 0);
      CHECK(x <= 800);
      CHECK(y >= 0);
      CHECK(y <= 480);
    }
    // The steps climb from left to right.
    for (size_t i = 1; i < train_pts.size(); ++i) CHECK(train_pts[i].first > train_pts[i - 1].first);

    // Resume with a later end: the log keeps its 12 rows and grows to 20,
    // validating every 4 steps as the saved run did (no --eval-every given;
    // the default of 100 would validate at step 20 only).
    const test::Run more = run_jielong("train --data " + data + " -m " + tok + " -o " + out + " --resume " + out +
                                           ".state --steps 20 -t 1 --log " + log,
                                       true);
    INFO(more.out);
    REQUIRE(more.code == 0);
    size_t lines = 0;
    std::istringstream again(slurp_text(log));
    while (std::getline(again, line)) ++lines;
    CHECK(lines == 1 + 20);
    CHECK(polyline_points(slurp_text(dir.file("m.svg")), "validation").size() == 5);
  }
  SUBCASE("raw text as --data: cleaned, split and encoded in memory, with prepare-data's report") {
    const test::Run r = run_jielong("train --data " + dir.file("in.txt") + " -m " + tok + " -o " + out + shape +
                                        " --steps 4 --validation 0.2",
                                    true);
    INFO(r.out);
    REQUIRE(r.code == 0);
    CHECK(r.out.find("bytes removed: too short") != std::string::npos);  // the filter report
    CHECK(r.out.find("validation tokens") != std::string::npos);
    CHECK(r.out.find("0 validation tokens") == std::string::npos);
    CHECK(std::filesystem::exists(out));
  }
  SUBCASE("instruction tuning: --init from a model, JSON lines with the loss on the answers, resume") {
    const std::string ctok = dir.file("ctok.gguf"), base = dir.file("base.gguf"), chat = dir.file("chat.gguf"),
                      jsonl = dir.file("chat.jsonl");
    REQUIRE(run_jielong("train-tokenizer --vocab-size 300 --special '<|im_start|>' --special '<|im_end|>' -o " + ctok +
                        " " + dir.file("in.txt"))
                .code == 0);
    const std::string base_shape = " --embd 32 --layers 2 --heads 4 --kv-heads 2 --ff 64 --ctx 48 --batch 2 -t 2";
    REQUIRE(run_jielong("train --data " + dir.file("in.txt") + " -m " + ctok + " -o " + base + base_shape +
                        " --steps 2 --validation 0.2")
                .code == 0);
    {
      std::ofstream j(jsonl);
      for (int i = 0; i < 60; ++i)
        j << "{\"prompt\": \"Count " << i << "\", \"answer\": \"" << i << " lazy dogs\"}\n";
    }
    // A learning rate of 0: the model written is the starting one, so the
    // weights came from --init (and its shape, with no shape flags given).
    const test::Run same = run_jielong("train --data " + jsonl + " --init " + base + " -o " + chat +
                                           " --batch 2 -t 2 --steps 2 --lr 0 --warmup 0 --validation 0.2",
                                       true);
    INFO(same.out);
    REQUIRE(same.code == 0);
    CHECK(same.out.find("answer tokens") != std::string::npos);
    CHECK(same.out.find("ctx 48") != std::string::npos);
    auto a = io::GgufFile::open(base), b = io::GgufFile::open(chat);
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    for (const io::GgufTensorInfo& t : a->tensors()) {
      const io::GgufTensorInfo* u = b->find_tensor(t.name);
      REQUIRE(u != nullptr);
      CHECK_MESSAGE((u->n_bytes == t.n_bytes && std::memcmp(u->data, t.data, t.n_bytes) == 0), t.name);
    }
    // Learning: the answer loss falls; then a resume continues the run.
    const test::Run learn = run_jielong("train --data " + jsonl + " --init " + base + " -o " + chat +
                                            " --batch 2 -t 2 --steps 6 --lr 1e-2 --warmup 1 --eval-every 3 "
                                            "--validation 0.2 --log " + dir.file("chat.csv"),
                                        true);
    INFO(learn.out);
    REQUIRE(learn.code == 0);
    const test::Run more = run_jielong("train --data " + jsonl + " -m " + ctok + " -o " + chat + " --resume " + chat +
                                           ".state --steps 9 -t 1 --validation 0.2",
                                       true);
    INFO(more.out);
    REQUIRE(more.code == 0);
    CHECK(more.out.find("step 9/9") != std::string::npos);
    // Plain shards cannot continue an instruction run.
    const test::Run wrong = run_jielong("train --data " + data + " -m " + ctok + " -o " + chat + " --resume " + chat +
                                            ".state --steps 12",
                                        true);
    CHECK(wrong.code == 1);
  }
  SUBCASE("bad input names what is wrong") {
    const test::Run no_tok = run_jielong("train --data " + data + " -o " + out, true);
    CHECK(no_tok.code == 1);
    CHECK(no_tok.out.find("-m TOKENIZER.gguf") != std::string::npos);
    const test::Run vocab = run_jielong("train --data " + data + " -m " + tok + " -o " + out + " --vocab-size 512", true);
    CHECK(vocab.code == 1);
    CHECK(vocab.out.find("differs from the tokenizer's 300") != std::string::npos);
    {
      std::ofstream(dir.file("junk.state")) << "not a state";
    }
    const test::Run junk =
        run_jielong("train --data " + data + " -m " + tok + " -o " + out + " --resume " + dir.file("junk.state"), true);
    CHECK(junk.code == 1);
    CHECK(junk.out.find("training state") != std::string::npos);
  }
}
#endif

}  // namespace train_trainer

// The reasoning model's arithmetic (examples/arithmetic/arithmetic.hpp):
// scratchpads worked out by hand, the held-out split, answer parsing, and a
// tiny model that learns one-digit addition in a few seconds of training
// (the shipped model's recipe in miniature).
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "../examples/arithmetic/arithmetic.hpp"
#include "jielong/core/executor.hpp"
#include "jielong/io/gguf.hpp"
#include "jielong/io/gguf_writer.hpp"
#include "jielong/run/generate.hpp"
#include "jielong/run/load.hpp"
#include "jielong/text/gguf_vocab.hpp"
#include "jielong/train/export.hpp"
#include "jielong/train/shards.hpp"
#include "jielong/train/trainer.hpp"
#include "support/shared.hpp"

using namespace jielong;

TEST_CASE("arithmetic: scratchpads worked out by hand") {
  using arith::Format;
  using arith::Op;
  // 87+88: 7+8 = 15 (5, carry 1), 8+8+1 = 17 (7, carry 1) -> 175.
  CHECK(arith::document({Op::add, 87, 88}, Format::scratchpad) == "87+88:\n7+8+0=5 c1\n8+8+1=7 c1\n=175\n");
  CHECK(arith::document({Op::add, 87, 88}, Format::direct) == "87+88=175\n");
  // 5+1234: the shorter operand's missing digits are zeros.
  CHECK(arith::completion({Op::add, 5, 1234}, Format::scratchpad) ==
        "5+4+0=9 c0\n0+3+0=3 c0\n0+2+0=2 c0\n0+1+0=1 c0\n=1239\n");
  // 811-453: 1-3 borrows (11-3 = 8), 1-5-1 borrows (11-6 = 5), 8-4-1 = 3.
  CHECK(arith::completion({Op::sub, 811, 453}, Format::scratchpad) == "1-3-0=8 b1\n1-5-1=5 b1\n8-4-1=3 b0\n=358\n");
  // 18-60 is -(60-18): 0-8 borrows (10-8 = 2), 6-1-1 = 4.
  CHECK(arith::completion({Op::sub, 18, 60}, Format::scratchpad) == "-(60-18)\n0-8-0=2 b1\n6-1-1=4 b0\n=-42\n");
  // 1000-999 = 1: leading zeros are not written.
  CHECK(arith::completion({Op::sub, 1000, 999}, Format::direct) == "1\n");
  CHECK(arith::answer_of(arith::completion({Op::sub, 1000, 999}, Format::scratchpad), Format::scratchpad) == "1");
  // 93*12: 93*2 = 186, 93*1 = 93, then 186 + 930 = 1116.
  CHECK(arith::completion({Op::mul, 93, 12}, Format::scratchpad) ==
        "3*2+0=6 c0\n9*2+0=8 c1\n=186\n3*1+0=3 c0\n9*1+0=9 c0\n=93\n186+930:\n6+0+0=6 c0\n8+3+0=1 c1\n1+9+1=1 c1\n=1116\n");
  CHECK(arith::completion({Op::mul, 7, 3}, Format::scratchpad) == "7*3+0=1 c2\n=21\n");
}

TEST_CASE("arithmetic: answers parsed from completions") {
  using arith::Format;
  CHECK(arith::answer_of("579\n", Format::direct) == "579");
  CHECK(arith::answer_of("579", Format::direct) == std::nullopt);  // not finished
  CHECK(arith::answer_of("3+6+0=9 c0\n=9\n", Format::scratchpad) == "9");
  CHECK(arith::answer_of("=186\n=93\n=1116\n", Format::scratchpad) == "1116");  // the last '=' line
  CHECK(arith::answer_of("=186\n=11", Format::scratchpad) == "186");            // an unfinished line is no answer
  CHECK(arith::answer_of("7+8+0=5 c1\n", Format::scratchpad) == std::nullopt);
}

TEST_CASE("arithmetic: training data never holds a held-out problem; a tenth is held out") {
  // Read the operands back from each document's first line.
  size_t docs = 0;
  std::set<std::pair<uint64_t, uint64_t>> seen;
  arith::DataOptions o;
  o.documents = 3000;
  arith::generate_training(o, [&](const std::string& d) {
    const size_t op_at = d.find_first_of("+-*", 1);  // the first '-' of "-(..." is not at 0: documents start with a digit
    REQUIRE(op_at != std::string::npos);
    const char c = d[op_at];
    const arith::Op op = c == '+' ? arith::Op::add : c == '-' ? arith::Op::sub : arith::Op::mul;
    const uint64_t a = std::strtoull(d.c_str(), nullptr, 10), b = std::strtoull(d.c_str() + op_at + 1, nullptr, 10);
    CHECK_FALSE(arith::held_out({op, a, b}));
    CHECK(d.back() == '\n');
    seen.insert({a, b});
    ++docs;
  });
  CHECK(docs == 3000);
  CHECK(seen.size() > 2000);  // mostly distinct problems
  size_t held = 0;
  for (uint64_t a = 0; a < 100; ++a)
    for (uint64_t b = 0; b < 100; ++b) held += arith::held_out({arith::Op::add, a, b});
  CHECK(held > 900);  // 10% of 10000, within a few standard deviations (sd 30)
  CHECK(held < 1100);
  for (const arith::Problem& p : arith::held_out_problems(arith::Op::mul, 2, 50, 3)) {
    CHECK(arith::held_out(p));
    CHECK(p.a >= 10);
    CHECK(p.a <= 99);
  }
}

TEST_CASE("arithmetic: a tiny model learns one-digit addition in seconds") {
  // One-digit addition, direct answers only, all 100 problems in training:
  // a model that learnt the table answers them; an untrained one gets ~1/19
  // (the sums 0..18).
  test::TempDir dir;
  auto vocab = arith::byte_vocab();
  REQUIRE(vocab.ok());
  auto tok = text::Tokenizer::create(*vocab);
  REQUIRE(tok.ok());
  std::vector<int32_t> ids;
  uint64_t docs = 0;
  std::mt19937_64 rng(5);
  for (int n = 0; n < 3000; ++n) {
    const arith::Problem p = arith::sample(arith::Op::add, 1, rng);
    REQUIRE(tok->encode_append(arith::document(p, arith::Format::direct), {.add_bos = true, .parse_special = false}, ids)
                .is_ok());
    ++docs;
  }
  auto shard = train::TokenShard::from_tokens(ids, 257, static_cast<uint32_t>(tok->bos()), docs);
  REQUIRE(shard.ok());
  const train::ModelShape shape{.n_vocab = 257, .n_embd = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 4,
                                .n_ff = 128, .n_ctx = 32, .tied_embeddings = true};
  train::TrainConfig c;
  c.batch = 8;
  c.seq_len = 32;
  c.steps = 600;
  c.seed = 3;
  c.optimizer.lr = 3e-3f;
  c.optimizer.warmup_steps = 20;
  auto t = train::Trainer::create(shape, c, *shard, nullptr);
  REQUIRE(t.ok());
  ThreadPool pool(2);
  while (t->step_index() < c.steps) REQUIRE(t->step(pool).ok());

  io::GgufWriter w;
  w.add_string("general.architecture", "llama");
  text::add_vocab_metadata(w, *vocab);
  const std::string tok_path = dir.file("tok.gguf"), model_path = dir.file("arith.gguf");
  REQUIRE(w.write(tok_path).is_ok());
  auto vocab_file = io::GgufFile::open(tok_path);
  REQUIRE(vocab_file.ok());
  train::ExportOptions eo;
  eo.vocab = &*vocab_file;
  REQUIRE(train::export_gguf(t->layout(), t->model().params(), model_path, eo).is_ok());
  auto lm = run::load(model_path);
  REQUIRE_MESSAGE(lm.ok(), lm.status().to_string());
  run::SessionOptions so;
  so.n_ctx = 32;
  auto session = run::Session::create(lm->model, so);
  REQUIRE(session.ok());
  run::GenerateParams gp;
  gp.max_tokens = 4;
  gp.parse_special = false;
  int right = 0;
  for (uint64_t a = 0; a < 10; ++a)
    for (uint64_t b = 0; b < 10; ++b) {
      REQUIRE(session->rewind(session->position()).is_ok());
      std::string text;
      const arith::Problem p{arith::Op::add, a, b};
      REQUIRE(run::generate(*session, *lm->tokenizer, arith::prompt(p, arith::Format::direct), gp, [&](std::string_view s) {
                text += s;
                return true;
              }).ok());
      right += arith::answer_of(text, arith::Format::direct) == std::to_string(a + b);
    }
  MESSAGE(right << " of 100 one-digit sums right");
  CHECK(right >= 90);  // 100 measured; chance is about 5
}

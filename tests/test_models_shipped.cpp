// The models shipped in models/ (models/README.md): each loads, carries its
// name and tokenizer, and generates what it was trained for. Nothing is
// retrained here. A model not yet in the tree is reported as skipped.
#include <doctest/doctest.h>

#include <cctype>
#include <filesystem>
#include <string>

#include "../examples/arithmetic/arithmetic.hpp"
#include "jielong/io/gguf.hpp"
#include "jielong/run/generate.hpp"
#include "jielong/run/load.hpp"
#include "jielong/text/chat_template.hpp"
#include "support/skip.hpp"

using namespace jielong;

namespace {

std::string shipped(const char* name) { return std::string(JIELONG_SOURCE_DIR) + "/models/" + name; }

// Greedy text after `prompt`, at most n tokens, stopping at the end of a document.
std::string greedy(const run::LoadedModel& lm, const std::string& prompt, size_t n) {
  run::SessionOptions so;
  so.n_ctx = 256;
  auto s = run::Session::create(lm.model, so);
  REQUIRE(s.ok());
  run::GenerateParams gp;
  gp.max_tokens = n;
  gp.parse_special = false;
  std::string out;
  REQUIRE(run::generate(*s, *lm.tokenizer, prompt, gp, [&](std::string_view p) {
            out += p;
            return true;
          }).ok());
  return out;
}

}  // namespace

TEST_CASE("models/jielong-base.gguf: loads, speaks English words, carries ChatML") {
  const std::string path = shipped("jielong-base.gguf");
  if (!std::filesystem::exists(path)) return test::skip(path + " is not in the tree");
  auto meta = io::GgufFile::open(path);
  REQUIRE_MESSAGE(meta.ok(), meta.status().to_string());
  CHECK(*meta->get_string("general.name") == "jielong-base");
  auto lm = run::load(path);
  REQUIRE_MESSAGE(lm.ok(), lm.status().to_string());
  REQUIRE(lm->tokenizer);
  CHECK(lm->tokenizer->n_tokens() == 4096);
  CHECK(text::detect_chat_template(lm->tokenizer->vocab().chat_template) == text::ChatTemplate::chatml);
  CHECK(lm->tokenizer->is_control(lm->tokenizer->find_token("<|im_end|>")));
  // A headword: the model goes on with a numbered sense. Checked
  // loosely (a tiny model): mostly letters and spaces, and some common
  // English words among them.
  const std::string text = greedy(*lm, "hacker n.", 60);
  MESSAGE("hacker n." << text);
  size_t letters = 0;
  for (char c : text) letters += std::isalpha(static_cast<unsigned char>(c)) || c == ' ';
  CHECK(text.size() > 40);
  CHECK(letters * 10 > text.size() * 7);
  int common = 0;
  for (const char* w : {" the ", " of ", " a ", " or ", " to ", " and ", " in "}) common += text.find(w) != std::string::npos;
  CHECK(common >= 1);
}

TEST_CASE("models/jielong-arith.gguf: loads and adds with a scratchpad") {
  const std::string path = shipped("jielong-arith.gguf");
  if (!std::filesystem::exists(path)) return test::skip(path + " is not in the tree");
  auto lm = run::load(path);
  REQUIRE_MESSAGE(lm.ok(), lm.status().to_string());
  REQUIRE(lm->tokenizer);
  CHECK(lm->tokenizer->n_tokens() == 257);
  // Held-out three-digit sums (never in its training data): the published
  // accuracy is >= 95%, so at most 2 of 10 may miss here.
  int right = 0;
  for (const arith::Problem& p : arith::held_out_problems(arith::Op::add, 3, 10, 77)) {
    const std::string out = greedy(*lm, arith::prompt(p, arith::Format::scratchpad), 120);
    right += arith::answer_of(out, arith::Format::scratchpad) == std::to_string(arith::result(p));
  }
  MESSAGE(right << " of 10 held-out three-digit sums right");
  CHECK(right >= 8);
}

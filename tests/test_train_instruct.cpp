// Instruction tuning: JSON lines parsed (both forms, escapes, refusals), an
// example's answer mask checked token by token on a byte-level vocabulary,
// packing, and a tiny model that learns its answers with the loss on them
// alone, resumed bit for bit.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "jielong/text/chat_template.hpp"
#include "jielong/text/tokenizer.hpp"
#include "jielong/train/bpe.hpp"
#include "jielong/train/instruct.hpp"
#include "jielong/train/trainer.hpp"
#include "support/train_model.hpp"

// Its own namespace: the train tests build as one translation unit.
namespace train_instruct {

using namespace jielong;

namespace {

// 256 byte tokens, <|endoftext|> (256), <|im_start|> (257), <|im_end|> (258)
// and no merges: every byte of text is one token, so positions can be
// counted by hand.
text::Tokenizer byte_tokenizer() {
  auto t = train::BpeTrainer::create({.vocab_size = 259, .pre = "gpt-2", .specials = {"<|im_start|>", "<|im_end|>"}});
  REQUIRE(t.ok());
  t->add_text("hello");
  auto v = t->train([](int32_t, int32_t) { return true; });
  REQUIRE_MESSAGE(v.ok(), v.status().to_string());
  auto tok = text::Tokenizer::create(*v);
  REQUIRE_MESSAGE(tok.ok(), tok.status().to_string());
  return std::move(*tok);
}

}  // namespace

TEST_CASE("instruction lines: both forms, JSON escapes, and what is refused") {
  auto a = train::parse_instruct_line(R"({"system": "Be brief.", "prompt": "Say \"hi\"\n", "answer": "caf\u00e9 \ud83d\ude00", "id": [1, {"x": null}], "n": -1.5e3})");
  REQUIRE_MESSAGE(a.ok(), a.status().to_string());
  REQUIRE(a->turns.size() == 3);
  CHECK(a->turns[0].role == "system");
  CHECK(a->turns[0].content == "Be brief.");
  CHECK(a->turns[1].role == "user");
  CHECK(a->turns[1].content == "Say \"hi\"\n");
  CHECK(a->turns[2].role == "assistant");
  CHECK(a->turns[2].content == "caf\xc3\xa9 \xf0\x9f\x98\x80");  // é and U+1F600 in UTF-8

  auto m = train::parse_instruct_line(
      R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"content": "c", "role": "user"}, {"role": "assistant", "content": "d"}]})");
  REQUIRE_MESSAGE(m.ok(), m.status().to_string());
  REQUIRE(m->turns.size() == 4);
  CHECK(m->turns[2].role == "user");
  CHECK(m->turns[3].content == "d");

  for (const char* bad : {R"({"prompt": "x"})", R"({"answer": "x"})", R"({"prompt": "x", "answer": "y"} extra)",
                          R"({"prompt": "x", "answer": "y)", R"({"prompt": "x", "answer": "\q"})",
                          R"({"prompt": "\ud800", "answer": "y"})", R"({"messages": [{"role": "user", "content": "x"}]})",
                          R"({"messages": [], "prompt": "x", "answer": "y"})", R"(["prompt"])", ""}) {
    CAPTURE(bad);
    auto r = train::parse_instruct_line(bad);
    CHECK_FALSE(r.ok());
    if (!r.ok()) CHECK(r.status().message().find("JSON at byte") != std::string::npos);
  }
}

TEST_CASE("an example's mask covers exactly its answer and the closing <|im_end|>") {
  const text::Tokenizer tok = byte_tokenizer();
  const int32_t bos = tok.bos(), im_start = tok.find_token("<|im_start|>"), im_end = tok.find_token("<|im_end|>");
  REQUIRE(bos == 256);
  REQUIRE(im_start == 257);
  REQUIRE(im_end == 258);
  auto ex = train::parse_instruct_line(R"({"prompt": "Hi", "answer": "Yo"})");
  REQUIRE(ex.ok());
  train::EncodedExample e;
  REQUIRE(train::encode_example(tok, *ex, e).is_ok());
  // Counted by hand: BOS (0), <|im_start|> (1), "user\n" (2-6), "Hi" (7-8),
  // <|im_end|> (9), "\n" (10), <|im_start|> (11), "assistant\n" (12-21),
  // "Yo" (22-23), <|im_end|> (24), "\n" (25).
  REQUIRE(e.tokens.size() == 26);
  REQUIRE(e.answer.size() == 26);
  CHECK(e.tokens[0] == bos);
  CHECK(e.tokens[1] == im_start);
  CHECK(e.tokens[9] == im_end);
  CHECK(e.tokens[11] == im_start);
  CHECK(e.tokens[24] == im_end);
  for (size_t i = 0; i < e.tokens.size(); ++i) CHECK_MESSAGE(e.answer[i] == (i >= 22 && i <= 24), "token " << i);
  std::string learnt;
  for (size_t i = 0; i < e.tokens.size(); ++i)
    if (e.answer[i]) learnt += tok.token_text(e.tokens[i]);
  CHECK(learnt == "Yo<|im_end|>");

  // The same tokens as the ChatML renderer's text encoded whole.
  const text::ChatMessage msgs[] = {{"user", "Hi"}, {"assistant", "Yo"}};
  auto rendered = text::render_chat(text::ChatTemplate::chatml, msgs, false);
  REQUIRE(rendered.ok());
  CHECK(*rendered == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nYo<|im_end|>\n");
  auto whole = tok.encode(*rendered, {.add_bos = true, .parse_special = true});
  REQUIRE(whole.ok());
  CHECK(*whole == e.tokens);

  // A special token's text inside a content stays text (parse_special off).
  auto sneaky = train::parse_instruct_line(R"({"prompt": "<|im_end|>", "answer": "x"})");
  REQUIRE(sneaky.ok());
  REQUIRE(train::encode_example(tok, *sneaky, e).is_ok());
  CHECK(std::count(e.tokens.begin(), e.tokens.end(), im_end) == 2);  // the two turns' own closers only

  // Without the ChatML tokens the vocabulary cannot render examples.
  auto plain_t = train::BpeTrainer::create({.vocab_size = 257, .pre = "gpt-2"});
  REQUIRE(plain_t.ok());
  auto plain_v = plain_t->train([](int32_t, int32_t) { return true; });
  REQUIRE(plain_v.ok());
  auto plain = text::Tokenizer::create(*plain_v);
  REQUIRE(plain.ok());
  const Status s = train::encode_example(*plain, *ex, e);
  CHECK_FALSE(s.is_ok());
  CHECK(s.message().find("--special") != std::string::npos);
}

TEST_CASE("packing: whole examples per row, padding masked out, too long ones dropped") {
  std::vector<train::EncodedExample> ex(4);
  ex[0] = {{1, 2, 3}, {0, 1, 1}};
  ex[1] = {{4, 5, 6, 7}, {0, 0, 1, 1}};
  ex[2] = {{8, 9}, {0, 1}};
  ex[3] = {{1, 1, 1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1, 1, 1}};  // 9 > a row of 6
  const train::PackedRows p = train::pack_examples(ex, 6, 0, 5);
  CHECK(p.dropped == 1);
  CHECK(p.examples == 3);
  CHECK(p.answer_tokens == 5);
  REQUIRE(p.tokens.size() == p.rows * 6);
  REQUIRE(p.mask.size() == p.tokens.size());
  // 3 + 4 + 2 tokens cannot share one row of 6: two rows whatever the order.
  CHECK(p.rows == 2);
  // Each example appears whole and contiguous with its own mask.
  for (size_t k = 0; k < 3; ++k) {
    bool found = false;
    for (size_t at = 0; at + ex[k].tokens.size() <= p.tokens.size() && !found; ++at) {
      if (at / 6 != (at + ex[k].tokens.size() - 1) / 6) continue;
      found = std::equal(ex[k].tokens.begin(), ex[k].tokens.end(), p.tokens.begin() + static_cast<std::ptrdiff_t>(at)) &&
              std::equal(ex[k].answer.begin(), ex[k].answer.end(), p.mask.begin() + static_cast<std::ptrdiff_t>(at),
                         [](uint8_t a, int32_t b) { return a == b; });
    }
    CHECK_MESSAGE(found, "example " << k);
  }
  size_t mask_sum = 0;
  for (int32_t m : p.mask) mask_sum += static_cast<size_t>(m);
  CHECK(mask_sum == 5);  // padding carries no mask
  // The order is the seed's: the same seed packs the same rows.
  CHECK(train::pack_examples(ex, 6, 0, 5).tokens == p.tokens);
}

TEST_CASE("a tiny model learns its answers with the loss on them alone; resume equals the whole run") {
  // 16 examples "BOS q SEP a(q) b(q) END": the answer (a, b, END) is a
  // function of the question token q, the question itself is random to a
  // model (so its loss is not taught). Untrained, the answer loss is
  // ~ln(48) = 3.87; a model that learnt the mapping gets near 0.
  std::vector<train::EncodedExample> ex;
  for (int32_t q = 0; q < 16; ++q)
    ex.push_back({{1, 4 + q, 2, 20 + q, 36 + (q * 7) % 12, 3}, {0, 0, 0, 1, 1, 1}});
  const size_t T = 17;  // rows of 18 tokens: three examples each
  const train::PackedRows p = train::pack_examples(ex, T + 1, 0, 1);
  REQUIRE(p.dropped == 0);
  auto tokens = train::TokenShard::from_tokens(p.tokens, 48, 1, p.examples);
  auto mask = train::TokenShard::from_tokens(p.mask, 2);
  REQUIRE(tokens.ok());
  REQUIRE(mask.ok());
  const train::ModelShape shape{.n_vocab = 48, .n_embd = 32, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                                .n_ff = 64, .n_ctx = 32, .tied_embeddings = true};
  train::TrainConfig c;
  c.batch = 4;
  c.seq_len = T;
  c.steps = 120;
  c.eval_batches = 2;
  c.seed = 3;
  c.eval_every = 40;
  c.optimizer.lr = 1e-2f;
  c.optimizer.warmup_steps = 10;
  const train::AnswerMasks masks{&*mask, &*mask};
  ThreadPool pool(2);
  auto t = train::Trainer::create(shape, c, *tokens, &*tokens, masks);
  REQUIRE_MESSAGE(t.ok(), t.status().to_string());
  const double before = t->validate(pool);
  CHECK(before == doctest::Approx(std::log(48.0)).epsilon(0.1));
  std::vector<double> losses;
  const std::string state = (test::temp_dir("instruct") / "run.state").string();
  while (t->step_index() < c.steps) {
    auto st = t->step(pool);
    REQUIRE(st.ok());
    losses.push_back(st->loss);
    if (st->step == 50) REQUIRE(t->save_state(state).is_ok());
  }
  const double after = t->validate(pool);
  MESSAGE("answer loss " << before << " -> " << after);
  CHECK(after < 0.1);

  // Resumed at step 50: the same losses and weights bit for bit.
  auto r = train::Trainer::resume(state, *tokens, &*tokens, 0, masks);
  REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  CHECK(r->config().eval_every == 40);
  for (size_t s = 50; s < c.steps; ++s) {
    auto st = r->step(pool);
    REQUIRE(st.ok());
    CHECK_MESSAGE(st->loss == losses[s], "step " << s + 1);
  }
  CHECK(std::memcmp(r->model().params(), t->model().params(), t->layout().size() * sizeof(float)) == 0);
  // Plain data cannot continue an instruction run.
  auto plain = train::Trainer::resume(state, *tokens, nullptr);
  CHECK_FALSE(plain.ok());
  std::filesystem::remove_all(std::filesystem::path(state).parent_path());
}

TEST_CASE("token F1: SQuAD's normalisation, precision and recall over the words in common") {
  CHECK(train::token_f1("", "") == 1.0);
  CHECK(train::token_f1("a word", "") == 0.0);
  CHECK(train::token_f1("The Cat sat.", "cat sat") == 1.0);  // case, punctuation and articles dropped
  // answer {red, fox, runs} vs reference {red, fox}: precision 2/3, recall 1, F1 0.8.
  CHECK(train::token_f1("a red fox runs", "the red fox") == doctest::Approx(0.8));
  // Repeated words count as often as both hold them: {x, x, y} vs {x, z}: 1 in common, P 1/3, R 1/2, F1 0.4.
  CHECK(train::token_f1("x x y", "x z") == doctest::Approx(0.4));
  CHECK(train::token_f1("dog", "cat") == 0.0);
}

}  // namespace train_instruct

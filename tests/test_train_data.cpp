// The data pipeline: each source's cleaner on hand-written snippets of its
// format (expected documents written out by hand), the quality filters,
// duplicate removal, the split, token shards (round trip and hostile files),
// the batch loader (determinism, resume, windows against the shard), and
// `jielong train-tokenizer` + `prepare-data` end to end against the library.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "jielong/core/hash.hpp"
#include "jielong/train/clean.hpp"
#include "jielong/train/corpus.hpp"
#include "jielong/train/shards.hpp"
#include "jielong/text/chat_template.hpp"
#include "jielong/text/gguf_vocab.hpp"
#include "support/cli.hpp"
#include "support/shared.hpp"

using namespace jielong;
using namespace jielong::train;

namespace {

std::vector<std::string> documents(SourceFormat f, std::string_view text) {
  std::vector<std::string> raw, out;
  split_documents(f, text, raw);
  for (const std::string& d : raw) out.push_back(normalize_document(d));
  return out;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

}  // namespace

TEST_CASE("dictd (GCIDE): licence entry dropped, pronunciations, source tags, braces and entities resolved") {
  const std::string text =
      "00-database-info\n"
      "   This file was converted from the original database.\n"
      "\n"
      "Absolute \\Ab\"so*lute\\, n. (Geom.)\n"
      "   In a plane, the two imaginary circular points at infinity; in\n"
      "   space of three dimensions. [1913 Webster]\n"
      "\n"
      "Absolution \\Ab`so*lu\"tion\\, n. [F. absolution, L. absolutio, fr.\n"
      "   absolvere to absolve. See {Absolve}.]\n"
      "   1. An absolving; -273[deg] or [ae]on [e^]ra [=a]. [R.]\n"
      "   [1913 Webster]\n"
      "\n"
      "   Syn: Forgiveness.\n"
      "        [WordNet 1.5 +PJC]\n";
  const auto docs = documents(SourceFormat::dictd, text);
  REQUIRE(docs.size() == 2);
  CHECK(docs[0] == "Absolute, n. (Geom.) In a plane, the two imaginary circular points at infinity; in space of three dimensions.");
  CHECK(docs[1] ==
        "Absolution, n. [F. absolution, L. absolutio, fr. absolvere to absolve. See Absolve.] 1. An absolving; "
        "-273\xC2\xB0 or \xC3\xA6on era a. [R.]\n\nSyn: Forgiveness.");
}

TEST_CASE("dictd (Devil's Dictionary): one document per entry, wrapped lines joined") {
  const std::string text =
      "AFFLICTION, n.  An acclimatizing process preparing the soul for\n"
      "another and bitter world.\n"
      "\n"
      "AGE, n.  That period of life in which we compound for the vices that\n"
      "we still cherish.\n";
  const auto docs = documents(SourceFormat::dictd, text);
  REQUIRE(docs.size() == 2);
  CHECK(docs[0] == "AFFLICTION, n. An acclimatizing process preparing the soul for another and bitter world.");
  CHECK(docs[1] == "AGE, n. That period of life in which we compound for the vices that we still cherish.");
}

TEST_CASE("jargon: entries from ':headword:' lines, pronunciations and headword lists dropped") {
  const std::string text =
      "                                The Jargon File\n"
      "\n"
      "   crufty\n"
      "\n"
      "   :cruft: /kruhft/, n.\n"
      "\n"
      "   [very common] 1. An unpleasant substance. See {crufty}.\n"
      "   Also used of code.\n"
      "\n"
      "   crumb\n"
      "\n"
      "   crunch\n"
      "\n"
      "   :crumb: n.\n"
      "\n"
      "   Two binary digits; a quad.\n";
  const auto docs = documents(SourceFormat::jargon, text);
  REQUIRE(docs.size() == 2);
  CHECK(docs[0] == "cruft: n.\n\n[very common] 1. An unpleasant substance. See crufty. Also used of code.");
  CHECK(docs[1] == "crumb: n.\n\nTwo binary digits; a quad.");
}

TEST_CASE("fortune: '%' lines separate quips; line breaks kept") {
  const std::string text = "A day for firm decisions!!!!!  Or is it?\n%\nAPL is a mistake,\n  carried through.\n\t-- Dijkstra\n%\n";
  const auto docs = documents(SourceFormat::fortune, text);
  REQUIRE(docs.size() == 2);
  CHECK(docs[0] == "A day for firm decisions!!!!! Or is it?");
  CHECK(docs[1] == "APL is a mistake,\ncarried through.\n-- Dijkstra");
}

TEST_CASE("wordnet: licence lines dropped, synset words and gloss") {
  const std::string text =
      "  1 This software and database is being provided to you, the LICENSEE, by  \n"
      "00001930 03 n 01 physical_entity 0 007 @ 00001740 n 0000 | an entity that has physical existence  \n"
      "00002098 00 s 02 unaccommodating(a) 0 unobliging 0 001 & 00001740 a 0000 | not accommodating; \"the bus\"  \n"
      "garbage line without a gloss\n"
      "00002099 00 s ff word 0 | a count of words the line does not hold\n"
      "00002100 00 s ffffffffffffffff word 0 | a count that overflows\n";
  const auto docs = documents(SourceFormat::wordnet, text);
  REQUIRE(docs.size() == 2);
  CHECK(docs[0] == "physical entity: an entity that has physical existence");
  CHECK(docs[1] == "unaccommodating, unobliging: not accommodating; \"the bus\"");
}

TEST_CASE("text: paragraphs; format names and guesses") {
  const auto docs = documents(SourceFormat::text, "One\ntwo.\n\n\n\nThree.\n");
  REQUIRE(docs.size() == 2);
  CHECK(docs[0] == "One\ntwo.");
  CHECK(docs[1] == "Three.");
  CHECK(guess_source_format("/usr/share/dictd/gcide.dict.dz") == SourceFormat::dictd);
  CHECK(guess_source_format("/usr/share/doc/jargon-text/jargon.txt.gz") == SourceFormat::jargon);
  CHECK(guess_source_format("/usr/share/games/fortunes/computers") == SourceFormat::fortune);
  CHECK(guess_source_format("/usr/share/wordnet/data.noun") == SourceFormat::wordnet);
  CHECK(guess_source_format("/usr/share/wordnet/index.noun") == SourceFormat::text);
  CHECK(is_corpus_side_file("/usr/share/dictd/gcide.index"));
  CHECK(is_corpus_side_file("/usr/share/wordnet/index.noun"));
  CHECK(is_corpus_side_file("/usr/share/wordnet/cntlist.rev"));
  CHECK_FALSE(is_corpus_side_file("/usr/share/wordnet/data.noun"));
  CHECK_FALSE(is_corpus_side_file("/usr/share/dictd/gcide.dict.dz"));
  CHECK_FALSE(is_corpus_side_file("/usr/share/games/fortunes/index"));
  CHECK(*parse_source_format("jargon") == SourceFormat::jargon);
  const auto bad = parse_source_format("html");
  REQUIRE(!bad.ok());
  CHECK(bad.status().message().find("'html'") != std::string::npos);
}

TEST_CASE("normalize_document: spaces, blank lines, control bytes, invalid UTF-8 counted and replaced") {
  size_t invalid = 0;
  CHECK(normalize_document("  a\t\tb  \n\n\n\n c \r\n", &invalid) == "a b\n\nc");
  CHECK(invalid == 0);
  CHECK(normalize_document("x\xFFy\xE2\x82", &invalid) == "x\xEF\xBF\xBDy\xEF\xBF\xBD");
  CHECK(invalid == 2);
  CHECK(normalize_document("caf\xC3\xA9 ok") == "caf\xC3\xA9 ok");
}

TEST_CASE("Corpus: each filter removes what it should and the report counts it") {
  CorpusOptions opts;
  opts.min_bytes = 16;
  opts.validation_fraction = 0.0;
  Corpus c(opts);
  std::string word(kOffensiveWords[0]);
  std::string upper = word;
  for (char& ch : upper) ch = static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
  const std::string text =
      "A perfectly ordinary sentence.\n\n"        // kept
      "Too short.\n\n"                             // 10 bytes: too short
      "|--+--|--+--|--+--| ascii |--+--|\n\n"      // symbols
      "la la la\nla la la\nla la la\nla la la\n\n" // repeated lines
      "They called him " + upper + " in the story.\n\n"  // offensive (any case, whole word)
      "An x" + word + "y compound word stays.\n\n"       // not a whole word: kept
      "A  perfectly ORDINARY sentence!\n";         // duplicate of the first (spacing, case, punctuation)
  c.add("mine", SourceFormat::text, text);
  const SourceReport& r = c.report().sources.at(0);
  CHECK(r.documents == 7);
  CHECK(r.removed_docs[static_cast<size_t>(Removal::too_short)] == 1);
  CHECK(r.removed_docs[static_cast<size_t>(Removal::symbols)] == 1);
  CHECK(r.removed_docs[static_cast<size_t>(Removal::repeated_lines)] == 1);
  CHECK(r.removed_docs[static_cast<size_t>(Removal::offensive)] == 1);
  CHECK(r.removed_docs[static_cast<size_t>(Removal::duplicate)] == 1);
  REQUIRE(c.train().size() == 2);
  CHECK(c.train()[0] == "A perfectly ordinary sentence.");
  CHECK(c.train()[1] == "An x" + word + "y compound word stays.");
  CHECK(r.kept_docs == 2);
  CHECK(r.kept_bytes == c.train()[0].size() + c.train()[1].size());
  CHECK(c.report().to_string().find("mine") != std::string::npos);
  CHECK(r.removed_bytes[static_cast<size_t>(Removal::too_short)] == 10);  // "Too short."
  CHECK(c.report().to_string().find("bytes removed: too short 10,") != std::string::npos);
  // Prose and dictionary punctuation is not a symbol; | + / * are.
  CHECK(train::detail::symbol_ratio("Abate, n. [Obs.] \"(a-b)\"; & so: on! ok?") == 0.0);
  CHECK(train::detail::symbol_ratio("a|b+ c/d*") == doctest::Approx(4.0 / 8.0));

  CorpusOptions keep = opts;
  keep.drop_offensive = false;
  Corpus k(keep);
  k.add("mine", SourceFormat::text, text);
  CHECK(k.train().size() == 3);
}

TEST_CASE("NearDuplicates: one changed word in 60 is caught, unrelated and short texts are not") {
  // A text of 60 distinct words; changing one word changes at most 5 of its
  // 56 five-word shingles, Jaccard >= 51/61 = 0.84: caught with probability
  // >= 1 - (1 - 0.84^8)^8 = 0.91 for one pair, so the test uses the words
  // that keep the pair far above the threshold, at the very end (one shingle
  // changes, Jaccard 55/57 = 0.965, probability 0.9999).
  std::string base, tail_changed, other;
  for (int i = 0; i < 60; ++i) {
    const std::string w = 'w' + std::to_string(i) + ' ';
    base += w;
    tail_changed += i == 59 ? std::string("changed ") : w;
    other += 'v' + std::to_string(i * 7) + ' ';
  }
  NearDuplicates nd;
  CHECK_FALSE(nd.seen_before(base));
  CHECK(nd.seen_before(tail_changed));
  CHECK_FALSE(nd.seen_before(other));
  // Case and punctuation do not make words differ.
  std::string shouted = base;
  for (char& c : shouted) c = c == 'w' ? 'W' : c == ' ' ? ',' : c;
  CHECK(nd.seen_before(shouted + "!"));
  // Below 12 words no judgement: two 11-word texts differing in one word both pass.
  CHECK_FALSE(nd.seen_before("a b c d e f g h i j k"));
  CHECK_FALSE(nd.seen_before("a b c d e f g h i j z"));

  // In a corpus the report counts them apart from exact duplicates.
  Corpus c;
  c.add("s", SourceFormat::text, base + "\n\n" + tail_changed + "\n\n" + other + "\n");
  CHECK(c.report().sources[0].removed_docs[static_cast<size_t>(Removal::near_duplicate)] == 1);
  CHECK(c.report().sources[0].kept_docs == 2);
}

TEST_CASE("split: a function of the text and the seed, not of the order; about the fraction asked") {
  std::vector<std::string> docs;
  for (int i = 0; i < 10000; ++i) docs.push_back("document number " + std::to_string(i) + " with some words");
  auto held_out = [&](const std::vector<std::string>& order, uint64_t seed) {
    CorpusOptions opts;
    opts.validation_fraction = 0.1;
    opts.seed = seed;
    Corpus c(opts);
    std::string text;
    for (const std::string& d : order) text += d + "\n\n";
    c.add("s", SourceFormat::text, text);
    CHECK(c.train().size() + c.validation().size() == order.size());
    return std::set<std::string>(c.validation().begin(), c.validation().end());
  };
  const auto a = held_out(docs, 7);
  std::vector<std::string> reversed(docs.rbegin(), docs.rend());
  CHECK(held_out(reversed, 7) == a);
  // Binomial(10000, 0.1): mean 1000, sd 30; 4 sd either way.
  CHECK(a.size() > 880);
  CHECK(a.size() < 1120);
  const auto b = held_out(docs, 8);
  CHECK(b != a);
  CHECK(b.size() > 880);
  CHECK(b.size() < 1120);
  CHECK(is_validation("anything", 0.0, 1) == false);
  CHECK(is_validation("anything", 1.0, 1) == true);
}

TEST_CASE("shards: round trip, 2- and 4-byte tokens, header fields") {
  test::TempDir dir;
  for (uint32_t vocab : {512u, 65536u, 70000u}) {
    const std::string path = dir.file("s" + std::to_string(vocab) + ".bin");
    auto w = ShardWriter::create(path, vocab, 0);
    REQUIRE(w.ok());
    std::vector<int32_t> all;
    for (int d = 0; d < 5; ++d) {
      std::vector<int32_t> doc = {0};
      for (int i = 0; i < 3 + d * 7; ++i) doc.push_back(static_cast<int32_t>((d * 131 + i * 977) % vocab));
      REQUIRE(w->append(doc).is_ok());
      all.insert(all.end(), doc.begin(), doc.end());
    }
    CHECK(w->append(std::vector<int32_t>{static_cast<int32_t>(vocab)}).code() == Code::invalid_argument);
    REQUIRE(w->finish().is_ok());
    auto s = TokenShard::open(path);
    REQUIRE_MESSAGE(s.ok(), s.status().to_string());
    CHECK(s->header().token_bytes == (vocab <= 65536 ? 2u : 4u));
    CHECK(s->header().vocab_size == vocab);
    CHECK(s->header().separator == 0u);
    CHECK(s->header().n_documents == 5u);
    REQUIRE(s->size() == all.size());
    std::vector<int32_t> back(all.size());
    s->read(0, back);
    CHECK(back == all);
    CHECK(std::filesystem::file_size(path) == kShardHeaderBytes + all.size() * s->header().token_bytes);
    CHECK(!std::filesystem::exists(path + ".tmp"));
  }
}

TEST_CASE("shards: hostile and damaged files give a status naming the problem") {
  test::TempDir dir;
  const std::string good = dir.file("good.bin");
  {
    auto w = ShardWriter::create(good, 1000, kNoSeparator);
    REQUIRE(w.ok());
    std::vector<int32_t> doc;
    for (int i = 0; i < 100; ++i) doc.push_back(i * 7);
    REQUIRE(w->append(doc).is_ok());
    REQUIRE(w->finish().is_ok());
  }
  const std::string bytes = slurp(good);
  auto expect = [&](std::string damaged, Code code, std::string_view words) {
    const std::string path = dir.file("bad.bin");
    spit(path, damaged);
    auto s = TokenShard::open(path);
    REQUIRE(!s.ok());
    CHECK(s.status().code() == code);
    CHECK_MESSAGE(s.status().message().find(words) != std::string::npos, s.status().message());
  };
  auto rehead = [](std::string b) {  // a header checksum that matches whatever was patched in
    const uint64_t h = fnv1a(b.data(), 48);
    std::memcpy(b.data() + 48, &h, 8);
    return b;
  };
  expect("", Code::format_error, "shorter than the 64-byte header");
  expect(bytes.substr(0, 40), Code::format_error, "shorter than the 64-byte header");
  expect(bytes.substr(0, bytes.size() - 1), Code::format_error, "truncated or padded");
  expect(bytes + "xx", Code::format_error, "truncated or padded");
  std::string b = bytes;
  b[0] = 'X';
  expect(b, Code::format_error, "bad magic");
  b = bytes;
  b[8] = 2;
  expect(b, Code::unsupported, "version 2");
  b = bytes;
  b[17] ^= 1;
  expect(b, Code::format_error, "header checksum");
  b = bytes;
  b[100] ^= 1;
  expect(b, Code::format_error, "token checksum");
  b = bytes;
  b[12] = 3;
  expect(rehead(b), Code::format_error, "3 bytes per token");
  b = bytes;
  const uint32_t small_vocab = 10;
  std::memcpy(b.data() + 16, &small_vocab, 4);
  expect(rehead(b), Code::format_error, "outside the vocabulary of 10");
  b = bytes;
  const uint64_t huge = uint64_t(1) << 62;
  std::memcpy(b.data() + 24, &huge, 8);
  expect(rehead(b), Code::format_error, "truncated or padded");
  CHECK(TokenShard::open(dir.file("missing.bin")).status().code() == Code::io_error);
  CHECK(ShardWriter::create(dir.file("x.bin"), 0).status().code() == Code::invalid_argument);
}

TEST_CASE("BatchLoader: windows match the shard, targets are inputs shifted, seeded, resumable") {
  test::TempDir dir;
  const std::string path = dir.file("t.bin");
  const int32_t n = 1000;
  {
    auto w = ShardWriter::create(path, 4096);
    REQUIRE(w.ok());
    std::vector<int32_t> doc(n);
    for (int32_t i = 0; i < n; ++i) doc[i] = (i * 37 + 11) % 4096;
    REQUIRE(w->append(doc).is_ok());
    REQUIRE(w->finish().is_ok());
  }
  auto shard = TokenShard::open(path);
  REQUIRE(shard.ok());
  const int32_t B = 3, T = 17;
  CHECK(BatchLoader::create(*shard, 0, T, 1).status().code() == Code::invalid_argument);
  CHECK(BatchLoader::create(*shard, B, n, 1).status().code() == Code::invalid_argument);  // needs n + 1 tokens
  auto a = BatchLoader::create(*shard, B, T, 42);
  auto b = BatchLoader::create(*shard, B, T, 42);
  auto c = BatchLoader::create(*shard, B, T, 43);
  REQUIRE((a.ok() && b.ok() && c.ok()));
  std::vector<int32_t> xa(B * T), ya(B * T), xb(B * T), yb(B * T), xc(B * T), yc(B * T);
  std::vector<std::vector<int32_t>> history;
  bool differs = false;
  for (int step = 0; step < 20; ++step) {
    REQUIRE(a->next(xa, ya).is_ok());
    REQUIRE(b->next(xb, yb).is_ok());
    REQUIRE(c->next(xc, yc).is_ok());
    CHECK(xa == xb);
    CHECK(ya == yb);
    differs |= xa != xc;
    history.push_back(xa);
    for (int32_t r = 0; r < B; ++r) {
      const uint64_t s = a->window_start(static_cast<uint64_t>(step), r);
      REQUIRE(s + T + 1 <= static_cast<uint64_t>(n));
      for (int32_t t = 0; t < T; ++t) {
        CHECK(xa[r * T + t] == static_cast<int32_t>(((s + t) * 37 + 11) % 4096));
        CHECK(ya[r * T + t] == static_cast<int32_t>(((s + t + 1) * 37 + 11) % 4096));
      }
    }
  }
  CHECK(differs);
  // Resume: a fresh loader given the state after 12 batches continues with batch 12.
  auto resumed = BatchLoader::create(*shard, B, T, 0);
  REQUIRE(resumed.ok());
  resumed->set_state({42, 12});
  for (int step = 12; step < 20; ++step) {
    REQUIRE(resumed->next(xa, ya).is_ok());
    CHECK(xa == history[step]);
  }
  CHECK(resumed->state() == BatchLoader::State{42, 20});
  CHECK(a->next(std::span<int32_t>(xa).first(5), ya).code() == Code::invalid_argument);

  // Sequential: windows [0, T], [T, 2T], ... in order, wrapping after the last whole one.
  auto seq = BatchLoader::create(*shard, B, T, 0, BatchLoader::Order::sequential);
  REQUIRE(seq.ok());
  const uint64_t windows = (n - 1) / T;
  CHECK(seq->windows() == windows);
  for (uint64_t k = 0; k < 30; ++k)
    for (int32_t r = 0; r < B; ++r) CHECK(seq->window_start(k, r) == (k * B + r) % windows * T);
}

#ifdef JIELONG_CLI_PATH
TEST_CASE("jielong train-tokenizer and prepare-data: the shards decode to the library's corpus") {
  using test::run_jielong;
  test::TempDir dir;
  namespace fs = std::filesystem;
  fs::create_directories(dir.path() / "in" / "fortunes");
  std::string quips, prose;
  for (int i = 0; i < 60; ++i) {
    quips += "Fortune number " + std::to_string(i) + ": a penny saved is a penny " + std::to_string(i * 3) + ".\n%\n";
    prose += "Paragraph " + std::to_string(i) + " says the quick brown fox jumps over " + std::to_string(i * i) + " dogs.\n\n";
  }
  spit(dir.file("in/fortunes/quips"), quips);
  spit(dir.file("in/prose.txt"), prose);
  spit(dir.file("in/index.dat"), std::string("\0\1\2binary", 9));  // skipped: not text
  fs::create_symlink(dir.file("in/prose.txt"), dir.file("in/again.txt"));  // skipped: a link
  const std::string in = dir.file("in"), tok = dir.file("tok.gguf"), out = dir.file("out");

  REQUIRE(run_jielong("train-tokenizer --vocab-size 300 -o " + tok + " " + in).code == 0);
  REQUIRE(run_jielong("prepare-data -m " + tok + " -o " + out + " --validation 0.25 -s 3 " + in).code == 0);

  // The same corpus through the library: files in name order, formats guessed.
  CorpusOptions opts;
  opts.validation_fraction = 0.25;
  opts.seed = 3;
  Corpus corpus(opts);
  corpus.add("fortunes", SourceFormat::fortune, quips);
  corpus.add("prose", SourceFormat::text, prose);
  REQUIRE(!corpus.validation().empty());

  auto tokenizer = text::Tokenizer::from_gguf(tok);
  REQUIRE(tokenizer.ok());
  CHECK(tokenizer->n_tokens() == 300);
  for (const auto& [name, docs] : {std::pair{"train.bin", &corpus.train()}, std::pair{"val.bin", &corpus.validation()}}) {
    auto shard = TokenShard::open(out + "/" + name);
    REQUIRE_MESSAGE(shard.ok(), shard.status().to_string());
    CHECK(shard->header().vocab_size == 300u);
    CHECK(shard->header().separator == static_cast<uint32_t>(tokenizer->bos()));
    CHECK(shard->header().n_documents == docs->size());
    std::vector<int32_t> ids(shard->size());
    shard->read(0, ids);
    std::vector<std::string> decoded;
    for (int32_t id : ids) {
      if (id == tokenizer->bos()) decoded.emplace_back();
      else decoded.back() += tokenizer->token_piece(id);
    }
    CHECK(decoded == *docs);
  }
  // Any number of encoding threads writes the same bytes.
  REQUIRE(run_jielong("prepare-data -t 3 -m " + tok + " -o " + out + "3 --validation 0.25 -s 3 " + in).code == 0);
  CHECK(slurp(out + "3/train.bin") == slurp(out + "/train.bin"));
  CHECK(slurp(out + "3/val.bin") == slurp(out + "/val.bin"));

  std::string val_text;
  for (const std::string& d : corpus.validation()) val_text += d + "\n\n";
  CHECK(slurp(out + "/val.txt") == val_text);
  const std::string report = slurp(out + "/report.txt");
  CHECK(report.find("fortunes") != std::string::npos);
  CHECK(report.find("prose") != std::string::npos);
  CHECK(report.find("again") == std::string::npos);

  // --special adds control tokens after <|endoftext|>; <|im_start|> brings ChatML's template.
  const std::string chat_tok = dir.file("chat.gguf");
  REQUIRE(run_jielong("train-tokenizer --vocab-size 300 --special '<|im_start|>' --special '<|im_end|>' -o " + chat_tok +
                      " " + in)
              .code == 0);
  auto chat = text::Tokenizer::from_gguf(chat_tok);
  REQUIRE(chat.ok());
  REQUIRE(chat->n_tokens() == 300);
  CHECK(chat->vocab().tokens[298] == "<|im_start|>");
  CHECK(chat->is_control(299));
  CHECK(text::detect_chat_template(chat->vocab().chat_template) == text::ChatTemplate::chatml);
  CHECK(run_jielong("train-tokenizer --vocab-size 300 --special '<|im_end|>' --special '<|im_end|>' -o " + chat_tok +
                        " " + in,
                    true)
            .code == 1);

  const test::Run missing = run_jielong("prepare-data -m " + dir.file("absent.gguf") + " -o " + out + " " + in, true);
  CHECK(missing.code == 1);
  CHECK(missing.out.find("absent.gguf") != std::string::npos);
  const test::Run no_input = run_jielong("train-tokenizer -o " + tok, true);
  CHECK(no_input.code == 1);
  CHECK(no_input.out.find("give at least one text file or folder") != std::string::npos);
}
#endif

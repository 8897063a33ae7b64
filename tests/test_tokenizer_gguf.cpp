// Tokenizers read from GGUF vocabularies (../shared/vocab): llama.cpp's test
// vectors (every NAME.gguf.inp / .out pair), special tokens on and off, the
// two forms of the stories260K vocabulary, and the jielong tokenize command.
//
// Expected ids come from llama.cpp: the .out files, and for the hand-picked
// strings below, llama.cpp's tokenizer (llama-tokenize) on the same files.
#include <doctest/doctest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "jielong/text/chat_template.hpp"
#include "jielong/text/detokenizer.hpp"
#include "jielong/text/gguf_vocab.hpp"
#include "support/shared.hpp"

using namespace jielong::text;
using Ids = std::vector<int32_t>;

namespace {

std::optional<Tokenizer> load(const std::string& vocab_name) {
  const auto path = jielong::test::shared_file("vocab/ggml-vocab-" + vocab_name + ".gguf");
  if (!path) return std::nullopt;
  auto tok = Tokenizer::from_gguf(*path);
  REQUIRE_MESSAGE(tok.ok(), vocab_name << ": " << tok.status().to_string());
  return std::move(*tok);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Ids encode(const Tokenizer& t, std::string_view text, bool add_bos, bool parse_special) {
  auto r = t.encode(text, {.add_bos = add_bos, .parse_special = parse_special});
  REQUIRE(r.ok());
  return *r;
}

}  // namespace

TEST_CASE("gguf vocabularies: llama.cpp's test vectors, every case") {
  // As llama.cpp's test-tokenizer-0: cases separated by "\n__ggml_vocab_test__\n",
  // one line of expected ids per case, no BOS, specials not parsed.
  const char* names[] = {"llama-spm", "phi-3",     "gpt-2",     "falcon",  "deepseek-coder",
                         "deepseek-llm", "starcoder", "mpt", "refact", "bert-bge"};
  int vocabs = 0;
  for (const char* name : names) {
    const auto inp = jielong::test::shared_file(std::string("vocab/ggml-vocab-") + name + ".gguf.inp");
    const auto out = jielong::test::shared_file(std::string("vocab/ggml-vocab-") + name + ".gguf.out");
    if (!inp || !out) continue;
    const auto tok = load(name);
    if (!tok) continue;
    ++vocabs;
    const std::string text = read_file(*inp);
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<std::string> cases;
    for (size_t p = 0, q; (q = text.find(sep, p)) != std::string::npos; p = q + sep.size()) cases.push_back(text.substr(p, q - p));
    std::ifstream lines(*out);
    std::string line;
    size_t i = 0, passed = 0;
    while (std::getline(lines, line)) {
      REQUIRE(i < cases.size());
      Ids expected;
      std::istringstream ss(line);
      for (int32_t id; ss >> id;) expected.push_back(id);
      const Ids got = encode(*tok, cases[i], false, false);
      CHECK_MESSAGE(got == expected, name << " case " << i << ": \"" << cases[i] << "\"");
      passed += got == expected;
      ++i;
    }
    CHECK(i == cases.size());
    CHECK(i >= 40);
    MESSAGE(std::string(name) << ": " << passed << "/" << i << " cases");
  }
  if (jielong::test::shared_dir()) CHECK(vocabs == 10);
}

TEST_CASE("gguf vocabularies: special tokens on and off") {
  if (auto t = load("gpt-2")) {
    CHECK(encode(*t, "Hello<|endoftext|>world", false, true) == Ids{15496, 50256, 6894});
    CHECK(encode(*t, "Hello<|endoftext|>world", false, false) == Ids{15496, 27, 91, 437, 1659, 5239, 91, 29, 6894});
    CHECK(t->is_eog(50256));
    CHECK(t->eot() == 50256);
    CHECK(t->token_piece(50256) == "<|endoftext|>");
    CHECK(t->output_piece(50256, false).empty());
  }
  if (auto t = load("llama-spm")) {
    // After a special token the text gets the space prefix again.
    CHECK(encode(*t, "<s>Hi</s>", false, true) == Ids{1, 6324, 2});
    CHECK(encode(*t, "<s>Hi</s>", false, false) == Ids{529, 29879, 29958, 18567, 829, 29879, 29958});
    CHECK(encode(*t, "Hello world", true, true) == Ids{1, 15043, 3186});
    CHECK(encode(*t, "a\nb", false, true) == Ids{263, 13, 29890});
  }
  if (auto t = load("phi-3")) {
    // Phi-3's added tokens eat the white space after them ("\n" after <|user|>).
    CHECK(encode(*t, "<|user|>\nHi<|end|>\n<|assistant|>", false, true) == Ids{32010, 6324, 32007, 32001});
    CHECK(encode(*t, "Hello<|endoftext|>world", false, true) == Ids{15043, 32000, 3186});
    CHECK(detect_chat_template(t->vocab().chat_template) == ChatTemplate::phi3);
    CHECK(t->is_eog(32007));  // <|end|>
  }
  if (auto t = load("deepseek-coder")) {
    // User-defined tokens (here single characters stored unencoded) are
    // recognised whether or not specials are parsed.
    CHECK(encode(*t, "õ÷x", false, false) == Ids{32000, 32001, 87});
    CHECK(encode(*t, "õ÷x", false, true) == Ids{32000, 32001, 87});
    CHECK(t->token_piece(32000) == "õ");
    // add_bos_token is true in this file.
    CHECK(encode(*t, "Hello world", true, true) == Ids{32013, 17535, 1835});
  }
}

TEST_CASE("gguf vocabularies: decoding inverts encoding") {
  // Byte-level BPE and byte-fallback SPM lose nothing: decode(encode(s)) == s
  // (SPM drops the space prefix it added). Covers the two vocabularies that
  // come without test vectors.
  const char* texts[] = {"Hello world", "  two  spaces\tand a tab\n", "Ünïcödé 日本語 🦙 ½", "x=1+2; // done", "I'm sure"};
  for (const char* name : {"gpt-neox", "baichuan", "gpt-2", "llama-spm", "deepseek-llm", "falcon"}) {
    const auto tok = load(name);
    if (!tok) continue;
    for (const char* s : texts) {
      const Ids ids = encode(*tok, s, false, false);
      CHECK_MESSAGE(tok->decode(ids) == s, name << ": \"" << s << "\"");
      Detokenizer d(*tok, {.strip_leading_space = true});
      std::string streamed;
      for (int32_t id : ids) streamed += d.push(id);
      streamed += d.flush();
      CHECK_MESSAGE(streamed == s, name << " (stream): \"" << s << "\"");
    }
  }
}

TEST_CASE("stories260K: tok512.bin and the GGUF vocabulary agree") {
  const auto gguf = jielong::test::shared_file("models/stories260K/stories260K.gguf");
  const auto bin = jielong::test::shared_file("models/stories260K/tok512.bin");
  if (!gguf || !bin) return;
  auto a = Tokenizer::from_gguf(*gguf);
  auto b = Tokenizer::from_llama2c(*bin, 512);
  REQUIRE_MESSAGE(a.ok(), a.status().to_string());
  REQUIRE_MESSAGE(b.ok(), b.status().to_string());
  REQUIRE(a->n_tokens() == 512);
  REQUIRE(b->n_tokens() == 512);
  for (int32_t id = 0; id < 512; ++id) {
    CHECK(a->token_text(id) == b->token_text(id));
    CHECK(a->vocab().scores[id] == b->vocab().scores[id]);
    CHECK(a->attr(id) == b->attr(id));
  }
  for (const char* s : {"Once upon a time", "Lily and Tom went to the park.", "", " ", "She said: \"Hi!\"\n\nThe end.",
                        "日本 🦙", "<s>x</s>", "   many   spaces   "}) {
    for (bool bos : {false, true})
      for (bool special : {false, true}) CHECK_MESSAGE(encode(*a, s, bos, special) == encode(*b, s, bos, special), s);
  }
}

TEST_CASE("models: prompts tokenized as llama.cpp did for the references") {
  // reference/llamacpp/*.jsonl hold llama.cpp's tokens (with BOS where the
  // model adds one) for each prompt; the models carry their vocabulary.
  int checked = 0;
  for (const char* model : {"synth-qwen2-f16", "synth-qwen2-q8_0", "synth-llama-f32"}) {
    const auto gguf = jielong::test::shared_file(std::string("models/synth/") + model + ".gguf");
    const auto jsonl = jielong::test::shared_file(std::string("reference/llamacpp/") + model + ".jsonl");
    if (!gguf || !jsonl) continue;
    auto tok = Tokenizer::from_gguf(*gguf);
    REQUIRE_MESSAGE(tok.ok(), tok.status().to_string());
    std::ifstream in(*jsonl);
    for (std::string line; std::getline(in, line);) {
      const size_t p = line.find("\"prompt\":\"") + 10;
      const std::string prompt = line.substr(p, line.find('"', p) - p);  // plain ASCII prompts
      const size_t t = line.find("\"tokens\":[") + 10;
      Ids expected;
      std::istringstream ids(line.substr(t, line.find(']', t) - t));
      for (std::string item; std::getline(ids, item, ',');) expected.push_back(std::stoi(item));
      CHECK_MESSAGE(encode(*tok, prompt, true, true) == expected, model << ": " << prompt);
      ++checked;
    }
  }
  if (jielong::test::shared_dir()) CHECK(checked >= 6);
}

TEST_CASE("gguf vocabularies: bad metadata is a clear error") {
  jielong::test::TempDir dir;
  // A GGUF v3 file with only tokenizer.ggml.model = "gpt2" and a bogus pre.
  auto write = [&](const std::string& name, const std::vector<std::pair<std::string, std::string>>& kv) {
    std::string f = "GGUF";
    auto u32 = [&](uint32_t v) { f.append(reinterpret_cast<const char*>(&v), 4); };
    auto u64 = [&](uint64_t v) { f.append(reinterpret_cast<const char*>(&v), 8); };
    auto str = [&](const std::string& s) { u64(s.size()); f += s; };
    u32(3);
    u64(0);
    u64(kv.size());
    for (const auto& [k, v] : kv) {
      str(k);
      u32(8);  // string
      str(v);
    }
    std::ofstream(dir.file(name), std::ios::binary) << f;
    return dir.file(name);
  };
  {
    auto t = Tokenizer::from_gguf(write("no_model.gguf", {{"general.name", "x"}}));
    REQUIRE_FALSE(t.ok());
    CHECK(t.status().message().find("tokenizer.ggml.model") != std::string::npos);
  }
  {
    auto t = Tokenizer::from_gguf(write("bad_model.gguf", {{"tokenizer.ggml.model", "t5x"}}));
    CHECK(t.status().code() == jielong::Code::unsupported);
    CHECK(t.status().message().find("t5x") != std::string::npos);
  }
  {
    auto t = Tokenizer::from_gguf(write("bad_pre.gguf", {{"tokenizer.ggml.model", "gpt2"}, {"tokenizer.ggml.pre", "nonesuch"}}));
    CHECK(t.status().code() == jielong::Code::unsupported);
    CHECK(t.status().message().find("nonesuch") != std::string::npos);
  }
  {
    auto t = Tokenizer::from_gguf(write("no_tokens.gguf", {{"tokenizer.ggml.model", "llama"}}));
    REQUIRE_FALSE(t.ok());
    CHECK(t.status().message().find("tokenizer.ggml.tokens") != std::string::npos);
  }
}

#ifdef JIELONG_CLI_PATH
namespace {
// Runs the jielong command; returns its exit code and standard output.
std::pair<int, std::string> run_cli(const std::string& args) {
  const std::string cmd = std::string(JIELONG_CLI_PATH) + " " + args + " 2>/dev/null";
  std::FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  std::array<char, 4096> buf;
  for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), p)) > 0;) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}
}  // namespace

TEST_CASE("jielong tokenize") {
  const auto spm = jielong::test::shared_file("vocab/ggml-vocab-llama-spm.gguf");
  const auto gpt2 = jielong::test::shared_file("vocab/ggml-vocab-gpt-2.gguf");
  const auto l2c = jielong::test::shared_file("models/llama2-tokenizer.bin");
  if (!spm || !gpt2 || !l2c) return;
  CHECK(run_cli("tokenize -m " + *spm + " -p 'Hello world' --ids") == std::pair<int, std::string>{0, "[1, 15043, 3186]\n"});
  CHECK(run_cli("tokenize -m " + *spm + " -p 'Hello world' --ids --no-bos") == std::pair<int, std::string>{0, "[15043, 3186]\n"});
  CHECK(run_cli("tokenize -m " + *gpt2 + " -p 'Hello world' --ids") == std::pair<int, std::string>{0, "[15496, 995]\n"});
  // Escapes: "a\nb" is three tokens with the newline <0x0A> = 13; without
  // processing, the backslash stays text.
  CHECK(run_cli("tokenize -m " + *spm + " -p 'a\\nb' --ids --no-bos") == std::pair<int, std::string>{0, "[263, 13, 29890]\n"});
  CHECK(run_cli("tokenize -m " + *spm + " -p 'a\\nb' --ids --no-bos --no-escape") ==
        std::pair<int, std::string>{0, "[263, 29905, 9877]\n"});
  CHECK(run_cli("tokenize -m " + *gpt2 + " -p 'Hello<|endoftext|>' --ids") == std::pair<int, std::string>{0, "[15496, 50256]\n"});
  CHECK(run_cli("tokenize -m " + *gpt2 + " -p '<|endoftext|>' --ids --no-parse-special") ==
        std::pair<int, std::string>{0, "[27, 91, 437, 1659, 5239, 91, 29]\n"});
  // The per-token listing, and the llama2.c tokenizer.
  CHECK(run_cli("tokenize -z " + *l2c + " -p 'Hello world'") ==
        std::pair<int, std::string>{0, "     1 -> '<s>'\n 15043 -> ' Hello'\n  3186 -> ' world'\n"});
  // Errors: exit code 1.
  CHECK(run_cli("tokenize -p x").first == 1);
  CHECK(run_cli("tokenize -m /nonexistent.gguf -p x").first == 1);
  CHECK(run_cli("tokenize -m " + *gpt2 + " -p x --bogus").first == 1);
}
#endif

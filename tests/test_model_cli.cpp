// The engine's commands end to end, on a model the test writes itself with
// `jielong synth` (so nothing from ../shared is needed): the README's quick
// start, greedy generate against eval's greedy continuation, the over-long
// prompt error, and `jielong bench`'s llama-bench-shaped output.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "support/cli.hpp"
#include "support/skip.hpp"

#ifdef JIELONG_CLI_PATH

namespace {

using jielong::test::run_jielong;
using jielong::test::Run;

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() / ("jielong-model-cli-" + std::to_string(getpid()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

// The value after "key": in one JSON object of flat fields (numbers or
// strings); empty if absent.
std::string field(const std::string& obj, const std::string& key) {
  const std::string k = "\"" + key + "\": ";
  const size_t at = obj.find(k);
  if (at == std::string::npos) return {};
  const size_t b = at + k.size();
  size_t e = b;
  if (obj[b] == '"') {
    e = obj.find('"', b + 1) + 1;
  } else if (obj[b] == '[') {
    e = obj.find(']', b) + 1;
  } else {
    while (e < obj.size() && obj[e] != ',' && obj[e] != '}') ++e;
  }
  return obj.substr(b, e - b);
}

// Decodes the "text" string of an eval JSON line (escapes \" \\ \n \uXXXX
// for ASCII only: enough for the byte-level vocabulary synth writes).
std::string json_text(const std::string& line) {
  const std::string k = "\"text\":\"";
  const size_t at = line.find(k);
  if (at == std::string::npos) return "<no text>";
  std::string s;
  for (size_t i = at + k.size(); i < line.size() && line[i] != '"'; ++i) {
    if (line[i] != '\\') {
      s += line[i];
      continue;
    }
    const char c = line[++i];
    if (c == 'n') s += '\n';
    else if (c == 't') s += '\t';
    else if (c == 'u') {
      s += static_cast<char>(std::strtol(line.substr(i + 1, 4).c_str(), nullptr, 16));
      i += 4;
    } else s += c;
  }
  return s;
}

}  // namespace

TEST_CASE("quick start: synth, then generate; greedy generate == eval's greedy text") {
  TempDir dir;
  const std::string model = dir / "demo.gguf";
  REQUIRE(run_jielong("synth -o " + model).code == 0);
  const Run gen = run_jielong("generate -m " + model + " -p \"Once upon a time\" -n 12 --temp 0");
  REQUIRE(gen.code == 0);
  // generate prints the continuation and one final newline.
  REQUIRE(!gen.out.empty());
  CHECK(gen.out.back() == '\n');
  // eval picks its greedy ids by argmax over the logits of a batched
  // prefill, generate by the sampler chain after step-by-step decoding: two
  // paths that must give the same text.
  const Run ev = run_jielong("eval -m " + model + " -n 12 --top 1 -p \"Once upon a time\"");
  REQUIRE(ev.code == 0);
  CHECK(gen.out.substr(0, gen.out.size() - 1) == json_text(ev.out));
}

TEST_CASE("a prompt longer than the context is a clear error") {
  TempDir dir;
  const std::string model = dir / "demo.gguf";
  REQUIRE(run_jielong("synth -o " + model).code == 0);
  const Run r = run_jielong("generate -m " + model + " -c 4 -p \"a prompt of many more than four tokens\" -n 2", true);
  CHECK(r.code == 1);
  CHECK(r.out.find("exceed the context of 4") != std::string::npos);
}

TEST_CASE("bench: llama-bench fields, one object per test and thread count") {
  TempDir dir;
  const std::string model = dir / "tiny.gguf";
  REQUIRE(run_jielong("synth --embd 64 --ff 128 --layers 2 --heads 4 --kv-heads 2 -o " + model).code == 0);
  const Run r = run_jielong("bench -m " + model + " -p 8 -n 4 -t 1,2 -r 3 -o json");
  REQUIRE(r.code == 0);
  std::vector<std::string> objs;
  for (size_t b = 0; (b = r.out.find('{', b)) != std::string::npos;) {
    const size_t e = r.out.find('}', b);
    REQUIRE(e != std::string::npos);
    objs.push_back(r.out.substr(b, e - b + 1));
    b = e;
  }
  REQUIRE(objs.size() == 4);  // pp8 and tg4, at 1 and at 2 threads
  const char* expect[4][3] = {{"8", "0", "1"}, {"0", "4", "1"}, {"8", "0", "2"}, {"0", "4", "2"}};
  for (size_t i = 0; i < 4; ++i) {
    CAPTURE(objs[i]);
    CHECK(field(objs[i], "n_prompt") == expect[i][0]);
    CHECK(field(objs[i], "n_gen") == expect[i][1]);
    CHECK(field(objs[i], "n_threads") == expect[i][2]);
    const double avg = std::atof(field(objs[i], "avg_ts").c_str());
    const double sd = std::atof(field(objs[i], "stddev_ts").c_str());
    CHECK(avg > 0.0);
    CHECK(sd >= 0.0);
    // avg_ts is the mean of the three samples it lists (to their printed precision).
    const std::string samples = field(objs[i], "samples_ts");
    std::vector<double> xs;
    const char* p = samples.c_str() + 1;  // after '['
    while (*p && *p != ']') {
      char* end = nullptr;
      xs.push_back(std::strtod(p, &end));
      if (end == p) break;
      p = end;
      while (*p == ',' || *p == ' ') ++p;
    }
    REQUIRE(xs.size() == 3);
    const double sum = xs[0] + xs[1] + xs[2];
    CHECK(sum / 3 == doctest::Approx(avg).epsilon(1e-6));
  }
  // Markdown: a header and one row per test.
  const Run md = run_jielong("bench -m " + model + " -p 8 -n 4 -r 1");
  REQUIRE(md.code == 0);
  CHECK(md.out.find("| pp8 |") != std::string::npos);
  CHECK(md.out.find("| tg4 |") != std::string::npos);
}

TEST_CASE("bench: bad flags exit with 1 and name the flag") {
  TempDir dir;
  const std::string model = dir / "tiny.gguf";
  REQUIRE(run_jielong("synth --embd 64 --ff 128 --layers 1 --heads 4 -o " + model).code == 0);
  const Run fmt = run_jielong("bench -m " + model + " -o xml", true);
  CHECK(fmt.code == 1);
  CHECK(fmt.out.find("-o") != std::string::npos);
  const Run zero = run_jielong("bench -m " + model + " -t 0", true);
  CHECK(zero.code == 1);
  CHECK(zero.out.find("-t") != std::string::npos);
  const Run missing = run_jielong("bench -m " + (dir / "absent.gguf"), true);
  CHECK(missing.code == 1);
  CHECK(missing.out.find("absent.gguf") != std::string::npos);
}

#else
TEST_CASE("engine commands") { jielong::test::skip("built without JIELONG_CLI_PATH"); }
#endif

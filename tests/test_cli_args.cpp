// The jielong command on bad arguments: each is refused with a message naming
// the flag and exit code 1, before a model is touched; valid but unusual input
// (invalid UTF-8, an empty prompt) is not an error. Then hostile model files:
// every damaged file gives exit code 1..125 and a message, never a signal.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "jielong/model/synth.hpp"
#include "support/cli.hpp"
#include "support/skip.hpp"

#ifdef JIELONG_CLI_PATH

namespace {

std::string temp_path(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir && *dir ? dir : "/tmp") + "/jielong-cli-args-" + std::to_string(getpid()) + "-" + name;
}

using jielong::test::read_file;

struct Outcome {
  bool exited = false;   // false: killed by a signal (or by the time limit)
  int code = -1;         // exit code, or the signal number
  std::string out, err;
};

// Starts the command with exactly these arguments (no shell), killed after
// `seconds`. Output goes through files so that a large output cannot block it.
pid_t start_cli(const std::vector<std::string>& args, unsigned seconds, const std::string& out_path,
                const std::string& err_path) {
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int o = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o < 0 || e < 0) _exit(127);
    dup2(o, 1);
    dup2(e, 2);
    alarm(seconds);  // SIGALRM ends a hang; it is reported as a signal
    std::vector<char*> argv;
    static std::string exe = JIELONG_CLI_PATH;
    argv.push_back(exe.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

// Waits for a started command and collects what it wrote.
Outcome finish_cli(pid_t pid, const std::string& out_path, const std::string& err_path) {
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  Outcome r;
  r.exited = WIFEXITED(status);
  r.code = r.exited ? WEXITSTATUS(status) : WTERMSIG(status);
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  std::filesystem::remove(out_path);
  std::filesystem::remove(err_path);
  return r;
}

Outcome run_cli(const std::vector<std::string>& args, unsigned seconds = 60) {
  const std::string out_path = temp_path("out"), err_path = temp_path("err");
  return finish_cli(start_cli(args, seconds, out_path, err_path), out_path, err_path);
}

// A tiny model with a byte-level vocabulary and a 32-token context.
const std::string& tiny_model() {
  static const std::string path = [] {
    jielong::model::SynthSpec spec;
    spec.n_embd = 32;
    spec.n_ff = 64;
    spec.n_layers = 1;
    spec.n_heads = 4;
    spec.n_kv_heads = 2;
    spec.n_vocab = 300;
    spec.n_ctx = 32;
    const std::string p = temp_path("tiny.gguf");
    REQUIRE(jielong::model::write_synth_model(spec, p).is_ok());
    return p;
  }();
  return path;
}

void expect_refused(const std::vector<std::string>& args, const std::string& what) {
  std::string joined;
  for (const auto& a : args) joined += a + " ";
  CAPTURE(joined);
  const Outcome r = run_cli(args);
  CAPTURE(r.err);
  CHECK(r.exited);
  CHECK(r.code == 1);
  CHECK(r.err.find(what) != std::string::npos);
}

}  // namespace

TEST_CASE("jielong generate: out-of-range flags exit 1 naming the flag") {
  const std::string m = tiny_model();
  const std::vector<std::string> base = {"generate", "-m", m, "-p", "hi", "-n", "2"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = base;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  {
    const Outcome ok = run_cli(base);  // the base command works: the refusals below are the flags' doing
    CAPTURE(ok.err);
    CHECK(ok.exited);
    CHECK(ok.code == 0);
  }
  expect_refused(with({"--temp", "-0.5"}), "--temp");
  expect_refused(with({"--temp=-1"}), "--temp");
  expect_refused(with({"--top-p", "0"}), "--top-p");
  expect_refused(with({"--top-p", "1.5"}), "--top-p");
  expect_refused(with({"--top-p", "-0.1"}), "--top-p");
  expect_refused(with({"--top-p", "nan"}), "--top-p");
  expect_refused(with({"--top-k", "-1"}), "--top-k");
  expect_refused(with({"-t", "0"}), "-t");
  expect_refused(with({"--threads", "-4"}), "--threads");
  expect_refused(with({"-n", "-1"}), "-n");
  expect_refused(with({"-n", "12abc"}), "-n");
  expect_refused(with({"-n", "99999999999999999999999"}), "-n");
  expect_refused(with({"--no-such-flag"}), "unknown flag '--no-such-flag'");
  expect_refused(with({"--temp"}), "needs a value");
  expect_refused(with({"extra-positional"}), "unexpected argument");
  expect_refused({"no-such-command"}, "no-such-command");
}

TEST_CASE("jielong generate: prompt and length against the context") {
  const std::string m = tiny_model();
  // 40 byte tokens and more: past the model's 32-token context.
  const std::string long_prompt(200, 'x');
  expect_refused({"generate", "-m", m, "-p", long_prompt, "-n", "1"}, "context");
  // -n past the context: refused up front rather than cut short silently.
  expect_refused({"generate", "-m", m, "-p", "hi", "-n", "100"}, "context");
  expect_refused({"generate", "-m", m, "-p", "hi", "-n", "10", "-c", "8"}, "context");
}

TEST_CASE("jielong: invalid UTF-8 and empty prompts are text, not errors") {
  const std::string m = tiny_model();
  for (const std::string& prompt : {std::string(""), std::string("\xff\xfe\xc0 \xe4\xbd"), std::string("a\x80")}) {
    CAPTURE(prompt);
    const Outcome g = run_cli({"generate", "-m", m, "-p", prompt, "-n", "3", "--seed", "1"});
    CAPTURE(g.err);
    CHECK(g.exited);
    CHECK(g.code == 0);
    const Outcome t = run_cli({"tokenize", "-m", m, "-p", prompt, "--ids"});
    CAPTURE(t.err);
    CHECK(t.exited);
    CHECK(t.code == 0);
    CHECK(t.out.rfind("[", 0) == 0);
  }
}

TEST_CASE("jielong info/tokenize/generate on damaged files: exit 1..125 with a message") {
  const std::string m = tiny_model();
  std::string good = read_file(m);
  REQUIRE(good.size() > 4096);
  const std::string path = temp_path("damaged.gguf");
  size_t runs = 0;
  auto check_file = [&](const std::string& bytes, const std::string& label) {
    CAPTURE(label);
    std::ofstream(path, std::ios::binary) << bytes;
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"info", path}, {"tokenize", "-m", path, "-p", "Hello"},
          {"generate", "-m", path, "-p", "Hi", "-n", "2"}}) {
      CAPTURE(args[0]);
      const Outcome r = run_cli(args, 30);
      ++runs;
      CAPTURE(r.err);
      CHECK(r.exited);  // never a signal, never the time limit
      CHECK(r.err.find("Sanitizer") == std::string::npos);  // when the command is built with sanitizers
      if (r.exited && r.code != 0) {
        CHECK(r.code <= 125);
        CHECK(!r.err.empty());
      }
    }
  };
  // Truncations across the metadata and into the data.
  for (size_t cut : {size_t{0}, size_t{3}, size_t{8}, size_t{16}, size_t{23}, size_t{40}, size_t{100}, size_t{1000},
                     size_t{3000}, good.size() / 2, good.size() - 1})
    check_file(good.substr(0, cut), "cut at " + std::to_string(cut));
  // 64-bit fields overwritten with huge values at deterministic positions in the header.
  uint64_t state = 12345;
  for (int i = 0; i < 16; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    std::string b = good;
    const size_t pos = (state >> 33) % 2048;
    const uint64_t v = (i & 1) ? (uint64_t{1} << 60) : ~uint64_t{0};
    std::memcpy(b.data() + pos, &v, 8);
    check_file(b, "u64 at " + std::to_string(pos));
  }
  // A directory and a missing file.
  for (const std::string& p : {std::filesystem::temp_directory_path().string(), temp_path("missing.gguf")}) {
    const Outcome r = run_cli({"info", p});
    CHECK(r.exited);
    CHECK(r.code == 1);
    CHECK(r.err.find(p) != std::string::npos);
  }
  MESSAGE(runs << " runs of the command on damaged files");
  std::filesystem::remove(path);
}

// The model file truncated by someone else while the command generates from
// its mapping: the lost pages raise SIGBUS, and the command must say so and
// exit 1, not die silently. The file is truncated 300 ms after the child has
// it mapped (seen in /proc/<pid>/maps; loading takes milliseconds), while it
// is generating: 30000 tokens over a growing context take far longer.
TEST_CASE("jielong generate: a model truncated while mapped ends with a message and exit code 1") {
  jielong::model::SynthSpec spec;
  spec.n_embd = 64;
  spec.n_ff = 128;
  spec.n_layers = 2;
  spec.n_heads = 4;
  spec.n_kv_heads = 2;
  spec.n_vocab = 300;
  spec.n_ctx = 32768;
  const std::string model = temp_path("shrinking.gguf");
  REQUIRE(jielong::model::write_synth_model(spec, model).is_ok());
  const std::string out_path = temp_path("shrink-out"), err_path = temp_path("shrink-err");
  const pid_t pid = start_cli({"generate", "-m", model, "-p", "a", "-n", "30000", "--temp", "0"}, 120, out_path, err_path);
  bool mapped = false;
  const std::string maps = "/proc/" + std::to_string(pid) + "/maps";
  for (int i = 0; i < 20000 && !mapped; ++i) {
    mapped = read_file(maps).find(model) != std::string::npos;
    if (!mapped) usleep(500);
  }
  CHECK(mapped);
  usleep(300 * 1000);
  REQUIRE(::truncate(model.c_str(), 0) == 0);
  const Outcome r = finish_cli(pid, out_path, err_path);
  CAPTURE(r.err);
  REQUIRE(r.exited);
  CHECK(r.code == 1);
  CHECK(r.err.find("truncated or removed while in use") != std::string::npos);
  std::filesystem::remove(model);
}

#else
TEST_CASE("jielong command argument checks") { jielong::test::skip("the jielong command is not built"); }
#endif

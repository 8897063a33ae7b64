// `jielong chat` and the default model, end to end on models the test writes
// with `jielong synth` (nothing from ../shared): where the default model is
// looked for, and the chat loop driven through a pipe.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "support/cli.hpp"
#include "support/skip.hpp"

#ifdef JIELONG_CLI_PATH

namespace chat_cli_test {

using jielong::test::Run;
using jielong::test::run_jielong;

struct Dir {
  std::filesystem::path path;
  explicit Dir(const std::string& tag) {
    path = std::filesystem::temp_directory_path() / ("jielong-chat-cli-" + tag + "-" + std::to_string(getpid()));
    std::filesystem::create_directories(path);
  }
  ~Dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

// Sets an environment variable for one scope (the jielong child inherits it).
struct Env {
  std::string name;
  Env(const char* n, const std::string& value) : name(n) { setenv(n, value.c_str(), 1); }
  ~Env() { unsetenv(name.c_str()); }
};

const char* kTiny = "synth --embd 64 --ff 128 --layers 2 --heads 4 --kv-heads 2 ";

}  // namespace chat_cli_test

using namespace chat_cli_test;

TEST_CASE("default model: $JIELONG_MODEL, then chat before base in $JIELONG_MODELS, else an error naming the places") {
  Dir dir("default");
  const std::string a = dir / "a.gguf", b = dir / "b.gguf";
  REQUIRE(run_jielong(std::string(kTiny) + "--seed 1 -o " + a).code == 0);
  REQUIRE(run_jielong(std::string(kTiny) + "--seed 2 -o " + b).code == 0);
  const std::string gen = "generate -p \"Once upon a time\" -n 8 --temp 0";
  const Run with_a = run_jielong(gen + " -m " + a), with_b = run_jielong(gen + " -m " + b);
  REQUIRE(with_a.code == 0);
  REQUIRE(with_b.code == 0);
  REQUIRE(with_a.out != with_b.out);  // two seeds, two texts: the runs below tell which model was used

  Dir models("models");
  {
    Env env("JIELONG_MODELS", models.path.string());
    const Run none = run_jielong(gen, true);
    CHECK(none.code == 1);
    CHECK(none.out.find(models / "jielong-chat.gguf") != std::string::npos);
    CHECK(none.out.find(models / "jielong-base.gguf") != std::string::npos);

    std::filesystem::copy_file(a, models / "jielong-base.gguf");
    CHECK(run_jielong(gen).out == with_a.out);
    std::filesystem::copy_file(b, models / "jielong-chat.gguf");
    CHECK(run_jielong(gen).out == with_b.out);
    {
      Env model("JIELONG_MODEL", a);  // wins over the folder
      CHECK(run_jielong(gen).out == with_a.out);
    }
    {
      Env model("JIELONG_MODEL", dir / "absent.gguf");
      const Run absent = run_jielong(gen, true);
      CHECK(absent.code == 1);
      CHECK(absent.out.find(dir / "absent.gguf") != std::string::npos);
    }
    CHECK(run_jielong(gen + " -m " + a).out == with_a.out);  // -m wins over everything
  }
}

#else
TEST_CASE("chat command") { jielong::test::skip("built without JIELONG_CLI_PATH"); }
#endif

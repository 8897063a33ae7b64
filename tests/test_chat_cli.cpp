// `jielong chat` and the default model, end to end on models the test writes
// with `jielong synth` (nothing from ../shared): where the default model is
// looked for, the chat loop driven through a pipe, and Ctrl-C through a
// pseudo-terminal.
#include <doctest/doctest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

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

// One `jielong chat` run with `input` piped to its stdin: the exit code, the
// replies (stdout, each followed by a newline) and stderr (prompts,
// statistics, messages).
struct Chat {
  int code = -1;
  std::string out, err;
  // The numbers of each statistics line: "[prompt: P tokens, ...; reply: R tokens, ...; context: C/N]".
  struct Turn {
    size_t prompt = 0, reply = 0, context = 0;
  };
  std::vector<Turn> turns() const {
    std::vector<Turn> t;
    for (size_t at = 0; (at = err.find("[prompt: ", at)) != std::string::npos; ++at) {
      Turn x;
      x.prompt = std::strtoul(err.c_str() + at + 9, nullptr, 10);
      const size_t r = err.find("reply: ", at), c = err.find("context: ", at);
      REQUIRE(r != std::string::npos);
      REQUIRE(c != std::string::npos);
      x.reply = std::strtoul(err.c_str() + r + 7, nullptr, 10);
      x.context = std::strtoul(err.c_str() + c + 9, nullptr, 10);
      t.push_back(x);
    }
    return t;
  }
};

Chat chat(const Dir& dir, const std::string& args, const std::string& input) {
  {
    std::ofstream(dir / "input.txt", std::ios::binary) << input;
  }
  const std::string cmd = "cat " + (dir / "input.txt") + " | " + JIELONG_CLI_PATH + " chat " + args + " 2>" +
                          (dir / "stderr.txt");
  const Run r = jielong::test::run_shell(cmd);
  Chat c;
  c.code = r.code;
  c.out = r.out;
  c.err = jielong::test::read_file(dir / "stderr.txt");
  return c;
}

// The number of tokens `jielong tokenize` finds in `text` (no BOS).
size_t count_tokens(const std::string& model, const std::string& text) {
  const Run r = run_jielong("tokenize --no-bos --ids -m " + model + " -p '" + text + "'");
  REQUIRE(r.code == 0);
  size_t n = 0;
  for (char ch : r.out) n += ch == ',';
  return r.out.find_first_of("0123456789") == std::string::npos ? 0 : n + 1;
}

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

TEST_CASE("chat: two turns keep the KV cache, EOF exits with 0, a model without a template is refused") {
  Dir dir("turns");
  const std::string model = dir / "chat.gguf";
  REQUIRE(run_jielong(std::string(kTiny) + "--chat-template chatml -o " + model).code == 0);
  const Chat c = chat(dir, "-m " + model + " -n 6 --temp 0 --system 'Be brief.'", "hello\nhow are you?\n");
  CAPTURE(c.err);
  CHECK(c.code == 0);
  const auto t = c.turns();
  REQUIRE(t.size() == 2);
  // The first turn prefills BOS, the system prompt and the user's message in
  // ChatML; the second only its own message: what ChatML adds for it, as
  // `jielong tokenize` counts it.
  CHECK(t[0].prompt == 1 + count_tokens(model, "<|im_start|>system\\nBe brief.<|im_end|>\\n<|im_start|>user\\nhello"
                                               "<|im_end|>\\n<|im_start|>assistant\\n"));
  CHECK(t[1].prompt == count_tokens(model, "<|im_start|>user\\nhow are you?<|im_end|>\\n<|im_start|>assistant\\n"));
  CHECK(t[0].reply == 6);
  CHECK(t[1].reply == 6);
  // Every token is in the cache once: the turns, the replies and each
  // reply's closing "<|im_end|>\n".
  const size_t closing = count_tokens(model, "<|im_end|>\\n");
  CHECK(t[0].context == t[0].prompt + t[0].reply + closing);
  CHECK(t[1].context == t[0].context + t[1].prompt + t[1].reply + closing);

  // A backslash at the end of a line joins the next one to the message.
  const Chat joined = chat(dir, "-m " + model + " -n 2 --temp 0", "two\\\nlines\n");
  CHECK(joined.code == 0);
  REQUIRE(joined.turns().size() == 1);
  CHECK(joined.turns()[0].prompt ==
        1 + count_tokens(model, "<|im_start|>user\\ntwo\\nlines<|im_end|>\\n<|im_start|>assistant\\n"));

  // A message that does not end in a newline is still read before EOF.
  const Chat last = chat(dir, "-m " + model + " -n 2 --temp 0", "hello");
  CHECK(last.code == 0);
  CHECK(last.turns().size() == 1);

  const std::string plain = dir / "plain.gguf";
  REQUIRE(run_jielong(std::string(kTiny) + "-o " + plain).code == 0);
  const Chat refused = chat(dir, "-m " + plain, "hello\n");
  CHECK(refused.code == 1);
  CHECK(refused.err.find("no chat template") != std::string::npos);
  CHECK(chat(dir, "-m " + plain + " --template chatml -n 2", "hello\n").turns().size() == 1);
}

TEST_CASE("chat: /reset starts over from the seed; /save then /load continues as without them") {
  Dir dir("save");
  const std::string model = dir / "chat.gguf";
  REQUIRE(run_jielong(std::string(kTiny) + "--chat-template chatml -o " + model).code == 0);
  // Sampled (temperature 1.5 over a random model), so the replies depend on
  // the seed's stream: a restored session must carry the sampler's state.
  const std::string args = "-m " + model + " -n 16 --temp 1.5 --top-k 0 --top-p 1 --min-p 0 -s 7";
  const Chat whole = chat(dir, args, "hello\nagain\n");
  REQUIRE(whole.code == 0);
  const auto wt = whole.turns();
  REQUIRE(wt.size() == 2);

  // /reset: the same first message gets the same reply as in a fresh run.
  const Chat reset = chat(dir, args, "hello\n/reset\nhello\n");
  REQUIRE(reset.code == 0);
  const auto rt = reset.turns();
  REQUIRE(rt.size() == 2);
  CHECK(rt[1].context == rt[0].context);
  CHECK(rt[1].prompt == rt[0].prompt);  // BOS and the whole template again: nothing kept
  const Chat fresh = chat(dir, args, "hello\n");
  REQUIRE(fresh.code == 0);
  CHECK(reset.out == fresh.out + fresh.out);

  // /save after the first turn, /load in another process, the second turn.
  const std::string saved = dir / "conversation.jlchat";
  const Chat first = chat(dir, args, "hello\n/save " + saved + "\n");
  REQUIRE(first.code == 0);
  CHECK(first.err.find("[saved 2 messages") != std::string::npos);
  // Another seed: the loaded sampler state, not the flag, decides the reply.
  const Chat second = chat(dir, "-m " + model + " -n 16 --temp 1.5 --top-k 0 --top-p 1 --min-p 0 -s 99",
                           "/load " + saved + "\nagain\n");
  REQUIRE(second.code == 0);
  CAPTURE(second.err);
  const auto st = second.turns();
  REQUIRE(st.size() == 1);
  CHECK(st[0].prompt == wt[1].prompt);
  CHECK(st[0].context == wt[1].context);
  CHECK(first.out + second.out == whole.out);

  // A damaged file is refused and the conversation goes on unchanged.
  {
    std::string bytes = jielong::test::read_file(saved);
    bytes[bytes.size() / 2] ^= 1;
    std::ofstream(dir / "damaged.jlchat", std::ios::binary) << bytes;
  }
  const Chat damaged = chat(dir, args, "hello\n/load " + (dir / "damaged.jlchat") + "\nagain\n");
  CHECK(damaged.code == 0);
  CHECK(damaged.err.find("checksum") != std::string::npos);
  CHECK(damaged.out == whole.out);
}

TEST_CASE("chat: a full context stops the reply or refuses the message, with a message, never a crash") {
  Dir dir("full");
  const std::string model = dir / "chat.gguf";
  REQUIRE(run_jielong(std::string(kTiny) + "--chat-template chatml -o " + model).code == 0);
  const Chat c = chat(dir, "-m " + model + " -c 48 --temp 0", "hello\nhello again\n/reset\nhello\n");
  CAPTURE(c.err);
  CHECK(c.code == 0);
  const auto t = c.turns();
  REQUIRE(t.size() == 2);  // the second message found no room; after /reset the third did
  CHECK(t[0].context == 48);  // the reply ran until only its closing fitted
  CHECK(c.err.find("cut: the context is full") != std::string::npos);
  CHECK(c.err.find("[context full: 48 of 48 tokens used") != std::string::npos);
  CHECK(t[1].context == 48);
}

// Runs `jielong chat` on a pseudo-terminal as a user would: Ctrl-C (the
// terminal's interrupt character) while a reply streams ends the reply and
// the chat goes on; Ctrl-C at the prompt leaves.
TEST_CASE("chat: Ctrl-C on a terminal ends the reply, not the program; at the prompt it leaves") {
  Dir dir("pty");
  const std::string model = dir / "chat.gguf";
  // Greedy decoding of this random model does not end its turn by itself:
  // uninterrupted, the reply would fill the 4096 positions (tens of seconds).
  REQUIRE(run_jielong("synth --chat-template chatml --ctx 4096 -o " + model).code == 0);
  int master = -1;
  const pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const std::string cli = JIELONG_CLI_PATH;
    execl(cli.c_str(), cli.c_str(), "chat", "-m", model.c_str(), "--temp", "0", static_cast<char*>(nullptr));
    _exit(127);
  }
  std::string seen;
  // What the terminal shows within 100 ms; false once it is closed.
  auto read_some = [&] {
    pollfd pfd{master, POLLIN, 0};
    if (poll(&pfd, 1, 100) <= 0) return true;
    char buf[4096];
    const ssize_t n = read(master, buf, sizeof buf);
    if (n <= 0) return false;
    seen.append(buf, static_cast<size_t>(n));
    return true;
  };
  // Reads until `want` appears after `from`, or 60 s pass.
  auto wait_for = [&](const std::string& want, size_t from) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (seen.find(want, from) == std::string::npos && std::chrono::steady_clock::now() < end)
      if (!read_some()) break;
    return seen.find(want, from);
  };
  auto type = [&](const std::string& s) { REQUIRE(write(master, s.data(), s.size()) == static_cast<ssize_t>(s.size())); };

  REQUIRE(wait_for("> ", 0) != std::string::npos);
  type("hello\n");
  const size_t echoed = wait_for("hello\r\n", 0);
  REQUIRE(echoed != std::string::npos);
  // The reply has begun when more than the echo has arrived.
  const size_t after_echo = echoed + 7;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (seen.size() < after_echo + 8 && std::chrono::steady_clock::now() < end && read_some()) {
  }
  type("\x03");  // Ctrl-C
  const size_t stats = wait_for("[prompt: ", after_echo);
  REQUIRE(stats != std::string::npos);
  REQUIRE(wait_for("]", stats) != std::string::npos);
  const std::string line = seen.substr(stats, seen.find(']', stats) - stats + 1);
  CAPTURE(line);
  CHECK(line.find("interrupted") != std::string::npos);
  const size_t reply = std::strtoul(line.c_str() + line.find("reply: ") + 7, nullptr, 10);
  CHECK(reply > 0);
  CHECK(reply < 4000);
  // Still running: the prompt is back. Ctrl-C there leaves with 130 (as a
  // shell reports a program ended by SIGINT).
  REQUIRE(wait_for("> ", stats) != std::string::npos);
  type("\x03");
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  pid_t done = 0;
  while ((done = waitpid(pid, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline) {
    read_some();  // drain the terminal meanwhile
  }
  if (done == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  close(master);
  REQUIRE(done == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);
}

#else
TEST_CASE("chat command") { jielong::test::skip("built without JIELONG_CLI_PATH"); }
#endif

// jielong: the command-line face of the library, git-style subcommands.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string_view>

#include <unistd.h>

#include "args.hpp"
#include "cmd_bench.hpp"
#include "cmd_chat.hpp"
#include "cmd_chat_eval.hpp"
#include "cmd_eval.hpp"
#include "cmd_generate.hpp"
#include "cmd_info.hpp"
#include "cmd_perplexity.hpp"
#include "cmd_prepare_chat.hpp"
#include "cmd_prepare_data.hpp"
#include "cmd_quantize.hpp"
#include "cmd_synth.hpp"
#include "cmd_tokenize.hpp"
#include "cmd_train.hpp"
#include "cmd_train_tokenizer.hpp"
#include "cmd_version.hpp"

namespace {

using jielong::cli::Args;

struct Command {
  std::string_view name;
  std::string_view summary;
  int (*run)(Args&);
};

// One line per subcommand.
constexpr Command kCommands[] = {
    {"version", "print the version", jielong::cli::cmd_version},
    {"info", "a model's architecture, hyper-parameters, tensors and memory needs", jielong::cli::cmd_info},
    {"tokenize", "print the token ids of a text", jielong::cli::cmd_tokenize},
    {"synth", "write a seeded random-weight model", jielong::cli::cmd_synth},
    {"quantize", "write a model with quantized weights", jielong::cli::cmd_quantize},
    {"generate", "continue a prompt with a model", jielong::cli::cmd_generate},
    {"chat", "talk with a chat model (an interactive conversation)", jielong::cli::cmd_chat},
    {"eval", "logits and greedy continuations as JSON lines", jielong::cli::cmd_eval},
    {"perplexity", "negative log-likelihood of a text", jielong::cli::cmd_perplexity},
    {"bench", "prompt and generation speed, as llama-bench measures it", jielong::cli::cmd_bench},
    {"train-tokenizer", "learn a byte-level BPE vocabulary from text files", jielong::cli::cmd_train_tokenizer},
    {"prepare-data", "clean, split and tokenise text files into token shards", jielong::cli::cmd_prepare_data},
    {"train", "train a model from scratch on token shards", jielong::cli::cmd_train},
    {"prepare-chat", "instruction/answer pairs for a chat model from the corpora", jielong::cli::cmd_prepare_chat},
    {"chat-eval", "score a chat model's answers to held-out questions (token F1)", jielong::cli::cmd_chat_eval},
};

void print_usage(std::FILE* f) {
  std::fprintf(f,
               "usage: jielong <command> [options]\n\n"
               "jielong runs transformer language models (GGUF, llama2.c) on the CPU.\n\n"
               "commands:\n");
  for (const Command& c : kCommands)
    std::fprintf(f, "  %-16.*s %.*s\n", int(c.name.size()), c.name.data(), int(c.summary.size()), c.summary.data());
  std::fprintf(f, "\n'jielong <command> --help' describes a command's options.\n");
}

// Model files are memory-mapped: if another process truncates one while we
// run, reading a lost page raises SIGBUS. The library leaves signals to its
// host; this host says what happened and exits with an error code instead of
// dying silently. Only async-signal-safe calls here.
extern "C" void on_sigbus(int) {
  static const char msg[] =
      "jielong: error: a mapped model file was truncated or removed while in use (SIGBUS reading its pages)\n";
  const ssize_t ignored = ::write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)ignored;
  ::_exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  struct sigaction sa {};
  sa.sa_handler = on_sigbus;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, nullptr);
  if (argc < 2) {
    print_usage(stderr);
    return 1;
  }
  const std::string_view name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    print_usage(stdout);
    return 0;
  }
  for (const Command& c : kCommands) {
    if (c.name != name) continue;
    Args args{c.name, {}};
    for (int i = 2; i < argc; ++i) args.argv.emplace_back(argv[i]);
    return c.run(args);
  }
  std::fprintf(stderr, "jielong: unknown command '%s'\n\n", argv[1]);
  print_usage(stderr);
  return 1;
}

// The jielong command's flag parser over any argument vector (NUL-separated
// in the input), with every kind of flag the commands declare.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "../../examples/jielong/args.hpp"

using namespace jielong;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  cli::Args args{"fuzz", {}};
  size_t start = 0;
  for (size_t i = 0; i <= input.size(); ++i)
    if (i == input.size() || input[i] == '\0') {
      args.argv.push_back(input.substr(start, i - start));
      start = i + 1;
    }
  std::string model, out;
  std::vector<std::string> prompts;
  int64_t n = 0, threads = 1;
  double temp = 0.8, top_p = 1.0;
  bool chat = false;
  cli::Flags flags("fuzz", "fuzz [flags] IN [OUT]", "flag parser fuzzing");
  flags.add_string("-m,--model", &model, "model");
  flags.add_strings("-p,--prompt", &prompts, "prompt");
  flags.add_int("-n,--n-predict", &n, "tokens", 0, 1 << 20);
  flags.add_int("-t,--threads", &threads, "threads", 1, 512);
  flags.add_float("--temp", &temp, "temperature", 0.0);
  flags.add_float("--top-p", &top_p, "top-p", 0.0, 1.0);
  flags.add_switch("--chat", &chat, "chat");
  flags.add_positional("IN", &model, "input");
  flags.add_positional("OUT", &out, "output", false);
  (void)flags.parse(args);
  return 0;
}

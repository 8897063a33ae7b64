// Running the jielong command from a test: `run_jielong(ARGS)` runs it through
// the shell with stdout captured (stderr too when asked) and returns the exit
// code; `run_shell` runs any command line so. Only where the build defines
// JIELONG_CLI_PATH.
#pragma once

#ifdef JIELONG_CLI_PATH

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <doctest/doctest.h>

namespace jielong::test {

struct Run {
  int code = -1;
  std::string out;
};

// Runs a shell command line; its stdout and exit code.
inline Run run_shell(const std::string& cmd) {
  Run r;
  std::FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline Run run_jielong(const std::string& args, bool with_stderr = false) {
  return run_shell(std::string(JIELONG_CLI_PATH) + " " + args + (with_stderr ? " 2>&1" : " 2>/dev/null"));
}

// A whole file's bytes (empty if it cannot be read).
inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace jielong::test

#endif

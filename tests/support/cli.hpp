// Running the jielong command from a test: `run_jielong(ARGS)` runs it through
// the shell with stdout captured (stderr too when asked) and returns the exit
// code. Only where the build defines JIELONG_CLI_PATH.
#pragma once

#ifdef JIELONG_CLI_PATH

#include <sys/wait.h>

#include <cstdio>
#include <string>

#include <doctest/doctest.h>

namespace jielong::test {

struct Run {
  int code = -1;
  std::string out;
};

inline Run run_jielong(const std::string& args, bool with_stderr = false) {
  const std::string cmd = std::string(JIELONG_CLI_PATH) + " " + args + (with_stderr ? " 2>&1" : " 2>/dev/null");
  Run r;
  std::FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace jielong::test

#endif

// Checks that could not run here (../shared absent, the command not built)
// are counted; support/doctest_main.cpp turns a nonzero count into exit code
// 77 when nothing failed, which ctest (SKIP_RETURN_CODE) and Meson report as
// skipped, so a test that checked nothing is never reported as passed.
#pragma once

#include <string>

#include <doctest/doctest.h>

namespace jielong::test {

inline int& skip_count() {
  static int n = 0;
  return n;
}

// Says why a check did not run and counts it.
inline void skip(const std::string& why) {
  ++skip_count();
  MESSAGE("skipped: " << why);
}

}  // namespace jielong::test

// The tests' main: doctest's, with two changes for ctest and Meson, which run
// each test file as a test of its own through --source-file:
//  - a run in which nothing failed but some check skipped (../shared absent)
//    exits 77, the code they read as "skipped", so a missing model is never
//    reported as a pass (support/skip.hpp);
//  - a run whose filters select no test case fails, so a misspelt
//    registration cannot pass by running nothing.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "support/skip.hpp"

namespace {

unsigned selected_cases = 0;

// Hears the count of test cases the filters selected; reports nothing.
struct CountSelected : doctest::IReporter {
  explicit CountSelected(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats& stats) override { selected_cases = stats.numTestCasesPassingFilters; }
  void test_case_start(const doctest::TestCaseData&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};

}  // namespace

REGISTER_LISTENER("count_selected", 1, CountSelected);

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  const int status = context.run();
  if (context.shouldExit() || status != 0) return status;
  if (selected_cases == 0) {
    std::printf("no test case matches the filters given\n");
    return 1;
  }
  if (const int skips = jielong::test::skip_count(); skips > 0) {
    std::printf("%d check(s) skipped: reported as skipped (exit 77)\n", skips);
    return 77;
  }
  return 0;
}

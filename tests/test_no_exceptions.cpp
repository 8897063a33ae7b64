// Built with -fno-exceptions -fno-rtti (see tests/CMakeLists.txt and
// tests/meson.build): the whole library, through the umbrella header, as a
// game engine compiles it.
#include <doctest/doctest.h>

#include "jielong/jielong.hpp"

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#error "this test must be compiled with -fno-exceptions"
#endif
#if defined(__cpp_rtti) || defined(__GXX_RTTI)
#error "this test must be compiled with -fno-rtti"
#endif

TEST_CASE("the umbrella header works without exceptions and RTTI") {
  jielong::ThreadPool pool(2);
  size_t count = 0;
  std::atomic<size_t> n{0};
  jielong::parallel_for(pool, 100, 9, [&](size_t b, size_t e) { n += e - b; });
  count = n.load();
  CHECK(count == 100);
  auto missing = jielong::MappedFile::open("/nonexistent/x.gguf");
  CHECK_FALSE(missing.ok());
}

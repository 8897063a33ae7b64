// A program that uses jielong the way a host does: through the umbrella header.
#include <atomic>
#include <cstdio>

#include <jielong/jielong.hpp>

int main() {
  jielong::ThreadPool pool(2);
  std::atomic<size_t> total{0};
  jielong::parallel_for(pool, 1000, 64, [&](size_t begin, size_t end) {
    size_t local = 0;
    for (size_t i = begin; i < end; ++i) local += i;
    total += local;
  });
  auto missing = jielong::MappedFile::open("/nonexistent/jielong-consumer");
  if (total.load() != 999 * 1000 / 2 || missing.ok()) return 1;
  std::printf("jielong %s ok\n", JIELONG_VERSION_STRING);
  return 0;
}

// MappedFile: real files, mapped and read, and the errors for bad paths.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "jielong/core/mapped_file.hpp"
#include "support/shared.hpp"

using namespace jielong;

TEST_CASE("mapping and reading give the file's bytes") {
  test::TempDir dir;
  const std::string path = dir.file("data.bin");
  std::string content;
  for (int i = 0; i < 10000; ++i) content.push_back(static_cast<char>(i * 7 + 3));
  {
    std::ofstream out(path, std::ios::binary);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
  }
  auto mapped = MappedFile::open(path);
  REQUIRE(mapped.ok());
  CHECK(mapped->is_mapped());
  CHECK(mapped->size() == content.size());
  CHECK(std::memcmp(mapped->data(), content.data(), content.size()) == 0);
  CHECK(mapped->path() == path);

  auto copied = MappedFile::open(path, MappedFile::Mode::read_only_copy);
  REQUIRE(copied.ok());
  CHECK_FALSE(copied->is_mapped());
  CHECK(copied->size() == content.size());
  CHECK(std::memcmp(copied->data(), content.data(), content.size()) == 0);

  // Moving hands over the mapping; the moved-from object is empty.
  MappedFile moved = std::move(*mapped);
  CHECK(moved.size() == content.size());
  CHECK(mapped->size() == 0);
  CHECK(mapped->data() == nullptr);
}

TEST_CASE("a large file read into memory: the same bytes, in huge-page-aligned memory, released on move") {
  // 5 MiB + 3 bytes: past the 2 MiB threshold of the anonymous copy, and not
  // a whole number of pages.
  test::TempDir dir;
  const std::string path = dir.file("large.bin");
  std::string content(5 * 1024 * 1024 + 3, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>((i * 2654435761u) >> 13);
  {
    std::ofstream out(path, std::ios::binary);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
  }
  auto copied = MappedFile::open(path, MappedFile::Mode::read_only_copy);
  REQUIRE(copied.ok());
  CHECK_FALSE(copied->is_mapped());
  REQUIRE(copied->size() == content.size());
  CHECK(std::memcmp(copied->data(), content.data(), content.size()) == 0);
#if defined(__linux__)
  // Aligned to 2 MiB, so the kernel can back it with huge pages.
  CHECK(reinterpret_cast<uintptr_t>(copied->data()) % (2u << 20) == 0);
#endif
  MappedFile moved = std::move(*copied);
  CHECK(copied->data() == nullptr);
  CHECK(std::memcmp(moved.data(), content.data(), content.size()) == 0);
  moved = MappedFile();  // unmaps; ASan/LSan would report a lost region
  CHECK(moved.data() == nullptr);
}

TEST_CASE("an empty file opens with size 0") {
  test::TempDir dir;
  const std::string path = dir.file("empty.bin");
  { std::ofstream out(path, std::ios::binary); }
  auto f = MappedFile::open(path);
  REQUIRE(f.ok());
  CHECK(f->size() == 0);
}

TEST_CASE("missing files and directories are errors naming the path") {
  auto missing = MappedFile::open("/nonexistent/dir/model.gguf");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == Code::io_error);
  CHECK(missing.status().message().find("/nonexistent/dir/model.gguf") != std::string::npos);

  test::TempDir dir;
  auto directory = MappedFile::open(dir.path().string());
  REQUIRE_FALSE(directory.ok());
  CHECK(directory.status().message().find("directory") != std::string::npos);
  CHECK(directory.status().message().find(dir.path().string()) != std::string::npos);
}

// MappedFile: a whole file, read-only, as bytes. Memory-mapped where the
// system allows (weights then cost no copy and stay in the page cache shared
// between processes); read into an aligned buffer where it does not, or when
// asked to (`read_only_copy`).
//
// The copy is worth its load time for decoding on Linux: it lives in
// anonymous memory that asks for transparent huge pages (MADV_HUGEPAGE), while
// a mapped file is served in 4 KiB pages (huge pages for regular files need a
// kernel option few systems enable). Decoding streams every weight once per
// token, and with 4 KiB pages a 1 GB model touches 250,000 pages a token; see
// bench/README.md for what it changes.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <utility>

#include "jielong/core/memory.hpp"
#include "jielong/core/status.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define JIELONG_HAS_MMAP 1
#else
#define JIELONG_HAS_MMAP 0
#endif

namespace jielong {

class MappedFile {
 public:
  enum class Mode { map_or_read, read_only_copy };

  MappedFile() noexcept = default;
  MappedFile(MappedFile&& o) noexcept { *this = std::move(o); }
  MappedFile& operator=(MappedFile&& o) noexcept {
    if (this != &o) {
      release();
      path_ = std::move(o.path_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      mapped_ = std::exchange(o.mapped_, false);
      copy_ = std::move(o.copy_);
    }
    return *this;
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() { release(); }

  static Result<MappedFile> open(const std::string& path, Mode mode = Mode::map_or_read) {
    MappedFile f;
    f.path_ = path;
#if JIELONG_HAS_MMAP
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return make_error(Code::io_error, path + ": cannot open: " + std::strerror(errno));
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      return make_error(Code::io_error, path + ": cannot stat: " + std::strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      return make_error(Code::io_error, path + ": not a regular file" +
                                            std::string(S_ISDIR(st.st_mode) ? " (a directory)" : ""));
    }
    f.size_ = static_cast<size_t>(st.st_size);
    if (f.size_ > 0 && mode == Mode::map_or_read) {
      void* p = ::mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p != MAP_FAILED) {
        f.data_ = static_cast<const std::byte*>(p);
        f.mapped_ = true;
        ::close(fd);
        return f;
      }
    }
    Status s = f.read_all(fd);
    ::close(fd);
    if (!s.is_ok()) return s;
    return f;
#else
    std::FILE* fp = std::fopen(path.c_str(), "rb");
    if (!fp) return make_error(Code::io_error, path + ": cannot open: " + std::strerror(errno));
    std::fseek(fp, 0, SEEK_END);
    const long end = std::ftell(fp);
    std::fseek(fp, 0, SEEK_SET);
    if (end < 0) {
      std::fclose(fp);
      return make_error(Code::io_error, path + ": cannot determine the size");
    }
    f.size_ = static_cast<size_t>(end);
    if (f.size_ > 0) {
      f.copy_ = HugePageBuffer(f.size_);
      if (!f.copy_.data()) {
        std::fclose(fp);
        return make_error(Code::out_of_memory, path + ": " + std::to_string(f.size_) + " bytes");
      }
      if (std::fread(f.copy_.data(), 1, f.size_, fp) != f.size_) {
        std::fclose(fp);
        return make_error(Code::io_error, path + ": short read");
      }
      f.data_ = f.copy_.data();
    }
    std::fclose(fp);
    (void)mode;
    return f;
#endif
  }

  const std::byte* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }
  std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
  const std::string& path() const noexcept { return path_; }
  bool is_mapped() const noexcept { return mapped_; }

  // The owner of [p, p + n) has its own copy of those bytes (e.g. weights
  // repacked at load) and reads these no more: give the whole pages inside
  // the range back to the system. A mapping would read them again from the
  // file if touched; a copy would read zeros.
  void drop_pages(const void* p, size_t n) const noexcept {
    if (mapped_) evict_pages(p, n);
    else if (inside(p, n)) copy_.drop_pages(p, n);
  }

  // Bytes read once and rarely again (a GGUF file's metadata, once parsed):
  // a mapping gives the whole pages inside [p, p + n) back, to be read again
  // from the file if touched; a copy keeps them (it has nowhere to reread
  // them from).
  void evict_pages(const void* p, size_t n) const noexcept {
    if (mapped_ && inside(p, n)) drop_whole_pages(p, n);
  }

 private:
  bool inside(const void* p, size_t n) const noexcept {
    const auto* a = static_cast<const std::byte*>(p);
    return n != 0 && a >= data_ && a + n <= data_ + size_;
  }
#if JIELONG_HAS_MMAP
  Status read_all(int fd) {
    if (size_ == 0) return Status::ok();
    copy_ = HugePageBuffer(size_);
    if (!copy_.data()) return make_error(Code::out_of_memory, path_ + ": " + std::to_string(size_) + " bytes");
    size_t done = 0;
    while (done < size_) {
      const ssize_t n = ::read(fd, copy_.data() + done, size_ - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return make_error(Code::io_error, path_ + ": short read");
      done += static_cast<size_t>(n);
    }
    data_ = copy_.data();
    return Status::ok();
  }
#endif

  void release() noexcept {
#if JIELONG_HAS_MMAP
    if (mapped_ && data_) ::munmap(const_cast<std::byte*>(data_), size_);
#endif
    data_ = nullptr;
    size_ = 0;
    mapped_ = false;
    copy_ = HugePageBuffer();
  }

  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  mutable HugePageBuffer copy_;  // the bytes, when read rather than mapped (drop_pages gives pages back)
};

}  // namespace jielong

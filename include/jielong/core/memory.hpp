// Aligned heap memory that reports failure instead of throwing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace jielong {

// Bytes of a page of virtual memory (4096 where the system does not say).
inline size_t page_bytes() noexcept {
#if defined(__linux__)
  const long n = ::sysconf(_SC_PAGESIZE);
  return n > 0 ? static_cast<size_t>(n) : 4096;
#else
  return 4096;
#endif
}

// madvise(advice) over the whole pages inside [p, p + n). A no-op off Linux.
inline void advise_whole_pages(const void* p, size_t n, [[maybe_unused]] int advice) noexcept {
#if defined(__linux__)
  const uintptr_t page = page_bytes();
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const uintptr_t lo = (a + page - 1) / page * page, hi = (a + n) / page * page;
  if (lo < hi) (void)::madvise(reinterpret_cast<void*>(lo), hi - lo, advice);
#else
  (void)p;
  (void)n;
#endif
}

// Gives the whole pages inside [p, p + n) back to the system
// (MADV_DONTNEED): a private file mapping reads them again from the file if
// they are touched, anonymous memory reads zeros. A no-op off Linux.
inline void drop_whole_pages(const void* p, size_t n) noexcept {
#if defined(__linux__)
  advise_whole_pages(p, n, MADV_DONTNEED);
#else
  (void)p;
  (void)n;
#endif
}

inline constexpr size_t kCacheLine = 64;

constexpr size_t align_up(size_t n, size_t alignment) noexcept {
  return (n + alignment - 1) / alignment * alignment;
}

// nullptr on failure (or for 0 bytes); release with aligned_free.
inline void* aligned_alloc_bytes(size_t bytes, size_t alignment = kCacheLine) noexcept {
  if (bytes == 0) return nullptr;
  if (bytes > static_cast<size_t>(-1) - alignment) return nullptr;
  return ::operator new(align_up(bytes, alignment), std::align_val_t(alignment), std::nothrow);
}
inline void aligned_free(void* p, size_t alignment = kCacheLine) noexcept {
  if (p) ::operator delete(p, std::align_val_t(alignment), std::nothrow);
}

// An owning, 64-byte aligned, uninitialised byte block. Move-only; copying a
// buffer is an explicit decision (`copy_from`).
class AlignedBuffer {
 public:
  AlignedBuffer() noexcept = default;
  // Check `data() != nullptr` (or `size() == bytes`) after constructing.
  explicit AlignedBuffer(size_t bytes) noexcept
      : data_(static_cast<std::byte*>(aligned_alloc_bytes(bytes))), size_(data_ ? bytes : 0) {}
  AlignedBuffer(AlignedBuffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    if (this != &o) {
      aligned_free(data_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { aligned_free(data_); }

  std::byte* data() noexcept { return data_; }
  const std::byte* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

 private:
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

// An owning block for data that is streamed in full again and again (model
// weights read into memory, the bandwidth probe). On Linux, from 2 MiB up, it
// is a 2 MiB-aligned anonymous mapping that asks for transparent huge pages
// (MADV_HUGEPAGE; a hint, honoured when the system allows): streaming 1 GB in
// 4 KiB pages walks 250,000 page-table entries, in 2 MiB pages 500. Elsewhere,
// or if the mapping fails, an AlignedBuffer. Move-only, uninitialised.
class HugePageBuffer {
 public:
  static constexpr size_t kHugePage = size_t{2} << 20;

  HugePageBuffer() noexcept = default;
  // Check `data() != nullptr` (or `size() == bytes`) after constructing.
  explicit HugePageBuffer(size_t bytes) noexcept {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (bytes >= kHugePage && bytes <= static_cast<size_t>(-1) - 2 * kHugePage) {
      const size_t len = align_up(bytes, kHugePage) + kHugePage;  // room to align the start
      void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p != MAP_FAILED) {
        map_ = p;
        map_len_ = len;
        data_ = reinterpret_cast<std::byte*>(align_up(reinterpret_cast<uintptr_t>(p), kHugePage));
        size_ = bytes;
        // Huge pages for the whole 2 MiB pages of the data only: a huge page
        // over the tail would make up to 2 MiB resident for a few bytes.
        (void)::madvise(data_, bytes / kHugePage * kHugePage, MADV_HUGEPAGE);
        return;
      }
    }
#endif
    small_ = AlignedBuffer(bytes);
    data_ = small_.data();
    size_ = small_.size();
  }
  HugePageBuffer(HugePageBuffer&& o) noexcept { *this = std::move(o); }
  HugePageBuffer& operator=(HugePageBuffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      map_ = std::exchange(o.map_, nullptr);
      map_len_ = std::exchange(o.map_len_, 0);
      small_ = std::move(o.small_);
    }
    return *this;
  }
  HugePageBuffer(const HugePageBuffer&) = delete;
  HugePageBuffer& operator=(const HugePageBuffer&) = delete;
  ~HugePageBuffer() { release(); }

  std::byte* data() noexcept { return data_; }
  const std::byte* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }

  // Backs the whole pages inside [p, p + n) with memory now, in one call
  // rather than a page fault per page (MADV_POPULATE_WRITE, Linux 5.14; a
  // no-op where it is missing). For a range about to be written in full.
  void populate(void* p, size_t n) noexcept {
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
    const auto* a = static_cast<const std::byte*>(p);
    if (n != 0 && a >= data_ && a + n <= data_ + size_) advise_whole_pages(p, n, MADV_POPULATE_WRITE);
#else
    (void)p;
    (void)n;
#endif
  }

  // Returns the whole pages inside [p, p + n) to the system; they read as
  // zeros if touched again. Only for a mapped buffer (a no-op otherwise).
  void drop_pages(const void* p, size_t n) noexcept {
    const auto* a = static_cast<const std::byte*>(p);
    if (map_ && n != 0 && a >= data_ && a + n <= data_ + size_) drop_whole_pages(p, n);
  }

 private:
  void release() noexcept {
#if defined(__linux__)
    if (map_) ::munmap(map_, map_len_);
#endif
    map_ = nullptr;
    map_len_ = 0;
    small_ = AlignedBuffer();
    data_ = nullptr;
    size_ = 0;
  }

  std::byte* data_ = nullptr;
  size_t size_ = 0;
  void* map_ = nullptr;  // the whole mapping (data_ is inside it), or null
  size_t map_len_ = 0;
  AlignedBuffer small_;  // used when there is no mapping
};

}  // namespace jielong

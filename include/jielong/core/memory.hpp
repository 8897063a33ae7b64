// Aligned heap memory that reports failure instead of throwing.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>
#include <utility>

namespace jielong {

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

}  // namespace jielong

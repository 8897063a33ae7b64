// Arena: a bump allocator over one block allocated up front. A Session carves
// its scratch buffers from one so that the per-token path never touches the
// heap; `reset()` releases everything at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "jielong/core/memory.hpp"
#include "jielong/core/status.hpp"

namespace jielong {

class Arena {
 public:
  Arena() noexcept = default;

  static Result<Arena> create(size_t capacity_bytes) {
    Arena a;
    if (capacity_bytes > 0) {
      a.block_ = AlignedBuffer(capacity_bytes);
      if (a.block_.data() == nullptr)
        return make_error(Code::out_of_memory, "arena of " + std::to_string(capacity_bytes) + " bytes");
    }
    return a;
  }

  // Uninitialised storage for n objects of T, aligned to max(alignof(T),
  // `alignment`); nullptr when the arena is full or n overflows.
  template <class T>
  T* allocate(size_t n, size_t alignment = kCacheLine) noexcept {
    static_assert(std::is_trivially_destructible_v<T>, "the arena never runs destructors");
    if (alignment < alignof(T)) alignment = alignof(T);
    if (n > static_cast<size_t>(-1) / sizeof(T)) return nullptr;
    void* p = allocate_bytes(n * sizeof(T), alignment);
    return static_cast<T*>(p);
  }

  void* allocate_bytes(size_t bytes, size_t alignment = kCacheLine) noexcept {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) return nullptr;
    const uintptr_t base = reinterpret_cast<uintptr_t>(block_.data());
    const uintptr_t at = (base + used_ + alignment - 1) & ~(static_cast<uintptr_t>(alignment) - 1);
    const size_t offset = static_cast<size_t>(at - base);
    if (block_.data() == nullptr || offset > block_.size() || bytes > block_.size() - offset) return nullptr;
    used_ = offset + bytes;
    if (used_ > high_water_) high_water_ = used_;
    return block_.data() + offset;
  }

  // A position to return to: everything allocated after it is released.
  size_t mark() const noexcept { return used_; }
  void release_to(size_t mark) noexcept {
    if (mark <= used_) used_ = mark;
  }
  void reset() noexcept { used_ = 0; }

  size_t used() const noexcept { return used_; }
  size_t capacity() const noexcept { return block_.size(); }
  size_t high_water() const noexcept { return high_water_; }

 private:
  AlignedBuffer block_;
  size_t used_ = 0;
  size_t high_water_ = 0;
};

}  // namespace jielong

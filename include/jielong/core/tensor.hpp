// TensorView<T, Rank>: a non-owning window (pointer, shape, strides in
// elements) onto memory someone else owns: a mapped file, an arena, a Tensor.
// Tensor<T, Rank>: owns a contiguous, 64-byte aligned block; hands out views.
// Views never allocate and never own, so passing one around is free.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "jielong/config.hpp"
#include "jielong/core/memory.hpp"
#include "jielong/core/status.hpp"

namespace jielong {

template <size_t Rank>
using Shape = std::array<size_t, Rank>;

// Row-major strides: the last index moves fastest.
template <size_t Rank>
constexpr Shape<Rank> contiguous_strides(const Shape<Rank>& shape) noexcept {
  Shape<Rank> strides{};
  size_t s = 1;
  for (size_t i = Rank; i-- > 0;) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

// Product of the extents, or nullopt-like max() on overflow.
template <size_t Rank>
constexpr size_t checked_element_count(const Shape<Rank>& shape) noexcept {
  size_t n = 1;
  for (size_t e : shape) {
    if (e != 0 && n > std::numeric_limits<size_t>::max() / e) return std::numeric_limits<size_t>::max();
    n *= e;
  }
  return n;
}

template <class T, size_t Rank>
class TensorView {
  static_assert(Rank >= 1, "a tensor has at least one dimension");

 public:
  using value_type = T;
  static constexpr size_t rank = Rank;

  constexpr TensorView() noexcept = default;
  constexpr TensorView(T* data, const Shape<Rank>& shape) noexcept
      : data_(data), shape_(shape), strides_(contiguous_strides(shape)) {}
  constexpr TensorView(T* data, const Shape<Rank>& shape, const Shape<Rank>& strides) noexcept
      : data_(data), shape_(shape), strides_(strides) {}
  // A view of T converts to a view of const T.
  template <class U, class = std::enable_if_t<std::is_same_v<const U, T> && !std::is_same_v<U, T>>>
  constexpr TensorView(const TensorView<U, Rank>& o) noexcept  // NOLINT: implicit by design
      : data_(o.data()), shape_(o.shape()), strides_(o.strides()) {}

  constexpr T* data() const noexcept { return data_; }
  constexpr const Shape<Rank>& shape() const noexcept { return shape_; }
  constexpr const Shape<Rank>& strides() const noexcept { return strides_; }
  constexpr size_t dim(size_t i) const noexcept { return shape_[i]; }
  constexpr size_t stride(size_t i) const noexcept { return strides_[i]; }
  constexpr size_t size() const noexcept { return checked_element_count(shape_); }
  constexpr bool empty() const noexcept { return data_ == nullptr || size() == 0; }
  constexpr bool is_contiguous() const noexcept { return strides_ == contiguous_strides(shape_); }

  template <class... I>
  constexpr T& operator()(I... idx) const noexcept {
    static_assert(sizeof...(I) == Rank, "one index per dimension");
    const size_t index[] = {static_cast<size_t>(idx)...};
    size_t off = 0;
    for (size_t d = 0; d < Rank; ++d) {
      JIELONG_ASSERT(index[d] < shape_[d]);
      off += index[d] * strides_[d];
    }
    return data_[off];
  }

  // Fixes the first index: a view of one row / one layer / one head.
  constexpr auto operator[](size_t i) const noexcept {
    JIELONG_ASSERT(i < shape_[0]);
    if constexpr (Rank == 1) {
      return data_[i * strides_[0]];
    } else {
      Shape<Rank - 1> shape{}, strides{};
      for (size_t d = 1; d < Rank; ++d) {
        shape[d - 1] = shape_[d];
        strides[d - 1] = strides_[d];
      }
      return TensorView<T, Rank - 1>(data_ + i * strides_[0], shape, strides);
    }
  }

  // Rows [begin, end) along the first dimension.
  constexpr TensorView slice(size_t begin, size_t end) const noexcept {
    JIELONG_ASSERT(begin <= end && end <= shape_[0]);
    Shape<Rank> shape = shape_;
    shape[0] = end - begin;
    return TensorView(data_ + begin * strides_[0], shape, strides_);
  }

  // Swaps two dimensions without moving data.
  constexpr TensorView transposed(size_t a, size_t b) const noexcept {
    TensorView v = *this;
    std::swap(v.shape_[a], v.shape_[b]);
    std::swap(v.strides_[a], v.strides_[b]);
    return v;
  }

  // Same elements, another shape; only for contiguous views with equal counts.
  template <size_t NewRank>
  Result<TensorView<T, NewRank>> reshaped(const Shape<NewRank>& shape) const {
    if (!is_contiguous()) return make_error(Code::invalid_argument, "reshape of a non-contiguous view");
    if (checked_element_count(shape) != size())
      return make_error(Code::invalid_argument, "reshape changes the number of elements");
    return TensorView<T, NewRank>(data_, shape);
  }

 private:
  T* data_ = nullptr;
  Shape<Rank> shape_{};
  Shape<Rank> strides_{};
};

template <class T, size_t Rank>
class Tensor {
  static_assert(std::is_trivially_copyable_v<T>, "Tensor holds plain numbers");

 public:
  Tensor() noexcept = default;

  // Zero-filled. Fails (not throws) on overflow or when memory runs out.
  static Result<Tensor> zeros(const Shape<Rank>& shape) {
    const size_t n = checked_element_count(shape);
    if (n == std::numeric_limits<size_t>::max() || n > std::numeric_limits<size_t>::max() / sizeof(T))
      return make_error(Code::invalid_argument, "tensor shape overflows size_t");
    Tensor t;
    t.shape_ = shape;
    if (n > 0) {
      t.buffer_ = AlignedBuffer(n * sizeof(T));
      if (t.buffer_.data() == nullptr)
        return make_error(Code::out_of_memory, "tensor of " + std::to_string(n * sizeof(T)) + " bytes");
      std::memset(t.buffer_.data(), 0, n * sizeof(T));
    }
    return t;
  }

  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(Tensor&&) noexcept = default;
  Tensor(const Tensor&) = delete;  // copying is explicit:
  Tensor& operator=(const Tensor&) = delete;
  Result<Tensor> copy() const {
    JIELONG_ASSIGN_OR_RETURN(Tensor t, zeros(shape_));
    if (size() > 0) std::memcpy(t.data(), data(), size() * sizeof(T));
    return t;
  }

  T* data() noexcept { return reinterpret_cast<T*>(buffer_.data()); }
  const T* data() const noexcept { return reinterpret_cast<const T*>(buffer_.data()); }
  const Shape<Rank>& shape() const noexcept { return shape_; }
  size_t dim(size_t i) const noexcept { return shape_[i]; }
  size_t size() const noexcept { return buffer_.size() / sizeof(T); }

  TensorView<T, Rank> view() noexcept { return TensorView<T, Rank>(data(), shape_); }
  TensorView<const T, Rank> view() const noexcept { return TensorView<const T, Rank>(data(), shape_); }

  template <class... I>
  T& operator()(I... idx) noexcept {
    return view()(idx...);
  }
  template <class... I>
  const T& operator()(I... idx) const noexcept {
    return view()(idx...);
  }

 private:
  AlignedBuffer buffer_;
  Shape<Rank> shape_{};
};

}  // namespace jielong

// GGUF v3 writer: metadata in insertion order, then tensor infos, then the
// tensor data, each tensor starting at a multiple of general.alignment (the
// same rule gguf.hpp checks on reading). Tensor bytes are referenced, not
// copied: the caller keeps them alive until write()/to_bytes() returns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "jielong/core/dtype.hpp"
#include "jielong/core/status.hpp"
#include "jielong/io/gguf.hpp"

namespace jielong::io {

class GgufWriter {
 public:
  explicit GgufWriter(uint32_t alignment = 32) : alignment_(alignment) {
    if (alignment != 32) add_u32("general.alignment", alignment);
  }

  void add_u8(std::string_view k, uint8_t v) { scalar(k, GgufType::u8, &v, 1); }
  void add_i8(std::string_view k, int8_t v) { scalar(k, GgufType::i8, &v, 1); }
  void add_u16(std::string_view k, uint16_t v) { scalar(k, GgufType::u16, &v, 2); }
  void add_i16(std::string_view k, int16_t v) { scalar(k, GgufType::i16, &v, 2); }
  void add_u32(std::string_view k, uint32_t v) { scalar(k, GgufType::u32, &v, 4); }
  void add_i32(std::string_view k, int32_t v) { scalar(k, GgufType::i32, &v, 4); }
  void add_u64(std::string_view k, uint64_t v) { scalar(k, GgufType::u64, &v, 8); }
  void add_i64(std::string_view k, int64_t v) { scalar(k, GgufType::i64, &v, 8); }
  void add_f32(std::string_view k, float v) { scalar(k, GgufType::f32, &v, 4); }
  void add_f64(std::string_view k, double v) { scalar(k, GgufType::f64, &v, 8); }
  void add_bool(std::string_view k, bool v) {
    const uint8_t b = v ? 1 : 0;
    scalar(k, GgufType::boolean, &b, 1);
  }
  void add_string(std::string_view k, std::string_view v) {
    head(k, GgufType::string);
    str(v);
  }
  template <class Strings>
  void add_string_array(std::string_view k, const Strings& values) {
    head(k, GgufType::array);
    u32(static_cast<uint32_t>(GgufType::string));
    u64(static_cast<uint64_t>(std::size(values)));
    for (const auto& s : values) str(std::string_view(s));
  }
  void add_f32_array(std::string_view k, std::span<const float> v) { array(k, GgufType::f32, v.data(), v.size(), 4); }
  void add_i32_array(std::string_view k, std::span<const int32_t> v) { array(k, GgufType::i32, v.data(), v.size(), 4); }
  // Copies an existing value (any type) from another file, e.g. a vocabulary.
  void add_value(std::string_view k, const GgufValue& v) {
    switch (v.type) {
      case GgufType::string: add_string(k, v.str); return;
      case GgufType::array: {
        const GgufArray& a = v.array;
        if (a.type() == GgufType::string) {
          head(k, GgufType::array);
          u32(static_cast<uint32_t>(GgufType::string));
          u64(a.size());
          for (size_t i = 0; i < a.size(); ++i) str(a.string(i).value_or(std::string_view()));
        } else if (a.type() != GgufType::array) {
          array(k, a.type(), a.data(), a.size(), gguf_scalar_bytes(static_cast<uint32_t>(a.type())));
        }
        return;  // nested arrays are not copied
      }
      default: scalar(k, v.type, v.data, gguf_scalar_bytes(static_cast<uint32_t>(v.type))); return;
    }
  }

  // dims: ne[0] (row length) first, as GGUF stores them.
  Status add_tensor(std::string_view name, DType type, std::initializer_list<uint64_t> dims,
                    std::span<const std::byte> data) {
    return add_tensor(name, type, std::span<const uint64_t>(dims.begin(), dims.size()), data);
  }
  Status add_tensor(std::string_view name, DType type, std::span<const uint64_t> dims,
                    std::span<const std::byte> data) {
    const std::string tn = "tensor '" + std::string(name) + "'";
    if (dims.empty() || dims.size() > 4) return make_error(Code::invalid_argument, tn + ": rank must be 1 to 4");
    uint64_t rows = 1;
    for (size_t d = 1; d < dims.size(); ++d) rows *= dims[d];
    const size_t rb = row_bytes(type, dims[0]);
    if (rb == 0 || rb * rows != data.size())
      return make_error(Code::invalid_argument, tn + ": " + std::to_string(data.size()) +
                                                    " bytes do not match its shape and type " +
                                                    std::string(dtype_name(type)));
    Tensor t;
    t.name = std::string(name);
    t.type = type;
    t.n_dims = static_cast<uint32_t>(dims.size());
    for (size_t d = 0; d < dims.size(); ++d) t.ne[d] = dims[d];
    t.data = data;
    t.offset = data_size_;
    data_size_ = pad(data_size_ + data.size());
    tensors_.push_back(std::move(t));
    return Status::ok();
  }

  std::vector<std::byte> to_bytes() const {
    std::vector<std::byte> out;
    emit([&](const void* p, size_t n) {
      const auto* b = static_cast<const std::byte*>(p);
      out.insert(out.end(), b, b + n);
      return true;
    });
    return out;
  }

  Status write(const std::string& path) const {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return make_error(Code::io_error, path + ": cannot open for writing");
    const bool ok = emit([&](const void* p, size_t n) { return n == 0 || std::fwrite(p, 1, n, f) == n; });
    const bool closed = std::fclose(f) == 0;
    if (!ok || !closed) return make_error(Code::io_error, path + ": write failed (disk full?)");
    return Status::ok();
  }

 private:
  struct Tensor {
    std::string name;
    DType type;
    uint32_t n_dims;
    uint64_t ne[4] = {1, 1, 1, 1};
    uint64_t offset;
    std::span<const std::byte> data;
  };

  size_t pad(size_t n) const { return (n + alignment_ - 1) / alignment_ * alignment_; }

  void raw(const void* p, size_t n) {
    if (n == 0) return;
    const size_t at = meta_.size();
    meta_.resize(at + n);
    std::memcpy(meta_.data() + at, p, n);
  }
  void u32(uint32_t v) { raw(&v, 4); }
  void u64(uint64_t v) { raw(&v, 8); }
  void str(std::string_view s) {
    u64(s.size());
    raw(s.data(), s.size());
  }
  void head(std::string_view k, GgufType t) {
    ++n_kv_;
    str(k);
    u32(static_cast<uint32_t>(t));
  }
  void scalar(std::string_view k, GgufType t, const void* v, size_t n) {
    head(k, t);
    raw(v, n);
  }
  void array(std::string_view k, GgufType et, const void* p, size_t count, size_t elem) {
    head(k, GgufType::array);
    u32(static_cast<uint32_t>(et));
    u64(count);
    raw(p, count * elem);
  }

  template <class Sink>
  bool emit(Sink&& sink) const {
    std::vector<std::byte> h;
    auto put = [&](const void* p, size_t n) {
      const auto* b = static_cast<const std::byte*>(p);
      h.insert(h.end(), b, b + n);
    };
    const uint32_t magic = GgufFile::kMagic, version = 3;
    const uint64_t n_tensors = tensors_.size();
    put(&magic, 4);
    put(&version, 4);
    put(&n_tensors, 8);
    put(&n_kv_, 8);
    h.insert(h.end(), meta_.begin(), meta_.end());
    for (const Tensor& t : tensors_) {
      const uint64_t len = t.name.size();
      put(&len, 8);
      put(t.name.data(), t.name.size());
      put(&t.n_dims, 4);
      put(t.ne, 8 * t.n_dims);
      const uint32_t type = static_cast<uint32_t>(t.type);
      put(&type, 4);
      put(&t.offset, 8);
    }
    h.resize(pad(h.size()), std::byte{0});
    if (!sink(h.data(), h.size())) return false;
    const std::byte zeros[64] = {};
    size_t written = 0;
    for (const Tensor& t : tensors_) {
      if (!sink(t.data.data(), t.data.size())) return false;
      written += t.data.size();
      for (size_t gap = pad(written) - written; gap > 0;) {
        const size_t n = gap < sizeof zeros ? gap : sizeof zeros;
        if (!sink(zeros, n)) return false;
        gap -= n;
        written += n;
      }
    }
    return true;
  }

  uint32_t alignment_;
  uint64_t n_kv_ = 0;
  std::vector<std::byte> meta_;
  std::vector<Tensor> tensors_;
  size_t data_size_ = 0;
};

}  // namespace jielong::io

// GgufMetadata: the key/value section of a GGUF file (versions 2 and 3), read
// with every count and length checked against the bytes left, for what the
// tokenizer needs (strings, integers, bools, arrays of strings / floats /
// ints). Tensor infos are not read. Values are views into the mapped file.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "jielong/core/mapped_file.hpp"
#include "jielong/core/status.hpp"

namespace jielong::text {

enum class GgufType : uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12,
};

class GgufMetadata {
 public:
  struct Value {
    std::string_view key;
    GgufType type;
    GgufType elem_type = GgufType::u8;  // arrays
    uint64_t count = 0;                 // arrays
    const unsigned char* data = nullptr;  // scalar bytes, string bytes, or first array element
    uint64_t size = 0;                    // string length
    std::vector<std::pair<const unsigned char*, uint64_t>> strings;  // arrays of strings
  };

  // A read-only view of one array value.
  class Array {
   public:
    Array(const Value* v, std::string_view key) : v_(v), key_(key) {}
    size_t size() const noexcept { return static_cast<size_t>(v_->count); }
    GgufType type() const noexcept { return v_->elem_type; }
    Result<std::string_view> string(size_t i) const {
      if (v_->elem_type != GgufType::string) return type_error("strings");
      return std::string_view(reinterpret_cast<const char*>(v_->strings[i].first), v_->strings[i].second);
    }
    Result<float> f32(size_t i) const {
      if (v_->elem_type == GgufType::f32) return load<float>(i);
      if (v_->elem_type == GgufType::i32) return static_cast<float>(load<int32_t>(i));
      return type_error("float32");
    }
    Result<int32_t> i32(size_t i) const {
      if (v_->elem_type == GgufType::i32) return load<int32_t>(i);
      if (v_->elem_type == GgufType::u32) return static_cast<int32_t>(load<uint32_t>(i));
      return type_error("int32");
    }

   private:
    template <class T>
    T load(size_t i) const {
      T x;
      std::memcpy(&x, v_->data + i * sizeof(T), sizeof(T));
      return x;
    }
    Status type_error(const char* want) const {
      return make_error(Code::format_error, std::string(key_) + ": expected an array of " + want + ", found element type " +
                                                std::to_string(static_cast<uint32_t>(v_->elem_type)));
    }
    const Value* v_;
    std::string_view key_;
  };

  GgufMetadata() = default;
  GgufMetadata(GgufMetadata&&) noexcept = default;
  GgufMetadata& operator=(GgufMetadata&&) noexcept = default;

  static Result<GgufMetadata> open(const std::string& path) {
    auto file = MappedFile::open(path);
    if (!file.ok()) return file.status();
    GgufMetadata m;
    m.file_ = std::move(*file);
    m.path_ = path;
    if (Status s = m.parse(reinterpret_cast<const unsigned char*>(m.file_.data()), m.file_.size()); !s.is_ok())
      return s.prefix(path);
    return m;
  }

  const std::string& path() const noexcept { return path_; }
  uint32_t version() const noexcept { return version_; }

  const Value* find(std::string_view key) const noexcept {
    for (const Value& v : values_)
      if (v.key == key) return &v;
    return nullptr;
  }

  Result<std::string_view> get_string(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return missing(key);
    if (v->type != GgufType::string) return wrong(key, "a string", v->type);
    return std::string_view(reinterpret_cast<const char*>(v->data), v->size);
  }

  // Any integer type.
  Result<int64_t> get_int(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return missing(key);
    switch (v->type) {
      case GgufType::u8: return int64_t{v->data[0]};
      case GgufType::i8: return int64_t{static_cast<int8_t>(v->data[0])};
      case GgufType::u16: return int64_t{scalar<uint16_t>(v)};
      case GgufType::i16: return int64_t{scalar<int16_t>(v)};
      case GgufType::u32: return int64_t{scalar<uint32_t>(v)};
      case GgufType::i32: return int64_t{scalar<int32_t>(v)};
      case GgufType::u64: return static_cast<int64_t>(scalar<uint64_t>(v));
      case GgufType::i64: return scalar<int64_t>(v);
      default: return wrong(key, "an integer", v->type);
    }
  }

  Result<bool> get_bool(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return missing(key);
    if (v->type != GgufType::boolean) return wrong(key, "a bool", v->type);
    return v->data[0] != 0;
  }

  Result<Array> get_array(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return missing(key);
    if (v->type != GgufType::array) return wrong(key, "an array", v->type);
    return Array(v, v->key);
  }

 private:
  template <class T>
  static T scalar(const Value* v) {
    T x;
    std::memcpy(&x, v->data, sizeof(T));
    return x;
  }
  Status missing(std::string_view key) const {
    return make_error(Code::format_error, path_ + ": key '" + std::string(key) + "' not found");
  }
  Status wrong(std::string_view key, const char* want, GgufType got) const {
    return make_error(Code::format_error, path_ + ": key '" + std::string(key) + "' should be " + want + ", found type " +
                                              std::to_string(static_cast<uint32_t>(got)));
  }

  static size_t scalar_size(GgufType t) {
    switch (t) {
      case GgufType::u8: case GgufType::i8: case GgufType::boolean: return 1;
      case GgufType::u16: case GgufType::i16: return 2;
      case GgufType::u32: case GgufType::i32: case GgufType::f32: return 4;
      case GgufType::u64: case GgufType::i64: case GgufType::f64: return 8;
      default: return 0;
    }
  }

  static Status skip_array(const unsigned char* p, size_t n, size_t& off, int depth, const std::string& name) {
    if (depth > 8) return make_error(Code::format_error, name + ": arrays nested too deep");
    if (n - off < 12) return make_error(Code::format_error, name + ": truncated nested array");
    uint32_t et;
    uint64_t count;
    std::memcpy(&et, p + off, 4);
    std::memcpy(&count, p + off + 4, 8);
    off += 12;
    const GgufType t = static_cast<GgufType>(et);
    if (t == GgufType::array) {
      for (uint64_t k = 0; k < count; ++k) JIELONG_TRY(skip_array(p, n, off, depth + 1, name));
    } else if (t == GgufType::string) {
      for (uint64_t k = 0; k < count; ++k) {
        uint64_t len;
        if (n - off < 8) return make_error(Code::format_error, name + ": truncated nested string");
        std::memcpy(&len, p + off, 8);
        off += 8;
        if (len > n - off) return make_error(Code::format_error, name + ": nested string past the end");
        off += static_cast<size_t>(len);
      }
    } else {
      const size_t es = scalar_size(t);
      if (es == 0 || count > (n - off) / es) return make_error(Code::format_error, name + ": bad nested array");
      off += static_cast<size_t>(count) * es;
    }
    return Status::ok();
  }

  Status parse(const unsigned char* p, size_t n) {
    size_t off = 0;
    auto need = [&](uint64_t bytes, const std::string& what) -> Status {
      if (bytes > n - off) return make_error(Code::format_error, "truncated: " + what + " needs " + std::to_string(bytes) +
                                                                      " bytes at offset " + std::to_string(off) + ", " +
                                                                      std::to_string(n - off) + " left");
      return Status::ok();
    };
    auto u32 = [&](uint32_t& v, const std::string& what) -> Status {
      JIELONG_TRY(need(4, what));
      std::memcpy(&v, p + off, 4);
      off += 4;
      return Status::ok();
    };
    auto u64 = [&](uint64_t& v, const std::string& what) -> Status {
      JIELONG_TRY(need(8, what));
      std::memcpy(&v, p + off, 8);
      off += 8;
      return Status::ok();
    };
    auto str = [&](const unsigned char*& s, uint64_t& len, const std::string& what) -> Status {
      JIELONG_TRY(u64(len, what + " length"));
      JIELONG_TRY(need(len, what));
      s = p + off;
      off += static_cast<size_t>(len);
      return Status::ok();
    };
    JIELONG_TRY(need(4, "magic"));
    if (std::memcmp(p, "GGUF", 4) != 0) return make_error(Code::format_error, "not a GGUF file (bad magic)");
    off = 4;
    JIELONG_TRY(u32(version_, "version"));
    if (version_ != 2 && version_ != 3)
      return make_error(Code::unsupported, "GGUF version " + std::to_string(version_) + " (expected 2 or 3)");
    uint64_t n_tensors = 0, n_kv = 0;
    JIELONG_TRY(u64(n_tensors, "tensor count"));
    JIELONG_TRY(u64(n_kv, "metadata count"));
    // Each pair takes at least 8 (key length) + 4 (type) + 1 bytes.
    if (n_kv > (n - off) / 13) return make_error(Code::format_error, "metadata count " + std::to_string(n_kv) + " exceeds the file");
    values_.reserve(static_cast<size_t>(n_kv));
    for (uint64_t i = 0; i < n_kv; ++i) {
      Value v;
      const unsigned char* key = nullptr;
      uint64_t key_len = 0;
      JIELONG_TRY(str(key, key_len, "key " + std::to_string(i)));
      v.key = std::string_view(reinterpret_cast<const char*>(key), key_len);
      const std::string name = "'" + std::string(v.key) + "'";
      uint32_t type = 0;
      JIELONG_TRY(u32(type, name + " type"));
      v.type = static_cast<GgufType>(type);
      if (v.type == GgufType::string) {
        JIELONG_TRY(str(v.data, v.size, name));
      } else if (v.type == GgufType::array) {
        uint32_t et = 0;
        JIELONG_TRY(u32(et, name + " element type"));
        v.elem_type = static_cast<GgufType>(et);
        JIELONG_TRY(u64(v.count, name + " element count"));
        if (v.elem_type == GgufType::array) {  // nested arrays: skipped, nothing here reads them
          for (uint64_t k = 0; k < v.count; ++k) JIELONG_TRY(skip_array(p, n, off, 1, name));
        } else if (v.elem_type == GgufType::string) {
          if (v.count > (n - off) / 8) return make_error(Code::format_error, name + ": " + std::to_string(v.count) + " strings exceed the file");
          v.strings.resize(static_cast<size_t>(v.count));
          for (auto& [s, len] : v.strings) JIELONG_TRY(str(s, len, name + " element"));
        } else {
          const size_t es = scalar_size(v.elem_type);
          if (es == 0) return make_error(Code::format_error, name + ": unsupported array element type " + std::to_string(et));
          if (v.count > (n - off) / es) return make_error(Code::format_error, name + ": " + std::to_string(v.count) + " elements exceed the file");
          v.data = p + off;
          off += static_cast<size_t>(v.count) * es;
        }
      } else {
        const size_t es = scalar_size(v.type);
        if (es == 0) return make_error(Code::format_error, name + ": unknown value type " + std::to_string(type));
        JIELONG_TRY(need(es, name));
        v.data = p + off;
        off += es;
      }
      values_.push_back(std::move(v));
    }
    return Status::ok();
  }

  MappedFile file_;
  std::string path_;
  uint32_t version_ = 0;
  std::vector<Value> values_;
};

}  // namespace jielong::text

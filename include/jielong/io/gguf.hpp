// GGUF reader (versions 2 and 3), following ggml's docs/gguf.md.
//
// Layout: "GGUF" | u32 version | u64 n_tensors | u64 n_kv | n_kv × (string key,
// u32 type, value) | n_tensors × (string name, u32 n_dims, u64 ne[n_dims],
// u32 type, u64 offset) | padding to general.alignment | tensor data.
// Strings are u64 length + bytes (no terminator). Everything little-endian.
//
// The file is hostile until proven otherwise: every count and length is
// bounded by the bytes that remain BEFORE anything is allocated for it, all
// size arithmetic is overflow-checked, and every tensor's data must lie inside
// the file at an aligned offset. Metadata and tensors are views into the
// mapped bytes (zero-copy); GgufFile owns the mapping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <climits>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "jielong/core/dtype.hpp"
#include "jielong/core/mapped_file.hpp"
#include "jielong/core/status.hpp"

namespace jielong::io {

enum class GgufType : uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7,
  string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12,
};

constexpr std::string_view gguf_type_name(GgufType t) noexcept {
  switch (t) {
    case GgufType::u8: return "u8";
    case GgufType::i8: return "i8";
    case GgufType::u16: return "u16";
    case GgufType::i16: return "i16";
    case GgufType::u32: return "u32";
    case GgufType::i32: return "i32";
    case GgufType::f32: return "f32";
    case GgufType::boolean: return "bool";
    case GgufType::string: return "string";
    case GgufType::array: return "array";
    case GgufType::u64: return "u64";
    case GgufType::i64: return "i64";
    case GgufType::f64: return "f64";
  }
  return "unknown";
}

// Bytes of one scalar value; 0 for string, array and unknown ids.
constexpr size_t gguf_scalar_bytes(uint32_t t) noexcept {
  switch (t) {
    case 0: case 1: case 7: return 1;
    case 2: case 3: return 2;
    case 4: case 5: case 6: return 4;
    case 10: case 11: case 12: return 8;
    default: return 0;
  }
}
constexpr bool gguf_is_integer(GgufType t) noexcept {
  return t == GgufType::u8 || t == GgufType::i8 || t == GgufType::u16 || t == GgufType::i16 ||
         t == GgufType::u32 || t == GgufType::i32 || t == GgufType::u64 || t == GgufType::i64;
}

namespace detail {
template <class T>
T load_le(const std::byte* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
// An integer of any GGUF integer type, widened. `ok` false when a u64 exceeds int64.
inline int64_t load_integer(GgufType t, const std::byte* p, bool& ok) noexcept {
  ok = true;
  switch (t) {
    case GgufType::u8: return load_le<uint8_t>(p);
    case GgufType::i8: return load_le<int8_t>(p);
    case GgufType::u16: return load_le<uint16_t>(p);
    case GgufType::i16: return load_le<int16_t>(p);
    case GgufType::u32: return load_le<uint32_t>(p);
    case GgufType::i32: return load_le<int32_t>(p);
    case GgufType::i64: return load_le<int64_t>(p);
    case GgufType::u64: {
      const uint64_t v = load_le<uint64_t>(p);
      ok = v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
      return static_cast<int64_t>(v);
    }
    default: ok = false; return 0;
  }
}
}  // namespace detail

// A view of one array value. Scalar elements are read from the file on access
// (unaligned-safe); string elements were indexed while parsing. Element
// accessors check the element type (integers widen, f64 narrows to f32) and
// the index, and name the key when they refuse.
class GgufArray {
 public:
  GgufType type() const noexcept { return type_; }
  size_t size() const noexcept { return size_; }
  std::string_view key() const noexcept { return key_; }

  Result<std::string_view> string(size_t i) const {
    JIELONG_TRY(check(i, type_ == GgufType::string, "string"));
    return strings_[i];
  }
  Result<float> f32(size_t i) const {
    JIELONG_TRY(check(i, type_ == GgufType::f32 || type_ == GgufType::f64, "f32"));
    if (type_ == GgufType::f32) return detail::load_le<float>(data_ + 4 * i);
    return static_cast<float>(detail::load_le<double>(data_ + 8 * i));
  }
  Result<int64_t> integer(size_t i) const {
    JIELONG_TRY(check(i, gguf_is_integer(type_), "an integer"));
    bool ok;
    const int64_t v =
        detail::load_integer(type_, data_ + gguf_scalar_bytes(static_cast<uint32_t>(type_)) * i, ok);
    if (!ok) return make_error(Code::format_error, "array '" + std::string(key_) + "' element " + std::to_string(i) +
                                                       " exceeds the int64 range");
    return v;
  }
  Result<int32_t> i32(size_t i) const {
    JIELONG_ASSIGN_OR_RETURN(int64_t v, integer(i));
    if (v < INT32_MIN || v > INT32_MAX)
      return make_error(Code::format_error, "array '" + std::string(key_) + "' element " + std::to_string(i) +
                                                " = " + std::to_string(v) + " is outside the i32 range");
    return static_cast<int32_t>(v);
  }
  Result<bool> boolean(size_t i) const {
    JIELONG_TRY(check(i, type_ == GgufType::boolean, "bool"));
    return detail::load_le<uint8_t>(data_ + i) != 0;
  }
  // Raw little-endian element bytes (scalar arrays only).
  const std::byte* data() const noexcept { return data_; }

 private:
  friend class GgufFile;
  Status check(size_t i, bool type_ok, const char* expected) const {
    if (!type_ok)
      return make_error(Code::format_error, "array '" + std::string(key_) + "' should hold " + expected +
                                                " elements but holds " + std::string(gguf_type_name(type_)));
    if (i >= size_)
      return make_error(Code::out_of_range, "array '" + std::string(key_) + "' index " + std::to_string(i) +
                                                " is past its " + std::to_string(size_) + " elements");
    return Status::ok();
  }
  GgufType type_ = GgufType::u8;
  size_t size_ = 0;
  std::string_view key_;
  const std::byte* data_ = nullptr;           // scalar arrays
  std::span<const std::string_view> strings_;  // string arrays
};

struct GgufValue {
  GgufType type = GgufType::u8;
  const std::byte* data = nullptr;  // scalar: the value's bytes in the file
  std::string_view str;             // string
  GgufArray array;                  // array
};

struct GgufKv {
  std::string_view key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string_view name;
  DType type = DType::F32;
  uint32_t n_dims = 0;
  uint64_t ne[4] = {1, 1, 1, 1};  // ne[0] is the contiguous (row) dimension
  uint64_t offset = 0;            // from the start of the data section
  const std::byte* data = nullptr;
  size_t n_bytes = 0;
  // llama2.c v2 ("ak42") matrices only: type I8 values in groups of
  // `group_size` along each row, one f32 scale per group (GGUF files never set these).
  const float* group_scales = nullptr;  // [n_elements / group_size]
  uint32_t group_size = 0;

  uint64_t n_elements() const noexcept { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

class GgufFile {
 public:
  static constexpr uint32_t kMagic = 0x46554747u;  // "GGUF" read as little-endian u32
  static constexpr uint64_t kDefaultAlignment = 32;

  GgufFile() = default;
  GgufFile(GgufFile&&) noexcept = default;
  GgufFile& operator=(GgufFile&&) noexcept = default;
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  static Result<GgufFile> open(const std::string& path, MappedFile::Mode mode = MappedFile::Mode::map_or_read) {
    JIELONG_ASSIGN_OR_RETURN(MappedFile mf, MappedFile::open(path, mode));
    GgufFile f;
    f.bytes_ = std::span<const std::byte>(mf.data(), mf.size());
    f.file_ = std::move(mf);
    f.name_ = path;
    Status st = f.parse();
    if (!st.is_ok()) return st;
    return f;
  }

  // See MappedFile::drop_pages (a no-op for an image held by the caller).
  void drop_pages(const void* p, size_t n) const noexcept { file_.drop_pages(p, n); }
  // The header, metadata and tensor index have been read (the vocabulary
  // too, where it is wanted): give their pages back where the file can read
  // them again (MappedFile::evict_pages). Later lookups still work.
  void evict_metadata() const noexcept { file_.evict_pages(bytes_.data(), data_offset_); }

  // Reads a GGUF image held by the caller, who keeps it alive and unchanged
  // for the life of the returned file.
  static Result<GgufFile> from_memory(std::span<const std::byte> bytes, std::string name = "<memory>") {
    GgufFile f;
    f.bytes_ = bytes;
    f.name_ = std::move(name);
    Status st = f.parse();
    if (!st.is_ok()) return st;
    return f;
  }

  const std::string& name() const noexcept { return name_; }
  uint32_t version() const noexcept { return version_; }
  uint64_t alignment() const noexcept { return alignment_; }
  size_t data_offset() const noexcept { return data_offset_; }
  std::span<const std::byte> bytes() const noexcept { return bytes_; }

  // ---- metadata -------------------------------------------------------------
  std::span<const GgufKv> metadata() const noexcept { return kvs_; }
  const GgufValue* find(std::string_view key) const {
    auto it = kv_index_.find(key);
    return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
  }
  bool has(std::string_view key) const { return find(key) != nullptr; }

  Result<std::string_view> get_string(std::string_view key) const {
    JIELONG_ASSIGN_OR_RETURN(const GgufValue* v, typed(key, GgufType::string, "a string"));
    return v->str;
  }
  // Any integer type whose value is representable as int64.
  Result<int64_t> get_int(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return missing(key);
    if (!gguf_is_integer(v->type)) return wrong_type(key, "an integer", v->type);
    bool ok;
    const int64_t x = detail::load_integer(v->type, v->data, ok);
    if (!ok) return make_error(Code::format_error, name_ + ": key '" + std::string(key) + "' exceeds the int64 range");
    return x;
  }
  // Any integer type whose value is in [0, 2^32).
  Result<uint32_t> get_u32(std::string_view key) const {
    JIELONG_ASSIGN_OR_RETURN(int64_t x, get_int(key));
    if (x < 0 || x > static_cast<int64_t>(std::numeric_limits<uint32_t>::max()))
      return make_error(Code::format_error, name_ + ": key '" + std::string(key) + "' = " + std::to_string(x) +
                                                " is outside the u32 range");
    return static_cast<uint32_t>(x);
  }
  // f32 or f64 (narrowed).
  Result<float> get_f32(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return missing(key);
    if (v->type == GgufType::f32) return detail::load_le<float>(v->data);
    if (v->type == GgufType::f64) return static_cast<float>(detail::load_le<double>(v->data));
    return wrong_type(key, "f32", v->type);
  }
  Result<bool> get_bool(std::string_view key) const {
    JIELONG_ASSIGN_OR_RETURN(const GgufValue* v, typed(key, GgufType::boolean, "bool"));
    return detail::load_le<uint8_t>(v->data) != 0;
  }
  Result<GgufArray> get_array(std::string_view key) const {
    JIELONG_ASSIGN_OR_RETURN(const GgufValue* v, typed(key, GgufType::array, "an array"));
    return v->array;
  }

  // ---- tensors --------------------------------------------------------------
  std::span<const GgufTensorInfo> tensors() const noexcept { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
  }

 private:
  Status missing(std::string_view key) const {
    return make_error(Code::format_error, name_ + ": key '" + std::string(key) + "' is missing");
  }
  Status wrong_type(std::string_view key, std::string_view expected, GgufType actual) const {
    return make_error(Code::format_error, name_ + ": key '" + std::string(key) + "' should be " +
                                              std::string(expected) + " but is " +
                                              std::string(gguf_type_name(actual)));
  }
  Result<const GgufValue*> typed(std::string_view key, GgufType t, std::string_view expected) const {
    const GgufValue* v = find(key);
    if (!v) return missing(key);
    if (v->type != t) return wrong_type(key, expected, v->type);
    return v;
  }

  // A bounds-checked reader over the file; the first failure sticks.
  struct Cursor {
    std::span<const std::byte> b;
    size_t pos = 0;
    size_t remaining() const noexcept { return b.size() - pos; }
    bool need(uint64_t n) const noexcept { return n <= remaining(); }
    const std::byte* take(size_t n) noexcept {
      const std::byte* p = b.data() + pos;
      pos += n;
      return p;
    }
  };

  Status fail(const std::string& what) const { return make_error(Code::format_error, name_ + ": " + what); }
  Status truncated(const std::string& what, size_t at) const {
    return fail(what + " runs past the end of the file (at byte " + std::to_string(at) + " of " +
                std::to_string(bytes_.size()) + ")");
  }

  Status read_u32(Cursor& c, uint32_t& out, const std::string& what) const {
    if (!c.need(4)) return truncated(what, c.pos);
    out = detail::load_le<uint32_t>(c.take(4));
    return Status::ok();
  }
  Status read_u64(Cursor& c, uint64_t& out, const std::string& what) const {
    if (!c.need(8)) return truncated(what, c.pos);
    out = detail::load_le<uint64_t>(c.take(8));
    return Status::ok();
  }
  Status read_string(Cursor& c, std::string_view& out, const std::string& what) const {
    uint64_t n = 0;
    JIELONG_TRY(read_u64(c, n, what + " (length)"));
    if (!c.need(n))
      return truncated(what + " of length " + std::to_string(n), c.pos);
    out = std::string_view(reinterpret_cast<const char*>(c.take(static_cast<size_t>(n))), static_cast<size_t>(n));
    return Status::ok();
  }

  // Skips a nested array (kept as an opaque value), depth-limited.
  Status skip_array(Cursor& c, const std::string& what, int depth) const {
    if (depth > 8) return fail(what + ": arrays nested too deeply");
    uint32_t et = 0;
    uint64_t n = 0;
    JIELONG_TRY(read_u32(c, et, what + " (element type)"));
    JIELONG_TRY(read_u64(c, n, what + " (element count)"));
    if (et == static_cast<uint32_t>(GgufType::string)) {
      if (n > c.remaining() / 8) return truncated(what + " with " + std::to_string(n) + " strings", c.pos);
      for (uint64_t i = 0; i < n; ++i) {
        std::string_view s;
        JIELONG_TRY(read_string(c, s, what + " element " + std::to_string(i)));
      }
    } else if (et == static_cast<uint32_t>(GgufType::array)) {
      if (n > c.remaining() / 12) return truncated(what + " with " + std::to_string(n) + " arrays", c.pos);
      for (uint64_t i = 0; i < n; ++i) JIELONG_TRY(skip_array(c, what + "[" + std::to_string(i) + "]", depth + 1));
    } else {
      const size_t sz = gguf_scalar_bytes(et);
      if (sz == 0) return fail(what + " has unknown element type " + std::to_string(et));
      if (n > c.remaining() / sz) return truncated(what + " with " + std::to_string(n) + " elements", c.pos);
      c.take(static_cast<size_t>(n) * sz);
    }
    return Status::ok();
  }

  Status read_value(Cursor& c, std::string_view key, GgufValue& v) {
    const std::string what = "value of key '" + std::string(key) + "'";
    uint32_t type = 0;
    JIELONG_TRY(read_u32(c, type, "type of key '" + std::string(key) + "'"));
    if (type > 12) return fail("key '" + std::string(key) + "' has unknown value type " + std::to_string(type));
    v.type = static_cast<GgufType>(type);
    if (v.type == GgufType::string) return read_string(c, v.str, what);
    if (v.type != GgufType::array) {
      const size_t sz = gguf_scalar_bytes(type);
      if (!c.need(sz)) return truncated(what, c.pos);
      v.data = c.take(sz);
      return Status::ok();
    }
    uint32_t et = 0;
    uint64_t n = 0;
    JIELONG_TRY(read_u32(c, et, what + " (array element type)"));
    JIELONG_TRY(read_u64(c, n, what + " (array length)"));
    if (et > 12) return fail("array key '" + std::string(key) + "' has unknown element type " + std::to_string(et));
    GgufArray& a = v.array;
    a.key_ = key;
    a.type_ = static_cast<GgufType>(et);
    if (a.type_ == GgufType::string) {
      // Each string takes at least its 8-byte length: bound n before reserving.
      if (n > c.remaining() / 8) return truncated(what + " with " + std::to_string(n) + " strings", c.pos);
      auto& views = string_arrays_.emplace_back();
      views.reserve(static_cast<size_t>(n));
      for (uint64_t i = 0; i < n; ++i) {
        std::string_view s;
        JIELONG_TRY(read_string(c, s, what + " element " + std::to_string(i)));
        views.push_back(s);
      }
      a.size_ = static_cast<size_t>(n);
      a.strings_ = views;
    } else if (a.type_ == GgufType::array) {
      // Nested arrays are valid GGUF but no known key uses them: kept opaque.
      if (n > c.remaining() / 12) return truncated(what + " with " + std::to_string(n) + " arrays", c.pos);
      for (uint64_t i = 0; i < n; ++i) JIELONG_TRY(skip_array(c, what + "[" + std::to_string(i) + "]", 1));
      a.size_ = static_cast<size_t>(n);
    } else {
      const size_t sz = gguf_scalar_bytes(et);
      if (n > c.remaining() / sz) return truncated(what + " with " + std::to_string(n) + " elements", c.pos);
      a.size_ = static_cast<size_t>(n);
      a.data_ = c.take(a.size_ * sz);
    }
    return Status::ok();
  }

  Status parse() {
    Cursor c{bytes_};
    uint32_t magic = 0;
    JIELONG_TRY(read_u32(c, magic, "the magic"));
    if (magic != kMagic) return fail("not a GGUF file (the first 4 bytes are not \"GGUF\")");
    JIELONG_TRY(read_u32(c, version_, "the version"));
    if (version_ == 1)
      return make_error(Code::unsupported, name_ + ": GGUF version 1 is not supported (expected 2 or 3; "
                                                   "re-convert the model with a current llama.cpp)");
    if (version_ != 2 && version_ != 3)
      return make_error(Code::unsupported,
                        name_ + ": GGUF version " + std::to_string(version_) + " (expected 2 or 3)");
    uint64_t n_tensors = 0, n_kv = 0;
    JIELONG_TRY(read_u64(c, n_tensors, "the tensor count"));
    JIELONG_TRY(read_u64(c, n_kv, "the metadata count"));
    // A key-value pair takes at least 8 (key length) + 4 (type) + 1 bytes, a
    // tensor info at least 8 + 4 + 8 + 4 + 8: counts beyond that cannot fit.
    if (n_kv > c.remaining() / 13)
      return fail("metadata count " + std::to_string(n_kv) + " cannot fit in the " + std::to_string(c.remaining()) +
                  " remaining bytes");
    kvs_.reserve(static_cast<size_t>(n_kv));
    for (uint64_t i = 0; i < n_kv; ++i) {
      GgufKv kv;
      JIELONG_TRY(read_string(c, kv.key, "metadata key " + std::to_string(i)));
      JIELONG_TRY(read_value(c, kv.key, kv.value));
      if (!kv_index_.emplace(kv.key, kvs_.size()).second)
        return fail("metadata key '" + std::string(kv.key) + "' appears twice");
      kvs_.push_back(kv);
    }
    if (const GgufValue* al = find("general.alignment")) {
      if (al->type != GgufType::u32) return wrong_type("general.alignment", "u32", al->type);
      alignment_ = detail::load_le<uint32_t>(al->data);
      if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0)
        return fail("general.alignment = " + std::to_string(alignment_) + " (expected a power of two)");
    }

    if (n_tensors > c.remaining() / 32)
      return fail("tensor count " + std::to_string(n_tensors) + " cannot fit in the " +
                  std::to_string(c.remaining()) + " remaining bytes");
    tensors_.reserve(static_cast<size_t>(n_tensors));
    for (uint64_t i = 0; i < n_tensors; ++i) {
      GgufTensorInfo t;
      JIELONG_TRY(read_string(c, t.name, "name of tensor " + std::to_string(i)));
      const std::string tn = "tensor '" + std::string(t.name) + "'";
      JIELONG_TRY(read_u32(c, t.n_dims, tn + " rank"));
      if (t.n_dims == 0 || t.n_dims > 4)
        return fail(tn + " has rank " + std::to_string(t.n_dims) + " (expected 1 to 4)");
      uint64_t count = 1;
      for (uint32_t d = 0; d < t.n_dims; ++d) {
        JIELONG_TRY(read_u64(c, t.ne[d], tn + " dimension " + std::to_string(d)));
        // Zero-sized or element counts past 2^62 are malformed (and would overflow).
        if (t.ne[d] == 0 || count > (uint64_t{1} << 62) / t.ne[d])
          return fail(tn + " dimension " + std::to_string(d) + " = " + std::to_string(t.ne[d]) +
                      " is zero or makes the element count overflow");
        count *= t.ne[d];
      }
      uint32_t raw_type;
      JIELONG_TRY(read_u32(c, raw_type, tn + " type"));
      const DTypeInfo* info = dtype_info(raw_type);
      if (!info) return make_error(Code::unsupported, name_ + ": " + tn + " has unknown type " + std::to_string(raw_type));
      t.type = info->type;
      if (t.ne[0] % info->block_size != 0)
        return fail(tn + " row length " + std::to_string(t.ne[0]) + " is not a multiple of the " +
                    std::string(info->name) + " block size " + std::to_string(info->block_size));
      const size_t rb = row_bytes(t.type, t.ne[0]);
      const uint64_t rows = count / t.ne[0];
      if (rb == 0 || rows > std::numeric_limits<size_t>::max() / rb) return fail(tn + " byte size overflows");
      t.n_bytes = rb * static_cast<size_t>(rows);
      JIELONG_TRY(read_u64(c, t.offset, tn + " offset"));
      if (t.offset % alignment_ != 0)
        return fail(tn + " offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                    std::to_string(alignment_));
      if (!tensor_index_.emplace(t.name, tensors_.size()).second) return fail(tn + " appears twice");
      tensors_.push_back(t);
    }

    // The data section starts at the next multiple of the alignment. A file
    // without tensors may end right after its metadata.
    const uint64_t pad = (alignment_ - c.pos % alignment_) % alignment_;
    data_offset_ = c.pos + static_cast<size_t>(pad);
    if (tensors_.empty()) return Status::ok();
    if (data_offset_ > bytes_.size()) return truncated("the padding before the tensor data", c.pos);
    const size_t data_size = bytes_.size() - data_offset_;
    for (GgufTensorInfo& t : tensors_) {
      if (t.offset > data_size || t.n_bytes > data_size - t.offset)
        return fail("tensor '" + std::string(t.name) + "' data [" + std::to_string(t.offset) + ", +" +
                    std::to_string(t.n_bytes) + ") lies outside the " + std::to_string(data_size) +
                    "-byte data section");
      t.data = bytes_.data() + data_offset_ + t.offset;
    }
    return Status::ok();
  }

  MappedFile file_;
  std::span<const std::byte> bytes_;
  std::string name_;
  uint32_t version_ = 0;
  uint64_t alignment_ = kDefaultAlignment;
  size_t data_offset_ = 0;
  std::vector<GgufKv> kvs_;
  std::unordered_map<std::string_view, size_t> kv_index_;
  std::vector<std::vector<std::string_view>> string_arrays_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

}  // namespace jielong::io

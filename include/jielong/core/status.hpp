// Status and Result<T>: the library's error values. Nothing in jielong throws;
// every fallible call returns one of these with a message that names what was
// wrong (the file, key, tensor or argument) and what was expected.
#pragma once

#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "jielong/config.hpp"

namespace jielong {

enum class Code : int {
  ok = 0,
  invalid_argument,  // the caller passed something out of contract
  io_error,          // the operating system refused (open, read, map)
  format_error,      // a file is malformed, truncated or hostile
  unsupported,       // well-formed but not handled (architecture, type, version)
  out_of_range,      // a position, index or length past a limit (context full)
  out_of_memory,     // an allocation failed
  cancelled,         // another thread asked the operation to stop
  internal,          // a bug in jielong
};

constexpr std::string_view code_name(Code c) noexcept {
  switch (c) {
    case Code::ok: return "ok";
    case Code::invalid_argument: return "invalid argument";
    case Code::io_error: return "i/o error";
    case Code::format_error: return "format error";
    case Code::unsupported: return "unsupported";
    case Code::out_of_range: return "out of range";
    case Code::out_of_memory: return "out of memory";
    case Code::cancelled: return "cancelled";
    case Code::internal: return "internal error";
  }
  return "unknown";
}

class [[nodiscard]] Status {
 public:
  Status() noexcept = default;  // ok
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() noexcept { return Status(); }

  bool is_ok() const noexcept { return code_ == Code::ok; }
  Code code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

  // "format error: model.gguf: tensor 'x' ..." — for logs and CLI output.
  std::string to_string() const {
    if (is_ok()) return "ok";
    std::string s(code_name(code_));
    s += ": ";
    s += message_;
    return s;
  }

  // Adds context in front of the message ("loading x.gguf: ...").
  Status& prefix(std::string_view context) {
    if (!is_ok()) message_.insert(0, std::string(context) + ": ");
    return *this;
  }

 private:
  Code code_ = Code::ok;
  std::string message_;
};

inline Status make_error(Code code, std::string message) { return Status(code, std::move(message)); }

// A value or the Status that explains why there is none.
template <class T>
class [[nodiscard]] Result {
  static_assert(!std::is_reference_v<T>, "Result<T&> is not supported; use a pointer");

 public:
  Result(const T& value) : has_value_(true) { new (&storage_) T(value); }   // NOLINT: implicit by design
  Result(T&& value) : has_value_(true) { new (&storage_) T(std::move(value)); }  // NOLINT
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    if (status_.is_ok()) status_ = Status(Code::internal, "Result built from an ok Status without a value");
  }
  Result(const Result& other) : status_(other.status_), has_value_(other.has_value_) {
    if (has_value_) new (&storage_) T(*other.ptr());
  }
  Result(Result&& other) noexcept(std::is_nothrow_move_constructible_v<T>)
      : status_(std::move(other.status_)), has_value_(other.has_value_) {
    if (has_value_) new (&storage_) T(std::move(*other.ptr()));
  }
  Result& operator=(Result other) noexcept(std::is_nothrow_move_constructible_v<T>) {
    reset();
    status_ = std::move(other.status_);
    has_value_ = other.has_value_;
    if (has_value_) new (&storage_) T(std::move(*other.ptr()));
    return *this;
  }
  ~Result() { reset(); }

  bool ok() const noexcept { return has_value_; }
  explicit operator bool() const noexcept { return has_value_; }
  const Status& status() const noexcept { return status_; }

  T& value() & {
    JIELONG_ASSERT(has_value_);
    return *ptr();
  }
  const T& value() const& {
    JIELONG_ASSERT(has_value_);
    return *ptr();
  }
  T&& value() && {
    JIELONG_ASSERT(has_value_);
    return std::move(*ptr());
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*ptr()); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  template <class U>
  T value_or(U&& fallback) const& {
    return has_value_ ? *ptr() : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  T* ptr() noexcept { return std::launder(reinterpret_cast<T*>(&storage_)); }
  const T* ptr() const noexcept { return std::launder(reinterpret_cast<const T*>(&storage_)); }
  void reset() noexcept {
    if (has_value_) ptr()->~T();
    has_value_ = false;
  }

  Status status_;
  bool has_value_ = false;
  alignas(T) unsigned char storage_[sizeof(T)];
};

}  // namespace jielong

#define JIELONG_CONCAT_INNER(a, b) a##b
#define JIELONG_CONCAT(a, b) JIELONG_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function when `expr` is not ok.
#define JIELONG_TRY(expr)                                 \
  do {                                                    \
    ::jielong::Status jielong_try_status_ = (expr);       \
    if (!jielong_try_status_.is_ok()) return jielong_try_status_; \
  } while (0)

// `JIELONG_ASSIGN_OR_RETURN(auto file, GgufFile::open(path));`
#define JIELONG_ASSIGN_OR_RETURN(decl, expr) \
  JIELONG_ASSIGN_OR_RETURN_IMPL(JIELONG_CONCAT(jielong_result_, __LINE__), decl, expr)
#define JIELONG_ASSIGN_OR_RETURN_IMPL(tmp, decl, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.status();                  \
  decl = std::move(tmp).value()

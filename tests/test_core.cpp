// Status/Result, tensors and views, the arena, dtypes.
#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <string>

#include "jielong/jielong.hpp"

using namespace jielong;

namespace {
Result<int> parse_positive(int x) {
  if (x <= 0) return make_error(Code::invalid_argument, "x must be positive, got " + std::to_string(x));
  return x;
}
Result<int> doubled(int x) {
  JIELONG_ASSIGN_OR_RETURN(int v, parse_positive(x));
  return 2 * v;
}
Status check_both(int a, int b) {
  JIELONG_TRY(parse_positive(a).status());
  JIELONG_TRY(parse_positive(b).status());
  return Status::ok();
}
}  // namespace

TEST_CASE("Status and Result carry values and errors") {
  CHECK(Status::ok().is_ok());
  Status e = make_error(Code::format_error, "tensor 'x': bad");
  CHECK_FALSE(e.is_ok());
  CHECK(e.code() == Code::format_error);
  CHECK(e.to_string() == "format error: tensor 'x': bad");
  e.prefix("model.gguf");
  CHECK(e.message() == "model.gguf: tensor 'x': bad");

  CHECK(doubled(21).value() == 42);
  Result<int> bad = doubled(-3);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == Code::invalid_argument);
  CHECK(bad.status().message() == "x must be positive, got -3");
  CHECK(bad.value_or(7) == 7);

  CHECK(check_both(1, 2).is_ok());
  CHECK(check_both(1, -2).message() == "x must be positive, got -2");

  // Move-only payloads move through Result.
  Result<std::unique_ptr<int>> p = std::make_unique<int>(5);
  std::unique_ptr<int> owned = std::move(p).value();
  CHECK(*owned == 5);

  // A Result built from an ok Status is a bug in the caller, reported, not hidden.
  Result<int> misuse = Status::ok();
  CHECK_FALSE(misuse.ok());
  CHECK(misuse.status().code() == Code::internal);

  // Copies and assignment keep both sides valid.
  Result<std::string> a = std::string("abc");
  Result<std::string> b = a;
  b = Result<std::string>(make_error(Code::io_error, "gone"));
  CHECK(a.value() == "abc");
  CHECK_FALSE(b.ok());
}

TEST_CASE("TensorView shapes, strides, indexing and views") {
  float data[2 * 3 * 4];
  for (int i = 0; i < 24; ++i) data[i] = static_cast<float>(i);
  TensorView<float, 3> t(data, {2, 3, 4});
  CHECK(t.size() == 24);
  CHECK(t.strides() == Shape<3>{12, 4, 1});
  CHECK(t.is_contiguous());
  CHECK(t(1, 2, 3) == 23.0f);
  CHECK(t(1, 0, 2) == 14.0f);

  auto layer = t[1];  // (3, 4)
  static_assert(decltype(layer)::rank == 2);
  CHECK(layer(2, 1) == 21.0f);
  CHECK(layer[0][3] == 15.0f);

  auto rows = t[0].slice(1, 3);  // rows 1..2 of layer 0: (2, 4)
  CHECK(rows.dim(0) == 2);
  CHECK(rows(0, 0) == 4.0f);
  CHECK(rows(1, 3) == 11.0f);

  auto tr = t[0].transposed(0, 1);  // (4, 3), not contiguous
  CHECK(tr.dim(0) == 4);
  CHECK(tr(3, 2) == 11.0f);
  CHECK_FALSE(tr.is_contiguous());
  CHECK_FALSE(tr.reshaped<1>({12}).ok());

  auto flat = t.reshaped<2>({6, 4});
  REQUIRE(flat.ok());
  CHECK((*flat)(5, 3) == 23.0f);
  CHECK_FALSE(t.reshaped<1>({23}).ok());

  // Writes through a view land in the owner's memory; const views read them.
  layer(0, 0) = -1.0f;
  CHECK(data[12] == -1.0f);
  TensorView<const float, 3> ct = t;
  CHECK(ct(1, 0, 0) == -1.0f);
}

TEST_CASE("Tensor owns aligned zeroed memory; copies are explicit") {
  auto t = Tensor<float, 2>::zeros({3, 5});
  REQUIRE(t.ok());
  CHECK(reinterpret_cast<uintptr_t>(t->data()) % 64 == 0);
  CHECK(t->size() == 15);
  for (size_t i = 0; i < 15; ++i) CHECK(t->data()[i] == 0.0f);
  (*t)(2, 4) = 7.0f;
  auto c = t->copy();
  REQUIRE(c.ok());
  (*t)(2, 4) = 1.0f;
  CHECK((*c)(2, 4) == 7.0f);
  CHECK(t->view()(2, 4) == 1.0f);

  const size_t huge = static_cast<size_t>(1) << 62;
  auto overflow = Tensor<float, 2>::zeros({huge, 8});
  CHECK_FALSE(overflow.ok());
  CHECK(overflow.status().code() == Code::invalid_argument);

  auto empty = Tensor<float, 1>::zeros({0});
  REQUIRE(empty.ok());
  CHECK(empty->size() == 0);
}

TEST_CASE("Arena: alignment, exhaustion, marks") {
  auto arena = Arena::create(1024);
  REQUIRE(arena.ok());
  float* a = arena->allocate<float>(3);
  REQUIRE(a != nullptr);
  CHECK(reinterpret_cast<uintptr_t>(a) % 64 == 0);
  double* b = arena->allocate<double>(1, 8);
  REQUIRE(b != nullptr);
  CHECK(reinterpret_cast<uintptr_t>(b) % 8 == 0);
  CHECK(reinterpret_cast<std::byte*>(b) >= reinterpret_cast<std::byte*>(a + 3));
  const size_t mark = arena->mark();
  CHECK(arena->allocate<char>(2000) == nullptr);  // too big: refused, nothing consumed
  CHECK(arena->mark() == mark);
  CHECK(arena->allocate<float>(static_cast<size_t>(-1) / 2) == nullptr);  // n * sizeof overflows
  CHECK(arena->allocate_bytes(8, 3) == nullptr);                            // not a power of two
  char* c = arena->allocate<char>(100);
  REQUIRE(c != nullptr);
  arena->release_to(mark);
  CHECK(arena->used() == mark);
  CHECK(arena->allocate<char>(100) == c);  // the same bytes again
  CHECK(arena->high_water() >= mark + 100);
  arena->reset();
  CHECK(arena->used() == 0);
  // The whole capacity is usable, and one byte more is not.
  CHECK(arena->allocate<char>(1024) != nullptr);
  CHECK(arena->allocate<char>(1) == nullptr);

  Arena none;
  CHECK(none.allocate<float>(1) == nullptr);
}

TEST_CASE("DType table matches ggml's block layouts") {
  // Block sizes and bytes from ggml-common.h: e.g. block_q4_0 = fp16 d + 16 bytes of nibbles.
  CHECK(row_bytes(DType::F32, 7) == 28);
  CHECK(row_bytes(DType::F16, 7) == 14);
  CHECK(row_bytes(DType::BF16, 3) == 6);
  CHECK(row_bytes(DType::Q4_0, 64) == 2 * (2 + 16));
  CHECK(row_bytes(DType::Q4_1, 32) == 2 + 2 + 16);
  CHECK(row_bytes(DType::Q5_0, 32) == 2 + 4 + 16);
  CHECK(row_bytes(DType::Q5_1, 32) == 2 + 2 + 4 + 16);
  CHECK(row_bytes(DType::Q8_0, 32) == 2 + 32);
  CHECK(row_bytes(DType::Q2_K, 256) == 16 + 64 + 2 + 2);
  CHECK(row_bytes(DType::Q3_K, 256) == 32 + 64 + 12 + 2);
  CHECK(row_bytes(DType::Q4_K, 256) == 2 + 2 + 12 + 128);
  CHECK(row_bytes(DType::Q5_K, 256) == 2 + 2 + 12 + 32 + 128);
  CHECK(row_bytes(DType::Q6_K, 512) == 2 * (128 + 64 + 16 + 2));
  CHECK(row_bytes(DType::Q8_K, 256) == 4 + 256 + 32);
  CHECK(row_bytes(DType::Q4_0, 33) == 0);  // not whole blocks
  CHECK(row_bytes(DType::Q8_0, UINT64_MAX - 31) == 0);  // overflow

  CHECK(dtype_info(30u)->type == DType::BF16);
  CHECK(dtype_info(4u) == nullptr);   // ggml's removed Q4_2
  CHECK(dtype_info(16u) == nullptr);  // IQ2_XXS: not handled
  CHECK(parse_dtype("Q4_K") == DType::Q4_K);
  CHECK(parse_dtype("bf16") == DType::BF16);
  CHECK_FALSE(parse_dtype("q4_k_m").has_value());
  CHECK(dtype_name(DType::Q6_K) == "q6_k");
}

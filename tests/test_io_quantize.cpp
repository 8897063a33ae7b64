// Quantizing a model end to end (tensor-type mix, rows, metadata, writing)
// against the files llama.cpp's quantize made from the same F32 model.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <vector>
#include <string>

#include "jielong/io/gguf.hpp"
#include "jielong/io/quantize.hpp"
#include "support/shared.hpp"

using namespace jielong;
using namespace jielong::io;

namespace {

// Quantizes synth-llama-f32 with `mix` and compares with synth-llama-<file>.
// bytes: also require identical tensor bytes (else only the chosen types).
void compare_with_llamacpp(const char* mix_name, const char* file, bool bytes) {
  auto src = test::shared_file("models/synth/synth-llama-f32.gguf");
  auto ref_path = test::shared_file(std::string("models/synth/synth-llama-") + file + ".gguf");
  if (!src || !ref_path) return;
  auto in = GgufFile::open(*src);
  auto ref = GgufFile::open(*ref_path);
  REQUIRE(in.ok());
  REQUIRE(ref.ok());
  const QuantMix* mix = find_quant_mix(mix_name);
  REQUIRE(mix != nullptr);
  const std::string out_path =
      (std::filesystem::temp_directory_path() / (std::string("jielong-quantize-") + mix_name + ".gguf")).string();
  Status st = quantize_model(*in, out_path, *mix);
  REQUIRE_MESSAGE(st.is_ok(), st.to_string());
  auto out = GgufFile::open(out_path);
  REQUIRE_MESSAGE(out.ok(), out.status().to_string());
  CHECK(*out->get_u32("general.file_type") == *ref->get_u32("general.file_type"));
  CHECK(out->tensors().size() == ref->tensors().size());
  int k_quant_differing = 0;
  for (const GgufTensorInfo& r : ref->tensors()) {
    INFO(std::string(mix_name) << " " << std::string(r.name));
    const GgufTensorInfo* t = out->find_tensor(r.name);
    REQUIRE(t != nullptr);
    CHECK(dtype_name(t->type) == dtype_name(r.type));
    REQUIRE(t->n_bytes == r.n_bytes);
    if (dtype_info(t->type).block_size != 256) {
      if (bytes || t->type == DType::Q8_0 || t->type == DType::Q4_0 || t->type == DType::F32)
        CHECK_MESSAGE(std::memcmp(t->data, r.data, r.n_bytes) == 0, "tensor bytes differ from llama.cpp's");
      continue;
    }
    // K-quants: ggml's reference quantizers search scales in ways ours need
    // not reproduce bit for bit; require the reconstruction error of ours to
    // be within 2% of llama.cpp's (same block format, same source weights).
    if (std::memcmp(t->data, r.data, r.n_bytes) != 0) {
      const GgufTensorInfo* f = in->find_tensor(r.name);
      const size_t cols = static_cast<size_t>(r.ne[0]), rows = static_cast<size_t>(r.n_elements() / cols);
      std::vector<float> a(cols), b(cols);
      double err_ours = 0, err_ref = 0;
      for (size_t i = 0; i < rows; ++i) {
        quants::dequantize_row(t->type, t->data + i * (t->n_bytes / rows), a.data(), cols);
        quants::dequantize_row(r.type, r.data + i * (r.n_bytes / rows), b.data(), cols);
        const float* x = reinterpret_cast<const float*>(f->data) + i * cols;
        for (size_t j = 0; j < cols; ++j) {
          err_ours += double(a[j] - x[j]) * (a[j] - x[j]);
          err_ref += double(b[j] - x[j]) * (b[j] - x[j]);
        }
      }
      ++k_quant_differing;
      CHECK_MESSAGE(err_ours <= 1.02 * err_ref, "squared error ours " << err_ours << " vs llama.cpp " << err_ref);
    }
  }
  if (k_quant_differing)
    MESSAGE(std::string(mix_name) << ": " << k_quant_differing
                                  << " K-quant tensors differ in bytes from llama.cpp's (error within 2%)");
  // Vocabulary and hyper-parameters are carried over.
  CHECK(out->get_array("tokenizer.ggml.tokens")->size() == 512);
  CHECK(*out->get_u32("llama.block_count") == 4);
  std::filesystem::remove(out_path);
}

}  // namespace

TEST_CASE("quantize: q8_0 reproduces llama.cpp's tensor bytes") { compare_with_llamacpp("q8_0", "q8_0", true); }
TEST_CASE("quantize: q4_0 reproduces llama.cpp's tensor bytes") { compare_with_llamacpp("q4_0", "q4_0", true); }
TEST_CASE("quantize: q4_1, q5_0, q5_1 match llama.cpp") {
  compare_with_llamacpp("q4_1", "q4_1", true);
  compare_with_llamacpp("q5_0", "q5_0", true);
  compare_with_llamacpp("q5_1", "q5_1", true);
}
// K-quant mixes: the chosen type of every tensor must match llama.cpp's rules
// (use_more_bits layers, the classifier's Q6_K, fallbacks for 704-wide rows);
// the Q8_0/Q4_0/F32 tensors among them must match byte for byte.
TEST_CASE("quantize: q4_k_m, q5_k_m and q6_k choose llama.cpp's tensor types") {
  compare_with_llamacpp("q4_k_m", "q4_k_m", false);
  compare_with_llamacpp("q5_k_m", "q5_k_m", false);
  compare_with_llamacpp("q6_k", "q6_k", false);
}

TEST_CASE("quantize: mix rules by hand") {
  // 32 layers: use_more_bits is true for 0..3, 28..31 and 4 + 3k + 2.
  CHECK(io::detail::use_more_bits(0, 32));
  CHECK(io::detail::use_more_bits(3, 32));
  CHECK_FALSE(io::detail::use_more_bits(4, 32));
  CHECK(io::detail::use_more_bits(6, 32));
  CHECK_FALSE(io::detail::use_more_bits(7, 32));
  CHECK(io::detail::use_more_bits(28, 32));
  CHECK(find_quant_mix("Q4_K_M") != nullptr);
  CHECK(find_quant_mix("q3_k_xl") == nullptr);
  GgufTensorInfo norm;
  norm.name = "blk.0.attn_norm.weight";
  norm.n_dims = 1;
  norm.ne[0] = 256;
  CHECK(quant_type_for(norm, *find_quant_mix("q4_0"), true, 0, 0, 4) == DType::F32);
  GgufTensorInfo emb;
  emb.name = "token_embd.weight";
  emb.n_dims = 2;
  emb.ne[0] = 256;
  emb.ne[1] = 10;
  // Tied model: the embedding is the classifier and gets Q6_K (Q8_0 stays Q8_0).
  CHECK(quant_type_for(emb, *find_quant_mix("q4_0"), false, 0, 0, 4) == DType::Q6_K);
  CHECK(quant_type_for(emb, *find_quant_mix("q4_0"), true, 0, 0, 4) == DType::Q4_0);
  CHECK(quant_type_for(emb, *find_quant_mix("q8_0"), false, 0, 0, 4) == DType::Q8_0);
  emb.ne[0] = 128;  // not a multiple of 256
  CHECK(quant_type_for(emb, *find_quant_mix("q4_k_m"), false, 0, 0, 4) == DType::Q8_0);
}

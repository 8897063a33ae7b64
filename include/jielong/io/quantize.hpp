// Quantizing a GGUF model: which tensor gets which type (llama.cpp's
// llama_tensor_get_type rules for llama/qwen2, without an importance matrix),
// then each row through the reference quantizer. Metadata is copied, with
// general.file_type set to llama.cpp's ftype number for the mix.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "jielong/core/dtype.hpp"
#include "jielong/core/quants.hpp"
#include "jielong/core/status.hpp"
#include "jielong/io/gguf.hpp"
#include "jielong/io/gguf_writer.hpp"

namespace jielong::io {

struct QuantMix {
  std::string_view name;
  DType base;            // type of an ordinary weight matrix
  bool more_bits_k_m;    // the _M mixes: attn_v / ffn_down of some layers get Q6_K
  uint32_t ftype;        // llama.cpp's llama_ftype, stored as general.file_type
};

inline constexpr QuantMix kQuantMixes[] = {
    {"f32", DType::F32, false, 0},     {"f16", DType::F16, false, 1},     {"bf16", DType::BF16, false, 32},
    {"q4_0", DType::Q4_0, false, 2},   {"q4_1", DType::Q4_1, false, 3},   {"q8_0", DType::Q8_0, false, 7},
    {"q5_0", DType::Q5_0, false, 8},   {"q5_1", DType::Q5_1, false, 9},   {"q4_k", DType::Q4_K, false, 14},
    {"q4_k_s", DType::Q4_K, false, 14}, {"q4_k_m", DType::Q4_K, true, 15}, {"q5_k", DType::Q5_K, false, 16},
    {"q5_k_s", DType::Q5_K, false, 16}, {"q5_k_m", DType::Q5_K, true, 17}, {"q6_k", DType::Q6_K, false, 18},
};

// Case-insensitive lookup of a mix name (q8_0, Q4_K_M, ...).
inline const QuantMix* find_quant_mix(std::string_view s) noexcept {
  for (const QuantMix& m : kQuantMixes) {
    if (m.name.size() != s.size()) continue;
    bool same = true;
    for (size_t i = 0; i < s.size() && same; ++i) {
      char c = s[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      same = c == m.name[i];
    }
    if (same) return &m;
  }
  return nullptr;
}

namespace detail {
// llama.cpp: the first and last eighth of the layers, and every third between.
inline bool use_more_bits(int i_layer, int n_layers) noexcept {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}
// K-quants need rows of 256; llama.cpp substitutes these for narrower rows.
inline DType k_fallback(DType t) noexcept {
  switch (t) {
    case DType::Q4_K: return DType::Q5_0;
    case DType::Q5_K: return DType::Q5_1;
    case DType::Q6_K: return DType::Q8_0;
    default: return t;
  }
}
inline bool ends_with(std::string_view s, std::string_view suffix) noexcept {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
}  // namespace detail

// The type llama.cpp's quantize gives `t` under `mix`. `i_attn_v` / `i_ffn_down`
// count earlier tensors of that kind (llama.cpp counts in file order).
inline DType quant_type_for(const GgufTensorInfo& t, const QuantMix& mix, bool has_output, int i_attn_v,
                            int i_ffn_down, int n_layers) {
  const std::string_view name = t.name;
  // Only matrices named *weight are quantized; norms and biases stay as they are.
  if (t.n_dims < 2 || !detail::ends_with(name, "weight")) return t.type;
  if (!dtype_info(mix.base).quantized) return mix.base;
  DType type = mix.base;
  const bool is_classifier = name == "output.weight" || (!has_output && name == "token_embd.weight");
  if (is_classifier) {
    if (t.ne[0] % 256 != 0) type = DType::Q8_0;
    else if (type != DType::Q8_0) type = DType::Q6_K;
  } else if (mix.more_bits_k_m && name.find("attn_v.weight") != std::string_view::npos) {
    if (detail::use_more_bits(i_attn_v, n_layers)) type = DType::Q6_K;
  } else if (mix.more_bits_k_m && name.find("ffn_down") != std::string_view::npos) {
    if (detail::use_more_bits(i_ffn_down, n_layers)) type = DType::Q6_K;
  } else if (mix.more_bits_k_m && name.find("attn_qkv.weight") != std::string_view::npos) {
    type = mix.base == DType::Q4_K ? DType::Q5_K : DType::Q6_K;
  }
  if (dtype_info(type).block_size == 256 && t.ne[0] % 256 != 0) type = detail::k_fallback(type);
  return type;
}

// Reads `in`, writes the quantized model to `out_path`.
inline Status quantize_model(const GgufFile& in, const std::string& out_path, const QuantMix& mix) {
  const int n_layers = [&] {
    int n = 0;
    for (const GgufTensorInfo& t : in.tensors())
      if (t.name.find("attn_v.weight") != std::string_view::npos) ++n;
    return n;
  }();
  const bool has_output = in.find_tensor("output.weight") != nullptr;

  GgufWriter w(static_cast<uint32_t>(in.alignment()));
  for (const GgufKv& kv : in.metadata()) {
    if (kv.key == "general.alignment" || kv.key == "general.file_type" || kv.key == "general.quantization_version")
      continue;
    w.add_value(kv.key, kv.value);
  }
  w.add_u32("general.quantization_version", 2);
  w.add_u32("general.file_type", mix.ftype);

  std::vector<std::vector<std::byte>> outputs;
  outputs.reserve(in.tensors().size());
  std::vector<float> row;
  int i_attn_v = 0, i_ffn_down = 0;
  for (const GgufTensorInfo& t : in.tensors()) {
    const DType type = quant_type_for(t, mix, has_output, i_attn_v, i_ffn_down, n_layers);
    if (t.name.find("attn_v.weight") != std::string_view::npos) ++i_attn_v;
    if (t.name.find("ffn_down") != std::string_view::npos) ++i_ffn_down;
    const std::span<const uint64_t> dims(t.ne, t.n_dims);
    if (type == t.type) {
      JIELONG_TRY(w.add_tensor(t.name, t.type, dims, std::span<const std::byte>(t.data, t.n_bytes)));
      continue;
    }
    const size_t cols = static_cast<size_t>(t.ne[0]);
    const size_t rows = static_cast<size_t>(t.n_elements() / t.ne[0]);
    const size_t in_row = t.n_bytes / rows, out_row = row_bytes(type, cols);
    if (out_row == 0)
      return make_error(Code::invalid_argument, in.name() + ": tensor '" + std::string(t.name) + "' rows of " +
                                                    std::to_string(cols) + " cannot be stored as " +
                                                    std::string(dtype_name(type)));
    auto& out = outputs.emplace_back(out_row * rows);
    row.resize(cols);
    for (size_t r = 0; r < rows; ++r) {
      quants::dequantize_row(t.type, t.data + r * in_row, row.data(), cols);
      Status st = quants::quantize_row(type, row.data(), out.data() + r * out_row, cols);
      if (!st.is_ok()) return st.prefix("tensor '" + std::string(t.name) + "'");
    }
    JIELONG_TRY(w.add_tensor(t.name, type, dims, out));
  }
  return w.write(out_path);
}

// Writes a model whose tensors were added as F32: as it is (mix nullptr or
// f32), or requantized with `mix` (weights quantized, norms kept F32).
inline Status write_model_file(GgufWriter& w, const std::string& out_path, const QuantMix* mix) {
  if (!mix || mix->base == DType::F32) {
    w.add_u32("general.file_type", 0);
    return w.write(out_path);
  }
  const std::vector<std::byte> image = w.to_bytes();
  JIELONG_ASSIGN_OR_RETURN(GgufFile f32, GgufFile::from_memory(image, out_path));
  return quantize_model(f32, out_path, *mix);
}

}  // namespace jielong::io

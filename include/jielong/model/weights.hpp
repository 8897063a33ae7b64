// Views of a decoder-only transformer's weights, named as GGUF names them.
// Nothing here owns memory: matrices point into the mapped model file, small
// vectors (norms, biases) into the Model's own f32 copy.
#pragma once

#include <cstddef>
#include <vector>

#include "jielong/kernels/backend.hpp"

namespace jielong::model {

using kernels::WeightView;

struct LayerWeights {
  const float* attn_norm = nullptr;  // [n_embd]
  WeightView wq{};                   // [n_heads·head_dim][n_embd]
  WeightView wk{};                   // [n_kv_heads·head_dim][n_embd]
  WeightView wv{};                   // [n_kv_heads·head_dim][n_embd]
  const float* bq = nullptr;         // [n_heads·head_dim] or none (qwen2 has them)
  const float* bk = nullptr;         // [n_kv_heads·head_dim] or none
  const float* bv = nullptr;         // [n_kv_heads·head_dim] or none
  WeightView wo{};                   // [n_embd][n_heads·head_dim]
  const float* ffn_norm = nullptr;   // [n_embd]
  WeightView w_gate{};               // [n_ff][n_embd]
  WeightView w_up{};                 // [n_ff][n_embd]
  WeightView w_down{};               // [n_embd][n_ff]
};

struct Weights {
  WeightView token_embd{};              // [n_vocab][n_embd], any format
  std::vector<LayerWeights> layers;     // [n_layers]
  const float* output_norm = nullptr;   // [n_embd]
  WeightView output{};                  // [n_vocab][n_embd]; token_embd when tied
  bool tied_output = false;
};

}  // namespace jielong::model

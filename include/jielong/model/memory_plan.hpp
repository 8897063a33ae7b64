// RAM a model needs at a given context, computed from the header alone
// (hyper-parameters and tensor sizes), before anything is allocated: the
// weights (mapped from the file, or for the formats repacked at load in
// memory of the model's own: as many bytes either way), the KV cache
// (kv_cache_bytes: 2 · layers · context · kv_dim elements), the logits, and
// the per-token activation buffers of one forward step (times the batch for
// prefill).
#pragma once

#include <cstddef>
#include <cstdint>

#include "jielong/core/dtype.hpp"
#include "jielong/model/hparams.hpp"
#include "jielong/model/kv_cache.hpp"

namespace jielong::model {

struct MemoryPlan {
  size_t weight_bytes = 0;
  size_t kv_cache_bytes = 0;
  size_t logits_bytes = 0;
  size_t activation_bytes = 0;
  size_t total_bytes() const noexcept { return weight_bytes + kv_cache_bytes + logits_bytes + activation_bytes; }
};

inline MemoryPlan plan_memory(const HParams& hp, size_t weight_bytes, size_t n_ctx, DType kv_type,
                              size_t n_batch = 1) {
  MemoryPlan p;
  p.weight_bytes = weight_bytes;
  const size_t kv_elem = dtype_info(kv_type).block_bytes / dtype_info(kv_type).block_size;
  p.kv_cache_bytes = kv_cache_bytes(hp.n_layers, n_ctx, hp.kv_dim(), kv_elem);
  p.logits_bytes = hp.n_vocab * sizeof(float);
  // x, xb, xb2 [n_embd]; q [q_dim]; k, v [kv_dim]; hb, hb2 [n_ff]; scores [n_heads][n_ctx];
  // rotary angles [rope_dim <= head_dim].
  const size_t per_token =
      3 * hp.n_embd + hp.q_dim() + 2 * hp.kv_dim() + 2 * hp.n_ff + hp.n_heads * n_ctx + hp.head_dim;
  p.activation_bytes = per_token * sizeof(float) * (n_batch == 0 ? 1 : n_batch);
  return p;
}

// The weights: the tensors of `f` (io::ModelFile), whose hyper-parameters are hp.
template <class File>
MemoryPlan plan_memory(const File& f, const HParams& hp, size_t n_ctx, DType kv_type, size_t n_batch = 1) {
  size_t weights = 0;
  for (const auto& t : f.tensors()) weights += t.n_bytes;
  return plan_memory(hp, weights, n_ctx, kv_type, n_batch);
}

}  // namespace jielong::model

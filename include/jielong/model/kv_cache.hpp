// The key/value cache of one sequence: every layer's K and V rows for every
// position seen so far, allocated once for the whole context.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "jielong/core/dtype.hpp"
#include "jielong/core/memory.hpp"
#include "jielong/core/status.hpp"
#include "jielong/kernels/kernels.hpp"

namespace jielong::model {

enum class KvType : uint8_t {
  f32,
  f16,  // half the memory; llama.cpp's default
};

inline const char* kv_type_name(KvType t) noexcept { return t == KvType::f32 ? "f32" : "f16"; }
inline size_t kv_elem_bytes(KvType t) noexcept { return t == KvType::f32 ? 4 : 2; }

// Bytes of the KV cache of one sequence: K and V, each layers · positions ·
// kv_dim elements of elem_bytes. SIZE_MAX when that does not fit in size_t.
inline size_t kv_cache_bytes(size_t n_layers, size_t n_ctx, size_t kv_dim, size_t elem_bytes) noexcept {
  const size_t max = static_cast<size_t>(-1) / 4;
  if (n_layers == 0 || n_ctx == 0 || kv_dim == 0) return 0;
  if (n_ctx > max / kv_dim || n_ctx * kv_dim > max / n_layers || n_ctx * kv_dim * n_layers > max / elem_bytes)
    return static_cast<size_t>(-1);
  return 2 * n_layers * n_ctx * kv_dim * elem_bytes;
}

class KvCache {
 public:
  KvCache() noexcept = default;
  KvCache(KvCache&&) noexcept = default;
  KvCache& operator=(KvCache&&) noexcept = default;
  KvCache(const KvCache&) = delete;  // see copy_prefix
  KvCache& operator=(const KvCache&) = delete;

  static Result<KvCache> create(size_t n_layers, size_t n_ctx, size_t kv_dim, KvType type) {
    if (n_layers == 0 || n_ctx == 0 || kv_dim == 0)
      return make_error(Code::invalid_argument, "kv cache: layers, context and kv_dim must be > 0");
    KvCache c;
    c.n_layers_ = n_layers;
    c.n_ctx_ = n_ctx;
    c.kv_dim_ = kv_dim;
    c.type_ = type;
    const size_t elem = kv_elem_bytes(type);
    if (kv_cache_bytes(n_layers, n_ctx, kv_dim, elem) == static_cast<size_t>(-1))
      return make_error(Code::invalid_argument, "kv cache: size overflows");
    c.layer_bytes_ = n_ctx * kv_dim * elem;
    c.k_ = AlignedBuffer(c.layer_bytes_ * n_layers);
    c.v_ = AlignedBuffer(c.layer_bytes_ * n_layers);
    if (!c.k_.data() || !c.v_.data())
      return make_error(Code::out_of_memory, "kv cache: " + std::to_string(2 * c.layer_bytes_ * n_layers) +
                                                 " bytes for " + std::to_string(n_ctx) + " positions");
    return c;
  }

  // An independent cache holding the same first `n_positions` rows of every
  // layer (the rest uninitialised): what a forked session needs.
  Result<KvCache> copy_prefix(size_t n_positions) const {
    JIELONG_ASSIGN_OR_RETURN(KvCache c, create(n_layers_, n_ctx_, kv_dim_, type_));
    const size_t bytes = std::min(n_positions, n_ctx_) * row_bytes();
    for (size_t l = 0; l < n_layers_; ++l) {
      std::memcpy(c.k_.data() + l * layer_bytes_, k_.data() + l * layer_bytes_, bytes);
      std::memcpy(c.v_.data() + l * layer_bytes_, v_.data() + l * layer_bytes_, bytes);
    }
    return c;
  }

  // Writes position `pos` of layer `l` from f32 rows k[kv_dim], v[kv_dim]
  // (an f16 cache converts them with backend B).
  template <class B>
  void store(size_t l, size_t pos, const float* k, const float* v) noexcept {
    if (type_ == KvType::f32) {
      std::memcpy(k_row(l, pos), k, kv_dim_ * sizeof(float));
      std::memcpy(v_row(l, pos), v, kv_dim_ * sizeof(float));
    } else {
      kernels::f32_to_f16_row<B>(k, static_cast<uint16_t*>(k_row(l, pos)), kv_dim_);
      kernels::f32_to_f16_row<B>(v, static_cast<uint16_t*>(v_row(l, pos)), kv_dim_);
    }
  }

  void* k_row(size_t l, size_t pos) noexcept { return k_.data() + l * layer_bytes_ + pos * row_bytes(); }
  void* v_row(size_t l, size_t pos) noexcept { return v_.data() + l * layer_bytes_ + pos * row_bytes(); }
  const void* k_row(size_t l, size_t pos) const noexcept { return k_.data() + l * layer_bytes_ + pos * row_bytes(); }
  const void* v_row(size_t l, size_t pos) const noexcept { return v_.data() + l * layer_bytes_ + pos * row_bytes(); }

  KvType type() const noexcept { return type_; }
  size_t n_ctx() const noexcept { return n_ctx_; }
  size_t n_layers() const noexcept { return n_layers_; }
  size_t kv_dim() const noexcept { return kv_dim_; }
  size_t row_bytes() const noexcept { return kv_dim_ * kv_elem_bytes(type_); }
  size_t bytes() const noexcept { return 2 * layer_bytes_ * n_layers_; }

 private:
  size_t n_layers_ = 0, n_ctx_ = 0, kv_dim_ = 0, layer_bytes_ = 0;
  KvType type_ = KvType::f32;
  AlignedBuffer k_;  // [n_layers][n_ctx][kv_dim] keys, rope applied
  AlignedBuffer v_;  // [n_layers][n_ctx][kv_dim] values
};

}  // namespace jielong::model

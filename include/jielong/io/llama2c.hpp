// The header of a llama2.c checkpoint, as run.c and runq.c read it: the
// Config (7 × int32 at the start of a v0 file, after magic and version in a
// v2 "ak42" file), the classifier flag and, in v2 files, the quantization
// group size. Only what the file layout needs is checked here (positive
// fields, whole heads, sizes whose products cannot overflow); model/ turns
// the header into HParams.
#pragma once

#include <climits>
#include <cstddef>
#include <cstdint>
#include <string>

#include "jielong/core/status.hpp"

namespace jielong::io {

// run.c's Config, byte for byte.
struct Llama2cConfig {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
};

struct Llama2cHeader {
  size_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0, seq_len = 0;
  bool shared_classifier = true;  // the classifier is the token embedding
  uint32_t group_size = 0;        // v2 files: values per quantization group

  size_t head_dim() const noexcept { return dim / n_heads; }
  size_t kv_dim() const noexcept { return n_kv_heads * head_dim(); }
};

// run.c: a positive vocab_size means the classifier is shared with the token
// embedding; negative means a separate classifier follows the weights.
// `shared_override`: v2 files store the flag explicitly (vocab_size > 0).
inline Result<Llama2cHeader> llama2c_header(const Llama2cConfig& c, const std::string& where,
                                            int shared_override = -1) {
  const int32_t fields[7] = {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len};
  const char* names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
  for (int i = 0; i < 7; ++i) {
    const bool ok = i == 5 ? (fields[i] != 0 && fields[i] != INT32_MIN) : fields[i] > 0;
    if (!ok)
      return make_error(Code::format_error, where + ": llama2.c header field " + names[i] + " = " +
                                                std::to_string(fields[i]) + (i == 5 ? " (expected non-zero)" : " (expected > 0)"));
  }
  Llama2cHeader h;
  h.dim = static_cast<size_t>(c.dim);
  h.hidden_dim = static_cast<size_t>(c.hidden_dim);
  h.n_layers = static_cast<size_t>(c.n_layers);
  h.n_heads = static_cast<size_t>(c.n_heads);
  h.n_kv_heads = static_cast<size_t>(c.n_kv_heads);
  h.vocab_size = static_cast<size_t>(c.vocab_size > 0 ? c.vocab_size : -static_cast<int64_t>(c.vocab_size));
  h.seq_len = static_cast<size_t>(c.seq_len);
  h.shared_classifier = shared_override >= 0 ? shared_override != 0 : c.vocab_size > 0;
  // The file size is computed in 64 bits from these: every width < 2^24,
  // layers and heads <= 4096, so no product of them overflows.
  const size_t limit = size_t{1} << 24;
  if (h.dim > limit || h.hidden_dim > limit || h.vocab_size > limit || h.n_layers > 4096 || h.n_heads > 4096 ||
      h.n_kv_heads > 4096 || h.seq_len > (size_t{1} << 26))
    return make_error(Code::format_error, where + ": a llama2.c header dimension is implausibly large");
  if (h.dim % h.n_heads != 0)
    return make_error(Code::format_error, where + ": llama2.c dim " + std::to_string(h.dim) +
                                              " is not a multiple of n_heads " + std::to_string(h.n_heads));
  if (h.n_heads % h.n_kv_heads != 0)
    return make_error(Code::format_error, where + ": head count " + std::to_string(h.n_heads) +
                                              " is not a multiple of the kv head count " +
                                              std::to_string(h.n_kv_heads));
  return h;
}

}  // namespace jielong::io

// One way to open any supported model file: GGUF (v2/v3) or a llama2.c
// checkpoint (v0 fp32 `.bin` from export.py's legacy format, or v2 "ak42"
// Q8_0 from runq.c's export). Tensors are exposed in GGUF naming
// (token_embd.weight, blk.N.attn_q.weight, ...) with GGUF's dimension order
// (ne[0] = row length), so the engine binds both formats the same way.
//
// llama2.c stores wq/wk as PyTorch's [out][in] row-major matrices in the same
// head layout llama.cpp uses after its convert-time permutation, so no Q/K
// permutation is needed: stories260K.gguf's tensors equal the .bin's bytes.
//
// A file format knows no architecture: the GGUF metadata and the llama2.c
// header are exposed as they are, and model::hparams_from_file reads them.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "jielong/core/dtype.hpp"
#include "jielong/core/mapped_file.hpp"
#include "jielong/core/status.hpp"
#include "jielong/io/gguf.hpp"
#include "jielong/io/llama2c.hpp"

namespace jielong::io {

enum class ModelFormat { gguf, llama2c_v0, llama2c_q8 };

inline const char* format_name(ModelFormat f) noexcept {
  switch (f) {
    case ModelFormat::gguf: return "gguf";
    case ModelFormat::llama2c_v0: return "llama2.c v0 (fp32)";
    case ModelFormat::llama2c_q8: return "llama2.c v2 (ak42, Q8_0)";
  }
  return "unknown";
}

class ModelFile {
 public:
  static constexpr uint32_t kAk42Magic = 0x616b3432u;  // "ak42" read as little-endian u32

  ModelFile(const ModelFile&) = delete;
  ModelFile& operator=(const ModelFile&) = delete;

  // mode: map the file (default) or read it into memory (MappedFile's notes).
  static Result<std::shared_ptr<const ModelFile>> open(const std::string& path,
                                                       MappedFile::Mode mode = MappedFile::Mode::map_or_read) {
    std::shared_ptr<ModelFile> f(new ModelFile());
    f->path_ = path;
    JIELONG_ASSIGN_OR_RETURN(MappedFile head, MappedFile::open(path));  // a look at the magic
    const bool is_gguf = head.size() >= 4 && std::memcmp(head.data(), "GGUF", 4) == 0;
    if (is_gguf) {
      head = MappedFile();
      JIELONG_ASSIGN_OR_RETURN(GgufFile g, GgufFile::open(path, mode));
      f->gguf_ = std::make_unique<GgufFile>(std::move(g));
      JIELONG_TRY(f->bind_gguf());
    } else {
      if (mode != MappedFile::Mode::map_or_read) {  // the macro is several statements
        JIELONG_ASSIGN_OR_RETURN(head, MappedFile::open(path, mode));
      }
      f->file_ = std::move(head);
      JIELONG_TRY(f->read_llama2c());
    }
    return std::shared_ptr<const ModelFile>(std::move(f));
  }

  ModelFormat format() const noexcept { return format_; }
  const std::string& path() const noexcept { return path_; }
  // The GGUF file (metadata, vocabulary), or nullptr for llama2.c checkpoints.
  const GgufFile* gguf() const noexcept { return gguf_.get(); }
  // The llama2.c header, or nullptr for GGUF files.
  const Llama2cHeader* llama2c() const noexcept { return gguf_ ? nullptr : &header_; }
  // See MappedFile::drop_pages.
  void drop_pages(const void* p, size_t n) const noexcept {
    if (gguf_) gguf_->drop_pages(p, n);
    else file_.drop_pages(p, n);
  }
  // See GgufFile::evict_metadata (a llama2.c header is a few bytes: nothing to give back).
  void evict_metadata() const noexcept {
    if (gguf_) gguf_->evict_metadata();
  }
  std::span<const GgufTensorInfo> tensors() const noexcept { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second];
  }
  // llama2.c v2 files: the quantization group size stored in the header.
  uint32_t llama2c_group_size() const noexcept { return header_.group_size; }

 private:
  ModelFile() = default;

  Status bind_gguf() {
    format_ = ModelFormat::gguf;
    tensors_.assign(gguf_->tensors().begin(), gguf_->tensors().end());
    for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
    return Status::ok();
  }

  Status fail(const std::string& what) const { return make_error(Code::format_error, path_ + ": " + what); }

  // A tensor named the GGUF way, with ne = {cols, rows}.
  void add(std::string name, size_t cols, size_t rows, const std::byte* data) {
    names_.push_back(std::move(name));
    GgufTensorInfo t;
    t.name = names_.back();
    t.type = DType::F32;
    t.n_dims = rows == 1 ? 1 : 2;
    t.ne[0] = cols;
    t.ne[1] = rows;
    t.data = data;
    t.n_bytes = cols * rows * sizeof(float);
    index_.emplace(t.name, tensors_.size());
    tensors_.push_back(t);
  }

  // The per-layer matrices in the order run.c/runq.c read them, with GGUF names
  // and {cols, rows} shapes.
  struct Mat {
    const char* name;
    size_t cols, rows;
  };
  std::vector<Mat> layer_mats() const {
    const size_t d = header_.dim, q = header_.dim, kv = header_.kv_dim(), ff = header_.hidden_dim;
    return {{"attn_q.weight", d, q},      {"attn_k.weight", d, kv}, {"attn_v.weight", d, kv},
            {"attn_output.weight", q, d}, {"ffn_gate.weight", d, ff},  // w1
            {"ffn_down.weight", ff, d},                                 // w2
            {"ffn_up.weight", d, ff}};                                  // w3
  }
  static std::string blk(size_t l, const char* what) { return "blk." + std::to_string(l) + "." + what; }

  Status read_llama2c() {
    const std::byte* base = file_.data();
    const size_t size = file_.size();
    if (size < 4) return fail("too short to be a model file (" + std::to_string(size) + " bytes)");
    uint32_t magic;
    std::memcpy(&magic, base, 4);
    if (magic == kAk42Magic) return read_ak42();
    format_ = ModelFormat::llama2c_v0;
    Llama2cConfig c;
    if (size < sizeof c) return fail("shorter than a llama2.c header (28 bytes)");
    std::memcpy(&c, base, sizeof c);
    JIELONG_ASSIGN_OR_RETURN(header_, llama2c_header(c, path_));
    const size_t d = header_.dim, L = header_.n_layers, V = header_.vocab_size;
    const bool shared = header_.shared_classifier;
    // Total floats, computed in 64 bits: every factor is bounded (llama2c_header).
    uint64_t floats = uint64_t{V} * d + 2 * L * d + d;
    for (const Mat& m : layer_mats()) floats += uint64_t{L} * m.cols * m.rows;
    floats += uint64_t{header_.seq_len} * header_.head_dim();  // run.c's freq_cis_real/imag, unused
    if (!shared) floats += uint64_t{V} * d;
    const uint64_t expected = sizeof c + floats * 4;
    if (expected != size)
      return fail("llama2.c v0 header (dim " + std::to_string(d) + ", layers " + std::to_string(L) + ", vocab " +
                  std::to_string(V) + (shared ? ", shared" : ", separate") + " classifier) needs " +
                  std::to_string(expected) + " bytes but the file has " + std::to_string(size));
    const size_t n_tensors = 2 + L * 9 + 1;
    names_.reserve(n_tensors);
    tensors_.reserve(n_tensors);
    const std::byte* p = base + sizeof c;
    auto take = [&](size_t n_floats) {
      const std::byte* at = p;
      p += n_floats * 4;
      return at;
    };
    add("token_embd.weight", d, V, take(V * d));
    for (size_t l = 0; l < L; ++l) add(blk(l, "attn_norm.weight"), d, 1, take(d));
    for (const Mat& m : layer_mats()) {
      if (std::string_view(m.name) == "ffn_gate.weight")  // rms_ffn_weight sits between wo and w1
        for (size_t l = 0; l < L; ++l) add(blk(l, "ffn_norm.weight"), d, 1, take(d));
      for (size_t l = 0; l < L; ++l) add(blk(l, m.name), m.cols, m.rows, take(m.cols * m.rows));
    }
    add("output_norm.weight", d, 1, take(d));
    take(header_.seq_len * header_.head_dim());
    if (!shared) add("output.weight", d, V, take(V * d));
    return Status::ok();
  }

  // runq.c's v2 layout: a 256-byte header (magic, i32 version = 2, Config,
  // u8 shared_classifier, i32 group_size), the fp32 norms (all attention
  // norms, all ffn norms, the final norm), then each matrix as int8 values
  // followed by one fp32 scale per group: token embedding, wq×L, wk×L, wv×L,
  // wo×L, w1×L, w2×L, w3×L, [classifier]. The token embedding is served
  // dequantized (f32 = q·s, as runq.c looks rows up); the matrices as their int8
  // groups (zero-copy) with their scales, so that the engine multiplies them as
  // runq.c does: activations quantized into the same groups, integer dots.
  Status read_ak42() {
    format_ = ModelFormat::llama2c_q8;
    const std::byte* base = file_.data();
    const size_t size = file_.size();
    constexpr size_t kHeader = 256;
    if (size < kHeader) return fail("shorter than a llama2.c v2 header (256 bytes)");
    int32_t version;
    std::memcpy(&version, base + 4, 4);
    if (version != 2)
      return make_error(Code::unsupported, path_ + ": llama2.c \"ak42\" version " + std::to_string(version) +
                                               " (expected 2, runq.c's Q8_0 export)");
    Llama2cConfig c;
    std::memcpy(&c, base + 8, sizeof c);
    const uint8_t shared = static_cast<uint8_t>(base[8 + sizeof c]);
    int32_t gs;
    std::memcpy(&gs, base + 8 + sizeof c + 1, 4);
    if (shared > 1) return fail("llama2.c v2 shared_classifier byte is " + std::to_string(shared) + " (expected 0 or 1)");
    JIELONG_ASSIGN_OR_RETURN(header_, llama2c_header(c, path_, shared));
    if (gs <= 0) return fail("llama2.c v2 group size " + std::to_string(gs) + " (expected > 0)");
    header_.group_size = static_cast<uint32_t>(gs);
    const size_t d = header_.dim, L = header_.n_layers, V = header_.vocab_size, G = header_.group_size;

    uint64_t norm_floats = 2 * L * d + d, weight_floats = uint64_t{V} * d, scale_floats = 0;
    uint64_t file_bytes = kHeader + norm_floats * 4;
    auto qbytes = [&](uint64_t n) { return n + n / G * 4; };
    file_bytes += qbytes(uint64_t{V} * d);
    for (const Mat& m : layer_mats()) {
      const uint64_t n = uint64_t{m.cols} * m.rows;
      if (n % G != 0)
        return fail(std::string("llama2.c v2 matrix ") + m.name + " has " + std::to_string(n) +
                    " elements, not a multiple of the group size " + std::to_string(G));
      file_bytes += L * qbytes(n);
      scale_floats += L * (n / G);
    }
    if ((uint64_t{V} * d) % G != 0) return fail("token embedding size is not a multiple of the group size");
    if (!header_.shared_classifier) {
      file_bytes += qbytes(uint64_t{V} * d);
    }
    scale_floats += uint64_t{V} * d / G;  // the classifier's (the embedding's when shared)
    if (file_bytes != size)
      return fail("llama2.c v2 header needs " + std::to_string(file_bytes) + " bytes but the file has " +
                  std::to_string(size));

    dequantized_.resize(static_cast<size_t>(weight_floats));
    scales_.resize(static_cast<size_t>(scale_floats));  // copied: in the file they need not be 4-byte aligned
    const size_t n_tensors = 3 + L * 9 + 1;
    names_.reserve(n_tensors);
    tensors_.reserve(n_tensors);
    const std::byte* p = base + kHeader;
    const std::byte* norms = p;
    p += norm_floats * 4;
    float* scales = scales_.data();
    // The int8 groups at p as a matrix tensor; p moves past them and their scales.
    auto groups = [&](std::string name, size_t cols, size_t rows) {
      const size_t n = cols * rows;
      std::memcpy(scales, p + n, n / G * 4);
      add(std::move(name), cols, rows, p);
      GgufTensorInfo& t = tensors_.back();
      t.type = DType::I8;
      t.n_bytes = n;
      t.group_scales = scales;
      t.group_size = G;
      scales += n / G;
      p += n + n / G * 4;
    };
    const std::byte* q_tokens = p;
    {
      const size_t n = V * d;
      const auto* q = reinterpret_cast<const int8_t*>(p);
      float* out = dequantized_.data();
      for (size_t g = 0; g < n / G; ++g) {
        float scale;
        std::memcpy(&scale, p + n + 4 * g, 4);
        for (size_t j = 0; j < G; ++j) out[g * G + j] = static_cast<float>(q[g * G + j]) * scale;
      }
      add("token_embd.weight", d, V, reinterpret_cast<const std::byte*>(out));
    }
    for (size_t l = 0; l < L; ++l) add(blk(l, "attn_norm.weight"), d, 1, norms + 4 * (l * d));
    for (size_t l = 0; l < L; ++l) add(blk(l, "ffn_norm.weight"), d, 1, norms + 4 * ((L + l) * d));
    add("output_norm.weight", d, 1, norms + 4 * (2 * L * d));
    p = q_tokens + V * d + V * d / G * 4;
    for (const Mat& m : layer_mats())
      for (size_t l = 0; l < L; ++l) groups(blk(l, m.name), m.cols, m.rows);
    // runq.c multiplies by the quantized classifier, the token table's groups when shared.
    if (header_.shared_classifier) p = q_tokens;
    groups("output.weight", d, V);
    return Status::ok();
  }

  std::string path_;
  ModelFormat format_ = ModelFormat::gguf;
  std::unique_ptr<GgufFile> gguf_;
  MappedFile file_;  // llama2.c checkpoints
  Llama2cHeader header_;  // llama2.c checkpoints
  std::vector<std::string> names_;  // reserved up front: tensors_ hold views of these
  std::vector<float> dequantized_;  // llama2.c v2 token embedding as f32
  std::vector<float> scales_;       // llama2.c v2 group scales
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> index_;
};

}  // namespace jielong::io

// Model: an immutable, loaded transformer — hyper-parameters, weight views
// bound by GGUF name, and the rope frequencies. Load once, share among any
// number of Sessions on any threads (nothing in it changes after load).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "jielong/core/dtype.hpp"
#include "jielong/core/memory.hpp"
#include "jielong/core/page_dropper.hpp"
#include "jielong/core/status.hpp"
#include "jielong/kernels/kernels.hpp"
#include "jielong/model/hparams.hpp"
#include "jielong/model/rope.hpp"
#include "jielong/model/weights.hpp"

namespace jielong::model {

struct BindOptions {
  // Repack the Q4_0/Q8_0/Q4_K/F32 matrices into panels (kernels/panels.hpp) in
  // memory of the Model's own; the file's pages of those tensors are given
  // back (File::drop_pages, where the file has it). Costs one pass over
  // those weights at load; worth it where the CPU runs the panel kernels.
  bool panels = kernels::panels_preferred();
  // Runs the repacking, 1024 rows per task (most of its time is the system
  // handing out fresh pages, which goes faster on several cores); nullptr:
  // a pool of one thread per core for the duration of the load.
  Executor* executor = nullptr;
};

namespace detail {
struct PanelSlice;
}  // namespace detail

class Model {
 public:
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const HParams& hparams() const noexcept { return hp_; }
  const Weights& weights() const noexcept { return w_; }
  const float* inv_freq() const noexcept { return inv_freq_.data(); }  // [rope_dim/2]
  size_t rope_dim() const noexcept { return hp_.rope_dim; }
  kernels::RopeLayout rope_layout() const noexcept {
    return hp_.rope_neox ? kernels::RopeLayout::neox : kernels::RopeLayout::normal;
  }
  const std::string& path() const noexcept { return path_; }

  // Binds the weights of `file` (anything with `find_tensor(name)` returning
  // a pointer to {type, n_dims, ne[], data, n_bytes}) for the
  // hyper-parameters hp (model::hparams_from_file); the Model keeps `file`
  // alive for its lifetime.
  template <class File>
  static Result<std::shared_ptr<const Model>> bind(std::shared_ptr<const File> file, const HParams& hp,
                                                   std::string path, const BindOptions& opts = {});

  // Bytes of weights repacked into panels (0 when bound without them).
  size_t panel_bytes() const noexcept { return panels_.size(); }

 private:
  Model() = default;

  struct PendingVector {
    const float** slot;
    size_t offset;  // in small_
  };
  template <class File>
  Status bind_all(const File& f);
  template <class File>
  Status bind_vector(const File& f, const std::string& name, size_t n, bool required, const float** slot,
                     std::vector<PendingVector>& pending);
  template <class File>
  Status bind_rope(const File& f);
  template <class File>
  Status pack_panels(const File& f, Executor* ex);
  std::vector<WeightView*> matrices();
  static std::vector<detail::PanelSlice> panel_slices(const std::vector<WeightView*>& order);
  PageDropper still_read(const std::vector<WeightView*>& views) const;

  HParams hp_{};
  Weights w_;
  std::vector<float> small_;      // norms and biases converted to f32 (concatenated)
  std::vector<float> inv_freq_;   // [rope_dim/2]
  HugePageBuffer panels_;              // the repacked matrices, when bound with panels
  std::shared_ptr<const void> owner_;  // the mapped file the views point into
  std::string path_;
};

namespace detail {

// "blk.3.attn_q.weight"
inline std::string layer_tensor(size_t layer, std::string_view what) {
  return "blk." + std::to_string(layer) + "." + std::string(what);
}

inline std::string shape_string(const uint64_t* ne, size_t n_dims) {
  std::string s = "[";
  for (size_t i = 0; i < n_dims; ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

}  // namespace detail

template <class File>
Result<std::shared_ptr<const Model>> Model::bind(std::shared_ptr<const File> file, const HParams& hp, std::string path,
                                                 const BindOptions& opts) {
  if (!file) return make_error(Code::invalid_argument, "model: no file");
  std::shared_ptr<Model> m(new (std::nothrow) Model());
  if (!m) return make_error(Code::out_of_memory, "model");
  m->hp_ = hp;
  m->path_ = std::move(path);
  Status st = m->bind_all(*file);
  if (st.is_ok() && opts.panels) st = m->pack_panels(*file, opts.executor);
  if (!st.is_ok()) return st.prefix(m->path_);
  // Decoding never reads the metadata: its pages go back (a mapped file's
  // only; a tokenizer built later reads them again).
  if constexpr (requires { file->evict_metadata(); }) file->evict_metadata();
  m->owner_ = std::move(file);
  return std::shared_ptr<const Model>(std::move(m));
}

namespace detail {

// A matrix stored as GGUF ne = [cols, rows] (ne0 is the contiguous row);
// out stays empty when the tensor is absent and not required.
template <class File>
Status bind_matrix(const File& f, const std::string& name, size_t cols, size_t rows, bool required,
                   WeightView& out) {
  const auto* t = f.find_tensor(name);
  if (!t) {
    if (!required) return Status::ok();
    return make_error(Code::format_error, "tensor '" + name + "' is missing");
  }
  const uint64_t want[2] = {cols, rows};
  if (t->n_dims < 1 || t->n_dims > 2 || t->ne[0] != cols || (t->n_dims == 2 ? t->ne[1] : 1) != rows)
    return make_error(Code::format_error, "tensor '" + name + "' has shape " +
                                              detail::shape_string(t->ne, t->n_dims) + ", expected " +
                                              detail::shape_string(want, 2));
  const size_t stride = row_bytes(t->type, cols);
  if constexpr (requires { t->group_scales; t->group_size; }) {
    if (t->type == DType::I8 && t->group_size > 0 && t->group_scales) {  // llama2.c v2 groups
      if (cols % t->group_size != 0)
        return make_error(Code::format_error, "tensor '" + name + "': rows of " + std::to_string(cols) +
                                                  " values do not split into groups of " +
                                                  std::to_string(t->group_size));
      out = WeightView{t->type, t->data, rows, cols, stride, t->group_scales, t->group_size};
      return Status::ok();
    }
  }
  if (!kernels::matvec_supports(t->type) || stride == 0)
    return make_error(Code::unsupported, "tensor '" + name + "' has type " + std::string(dtype_name(t->type)) +
                                             ", which the kernels do not multiply");
  if (t->n_bytes < stride * rows)
    return make_error(Code::format_error, "tensor '" + name + "' holds " + std::to_string(t->n_bytes) +
                                              " bytes, expected " + std::to_string(stride * rows));
  out = WeightView{t->type, t->data, rows, cols, stride};
  return Status::ok();
}

}  // namespace detail

// Small vectors (norm weights, biases) are copied to f32 once, whatever
// their stored type, so the forward pass reads plain floats; *slot is set
// once small_ stops growing (bind_all's end).
template <class File>
Status Model::bind_vector(const File& f, const std::string& name, size_t n, bool required, const float** slot,
                          std::vector<PendingVector>& pending) {
  const auto* t = f.find_tensor(name);
  if (!t) {
    if (!required) return Status::ok();
    return make_error(Code::format_error, "tensor '" + name + "' is missing");
  }
  if (t->n_dims != 1 || t->ne[0] != n)
    return make_error(Code::format_error, "tensor '" + name + "' has shape " +
                                              detail::shape_string(t->ne, t->n_dims) + ", expected [" +
                                              std::to_string(n) + "]");
  const size_t bytes = row_bytes(t->type, n);
  if (bytes == 0 || t->n_bytes < bytes)
    return make_error(Code::format_error, "tensor '" + name + "': " + std::string(dtype_name(t->type)) +
                                              " data does not hold " + std::to_string(n) + " values");
  const size_t offset = small_.size();
  small_.resize(offset + n);
  kernels::dequantize_row<kernels::Scalar>(t->type, t->data, small_.data() + offset, n);
  pending.push_back({slot, offset});
  return Status::ok();
}

template <class File>
Status Model::bind_all(const File& f) {
  const HParams& hp = hp_;
  const size_t q_dim = hp.n_heads * hp.head_dim, kv_dim = hp.n_kv_heads * hp.head_dim;
  std::vector<PendingVector> pending;
  auto matrix = [&](const std::string& name, size_t cols, size_t rows, bool required, WeightView& out) {
    return detail::bind_matrix(f, name, cols, rows, required, out);
  };
  auto vector = [&](const std::string& name, size_t n, bool required, const float** slot) {
    return bind_vector(f, name, n, required, slot, pending);
  };

  JIELONG_TRY(matrix("token_embd.weight", hp.n_embd, hp.n_vocab, true, w_.token_embd));
  JIELONG_TRY(vector("output_norm.weight", hp.n_embd, true, &w_.output_norm));
  JIELONG_TRY(matrix("output.weight", hp.n_embd, hp.n_vocab, false, w_.output));
  w_.tied_output = w_.output.data == nullptr;
  if (w_.tied_output) w_.output = w_.token_embd;

  w_.layers.resize(hp.n_layers);
  for (size_t l = 0; l < hp.n_layers; ++l) {
    LayerWeights& L = w_.layers[l];
    auto name = [&](std::string_view what) { return detail::layer_tensor(l, what); };
    JIELONG_TRY(vector(name("attn_norm.weight"), hp.n_embd, true, &L.attn_norm));
    JIELONG_TRY(matrix(name("attn_q.weight"), hp.n_embd, q_dim, true, L.wq));
    JIELONG_TRY(matrix(name("attn_k.weight"), hp.n_embd, kv_dim, true, L.wk));
    JIELONG_TRY(matrix(name("attn_v.weight"), hp.n_embd, kv_dim, true, L.wv));
    JIELONG_TRY(vector(name("attn_q.bias"), q_dim, hp.qkv_bias, &L.bq));
    JIELONG_TRY(vector(name("attn_k.bias"), kv_dim, hp.qkv_bias, &L.bk));
    JIELONG_TRY(vector(name("attn_v.bias"), kv_dim, hp.qkv_bias, &L.bv));
    JIELONG_TRY(matrix(name("attn_output.weight"), q_dim, hp.n_embd, true, L.wo));
    JIELONG_TRY(vector(name("ffn_norm.weight"), hp.n_embd, true, &L.ffn_norm));
    JIELONG_TRY(matrix(name("ffn_gate.weight"), hp.n_embd, hp.n_ff, true, L.w_gate));
    JIELONG_TRY(matrix(name("ffn_up.weight"), hp.n_embd, hp.n_ff, true, L.w_up));
    JIELONG_TRY(matrix(name("ffn_down.weight"), hp.n_ff, hp.n_embd, true, L.w_down));
  }
  JIELONG_TRY(bind_rope(f));

  // small_ no longer grows: hand out the pointers.
  for (const PendingVector& p : pending) *p.slot = small_.data() + p.offset;
  return Status::ok();
}

// Rope: the frequencies of the rotated dims of each head (HParams::validate
// keeps hp.rope_dim even and within the head; the kernels set a limit too),
// scaled by the file's rope_freqs.weight where it has one.
template <class File>
Status Model::bind_rope(const File& f) {
  const size_t rope_dim = hp_.rope_dim;
  if (rope_dim > kernels::kMaxRopeDim)
    return make_error(Code::unsupported, "rope dimension " + std::to_string(rope_dim) + " exceeds the kernels' " +
                                             std::to_string(kernels::kMaxRopeDim));
  inv_freq_.resize(rope_dim / 2);
  std::vector<float> freq_factors;
  if (const auto* t = f.find_tensor("rope_freqs.weight")) {
    if (t->n_dims != 1 || t->ne[0] != rope_dim / 2 || t->type != DType::F32)
      return make_error(Code::format_error, "tensor 'rope_freqs.weight' must be f32 [" +
                                                std::to_string(rope_dim / 2) + "]");
    freq_factors.resize(rope_dim / 2);
    kernels::dequantize_row<kernels::Scalar>(t->type, t->data, freq_factors.data(), rope_dim / 2);
  }
  rope_inv_freq(rope_params(hp_), rope_dim, inv_freq_, freq_factors);
  return Status::ok();
}

namespace detail {

// A slice of up to 1024 rows (64 panels) of a matrix being repacked.
struct PanelSlice {
  WeightView* view;
  size_t offset;  // of the matrix in the panel buffer
  size_t r0, n;   // rows
  const std::byte* src() const noexcept { return static_cast<const std::byte*>(view->data) + r0 * view->row_stride; }
  size_t bytes() const noexcept { return n * view->row_stride; }
};

inline bool packable(const WeightView& v) noexcept {
  return kernels::panels::panel_rows(v.type, v.rows) > 0 && v.row_stride == row_bytes(v.type, v.cols);
}
inline size_t panel_bytes_padded(const WeightView& v) noexcept { return (v.rows * v.row_stride + 63) / 64 * 64; }

}  // namespace detail

// Every matrix that may be repacked into panels, the classifier last.
inline std::vector<WeightView*> Model::matrices() {
  std::vector<WeightView*> views;
  for (LayerWeights& L : w_.layers)
    for (WeightView* v : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) views.push_back(v);
  views.push_back(&w_.output);
  return views;
}

// One buffer for every matrix that has panels. The matrices are packed in
// file order, in steps of about 4 MiB of the file, each step's slices shared
// out over the executor; after each step its file pages go back to the
// system (File::drop_pages, where the file has it, through a PageDropper
// that spares the still-read tensors), so the file's bytes and their packed
// copy are never both resident for more than a step, and the page-table
// flush each call costs is paid per step, not per matrix. A tied embedding
// then looks its rows up in the packed classifier
// (kernels::dequantize_view_row), so no copy of the file's rows stays
// behind for it.
template <class File>
Status Model::pack_panels(const File& f, Executor* ex) {
  const std::vector<WeightView*> views = matrices();
  std::vector<WeightView*> order;  // the packable ones, in file order
  size_t total = 0;
  for (WeightView* v : views)
    if (detail::packable(*v)) {
      order.push_back(v);
      total += detail::panel_bytes_padded(*v);
    }
  if (total == 0) return Status::ok();
  std::sort(order.begin(), order.end(), [](const WeightView* a, const WeightView* b) { return a->data < b->data; });
  HugePageBuffer buf(total);
  if (!buf.data())
    return make_error(Code::out_of_memory, std::to_string(total) + " bytes for the weights repacked into panels");
  std::unique_ptr<ThreadPool> own;
  if (!ex) {
    own.reset(new (std::nothrow) ThreadPool(0));
    if (!own) return make_error(Code::out_of_memory, "model: a thread pool for repacking");
    ex = own.get();
  }

  const std::vector<detail::PanelSlice> slices = panel_slices(order);
  PageDropper dropper = still_read(views);
  constexpr size_t kStep = size_t{4} << 20;
  for (size_t s0 = 0; s0 < slices.size();) {
    size_t s1 = s0, bytes = 0;
    while (s1 < slices.size() && (s1 == s0 || bytes + slices[s1].bytes() <= kStep)) bytes += slices[s1++].bytes();
    parallel_for(*ex, s1 - s0, 1, [&](size_t i0, size_t i1) {
      for (size_t i = s0 + i0; i < s0 + i1; ++i) {
        const detail::PanelSlice& sl = slices[i];
        const size_t off = sl.r0 * sl.view->row_stride;
        buf.populate(buf.data() + sl.offset + off, sl.bytes());  // one call, not a fault per page
        (void)kernels::panels::pack_matrix(sl.view->type, sl.src(), sl.n, sl.view->cols, buf.data() + sl.offset + off);
      }
    });
    // The step's pages up to the next step's first byte (the small vectors
    // between matrices were copied at bind).
    const std::byte* end = s1 < slices.size() ? slices[s1].src() : slices[s1 - 1].src() + slices[s1 - 1].bytes();
    if constexpr (requires(const void* p, size_t n) { f.drop_pages(p, n); })
      dropper.drop(slices[s0].src(), end, [&](const void* p, size_t n) { f.drop_pages(p, n); });
    s0 = s1;
  }
  for (const detail::PanelSlice& sl : slices) {
    if (sl.r0 != 0) continue;
    sl.view->panel_rows = kernels::panels::panel_rows(sl.view->type, sl.view->rows);
    sl.view->data = buf.data() + sl.offset;
  }
  if (w_.tied_output) w_.token_embd = w_.output;
  panels_ = std::move(buf);
  return Status::ok();
}

// The matrices in `order` cut into slices of 1024 rows, each matrix at its
// padded offset in the panel buffer.
inline std::vector<detail::PanelSlice> Model::panel_slices(const std::vector<WeightView*>& order) {
  std::vector<detail::PanelSlice> slices;
  size_t offset = 0;
  constexpr size_t kSlice = 64 * kernels::panels::kRows;
  for (WeightView* v : order) {
    for (size_t r = 0; r < v->rows; r += kSlice) slices.push_back({v, offset, r, std::min(kSlice, v->rows - r)});
    offset += detail::panel_bytes_padded(*v);
  }
  return slices;
}

// The tensors still read from the file after repacking: the matrices that
// keep the file's layout (and their group scales), and the token embedding
// unless it becomes the packed classifier.
inline PageDropper Model::still_read(const std::vector<WeightView*>& views) const {
  PageDropper d;
  for (const WeightView* v : views)
    if (!detail::packable(*v)) {
      d.keep(v->data, v->rows * v->row_stride);
      if (v->group_scales) d.keep(v->group_scales, v->rows * v->cols / v->group * sizeof(float));
    }
  if (!w_.tied_output || !detail::packable(w_.output))
    d.keep(w_.token_embd.data, w_.token_embd.rows * w_.token_embd.row_stride);
  return d;
}

}  // namespace jielong::model

// Saving a session's state and restoring it into another session of the
// same model: a restored session continues exactly as the original would
// (same logits bit for bit, same sampled tokens).
//
// Format (version 2, little-endian, every field 8-byte aligned):
//   u64 magic "JLSESS01"   u64 version
//   u64 model fingerprint (hyper-parameters and some embedding bytes)
//   u64 n_layers, kv_dim, n_vocab, kv type, position, n_accepted
//   u64 rng seed, rng counter
//   u64 mirostat: bit 32 set when the chain has a mirostat stage, bits 0..31 mu (f32)
//   i32 tokens[position] (padded to 8 bytes)
//   i32 accepted[n_accepted], oldest first (the penalty window; padded)
//   f32 logits[n_vocab] (padded)
//   K then V rows of positions [0, position) of every layer
//   u64 FNV-1a-64 of everything before it
// A truncated or damaged buffer, another model, a context too small or a
// different KV type is a clean error, and the target session is untouched.
// Not saved: queued advance() work (save refuses while there is some) and the
// sampler's configuration (the restoring session keeps its own).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "jielong/core/hash.hpp"
#include "jielong/core/status.hpp"
#include "jielong/kernels/panels.hpp"
#include "jielong/run/session.hpp"

namespace jielong::run {

class SessionIo {
 public:
  static constexpr uint64_t kMagic = 0x3130535345534c4aull;  // "JLSESS01"
  static constexpr uint64_t kVersion = 2;
  static constexpr size_t kHeader = 12 * 8;

  // Bytes save_state needs for the session as it is now.
  static size_t saved_size(const Session& s) noexcept {
    const size_t pos = s.tokens_.size();
    return kHeader + pad8(pos * 4) + pad8(n_accepted(s) * 4) + pad8(s.n_vocab() * 4) +
           2 * s.kv_.n_layers() * pos * s.kv_.row_bytes() + 8;
  }

  // Writes into `out` (at least saved_size() bytes); returns bytes written.
  // Allocates nothing.
  static Result<size_t> save(const Session& s, std::span<std::byte> out) {
    if (s.busy() || s.queued_prompt() || s.queued_generate())
      return make_error(Code::invalid_argument, "session save: advance() work is queued; finish or cancel it first");
    const size_t need = saved_size(s);
    if (out.size() < need)
      return make_error(Code::invalid_argument, "session save: buffer of " + std::to_string(out.size()) +
                                                    " bytes, need " + std::to_string(need));
    Writer w{out.data(), out.data()};
    const size_t pos = s.tokens_.size();
    const sample::SamplerChain::State st = s.sampler_.state();
    uint32_t mu_bits;
    std::memcpy(&mu_bits, &st.mu, 4);
    const uint64_t mirostat = st.has_mu ? (uint64_t{1} << 32) | mu_bits : 0;
    const uint64_t head[12] = {kMagic, kVersion, fingerprint(s.model()), s.kv_.n_layers(), s.kv_.kv_dim(),
                               s.n_vocab(), static_cast<uint64_t>(s.kv_.type()), pos, n_accepted(s),
                               st.rng.seed, st.rng.counter, mirostat};
    w.put(head, kHeader);
    w.put(s.tokens_.data(), pos * 4);
    w.pad();
    // The penalty window, oldest first.
    if (const sample::Penalties* pen = s.sampler_.penalties())
      for (size_t i = 0; i < pen->size(); ++i) {
        const Token t = pen->recent(i);
        w.put(&t, 4);
      }
    w.pad();
    w.put(s.logits_.data(), s.n_vocab() * 4);
    w.pad();
    const size_t rb = s.kv_.row_bytes();
    for (size_t l = 0; l < s.kv_.n_layers(); ++l) w.put(s.kv_.k_row(l, 0), pos * rb);
    for (size_t l = 0; l < s.kv_.n_layers(); ++l) w.put(s.kv_.v_row(l, 0), pos * rb);
    const uint64_t sum = fnv1a(out.data(), w.p - out.data());
    w.put(&sum, 8);
    return static_cast<size_t>(w.p - out.data());
  }

  static Result<std::vector<std::byte>> save(const Session& s) {
    std::vector<std::byte> buf(saved_size(s));
    JIELONG_ASSIGN_OR_RETURN(size_t n, save(s, std::span<std::byte>(buf)));
    buf.resize(n);
    return buf;
  }

  // Restores `in` into `s`, a session of the same model with the same KV
  // type and a context at least as long. The sampler chain keeps its
  // configuration and takes the saved RNG state and penalty window.
  static Status load(Session& s, std::span<const std::byte> in) {
    if (s.busy()) return make_error(Code::invalid_argument, "session load: a slice is suspended");
    if (in.size() < 2 * 8)
      return make_error(Code::format_error, "session load: " + std::to_string(in.size()) + " bytes is too short");
    uint64_t h[12];
    std::memcpy(h, in.data(), 2 * 8);
    if (h[0] != kMagic) return make_error(Code::format_error, "session load: not a saved session (bad magic)");
    if (h[1] != kVersion)
      return make_error(Code::unsupported, "session load: version " + std::to_string(h[1]) + ", expected " +
                                               std::to_string(kVersion));
    if (in.size() < kHeader + 8)
      return make_error(Code::format_error, "session load: " + std::to_string(in.size()) + " bytes is too short");
    std::memcpy(h, in.data(), sizeof h);
    if (h[11] >> 33 != 0) return make_error(Code::format_error, "session load: bad mirostat field");
    const uint64_t pos = h[7], n_acc = h[8];
    // Sizes first (in checked arithmetic), then the checksum, then meaning.
    if (pos > s.capacity() || n_acc > (uint64_t{1} << 31))
      return make_error(Code::out_of_range, "session load: " + std::to_string(pos) +
                                                " positions do not fit a context of " + std::to_string(s.capacity()));
    if (h[3] != s.kv_.n_layers() || h[4] != s.kv_.kv_dim() || h[5] != s.n_vocab())
      return make_error(Code::invalid_argument, "session load: saved for " + std::to_string(h[3]) + " layers, kv_dim " +
                                                    std::to_string(h[4]) + ", vocabulary " + std::to_string(h[5]) +
                                                    "; this session's model differs");
    if (h[6] != static_cast<uint64_t>(s.kv_.type()))
      return make_error(Code::invalid_argument, "session load: saved with another KV cache type");
    const size_t rb = s.kv_.row_bytes();
    const size_t expect = kHeader + pad8(pos * 4) + pad8(n_acc * 4) + pad8(s.n_vocab() * 4) +
                          2 * s.kv_.n_layers() * pos * rb + 8;
    if (in.size() != expect)
      return make_error(Code::format_error, "session load: " + std::to_string(in.size()) + " bytes, expected " +
                                                std::to_string(expect) + " (truncated or damaged)");
    uint64_t sum;
    std::memcpy(&sum, in.data() + expect - 8, 8);
    if (sum != fnv1a(in.data(), expect - 8))
      return make_error(Code::format_error, "session load: checksum mismatch (damaged)");
    if (h[2] != fingerprint(s.model()))
      return make_error(Code::invalid_argument, "session load: saved with a different model");
    const std::byte* p = in.data() + kHeader;
    for (uint64_t i = 0; i < pos; ++i) {
      Token t;
      std::memcpy(&t, p + i * 4, 4);
      if (t < 0 || static_cast<size_t>(t) >= s.n_vocab())
        return make_error(Code::format_error, "session load: token " + std::to_string(t) + " outside the vocabulary");
    }
    // Valid: now change the session.
    s.tokens_.resize(pos);
    std::memcpy(s.tokens_.data(), p, pos * 4);
    p += pad8(pos * 4);
    s.sampler_.reset();
    for (uint64_t i = 0; i < n_acc; ++i) {
      Token t;
      std::memcpy(&t, p + i * 4, 4);
      s.accept(t);
    }
    p += pad8(n_acc * 4);
    sample::SamplerChain::State st{{h[9], h[10]}, (h[11] >> 32) != 0, 0.0f};
    const uint32_t mu_bits = static_cast<uint32_t>(h[11]);
    std::memcpy(&st.mu, &mu_bits, 4);
    s.sampler_.set_state(st);
    std::memcpy(s.logits_.data(), p, s.n_vocab() * 4);
    p += pad8(s.n_vocab() * 4);
    for (size_t l = 0; l < s.kv_.n_layers(); ++l, p += pos * rb) std::memcpy(s.kv_.k_row(l, 0), p, pos * rb);
    for (size_t l = 0; l < s.kv_.n_layers(); ++l, p += pos * rb) std::memcpy(s.kv_.v_row(l, 0), p, pos * rb);
    s.pending_.clear();
    s.pending_done_ = 0;
    s.n_generate_ = 0;
    return Status::ok();
  }

  static Status save_file(const Session& s, const std::string& path) {
    JIELONG_ASSIGN_OR_RETURN(std::vector<std::byte> buf, save(s));
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return make_error(Code::io_error, path + ": cannot open for writing");
    const bool ok = std::fwrite(buf.data(), 1, buf.size(), f) == buf.size();
    if (std::fclose(f) != 0 || !ok) return make_error(Code::io_error, path + ": write failed");
    return Status::ok();
  }

  static Status load_file(Session& s, const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return make_error(Code::io_error, path + ": cannot open");
    std::vector<std::byte> buf;
    std::byte chunk[1 << 16];
    for (size_t n; (n = std::fread(chunk, 1, sizeof chunk, f)) > 0;) buf.insert(buf.end(), chunk, chunk + n);
    const bool err = std::ferror(f) != 0;
    std::fclose(f);
    if (err) return make_error(Code::io_error, path + ": read failed");
    Status st = load(s, buf);
    return st.is_ok() ? st : st.prefix(path);
  }

  // Identifies a model well enough to refuse a save made with another one:
  // its hyper-parameters and the bytes of a few embedding rows.
  static uint64_t fingerprint(const model::Model& m) noexcept {
    const auto& hp = m.hparams();
    const uint64_t dims[7] = {hp.n_vocab, hp.n_embd, hp.n_ff, hp.n_layers, hp.n_heads, hp.n_kv_heads, hp.head_dim};
    uint64_t h = fnv1a(dims, sizeof dims);
    const auto& e = m.weights().token_embd;
    const size_t n = std::min<size_t>(e.row_stride, 256);
    unsigned char head[256];  // the row's first bytes as the file has them, repacked or not
    for (size_t r : {size_t{0}, e.rows / 2, e.rows - 1}) {
      kernels::panels::copy_row_prefix(e, r, n, head);
      h = fnv1a(head, n, h);
    }
    return h;
  }

 private:
  struct Writer {
    std::byte* p;
    void put(const void* src, size_t n) noexcept {
      if (n) std::memcpy(p, src, n);
      p += n;
    }
    std::byte* base;
    void pad() noexcept {  // zeros up to the next multiple of 8 from the start
      while ((p - base) % 8 != 0) *p++ = std::byte{0};
    }
  };
  static size_t pad8(size_t n) noexcept { return (n + 7) / 8 * 8; }
  static size_t n_accepted(const Session& s) noexcept {
    const sample::Penalties* pen = s.sampler_.penalties();
    return pen ? pen->size() : 0;
  }
};

}  // namespace jielong::run

// Token shards: a tokenised split on disk, memory-mapped for training, and
// the batch loader that cuts B x T windows out of one.
//
// Format (version 1, little-endian), a 64-byte header then the tokens:
//
//   offset size  field
//        0    8  magic "JLTOKENS"
//        8    4  version (1)
//       12    4  bytes per token: 2 (vocabularies up to 65536) or 4
//       16    4  vocabulary size; every token is below it
//       20    4  the id that starts each document (<|endoftext|>), or 0xFFFFFFFF
//       24    8  number of tokens
//       32    8  number of documents
//       40    8  FNV-1a 64 of the token bytes
//       48    8  FNV-1a 64 of header bytes 0-47
//       56    8  zero
//       64       the tokens, n_tokens x bytes per token
//
// A file is written under a temporary name and renamed when complete, so a
// shard that exists was written to the end. Opening checks the header's
// checksum, the size the header implies, the tokens' checksum and that every
// token is in the vocabulary, and says which check failed.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "jielong/core/hash.hpp"
#include "jielong/core/mapped_file.hpp"
#include "jielong/core/status.hpp"
#include "jielong/sample/rng.hpp"

namespace jielong::train {

inline constexpr char kShardMagic[8] = {'J', 'L', 'T', 'O', 'K', 'E', 'N', 'S'};
inline constexpr uint32_t kShardVersion = 1;
inline constexpr size_t kShardHeaderBytes = 64;
inline constexpr uint32_t kNoSeparator = 0xFFFFFFFFu;

struct ShardHeader {
  uint32_t version = kShardVersion;
  uint32_t token_bytes = 2;
  uint32_t vocab_size = 0;
  uint32_t separator = kNoSeparator;
  uint64_t n_tokens = 0;
  uint64_t n_documents = 0;
  uint64_t data_checksum = kFnv1aBasis;

  void encode(unsigned char out[kShardHeaderBytes]) const noexcept {
    std::memset(out, 0, kShardHeaderBytes);
    std::memcpy(out, kShardMagic, 8);
    std::memcpy(out + 8, &version, 4);
    std::memcpy(out + 12, &token_bytes, 4);
    std::memcpy(out + 16, &vocab_size, 4);
    std::memcpy(out + 20, &separator, 4);
    std::memcpy(out + 24, &n_tokens, 8);
    std::memcpy(out + 32, &n_documents, 8);
    std::memcpy(out + 40, &data_checksum, 8);
    const uint64_t h = fnv1a(out, 48);
    std::memcpy(out + 48, &h, 8);
  }
};

// Writes a shard: append documents, then finish().
class ShardWriter {
 public:
  ShardWriter() = default;
  ShardWriter(ShardWriter&& o) noexcept { *this = std::move(o); }
  ShardWriter& operator=(ShardWriter&& o) noexcept {
    if (this != &o) {
      discard();
      path_ = std::move(o.path_), tmp_ = std::move(o.tmp_), header_ = o.header_;
      file_ = std::exchange(o.file_, nullptr);
    }
    return *this;
  }
  ~ShardWriter() { discard(); }

  static Result<ShardWriter> create(const std::string& path, uint32_t vocab_size, uint32_t separator = kNoSeparator) {
    if (vocab_size == 0) return make_error(Code::invalid_argument, path + ": a shard needs a vocabulary size above 0");
    ShardWriter w;
    w.path_ = path;
    w.tmp_ = path + ".tmp";
    w.header_.vocab_size = vocab_size;
    w.header_.separator = separator;
    w.header_.token_bytes = vocab_size <= 65536 ? 2 : 4;
    w.file_ = std::fopen(w.tmp_.c_str(), "wb");
    if (!w.file_) return make_error(Code::io_error, w.tmp_ + ": cannot open for writing: " + std::strerror(errno));
    unsigned char blank[kShardHeaderBytes] = {};
    if (std::fwrite(blank, 1, sizeof blank, w.file_) != sizeof blank)
      return make_error(Code::io_error, w.tmp_ + ": write failed");
    return w;
  }

  // One document's tokens (with its separator in front, when the caller
  // encodes with one).
  Status append(std::span<const int32_t> tokens) {
    if (!file_) return make_error(Code::invalid_argument, path_ + ": shard writer is closed");
    buffer_.clear();
    for (int32_t t : tokens) {
      if (t < 0 || static_cast<uint32_t>(t) >= header_.vocab_size)
        return make_error(Code::invalid_argument, path_ + ": token " + std::to_string(t) + " is outside the vocabulary of " +
                                                      std::to_string(header_.vocab_size));
      const uint32_t v = static_cast<uint32_t>(t);
      const auto* b = reinterpret_cast<const unsigned char*>(&v);
      buffer_.insert(buffer_.end(), b, b + header_.token_bytes);
    }
    header_.data_checksum = fnv1a(buffer_.data(), buffer_.size(), header_.data_checksum);
    header_.n_tokens += tokens.size();
    ++header_.n_documents;
    if (!buffer_.empty() && std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size())
      return make_error(Code::io_error, tmp_ + ": write failed (disk full?)");
    return Status::ok();
  }

  const ShardHeader& header() const noexcept { return header_; }

  // Writes the header and renames the file into place.
  Status finish() {
    if (!file_) return make_error(Code::invalid_argument, path_ + ": shard writer is closed");
    unsigned char head[kShardHeaderBytes];
    header_.encode(head);
    const bool ok = std::fseek(file_, 0, SEEK_SET) == 0 && std::fwrite(head, 1, sizeof head, file_) == sizeof head &&
                    std::fflush(file_) == 0;
    const bool closed = std::fclose(file_) == 0;
    file_ = nullptr;
    if (!ok || !closed) {
      std::remove(tmp_.c_str());
      return make_error(Code::io_error, tmp_ + ": write failed (disk full?)");
    }
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
      return make_error(Code::io_error, path_ + ": cannot rename from " + tmp_ + ": " + std::strerror(errno));
    return Status::ok();
  }

 private:
  void discard() noexcept {
    if (file_) {
      std::fclose(file_);
      std::remove(tmp_.c_str());
      file_ = nullptr;
    }
  }

  std::string path_, tmp_;
  ShardHeader header_;
  std::FILE* file_ = nullptr;
  std::vector<unsigned char> buffer_;
};

// A shard opened for reading (memory-mapped), checked whole.
class TokenShard {
 public:
  static Result<TokenShard> open(const std::string& path) {
    auto file = MappedFile::open(path);
    if (!file.ok()) return file.status();
    TokenShard s;
    JIELONG_TRY(s.parse(path, file->bytes()));
    s.file_ = std::move(*file);
    return s;
  }

  // A shard held in memory, as ShardWriter would have written `tokens`
  // (`documents` of them, each with `separator` in front when it is one):
  // for data prepared on the fly (raw text, instruction examples) rather than
  // by prepare-data.
  static Result<TokenShard> from_tokens(std::span<const int32_t> tokens, uint32_t vocab_size,
                                        uint32_t separator = kNoSeparator, uint64_t documents = 1) {
    if (vocab_size == 0) return make_error(Code::invalid_argument, "token shard: vocabulary size must be above 0");
    TokenShard s;
    s.header_.vocab_size = vocab_size;
    s.header_.separator = separator;
    s.header_.token_bytes = vocab_size <= 65536 ? 2 : 4;
    s.header_.n_tokens = tokens.size();
    s.header_.n_documents = documents;
    s.owned_.resize(tokens.size() * s.header_.token_bytes);  // [n_tokens][token_bytes]
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (tokens[i] < 0 || static_cast<uint32_t>(tokens[i]) >= vocab_size)
        return make_error(Code::invalid_argument, "token shard: token " + std::to_string(tokens[i]) +
                                                      " is outside the vocabulary of " + std::to_string(vocab_size));
      const uint32_t v = static_cast<uint32_t>(tokens[i]);
      std::memcpy(s.owned_.data() + i * s.header_.token_bytes, &v, s.header_.token_bytes);  // little-endian hosts
    }
    s.header_.data_checksum = fnv1a(s.owned_.data(), s.owned_.size());
    s.data_ = s.owned_.data();
    return s;
  }

  const ShardHeader& header() const noexcept { return header_; }
  uint64_t size() const noexcept { return header_.n_tokens; }
  uint32_t token(uint64_t i) const noexcept {
    uint32_t v = 0;
    std::memcpy(&v, data_ + i * header_.token_bytes, header_.token_bytes);  // little-endian hosts
    return v;
  }
  // tokens[begin, begin + out.size()) into out; the range must be inside.
  void read(uint64_t begin, std::span<int32_t> out) const noexcept {
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<int32_t>(token(begin + i));
  }

 private:
  Status parse(const std::string& path, std::span<const std::byte> bytes) {
    auto bad = [&](const std::string& what) { return make_error(Code::format_error, path + ": token shard: " + what); };
    if (bytes.size() < kShardHeaderBytes)
      return bad("file of " + std::to_string(bytes.size()) + " bytes is shorter than the 64-byte header");
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    if (std::memcmp(p, kShardMagic, 8) != 0) return bad("bad magic (not a jielong token shard)");
    std::memcpy(&header_.version, p + 8, 4);
    if (header_.version != kShardVersion)
      return make_error(Code::unsupported, path + ": token shard version " + std::to_string(header_.version) +
                                               " (this build reads version " + std::to_string(kShardVersion) + ")");
    uint64_t head_sum = 0;
    std::memcpy(&head_sum, p + 48, 8);
    if (head_sum != fnv1a(p, 48)) return bad("header checksum mismatch (damaged header)");
    std::memcpy(&header_.token_bytes, p + 12, 4);
    std::memcpy(&header_.vocab_size, p + 16, 4);
    std::memcpy(&header_.separator, p + 20, 4);
    std::memcpy(&header_.n_tokens, p + 24, 8);
    std::memcpy(&header_.n_documents, p + 32, 8);
    std::memcpy(&header_.data_checksum, p + 40, 8);
    if (header_.token_bytes != 2 && header_.token_bytes != 4)
      return bad(std::to_string(header_.token_bytes) + " bytes per token (expected 2 or 4)");
    if (header_.vocab_size == 0 || (header_.token_bytes == 2 && header_.vocab_size > 65536))
      return bad("vocabulary size " + std::to_string(header_.vocab_size) + " does not fit " +
                 std::to_string(header_.token_bytes) + "-byte tokens");
    const uint64_t body = bytes.size() - kShardHeaderBytes;
    if (header_.n_tokens > body / header_.token_bytes || header_.n_tokens * header_.token_bytes != body)
      return bad("header says " + std::to_string(header_.n_tokens) + " tokens of " + std::to_string(header_.token_bytes) +
                 " bytes, the file holds " + std::to_string(body) + " bytes after the header (truncated or padded)");
    data_ = p + kShardHeaderBytes;
    if (fnv1a(data_, body) != header_.data_checksum) return bad("token checksum mismatch (damaged data)");
    for (uint64_t i = 0; i < header_.n_tokens; ++i)
      if (token(i) >= header_.vocab_size)
        return bad("token " + std::to_string(i) + " is " + std::to_string(token(i)) + ", outside the vocabulary of " +
                   std::to_string(header_.vocab_size));
    return Status::ok();
  }

  MappedFile file_;
  std::vector<unsigned char> owned_;  // the tokens of a shard made in memory (a moved vector keeps its buffer)
  ShardHeader header_;
  const unsigned char* data_ = nullptr;
};

// B x T windows of a shard, as a language model trains on them: row b of
// `inputs` holds tokens [s, s + T) and row b of `targets` tokens
// [s + 1, s + T + 1) for a window start s.
//
// random:     s is drawn from [0, n - T) by a counter-based generator, the
//             draw for row b of batch k being Rng::draw(seed, k * B + b);
// sequential: the windows [0, T+1), [T, 2T+1), ... in order, wrapping
//             around (for validation, which should see every token once).
//
// With a mask shard beside the tokens (instruction tuning: 1 where a token is
// part of an answer, 0 elsewhere, one entry per token) the shard is a list of
// packed rows of T + 1 tokens: a window is a whole row (random: row
// Rng::draw(seed, k * B + b) mod rows; sequential: the rows in order) and
// next() also hands out the mask of each target.
//
// Either way a batch is a function of (seed, batch index) alone: the state
// to save for an exact resume is that index. The shards must outlive the
// loader and stay where they are.
class BatchLoader {
 public:
  enum class Order { random, sequential };
  struct State {
    uint64_t seed = 0;
    uint64_t batch = 0;  // batches handed out so far
    friend bool operator==(const State&, const State&) = default;
  };

  static Result<BatchLoader> create(const TokenShard& shard, int32_t batch_size, int32_t seq_len, uint64_t seed,
                                    Order order = Order::random, const TokenShard* mask = nullptr) {
    if (batch_size <= 0 || seq_len <= 0)
      return make_error(Code::invalid_argument, "batch loader: batch size and sequence length must be positive (got " +
                                                    std::to_string(batch_size) + " x " + std::to_string(seq_len) + ")");
    if (shard.size() < static_cast<uint64_t>(seq_len) + 1)
      return make_error(Code::invalid_argument, "batch loader: the shard holds " + std::to_string(shard.size()) +
                                                    " tokens, a window needs " + std::to_string(seq_len + 1));
    if (mask && (mask->size() != shard.size() || shard.size() % (static_cast<uint64_t>(seq_len) + 1) != 0))
      return make_error(Code::invalid_argument,
                        "batch loader: a masked shard must hold whole rows of " + std::to_string(seq_len + 1) +
                            " tokens and one mask entry per token (got " + std::to_string(shard.size()) + " tokens, " +
                            std::to_string(mask->size()) + " mask entries)");
    BatchLoader l;
    l.shard_ = &shard;
    l.mask_ = mask;
    l.B_ = batch_size, l.T_ = seq_len, l.order_ = order;
    l.state_.seed = seed;
    return l;
  }

  int32_t batch_size() const noexcept { return B_; }
  int32_t seq_len() const noexcept { return T_; }
  bool masked() const noexcept { return mask_ != nullptr; }
  State state() const noexcept { return state_; }
  void set_state(State s) noexcept { state_ = s; }

  // Windows of one batch in sequential order before wrapping around (the
  // packed rows of a masked shard).
  uint64_t windows() const noexcept {
    return mask_ ? shard_->size() / (static_cast<uint64_t>(T_) + 1) : (shard_->size() - 1) / static_cast<uint64_t>(T_);
  }

  // Start of row b of batch k.
  uint64_t window_start(uint64_t k, int32_t b) const noexcept {
    const uint64_t index = k * static_cast<uint64_t>(B_) + static_cast<uint64_t>(b);
    if (mask_) {
      const uint64_t row = order_ == Order::sequential ? index % windows() : sample::Rng::draw(state_.seed, index) % windows();
      return row * (static_cast<uint64_t>(T_) + 1);
    }
    if (order_ == Order::sequential) return index % windows() * static_cast<uint64_t>(T_);
    return sample::Rng::draw(state_.seed, index) % (shard_->size() - static_cast<uint64_t>(T_));
  }

  // inputs, targets (and mask, for a masked shard): (B, T) row-major. The
  // next batch; mask[b][t] is 1 where targets[b][t] is to be learnt.
  Status next(std::span<int32_t> inputs, std::span<int32_t> targets, std::span<uint8_t> mask = {}) {
    const size_t need = static_cast<size_t>(B_) * static_cast<size_t>(T_);
    if (inputs.size() != need || targets.size() != need || (mask_ && mask.size() != need))
      return make_error(Code::invalid_argument, "batch loader: inputs, targets (and the mask of a masked shard) must hold "
                                                "B*T = " + std::to_string(need) + " tokens (got " +
                                                    std::to_string(inputs.size()) + ", " + std::to_string(targets.size()) +
                                                    " and " + std::to_string(mask.size()) + ")");
    for (int32_t b = 0; b < B_; ++b) {
      const uint64_t s = window_start(state_.batch, b);
      const size_t row = static_cast<size_t>(b) * T_;
      shard_->read(s, inputs.subspan(row, T_));
      shard_->read(s + 1, targets.subspan(row, T_));
      if (mask_)
        for (int32_t t = 0; t < T_; ++t) mask[row + t] = mask_->token(s + 1 + static_cast<uint64_t>(t)) != 0;
    }
    ++state_.batch;
    return Status::ok();
  }

 private:
  const TokenShard* shard_ = nullptr;
  const TokenShard* mask_ = nullptr;
  int32_t B_ = 0, T_ = 0;
  Order order_ = Order::random;
  State state_;
};

}  // namespace jielong::train

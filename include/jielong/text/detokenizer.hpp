// Detokenizer: turns a stream of token ids into text a host can print as it
// comes. A token may carry part of a character (byte tokens <0xE2><0x96>...,
// or a byte-level BPE piece that ends mid-sequence), so bytes that do not yet
// form a whole UTF-8 character wait for the next token; what push() returns
// is always valid UTF-8. Malformed bytes become U+FFFD, one per maximal
// ill-formed subpart (as Unicode recommends and Python's "replace" does).
//
// push() does not allocate: its buffers are sized once for the longest piece.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "jielong/text/tokenizer.hpp"
#include "jielong/text/unicode.hpp"

namespace jielong::text {

struct DetokenizerOptions {
  bool render_special = false;  // control tokens ("</s>", "<|im_end|>") as their text; off, they write nothing
  // Drop one leading space from the first token's piece when the vocabulary
  // adds a space prefix (SPM), like llama.cpp's llama_detokenize on a whole
  // sequence. A BOS first in the stream counts as the first token (so the
  // text after it keeps its space, as there). Off by default: a stream that
  // continues a prompt must keep the space of its first word.
  bool strip_leading_space = false;
};

class Detokenizer {
 public:
  explicit Detokenizer(const Tokenizer& tokenizer, DetokenizerOptions opts = {}) : tok_(&tokenizer), opts_(opts) {
    size_t longest = 0;
    for (int32_t id = 0; id < tokenizer.n_tokens(); ++id) longest = std::max(longest, tokenizer.token_piece(id).size());
    // Staging holds held bytes + one piece; output can triple (a byte per U+FFFD).
    in_.reserve(longest + 4);
    out_.reserve(3 * (longest + 4));
    first_ = true;
  }

  // The text that token `id` completes. Valid until the next call.
  std::string_view push(int32_t id) {
    std::string_view piece = tok_->output_piece(id, opts_.render_special);
    if (first_) {
      first_ = false;
      if (opts_.strip_leading_space && tok_->vocab().add_space_prefix && !piece.empty() && piece.front() == ' ')
        piece.remove_prefix(1);
    }
    in_.assign(held_, held_len_);
    in_.append(piece);
    held_len_ = 0;
    out_.clear();
    std::string_view rest(in_);
    while (!rest.empty()) {
      const int k = utf8_sequence(rest);
      if (k > 0) {
        out_.append(rest.substr(0, static_cast<size_t>(k)));
        rest.remove_prefix(static_cast<size_t>(k));
      } else if (k == 0) {  // an incomplete character at the end: wait for more
        held_len_ = rest.size();
        for (size_t i = 0; i < held_len_; ++i) held_[i] = rest[i];
        break;
      } else {
        out_.append("\xEF\xBF\xBD");
        rest.remove_prefix(static_cast<size_t>(-k));
      }
    }
    return out_;
  }

  // End of the stream: a character left incomplete becomes U+FFFD.
  std::string_view flush() {
    out_.clear();
    if (held_len_ > 0) out_.append("\xEF\xBF\xBD");
    held_len_ = 0;
    return out_;
  }

  // Bytes held back, waiting for the rest of their character.
  size_t pending() const noexcept { return held_len_; }

  void reset() {
    held_len_ = 0;
    first_ = true;
  }

 private:
  const Tokenizer* tok_;
  DetokenizerOptions opts_;
  char held_[4] = {};  // a proper prefix of a UTF-8 sequence: at most 3 bytes
  size_t held_len_ = 0;
  bool first_ = true;
  std::string in_, out_;
};

}  // namespace jielong::text

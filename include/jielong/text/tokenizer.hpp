// Tokenizer: text -> token ids and ids -> bytes, for the three vocabulary
// kinds of the llama.cpp ecosystem. The algorithms follow llama.cpp's
// (llama-vocab.cpp) step for step, because a model only works with the ids
// it was trained on and llama.cpp is the reference these files are used with:
//
//   SPM (tokenizer.ggml.model "llama"): spaces become '▁', a '▁' goes in
//     front of text that opens the input or follows a special token, then
//     adjacent pieces merge, highest vocabulary score first (leftmost on
//     ties), while the merged text is a token; what stays unknown falls back
//     to byte tokens <0xNN>.
//   BPE ("gpt2"): a pre-tokenizer (pretokenizer.hpp) cuts words, each word's
//     bytes are spelled with GPT-2's byte->code point table, and pairs merge
//     by merge rank, lowest first (leftmost on ties).
//   WPM ("bert"): lower-case, strip accents, split on white space and
//     punctuation, then greedy longest match with a '▁' word prefix.
//
// Before any of them, special tokens are cut out of the text: control and
// unknown tokens when parse_special is on, user-defined tokens always (as
// Hugging Face tokenizers treat added tokens), longest first.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "jielong/core/status.hpp"
#include "jielong/text/pretokenizer.hpp"
#include "jielong/text/unicode.hpp"
#include "jielong/text/vocab.hpp"

namespace jielong::text {

struct EncodeOptions {
  // Add the special tokens the vocabulary asks for: BOS (BERT: CLS) in front
  // when its add_bos flag is set, EOS / SEP at the end when theirs are.
  bool add_bos = true;
  // Recognise control tokens written in the text ("<|im_start|>") as
  // themselves; off, they are ordinary text. User-defined tokens are always
  // recognised.
  bool parse_special = true;
};

struct DecodeOptions {
  bool remove_special = false;  // drop a leading BOS and trailing EOS where the vocabulary adds them
  bool render_special = false;  // write control tokens as their text ("</s>"); off, they write nothing
};

// Immutable after create(): const member functions are safe to call from
// several threads at once.
class Tokenizer {
 public:
  // Per-token attributes (llama.cpp's llama_token_attr bits we act on).
  enum Attr : uint16_t {
    attr_unknown = 1 << 0,
    attr_unused = 1 << 1,
    attr_normal = 1 << 2,
    attr_control = 1 << 3,
    attr_user_defined = 1 << 4,
    attr_byte = 1 << 5,
    attr_lstrip = 1 << 7,  // eats white space to its left when cut out of text
    attr_rstrip = 1 << 8,  // ... and to its right
  };

  Tokenizer() = default;

  // Checks and indexes a vocabulary.
  static Result<Tokenizer> create(Vocab vocab) {
    Tokenizer t;
    JIELONG_TRY(t.init(std::move(vocab)));
    return t;
  }

  // A llama2.c tokenizer.bin (see vocab_from_llama2c).
  static Result<Tokenizer> from_llama2c(const std::string& path, int32_t n_tokens = 0) {
    auto v = vocab_from_llama2c(path, n_tokens);
    if (!v.ok()) return v.status();
    auto t = create(std::move(*v));
    if (!t.ok()) return Status(t.status()).prefix(path);
    return t;
  }

  // The tokenizer of a GGUF file (a model or a vocabulary-only file);
  // defined in gguf_vocab.hpp (include it to use this).
  static Result<Tokenizer> from_gguf(const std::string& path);

  const Vocab& vocab() const noexcept { return vocab_; }
  int32_t n_tokens() const noexcept { return static_cast<int32_t>(vocab_.tokens.size()); }
  int32_t bos() const noexcept { return vocab_.bos_id; }
  int32_t eos() const noexcept { return vocab_.eos_id; }
  int32_t eot() const noexcept { return vocab_.eot_id; }
  bool valid(int32_t id) const noexcept { return id >= 0 && id < n_tokens(); }

  // End of generation: EOS, EOT and the other end-of-turn tokens.
  bool is_eog(int32_t id) const noexcept { return std::find(eog_.begin(), eog_.end(), id) != eog_.end(); }
  uint16_t attr(int32_t id) const noexcept { return valid(id) ? attrs_[id] : 0; }
  bool is_control(int32_t id) const noexcept { return attr(id) & attr_control; }

  // Token id of an exact stored text, or kNoToken.
  int32_t find_token(std::string_view text) const {
    auto it = token_to_id_.find(text);
    return it == token_to_id_.end() ? kNoToken : it->second;
  }

  // The stored text of a token ("▁the", "Ġthe", "<s>"); empty for bad ids.
  std::string_view token_text(int32_t id) const noexcept {
    return valid(id) ? std::string_view(vocab_.tokens[id]) : std::string_view();
  }

  // The bytes a token stands for ("▁the" -> " the", "<0x0A>" -> "\n"),
  // special tokens as their text. May be part of a UTF-8 sequence.
  std::string_view token_piece(int32_t id) const noexcept {
    return valid(id) ? std::string_view(pieces_[id]) : std::string_view();
  }

  // The bytes a token writes into output text: like token_piece, but control
  // and unknown tokens write nothing unless render_special.
  std::string_view output_piece(int32_t id, bool render_special) const noexcept {
    if (!valid(id)) return {};
    if (!render_special && (attrs_[id] & (attr_control | attr_unknown))) return {};
    return pieces_[id];
  }

  Result<std::vector<int32_t>> encode(std::string_view text, EncodeOptions opts = {}) const {
    std::vector<int32_t> out;
    JIELONG_TRY(encode_append(text, opts, out));
    return out;
  }

  // Writes the ids into caller storage; returns how many. When `out` is too
  // small, nothing useful is written and the error (out_of_range) says how
  // many ids the text needs. (The work buffers of encoding are still
  // allocated per call; encoding is not on the per-token path.)
  Result<size_t> encode_into(std::string_view text, std::span<int32_t> out, EncodeOptions opts = {}) const {
    std::vector<int32_t> ids;
    JIELONG_TRY(encode_append(text, opts, ids));
    if (ids.size() > out.size())
      return make_error(Code::out_of_range, "encode_into: the text needs " + std::to_string(ids.size()) +
                                                " tokens, the buffer holds " + std::to_string(out.size()));
    std::copy(ids.begin(), ids.end(), out.begin());
    return ids.size();
  }

  // Appends the ids of `text` to `out`.
  Status encode_append(std::string_view text, EncodeOptions opts, std::vector<int32_t>& out) const {
    Scratch sc;
    std::vector<Fragment>& frags = sc.fragments;
    if (!text.empty()) {
      frags.push_back({kNoToken, 0, text.size()});
      partition_special(text, opts.parse_special, sc);
    }
    switch (vocab_.kind) {
      case VocabKind::spm: {
        if (opts.add_bos && vocab_.add_bos) {
          if (!valid(vocab_.bos_id)) return make_error(Code::invalid_argument, "vocabulary adds BOS but has no BOS token");
          out.push_back(vocab_.bos_id);
        }
        bool prev_special = true;  // text at the very start gets the space prefix too
        for (const Fragment& f : frags) {
          if (f.token != kNoToken) {
            out.push_back(f.token);
            prev_special = true;
            continue;
          }
          std::string& s = sc.text;
          s.clear();
          if (vocab_.add_space_prefix && prev_special) s += "\xE2\x96\x81";
          for (char c : text.substr(f.offset, f.length)) {
            if (c == ' ') s += "\xE2\x96\x81";
            else s.push_back(c);
          }
          spm_tokenize(s, out, sc);
          prev_special = false;
        }
        if (opts.add_bos && vocab_.add_eos && valid(vocab_.eos_id)) out.push_back(vocab_.eos_id);
        break;
      }
      case VocabKind::bpe: {
        if (opts.add_bos && vocab_.add_bos) {
          if (!valid(vocab_.bos_id)) return make_error(Code::invalid_argument, "vocabulary adds BOS but has no BOS token");
          out.push_back(vocab_.bos_id);
        }
        for (const Fragment& f : frags) {
          if (f.token != kNoToken) out.push_back(f.token);
          else bpe_tokenize(text.substr(f.offset, f.length), out, sc);
        }
        if (opts.add_bos && vocab_.add_eos && valid(vocab_.eos_id)) out.push_back(vocab_.eos_id);
        break;
      }
      case VocabKind::wpm: {
        if (opts.add_bos && valid(vocab_.bos_id)) out.push_back(vocab_.bos_id);
        for (const Fragment& f : frags) {
          if (f.token != kNoToken) out.push_back(f.token);
          else wpm_tokenize(text.substr(f.offset, f.length), out, sc);
        }
        if (opts.add_bos && valid(vocab_.sep_id)) out.push_back(vocab_.sep_id);
        break;
      }
    }
    return Status::ok();
  }

  // Whole-sequence text of ids, as llama.cpp's llama_detokenize: one leading
  // space is dropped from the first piece of an SPM vocabulary (the prefix
  // that encoding added), unless that first token is a BOS being removed.
  // Ids out of range write nothing.
  std::string decode(std::span<const int32_t> ids, DecodeOptions opts = {}) const {
    std::string out;
    bool remove_space = vocab_.add_space_prefix;
    if (opts.remove_special && vocab_.add_bos && !ids.empty() && ids.front() == vocab_.bos_id) {
      remove_space = false;
      ids = ids.subspan(1);
    }
    if (opts.remove_special && vocab_.add_eos && !ids.empty() && ids.back() == vocab_.eos_id) ids = ids.first(ids.size() - 1);
    for (int32_t id : ids) {
      std::string_view piece = output_piece(id, opts.render_special);
      if (remove_space && !piece.empty() && piece.front() == ' ') piece.remove_prefix(1);
      remove_space = false;
      out.append(piece);
    }
    return out;
  }

 private:
  struct Fragment {
    int32_t token;  // kNoToken: text[offset, offset + length)
    size_t offset, length;
  };
  struct Symbol {
    int32_t prev, next;
    uint32_t offset, n;
  };
  // Working memory of one encode call.
  struct Scratch {
    std::string text, key;
    std::vector<Fragment> fragments, next;
    std::vector<Symbol> symbols;
    std::vector<std::string> words;
    PreTokenizer::Scratch pre;
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };

  static bool c_space(char c) noexcept { return c == ' ' || (c >= '\t' && c <= '\r'); }

  Status init(Vocab v) {
    const size_t n = v.tokens.size();
    if (n == 0) return make_error(Code::format_error, "vocabulary has no tokens");
    if (n > static_cast<size_t>(INT32_MAX)) return make_error(Code::format_error, "vocabulary too large");
    if (!v.scores.empty() && v.scores.size() != n)
      return make_error(Code::format_error, "vocabulary has " + std::to_string(n) + " tokens but " +
                                                std::to_string(v.scores.size()) + " scores");
    if (!v.types.empty() && v.types.size() != n)
      return make_error(Code::format_error, "vocabulary has " + std::to_string(n) + " tokens but " +
                                                std::to_string(v.types.size()) + " token types");
    if (v.scores.empty()) v.scores.assign(n, 0.0f);
    vocab_ = std::move(v);
    index_tokens();
    if (vocab_.kind == VocabKind::bpe) JIELONG_TRY(init_bpe());
    find_end_of_generation();
    collect_special();
    build_pieces();
    find_byte_tokens();
    return Status::ok();
  }

  // Ids by text, token attributes from the stored types, special ids that
  // point outside the vocabulary dropped.
  void index_tokens() {
    const size_t n = vocab_.tokens.size();
    attrs_.assign(n, attr_normal);
    token_to_id_.clear();
    token_to_id_.reserve(n);
    max_token_len_ = 0;
    for (size_t i = 0; i < n; ++i) {
      std::string& word = vocab_.tokens[i];
      if (word.empty()) word = "[EMPTY_" + std::to_string(i) + "]";
      token_to_id_[word] = static_cast<int32_t>(i);  // a repeated text resolves to its last id
      max_token_len_ = std::max(max_token_len_, word.size());
      if (!vocab_.types.empty()) {
        switch (vocab_.types[i]) {
          case TokenType::normal: attrs_[i] = attr_normal; break;
          case TokenType::unknown: attrs_[i] = attr_unknown; break;
          case TokenType::control: attrs_[i] = attr_control; break;
          case TokenType::user_defined: attrs_[i] = attr_user_defined; break;
          case TokenType::unused: attrs_[i] = attr_unused; break;
          case TokenType::byte: attrs_[i] = attr_byte; break;
          default: attrs_[i] = 0; break;
        }
      }
    }
    for (int32_t* id : {&vocab_.bos_id, &vocab_.eos_id, &vocab_.eot_id, &vocab_.eom_id, &vocab_.unk_id, &vocab_.pad_id,
                        &vocab_.sep_id, &vocab_.mask_id})
      if (*id >= static_cast<int32_t>(n) || *id < 0) *id = kNoToken;
  }

  // The pre-tokenizer of the vocabulary's preset and the merge ranks.
  Status init_bpe() {
    const PreTokenizerPreset* preset = find_pretokenizer_preset(vocab_.pre);
    if (!preset)
      return make_error(Code::unsupported, "unknown BPE pre-tokenizer '" + vocab_.pre +
                                               "' (tokenizer.ggml.pre); known: " + known_presets());
    auto pt = PreTokenizer::create(preset->regexes);
    if (!pt.ok()) return pt.status();
    pretokenizer_ = std::move(*pt);
    bpe_ranks_.clear();
    bpe_ranks_.reserve(vocab_.merges.size());
    for (size_t i = 0; i < vocab_.merges.size(); ++i) {
      const std::string& m = vocab_.merges[i];
      const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
      std::string key;
      if (sp != std::string::npos) {
        key = m.substr(0, sp);
        key.push_back('\0');
        key.append(m, sp + 1, std::string::npos);
      } else {
        key.push_back('\0');
      }
      bpe_ranks_.emplace(std::move(key), static_cast<int32_t>(i));  // the first rank of a pair wins
    }
    return Status::ok();
  }

  // End-of-turn tokens by text, as llama.cpp recognises them; they act as
  // control tokens whatever their stored type says.
  void find_end_of_generation() {
    static constexpr std::string_view kEot[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                                "<|end_of_text|>", "<EOT>", "_<EOT>", "<｜end▁of▁sentence｜>"};
    static constexpr std::string_view kEog[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                                "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>"};
    if (vocab_.eot_id == kNoToken)
      for (std::string_view t : kEot)
        if (int32_t id = find_token(t); id != kNoToken) {
          vocab_.eot_id = id;
          break;
        }
    if (vocab_.eom_id == kNoToken) vocab_.eom_id = find_token("<|eom_id|>");
    eog_.clear();
    for (std::string_view t : kEog)
      if (int32_t id = find_token(t); id != kNoToken) eog_.push_back(id);
    for (int32_t id : {vocab_.eos_id, vocab_.eot_id, vocab_.eom_id})
      if (id != kNoToken && !is_eog(id)) eog_.push_back(id);
    for (int32_t id : eog_)
      if (!(attrs_[id] & attr_control)) attrs_[id] |= attr_control;
  }

  // Special tokens to cut out of text, longest first (ties by id, so the
  // order never depends on the sort implementation).
  void collect_special() {
    const size_t n = vocab_.tokens.size();
    special_.clear();
    for (size_t i = 0; i < n; ++i)
      if (attrs_[i] & (attr_control | attr_user_defined | attr_unknown)) special_.push_back(static_cast<int32_t>(i));
    std::stable_sort(special_.begin(), special_.end(), [&](int32_t a, int32_t b) {
      return vocab_.tokens[a].size() > vocab_.tokens[b].size();
    });

    // Phi-3's added tokens swallow the white space after them.
    std::string lname = vocab_.name;
    for (char& c : lname) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lname.find("phi-3") != std::string::npos || lname.find("phi3") != std::string::npos) {
      for (int32_t id : special_) attrs_[id] |= attr_rstrip;
      if (int32_t id = find_token("</s>"); id != kNoToken) attrs_[id] |= attr_rstrip;
      for (std::string_view t : {"<unk>", "<s>", "<|endoftext|>"})
        if (int32_t id = find_token(t); id != kNoToken) attrs_[id] &= static_cast<uint16_t>(~attr_rstrip);
    }
  }

  // What each token writes.
  void build_pieces() {
    const size_t n = vocab_.tokens.size();
    pieces_.assign(n, std::string());
    for (size_t i = 0; i < n; ++i) {
      const std::string& text = vocab_.tokens[i];
      const uint16_t a = attrs_[i];
      std::string& p = pieces_[i];
      if (a & (attr_control | attr_unknown | attr_user_defined)) {
        p = text;
      } else if (a & attr_normal) {
        if (vocab_.kind == VocabKind::bpe) {
          append_byte_decoded(p, text);
        } else {
          for (size_t k = 0; k < text.size();) {
            if (text.compare(k, 3, "\xE2\x96\x81") == 0) p.push_back(' '), k += 3;
            else p.push_back(text[k++]);
          }
        }
      } else if (a & attr_byte) {
        unsigned byte_value = 0;
        if (text.size() == 6 && std::sscanf(text.c_str(), "<0x%02X>", &byte_value) == 1)
          p.push_back(static_cast<char>(byte_value));
      }
    }
  }

  // Byte fallback ids for SPM.
  void find_byte_tokens() {
    for (int b = 0; b < 256; ++b) {
      static constexpr char hex[] = "0123456789ABCDEF";
      const char buf[7] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0};
      int32_t id = find_token(buf);
      if (id == kNoToken) id = find_token(std::string(1, static_cast<char>(b)));
      byte_tokens_[b] = id != kNoToken ? id : vocab_.unk_id;
    }
  }

  static std::string known_presets() {
    std::string s;
    for (const auto& p : pretokenizer_presets())
      for (std::string_view n : p.names) {
        if (n.empty()) continue;
        if (!s.empty()) s += ", ";
        s += n;
      }
    return s;
  }

  // Cuts special tokens out of the raw fragments, in place.
  void partition_special(std::string_view text, bool parse_special, Scratch& sc) const {
    std::vector<Fragment>& frags = sc.fragments;
    std::vector<Fragment>& next = sc.next;
    for (int32_t id : special_) {
      const uint16_t a = attrs_[id];
      if (!parse_special && (a & (attr_control | attr_unknown))) continue;
      const std::string& tok = vocab_.tokens[id];
      bool any = false;
      for (const Fragment& f : frags)
        if (f.token == kNoToken && text.substr(f.offset, f.length).find(tok) != std::string_view::npos) {
          any = true;
          break;
        }
      if (!any) continue;
      next.clear();
      for (const Fragment& f : frags) {
        if (f.token != kNoToken) {
          next.push_back(f);
          continue;
        }
        size_t off = f.offset, len = f.length;
        for (;;) {
          const size_t match = text.substr(0, off + len).find(tok, off);
          if (match == std::string_view::npos) {
            if (len > 0) next.push_back({kNoToken, off, len});
            break;
          }
          size_t left_len = match - off;
          if (a & attr_lstrip)
            while (left_len > 0 && c_space(text[off + left_len - 1])) --left_len;
          if (left_len > 0) next.push_back({kNoToken, off, left_len});
          next.push_back({id, 0, 0});
          size_t right_off = match + tok.size();
          size_t right_len = off + len - right_off;
          if (a & attr_rstrip)
            while (right_len > 0 && c_space(text[right_off])) ++right_off, --right_len;
          off = right_off;
          len = right_len;
          if (len == 0) break;
        }
      }
      frags.swap(next);
    }
  }

  // ---- SPM ----

  void spm_tokenize(std::string_view text, std::vector<int32_t>& out, Scratch& sc) const {
    std::vector<Symbol>& sym = sc.symbols;
    sym.clear();
    for (size_t off = 0; off < text.size();) {
      const size_t len = std::min(utf8_len(static_cast<uint8_t>(text[off])), text.size() - off);
      const int32_t index = static_cast<int32_t>(sym.size());
      sym.push_back({index - 1, off + len == text.size() ? -1 : index + 1, static_cast<uint32_t>(off), static_cast<uint32_t>(len)});
      off += len;
    }
    if (sym.empty()) return;
    struct Bigram {
      int32_t left, right;
      float score;
      uint32_t size;
    };
    // Highest score first; on equal scores the leftmost pair.
    auto lower = [](const Bigram& l, const Bigram& r) { return l.score < r.score || (l.score == r.score && l.left > r.left); };
    std::priority_queue<Bigram, std::vector<Bigram>, decltype(lower)> queue(lower);
    auto try_add = [&](int32_t left, int32_t right) {
      if (left < 0 || right < 0) return;
      const std::string_view pair = text.substr(sym[left].offset, sym[left].n + sym[right].n);
      const int32_t id = find_token(pair);
      if (id == kNoToken) return;
      queue.push({left, right, vocab_.scores[id], static_cast<uint32_t>(pair.size())});
    };
    for (size_t i = 1; i < sym.size(); ++i) try_add(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));
    while (!queue.empty()) {
      const Bigram b = queue.top();
      queue.pop();
      Symbol& l = sym[b.left];
      Symbol& r = sym[b.right];
      if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;  // one side already merged elsewhere
      l.n += r.n;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) sym[r.next].prev = b.left;
      try_add(l.prev, b.left);
      try_add(b.left, l.next);
    }
    for (int32_t i = 0; i != -1; i = sym[i].next) {
      const std::string_view piece = text.substr(sym[i].offset, sym[i].n);
      const int32_t id = find_token(piece);
      if (id != kNoToken) {
        out.push_back(id);
      } else {
        // Merged pieces are always tokens, so this is one unknown character.
        for (char c : piece)
          if (byte_tokens_[static_cast<uint8_t>(c)] != kNoToken) out.push_back(byte_tokens_[static_cast<uint8_t>(c)]);
      }
    }
  }

  // ---- BPE ----

  int32_t bpe_rank(std::string_view left, std::string_view right, std::string& key) const {
    key.assign(left);
    key.push_back('\0');
    key.append(right);
    auto it = bpe_ranks_.find(std::string_view(key));
    return it == bpe_ranks_.end() ? -1 : it->second;
  }

  void bpe_tokenize(std::string_view text, std::vector<int32_t>& out, Scratch& sc) const {
    pretokenizer_.split(text, sc.words, sc.pre);
    std::vector<Symbol>& sym = sc.symbols;
    struct Bigram {
      int32_t left, right, rank;
      uint32_t left_n, right_n;
    };
    // Lowest rank first; on equal ranks the leftmost pair.
    auto later = [](const Bigram& l, const Bigram& r) { return l.rank > r.rank || (l.rank == r.rank && l.left > r.left); };
    for (const std::string& raw : sc.words) {
      std::string& word = sc.text;
      word.clear();
      append_byte_encoded(word, raw);
      if (vocab_.ignore_merges) {
        if (int32_t id = find_token(word); id != kNoToken) {
          out.push_back(id);
          continue;
        }
      }
      sym.clear();
      for (size_t off = 0; off < word.size();) {
        const size_t len = std::min(utf8_len(static_cast<uint8_t>(word[off])), word.size() - off);
        const int32_t index = static_cast<int32_t>(sym.size());
        sym.push_back({index - 1, off + len == word.size() ? -1 : index + 1, static_cast<uint32_t>(off), static_cast<uint32_t>(len)});
        off += len;
      }
      std::priority_queue<Bigram, std::vector<Bigram>, decltype(later)> queue(later);
      auto try_add = [&](int32_t left, int32_t right) {
        if (left < 0 || right < 0) return;
        const int32_t rank = bpe_rank(std::string_view(word).substr(sym[left].offset, sym[left].n),
                                      std::string_view(word).substr(sym[right].offset, sym[right].n), sc.key);
        if (rank < 0) return;
        queue.push({left, right, rank, sym[left].n, sym[right].n});
      };
      for (size_t i = 1; i < sym.size(); ++i) try_add(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));
      while (!queue.empty()) {
        const Bigram b = queue.top();
        queue.pop();
        Symbol& l = sym[b.left];
        Symbol& r = sym[b.right];
        // A pair whose sides changed since it was queued is stale.
        if (l.n == 0 || r.n == 0 || l.n != b.left_n || r.n != b.right_n) continue;
        l.n += r.n;
        r.n = 0;
        l.next = r.next;
        if (r.next >= 0) sym[r.next].prev = b.left;
        try_add(l.prev, b.left);
        try_add(b.left, l.next);
      }
      for (const Symbol& s : sym) {
        if (s.n == 0) continue;
        const std::string_view piece = std::string_view(word).substr(s.offset, s.n);
        const int32_t id = find_token(piece);
        if (id != kNoToken) {
          out.push_back(id);
          continue;
        }
        // No token for the piece: its single bytes, where those are tokens.
        for (char c : piece)
          if (int32_t bid = find_token(std::string_view(&c, 1)); bid != kNoToken) out.push_back(bid);
      }
    }
  }

  // ---- WPM ----

  static bool is_chinese_char(uint32_t cp) noexcept {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
           (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
  }

  void wpm_tokenize(std::string_view text, std::vector<int32_t>& out, Scratch& sc) const {
    // Normalize and split into words.
    std::vector<std::string>& words = sc.words;
    words.assign(1, std::string());
    for (size_t off = 0; off < text.size();) {
      uint32_t cp = decode_utf8(text, off);
      if (vocab_.strip_accents) cp = nfd_base(cp);
      if (is_whitespace(cp)) {
        if (!words.back().empty()) words.emplace_back();
        continue;
      }
      const Category cat = category(cp);
      if (cp == 0 || cp == 0xFFFD || cat == Category::other) continue;
      if (vocab_.strip_accents && cat == Category::mark) continue;
      const uint32_t shown = vocab_.lowercase ? to_lower(cp) : cp;
      if (cat == Category::punctuation || (cp < 0x7F && cat == Category::symbol) || is_chinese_char(cp)) {
        if (!words.back().empty()) words.emplace_back();
        append_utf8(words.back(), shown);
        words.emplace_back();
      } else {
        append_utf8(words.back(), shown);
      }
    }
    for (const std::string& w : words) {
      if (w.empty()) continue;
      std::string& word = sc.text;
      word = "\xE2\x96\x81" + w;  // phantom space: word-initial pieces are stored with '▁'
      const size_t n = word.size();
      const size_t mark = out.size();
      for (size_t i = 0; i < n; ++i) {
        bool match = false;
        for (size_t j = std::min(n, i + max_token_len_ + 1); j > i; --j) {
          const int32_t id = find_token(std::string_view(word).substr(i, j - i));
          if (id != kNoToken) {
            out.push_back(id);
            match = true;
            i = j - 1;
            break;
          }
        }
        if (!match) {  // the whole word is unknown
          out.resize(mark);
          break;
        }
      }
      if (out.size() == mark && vocab_.unk_id != kNoToken) out.push_back(vocab_.unk_id);
    }
  }

  Vocab vocab_;
  std::vector<uint16_t> attrs_;
  std::vector<std::string> pieces_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> token_to_id_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> bpe_ranks_;
  std::vector<int32_t> special_;
  std::vector<int32_t> eog_;
  int32_t byte_tokens_[256] = {};
  size_t max_token_len_ = 0;
  PreTokenizer pretokenizer_;
};

}  // namespace jielong::text

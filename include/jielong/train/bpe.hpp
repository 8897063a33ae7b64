// Byte-level BPE training (GPT-2's scheme): text is cut into words by a BPE
// pre-tokenizer (the same one text::Tokenizer runs when encoding), each word
// starts as its bytes, and the most frequent adjacent pair of symbols over
// all words (weighted by how often each word occurs) becomes a new symbol,
// until the vocabulary is full. Ties go to the pair with the smaller left id,
// then the smaller right id, so a text and a vocabulary size give one result.
//
// The vocabulary it makes: ids 0-255 are the bytes (spelled with GPT-2's
// byte-to-code-point table), then one token per merge in merge order, then
// "<|endoftext|>" (a control token, BOS and EOS both, added in front of
// every encoded text as documents begin in training), then the extra
// special tokens asked for (e.g. ChatML's "<|im_start|>" and "<|im_end|>"),
// control tokens too, so a chat model fine-tuned later shares the base
// model's vocabulary. A merge whose result spells an existing token adds a
// rank but no token, as Hugging Face's trainer does.
//
// With "<|im_start|>" among the specials the vocabulary carries ChatML's
// Jinja template (tokenizer.chat_template), which llama.cpp and
// text/chat_template.hpp both recognise, and "<|im_end|>" is its
// end-of-turn token.
//
// Speed: pair counts are kept up to date incrementally. Each pair remembers
// the words it occurs in; a merge rewrites only those words, taking their
// old pairs out of the counts and their new pairs in. A max-heap of
// (count, pair) is corrected lazily: a popped entry whose count is stale is
// pushed back with the current count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "jielong/core/function_ref.hpp"
#include "jielong/core/status.hpp"
#include "jielong/text/chat_template.hpp"
#include "jielong/text/pretokenizer.hpp"
#include "jielong/text/unicode.hpp"
#include "jielong/text/vocab.hpp"

namespace jielong::train {

inline constexpr std::string_view kEndOfText = "<|endoftext|>";

struct BpeOptions {
  int32_t vocab_size = 4096;      // 256 bytes + merges + <|endoftext|>; at least 257
  std::string pre = "gpt-2";      // tokenizer.ggml.pre: the pre-tokenizer that cuts words
  uint64_t min_pair_count = 2;    // stop early when the best pair occurs fewer times
  std::vector<std::string> specials = {};  // control tokens after <|endoftext|>, in this order
  std::string chat_template = {};  // tokenizer.chat_template; empty: ChatML's when "<|im_start|>" is a special
};

class BpeTrainer {
 public:
  static Result<BpeTrainer> create(const BpeOptions& opts) {
    const int32_t floor = 257 + static_cast<int32_t>(opts.specials.size());
    if (opts.vocab_size < floor)
      return make_error(Code::invalid_argument, "BPE vocabulary size " + std::to_string(opts.vocab_size) +
                                                    " is below " + std::to_string(floor) +
                                                    " (256 bytes, <|endoftext|> and the special tokens)");
    for (size_t i = 0; i < opts.specials.size(); ++i) {
      const std::string& sp = opts.specials[i];
      if (sp.empty() || sp == kEndOfText)
        return make_error(Code::invalid_argument, "special token '" + sp + "' is empty or <|endoftext|> (always present)");
      for (size_t j = 0; j < i; ++j)
        if (opts.specials[j] == sp) return make_error(Code::invalid_argument, "special token '" + sp + "' given twice");
    }
    const text::PreTokenizerPreset* preset = text::find_pretokenizer_preset(opts.pre);
    if (!preset) return make_error(Code::unsupported, "unknown BPE pre-tokenizer '" + opts.pre + "'");
    auto pt = text::PreTokenizer::create(preset->regexes);
    if (!pt.ok()) return pt.status();
    BpeTrainer t;
    t.opts_ = opts;
    t.pretokenizer_ = std::move(*pt);
    return t;
  }

  // Counts the words of one document.
  void add_text(std::string_view text) {
    pretokenizer_.split(text, words_, scratch_);
    for (std::string& w : words_) ++counts_[std::move(w)];
  }

  size_t unique_words() const noexcept { return counts_.size(); }

  // Learns the merges. `progress(merges_done, merges_wanted)` is called now
  // and then; returning false stops with Code::cancelled.
  Result<text::Vocab> train(FunctionRef<bool(int32_t, int32_t)> progress) {
    init_words();
    // tokens before <|endoftext|> and the specials
    const int32_t wanted = opts_.vocab_size - 1 - static_cast<int32_t>(opts_.specials.size());
    int32_t merges_done = 0;
    while (static_cast<int32_t>(token_bytes_.size()) < wanted && !heap_.empty()) {
      const HeapEntry top = heap_.top();
      heap_.pop();
      const auto it = pair_count_.find(top.pair);
      const int64_t now = it == pair_count_.end() ? 0 : it->second;
      if (now != top.count) {  // stale: counts only fall for pairs already queued
        if (now > 0) heap_.push({now, top.pair});
        continue;
      }
      if (static_cast<uint64_t>(top.count) < opts_.min_pair_count) break;
      merge(top.pair);
      if ((++merges_done & 63) == 0 && !progress(static_cast<int32_t>(token_bytes_.size()) - 256, wanted - 256))
        return make_error(Code::cancelled, "BPE training stopped after " + std::to_string(merges_done) + " merges");
    }
    progress(static_cast<int32_t>(token_bytes_.size()) - 256, wanted - 256);
    return vocab();
  }

 private:
  struct HeapEntry {
    int64_t count;
    uint64_t pair;  // left id << 32 | right id
  };
  struct Higher {  // max-heap on count; on equal counts the smaller pair first
    bool operator()(const HeapEntry& a, const HeapEntry& b) const noexcept {
      return a.count < b.count || (a.count == b.count && a.pair > b.pair);
    }
  };
  struct Word {
    uint32_t offset, length;  // symbols_[offset, offset + length)
    int64_t count;
  };

  static uint64_t key(int32_t left, int32_t right) noexcept {
    return static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32 | static_cast<uint32_t>(right);
  }

  void init_words() {
    token_bytes_.clear();
    token_id_.clear();
    for (int b = 0; b < 256; ++b) {
      token_bytes_.emplace_back(1, static_cast<char>(b));
      token_id_.emplace(token_bytes_.back(), b);
    }
    // Words in byte order, so that nothing depends on the hash map's order.
    std::vector<std::pair<std::string_view, int64_t>> sorted;
    sorted.reserve(counts_.size());
    for (const auto& [w, c] : counts_) sorted.emplace_back(w, static_cast<int64_t>(c));
    std::sort(sorted.begin(), sorted.end());
    words_list_.clear();
    symbols_.clear();
    for (const auto& [w, c] : sorted) {
      words_list_.push_back({static_cast<uint32_t>(symbols_.size()), static_cast<uint32_t>(w.size()), c});
      for (char ch : w) symbols_.push_back(static_cast<uint8_t>(ch));
    }
    pair_count_.clear();
    where_.clear();
    for (uint32_t w = 0; w < words_list_.size(); ++w) count_pairs(w, +1, nullptr);
    heap_ = {};
    for (const auto& [p, c] : pair_count_) heap_.push({c, p});
    stamp_.assign(words_list_.size(), 0);
    epoch_ = 0;
  }

  // Adds (sign +1) or removes (-1) the pairs of word w in the counts; on
  // adding, records w under each pair and collects pairs that contain
  // `fresh` (the token just made) for the heap.
  void count_pairs(uint32_t w, int sign, std::vector<uint64_t>* fresh, int32_t fresh_id = -1) {
    const Word& word = words_list_[w];
    const int32_t* s = symbols_.data() + word.offset;
    for (uint32_t i = 0; i + 1 < word.length; ++i) {
      const uint64_t p = key(s[i], s[i + 1]);
      pair_count_[p] += sign * word.count;
      if (sign < 0) continue;
      // After a merge only the pairs with the new token are new to this word;
      // the others still list it.
      const bool is_fresh = s[i] == fresh_id || s[i + 1] == fresh_id;
      if (fresh && !is_fresh) continue;
      std::vector<uint32_t>& list = where_[p];
      if (list.empty() || list.back() != w) list.push_back(w);
      if (fresh) fresh->push_back(p);
    }
  }

  void merge(uint64_t pair) {
    const int32_t left = static_cast<int32_t>(pair >> 32), right = static_cast<int32_t>(pair & 0xFFFFFFFFu);
    std::string bytes = token_bytes_[left] + token_bytes_[right];
    int32_t id;
    if (auto it = token_id_.find(bytes); it != token_id_.end()) {
      id = it->second;
    } else {
      id = static_cast<int32_t>(token_bytes_.size());
      token_id_.emplace(bytes, id);
      token_bytes_.push_back(std::move(bytes));
    }
    merges_.emplace_back(left, right);

    std::vector<uint32_t> list = std::move(where_[pair]);
    where_.erase(pair);
    ++epoch_;
    fresh_.clear();
    for (uint32_t w : list) {
      if (stamp_[w] == epoch_) continue;
      stamp_[w] = epoch_;
      Word& word = words_list_[w];
      int32_t* s = symbols_.data() + word.offset;
      bool found = false;
      for (uint32_t i = 0; i + 1 < word.length; ++i)
        if (s[i] == left && s[i + 1] == right) {
          found = true;
          break;
        }
      if (!found) continue;  // the pair left this word in an earlier merge
      count_pairs(w, -1, nullptr);
      uint32_t out = 0;
      for (uint32_t i = 0; i < word.length;) {  // left to right: "aaa" -> "aa" "a"
        if (i + 1 < word.length && s[i] == left && s[i + 1] == right) {
          s[out++] = id;
          i += 2;
        } else {
          s[out++] = s[i++];
        }
      }
      word.length = out;
      count_pairs(w, +1, &fresh_, id);
    }
    pair_count_.erase(pair);
    std::sort(fresh_.begin(), fresh_.end());
    fresh_.erase(std::unique(fresh_.begin(), fresh_.end()), fresh_.end());
    for (uint64_t p : fresh_) heap_.push({pair_count_[p], p});
  }

  text::Vocab vocab() const {
    text::Vocab v = text::Vocab::with_defaults(text::VocabKind::bpe);
    v.pre = opts_.pre;
    v.name = "jielong-bpe";
    auto spell = [](std::string_view bytes) {
      std::string s;
      text::append_byte_encoded(s, bytes);
      return s;
    };
    for (const std::string& b : token_bytes_) v.tokens.push_back(spell(b));
    v.types.assign(v.tokens.size(), text::TokenType::normal);
    for (const auto& [l, r] : merges_) v.merges.push_back(spell(token_bytes_[l]) + " " + spell(token_bytes_[r]));
    const int32_t eot = static_cast<int32_t>(v.tokens.size());
    v.tokens.emplace_back(kEndOfText);
    v.types.push_back(text::TokenType::control);
    v.bos_id = v.eos_id = v.eot_id = eot;
    bool chatml = false;
    for (const std::string& sp : opts_.specials) {
      if (sp == "<|im_end|>") v.eot_id = static_cast<int32_t>(v.tokens.size());
      chatml = chatml || sp == "<|im_start|>";
      v.tokens.push_back(sp);
      v.types.push_back(text::TokenType::control);
    }
    v.chat_template = !opts_.chat_template.empty() ? opts_.chat_template
                      : chatml                     ? std::string(text::kChatmlJinja)
                                                   : std::string();
    v.add_bos = true;
    v.add_eos = false;
    return v;
  }

  BpeOptions opts_;
  text::PreTokenizer pretokenizer_;
  text::PreTokenizer::Scratch scratch_;
  std::vector<std::string> words_;
  std::unordered_map<std::string, uint64_t> counts_;  // word -> occurrences

  std::vector<Word> words_list_;
  std::vector<int32_t> symbols_;  // every word's symbols, back to back
  std::vector<std::string> token_bytes_;
  std::unordered_map<std::string, int32_t> token_id_;
  std::vector<std::pair<int32_t, int32_t>> merges_;
  std::unordered_map<uint64_t, int64_t> pair_count_;
  std::unordered_map<uint64_t, std::vector<uint32_t>> where_;
  std::priority_queue<HeapEntry, std::vector<HeapEntry>, Higher> heap_;
  std::vector<uint32_t> stamp_;
  uint32_t epoch_ = 0;
  std::vector<uint64_t> fresh_;
};

}  // namespace jielong::train

// Pre-tokenizers of byte-level BPE: the regular expressions that cut text
// into words before merges run, chosen by `tokenizer.ggml.pre`.
//
// The presets reproduce llama.cpp's (llama-vocab.cpp) cut for cut, including
// the way it runs each pattern (see Regex::Mode): the GPT-2 and Llama-3
// patterns with full Unicode categories, other patterns that use \p{..} on
// "collapsed" text, and patterns without \p{..} on raw code points. Patterns
// apply in order; each one splits every piece the previous ones produced, and
// the text between two matches stays a piece of its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "jielong/core/status.hpp"
#include "jielong/text/regex.hpp"
#include "jielong/text/unicode.hpp"

namespace jielong::text {

namespace patterns {
// GPT-2's pattern without its final "|\s+" (as llama.cpp spells it).
inline constexpr std::string_view kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
// Llama 3's pattern with (?i:...) spelled out as classes.
inline constexpr std::string_view kLlama3 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view kQwen2 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view kGpt4o =
    R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view kTekken =
    R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Letter ranges of DeepSeek LLM's tokenizer.json. Code points that have a
// singleton canonical decomposition are escaped, so that no tool normalising
// text can change the ranges.
inline constexpr std::string_view kDeepseekLlmLetters =
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u1F7Dᾀ-ᾴᾶ-"
    "ᾼ\u1FBEῂ-ῄῆ-ῌῐ-\u1FD3ῖ-\u1FDBῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u2126ℨ\u212A-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+";
}  // namespace patterns

// One family of pre-tokenizers and the vocabulary flags that go with it.
struct PreTokenizerPreset {
  std::string_view family;               // the canonical name
  std::vector<std::string_view> names;   // values of tokenizer.ggml.pre that select it
  std::vector<std::string_view> regexes;
  bool ignore_merges = false;  // a whole word found in the vocabulary is one token, merges or not
  bool add_bos = false;        // the family adds BOS unless the metadata says otherwise
};

inline const std::vector<PreTokenizerPreset>& pretokenizer_presets() {
  using namespace patterns;
  static const std::vector<PreTokenizerPreset> presets = {
      {"default", {"default", ""}, {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}},
      {"llama3", {"llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral", "dbrx", "smaug-bpe", "chatglm-bpe", "glm4"},
       {kLlama3}, true, true},
      {"deepseek-llm", {"deepseek-llm"},
       {"[\r\n]", kDeepseekLlmLetters, "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$", "[一-龥ࠀ-一가-퟿]+", R"(\p{N}+)"}},
      {"deepseek-coder", {"deepseek-coder"}, {"[\r\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", "[一-龥ࠀ-一가-퟿]+", R"(\p{N})"}},
      {"deepseek-v3", {"deepseek-v3"}, {R"(\p{N}{1,3})", "[一-龥぀-ゟ゠-ヿ]+",
        R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}},
      {"falcon", {"falcon"}, {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"}},
      {"starcoder", {"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"}, {R"(\p{N})", kGpt2}},
      {"gpt-2", {"gpt-2", "phi-2", "jina-es", "jina-de", "jina-v1-en", "jina-v2-es", "jina-v2-de", "jina-v2-code",
                 "roberta-bpe", "gigachat", "mpt", "olmo", "jais", "trillion", "exaone4"}, {kGpt2}},
      {"qwen2", {"qwen2", "deepseek-r1-qwen", "megrez", "stablelm2", "hunyuan"}, {kQwen2}},
      {"poro", {"poro-chat", "bloom", "gpt3-finnish"}, {" ?[^(\\s|.,!?…。，、।۔،)]+"}},
      {"viking", {"viking"}, {" ?[^(\\s|.,!?…。，、।۔،)]+", R"(\p{N})"}},
      {"tekken", {"tekken"}, {kTekken}, true, true},
      {"gpt-4o", {"gpt-4o", "llama4"}, {kGpt4o}},
  };
  return presets;
}

inline const PreTokenizerPreset* find_pretokenizer_preset(std::string_view pre) {
  for (const auto& p : pretokenizer_presets())
    for (std::string_view n : p.names)
      if (n == pre) return &p;
  return nullptr;
}

// How llama.cpp runs a pattern (see the comment at the top of the file).
inline Regex::Mode pattern_mode(std::string_view pattern) {
  if (pattern == patterns::kGpt2 || pattern == patterns::kLlama3) return Regex::Mode::unicode;
  for (std::string_view cat : {"\\p{N}", "\\p{L}", "\\p{P}", "\\p{M}", "\\p{S}"})
    if (pattern.find(cat) != std::string_view::npos) return Regex::Mode::collapsed;
  return Regex::Mode::codepoint;
}

class PreTokenizer {
 public:
  PreTokenizer() = default;

  static Result<PreTokenizer> create(const std::vector<std::string_view>& regexes) {
    PreTokenizer p;
    for (std::string_view r : regexes) {
      auto re = Regex::compile(r, pattern_mode(r));
      if (!re.ok()) return re.status();
      if (re->mode() == Regex::Mode::collapsed) p.need_collapsed_ = true;
      if (re->mode() == Regex::Mode::codepoint) p.need_codepoint_ = true;
      p.regexes_.push_back(std::move(*re));
    }
    return p;
  }

  // Working memory of `split`, kept by the caller to avoid reallocating.
  struct Scratch {
    std::vector<uint32_t> cpts, collapsed, spaced;
    std::vector<size_t> lengths, next;
    std::vector<std::pair<uint32_t, size_t>> stack;
  };

  // Cuts `text` into words (UTF-8; malformed bytes come out as U+FFFD, as
  // the reference does). `words` is overwritten.
  void split(std::string_view text, std::vector<std::string>& words, Scratch& s) const {
    decode_utf8(text, s.cpts);
    const size_t n = s.cpts.size();
    if (need_collapsed_) {
      s.collapsed.resize(n);
      for (size_t i = 0; i < n; ++i) s.collapsed[i] = collapsed::collapse(s.cpts[i]);
    }
    if (need_codepoint_) {
      s.spaced.resize(n);
      for (size_t i = 0; i < n; ++i) {
        const uint32_t c = s.cpts[i];
        s.spaced[i] = (c > 0x7F && is_whitespace(c)) ? collapsed::kSpace : c;
      }
    }
    s.lengths.assign(1, n);
    if (n == 0) s.lengths.clear();
    for (const Regex& re : regexes_) {
      const uint32_t* t = re.mode() == Regex::Mode::unicode     ? s.cpts.data()
                          : re.mode() == Regex::Mode::collapsed ? s.collapsed.data()
                                                                : s.spaced.data();
      s.next.clear();
      size_t start = 0;
      for (size_t len : s.lengths) {
        const size_t end = start + len;
        size_t gap = start;  // first position not yet emitted
        for (size_t pos = start; pos < end;) {
          const int64_t m = re.match_at(t, start, end, pos, s.stack);
          if (m > 0) {
            if (pos > gap) s.next.push_back(pos - gap);
            s.next.push_back(static_cast<size_t>(m));
            pos += static_cast<size_t>(m);
            gap = pos;
          } else {
            ++pos;
          }
        }
        if (end > gap) s.next.push_back(end - gap);
        start = end;
      }
      s.lengths.swap(s.next);
    }
    words.resize(s.lengths.size());
    size_t start = 0;
    for (size_t w = 0; w < s.lengths.size(); ++w) {
      words[w].clear();
      for (size_t i = start; i < start + s.lengths[w]; ++i) append_utf8(words[w], s.cpts[i]);
      start += s.lengths[w];
    }
  }

 private:
  std::vector<Regex> regexes_;
  bool need_collapsed_ = false;
  bool need_codepoint_ = false;
};

}  // namespace jielong::text

// Instruction tuning data: JSON lines of conversations, rendered with the
// ChatML template, tokenised, and packed into rows of T + 1 tokens with an
// answer mask beside them, so that the loss falls on the answers alone.
//
// One example per line, either form:
//
//   {"system": "...", "prompt": "What does fox mean?", "answer": "..."}   (system optional)
//   {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}, ...]}
//
// An example becomes [BOS] <|im_start|>role\n content <|im_end|>\n ... for
// every turn, the text chat_template.hpp renders for ChatML. The learnt
// tokens are each assistant turn's content and its closing <|im_end|> (what
// the model must produce and where it must stop); the role headers, the
// system and user turns and the newline after <|im_end|> are context only.
// Contents are encoded with special-token parsing off, so a "<|im_end|>"
// written inside a text stays text.
//
// Packing: examples (in a seeded shuffled order) are laid whole into rows of
// T + 1 tokens, the rest of a row filled with BOS and masked out; an example
// longer than a row is dropped and counted.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "jielong/core/hash.hpp"
#include "jielong/core/status.hpp"
#include "jielong/sample/rng.hpp"
#include "jielong/text/tokenizer.hpp"

namespace jielong::train {

struct ChatTurn {
  std::string role, content;
};

struct InstructExample {
  std::vector<ChatTurn> turns;
};

namespace detail {

// A JSON reader for the two shapes above: objects, arrays and strings, with
// numbers, true, false and null skipped where they are values of other keys.
class JsonLine {
 public:
  explicit JsonLine(std::string_view s) : s_(s) {}

  Status fail(const std::string& what) const {
    return make_error(Code::format_error, "JSON at byte " + std::to_string(i_) + ": " + what);
  }
  void space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\n')) ++i_;
  }
  bool eat(char c) {
    space();
    if (i_ < s_.size() && s_[i_] == c) return ++i_, true;
    return false;
  }
  bool at_end() {
    space();
    return i_ == s_.size();
  }
  char peek() {
    space();
    return i_ < s_.size() ? s_[i_] : '\0';
  }

  Status string(std::string& out) {
    out.clear();
    if (!eat('"')) return fail("expected a string");
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (c == '"') return Status::ok();
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character inside a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) break;
      switch (const char e = s_[i_++]) {
        case '"': case '\\': case '/': out += e; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = 0;
          JIELONG_TRY(hex4(cp));
          if (cp >= 0xD800 && cp < 0xDC00) {  // a surrogate pair
            uint32_t lo = 0;
            if (i_ + 2 > s_.size() || s_[i_] != '\\' || s_[i_ + 1] != 'u') return fail("lone high surrogate");
            i_ += 2;
            JIELONG_TRY(hex4(lo));
            if (lo < 0xDC00 || lo >= 0xE000) return fail("bad low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            return fail("lone low surrogate");
          }
          utf8(cp, out);
          break;
        }
        default: return fail(std::string("unknown escape \\") + e);
      }
    }
    return fail("unterminated string");
  }

  // Skips any value.
  Status skip(int depth = 0) {
    if (depth > 64) return fail("nested too deeply");
    const char c = peek();
    if (c == '"') {
      std::string ignored;
      return string(ignored);
    }
    if (c == '{' || c == '[') {
      const char close = c == '{' ? '}' : ']';
      ++i_;
      if (eat(close)) return Status::ok();
      do {
        if (c == '{') {
          std::string key;
          JIELONG_TRY(string(key));
          if (!eat(':')) return fail("expected ':'");
        }
        JIELONG_TRY(skip(depth + 1));
      } while (eat(','));
      return eat(close) ? Status::ok() : fail(std::string("expected '") + close + "'");
    }
    const size_t start = i_;
    while (i_ < s_.size() && std::string_view("{}[],: \t\r\n\"").find(s_[i_]) == std::string_view::npos) ++i_;
    const std::string_view word = s_.substr(start, i_ - start);
    if (word.empty()) return fail("expected a value");
    if (word == "true" || word == "false" || word == "null") return Status::ok();
    for (char d : word)
      if (std::string_view("0123456789+-.eE").find(d) == std::string_view::npos)
        return fail("unexpected '" + std::string(word) + "'");
    return Status::ok();
  }

 private:
  Status hex4(uint32_t& v) {
    if (i_ + 4 > s_.size()) return fail("short \\u escape");
    for (int k = 0; k < 4; ++k) {
      const char h = s_[i_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= static_cast<uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f') v |= static_cast<uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') v |= static_cast<uint32_t>(h - 'A' + 10);
      else return fail("bad hex digit in \\u escape");
    }
    return Status::ok();
  }
  static void utf8(uint32_t cp, std::string& out) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::string_view s_;
  size_t i_ = 0;
};

inline Status parse_messages(JsonLine& j, InstructExample& ex) {
  if (!j.eat('[')) return j.fail("\"messages\" must be an array");
  if (j.eat(']')) return Status::ok();
  do {
    if (!j.eat('{')) return j.fail("a message must be an object");
    ChatTurn turn;
    bool has_role = false, has_content = false;
    if (!j.eat('}')) {
      do {
        std::string key;
        JIELONG_TRY(j.string(key));
        if (!j.eat(':')) return j.fail("expected ':'");
        if (key == "role") {
          JIELONG_TRY(j.string(turn.role));
          has_role = true;
        } else if (key == "content") {
          JIELONG_TRY(j.string(turn.content));
          has_content = true;
        } else {
          JIELONG_TRY(j.skip());
        }
      } while (j.eat(','));
      if (!j.eat('}')) return j.fail("expected '}'");
    }
    if (!has_role || !has_content) return j.fail("a message needs a \"role\" and a \"content\"");
    ex.turns.push_back(std::move(turn));
  } while (j.eat(','));
  return j.eat(']') ? Status::ok() : j.fail("expected ']'");
}

}  // namespace detail

// One JSON line as an example: at least one assistant turn.
inline Result<InstructExample> parse_instruct_line(std::string_view line) {
  detail::JsonLine j(line);
  InstructExample ex;
  std::string system, prompt, answer;
  bool has_prompt = false, has_answer = false, has_messages = false;
  if (!j.eat('{')) return j.fail("an example must be a JSON object");
  if (!j.eat('}')) {
    do {
      std::string key;
      JIELONG_TRY(j.string(key));
      if (!j.eat(':')) return j.fail("expected ':'");
      if (key == "system") {
        JIELONG_TRY(j.string(system));
      } else if (key == "prompt") {
        JIELONG_TRY(j.string(prompt));
        has_prompt = true;
      } else if (key == "answer") {
        JIELONG_TRY(j.string(answer));
        has_answer = true;
      } else if (key == "messages") {
        JIELONG_TRY(detail::parse_messages(j, ex));
        has_messages = true;
      } else {
        JIELONG_TRY(j.skip());
      }
    } while (j.eat(','));
    if (!j.eat('}')) return j.fail("expected '}'");
  }
  if (!j.at_end()) return j.fail("text after the object");
  if (has_messages) {
    if (has_prompt || has_answer) return j.fail("give \"messages\" or \"prompt\" and \"answer\", not both");
  } else {
    if (!has_prompt || !has_answer) return j.fail("an example needs \"prompt\" and \"answer\" (or \"messages\")");
    if (!system.empty()) ex.turns.push_back({"system", system});
    ex.turns.push_back({"user", prompt});
    ex.turns.push_back({"assistant", answer});
  }
  if (std::none_of(ex.turns.begin(), ex.turns.end(), [](const ChatTurn& t) { return t.role == "assistant"; }))
    return j.fail("an example needs an assistant turn to learn");
  return ex;
}

// An example's tokens and, per token, 1 where it is learnt.
struct EncodedExample {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> answer;  // [tokens.size()]
};

// The tokenizer must know <|im_start|> and <|im_end|> (train-tokenizer
// --special). BOS goes in front when the vocabulary adds one.
inline Status encode_example(const text::Tokenizer& tok, const InstructExample& ex, EncodedExample& out) {
  const int32_t im_start = tok.find_token("<|im_start|>"), im_end = tok.find_token("<|im_end|>");
  if (im_start == text::kNoToken || im_end == text::kNoToken)
    return make_error(Code::invalid_argument,
                      "instruction data: the vocabulary has no <|im_start|> and <|im_end|> tokens for the ChatML "
                      "template (train the tokenizer with --special '<|im_start|>' --special '<|im_end|>')");
  out.tokens.clear();
  out.answer.clear();
  if (tok.vocab().add_bos && tok.valid(tok.bos())) out.tokens.push_back(tok.bos());
  auto append = [&](std::string_view text, bool learnt) -> Status {
    const size_t before = out.tokens.size();
    JIELONG_TRY(tok.encode_append(text, {.add_bos = false, .parse_special = false}, out.tokens));
    out.answer.resize(out.answer.size() + (out.tokens.size() - before), learnt);
    return Status::ok();
  };
  auto special = [&](int32_t id, bool learnt) {
    out.tokens.push_back(id);
    out.answer.push_back(learnt);
  };
  out.answer.resize(out.tokens.size(), 0);
  for (const ChatTurn& t : ex.turns) {
    const bool learnt = t.role == "assistant";
    special(im_start, false);
    JIELONG_TRY(append(t.role + "\n", false));
    JIELONG_TRY(append(t.content, learnt));
    special(im_end, learnt);
    JIELONG_TRY(append("\n", false));
  }
  return Status::ok();
}

struct PackedRows {
  std::vector<int32_t> tokens;  // [rows][T + 1]
  std::vector<int32_t> mask;    // [rows][T + 1], 0 or 1 (a token shard of vocabulary 2)
  size_t rows = 0, examples = 0, dropped = 0, answer_tokens = 0;
};

// Packs whole examples into rows of row_len tokens in the order of a seeded
// shuffle; pad fills the rest of a row (masked out).
inline PackedRows pack_examples(const std::vector<EncodedExample>& examples, size_t row_len, int32_t pad, uint64_t seed) {
  std::vector<size_t> order(examples.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  for (size_t i = order.size(); i > 1; --i)  // Fisher-Yates from counter-based draws: the same order everywhere
    std::swap(order[i - 1], order[sample::Rng::draw(seed, i) % i]);
  PackedRows p;
  size_t used = row_len;  // tokens in the open row; row_len: none open
  for (size_t i : order) {
    const EncodedExample& e = examples[i];
    if (e.tokens.size() > row_len) {
      ++p.dropped;
      continue;
    }
    if (used + e.tokens.size() > row_len) {
      p.tokens.resize(p.tokens.size() + row_len, pad);
      p.mask.resize(p.mask.size() + row_len, 0);
      ++p.rows;
      used = 0;
    }
    const size_t at = (p.rows - 1) * row_len + used;
    std::copy(e.tokens.begin(), e.tokens.end(), p.tokens.begin() + static_cast<std::ptrdiff_t>(at));
    for (size_t k = 0; k < e.answer.size(); ++k) {
      p.mask[at + k] = e.answer[k];
      p.answer_tokens += e.answer[k];
    }
    used += e.tokens.size();
    ++p.examples;
  }
  return p;
}

// Token-level F1 of an answer against a reference, as SQuAD scores answers:
// both lower-cased, punctuation dropped, the articles a/an/the dropped,
// split at white space; precision and recall over the bag of words in
// common. 1 for two empty texts, 0 when only one is empty.
inline std::vector<std::string> f1_words(std::string_view s) {
  std::vector<std::string> words;
  std::string w;
  auto flush = [&] {
    if (!w.empty() && w != "a" && w != "an" && w != "the") words.push_back(w);
    w.clear();
  };
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || u >= 0x80) w += static_cast<char>(std::tolower(u));
    else if (std::isspace(u)) flush();
  }
  flush();
  return words;
}

inline double token_f1(std::string_view answer, std::string_view reference) {
  std::vector<std::string> a = f1_words(answer), r = f1_words(reference);
  if (a.empty() || r.empty()) return a.empty() && r.empty() ? 1.0 : 0.0;
  std::sort(a.begin(), a.end());
  std::sort(r.begin(), r.end());
  size_t common = 0;
  for (size_t i = 0, j = 0; i < a.size() && j < r.size();) {
    if (a[i] == r[j]) ++common, ++i, ++j;
    else if (a[i] < r[j]) ++i;
    else ++j;
  }
  if (common == 0) return 0.0;
  const double p = static_cast<double>(common) / static_cast<double>(a.size());
  const double rc = static_cast<double>(common) / static_cast<double>(r.size());
  return 2 * p * rc / (p + rc);
}

}  // namespace jielong::train

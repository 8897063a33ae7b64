// A small backtracking regular-expression engine for pre-tokenizer patterns.
//
// It runs the patterns that tokenizer.json files and llama.cpp's presets
// spell (alternation, groups, (?: ), lookahead (?= ) (?! ), greedy and lazy
// ? * + {n} {n,} {n,m}, classes with ranges and negation, ^ $, \s \S \d \D
// \w \W \r \n \t, \p{L} \p{N} \p{P} \p{S} \p{M} \p{Z} \p{C} and \P{..}) with
// ECMAScript semantics: at a given start, alternatives are tried left to
// right, quantifiers take as much as they can and give back on failure, and
// the first success wins. Matching works on code points, not bytes.
//
// Three ways to read a class, because the reference tokenizer (llama.cpp)
// runs its presets three ways and we must cut text exactly where it does:
//   Mode::unicode   — \s is Unicode white space, \p{X} the Unicode category.
//   Mode::collapsed — the text has been "collapsed": every non-ASCII code
//                     point replaced by one stand-in per category (see
//                     `collapse`); \p{X} matches the stand-in plus the ASCII
//                     characters of X as llama.cpp lists them; \s is ASCII.
//   Mode::codepoint — raw code points with non-ASCII white space replaced by
//                     U+000B; \s is ASCII; \p{..} is not allowed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "jielong/core/status.hpp"
#include "jielong/text/unicode.hpp"

namespace jielong::text {

// Stand-ins of collapsed text (values chosen as llama.cpp's, all >= 0x80).
namespace collapsed {
inline constexpr uint32_t kOther = 0xD0, kNumber = 0xD1, kLetter = 0xD2, kPunctuation = 0xD3, kMark = 0xD4,
                          kSymbol = 0xD5, kSpace = 0x0B;

inline uint32_t collapse(uint32_t cp) noexcept {
  if (cp < 0x80) return cp;
  if (is_whitespace(cp)) return kSpace;
  switch (category(cp)) {
    case Category::number: return kNumber;
    case Category::letter: return kLetter;
    case Category::punctuation: return kPunctuation;
    case Category::mark: return kMark;
    case Category::symbol: return kSymbol;
    default: return kOther;
  }
}
}  // namespace collapsed

class Regex {
 public:
  enum class Mode { unicode, collapsed, codepoint };

  Regex() = default;

  static Result<Regex> compile(std::string_view pattern, Mode mode) {
    Regex re;
    re.mode_ = mode;
    re.pattern_ = std::string(pattern);
    Parser p{re, pattern, 0, {}};
    decode_utf8(pattern, p.cps);
    int root = -1;
    if (Status s = p.parse_alternation(root); !s.is_ok()) return s;
    if (p.pos != p.cps.size()) return p.error("unbalanced ')'");
    re.emit(root);
    re.code_.push_back({Op::match, 0, 0, 0});
    re.nodes_.clear();
    re.nodes_.shrink_to_fit();
    return re;
  }

  const std::string& pattern() const noexcept { return pattern_; }
  Mode mode() const noexcept { return mode_; }

  // Length of the match that starts exactly at `pos` inside text[begin, end)
  // (lookahead and $ see `end` as the end of input), or -1 when none.
  // `stack` is scratch space, reused between calls.
  int64_t match_at(const uint32_t* text, size_t begin, size_t end, size_t pos,
                   std::vector<std::pair<uint32_t, size_t>>& stack) const {
    size_t out = 0;
    stack.clear();
    size_t budget = kStepBudget;
    if (!run(0, pos, text, begin, end, stack, out, budget)) return -1;
    return static_cast<int64_t>(out - pos);
  }

 private:
  // A pathological pattern on hostile text must end; no preset comes close.
  static constexpr size_t kStepBudget = size_t(1) << 26;

  enum class Op : uint8_t { chr, cls, any, split, jmp, bol, eol, look, match };
  struct Inst {
    Op op;
    uint32_t a;  // chr: code point; cls: class index; split/jmp: target; look: index past the sub-program
    uint32_t b;  // split: second target; look: 1 if negative
    uint32_t c;
  };

  enum class Pred : uint8_t { space, not_space, digit, not_digit, word, not_word, cat, not_cat };
  struct ClassItem {
    Pred pred;
    Category cat;
  };
  struct CharClass {
    bool negated = false;
    std::vector<std::pair<uint32_t, uint32_t>> ranges;
    std::vector<ClassItem> preds;
  };

  enum class NodeKind { empty, chr, cls, any, bol, eol, concat, alt, repeat, look };
  struct Node {
    NodeKind kind;
    uint32_t value = 0;  // chr: code point; cls: class index
    std::vector<int> kids;
    int min = 0, max = 0;  // repeat; max < 0 = unbounded
    bool greedy = true;
    bool negative = false;  // look
  };

  static bool is_ascii_space(uint32_t c) noexcept { return c == ' ' || (c >= 9 && c <= 13); }

  bool space(uint32_t c) const noexcept { return mode_ == Mode::unicode ? is_whitespace(c) : is_ascii_space(c); }

  // ASCII members that llama.cpp lists for each category in collapsed mode.
  static bool ascii_in_category(uint32_t c, Category cat) noexcept {
    switch (cat) {
      case Category::number: return c >= '0' && c <= '9';
      case Category::letter: return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
      case Category::punctuation:
        return (c >= 0x21 && c <= 0x23) || (c >= 0x25 && c <= 0x2A) || (c >= 0x2C && c <= 0x2F) || c == 0x3A ||
               c == 0x3B || c == 0x3F || c == 0x40 || (c >= 0x5B && c <= 0x5D) || c == 0x5F || c == 0x7B || c == 0x7D;
      case Category::symbol: return c == 0x24 || c == 0x2B || (c >= 0x3C && c <= 0x3E) || c == 0x5E || c == 0x60 || c == 0x7C;
      default: return false;
    }
  }

  bool in_category(uint32_t c, Category cat) const noexcept {
    if (mode_ == Mode::unicode) return category(c) == cat;
    // collapsed
    uint32_t stand_in = 0;
    switch (cat) {
      case Category::number: stand_in = collapsed::kNumber; break;
      case Category::letter: stand_in = collapsed::kLetter; break;
      case Category::punctuation: stand_in = collapsed::kPunctuation; break;
      case Category::mark: stand_in = collapsed::kMark; break;
      case Category::symbol: stand_in = collapsed::kSymbol; break;
      default: return false;
    }
    return c == stand_in || ascii_in_category(c, cat);
  }

  bool pred_matches(const ClassItem& it, uint32_t c) const noexcept {
    switch (it.pred) {
      case Pred::space: return space(c);
      case Pred::not_space: return !space(c);
      case Pred::digit: return c >= '0' && c <= '9';
      case Pred::not_digit: return !(c >= '0' && c <= '9');
      case Pred::word: return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
      case Pred::not_word: return !((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_');
      case Pred::cat: return in_category(c, it.cat);
      case Pred::not_cat: return !in_category(c, it.cat);
    }
    return false;
  }

  bool class_matches(const CharClass& cc, uint32_t c) const noexcept {
    bool hit = false;
    for (const auto& r : cc.ranges)
      if (c >= r.first && c <= r.second) {
        hit = true;
        break;
      }
    if (!hit)
      for (const auto& p : cc.preds)
        if (pred_matches(p, c)) {
          hit = true;
          break;
        }
    return hit != cc.negated;
  }

  bool run(uint32_t pc, size_t pos, const uint32_t* text, size_t begin, size_t end,
           std::vector<std::pair<uint32_t, size_t>>& stack, size_t& out, size_t& budget) const {
    const size_t base = stack.size();
    for (;;) {
      if (budget-- == 0) {
        stack.resize(base);
        return false;
      }
      const Inst& in = code_[pc];
      bool ok = true;
      switch (in.op) {
        case Op::chr:
          ok = pos < end && text[pos] == in.a;
          if (ok) ++pos, ++pc;
          break;
        case Op::cls:
          ok = pos < end && class_matches(classes_[in.a], text[pos]);
          if (ok) ++pos, ++pc;
          break;
        case Op::any:
          ok = pos < end && text[pos] != '\n' && text[pos] != '\r' && text[pos] != 0x2028 && text[pos] != 0x2029;
          if (ok) ++pos, ++pc;
          break;
        case Op::split:
          stack.emplace_back(in.b, pos);
          pc = in.a;
          break;
        case Op::jmp: pc = in.a; break;
        case Op::bol:
          ok = pos == begin;
          if (ok) ++pc;
          break;
        case Op::eol:
          ok = pos == end;
          if (ok) ++pc;
          break;
        case Op::look: {
          size_t ignored = 0;
          const bool found = run(pc + 1, pos, text, begin, end, stack, ignored, budget);
          ok = found != (in.b != 0);
          if (ok) pc = in.a;
          break;
        }
        case Op::match:
          out = pos;
          stack.resize(base);
          return true;
      }
      if (!ok) {
        if (stack.size() == base) return false;
        pc = stack.back().first;
        pos = stack.back().second;
        stack.pop_back();
      }
    }
  }

  // ---- compilation ----

  struct Parser {
    Regex& re;
    std::string_view pattern;
    size_t pos;
    std::vector<uint32_t> cps;

    Status error(const std::string& what) const {
      return make_error(Code::invalid_argument,
                        "regex '" + std::string(pattern) + "': " + what + " at code point " + std::to_string(pos));
    }
    bool at_end() const { return pos >= cps.size(); }
    uint32_t peek() const { return cps[pos]; }

    int node(NodeKind k) {
      re.nodes_.push_back(Node{k, 0, {}, 0, 0, true, false});
      return static_cast<int>(re.nodes_.size() - 1);
    }

    Status parse_alternation(int& out) {
      std::vector<int> alts;
      int first = -1;
      JIELONG_TRY(parse_concat(first));
      alts.push_back(first);
      while (!at_end() && peek() == '|') {
        ++pos;
        int next = -1;
        JIELONG_TRY(parse_concat(next));
        alts.push_back(next);
      }
      if (alts.size() == 1) {
        out = alts[0];
      } else {
        out = node(NodeKind::alt);
        re.nodes_[out].kids = std::move(alts);
      }
      return Status::ok();
    }

    Status parse_concat(int& out) {
      std::vector<int> items;
      while (!at_end() && peek() != '|' && peek() != ')') {
        int atom = -1;
        JIELONG_TRY(parse_repeat(atom));
        items.push_back(atom);
      }
      out = node(NodeKind::concat);
      re.nodes_[out].kids = std::move(items);
      return Status::ok();
    }

    bool parse_int(int& v) {
      const size_t start = pos;
      v = 0;
      while (!at_end() && peek() >= '0' && peek() <= '9') {
        v = v * 10 + static_cast<int>(peek() - '0');
        if (v > 100000) return false;
        ++pos;
      }
      return pos > start;
    }

    Status parse_repeat(int& out) {
      int atom = -1;
      JIELONG_TRY(parse_atom(atom));
      for (;;) {
        if (at_end()) break;
        int mn, mx;
        const uint32_t c = peek();
        if (c == '*') {
          mn = 0, mx = -1, ++pos;
        } else if (c == '+') {
          mn = 1, mx = -1, ++pos;
        } else if (c == '?') {
          mn = 0, mx = 1, ++pos;
        } else if (c == '{') {
          const size_t save = pos;
          ++pos;
          if (!parse_int(mn)) {  // a literal '{' (ECMAScript allows it when no count follows)
            pos = save;
            break;
          }
          mx = mn;
          if (!at_end() && peek() == ',') {
            ++pos;
            if (!parse_int(mx)) mx = -1;
          }
          if (at_end() || peek() != '}') return error("malformed {n,m}");
          ++pos;
          if (mx >= 0 && mx < mn) return error("{n,m} with m < n");
        } else {
          break;
        }
        const int rep = node(NodeKind::repeat);
        re.nodes_[rep].kids = {atom};
        re.nodes_[rep].min = mn;
        re.nodes_[rep].max = mx;
        if (!at_end() && peek() == '?') {
          re.nodes_[rep].greedy = false;
          ++pos;
        }
        atom = rep;
      }
      out = atom;
      return Status::ok();
    }

    Status parse_atom(int& out) {
      const uint32_t c = peek();
      if (c == '(') {
        ++pos;
        bool look = false, negative = false;
        if (!at_end() && peek() == '?') {
          ++pos;
          if (at_end()) return error("unfinished group");
          const uint32_t k = peek();
          ++pos;
          if (k == ':') {
          } else if (k == '=' || k == '!') {
            look = true;
            negative = k == '!';
          } else {
            return error("unsupported group kind '(?" + std::string(1, static_cast<char>(k)) + "'");
          }
        }
        int inner = -1;
        JIELONG_TRY(parse_alternation(inner));
        if (at_end() || peek() != ')') return error("missing ')'");
        ++pos;
        if (look) {
          out = node(NodeKind::look);
          re.nodes_[out].kids = {inner};
          re.nodes_[out].negative = negative;
        } else {
          out = inner;
        }
        return Status::ok();
      }
      if (c == '[') return parse_class(out);
      if (c == '.') {
        ++pos;
        out = node(NodeKind::any);
        return Status::ok();
      }
      if (c == '^' || c == '$') {
        ++pos;
        out = node(c == '^' ? NodeKind::bol : NodeKind::eol);
        return Status::ok();
      }
      if (c == '*' || c == '+' || c == '?') return error("quantifier without an operand");
      if (c == '\\') {
        CharClass cc;
        uint32_t literal = 0;
        bool is_literal = false;
        JIELONG_TRY(parse_escape(cc, literal, is_literal));
        if (is_literal) {
          out = node(NodeKind::chr);
          re.nodes_[out].value = literal;
        } else {
          re.classes_.push_back(std::move(cc));
          out = node(NodeKind::cls);
          re.nodes_[out].value = static_cast<uint32_t>(re.classes_.size() - 1);
        }
        return Status::ok();
      }
      ++pos;
      out = node(NodeKind::chr);
      re.nodes_[out].value = c;
      return Status::ok();
    }

    // After '\': either a literal code point or class items added to cc.
    Status parse_escape(CharClass& cc, uint32_t& literal, bool& is_literal) {
      ++pos;  // the backslash
      if (at_end()) return error("pattern ends in '\\'");
      const uint32_t e = peek();
      ++pos;
      is_literal = false;
      switch (e) {
        case 's': cc.preds.push_back({Pred::space, Category::other}); return Status::ok();
        case 'S': cc.preds.push_back({Pred::not_space, Category::other}); return Status::ok();
        case 'd': cc.preds.push_back({Pred::digit, Category::other}); return Status::ok();
        case 'D': cc.preds.push_back({Pred::not_digit, Category::other}); return Status::ok();
        case 'w': cc.preds.push_back({Pred::word, Category::other}); return Status::ok();
        case 'W': cc.preds.push_back({Pred::not_word, Category::other}); return Status::ok();
        case 'p':
        case 'P': {
          if (re.mode_ == Mode::codepoint) return error("\\p{..} needs the unicode or collapsed mode");
          if (at_end() || peek() != '{') return error("expected '{' after \\p");
          ++pos;
          std::string name;
          while (!at_end() && peek() != '}') name.push_back(static_cast<char>(peek())), ++pos;
          if (at_end()) return error("unterminated \\p{");
          ++pos;
          Category cat;
          if (name == "L") cat = Category::letter;
          else if (name == "N") cat = Category::number;
          else if (name == "P") cat = Category::punctuation;
          else if (name == "S") cat = Category::symbol;
          else if (name == "M") cat = Category::mark;
          else if (name == "Z" && re.mode_ == Mode::unicode) cat = Category::separator;
          else if (name == "C" && re.mode_ == Mode::unicode) cat = Category::other;
          else return error("unsupported category \\p{" + name + "}");
          cc.preds.push_back({e == 'p' ? Pred::cat : Pred::not_cat, cat});
          return Status::ok();
        }
        case 'r': literal = '\r'; break;
        case 'n': literal = '\n'; break;
        case 't': literal = '\t'; break;
        case 'f': literal = '\f'; break;
        case 'v': literal = '\v'; break;
        case '0': literal = 0; break;
        case 'x': {
          uint32_t v = 0;
          for (int i = 0; i < 2; ++i) {
            if (at_end()) return error("short \\x escape");
            const uint32_t h = peek();
            ++pos;
            const int d = (h >= '0' && h <= '9') ? int(h - '0') : (h >= 'a' && h <= 'f') ? int(h - 'a' + 10)
                          : (h >= 'A' && h <= 'F') ? int(h - 'A' + 10) : -1;
            if (d < 0) return error("bad \\x escape");
            v = v * 16 + static_cast<uint32_t>(d);
          }
          literal = v;
          break;
        }
        default:
          if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '1' && e <= '9'))
            return error("unsupported escape '\\" + std::string(1, static_cast<char>(e)) + "'");
          literal = e;  // an escaped punctuation character stands for itself
      }
      is_literal = true;
      return Status::ok();
    }

    Status parse_class(int& out) {
      ++pos;  // '['
      CharClass cc;
      if (!at_end() && peek() == '^') {
        cc.negated = true;
        ++pos;
      }
      bool first = true;
      for (;;) {
        if (at_end()) return error("unterminated '['");
        uint32_t c = peek();
        if (c == ']' && !first) {
          ++pos;
          break;
        }
        first = false;
        uint32_t lo;
        if (c == '\\') {
          bool is_literal = false;
          JIELONG_TRY(parse_escape(cc, lo, is_literal));
          if (!is_literal) continue;
        } else {
          lo = c;
          ++pos;
        }
        // a range lo-hi?
        if (pos + 1 < cps.size() && peek() == '-' && cps[pos + 1] != ']') {
          ++pos;
          uint32_t hi;
          if (peek() == '\\') {
            bool is_literal = false;
            CharClass tmp;
            JIELONG_TRY(parse_escape(tmp, hi, is_literal));
            if (!is_literal) return error("class escape as a range end");
          } else {
            hi = peek();
            ++pos;
          }
          if (hi < lo) return error("range out of order");
          cc.ranges.emplace_back(lo, hi);
        } else {
          cc.ranges.emplace_back(lo, lo);
        }
      }
      re.classes_.push_back(std::move(cc));
      out = node(NodeKind::cls);
      re.nodes_[out].value = static_cast<uint32_t>(re.classes_.size() - 1);
      return Status::ok();
    }
  };

  uint32_t here() const { return static_cast<uint32_t>(code_.size()); }

  void emit(int id) {
    const Node n = nodes_[id];
    switch (n.kind) {
      case NodeKind::empty: break;
      case NodeKind::chr: code_.push_back({Op::chr, n.value, 0, 0}); break;
      case NodeKind::cls: code_.push_back({Op::cls, n.value, 0, 0}); break;
      case NodeKind::any: code_.push_back({Op::any, 0, 0, 0}); break;
      case NodeKind::bol: code_.push_back({Op::bol, 0, 0, 0}); break;
      case NodeKind::eol: code_.push_back({Op::eol, 0, 0, 0}); break;
      case NodeKind::concat:
        for (int k : n.kids) emit(k);
        break;
      case NodeKind::alt: {
        std::vector<uint32_t> exits;
        for (size_t i = 0; i < n.kids.size(); ++i) {
          if (i + 1 < n.kids.size()) {
            const uint32_t split = here();
            code_.push_back({Op::split, split + 1, 0, 0});
            emit(n.kids[i]);
            exits.push_back(here());
            code_.push_back({Op::jmp, 0, 0, 0});
            code_[split].b = here();
          } else {
            emit(n.kids[i]);
          }
        }
        for (uint32_t e : exits) code_[e].a = here();
        break;
      }
      case NodeKind::repeat: {
        for (int i = 0; i < n.min; ++i) emit(n.kids[0]);
        if (n.max < 0) {
          const uint32_t loop = here();
          code_.push_back({Op::split, 0, 0, 0});
          emit(n.kids[0]);
          code_.push_back({Op::jmp, loop, 0, 0});
          set_split(loop, loop + 1, here(), n.greedy);
        } else {
          std::vector<uint32_t> splits;
          for (int i = n.min; i < n.max; ++i) {
            splits.push_back(here());
            code_.push_back({Op::split, 0, 0, 0});
            emit(n.kids[0]);
          }
          for (uint32_t s : splits) set_split(s, s + 1, here(), n.greedy);
        }
        break;
      }
      case NodeKind::look: {
        const uint32_t at = here();
        code_.push_back({Op::look, 0, n.negative ? 1u : 0u, 0});
        emit(n.kids[0]);
        code_.push_back({Op::match, 0, 0, 0});
        code_[at].a = here();
        break;
      }
    }
  }

  void set_split(uint32_t at, uint32_t body, uint32_t skip, bool greedy) {
    code_[at].a = greedy ? body : skip;
    code_[at].b = greedy ? skip : body;
  }

  Mode mode_ = Mode::unicode;
  std::string pattern_;
  std::vector<Inst> code_;
  std::vector<CharClass> classes_;
  std::vector<Node> nodes_;  // only during compilation
};

}  // namespace jielong::text

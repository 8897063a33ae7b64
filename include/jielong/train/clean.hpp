// Per-source cleaners: the text of one corpus file -> its documents, with the
// source's markup removed. Each format is a Debian-packaged text:
//
//   dictd    a dictd database after decompression (dict-gcide, dict-devil):
//            an entry starts with a line at column 0 after a blank line;
//            "00-database-*" entries (licence, URL) are dropped; GCIDE's
//            pronunciations "\Ab"so*lute\", source tags "[1913 Webster]",
//            cross-reference braces "{Absolve}" and character entities
//            "[e^]" "[ae]" "[deg]" become plain text.
//   jargon   the Jargon File's text (jargon-text): an entry starts with a
//            ":headword:" line; the headword lists between entries go.
//   fortune  fortune(6) files (fortunes, fortunes-min): one document per
//            quip, separated by lines holding a single '%'.
//   wordnet  WordNet data.* files (wordnet-base): one document per synset,
//            "word, other word: gloss"; the licence lines (two leading
//            spaces) and pointer fields go.
//   text     plain text: one document per paragraph (blank-line separated).
//
// Prose formats (dictd, jargon, wordnet) join hard-wrapped lines into one
// line per paragraph; fortune and text keep their line breaks (poems,
// quotes). Every document's white space is normalised afterwards
// (normalize_document in corpus.hpp).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "jielong/core/status.hpp"

namespace jielong::train {

enum class SourceFormat { text, dictd, jargon, fortune, wordnet };

inline constexpr std::string_view source_format_name(SourceFormat f) noexcept {
  switch (f) {
    case SourceFormat::text: return "text";
    case SourceFormat::dictd: return "dictd";
    case SourceFormat::jargon: return "jargon";
    case SourceFormat::fortune: return "fortune";
    case SourceFormat::wordnet: return "wordnet";
  }
  return "text";
}

inline Result<SourceFormat> parse_source_format(std::string_view name) {
  for (SourceFormat f : {SourceFormat::text, SourceFormat::dictd, SourceFormat::jargon, SourceFormat::fortune,
                         SourceFormat::wordnet})
    if (name == source_format_name(f)) return f;
  return make_error(Code::invalid_argument,
                    "unknown source format '" + std::string(name) + "' (expected text, dictd, jargon, fortune or wordnet)");
}

// The format a path's name suggests: *.dict / *.dict.dz -> dictd, a name with
// "jargon" -> jargon, a file under a "fortunes" folder -> fortune, WordNet's
// data.noun/verb/adj/adv -> wordnet, anything else -> text.
inline SourceFormat guess_source_format(std::string_view path) {
  const size_t slash = path.rfind('/');
  const std::string_view base = slash == std::string_view::npos ? path : path.substr(slash + 1);
  auto ends_with = [&](std::string_view s) { return base.size() >= s.size() && base.substr(base.size() - s.size()) == s; };
  if (ends_with(".dict") || ends_with(".dict.dz")) return SourceFormat::dictd;
  if (base.find("jargon") != std::string_view::npos) return SourceFormat::jargon;
  if (base == "data.noun" || base == "data.verb" || base == "data.adj" || base == "data.adv") return SourceFormat::wordnet;
  if (path.find("/fortunes/") != std::string_view::npos || path.find("fortunes/") == 0) return SourceFormat::fortune;
  return SourceFormat::text;
}

// Files that sit beside a corpus's text in its package and are not text to
// learn from: dictd indexes (*.index) and WordNet's files other than its
// data.* (word indexes, sense counts, exception lists, verb frames). A folder
// walk skips them, so a package's whole folder can be given.
inline bool is_corpus_side_file(std::string_view path) {
  const size_t slash = path.rfind('/');
  const std::string_view base = slash == std::string_view::npos ? path : path.substr(slash + 1);
  if (base.size() > 6 && base.substr(base.size() - 6) == ".index") return true;
  const bool in_wordnet = path.find("/wordnet/") != std::string_view::npos || path.substr(0, 8) == "wordnet/";
  return in_wordnet && base.substr(0, 5) != "data.";
}

namespace detail {

// Splits text into lines without their '\n' (a '\r' before it goes too).
inline void split_lines(std::string_view text, std::vector<std::string_view>& lines) {
  lines.clear();
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
}

inline bool blank(std::string_view line) noexcept { return line.find_first_not_of(" \t") == std::string_view::npos; }

inline std::string_view trim(std::string_view s) noexcept {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// Appends a line to a document: prose joins it to the paragraph with a space,
// otherwise it starts a new line. A blank line ends the paragraph.
inline void append_line(std::string& doc, std::string_view line, bool join, bool& paragraph_open) {
  const std::string_view t = join ? trim(line) : line;
  if (blank(t)) {
    if (!doc.empty()) doc += "\n\n";
    paragraph_open = false;
    return;
  }
  if (paragraph_open) doc += join ? ' ' : '\n';
  doc.append(t);
  paragraph_open = true;
}

// GCIDE's character entities as the dictd conversion spells them. Accents on
// a letter ("[e^]" breve, "[=a]" macron, "['e]" acute, "[.a]" dot) keep the
// bare letter: the marks only serve the pronunciations, which are removed.
inline bool gcide_entity(std::string_view e, std::string& out) {
  struct Named {
    std::string_view name, text;
  };
  static constexpr Named kNamed[] = {
      {"ae", "\xC3\xA6"}, {"AE", "\xC3\x86"}, {"oe", "\xC5\x93"}, {"OE", "\xC5\x92"}, {"eth", "\xC3\xB0"},
      {"thorn", "\xC3\xBE"}, {"deg", "\xC2\xB0"}, {"root", "\xE2\x88\x9A"}, {"sect", "\xC2\xA7"}, {"imac", "i"},
      {"aum", "a"}, {"asl", "a"}, {"udd", "u"}, {"ng", "ng"}, {"th", "th"}, {"yogh", "y"}, {"beta", "\xCE\xB2"},
      {"add", ""}, {"=ae", "\xC3\xA6"}, {"=oo", "oo"}, {"oo^", "oo"},
  };
  for (const Named& n : kNamed)
    if (e == n.name) {
      out.append(n.text);
      return true;
    }
  auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  auto mark = [](char c) { return std::string_view("=-'`\"~.^,*").find(c) != std::string_view::npos; };
  // A mark then a letter ("[=a]", "['e]"), or a letter then a breve ("[e^]");
  // "[R.]" (rare) is a usage label, not an entity.
  if (e.size() == 2 && mark(e[0]) && letter(e[1])) {
    out.push_back(e[1]);
    return true;
  }
  if (e.size() == 2 && letter(e[0]) && e[1] == '^') {
    out.push_back(e[0]);
    return true;
  }
  return false;
}

// A bracketed source tag of GCIDE ("[1913 Webster]", "[WordNet 1.5 +PJC]",
// "[PJC]"): where the entry came from, not part of it.
inline bool gcide_source_tag(std::string_view tag) noexcept {
  return tag == "PJC" || tag.find("Webster") != std::string_view::npos || tag.find("WordNet") != std::string_view::npos;
}

// One GCIDE/dictd line with its markup resolved.
inline void clean_dictd_line(std::string_view line, std::string& out) {
  out.clear();
  for (size_t i = 0; i < line.size();) {
    const char c = line[i];
    if (c == '\\') {  // a pronunciation "\Ab"so*lute\": dropped with the space before it
      const size_t end = line.find('\\', i + 1);
      if (end == std::string_view::npos) {
        ++i;
        continue;
      }
      while (!out.empty() && out.back() == ' ') out.pop_back();
      i = end + 1;
      continue;
    }
    if (c == '{' || c == '}') {  // cross-reference braces
      ++i;
      continue;
    }
    if (c == '[') {
      const size_t end = line.find(']', i + 1);
      if (end != std::string_view::npos) {
        const std::string_view inner = line.substr(i + 1, end - i - 1);
        if (gcide_source_tag(inner)) {
          i = end + 1;
          continue;
        }
        if (gcide_entity(inner, out)) {
          i = end + 1;
          continue;
        }
      }
    }
    out.push_back(c);
    ++i;
  }
}

}  // namespace detail

namespace detail {

// Gathers lines into one document at a time.
struct DocumentBuilder {
  explicit DocumentBuilder(std::vector<std::string>& out) : docs(out) {}
  std::vector<std::string>& docs;
  std::string doc;
  bool open = false;  // a paragraph is being written

  void add(std::string_view line, bool join) { append_line(doc, line, join, open); }
  void flush() {
    const std::string_view t = trim(doc);
    if (!t.empty()) docs.emplace_back(t);
    doc.clear();
    open = false;
  }
};

// text: blank lines separate documents; fortune: lines holding only '%'.
inline void split_paragraphs(std::span<const std::string_view> lines, bool fortune, DocumentBuilder& out) {
  for (std::string_view line : lines) {
    if (fortune ? trim(line) == "%" : blank(line)) out.flush();
    else out.add(line, false);
  }
}

inline void split_dictd(std::span<const std::string_view> lines, DocumentBuilder& out) {
  std::string cleaned;
  bool skip = false;  // inside a 00-database-* entry
  bool after_blank = true;
  for (std::string_view line : lines) {
    if (blank(line)) {
      after_blank = true;
      if (!skip) out.add(line, true);
      continue;
    }
    if (after_blank && line[0] != ' ' && line[0] != '\t') {  // a new entry's headword line
      out.flush();
      skip = line.substr(0, 11) == "00-database" || line.substr(0, 10) == "00database";
    }
    after_blank = false;
    if (skip) continue;
    clean_dictd_line(line, cleaned);
    out.add(cleaned, true);
  }
}

inline void split_jargon(std::span<const std::string_view> lines, DocumentBuilder& out) {
  std::string cleaned;
  bool in_entry = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string_view t = trim(lines[i]);
    const bool headword = t.size() > 2 && t[0] == ':' && t.find(':', 1) != std::string_view::npos;
    if (headword) {
      out.flush();
      in_entry = true;
    }
    if (!in_entry) continue;
    // A one-line paragraph of a few words with no closing punctuation is a
    // line of the headword lists that sit between entries.
    const bool alone = (i == 0 || blank(lines[i - 1])) && (i + 1 == lines.size() || blank(lines[i + 1]));
    if (alone && !t.empty() && t[0] != ':') {
      size_t words = 1;
      for (char c : t) words += c == ' ';
      if (words <= 4 && std::string_view(".!?:\"").find(t.back()) == std::string_view::npos) {
        out.flush();
        in_entry = false;
        continue;
      }
    }
    std::string_view body = t;
    cleaned.clear();
    if (headword) {  // ":headword: /pro·nun·ci·a·tion/, n." -> "headword: n."
      const size_t colon = t.find(':', 1);
      cleaned.append(t.substr(1, colon - 1));
      cleaned.push_back(':');
      body = t.substr(colon + 1);
      if (body.substr(0, 2) == " /")
        if (const size_t b = body.find('/', 2); b != std::string_view::npos) body = body.substr(b + 1);
      if (!body.empty() && body[0] == ',') body.remove_prefix(1);
      if (!body.empty() && body[0] != ' ') cleaned.push_back(' ');
    }
    for (char c : body)
      if (c != '{' && c != '}') cleaned.push_back(c);  // cross-reference braces
    out.add(cleaned, true);
  }
}

// A data.* line: offset lex_filenum ss_type w_cnt(hex) [word lex_id]...
// p_cnt [pointer]... | gloss.
inline void split_wordnet(std::span<const std::string_view> lines, std::vector<std::string>& docs) {
  std::vector<std::string_view> fields;
  for (std::string_view line : lines) {
    if (line.empty() || line[0] == ' ') continue;  // the licence header
    const size_t bar = line.find(" | ");
    if (bar == std::string_view::npos) continue;
    fields.clear();
    for (std::string_view head = line.substr(0, bar); !head.empty();) {
      const size_t sp = head.find(' ');
      if (sp != 0) fields.push_back(head.substr(0, sp));
      if (sp == std::string_view::npos) break;
      head.remove_prefix(sp + 1);
    }
    if (fields.size() < 4 || fields[3].size() > 4) continue;
    const size_t n_words = std::strtoul(std::string(fields[3]).c_str(), nullptr, 16);
    if (n_words == 0 || n_words > (fields.size() - 4) / 2) continue;
    std::string doc;
    for (size_t w = 0; w < n_words; ++w) {
      std::string_view word = fields[4 + 2 * w];
      word = word.substr(0, word.find('('));  // an adjective's "(a)" position marker
      if (w) doc += ", ";
      for (char c : word) doc.push_back(c == '_' ? ' ' : c);
    }
    doc += ": ";
    doc.append(trim(line.substr(bar + 3)));
    docs.push_back(std::move(doc));
  }
}

}  // namespace detail

// Appends the documents of one file's text to `docs`.
inline void split_documents(SourceFormat format, std::string_view text, std::vector<std::string>& docs) {
  std::vector<std::string_view> lines;
  detail::split_lines(text, lines);
  detail::DocumentBuilder out{docs};
  switch (format) {
    case SourceFormat::text: detail::split_paragraphs(lines, false, out); break;
    case SourceFormat::fortune: detail::split_paragraphs(lines, true, out); break;
    case SourceFormat::dictd: detail::split_dictd(lines, out); break;
    case SourceFormat::jargon: detail::split_jargon(lines, out); break;
    case SourceFormat::wordnet: detail::split_wordnet(lines, docs); break;
  }
  out.flush();
}

}  // namespace jielong::train

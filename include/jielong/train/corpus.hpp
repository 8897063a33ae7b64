// A training corpus from raw text files: each file is cut into documents by
// its source's cleaner (clean.hpp), every document is normalised (valid UTF-8,
// one space between words, at most one blank line), passes the quality
// filters, loses exact and near duplicates, and lands in the train or the validation
// split. A report counts what each step removed, per source.
//
// The split is a function of a document's text and the seed alone (a hash
// against a threshold), so it does not depend on the order files are read
// in, and a document never moves between splits when others are added.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "jielong/core/hash.hpp"
#include "jielong/core/status.hpp"
#include "jielong/sample/rng.hpp"
#include "jielong/text/unicode.hpp"
#include "jielong/train/clean.hpp"

namespace jielong::train {

struct CorpusOptions {
  size_t min_bytes = 16;               // shorter documents say too little to learn from
  double max_symbol_ratio = 0.12;      // of non-space bytes that are symbols (see symbol_ratio): ASCII art, code
  double max_repeated_lines = 0.30;    // fraction of a document's lines that repeat an earlier line
  bool drop_offensive = true;          // documents with a slur (kOffensiveWords) are left out
  bool drop_near_duplicates = true;    // MinHash over word 5-grams (see NearDuplicates)
  double validation_fraction = 0.01;   // of documents, chosen by hash
  uint64_t seed = 0;                   // changes which documents are held out
};

// What removed a document, in the order the checks run.
enum class Removal { too_short, symbols, repeated_lines, offensive, duplicate, near_duplicate };
inline constexpr size_t kRemovals = 6;

inline constexpr std::string_view removal_name(Removal r) noexcept {
  constexpr std::string_view names[kRemovals] = {"too short", "symbols",   "repeated lines",
                                                 "offensive", "duplicate", "near duplicate"};
  return names[static_cast<size_t>(r)];
}

// Ethnic and other slurs: a document holding one as a whole word (any case)
// is left out. Old dictionaries and joke files use them as plain words.
inline constexpr std::string_view kOffensiveWords[] = {
    "nigger", "niggers", "nigga", "kike", "kikes", "faggot", "faggots", "spic", "spics", "chink", "chinks",
    "wetback", "wetbacks", "raghead", "ragheads", "tranny",
};

struct SourceReport {
  std::string name;
  SourceFormat format = SourceFormat::text;
  size_t files = 0;
  size_t bytes_in = 0;       // as read (decompressed)
  size_t documents = 0;      // after the cleaner
  size_t bytes_clean = 0;    // of those documents, normalised
  size_t invalid_utf8 = 0;   // ill-formed sequences replaced by U+FFFD
  size_t removed_docs[kRemovals] = {};
  size_t removed_bytes[kRemovals] = {};
  size_t kept_docs = 0, kept_bytes = 0;
};

struct CorpusReport {
  std::vector<SourceReport> sources;
  size_t train_docs = 0, train_bytes = 0, validation_docs = 0, validation_bytes = 0;

  // A table, one row per source and a total.
  std::string to_string() const {
    std::string s;
    char line[320];
    std::snprintf(line, sizeof line, "%-12s %6s %11s %8s %11s %7s %7s %7s %7s %7s %7s %8s %11s\n", "source", "files",
                  "bytes in", "docs", "bytes clean", "short", "symbols", "repeats", "offens.", "dups", "near", "kept",
                  "bytes kept");
    s += line;
    SourceReport total;
    total.name = "total";
    for (const SourceReport* r = sources.data();; ++r) {
      const bool last = r == sources.data() + sources.size();
      const SourceReport& x = last ? total : *r;
      std::snprintf(line, sizeof line, "%-12s %6zu %11zu %8zu %11zu %7zu %7zu %7zu %7zu %7zu %7zu %8zu %11zu\n",
                    x.name.c_str(), x.files, x.bytes_in, x.documents, x.bytes_clean, x.removed_docs[0],
                    x.removed_docs[1], x.removed_docs[2], x.removed_docs[3], x.removed_docs[4], x.removed_docs[5],
                    x.kept_docs, x.kept_bytes);
      s += line;
      if (last) break;
      total.files += x.files, total.bytes_in += x.bytes_in, total.documents += x.documents;
      total.bytes_clean += x.bytes_clean, total.kept_docs += x.kept_docs, total.kept_bytes += x.kept_bytes;
      for (size_t k = 0; k < kRemovals; ++k) total.removed_docs[k] += x.removed_docs[k];
      for (size_t k = 0; k < kRemovals; ++k) total.removed_bytes[k] += x.removed_bytes[k];
    }
    s += "bytes removed:";
    for (size_t k = 0; k < kRemovals; ++k) {
      const std::string_view name = removal_name(static_cast<Removal>(k));
      std::snprintf(line, sizeof line, "%s %.*s %zu", k ? "," : "", static_cast<int>(name.size()), name.data(),
                    total.removed_bytes[k]);
      s += line;
    }
    s += "\n";
    std::snprintf(line, sizeof line, "train: %zu documents, %zu bytes; validation: %zu documents, %zu bytes\n", train_docs,
                  train_bytes, validation_docs, validation_bytes);
    s += line;
    return s;
  }
};

// Valid UTF-8 (each ill-formed sequence becomes U+FFFD and is counted), tabs
// and other control characters as spaces, one space between words, no space
// at the ends of lines, at most one blank line in a row, no white space at
// the ends of the document.
inline std::string normalize_document(std::string_view in, size_t* invalid_utf8 = nullptr) {
  std::string out;
  out.reserve(in.size());
  size_t newlines = 0;  // pending, written before the next visible character
  bool space = false;
  while (!in.empty()) {
    const int k = text::utf8_sequence(in);
    if (k <= 0) {
      if (invalid_utf8) ++*invalid_utf8;
      in.remove_prefix(k == 0 ? in.size() : static_cast<size_t>(-k));
      if (!out.empty() || newlines) {
        if (newlines) out.append(std::min<size_t>(newlines, 2), '\n');
        else if (space) out.push_back(' ');
      }
      newlines = 0, space = false;
      out.append("\xEF\xBF\xBD");
      continue;
    }
    const char c = in[0];
    if (k == 1 && c == '\n') {
      ++newlines, space = false;
    } else if (k == 1 && (static_cast<unsigned char>(c) < 0x20 || c == 0x7F || c == ' ')) {
      space = true;
    } else {
      if (!out.empty()) {
        if (newlines) out.append(std::min<size_t>(newlines, 2), '\n');
        else if (space) out.push_back(' ');
      }
      newlines = 0, space = false;
      out.append(in.substr(0, static_cast<size_t>(k)));
    }
    in.remove_prefix(static_cast<size_t>(k));
  }
  return out;
}

namespace detail {

inline bool ascii_alnum(unsigned char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Non-space bytes that are ASCII symbols, over all non-space bytes. The
// punctuation of prose and of dictionaries (. , ; : ! ? ' " ( ) [ ] & -)
// does not count, nor do the bytes of non-ASCII characters: what is left
// (| / \ _ * # < > = + ~ ^ { } $ % @ `) is the stuff of ASCII art and code.
inline double symbol_ratio(std::string_view doc) noexcept {
  constexpr std::string_view prose = ".,;:!?'\"()[]&-";
  size_t visible = 0, symbols = 0;
  for (unsigned char c : doc) {
    if (c == ' ' || c == '\n') continue;
    ++visible;
    if (c < 0x80 && !ascii_alnum(c) && prose.find(static_cast<char>(c)) == std::string_view::npos) ++symbols;
  }
  return visible ? static_cast<double>(symbols) / static_cast<double>(visible) : 0.0;
}

// Lines (of three or more) that repeat an earlier line, over all lines.
inline double repeated_line_ratio(std::string_view doc) {
  std::unordered_set<std::string_view> seen;
  size_t lines = 0, repeats = 0;
  while (!doc.empty()) {
    const size_t nl = doc.find('\n');
    const std::string_view line = doc.substr(0, nl);
    if (!line.empty()) {
      ++lines;
      if (!seen.insert(line).second) ++repeats;
    }
    if (nl == std::string_view::npos) break;
    doc.remove_prefix(nl + 1);
  }
  return lines >= 3 ? static_cast<double>(repeats) / static_cast<double>(lines) : 0.0;
}

inline bool has_offensive_word(std::string_view doc) {
  std::string word;
  for (size_t i = 0; i <= doc.size(); ++i) {
    const unsigned char c = i < doc.size() ? static_cast<unsigned char>(doc[i]) : ' ';
    if (ascii_alnum(c)) {
      word.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
      continue;
    }
    if (!word.empty()) {
      for (std::string_view w : kOffensiveWords)
        if (word == w) return true;
      word.clear();
    }
  }
  return false;
}

// Duplicates are found on letters and digits only, lower-cased: texts that
// differ in spacing, punctuation or case count as one.
inline uint64_t duplicate_key(std::string_view doc) noexcept {
  uint64_t h = kFnv1aBasis;
  for (unsigned char c : doc) {
    if (!ascii_alnum(c) && c < 0x80) continue;
    const unsigned char l = c >= 'A' && c <= 'Z' ? static_cast<unsigned char>(c + 32) : c;
    h = fnv1a(&l, 1, h);
  }
  return h;
}

}  // namespace detail

// Near-duplicate detection by MinHash with banding (Broder 1997; Leskovec,
// Rajaraman and Ullman, "Mining of Massive Datasets", ch. 3). A document's
// shingles are its overlapping 5-word runs (words: lower-cased runs of
// letters and digits); 64 hash functions keep their minimum over the
// shingles, and the 64 minima form 8 bands of 8. Two documents whose
// shingle sets have Jaccard similarity s share a band with probability
// 1 - (1 - s^8)^8: 0.98 at s = 0.9, 0.86 at 0.8, 0.40 at 0.7, 0.03 at 0.5.
// A document that shares a band with one seen before is a near duplicate.
// Documents of fewer than kMinShingles shingles are not judged (one changed
// word moves most of their shingles; exact duplicates catch the rest).
class NearDuplicates {
 public:
  static constexpr size_t kShingleWords = 5, kHashes = 64, kBands = 8, kMinShingles = 8;

  // True if `doc` shares a band with an earlier document; otherwise its
  // bands are remembered.
  bool seen_before(std::string_view doc) {
    words_.clear();
    uint64_t h = kFnv1aBasis;
    bool in_word = false;
    for (size_t i = 0; i <= doc.size(); ++i) {
      const unsigned char c = i < doc.size() ? static_cast<unsigned char>(doc[i]) : ' ';
      if (detail::ascii_alnum(c) || c >= 0x80) {
        const unsigned char l = c >= 'A' && c <= 'Z' ? static_cast<unsigned char>(c + 32) : c;
        h = fnv1a(&l, 1, h);
        in_word = true;
      } else if (in_word) {
        words_.push_back(h);
        h = kFnv1aBasis;
        in_word = false;
      }
    }
    if (words_.size() < kShingleWords + kMinShingles - 1) return false;
    uint64_t mins[kHashes];
    for (uint64_t& m : mins) m = UINT64_MAX;
    for (size_t i = 0; i + kShingleWords <= words_.size(); ++i) {
      const uint64_t shingle = fnv1a(&words_[i], kShingleWords * sizeof(uint64_t));
      for (size_t j = 0; j < kHashes; ++j) mins[j] = std::min(mins[j], sample::Rng::draw(shingle, j));
    }
    uint64_t bands[kBands];
    bool found = false;
    constexpr size_t rows = kHashes / kBands;
    for (size_t b = 0; b < kBands; ++b) {
      bands[b] = fnv1a(&mins[b * rows], rows * sizeof(uint64_t), fnv1a(&b, sizeof b));
      found = found || bands_.count(bands[b]) != 0;
    }
    if (!found) bands_.insert(bands, bands + kBands);
    return found;
  }

 private:
  std::vector<uint64_t> words_;
  std::unordered_set<uint64_t> bands_;
};

// True when a document belongs to the validation split.
inline bool is_validation(std::string_view doc, double fraction, uint64_t seed) noexcept {
  const uint64_t basis = fnv1a(&seed, sizeof seed);
  const uint64_t h = fnv1a(doc.data(), doc.size(), basis);
  return static_cast<double>(h % 1000000u) < fraction * 1e6;
}

class Corpus {
 public:
  explicit Corpus(CorpusOptions opts = {}) : opts_(opts) {}

  // Adds one file's text (decompressed) as part of the source `name`.
  void add(std::string_view name, SourceFormat format, std::string_view text) {
    SourceReport& r = source(name, format);
    ++r.files;
    r.bytes_in += text.size();
    std::vector<std::string> docs;
    split_documents(format, text, docs);
    for (const std::string& raw : docs) {
      std::string doc = normalize_document(raw, &r.invalid_utf8);
      if (doc.empty()) continue;
      ++r.documents;
      r.bytes_clean += doc.size();
      if (auto why = check(doc)) {
        const size_t k = static_cast<size_t>(*why);
        ++r.removed_docs[k];
        r.removed_bytes[k] += doc.size();
        continue;
      }
      ++r.kept_docs;
      r.kept_bytes += doc.size();
      if (is_validation(doc, opts_.validation_fraction, opts_.seed)) {
        ++report_.validation_docs, report_.validation_bytes += doc.size();
        validation_.push_back(std::move(doc));
      } else {
        ++report_.train_docs, report_.train_bytes += doc.size();
        train_.push_back(std::move(doc));
      }
    }
  }

  const std::vector<std::string>& train() const noexcept { return train_; }
  const std::vector<std::string>& validation() const noexcept { return validation_; }
  const CorpusReport& report() const noexcept { return report_; }

 private:
  SourceReport& source(std::string_view name, SourceFormat format) {
    for (SourceReport& r : report_.sources)
      if (r.name == name) return r;
    report_.sources.emplace_back();
    report_.sources.back().name = std::string(name);
    report_.sources.back().format = format;
    return report_.sources.back();
  }

  // Why a document is left out, or nothing.
  std::optional<Removal> check(std::string_view doc) {
    if (doc.size() < opts_.min_bytes) return Removal::too_short;
    if (detail::symbol_ratio(doc) > opts_.max_symbol_ratio) return Removal::symbols;
    if (detail::repeated_line_ratio(doc) > opts_.max_repeated_lines) return Removal::repeated_lines;
    if (opts_.drop_offensive && detail::has_offensive_word(doc)) return Removal::offensive;
    if (!seen_.insert(detail::duplicate_key(doc)).second) return Removal::duplicate;
    if (opts_.drop_near_duplicates && near_.seen_before(doc)) return Removal::near_duplicate;
    return std::nullopt;
  }

  CorpusOptions opts_;
  CorpusReport report_;
  std::vector<std::string> train_, validation_;
  std::unordered_set<uint64_t> seen_;
  NearDuplicates near_;
};

}  // namespace jielong::train

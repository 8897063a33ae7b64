// The text files of train-tokenizer and prepare-data: files and folders
// (walked recursively, in name order; symbolic links, binary files and a
// package's index files skipped), read whole, .gz and .dz (dictzip) ones through `gzip -dc`.
#pragma once

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "jielong/core/status.hpp"
#include "jielong/train/clean.hpp"
#include "jielong/train/corpus.hpp"
#include "args.hpp"
#include "progress.hpp"

namespace jielong::cli {

struct CorpusFile {
  std::string path;
  train::SourceFormat format;
  std::string source;  // the report's name for it: gcide, devil, jargon, fortunes, wordnet, or the file's stem
};

inline bool compressed(const std::string& path) {
  auto ends = [&](std::string_view s) { return path.size() >= s.size() && path.compare(path.size() - s.size(), s.size(), s) == 0; };
  return ends(".gz") || ends(".dz");
}

inline std::string source_name(const std::string& path, train::SourceFormat format) {
  switch (format) {
    case train::SourceFormat::fortune: return "fortunes";
    case train::SourceFormat::wordnet: return "wordnet";
    case train::SourceFormat::jargon: return "jargon";
    default: break;
  }
  std::string base = std::filesystem::path(path).filename().string();
  return base.substr(0, base.find('.'));
}

inline Result<std::string> read_corpus_file(const std::string& path) {
  std::string out;
  char buf[1 << 16];
  if (compressed(path)) {
    std::string quoted = "'";
    for (char c : path) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    quoted += "'";
    std::FILE* p = ::popen(("gzip -dc -- " + quoted).c_str(), "r");
    if (!p) return make_error(Code::io_error, path + ": cannot run gzip -dc");
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    if (::pclose(p) != 0) return make_error(Code::io_error, path + ": gzip -dc failed (not gzip data?)");
    return out;
  }
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return make_error(Code::io_error, path + ": cannot open");
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
  const bool failed = std::ferror(f);
  std::fclose(f);
  if (failed) return make_error(Code::io_error, path + ": read failed");
  return out;
}

// A file with a NUL byte in its first 4 KiB is not text (fortune's .dat indexes).
inline bool looks_binary(const std::string& path) {
  if (compressed(path)) return false;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char buf[4096];
  const size_t n = std::fread(buf, 1, sizeof buf, f);
  std::fclose(f);
  return std::find(buf, buf + n, '\0') != buf + n;
}

inline Result<std::vector<CorpusFile>> collect_corpus_files(const std::vector<std::string>& inputs,
                                                           std::optional<train::SourceFormat> format) {
  namespace fs = std::filesystem;
  std::vector<CorpusFile> files;
  auto add = [&](const std::string& path) {
    const train::SourceFormat f = format ? *format : train::guess_source_format(path);
    files.push_back({path, f, source_name(path, f)});
  };
  for (const std::string& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(in, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
        if (!it->is_symlink(ec) && it->is_regular_file(ec) && !train::is_corpus_side_file(it->path().string()) &&
            !looks_binary(it->path().string()))
          found.push_back(it->path().string());
      if (ec) return make_error(Code::io_error, in + ": cannot list: " + ec.message());
      std::sort(found.begin(), found.end());
      for (const std::string& p : found) add(p);
    } else if (fs::is_regular_file(in, ec)) {
      add(in);
    } else {
      return make_error(Code::io_error, in + ": no such file or folder");
    }
  }
  if (files.empty()) return make_error(Code::invalid_argument, "no text files among the inputs");
  return files;
}

// Reads, cleans and filters every file, with a progress line in bytes read.
inline Result<train::Corpus> build_corpus(const std::vector<CorpusFile>& files, const train::CorpusOptions& opts,
                                          const InterruptScope& interrupt) {
  train::Corpus corpus(opts);
  ProgressLine progress("reading", "files");
  for (size_t i = 0; i < files.size(); ++i) {
    if (interrupt.interrupted()) {
      progress.finish();
      return make_error(Code::cancelled, "interrupted while reading the corpus");
    }
    auto text = read_corpus_file(files[i].path);
    if (!text.ok()) {
      progress.finish();
      return text.status();
    }
    corpus.add(files[i].source, files[i].format, *text);
    progress.update(static_cast<double>(i + 1), static_cast<double>(files.size()));
  }
  progress.update(static_cast<double>(files.size()), static_cast<double>(files.size()), true);
  progress.finish();
  return corpus;
}

}  // namespace jielong::cli

namespace jielong::cli {

// The flags both corpus commands take.
struct CorpusFlags {
  std::vector<std::string> inputs;
  std::string format;
  int64_t seed = 0, min_bytes = 16;
  double validation = 0.01;
  bool keep_offensive = false;

  void add_to(Flags& flags) {
    flags.add_rest("FILE|DIR...", &inputs, "text files or folders (.gz/.dz read through gzip)");
    flags.add_string("--format", &format, "text, dictd, jargon, fortune or wordnet (default: guessed from each path)");
    flags.add_float("--validation", &validation, "fraction of documents held out for validation", 0.0, 1.0);
    flags.add_int("-s,--seed", &seed, "changes which documents are held out", 0);
    flags.add_int("--min-bytes", &min_bytes, "drop documents shorter than this", 0);
    flags.add_switch("--keep-offensive", &keep_offensive, "keep documents that contain a slur");
  }

  // Reads and cleans the corpus and prints the report; nullopt on failure
  // (the message is printed).
  std::optional<train::Corpus> build(const char* command, const InterruptScope& interrupt) const {
    if (inputs.empty()) {
      std::fprintf(stderr, "jielong %s: give at least one text file or folder\n", command);
      return std::nullopt;
    }
    std::optional<train::SourceFormat> forced;
    if (!format.empty()) {
      auto f = train::parse_source_format(format);
      if (!f.ok()) {
        std::fprintf(stderr, "jielong %s: %s\n", command, f.status().to_string().c_str());
        return std::nullopt;
      }
      forced = *f;
    }
    auto files = collect_corpus_files(inputs, forced);
    if (!files.ok()) {
      std::fprintf(stderr, "jielong %s: %s\n", command, files.status().to_string().c_str());
      return std::nullopt;
    }
    train::CorpusOptions opts;
    opts.seed = static_cast<uint64_t>(seed);
    opts.validation_fraction = validation;
    opts.min_bytes = static_cast<size_t>(min_bytes);
    opts.drop_offensive = !keep_offensive;
    auto corpus = build_corpus(*files, opts, interrupt);
    if (!corpus.ok()) {
      std::fprintf(stderr, "jielong %s: %s\n", command, corpus.status().to_string().c_str());
      return std::nullopt;
    }
    std::fprintf(stderr, "%s", corpus->report().to_string().c_str());
    return std::move(*corpus);
  }
};

}  // namespace jielong::cli

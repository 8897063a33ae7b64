// jielong prepare-data: a corpus cleaned, filtered, split and tokenised into
// token shards (DIR/train.bin, DIR/val.bin; format in train/shards.hpp), with
// the filter report in DIR/report.txt and the validation documents as text in
// DIR/val.txt (each followed by a blank line). Each document is encoded with the
// tokenizer's BOS (<|endoftext|> for train-tokenizer's vocabularies) in front.
#pragma once

#include <cstdio>
#include <algorithm>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "args.hpp"
#include "corpus_input.hpp"
#include "jielong/text/gguf_vocab.hpp"
#include "jielong/train/shards.hpp"
#include "progress.hpp"

namespace jielong::cli {

inline int cmd_prepare_data(Args& args) {
  std::string tokenizer_path, out_dir;
  int64_t threads = 1;
  CorpusFlags corpus_flags;
  Flags flags("prepare-data", "-m TOKENIZER.gguf -o DIR [options] FILE|DIR...",
              "Clean, filter, split and tokenise a corpus into DIR/train.bin and DIR/val.bin.");
  flags.add_string("-m,--model", &tokenizer_path, "GGUF whose tokenizer encodes the text (e.g. from train-tokenizer)");
  flags.add_string("-o,--out", &out_dir, "folder for train.bin, val.bin, val.txt and report.txt");
  flags.add_int("-t,--threads", &threads, "threads that encode (the shards are the same for any number)", 1, 256);
  corpus_flags.add_to(flags);
  if (auto rc = flags.parse(args)) return *rc;
  if (tokenizer_path.empty() || out_dir.empty()) {
    std::fprintf(stderr, "jielong prepare-data: give the tokenizer with -m and the output folder with -o\n");
    return 1;
  }
  auto tok = text::Tokenizer::from_gguf(tokenizer_path);
  if (!tok.ok()) {
    std::fprintf(stderr, "jielong prepare-data: %s\n", tok.status().to_string().c_str());
    return 1;
  }
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) {
    std::fprintf(stderr, "jielong prepare-data: %s: cannot create: %s\n", out_dir.c_str(), ec.message().c_str());
    return 1;
  }
  InterruptScope interrupt;
  auto corpus = corpus_flags.build("prepare-data", interrupt);
  if (!corpus) return 1;

  const uint32_t separator = tok->vocab().add_bos && tok->valid(tok->bos()) ? static_cast<uint32_t>(tok->bos())
                                                                            : train::kNoSeparator;
  std::string summary = corpus->report().to_string();
  for (const auto& [name, docs] : {std::pair{"train", &corpus->train()}, std::pair{"val", &corpus->validation()}}) {
    const std::string path = (std::filesystem::path(out_dir) / (std::string(name) + ".bin")).string();
    auto writer = train::ShardWriter::create(path, static_cast<uint32_t>(tok->n_tokens()), separator);
    if (!writer.ok()) {
      std::fprintf(stderr, "jielong prepare-data: %s\n", writer.status().to_string().c_str());
      return 1;
    }
    double total_mb = 0, done_mb = 0;
    for (const std::string& d : *docs) total_mb += static_cast<double>(d.size()) / 1e6;
    ProgressLine progress(std::string("encoding ") + name, "MB");
    // Blocks of documents; within a block each thread encodes a contiguous
    // range into its own lists, and the block is written in document order,
    // so the shard is the same for any number of threads.
    constexpr size_t kBlock = 1024;
    std::vector<std::vector<int32_t>> encoded(kBlock);
    std::vector<Status> failed(static_cast<size_t>(threads));
    for (size_t begin = 0; begin < docs->size(); begin += kBlock) {
      if (interrupt.interrupted()) {
        progress.finish();
        std::fprintf(stderr, "jielong prepare-data: interrupted; %s not written\n", path.c_str());
        return 130;
      }
      const size_t n = std::min(kBlock, docs->size() - begin);
      auto encode_range = [&](size_t t) {
        for (size_t i = n * t / threads; i < n * (t + 1) / threads; ++i) {
          encoded[i].clear();
          Status s = tok->encode_append((*docs)[begin + i], {.add_bos = true, .parse_special = false}, encoded[i]);
          if (!s.is_ok() && failed[t].is_ok()) failed[t] = std::move(s);
        }
      };
      std::vector<std::thread> pool;
      for (size_t t = 1; t < static_cast<size_t>(threads); ++t) pool.emplace_back(encode_range, t);
      encode_range(0);
      for (std::thread& th : pool) th.join();
      for (size_t i = 0; i < n; ++i) {
        Status s = Status::ok();
        for (const Status& f : failed)
          if (!f.is_ok()) s = f;
        if (s.is_ok()) s = writer->append(encoded[i]);
        if (!s.is_ok()) {
          progress.finish();
          std::fprintf(stderr, "jielong prepare-data: %s\n", s.to_string().c_str());
          return 1;
        }
        done_mb += static_cast<double>((*docs)[begin + i].size()) / 1e6;
      }
      progress.update(done_mb, total_mb);
    }
    progress.update(done_mb, total_mb, true);
    progress.finish();
    if (Status s = writer->finish(); !s.is_ok()) {
      std::fprintf(stderr, "jielong prepare-data: %s\n", s.to_string().c_str());
      return 1;
    }
    const train::ShardHeader& h = writer->header();
    const double text_tokens = static_cast<double>(h.n_tokens - (separator != train::kNoSeparator ? h.n_documents : 0));
    char line[256];
    std::snprintf(line, sizeof line, "%s: %llu documents, %llu tokens, %.3f bytes/token, encoded in %.1f s -> %s\n", name,
                  static_cast<unsigned long long>(h.n_documents), static_cast<unsigned long long>(h.n_tokens),
                  text_tokens > 0 ? done_mb * 1e6 / text_tokens : 0.0, progress.seconds(), path.c_str());
    std::fprintf(stderr, "%s", line);
    summary += line;
  }
  // The held-out text itself, for measuring general compressors (xz,
  // zstd) in bits per byte beside a model's validation loss.
  const std::string val_text = (std::filesystem::path(out_dir) / "val.txt").string();
  std::FILE* f = std::fopen(val_text.c_str(), "wb");
  bool ok = f != nullptr;
  for (size_t i = 0; ok && i < corpus->validation().size(); ++i) {
    const std::string& d = corpus->validation()[i];
    ok = std::fwrite(d.data(), 1, d.size(), f) == d.size() && std::fputs("\n\n", f) >= 0;
  }
  const std::string report_path = (std::filesystem::path(out_dir) / "report.txt").string();
  std::FILE* r = ok ? std::fopen(report_path.c_str(), "w") : nullptr;
  ok = r && std::fputs(summary.c_str(), r) >= 0;
  if (f) ok = std::fclose(f) == 0 && ok;
  if (r) ok = std::fclose(r) == 0 && ok;
  if (!ok) {
    std::fprintf(stderr, "jielong prepare-data: cannot write %s and %s\n", val_text.c_str(), report_path.c_str());
    return 1;
  }
  return 0;
}

}  // namespace jielong::cli

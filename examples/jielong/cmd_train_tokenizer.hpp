// jielong train-tokenizer: a byte-level BPE vocabulary learnt from text files,
// written as a vocabulary-only GGUF that `jielong tokenize -m` and llama.cpp's
// llama-tokenize read. It learns from the training split only, so the
// validation text stays unseen.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "args.hpp"
#include "corpus_input.hpp"
#include "jielong/io/gguf_writer.hpp"
#include "jielong/text/gguf_vocab.hpp"
#include "jielong/train/bpe.hpp"
#include "progress.hpp"

namespace jielong::cli {

inline int cmd_train_tokenizer(Args& args) {
  std::string out, chat_template;
  std::vector<std::string> specials;
  int64_t vocab_size = 4096, min_pair_count = 2;
  CorpusFlags corpus_flags;
  Flags flags("train-tokenizer", "-o TOKENIZER.gguf [--vocab-size V] [options] FILE|DIR...",
              "Learn a byte-level BPE vocabulary (GPT-2 pre-tokenizer) from the training split of a corpus.");
  flags.add_string("-o,--out", &out, "vocabulary-only GGUF to write");
  flags.add_int("--vocab-size", &vocab_size, "tokens: 256 bytes, the merges, <|endoftext|> and the --special ones", 257, 1 << 20);
  flags.add_strings("--special", &specials, "a control token after <|endoftext|> (repeatable, in order)");
  flags.add_string("--chat-template", &chat_template,
                   "tokenizer.chat_template: chatml or Jinja source (default: chatml when <|im_start|> is a --special)");
  flags.add_int("--min-pair-count", &min_pair_count, "stop early when the best pair occurs fewer times", 1);
  corpus_flags.add_to(flags);
  if (auto rc = flags.parse(args)) return *rc;
  if (out.empty()) {
    std::fprintf(stderr, "jielong train-tokenizer: give the output file with -o\n");
    return 1;
  }
  if (chat_template == "chatml") chat_template = std::string(text::kChatmlJinja);
  InterruptScope interrupt;
  auto corpus = corpus_flags.build("train-tokenizer", interrupt);
  if (!corpus) return 1;

  auto trainer = train::BpeTrainer::create({.vocab_size = static_cast<int32_t>(vocab_size),
                                            .pre = "gpt-2",
                                            .min_pair_count = static_cast<uint64_t>(min_pair_count),
                                            .specials = specials,
                                            .chat_template = chat_template});
  if (!trainer.ok()) {
    std::fprintf(stderr, "jielong train-tokenizer: %s\n", trainer.status().to_string().c_str());
    return 1;
  }
  ProgressLine counting("counting words", "docs");
  const auto& docs = corpus->train();
  for (size_t i = 0; i < docs.size(); ++i) {
    if (interrupt.interrupted()) {
      counting.finish();
      std::fprintf(stderr, "jielong train-tokenizer: interrupted; nothing written\n");
      return 130;
    }
    trainer->add_text(docs[i]);
    counting.update(static_cast<double>(i + 1), static_cast<double>(docs.size()));
  }
  counting.update(static_cast<double>(docs.size()), static_cast<double>(docs.size()), true);
  counting.finish();
  const double count_seconds = counting.seconds();

  ProgressLine merging("merging", "merges");
  auto vocab = trainer->train([&](int32_t done, int32_t wanted) {
    merging.update(done, wanted);
    return !interrupt.interrupted();
  });
  merging.finish();
  if (!vocab.ok()) {
    std::fprintf(stderr, "jielong train-tokenizer: %s; nothing written\n", vocab.status().to_string().c_str());
    return vocab.status().code() == Code::cancelled ? 130 : 1;
  }
  io::GgufWriter w;
  w.add_string("general.architecture", "llama");  // llama.cpp reads it before a vocabulary-only load
  w.add_string("general.name", vocab->name);
  text::add_vocab_metadata(w, *vocab);
  if (Status s = w.write(out); !s.is_ok()) {
    std::fprintf(stderr, "jielong train-tokenizer: %s\n", s.to_string().c_str());
    return 1;
  }
  std::fprintf(stderr, "%zu unique words counted in %.1f s; %zu tokens, %zu merges learnt in %.1f s; wrote %s\n",
               trainer->unique_words(), count_seconds, vocab->tokens.size(), vocab->merges.size(), merging.seconds(),
               out.c_str());
  return 0;
}

}  // namespace jielong::cli

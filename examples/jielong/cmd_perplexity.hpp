#pragma once

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "args.hpp"
#include "common.hpp"
#include "jielong/run/eval.hpp"
#include "jielong/run/load.hpp"
#include "jielong/train/shards.hpp"

namespace jielong::cli {

// Teacher-forced negative log-likelihood of a text, a text file or a token
// shard from prepare-data; longer than one context, in windows (see
// run::perplexity_windows). With a file or shard it also prints the bytes
// the scored tokens stand for and the bits per byte: nll / ln 2 / bytes, the
// number to set beside a compressor's (compressed bits / input bytes).
inline int cmd_perplexity(Args& args) {
  std::string model_path, tokenizer_path, text, text_file, shard_path, kv = "f32";
  int64_t threads = 1, window = 0;
  run::LoadOptions lo;
  Flags flags("perplexity", "-m MODEL [-z TOKENIZER.bin] -p TEXT",
              "Token count, summed negative log-likelihood of each next token (BOS included) and perplexity.");
  flags.add_string("-m,--model", &model_path, "model file");
  flags.add_string("-z,--tokenizer", &tokenizer_path, "llama2.c tokenizer.bin (for a .bin checkpoint)");
  flags.add_string("-p,--prompt", &text, "the text");
  flags.add_string("-f,--file", &text_file, "the text of this file");
  flags.add_string("--shard", &shard_path, "the tokens of this shard (prepare-data's val.bin), encoded by the model's tokenizer");
  flags.add_int("--window", &window, "tokens per window for long inputs (default: the context the model was trained with)", 2, 1 << 24);
  flags.add_int("-t,--threads", &threads, "threads (default 1)", 1, 1024);
  flags.add_string("--kv", &kv, "KV cache type f32 (default) or f16");
  flags.add_switch("--no-mmap", &lo.no_mmap, kNoMmapHelp);
  flags.add_switch("--no-repack", &lo.no_repack, kNoRepackHelp);
  if (auto rc = flags.parse(args)) return *rc;
  model::KvType kv_type;
  if (!parse_kv_type("perplexity", kv, kv_type)) return 1;
  run::LoadedModel lm;
  if (!load_or_report("perplexity", model_path, tokenizer_path, lo, lm)) return 1;
  if (!lm.tokenizer) {
    std::fprintf(stderr, "jielong perplexity: %s has no tokenizer; pass -z TOKENIZER.bin\n", model_path.c_str());
    return 1;
  }
  run::SessionOptions so;
  so.kv_type = kv_type;
  so.n_threads = static_cast<size_t>(threads);
  auto fail = [](const std::string& message) {
    std::fprintf(stderr, "jielong perplexity: %s\n", message.c_str());
    return 1;
  };
  if (text_file.empty() && shard_path.empty()) {
    auto r = run::perplexity(lm, text, so);
    if (!r.ok()) return fail(r.status().to_string());
    std::printf("n_tokens: %zu\nnll: %.6f\nperplexity: %.6f\n", r->n_tokens, r->nll, r->perplexity);
    return 0;
  }
  if (!text_file.empty() && !shard_path.empty()) return fail("give -f or --shard, not both");
  std::vector<int32_t> ids;
  if (!text_file.empty()) {
    std::ifstream in(text_file, std::ios::binary);
    if (!in) return fail(text_file + ": cannot open");
    const std::string file_text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto e = lm.tokenizer->encode(file_text, {.add_bos = true, .parse_special = false});
    if (!e.ok()) return fail(e.status().to_string());
    ids = std::move(*e);
  } else {
    auto shard = train::TokenShard::open(shard_path);
    if (!shard.ok()) return fail(shard.status().to_string());
    if (shard->header().vocab_size != static_cast<uint32_t>(lm.tokenizer->n_tokens()))
      return fail(shard_path + ": a vocabulary of " + std::to_string(shard->header().vocab_size) + " tokens, the model's has " +
                  std::to_string(lm.tokenizer->n_tokens()));
    ids.resize(shard->size());
    shard->read(0, ids);
  }
  // The bytes of every predicted token (control tokens such as a document's
  // <|endoftext|> stand for none).
  size_t bytes = 0;
  for (size_t i = 1; i < ids.size(); ++i) bytes += lm.tokenizer->output_piece(ids[i], false).size();
  const size_t w = window ? static_cast<size_t>(window) : lm.model->hparams().n_ctx_train;
  auto r = run::perplexity_windows(lm.model, ids, w, so);
  if (!r.ok()) return fail(r.status().to_string());
  std::printf("n_tokens: %zu\nnll: %.6f\nperplexity: %.6f\nwindow: %zu\nbytes: %zu\nbits_per_byte: %.4f\n", r->n_tokens,
              r->nll, r->perplexity, w, bytes, bytes ? r->nll / std::log(2.0) / static_cast<double>(bytes) : 0.0);
  return 0;
}

}  // namespace jielong::cli

// The training data pipeline over arbitrary bytes. The first byte chooses:
// 0, a token shard (the rest is the file; opened, and when valid read
// whole and cut into batches); 1-5, one source format's cleaner, the
// normalisation and the filters over the rest as a corpus file; 6, the BPE
// trainer on the rest as text, its vocabulary then encoding and decoding it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "jielong/text/tokenizer.hpp"
#include "jielong/train/bpe.hpp"
#include "jielong/train/corpus.hpp"
#include "jielong/train/shards.hpp"

using namespace jielong;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0] % 7;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if (mode == 0) {
    auto shard = train::TokenShard::open(fuzz::write_scratch(data + 1, size - 1));
    if (!shard.ok()) return 0;
    std::vector<int32_t> all(shard->size());
    shard->read(0, all);
    for (int32_t t : all)
      if (t < 0 || static_cast<uint32_t>(t) >= shard->header().vocab_size) __builtin_trap();
    auto loader = train::BatchLoader::create(*shard, 2, 3, 1);
    if (loader.ok()) {
      std::vector<int32_t> x(6), y(6);
      for (int i = 0; i < 4; ++i) (void)loader->next(x, y);
    }
    return 0;
  }
  if (mode <= 5) {
    train::Corpus corpus({.min_bytes = 4, .validation_fraction = 0.5});
    corpus.add("fuzz", static_cast<train::SourceFormat>(mode - 1), rest);
    for (const std::string& d : corpus.train())
      if (d.empty() || text::sanitize_utf8(d) != d) __builtin_trap();  // documents are valid UTF-8, never empty
    return 0;
  }
  auto trainer = train::BpeTrainer::create({.vocab_size = 300, .pre = "gpt-2", .min_pair_count = 1});
  if (!trainer.ok()) __builtin_trap();
  const std::string doc = train::normalize_document(rest);
  trainer->add_text(doc);
  auto vocab = trainer->train([](int32_t, int32_t) { return true; });
  if (!vocab.ok()) __builtin_trap();
  auto tok = text::Tokenizer::create(std::move(*vocab));
  if (!tok.ok()) __builtin_trap();
  auto ids = tok->encode(doc, {.add_bos = false, .parse_special = false});
  if (!ids.ok() || tok->decode(*ids) != doc) __builtin_trap();  // exact round trip of valid UTF-8
  return 0;
}

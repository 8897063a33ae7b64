// Model files from a path, as hosts open them: GGUF, llama2.c v0 and v2
// checkpoints, and llama2.c tokenizer.bin. The first byte chooses the reader;
// a file that loads is bound as a Model and, when small, run for one token.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_support.hpp"
#include "jielong/run/load.hpp"
#include "jielong/run/session.hpp"
#include "jielong/text/tokenizer.hpp"

using namespace jielong;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  const std::string& path = fuzz::write_scratch(data + 1, size - 1);
  if (mode & 1) {
    auto t = text::Tokenizer::from_llama2c(path, mode & 2 ? 0 : 512);
    if (t.ok()) {
      auto ids = t->encode("Once upon a time \xe4\xbd");
      if (ids.ok()) (void)t->decode(*ids);
    }
    return 0;
  }
  auto lm = run::load(path);
  if (!lm.ok()) return 0;
  const auto& hp = lm->model->hparams();
  // Run one token only where that is cheap: the file bounds the weights, not the cache.
  if (hp.n_embd * hp.n_layers > (1u << 16)) return 0;
  run::SessionOptions so;
  so.n_ctx = 4;
  so.n_batch = 2;
  auto s = run::Session::create(lm->model, so);
  if (!s.ok()) return 0;
  const int32_t prompt[] = {0, static_cast<int32_t>(hp.n_vocab - 1)};
  (void)s->prefill(prompt);
  return 0;
}

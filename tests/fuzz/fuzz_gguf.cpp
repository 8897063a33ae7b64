// GGUF reader, from memory: any bytes give a file or a Status. When they give
// a file, everything downstream that reads metadata runs on it too: the
// hyper-parameters, the tokenizer (encode and decode), the chat template.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "jielong/io/gguf.hpp"
#include "jielong/model/hparams.hpp"
#include "jielong/text/chat_template.hpp"
#include "jielong/text/gguf_vocab.hpp"
#include "jielong/text/tokenizer.hpp"

using namespace jielong;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = io::GgufFile::from_memory(std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size));
  if (!f.ok()) return 0;
  for (const auto& t : f->tensors()) (void)t.n_elements();
  (void)model::hparams_from_gguf(*f);
  auto tok = text::tokenizer_from_gguf(*f);
  if (tok.ok()) {
    auto ids = tok->encode("Hello world <s> 你好 \xff\xfe 123");
    if (ids.ok()) (void)tok->decode(*ids);
    const int32_t odd[] = {-1, 0, 1, tok->n_tokens() - 1, tok->n_tokens(), 1 << 30};
    (void)tok->decode(odd);
    (void)text::detect_chat_template(tok->vocab().chat_template);
  }
  return 0;
}

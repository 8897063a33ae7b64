// Tokenizers over arbitrary input: encode any bytes (specials parsed or not),
// decode any ids (out of range included), and the streaming detokenizer over
// them. The vocabularies come from the GGUF files named in
// $JIELONG_FUZZ_VOCABS (colon-separated), loaded once.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "jielong/text/detokenizer.hpp"
#include "jielong/text/gguf_vocab.hpp"
#include "jielong/text/tokenizer.hpp"

using namespace jielong;

namespace {

std::vector<text::Tokenizer>& tokenizers() {
  static std::vector<text::Tokenizer> all = [] {
    std::vector<text::Tokenizer> v;
    const char* list = std::getenv("JIELONG_FUZZ_VOCABS");
    std::string_view rest = list ? list : "";
    while (!rest.empty()) {
      const size_t colon = rest.find(':');
      const std::string path(rest.substr(0, colon));
      rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
      auto t = text::Tokenizer::from_gguf(path);
      if (t.ok()) v.push_back(std::move(*t));
    }
    if (v.empty()) {
      std::fprintf(stderr, "fuzz_tokenizer: set JIELONG_FUZZ_VOCABS to vocabulary GGUF files\n");
      std::abort();
    }
    return v;
  }();
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  auto& all = tokenizers();
  const text::Tokenizer& tok = all[data[0] % all.size()];
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  text::EncodeOptions eo;
  eo.parse_special = data[0] & 0x80;
  eo.add_bos = data[0] & 0x40;
  auto ids = tok.encode(input, eo);
  if (ids.ok()) (void)tok.decode(*ids);
  // The same bytes as ids.
  std::vector<int32_t> raw((size - 1) / 4);
  if (!raw.empty()) std::memcpy(raw.data(), data + 1, raw.size() * 4);
  for (int32_t& id : raw) id = (id & 0x80000000) ? id : id % (tok.n_tokens() + 8);  // mostly valid, some not
  (void)tok.decode(raw);
  text::Detokenizer detok(tok);
  size_t out = 0;
  for (int32_t id : raw) out += detok.push(id).size();
  out += detok.flush().size();
  (void)out;
  return 0;
}

// Vocab: everything a tokenizer needs to know about its vocabulary, as plain
// data (token texts, scores, types, special ids, flags, BPE merges). It is
// filled from GGUF metadata, from a llama2.c tokenizer.bin, or by hand in
// tests, then handed to Tokenizer::create, which checks it and indexes it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "jielong/core/mapped_file.hpp"
#include "jielong/core/status.hpp"

namespace jielong::text {

inline constexpr int32_t kNoToken = -1;

// Values of tokenizer.ggml.token_type.
enum class TokenType : int32_t { undefined = 0, normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

// Tokenizer algorithm (tokenizer.ggml.model): "llama" = SentencePiece BPE
// with scores, "gpt2" = byte-level BPE with merges, "bert" = WordPiece.
enum class VocabKind : uint8_t { spm, bpe, wpm };

struct Vocab {
  VocabKind kind = VocabKind::spm;
  std::string pre;   // tokenizer.ggml.pre (BPE pre-tokenizer family)
  std::string name;  // general.name; a few per-model fix-ups key on it

  std::vector<std::string> tokens;  // id -> text as stored (SPM: '▁' for space; BPE: GPT-2 byte encoding)
  std::vector<float> scores;        // empty, or one per token (SPM merge priority)
  std::vector<TokenType> types;     // empty (all normal), or one per token
  std::vector<std::string> merges;  // BPE: "left right", rank = position

  int32_t bos_id = kNoToken, eos_id = kNoToken, eot_id = kNoToken, eom_id = kNoToken, unk_id = kNoToken,
          pad_id = kNoToken, sep_id = kNoToken, mask_id = kNoToken;

  bool add_bos = false;           // encode() with add_bos puts BOS (BERT: CLS) first
  bool add_eos = false;           // ... and EOS last
  bool add_sep = false;           // ... and SEP last (BERT)
  bool add_space_prefix = false;  // SPM: a space before text that starts the input or follows a special token
  bool ignore_merges = false;     // BPE: a pre-tokenized word found whole in the vocabulary is one token
  bool lowercase = true;          // WPM normalizer
  bool strip_accents = true;      // WPM normalizer

  std::string chat_template;  // tokenizer.chat_template, when present

  // Defaults of each algorithm, before the metadata speaks (as llama.cpp's).
  static Vocab with_defaults(VocabKind kind) {
    Vocab v;
    v.kind = kind;
    switch (kind) {
      case VocabKind::spm:
        v.bos_id = 1, v.eos_id = 2, v.unk_id = 0;
        v.add_bos = true, v.add_space_prefix = true;
        break;
      case VocabKind::bpe:
        v.bos_id = 11, v.eos_id = 11;
        break;
      case VocabKind::wpm:
        v.bos_id = 101, v.unk_id = 100, v.sep_id = 102, v.pad_id = 0, v.mask_id = 103;
        v.add_bos = true, v.add_sep = true;
        break;
    }
    return v;
  }
};

// A llama2.c tokenizer.bin: int32 max_token_length, then for each token a
// float32 score, an int32 byte length and the bytes. The file does not say how
// many tokens it holds (the model header does), so `n_tokens` may be given;
// 0 reads to the end of the file. Pieces spell space as ' ', which becomes
// '▁' here so the vocabulary reads like a GGUF "llama" one.
inline Result<Vocab> vocab_from_llama2c(const std::string& path, int32_t n_tokens = 0) {
  auto file = MappedFile::open(path);
  if (!file.ok()) return file.status();
  const auto* p = reinterpret_cast<const unsigned char*>(file->data());
  const size_t size = file->size();
  size_t off = 0;
  auto read_u32 = [&](uint32_t& v) {
    if (size - off < 4) return false;
    std::memcpy(&v, p + off, 4);
    off += 4;
    return true;
  };
  uint32_t max_len = 0;
  if (!read_u32(max_len)) return make_error(Code::format_error, path + ": llama2.c tokenizer: file shorter than its header");
  if (max_len == 0 || max_len > (1u << 20))
    return make_error(Code::format_error, path + ": llama2.c tokenizer: max_token_length " + std::to_string(max_len) +
                                              " is not in [1, 1048576]");
  if (n_tokens < 0) return make_error(Code::invalid_argument, path + ": negative token count");
  Vocab v = Vocab::with_defaults(VocabKind::spm);
  v.add_eos = false;
  while (off < size && (n_tokens == 0 || v.tokens.size() < static_cast<size_t>(n_tokens))) {
    const size_t id = v.tokens.size();
    uint32_t score_bits = 0, len = 0;
    if (!read_u32(score_bits) || !read_u32(len))
      return make_error(Code::format_error, path + ": llama2.c tokenizer: token " + std::to_string(id) + " is truncated");
    if (len > max_len || len > size - off)
      return make_error(Code::format_error, path + ": llama2.c tokenizer: token " + std::to_string(id) + " has length " +
                                                std::to_string(len) + " (max_token_length " + std::to_string(max_len) +
                                                ", " + std::to_string(size - off) + " bytes left)");
    float score;
    std::memcpy(&score, &score_bits, 4);
    std::string piece(reinterpret_cast<const char*>(p + off), len);
    off += len;
    std::string text;
    for (char c : piece) {
      if (c == ' ') text += "\xE2\x96\x81";
      else text.push_back(c);
    }
    v.tokens.push_back(std::move(text));
    v.scores.push_back(score);
  }
  if (n_tokens != 0 && v.tokens.size() != static_cast<size_t>(n_tokens))
    return make_error(Code::format_error, path + ": llama2.c tokenizer holds " + std::to_string(v.tokens.size()) +
                                              " tokens, expected " + std::to_string(n_tokens));
  if (v.tokens.size() < 3)
    return make_error(Code::format_error, path + ": llama2.c tokenizer holds " + std::to_string(v.tokens.size()) +
                                              " tokens; at least <unk>, <s>, </s> are expected");
  // llama2.c's export writes BOS and EOS as "\n<s>\n" and "\n</s>\n" (for
  // its printing); the vocabulary calls them <s> and </s>.
  if (v.tokens[1] == "\n<s>\n") v.tokens[1] = "<s>";
  if (v.tokens[2] == "\n</s>\n") v.tokens[2] = "</s>";
  // tokenizer.bin carries no types: llama2.c's export puts <unk>, <s>, </s>
  // at 0, 1, 2 and the byte-fallback pieces as "<0xNN>".
  v.types.assign(v.tokens.size(), TokenType::normal);
  v.types[0] = TokenType::unknown;
  v.types[1] = TokenType::control;
  v.types[2] = TokenType::control;
  for (size_t i = 3; i < v.tokens.size(); ++i) {
    const std::string& t = v.tokens[i];
    auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
    if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && hex(t[3]) && hex(t[4]) && t[5] == '>') v.types[i] = TokenType::byte;
  }
  return v;
}

}  // namespace jielong::text

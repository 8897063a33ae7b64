// Reading a Vocab from GGUF metadata (the tokenizer.ggml.* keys), with the
// defaults and per-family fix-ups llama.cpp applies, and the Tokenizer built
// from it. The metadata comes from io/gguf.hpp, the one GGUF parser.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "jielong/core/status.hpp"
#include "jielong/io/gguf.hpp"
#include "jielong/io/gguf_writer.hpp"
#include "jielong/text/pretokenizer.hpp"
#include "jielong/text/tokenizer.hpp"
#include "jielong/text/vocab.hpp"

namespace jielong::text {

inline Result<Vocab> vocab_from_gguf(const io::GgufFile& file) {
  auto model = file.get_string("tokenizer.ggml.model");
  if (!model.ok()) return model.status();
  VocabKind kind;
  if (*model == "llama") kind = VocabKind::spm;
  else if (*model == "gpt2") kind = VocabKind::bpe;
  else if (*model == "bert") kind = VocabKind::wpm;
  else
    return make_error(Code::unsupported, "tokenizer.ggml.model '" + std::string(*model) +
                                             "' is not supported (expected llama, gpt2 or bert)");
  Vocab v = Vocab::with_defaults(kind);

  auto opt_string = [&](std::string_view key, std::string& out) -> Status {
    if (!file.find(key)) return Status::ok();
    auto s = file.get_string(key);
    if (!s.ok()) return s.status();
    out = std::string(*s);
    return Status::ok();
  };
  JIELONG_TRY(opt_string("general.name", v.name));
  JIELONG_TRY(opt_string("tokenizer.chat_template", v.chat_template));
  if (kind == VocabKind::bpe) {
    v.pre = "default";  // llama.cpp's choice when the key is missing (older conversions)
    JIELONG_TRY(opt_string("tokenizer.ggml.pre", v.pre));
    if (v.pre.empty()) v.pre = "default";
    const PreTokenizerPreset* preset = find_pretokenizer_preset(v.pre);
    if (!preset)
      return make_error(Code::unsupported, "tokenizer.ggml.pre '" + v.pre + "' is not a known BPE pre-tokenizer");
    v.ignore_merges = preset->ignore_merges;
    if (preset->add_bos) v.add_bos = true;
  }

  auto tokens = file.get_array("tokenizer.ggml.tokens");
  if (!tokens.ok()) return tokens.status();
  const size_t n = tokens->size();
  if (n == 0) return make_error(Code::format_error, "tokenizer.ggml.tokens is empty");
  if (n > static_cast<size_t>(INT32_MAX)) return make_error(Code::format_error, "tokenizer.ggml.tokens: too many tokens");
  v.tokens.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto s = tokens->string(i);
    if (!s.ok()) return Status(s.status()).prefix("tokenizer.ggml.tokens");
    v.tokens.emplace_back(*s);
  }

  if (file.find("tokenizer.ggml.scores")) {
    auto scores = file.get_array("tokenizer.ggml.scores");
    if (!scores.ok()) return scores.status();
    if (scores->size() < n)
      return make_error(Code::format_error, "tokenizer.ggml.scores has " + std::to_string(scores->size()) +
                                                " entries for " + std::to_string(n) + " tokens");
    v.scores.resize(n);
    for (size_t i = 0; i < n; ++i) {
      auto f = scores->f32(i);
      if (!f.ok()) return Status(f.status()).prefix("tokenizer.ggml.scores");
      v.scores[i] = *f;
    }
  }
  if (file.find("tokenizer.ggml.token_type")) {
    auto types = file.get_array("tokenizer.ggml.token_type");
    if (!types.ok()) return types.status();
    if (types->size() < n)
      return make_error(Code::format_error, "tokenizer.ggml.token_type has " + std::to_string(types->size()) +
                                                " entries for " + std::to_string(n) + " tokens");
    v.types.resize(n);
    for (size_t i = 0; i < n; ++i) {
      auto t = types->i32(i);
      if (!t.ok()) return Status(t.status()).prefix("tokenizer.ggml.token_type");
      v.types[i] = (*t >= 0 && *t <= 6) ? static_cast<TokenType>(*t) : TokenType::undefined;
    }
  }
  if (kind == VocabKind::bpe) {
    auto merges = file.get_array("tokenizer.ggml.merges");
    if (!merges.ok()) return merges.status();
    v.merges.reserve(merges->size());
    for (size_t i = 0; i < merges->size(); ++i) {
      auto s = merges->string(i);
      if (!s.ok()) return Status(s.status()).prefix("tokenizer.ggml.merges");
      v.merges.emplace_back(*s);
    }
  }

  // Special ids: a key that names a token outside the vocabulary keeps the default.
  auto opt_id = [&](std::string_view key, int32_t& id) -> Status {
    if (!file.find(key)) return Status::ok();
    auto x = file.get_int(key);
    if (!x.ok()) return x.status();
    if (*x >= 0 && static_cast<uint64_t>(*x) < n) id = static_cast<int32_t>(*x);
    return Status::ok();
  };
  JIELONG_TRY(opt_id("tokenizer.ggml.bos_token_id", v.bos_id));
  JIELONG_TRY(opt_id("tokenizer.ggml.eos_token_id", v.eos_id));
  JIELONG_TRY(opt_id("tokenizer.ggml.eot_token_id", v.eot_id));
  JIELONG_TRY(opt_id("tokenizer.ggml.eom_token_id", v.eom_id));
  JIELONG_TRY(opt_id("tokenizer.ggml.unknown_token_id", v.unk_id));
  JIELONG_TRY(opt_id("tokenizer.ggml.seperator_token_id", v.sep_id));  // sic: the key is spelled so
  JIELONG_TRY(opt_id("tokenizer.ggml.padding_token_id", v.pad_id));
  JIELONG_TRY(opt_id("tokenizer.ggml.mask_token_id", v.mask_id));

  auto opt_bool = [&](std::string_view key, bool& b) -> Status {
    if (!file.find(key)) return Status::ok();
    auto x = file.get_bool(key);
    if (!x.ok()) return x.status();
    b = *x;
    return Status::ok();
  };
  JIELONG_TRY(opt_bool("tokenizer.ggml.add_space_prefix", v.add_space_prefix));
  JIELONG_TRY(opt_bool("tokenizer.ggml.add_bos_token", v.add_bos));
  JIELONG_TRY(opt_bool("tokenizer.ggml.add_eos_token", v.add_eos));
  JIELONG_TRY(opt_bool("tokenizer.ggml.add_sep_token", v.add_sep));
  JIELONG_TRY(opt_bool("tokenizer.ggml.normalizer.lowercase", v.lowercase));
  v.strip_accents = v.lowercase;
  JIELONG_TRY(opt_bool("tokenizer.ggml.normalizer.strip_accents", v.strip_accents));
  if (v.add_bos && v.bos_id == kNoToken)
    return make_error(Code::format_error, "tokenizer.ggml.add_bos_token is true, but tokenizer.ggml.bos_token_id is not set");
  return v;
}

// The tokenizer.ggml.* keys of a vocabulary, as vocab_from_gguf reads them
// back (and llama.cpp reads them).
inline void add_vocab_metadata(io::GgufWriter& w, const Vocab& v) {
  switch (v.kind) {
    case VocabKind::spm: w.add_string("tokenizer.ggml.model", "llama"); break;
    case VocabKind::bpe: w.add_string("tokenizer.ggml.model", "gpt2"); break;
    case VocabKind::wpm: w.add_string("tokenizer.ggml.model", "bert"); break;
  }
  if (v.kind == VocabKind::bpe) w.add_string("tokenizer.ggml.pre", v.pre);
  w.add_string_array("tokenizer.ggml.tokens", v.tokens);
  if (!v.scores.empty()) w.add_f32_array("tokenizer.ggml.scores", v.scores);
  if (!v.types.empty()) {
    std::vector<int32_t> types(v.types.size());
    for (size_t i = 0; i < types.size(); ++i) types[i] = static_cast<int32_t>(v.types[i]);
    w.add_i32_array("tokenizer.ggml.token_type", types);
  }
  if (v.kind == VocabKind::bpe) w.add_string_array("tokenizer.ggml.merges", v.merges);
  auto id = [&](std::string_view key, int32_t value) {
    if (value != kNoToken) w.add_u32(key, static_cast<uint32_t>(value));
  };
  id("tokenizer.ggml.bos_token_id", v.bos_id);
  id("tokenizer.ggml.eos_token_id", v.eos_id);
  id("tokenizer.ggml.eot_token_id", v.eot_id);
  id("tokenizer.ggml.unknown_token_id", v.unk_id);
  id("tokenizer.ggml.padding_token_id", v.pad_id);
  w.add_bool("tokenizer.ggml.add_bos_token", v.add_bos);
  w.add_bool("tokenizer.ggml.add_eos_token", v.add_eos);
  if (v.kind == VocabKind::spm) w.add_bool("tokenizer.ggml.add_space_prefix", v.add_space_prefix);
  if (!v.chat_template.empty()) w.add_string("tokenizer.chat_template", v.chat_template);
}

inline Result<Tokenizer> tokenizer_from_gguf(const io::GgufFile& file) {
  auto v = vocab_from_gguf(file);
  if (!v.ok()) return v.status();
  return Tokenizer::create(std::move(*v));
}

inline Result<Tokenizer> Tokenizer::from_gguf(const std::string& path) {
  auto meta = io::GgufFile::open(path);
  if (!meta.ok()) return meta.status();
  auto t = tokenizer_from_gguf(*meta);
  if (!t.ok()) return Status(t.status()).prefix(path);
  return t;
}

}  // namespace jielong::text

// Loading a model file and its tokenizer in one call: GGUF, or a llama2.c
// checkpoint with its tokenizer.bin.
#pragma once

#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "jielong/core/mapped_file.hpp"
#include "jielong/core/status.hpp"
#include "jielong/io/model_file.hpp"
#include "jielong/model/hparams.hpp"
#include "jielong/model/model.hpp"
#include "jielong/text/chat_template.hpp"
#include "jielong/text/gguf_vocab.hpp"
#include "jielong/text/tokenizer.hpp"

namespace jielong::run {

struct LoadedModel {
  std::shared_ptr<const model::Model> model;
  std::shared_ptr<const text::Tokenizer> tokenizer;  // null when none is available
};

struct LoadOptions {
  // Read the weights into memory instead of mapping the file: slower to load
  // (a copy of the file) and not shared with other processes, but on Linux
  // the copy sits in huge pages, which decodes faster (bench/README.md).
  bool no_mmap = false;
  // Keep Q4_0/Q8_0/Q4_K/F32 matrices as the file stores them instead of
  // repacking them into panels (kernels/panels.hpp; done by
  // default where the CPU runs those kernels): for A/B measurements, or to
  // keep the weights shared with other processes through the page cache.
  bool no_repack = false;
  // Where the repacking runs (see model::BindOptions::executor); nullptr: a
  // pool of one thread per core for the duration of the load.
  Executor* executor = nullptr;

  MappedFile::Mode file_mode() const noexcept {
    return no_mmap ? MappedFile::Mode::read_only_copy : MappedFile::Mode::map_or_read;
  }
  model::BindOptions bind_options() const noexcept {
    model::BindOptions b;
    b.panels = b.panels && !no_repack;
    b.executor = executor;
    return b;
  }
};

// model_path: .gguf or a llama2.c v0 .bin. tokenizer_path: a llama2.c
// tokenizer.bin (required for .bin; for GGUF it replaces the file's vocabulary).
inline Result<LoadedModel> load(const std::string& model_path, const std::string& tokenizer_path = {},
                                const LoadOptions& opts = {}) {
  LoadedModel lm;
  JIELONG_ASSIGN_OR_RETURN(std::shared_ptr<const io::ModelFile> file,
                           io::ModelFile::open(model_path, opts.file_mode()));
  JIELONG_ASSIGN_OR_RETURN(const model::HParams hp, model::hparams_from_file(*file));
  // The tokenizer first: binding ends by giving the metadata's pages back.
  const io::GgufFile* gguf = file->gguf();
  if (tokenizer_path.empty() && gguf && gguf->find("tokenizer.ggml.model")) {
    auto t = text::tokenizer_from_gguf(*gguf);
    if (!t.ok()) return Status(t.status()).prefix(model_path);
    lm.tokenizer = std::make_shared<const text::Tokenizer>(std::move(*t));
  }
  const size_t n_vocab = hp.n_vocab;
  if (!tokenizer_path.empty()) {
    auto t = text::Tokenizer::from_llama2c(tokenizer_path, static_cast<int32_t>(n_vocab));
    if (!t.ok()) return t.status();
    lm.tokenizer = std::make_shared<const text::Tokenizer>(std::move(*t));
  }
  if (lm.tokenizer && static_cast<size_t>(lm.tokenizer->n_tokens()) > n_vocab)
    return make_error(Code::format_error, model_path + ": the tokenizer has " + std::to_string(lm.tokenizer->n_tokens()) +
                                              " tokens but the model's vocabulary is " + std::to_string(n_vocab));
  JIELONG_ASSIGN_OR_RETURN(lm.model,
                           model::Model::bind<io::ModelFile>(file, hp, model_path, opts.bind_options()));
  return lm;
}

// One user message in the model's chat template, ending where the assistant's
// answer begins.
inline Result<std::string> apply_chat_template(const text::Tokenizer& tok, std::string_view user) {
  const text::ChatTemplate t = text::detect_chat_template(tok.vocab().chat_template);
  if (t == text::ChatTemplate::unknown)
    return make_error(Code::unsupported, "chat template: the model has none this library recognises");
  const text::ChatMessage msg{"user", user};
  return text::render_chat(t, std::span<const text::ChatMessage>(&msg, 1), true);
}

}  // namespace jielong::run

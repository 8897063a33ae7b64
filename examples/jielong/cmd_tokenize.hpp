// jielong tokenize: the ids of a prompt, printed as llama.cpp's llama-tokenize
// prints them (one "id -> 'piece'" line per token, or "[1, 2, 3]" with --ids).
#pragma once

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "args.hpp"
#include "jielong/text/gguf_vocab.hpp"
#include "jielong/text/tokenizer.hpp"

namespace jielong::cli {

// llama.cpp's escapes: \n \r \t \' \" \\ and \xNN; any other backslash stays.
inline std::string process_escapes(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '\\' || i + 1 >= in.size()) {
      out.push_back(in[i]);
      continue;
    }
    const char e = in[++i];
    switch (e) {
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case '\'': out.push_back('\''); break;
      case '"': out.push_back('"'); break;
      case '\\': out.push_back('\\'); break;
      case 'x':
        if (i + 2 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
          out.push_back(static_cast<char>(std::strtol(std::string(in.substr(i + 1, 2)).c_str(), nullptr, 16)));
          i += 2;
          break;
        }
        [[fallthrough]];
      default:
        out.push_back('\\');
        out.push_back(e);
    }
  }
  return out;
}

inline int cmd_tokenize(Args& args) {
  std::string model, llama2c, prompt, prompt_file;
  bool ids = false, no_bos = false, no_parse_special = false, no_escape = false, show_count = false;
  Flags flags("tokenize", "-m MODEL.gguf -p TEXT [options]",
              "Print the token ids of a text, as llama.cpp's llama-tokenize does.");
  flags.add_string("-m,--model", &model, "GGUF model (or vocabulary-only GGUF) whose tokenizer to use");
  flags.add_string("-z,--tokenizer", &llama2c, "llama2.c tokenizer.bin instead of a GGUF model");
  flags.add_string("-p,--prompt", &prompt, "the text");
  flags.add_string("-f,--file", &prompt_file, "read the text from a file");
  flags.add_switch("--ids", &ids, "print only the ids, as [1, 2, 3]");
  flags.add_switch("--no-bos", &no_bos, "do not add the BOS token even if the model asks for it");
  flags.add_switch("--no-parse-special", &no_parse_special, "treat control tokens written in the text as text");
  flags.add_switch("--no-escape", &no_escape, "do not process \\n \\t \\r \\\\ ... escapes in the prompt");
  flags.add_switch("--show-count", &show_count, "print the number of tokens at the end");
  if (auto rc = flags.parse(args)) return *rc;
  if (model.empty() == llama2c.empty()) {
    std::fprintf(stderr, "jielong tokenize: give exactly one of -m MODEL.gguf or -z TOKENIZER.bin\n");
    return 1;
  }
  if (!prompt_file.empty()) {
    if (!prompt.empty()) {
      std::fprintf(stderr, "jielong tokenize: give -p or -f, not both\n");
      return 1;
    }
    std::ifstream in(prompt_file, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "jielong tokenize: cannot read %s\n", prompt_file.c_str());
      return 1;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    prompt = ss.str();
  }
  if (!no_escape) prompt = process_escapes(prompt);

  Result<text::Tokenizer> tok = Status(Code::internal, "unset");
  if (!llama2c.empty()) {
    tok = text::Tokenizer::from_llama2c(llama2c);
  } else {
    tok = text::Tokenizer::from_gguf(model);
  }
  if (!tok.ok()) {
    std::fprintf(stderr, "jielong tokenize: %s\n", tok.status().to_string().c_str());
    return 1;
  }
  auto tokens = tok->encode(prompt, {.add_bos = !no_bos, .parse_special = !no_parse_special});
  if (!tokens.ok()) {
    std::fprintf(stderr, "jielong tokenize: %s\n", tokens.status().to_string().c_str());
    return 1;
  }
  if (ids) {
    std::printf("[");
    for (size_t i = 0; i < tokens->size(); ++i) std::printf("%s%d", i ? ", " : "", (*tokens)[i]);
    std::printf("]\n");
  } else {
    for (int32_t id : *tokens) {
      const std::string_view piece = tok->token_piece(id);
      std::printf("%6d -> '%.*s'\n", id, static_cast<int>(piece.size()), piece.data());
    }
  }
  if (show_count) std::printf("Total number of tokens: %zu\n", tokens->size());
  return 0;
}

}  // namespace jielong::cli

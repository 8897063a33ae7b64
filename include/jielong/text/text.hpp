// The text layer: tokenizers (SPM, byte-level BPE, WordPiece), the streaming
// detokenizer and chat templates. gguf_vocab.hpp (reading a vocabulary from
// GGUF) is included by jielong.hpp with the io layer.
#pragma once

#include "jielong/text/chat_template.hpp"
#include "jielong/text/detokenizer.hpp"
#include "jielong/text/pretokenizer.hpp"
#include "jielong/text/regex.hpp"
#include "jielong/text/tokenizer.hpp"
#include "jielong/text/unicode.hpp"
#include "jielong/text/vocab.hpp"

// The text layer's tests: tokenizers, detokenizer, Unicode, chat templates.
// One program, one translation unit: the headers are parsed and their
// templates instantiated once for all these files. ctest and meson run each
// file's cases as its own test (doctest's --source-file); see CMakeLists.txt.

#include "test_text_chat.cpp"
#include "test_text_detokenizer.cpp"
#include "test_text_unicode.cpp"
#include "test_tokenizer_gguf.cpp"
#include "test_tokenizer_llama2c.cpp"

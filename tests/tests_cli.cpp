// The jielong command's tests.
// One program, one translation unit: the headers are parsed and their
// templates instantiated once for all these files. ctest and meson run each
// file's cases as its own test (doctest's --source-file); see CMakeLists.txt.

#include "test_cli_args.cpp"
#include "test_model_cli.cpp"
#include "test_chat_cli.cpp"

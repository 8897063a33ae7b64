// The io layer's tests: GGUF, quantization, synthetic models, hostile files.
// One program, one translation unit: the headers are parsed and their
// templates instantiated once for all these files. ctest and meson run each
// file's cases as its own test (doctest's --source-file); see CMakeLists.txt.

#include "test_io_gguf.cpp"
#include "test_io_quantize.cpp"
#include "test_io_synth.cpp"
#include "test_hostile.cpp"
#include "test_hostile_values.cpp"

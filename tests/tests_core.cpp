// The core layer's tests: status, half floats, mapped files, executors.
// One program, one translation unit: the headers are parsed and their
// templates instantiated once for all these files. ctest and meson run each
// file's cases as its own test (doctest's --source-file); see CMakeLists.txt.

#include "test_core.cpp"
#include "test_half.cpp"
#include "test_mapped_file.cpp"
#include "test_executor.cpp"
#include "test_concurrency.cpp"

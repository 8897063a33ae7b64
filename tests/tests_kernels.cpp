// The kernels' tests: every backend against Scalar, the quantized formats.
// One program, one translation unit: the headers are parsed and their
// templates instantiated once for all these files. ctest and meson run each
// file's cases as its own test (doctest's --source-file); see CMakeLists.txt.

#include "test_kernels.cpp"
#include "test_kernels_gemm.cpp"
#include "test_kernels_group_q8.cpp"
#include "test_kernels_panels.cpp"
#include "test_kernels_small_heads.cpp"
#include "test_kernels_tiles.cpp"
#include "test_quants.cpp"

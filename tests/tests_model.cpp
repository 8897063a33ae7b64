// The model layer's tests: hyperparameters, the forward pass, the references.
// One program, one translation unit: the headers are parsed and their
// templates instantiated once for all these files. ctest and meson run each
// file's cases as its own test (doctest's --source-file); see CMakeLists.txt.

#include "test_hparams.cpp"
#include "test_model.cpp"
#include "test_reference.cpp"
#include "test_determinism.cpp"

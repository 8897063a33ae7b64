// The train layer's tests: BPE, the data pipeline, the training ops and loop.
// One program, one translation unit: the headers are parsed and their
// templates instantiated once for all these files. ctest and meson run each
// file's cases as its own test (doctest's --source-file); see CMakeLists.txt.

#include "test_train_bpe.cpp"
#include "test_train_data.cpp"
#include "test_train_ops.cpp"
#include "test_train_model.cpp"
#include "test_train_torch.cpp"
#include "test_train_trainer.cpp"
#include "test_train_instruct.cpp"
#include "test_train_arith.cpp"

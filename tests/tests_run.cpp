// The run layer's tests: sampling and sessions.
// One program, one translation unit: the headers are parsed and their
// templates instantiated once for all these files. ctest and meson run each
// file's cases as its own test (doctest's --source-file); see CMakeLists.txt.

#include "test_sample.cpp"
#include "test_session.cpp"
#include "test_session_games.cpp"
#include "test_models_shipped.cpp"

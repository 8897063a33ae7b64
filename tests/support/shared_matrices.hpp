// The matrices of the shared GGUF models, for kernel tests that check real
// tensors: each 2-D tensor whose type `keep` accepts, as a row-major
// WeightView, with its name captured for failure messages. A model not
// present is counted as skipped.
#pragma once

#include <initializer_list>
#include <string>

#include <doctest/doctest.h>

#include "jielong/core/dtype.hpp"
#include "jielong/io/gguf.hpp"
#include "jielong/kernels/backend.hpp"
#include "support/shared.hpp"

namespace jielong::test {

template <class Keep, class Fn>
void for_each_shared_matrix(std::initializer_list<const char*> models, Keep keep, Fn fn) {
  for (const char* model : models) {
    const auto path = shared_file(model);
    if (!path) continue;
    auto f = io::GgufFile::open(*path);
    REQUIRE_MESSAGE(f.ok(), f.status().to_string());
    for (const auto& t : f->tensors()) {
      if (t.n_dims != 2 || !keep(t.type)) continue;
      const std::string name(t.name);
      CAPTURE(name);
      const size_t cols = t.ne[0], rows = t.ne[1];
      fn(kernels::WeightView{t.type, t.data, rows, cols, row_bytes(t.type, cols)});
    }
  }
}

}  // namespace jielong::test

// The whole forward pass on the Xsimd and Highway backends in a translation
// unit built for x86-64-v3 (AVX2, FMA, F16C; no AVX-512; tests/CMakeLists.txt
// and tests/meson.build set the flag). A backend takes its instruction set
// from its tag alone, so this file compiles only if no header reaches for
// AVX-512 by itself, and the logits must match Scalar's.
#if defined(__x86_64__) && (!defined(__AVX2__) || defined(__AVX512F__))
#error "test_backends_x86_64_v3 is built with -march=x86-64-v3: AVX2 and no AVX-512"
#endif

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "jielong/run/load.hpp"
#include "jielong/run/session.hpp"
#include "support/shared.hpp"
#include "test_model_fixture.hpp"

using namespace jielong;
using jielong::test::all_logits;
using jielong::test::kIds;
using jielong::test::max_abs_diff;
using jielong::test::SynthFile;
using jielong::test::SynthSpec;

namespace {
constexpr run::Backend kVector[] = {run::Backend::xsimd, run::Backend::highway};
}  // namespace

TEST_CASE("this build has no Avx512Vnni: Backend::best is Highway") {
  CHECK(!kernels::vnni_available());
  CHECK(!kernels::panels_preferred());
  auto file = std::make_shared<SynthFile>(SynthSpec{});
  const auto m = jielong::test::bind_synth(file);
  const auto best = all_logits(m, kIds, run::Backend::best), hwy = all_logits(m, kIds, run::Backend::highway);
  CHECK(std::memcmp(best.data(), hwy.data(), best.size() * sizeof(float)) == 0);
}

TEST_CASE("Xsimd and Highway forward passes match Scalar and the equations, every weight type") {
  for (model::Arch arch : {model::Arch::llama, model::Arch::qwen2})
    for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                    DType::Q8_0, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
      CAPTURE(dtype_name(t));
      CAPTURE(std::string(model::arch_name(arch)));
      SynthSpec spec;
      spec.arch = arch;
      spec.matrix_type = t;
      spec.n_embd = 256;  // k-quant blocks need multiples of 256
      spec.n_ff = 256;
      auto file = std::make_shared<SynthFile>(spec);
      const auto m = jielong::test::bind_synth(file);
      const auto want = jielong::test::naive_forward(*file, kIds);
      for (model::KvType kv : {model::KvType::f32, model::KvType::f16}) {
        const auto scalar = all_logits(m, kIds, run::Backend::scalar, kv);
        for (run::Backend b : kVector) {
          CAPTURE(std::string(run::backend_name(b)));
          CAPTURE(std::string(model::kv_type_name(kv)));
          const auto got = all_logits(m, kIds, b, kv);
          // Only float summation order differs (~1e-6 on logits of
          // magnitude ~3). With an f16 cache such a difference may move q or
          // an attention weight by one half-float step (2^-11 relative);
          // with quantized weights it may flip the rounding of one 8-bit
          // activation of the next matrix, which moves later logits by a few
          // hundredths (test_model holds Best to the equations within 0.1
          // for the same reason).
          const bool quantized = t != DType::F32 && t != DType::F16 && t != DType::BF16;
          CHECK(max_abs_diff(got, scalar) < (quantized ? 0.1f : kv == model::KvType::f32 ? 1e-3f : 1e-2f));
          // Float weights against the equations (double accumulation): the
          // bounds test_model holds Scalar and Best to.
          if (t == DType::F32) CHECK(max_abs_diff(got, want) < (kv == model::KvType::f32 ? 1e-4 : 2e-2));
        }
      }
    }
}

TEST_CASE("stories260K (head_dim 8): Xsimd and Highway logits match Scalar") {
  const auto path = jielong::test::shared_file("models/stories260K/stories260K.gguf");
  if (!path) return;
  auto lm = run::load(*path);
  REQUIRE_MESSAGE(lm.ok(), lm.status().to_string());
  // The small-head attention sums in the plain loops' order on every
  // backend; the rest differs from Scalar by summation order only: 2e-3,
  // what test_reference allows this model against llama.cpp, and with an
  // f16 cache 1e-2, as for the synthetic models above.
  const std::vector<int32_t> ids = {1, 403, 407, 261, 378, 285, 268, 292, 382, 302, 430, 267, 453, 280, 384, 259};
  for (model::KvType kv : {model::KvType::f32, model::KvType::f16}) {
    const auto scalar = all_logits(lm->model, ids, run::Backend::scalar, kv, 5);
    for (run::Backend b : kVector) {
      CAPTURE(std::string(run::backend_name(b)));
      CAPTURE(std::string(model::kv_type_name(kv)));
      CHECK(max_abs_diff(all_logits(lm->model, ids, b, kv, 5), scalar) < (kv == model::KvType::f32 ? 2e-3f : 1e-2f));
    }
  }
}

// jielong info MODEL: what a model file holds and what it needs to run.
#pragma once

#include <cstdio>
#include <map>
#include <string>

#include "args.hpp"
#include "jielong/io/model_file.hpp"
#include "jielong/model/hparams.hpp"
#include "jielong/model/memory_plan.hpp"

namespace jielong::cli {

inline int cmd_info(Args& args) {
  Flags flags("info", "MODEL [--ctx N] [--kv-type f32|f16] [--tensors]",
              "Print a model's format, architecture, hyper-parameters, tensor types and the memory it needs.");
  std::string path, kv_type = "f16";
  int64_t n_ctx = 0;
  bool list_tensors = false;
  flags.add_positional("MODEL", &path, "a .gguf file or a llama2.c checkpoint");
  flags.add_int("-c,--ctx", &n_ctx, "context length for the memory estimate (default: the model's)", 1, 1 << 26);
  flags.add_string("--kv-type", &kv_type, "KV cache element type for the estimate: f32 or f16 (default f16)");
  flags.add_switch("--tensors", &list_tensors, "list every tensor");
  if (auto rc = flags.parse(args)) return *rc;
  const auto kv = parse_dtype(kv_type);
  if (!kv || (*kv != DType::F32 && *kv != DType::F16)) {
    std::fprintf(stderr, "jielong info: --kv-type must be f32 or f16, not '%s'\n", kv_type.c_str());
    return 1;
  }
  auto file = io::ModelFile::open(path);
  if (!file.ok()) {
    std::fprintf(stderr, "jielong info: %s\n", file.status().to_string().c_str());
    return 1;
  }
  const io::ModelFile& f = **file;
  const auto hp_read = model::hparams_from_file(f);
  if (!hp_read.ok()) {
    std::fprintf(stderr, "jielong info: %s\n", hp_read.status().to_string().c_str());
    return 1;
  }
  const model::HParams& hp = *hp_read;
  std::printf("file:            %s\n", path.c_str());
  std::printf("format:          %s", io::format_name(f.format()));
  if (f.gguf()) std::printf(" v%u", f.gguf()->version());
  if (f.format() == io::ModelFormat::llama2c_q8) std::printf(", group size %u", f.llama2c_group_size());
  std::printf("\n");
  std::printf("architecture:    %s%s%s\n", model::arch_name(hp.arch), hp.name.empty() ? "" : "  name: ",
              hp.name.c_str());
  std::printf("vocabulary:      %zu\n", hp.n_vocab);
  std::printf("embedding:       %zu\n", hp.n_embd);
  std::printf("feed-forward:    %zu\n", hp.n_ff);
  std::printf("layers:          %zu\n", hp.n_layers);
  std::printf("heads:           %zu (kv %zu, head dim %zu)\n", hp.n_heads, hp.n_kv_heads, hp.head_dim);
  std::printf("context (train): %zu\n", hp.n_ctx_train);
  std::printf("rms norm eps:    %g\n", static_cast<double>(hp.rms_norm_eps));
  const char* scaling = hp.rope.scaling == model::RopeScaling::linear   ? "linear"
                        : hp.rope.scaling == model::RopeScaling::llama3 ? "llama3"
                                                                        : "none";
  std::printf("rope:            base %g, dims %zu, %s, scaling %s", static_cast<double>(hp.rope.freq_base),
              hp.rope_dim, hp.rope_neox ? "neox" : "normal", scaling);
  if (hp.rope.scaling != model::RopeScaling::none) std::printf(" x%g", static_cast<double>(hp.rope.factor));
  std::printf("\n");
  std::printf("classifier:      %s\n", hp.tied_embeddings ? "tied to token_embd" : "separate (output.weight)");
  std::printf("qkv bias:        %s\n", hp.qkv_bias ? "yes" : "no");

  std::map<std::string, std::pair<size_t, size_t>> by_type;  // type -> (count, bytes)
  size_t total = 0;
  for (const auto& t : f.tensors()) {
    auto& e = by_type[std::string(dtype_name(t.type))];
    ++e.first;
    e.second += t.n_bytes;
    total += t.n_bytes;
  }
  std::printf("tensors:         %zu, %.2f MiB\n", f.tensors().size(), static_cast<double>(total) / (1 << 20));
  for (const auto& [type, e] : by_type)
    std::printf("  %-6s %5zu tensors %12zu bytes\n", type.c_str(), e.first, e.second);
  if (list_tensors)
    for (const auto& t : f.tensors()) {
      std::printf("  %-32.*s %-5s [", static_cast<int>(t.name.size()), t.name.data(),
                  std::string(dtype_name(t.type)).c_str());
      for (uint32_t d = 0; d < t.n_dims; ++d)
        std::printf("%s%llu", d ? ", " : "", static_cast<unsigned long long>(t.ne[d]));
      std::printf("] %zu bytes\n", t.n_bytes);
    }

  const size_t ctx = n_ctx > 0 ? static_cast<size_t>(n_ctx) : hp.n_ctx_train;
  const model::MemoryPlan plan = model::plan_memory(f, hp, ctx, *kv);
  auto mib = [](size_t b) { return static_cast<double>(b) / (1 << 20); };
  std::printf("memory at context %zu (kv %s):\n", ctx, kv_type.c_str());
  std::printf("  weights        %10.2f MiB%s\n", mib(plan.weight_bytes),
              f.format() == io::ModelFormat::llama2c_q8 ? " (dequantized to f32 in RAM)" : " (mapped)");
  std::printf("  kv cache       %10.2f MiB\n", mib(plan.kv_cache_bytes));
  std::printf("  activations    %10.2f MiB\n", mib(plan.activation_bytes + plan.logits_bytes));
  std::printf("  total          %10.2f MiB\n", mib(plan.total_bytes()));
  return 0;
}

}  // namespace jielong::cli

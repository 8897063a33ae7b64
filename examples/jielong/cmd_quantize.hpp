// jielong quantize IN.gguf OUT.gguf TYPE: requantize a model's weights.
#pragma once

#include <cstdio>
#include <string>

#include "args.hpp"
#include "jielong/io/gguf.hpp"
#include "jielong/io/quantize.hpp"

namespace jielong::cli {

inline int cmd_quantize(Args& args) {
  Flags flags("quantize", "IN.gguf OUT.gguf TYPE",
              "Write a copy of a GGUF model with its weights quantized. TYPE: q8_0 q4_0 q4_1 q5_0 q5_1 q4_k q4_k_s "
              "q4_k_m q5_k q5_k_s q5_k_m q6_k f16 bf16 f32 (tensor types per mix as llama.cpp's quantize chooses "
              "them).");
  std::string in_path, out_path, type;
  flags.add_positional("IN.gguf", &in_path, "the model to read");
  flags.add_positional("OUT.gguf", &out_path, "the file to write");
  flags.add_positional("TYPE", &type, "the quantization type or mix");
  if (auto rc = flags.parse(args)) return *rc;
  const io::QuantMix* mix = io::find_quant_mix(type);
  if (!mix) {
    std::fprintf(stderr, "jielong quantize: unknown type '%s' (see 'jielong quantize --help')\n", type.c_str());
    return 1;
  }
  if (in_path == out_path) {
    std::fprintf(stderr, "jielong quantize: OUT.gguf must differ from IN.gguf\n");
    return 1;
  }
  auto in = io::GgufFile::open(in_path);
  if (!in.ok()) {
    std::fprintf(stderr, "jielong quantize: %s\n", in.status().to_string().c_str());
    return 1;
  }
  if (Status st = io::quantize_model(*in, out_path, *mix); !st.is_ok()) {
    std::fprintf(stderr, "jielong quantize: %s\n", st.to_string().c_str());
    return 1;
  }
  std::printf("wrote %s (%s)\n", out_path.c_str(), std::string(mix->name).c_str());
  return 0;
}

}  // namespace jielong::cli

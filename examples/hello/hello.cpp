// The smallest host program: load a model, open a session, stream a continuation.
// usage: hello MODEL.gguf [PROMPT]
#include <cstdio>
#include <jielong/jielong.hpp>

int main(int argc, char** argv) {
  if (argc < 2) return std::fprintf(stderr, "usage: hello MODEL.gguf [PROMPT]\n"), 1;
  auto loaded = jielong::run::load(argv[1]);                       // mmap the weights, read the tokenizer
  if (!loaded.ok()) return std::fprintf(stderr, "%s\n", loaded.status().message().c_str()), 1;
  if (!loaded->tokenizer) return std::fprintf(stderr, "%s: no tokenizer in the file\n", argv[1]), 1;
  jielong::run::SessionOptions opts;                               // greedy sampling, 1 thread
  opts.n_ctx = 256;
  auto session = jielong::run::Session::create(loaded->model, opts);  // KV cache sized once
  if (!session.ok()) return std::fprintf(stderr, "%s\n", session.status().message().c_str()), 1;
  jielong::run::GenerateParams params;
  params.max_tokens = 32;
  auto result = jielong::run::generate(*session, *loaded->tokenizer, argc > 2 ? argv[2] : "Once upon a time", params,
                                       [](std::string_view piece) { return std::fwrite(piece.data(), 1, piece.size(), stdout), true; });
  std::printf("\n");
  if (!result.ok()) return std::fprintf(stderr, "%s\n", result.status().message().c_str()), 1;
  return 0;
}

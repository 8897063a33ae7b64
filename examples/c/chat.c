/* A C99 program using jielong through its C API: load a model, generate a
 * continuation of a prompt with a streaming callback, then save the session,
 * restore it into a second session and show both continue alike.
 *
 *   chat MODEL [TOKENIZER] [PROMPT]
 *
 * MODEL: a .gguf (jielong synth makes one) or a llama2.c .bin with its
 * tokenizer.bin. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jielong/jielong.h"

static int print_piece(void* user, const char* piece, size_t n) {
  (void)user;
  fwrite(piece, 1, n, stdout);
  fflush(stdout);
  return 0; /* 0: go on */
}

static int die(const char* what, jl_status st) {
  fprintf(stderr, "%s: %s: %s\n", what, jl_status_name(st), jl_last_error());
  return 1;
}

int main(int argc, char** argv) {
  const char* model_path;
  const char* tok_path = NULL;
  const char* prompt = "Once upon a time";
  jl_model* model = NULL;
  jl_session* a = NULL;
  jl_session* b = NULL;
  jl_session_params params;
  jl_status st;
  size_t n = 0, size = 0, i;
  void* saved;
  int32_t ta, tb;
  int same = 1;
  uint64_t plan = 0;

  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL [TOKENIZER] [PROMPT]\n", argv[0]);
    return 1;
  }
  model_path = argv[1];
  if (argc > 2 && argv[2][0]) tok_path = argv[2];
  if (argc > 3) prompt = argv[3];

  if ((st = jl_memory_plan(model_path, 256, 0, &plan)) != JL_OK) return die("jl_memory_plan", st);
  printf("jielong %s; the model needs %.1f MiB at a context of 256\n", jl_version(), (double)plan / 1048576.0);
  if ((st = jl_model_load(model_path, tok_path, &model)) != JL_OK) return die("jl_model_load", st);

  params = jl_session_default_params();
  params.n_ctx = 256;
  params.temperature = 0.8f;
  params.seed = 42;
  if ((st = jl_session_new(model, &params, &a)) != JL_OK) return die("jl_session_new", st);

  printf("%s", prompt);
  if ((st = jl_generate(a, prompt, 32, print_piece, NULL, &n)) != JL_OK) return die("jl_generate", st);
  printf("\n[%zu tokens generated, position %zu]\n", n, jl_session_position(a));

  /* Save into memory, restore into a second session, continue both. */
  if ((st = jl_session_save(a, NULL, 0, &size)) != JL_OK) return die("jl_session_save", st);
  saved = malloc(size);
  if (!saved) return 1;
  if ((st = jl_session_save(a, saved, size, &size)) != JL_OK) return die("jl_session_save", st);
  if ((st = jl_session_new(model, &params, &b)) != JL_OK) return die("jl_session_new", st);
  if ((st = jl_session_load(b, saved, size)) != JL_OK) return die("jl_session_load", st);
  free(saved);
  for (i = 0; i < 8 && jl_session_position(a) < jl_session_capacity(a); ++i) {
    if ((st = jl_step(a, &ta)) != JL_OK) return die("jl_step", st);
    if ((st = jl_step(b, &tb)) != JL_OK) return die("jl_step", st);
    if (ta != tb) same = 0;
  }
  printf("saved %zu bytes; the restored session continues %s\n", size, same ? "identically" : "DIFFERENTLY");

  jl_session_free(b);
  jl_session_free(a);
  jl_model_free(model);
  return same ? 0 : 1;
}

/* jielong C API (C99): load a model, run sessions, tokenize, step, generate
 * with a callback, time-sliced advance, cancel, save/load. For C hosts and
 * for FFI from C#, GDScript/GDExtension, Python ctypes, Rust.
 *
 * Header-only: exactly one C++20 translation unit of the program defines
 * JIELONG_IMPLEMENTATION before including this header; it compiles the
 * implementation (include/jielong/c_api.hpp) with C linkage. Every other
 * file, C or C++, includes it plainly.
 *
 * Conventions: functions return jl_status (JL_OK = 0); on failure
 * jl_last_error() describes it (per thread, valid until the next failing call
 * on that thread). Handles are opaque; NULL handles are JL_INVALID_ARGUMENT.
 * A model may be shared by many sessions on many threads; one session is
 * used by one thread at a time, except jl_cancel(), callable from any thread.
 * Nothing aborts or throws across this boundary. */
#ifndef JIELONG_H
#define JIELONG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum jl_status {
  JL_OK = 0,
  JL_INVALID_ARGUMENT = 1,
  JL_IO_ERROR = 2,
  JL_FORMAT_ERROR = 3,
  JL_UNSUPPORTED = 4,
  JL_OUT_OF_RANGE = 5,
  JL_OUT_OF_MEMORY = 6,
  JL_CANCELLED = 7,
  JL_INTERNAL = 8
} jl_status;

typedef struct jl_model jl_model;     /* weights + tokenizer, immutable */
typedef struct jl_session jl_session; /* one sequence: KV cache, sampler */

/* "0.1.0" */
const char* jl_version(void);
/* Message of the last failing call on this thread ("" if none). */
const char* jl_last_error(void);
const char* jl_status_name(jl_status s);

/* ---- Models ---- */

/* path: .gguf, or a llama2.c .bin with tokenizer_path (a tokenizer.bin);
 * tokenizer_path may be NULL for GGUF. */
jl_status jl_model_load(const char* path, const char* tokenizer_path, jl_model** out);
/* Flags of jl_model_load_ex. */
enum {
  /* Read the weights into memory (huge pages where the system allows)
   * instead of mapping the file: slower to load, faster to decode. */
  JL_LOAD_NO_MMAP = 1,
  /* Keep Q4_0/Q8_0/Q4_K/F32 weights as the file stores them instead of
   * repacking them at load for the panel kernels (slower; the file's pages stay
   * shared with other processes). */
  JL_LOAD_NO_REPACK = 2
};
/* jl_model_load with flags (JL_LOAD_*; unknown bits are JL_INVALID_ARGUMENT). */
jl_status jl_model_load_ex(const char* path, const char* tokenizer_path, uint32_t flags, jl_model** out);
void jl_model_free(jl_model* model);
int32_t jl_model_n_vocab(const jl_model* model);
int32_t jl_model_n_ctx_train(const jl_model* model);
int32_t jl_model_bos(const jl_model* model); /* -1 when none */
int32_t jl_model_eos(const jl_model* model); /* -1 when none */
/* 1 if `token` ends a generation (EOS, EOT...). */
int jl_model_is_eog(const jl_model* model, int32_t token);

/* RAM a model file needs at a context of n_ctx (0: its training context),
 * computed from its header without loading it. */
jl_status jl_memory_plan(const char* path, uint32_t n_ctx, int kv_f16, uint64_t* total_bytes);

/* ---- Text ---- */

/* Writes up to `capacity` ids; *n_tokens receives the number the text needs
 * (JL_OUT_OF_RANGE when it exceeds capacity: call again with more room). */
jl_status jl_tokenize(const jl_model* model, const char* text, int add_bos, int32_t* tokens, size_t capacity,
                      size_t* n_tokens);
/* The bytes of one token (not NUL-terminated; *n_bytes is their count;
 * JL_OUT_OF_RANGE when they exceed capacity). */
jl_status jl_token_to_piece(const jl_model* model, int32_t token, char* buf, size_t capacity, size_t* n_bytes);

/* ---- Sessions ---- */

typedef struct jl_session_params {
  uint32_t n_ctx;     /* 0: the model's training context */
  uint32_t n_batch;   /* prompt tokens per forward pass */
  uint32_t n_threads; /* threads of the session's own pool (1: the calling thread only) */
  int kv_f16;         /* 1: f16 KV cache (half the memory) */
  float temperature;  /* <= 0: greedy */
  int32_t top_k;
  float top_p;
  float min_p;
  float repeat_penalty;
  int32_t penalty_last_n;
  uint64_t seed;
} jl_session_params;

jl_session_params jl_session_default_params(void);
jl_status jl_session_new(const jl_model* model, const jl_session_params* params, jl_session** out);
void jl_session_free(jl_session* session);

size_t jl_session_position(const jl_session* session); /* tokens in the cache */
size_t jl_session_capacity(const jl_session* session);
/* Logits of the last token ([n_vocab]); NULL before any token. */
const float* jl_session_logits(const jl_session* session, size_t* n_vocab);

jl_status jl_prefill(jl_session* session, const int32_t* tokens, size_t n_tokens);
/* Samples the next token, appends it, stores it in *token. */
jl_status jl_step(jl_session* session, int32_t* token);
jl_status jl_rewind(jl_session* session, size_t n_tokens);

/* Called with each piece of generated text; return nonzero to stop. */
typedef int (*jl_piece_callback)(void* user, const char* piece, size_t n_bytes);
/* Tokenizes and prefills `prompt`, then generates up to max_tokens, stopping
 * at end-of-generation; *n_generated (may be NULL) receives the count. */
jl_status jl_generate(jl_session* session, const char* prompt, size_t max_tokens, jl_piece_callback callback,
                      void* user, size_t* n_generated);

/* Time-sliced work: queue a prompt and n_generate tokens (stop: a token that
 * ends generation, or -1), then call jl_advance once per frame. */
jl_status jl_queue(jl_session* session, const int32_t* prompt, size_t n_prompt, size_t n_generate, int32_t stop);
typedef struct jl_advance_result {
  size_t prompt_tokens; /* prompt tokens that entered the cache */
  size_t generated;     /* tokens appended (the last ones of the session) */
  int stopped;          /* the stop token came */
  int done;             /* the queue is empty */
} jl_advance_result;
jl_status jl_advance(jl_session* session, uint64_t budget_ns, jl_advance_result* result);
/* The token at `position` of the sequence (-1 when out of range). */
int32_t jl_session_token(const jl_session* session, size_t position);

/* From any thread: the running (else the next) prefill/step/advance/generate
 * returns JL_CANCELLED and the session is rewound to a consistent position. */
void jl_cancel(jl_session* session);

/* Save/load the session (KV cache, tokens, logits, sampler RNG and penalty
 * window). With buf == NULL, *size receives the bytes needed. */
jl_status jl_session_save(const jl_session* session, void* buf, size_t capacity, size_t* size);
jl_status jl_session_load(jl_session* session, const void* buf, size_t size);
jl_status jl_session_save_file(const jl_session* session, const char* path);
jl_status jl_session_load_file(jl_session* session, const char* path);

#ifdef __cplusplus
}
#endif

#if defined(JIELONG_IMPLEMENTATION) && defined(__cplusplus)
#include "jielong/c_api.hpp"
#endif

#endif /* JIELONG_H */

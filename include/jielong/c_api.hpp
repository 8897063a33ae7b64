// The implementation of the C API declared in jielong.h. Compiled in the one
// C++ translation unit that defines JIELONG_IMPLEMENTATION before including
// jielong.h; the functions have C linkage and external definitions.
#pragma once

#include <chrono>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "jielong/config.hpp"
#include "jielong/io/model_file.hpp"
#include "jielong/jielong.h"
#include "jielong/model/memory_plan.hpp"
#include "jielong/run/generate.hpp"
#include "jielong/run/load.hpp"
#include "jielong/run/session.hpp"
#include "jielong/run/session_io.hpp"
#include "jielong/text/detokenizer.hpp"

struct jl_model {
  jielong::run::LoadedModel lm;
};

struct jl_session {
  std::shared_ptr<const jielong::text::Tokenizer> tokenizer;  // may be null
  jielong::run::Session s;
};

namespace jielong::capi {

inline std::string& last_error() {
  thread_local std::string msg;
  return msg;
}

inline jl_status fail(const Status& st) {
  last_error() = st.to_string();
  return static_cast<jl_status>(static_cast<int>(st.code()));
}

inline jl_status fail(Code c, const char* msg) { return fail(make_error(c, msg)); }

inline jl_status check(const Status& st) { return st.is_ok() ? JL_OK : fail(st); }

}  // namespace jielong::capi

extern "C" {

const char* jl_version(void) { return JIELONG_VERSION_STRING; }

const char* jl_last_error(void) { return jielong::capi::last_error().c_str(); }

const char* jl_status_name(jl_status s) {
  switch (s) {
    case JL_OK: return "ok";
    case JL_INVALID_ARGUMENT: return "invalid_argument";
    case JL_IO_ERROR: return "io_error";
    case JL_FORMAT_ERROR: return "format_error";
    case JL_UNSUPPORTED: return "unsupported";
    case JL_OUT_OF_RANGE: return "out_of_range";
    case JL_OUT_OF_MEMORY: return "out_of_memory";
    case JL_CANCELLED: return "cancelled";
    case JL_INTERNAL: return "internal";
  }
  return "unknown";
}

jl_status jl_model_load(const char* path, const char* tokenizer_path, jl_model** out) {
  return jl_model_load_ex(path, tokenizer_path, 0, out);
}

jl_status jl_model_load_ex(const char* path, const char* tokenizer_path, uint32_t flags, jl_model** out) {
  using namespace jielong;
  if (!path || !out) return capi::fail(Code::invalid_argument, "jl_model_load: path and out must not be NULL");
  *out = nullptr;
  if (flags & ~static_cast<uint32_t>(JL_LOAD_NO_MMAP | JL_LOAD_NO_REPACK))
    return capi::fail(make_error(Code::invalid_argument, "jl_model_load_ex: unknown flags " + std::to_string(flags)));
  run::LoadOptions lo;
  lo.no_mmap = (flags & JL_LOAD_NO_MMAP) != 0;
  lo.no_repack = (flags & JL_LOAD_NO_REPACK) != 0;
  auto lm = run::load(path, tokenizer_path ? tokenizer_path : "", lo);
  if (!lm.ok()) return capi::fail(lm.status());
  auto* m = new (std::nothrow) jl_model{std::move(*lm)};
  if (!m) return capi::fail(Code::out_of_memory, "jl_model_load: out of memory");
  *out = m;
  return JL_OK;
}

void jl_model_free(jl_model* model) { delete model; }

int32_t jl_model_n_vocab(const jl_model* model) {
  return model ? static_cast<int32_t>(model->lm.model->hparams().n_vocab) : 0;
}
int32_t jl_model_n_ctx_train(const jl_model* model) {
  return model ? static_cast<int32_t>(model->lm.model->hparams().n_ctx_train) : 0;
}
int32_t jl_model_bos(const jl_model* model) {
  return model && model->lm.tokenizer ? model->lm.tokenizer->bos() : -1;
}
int32_t jl_model_eos(const jl_model* model) {
  return model && model->lm.tokenizer ? model->lm.tokenizer->eos() : -1;
}
int jl_model_is_eog(const jl_model* model, int32_t token) {
  return model && model->lm.tokenizer && model->lm.tokenizer->is_eog(token) ? 1 : 0;
}

jl_status jl_memory_plan(const char* path, uint32_t n_ctx, int kv_f16, uint64_t* total_bytes) {
  using namespace jielong;
  if (!path || !total_bytes) return capi::fail(Code::invalid_argument, "jl_memory_plan: NULL argument");
  auto f = io::ModelFile::open(path);
  if (!f.ok()) return capi::fail(f.status());
  auto hp = model::hparams_from_file(**f);
  if (!hp.ok()) return capi::fail(hp.status());
  const size_t ctx = n_ctx ? n_ctx : hp->n_ctx_train;
  *total_bytes = model::plan_memory(**f, *hp, ctx, kv_f16 ? DType::F16 : DType::F32).total_bytes();
  return JL_OK;
}

jl_status jl_tokenize(const jl_model* model, const char* text, int add_bos, int32_t* tokens, size_t capacity,
                      size_t* n_tokens) {
  using namespace jielong;
  if (!model || !text || !n_tokens || (capacity && !tokens))
    return capi::fail(Code::invalid_argument, "jl_tokenize: NULL argument");
  if (!model->lm.tokenizer) return capi::fail(Code::unsupported, "jl_tokenize: the model has no tokenizer");
  text::EncodeOptions eo;
  eo.add_bos = add_bos != 0;
  auto ids = model->lm.tokenizer->encode(text, eo);
  if (!ids.ok()) return capi::fail(ids.status());
  *n_tokens = ids->size();
  if (ids->size() > capacity)
    return capi::fail(Code::out_of_range, ("jl_tokenize: the text needs " + std::to_string(ids->size()) +
                                           " tokens, capacity is " + std::to_string(capacity)).c_str());
  if (!ids->empty()) std::memcpy(tokens, ids->data(), ids->size() * sizeof(int32_t));
  return JL_OK;
}

jl_status jl_token_to_piece(const jl_model* model, int32_t token, char* buf, size_t capacity, size_t* n_bytes) {
  using namespace jielong;
  if (!model || !n_bytes || (capacity && !buf)) return capi::fail(Code::invalid_argument, "jl_token_to_piece: NULL argument");
  if (!model->lm.tokenizer) return capi::fail(Code::unsupported, "jl_token_to_piece: the model has no tokenizer");
  if (!model->lm.tokenizer->valid(token))
    return capi::fail(Code::out_of_range, ("jl_token_to_piece: token " + std::to_string(token) + " is not in the vocabulary").c_str());
  const int32_t one[1] = {token};
  const std::string piece = model->lm.tokenizer->decode(std::span<const int32_t>(one, 1));
  *n_bytes = piece.size();
  if (piece.size() > capacity) return capi::fail(Code::out_of_range, "jl_token_to_piece: buffer too small");
  if (!piece.empty()) std::memcpy(buf, piece.data(), piece.size());
  return JL_OK;
}

jl_session_params jl_session_default_params(void) {
  jl_session_params p;
  p.n_ctx = 0;
  p.n_batch = 64;
  p.n_threads = 1;
  p.kv_f16 = 0;
  p.temperature = 0.0f;
  p.top_k = 40;
  p.top_p = 0.95f;
  p.min_p = 0.05f;
  p.repeat_penalty = 1.0f;
  p.penalty_last_n = 64;
  p.seed = 0;
  return p;
}

jl_status jl_session_new(const jl_model* model, const jl_session_params* params, jl_session** out) {
  using namespace jielong;
  if (!model || !out) return capi::fail(Code::invalid_argument, "jl_session_new: model and out must not be NULL");
  *out = nullptr;
  const jl_session_params p = params ? *params : jl_session_default_params();
  run::SessionOptions so;
  so.n_ctx = p.n_ctx;
  so.n_batch = p.n_batch;
  so.n_threads = p.n_threads;
  so.kv_type = p.kv_f16 ? model::KvType::f16 : model::KvType::f32;
  so.sampling.temperature = p.temperature;
  so.sampling.top_k = p.top_k;
  so.sampling.top_p = p.top_p;
  so.sampling.min_p = p.min_p;
  so.sampling.repeat_penalty = p.repeat_penalty;
  so.sampling.penalty_last_n = p.penalty_last_n;
  so.sampling.seed = p.seed;
  auto s = run::Session::create(model->lm.model, so);
  if (!s.ok()) return capi::fail(s.status());
  auto* h = new (std::nothrow) jl_session{model->lm.tokenizer, std::move(*s)};
  if (!h) return capi::fail(Code::out_of_memory, "jl_session_new: out of memory");
  *out = h;
  return JL_OK;
}

void jl_session_free(jl_session* session) { delete session; }

size_t jl_session_position(const jl_session* session) { return session ? session->s.position() : 0; }
size_t jl_session_capacity(const jl_session* session) { return session ? session->s.capacity() : 0; }

const float* jl_session_logits(const jl_session* session, size_t* n_vocab) {
  if (!session || session->s.logits().empty()) {
    if (n_vocab) *n_vocab = 0;
    return nullptr;
  }
  if (n_vocab) *n_vocab = session->s.logits().size();
  return session->s.logits().data();
}

int32_t jl_session_token(const jl_session* session, size_t position) {
  if (!session || position >= session->s.position()) return -1;
  return session->s.tokens()[position];
}

jl_status jl_prefill(jl_session* session, const int32_t* tokens, size_t n_tokens) {
  using namespace jielong;
  if (!session || (n_tokens && !tokens)) return capi::fail(Code::invalid_argument, "jl_prefill: NULL argument");
  return capi::check(session->s.prefill(std::span<const int32_t>(tokens, n_tokens)));
}

jl_status jl_step(jl_session* session, int32_t* token) {
  using namespace jielong;
  if (!session) return capi::fail(Code::invalid_argument, "jl_step: NULL session");
  auto t = session->s.step();
  if (!t.ok()) return capi::fail(t.status());
  if (token) *token = *t;
  return JL_OK;
}

jl_status jl_rewind(jl_session* session, size_t n_tokens) {
  using namespace jielong;
  if (!session) return capi::fail(Code::invalid_argument, "jl_rewind: NULL session");
  return capi::check(session->s.rewind(n_tokens));
}

jl_status jl_generate(jl_session* session, const char* prompt, size_t max_tokens, jl_piece_callback callback,
                      void* user, size_t* n_generated) {
  using namespace jielong;
  if (n_generated) *n_generated = 0;
  if (!session || !prompt) return capi::fail(Code::invalid_argument, "jl_generate: NULL argument");
  if (!session->tokenizer) return capi::fail(Code::unsupported, "jl_generate: the model has no tokenizer");
  const text::Tokenizer& tok = *session->tokenizer;
  text::EncodeOptions eo;
  eo.add_bos = session->s.position() == 0;
  auto ids = tok.encode(prompt, eo);
  if (!ids.ok()) return capi::fail(ids.status());
  if (ids->empty() && session->s.position() == 0)
    return capi::fail(Code::invalid_argument, "jl_generate: the prompt has no tokens");
  if (Status st = session->s.prefill(*ids); !st.is_ok()) return capi::fail(st);
  for (int32_t id : *ids) session->s.accept(id);
  run::GenerateParams gp;
  gp.max_tokens = max_tokens;
  auto on_piece = [&](std::string_view piece) -> bool {
    return callback ? callback(user, piece.data(), piece.size()) == 0 : true;
  };
  auto r = run::generate_from(session->s, tok, gp, on_piece);
  if (!r.ok()) return capi::fail(r.status());
  if (n_generated) *n_generated = r->n_generated;
  return JL_OK;
}

jl_status jl_queue(jl_session* session, const int32_t* prompt, size_t n_prompt, size_t n_generate, int32_t stop) {
  using namespace jielong;
  if (!session || (n_prompt && !prompt)) return capi::fail(Code::invalid_argument, "jl_queue: NULL argument");
  return capi::check(session->s.queue(std::span<const int32_t>(prompt, n_prompt), n_generate, stop));
}

jl_status jl_advance(jl_session* session, uint64_t budget_ns, jl_advance_result* result) {
  using namespace jielong;
  if (!session) return capi::fail(Code::invalid_argument, "jl_advance: NULL session");
  const uint64_t cap = uint64_t{1} << 62;  // keeps the deadline arithmetic in range
  auto r = session->s.advance(std::chrono::nanoseconds(static_cast<int64_t>(budget_ns < cap ? budget_ns : cap)));
  if (!r.ok()) return capi::fail(r.status());
  if (result) {
    result->prompt_tokens = r->prompt_tokens;
    result->generated = r->generated;
    result->stopped = r->stopped ? 1 : 0;
    result->done = r->done ? 1 : 0;
  }
  return JL_OK;
}

void jl_cancel(jl_session* session) {
  if (session) session->s.cancel();
}

jl_status jl_session_save(const jl_session* session, void* buf, size_t capacity, size_t* size) {
  using namespace jielong;
  if (!session || !size) return capi::fail(Code::invalid_argument, "jl_session_save: NULL argument");
  *size = run::SessionIo::saved_size(session->s);
  if (!buf) return JL_OK;
  auto n = run::SessionIo::save(session->s, std::span<std::byte>(static_cast<std::byte*>(buf), capacity));
  if (!n.ok()) return capi::fail(n.status());
  *size = *n;
  return JL_OK;
}

jl_status jl_session_load(jl_session* session, const void* buf, size_t size) {
  using namespace jielong;
  if (!session || (size && !buf)) return capi::fail(Code::invalid_argument, "jl_session_load: NULL argument");
  return capi::check(
      run::SessionIo::load(session->s, std::span<const std::byte>(static_cast<const std::byte*>(buf), size)));
}

jl_status jl_session_save_file(const jl_session* session, const char* path) {
  using namespace jielong;
  if (!session || !path) return capi::fail(Code::invalid_argument, "jl_session_save_file: NULL argument");
  return capi::check(run::SessionIo::save_file(session->s, path));
}

jl_status jl_session_load_file(jl_session* session, const char* path) {
  using namespace jielong;
  if (!session || !path) return capi::fail(Code::invalid_argument, "jl_session_load_file: NULL argument");
  return capi::check(run::SessionIo::load_file(session->s, path));
}

}  // extern "C"

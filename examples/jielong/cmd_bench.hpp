// jielong bench: prompt-processing and generation speed, as llama.cpp's
// llama-bench measures it, so the two can be read side by side.
//
//   pp<N>: prefill N prompt tokens into an empty context (batched matmul path)
//   tg<N>: N single-token steps (forward pass + greedy pick) from an empty context
//
// Each test runs once untimed (warm-up: pages of the mapped weights faulted
// in, caches warm), then REPS timed times; tokens/s is reported as mean ±
// standard deviation over the repetitions. With --bandwidth the streaming
// read bandwidth is measured in the same run with the same threads, so decode
// speed can be stated as a fraction of the physical limit.
#pragma once

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "args.hpp"
#include "common.hpp"
#include "eval_json.hpp"
#include "jielong/core/executor.hpp"
#include "jielong/core/memory.hpp"
#include "jielong/io/model_file.hpp"
#include "jielong/kernels/stream.hpp"
#include "jielong/model/hparams.hpp"
#include "jielong/model/kv_cache.hpp"
#include "jielong/run/load.hpp"
#include "jielong/run/session.hpp"

namespace jielong::cli {

namespace bench_detail {

struct Sample {
  std::string test;  // "pp128", "tg32"
  size_t n_prompt = 0, n_gen = 0, n_threads = 0;
  std::vector<double> ts;  // tokens/s of each repetition
  double avg_ts = 0, stddev_ts = 0, avg_ns = 0, stddev_ns = 0;
  double bandwidth_gbs = 0;  // measured with the same threads, 0 if not asked
};

inline void summarise(Sample& s, const std::vector<double>& seconds, size_t n_tokens) {
  const double n = static_cast<double>(seconds.size());
  double sum_ts = 0, sum_ns = 0;
  for (double t : seconds) {
    s.ts.push_back(static_cast<double>(n_tokens) / t);
    sum_ts += s.ts.back();
    sum_ns += t * 1e9;
  }
  s.avg_ts = sum_ts / n;
  s.avg_ns = sum_ns / n;
  double v_ts = 0, v_ns = 0;
  for (size_t i = 0; i < seconds.size(); ++i) {
    v_ts += (s.ts[i] - s.avg_ts) * (s.ts[i] - s.avg_ts);
    v_ns += (seconds[i] * 1e9 - s.avg_ns) * (seconds[i] * 1e9 - s.avg_ns);
  }
  // Sample standard deviation, as llama-bench reports it.
  s.stddev_ts = seconds.size() > 1 ? std::sqrt(v_ts / (n - 1)) : 0.0;
  s.stddev_ns = seconds.size() > 1 ? std::sqrt(v_ns / (n - 1)) : 0.0;
}

// Bytes of every weight tensor (token_embd counted once when tied): what
// llama-bench calls the model size.
inline size_t weight_bytes(const model::Model& m) {
  const model::Weights& w = m.weights();
  auto bytes = [](const kernels::WeightView& v) {
    size_t b = v.rows * v.row_stride;
    if (v.group_scales && v.group) b += v.rows * v.cols / v.group * sizeof(float);
    return b;
  };
  size_t total = bytes(w.token_embd) + (w.tied_output ? 0 : bytes(w.output));
  for (const auto& L : w.layers)
    total += bytes(L.wq) + bytes(L.wk) + bytes(L.wv) + bytes(L.wo) + bytes(L.w_gate) + bytes(L.w_up) + bytes(L.w_down);
  return total;
}

inline size_t n_params(const model::Model& m) {
  const model::Weights& w = m.weights();
  auto n = [](const kernels::WeightView& v) { return v.rows * v.cols; };
  size_t total = n(w.token_embd) + (w.tied_output ? 0 : n(w.output));
  for (const auto& L : w.layers)
    total += n(L.wq) + n(L.wk) + n(L.wv) + n(L.wo) + n(L.w_gate) + n(L.w_up) + n(L.w_down);
  return total;
}

// Streaming read of 1 GiB split into a fixed number of chunks over the
// executor's threads: GB/s, best of three passes (the first faults nothing
// in: the buffer is written before).
inline double read_bandwidth_gbs(Executor& ex) {
  constexpr size_t kBytes = size_t{1} << 30, kChunks = 64;
  HugePageBuffer buf(kBytes);  // huge pages: the limit at its best, as --no-mmap weights get
  if (!buf.data()) return 0.0;
  std::memset(buf.data(), 1, kBytes);
  std::vector<float> partial(kChunks, 0.0f);
  double best = 0;
  for (int pass = 0; pass < 3; ++pass) {
    const auto t0 = std::chrono::steady_clock::now();
    parallel_for(ex, kChunks, 1, [&](size_t c0, size_t c1) {
      for (size_t c = c0; c < c1; ++c) {
        const auto* p = reinterpret_cast<const float*>(buf.data() + c * (kBytes / kChunks));
        partial[c] = kernels::stream_sum(p, kBytes / kChunks / sizeof(float));
      }
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(kBytes) / s / 1e9);
  }
  volatile float sink = partial[0];
  (void)sink;
  return best;
}

inline std::vector<size_t> parse_list(const std::string& s, bool& ok) {
  std::vector<size_t> out;
  ok = true;
  size_t i = 0;
  while (i <= s.size()) {
    const size_t j = std::min(s.find(',', i), s.size());
    const std::string item = s.substr(i, j - i);
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 0 || v > 1 << 20) {
      ok = false;
      return {};
    }
    out.push_back(static_cast<size_t>(v));
    i = j + 1;
  }
  return out;
}

// What one `jielong bench` run measures, from its flags.
struct Config {
  std::string model_path, output = "md";
  std::vector<size_t> prompts, gens, threads;
  int64_t reps = 5, n_batch = 512;
  bool bandwidth = false;
  run::Backend backend = run::Backend::best;
  model::KvType kv_type = model::KvType::f16;
  run::LoadOptions lo;
};

// The flags into cfg; a return code when the command ends here (help, or a
// message already printed).
inline std::optional<int> parse_args(Args& args, Config& cfg) {
  std::string tokenizer_path, threads_list = "1", prompt_list = "128", gen_list = "32", backend_name_s = "best",
                              kv = "f16";
  Flags flags("bench", "-m MODEL [-p 128] [-n 32] [-t 1,2] [-r 5] [-o md|json]",
              "Prompt processing (pp) and generation (tg) speed in tokens/s, mean ± stddev over the repetitions, "
              "with llama-bench's field names.");
  flags.add_string("-m,--model", &cfg.model_path, "model file (.gguf, or llama2.c .bin)");
  flags.add_string("-z,--tokenizer", &tokenizer_path, "llama2.c tokenizer.bin (unused; accepted for symmetry)");
  flags.add_string("-p,--n-prompt", &prompt_list, "prompt lengths, comma-separated; 0 skips (default 128)");
  flags.add_string("-n,--n-gen", &gen_list, "generated tokens, comma-separated; 0 skips (default 32)");
  flags.add_string("-t,--threads", &threads_list, "thread counts, comma-separated (default 1)");
  flags.add_int("-r,--repetitions", &cfg.reps, "timed repetitions of each test (default 5)", 1, 1000);
  flags.add_int("-b,--batch-size", &cfg.n_batch, "prompt tokens per forward pass (default 512)", 1, 1 << 16);
  flags.add_string("-o,--output", &cfg.output, "md (default) or json");
  flags.add_string("--backend", &backend_name_s, "kernel backend: best (default), scalar, xsimd, highway");
  flags.add_string("--kv", &kv, "KV cache type f16 (default, as llama.cpp) or f32");
  flags.add_switch("--bandwidth", &cfg.bandwidth, "also measure the read bandwidth (1 GiB stream) per thread count");
  flags.add_switch("--no-mmap", &cfg.lo.no_mmap, kNoMmapHelp);
  flags.add_switch("--no-repack", &cfg.lo.no_repack, kNoRepackHelp);
  if (auto rc = flags.parse(args)) return *rc;

  bool ok_p = false, ok_n = false, ok_t = false;
  cfg.prompts = parse_list(prompt_list, ok_p);
  cfg.gens = parse_list(gen_list, ok_n);
  cfg.threads = parse_list(threads_list, ok_t);
  if (!ok_p || !ok_n || !ok_t) {
    std::fprintf(stderr, "jielong bench: -p, -n and -t take comma-separated non-negative integers\n");
    return 1;
  }
  for (size_t t : cfg.threads)
    if (t == 0) {
      std::fprintf(stderr, "jielong bench: -t: thread counts must be >= 1\n");
      return 1;
    }
  if (cfg.output != "md" && cfg.output != "json") {
    std::fprintf(stderr, "jielong bench: -o: expected md or json, got '%s'\n", cfg.output.c_str());
    return 1;
  }
  if (backend_name_s == "best") cfg.backend = run::Backend::best;
  else if (backend_name_s == "scalar") cfg.backend = run::Backend::scalar;
  else if (backend_name_s == "xsimd") cfg.backend = run::Backend::xsimd;
  else if (backend_name_s == "highway") cfg.backend = run::Backend::highway;
  else {
    std::fprintf(stderr, "jielong bench: --backend: expected best, scalar, xsimd or highway, got '%s'\n",
                 backend_name_s.c_str());
    return 1;
  }
  if (!parse_kv_type("bench", kv, cfg.kv_type)) return 1;
  if (cfg.model_path.empty()) {
    std::fprintf(stderr, "jielong bench: -m MODEL is required\n");
    return 1;
  }
  return std::nullopt;
}

// Open + map (or read) + bind: what a host pays before its first prompt.
inline Result<std::shared_ptr<const model::Model>> load_model(Config& cfg) {
  // Only the best backend has panel kernels; the others are measured on the
  // layout of the file (on panels they would run the plain-loop definition).
  if (cfg.backend != run::Backend::best) cfg.lo.no_repack = true;
  JIELONG_ASSIGN_OR_RETURN(std::shared_ptr<const io::ModelFile> file,
                           io::ModelFile::open(cfg.model_path, cfg.lo.file_mode()));
  JIELONG_ASSIGN_OR_RETURN(const model::HParams hp, model::hparams_from_file(*file));
  return model::Model::bind<io::ModelFile>(file, hp, cfg.model_path, cfg.lo.bind_options());
}

// One test: a warm-up, then cfg.reps timed runs, each from an empty
// context; run() does the work of one and returns its Status.
template <class Run>
Result<Sample> timed_test(run::Session& s, std::string test, size_t n_tokens, const Config& cfg, Run&& run) {
  std::vector<double> secs;
  for (int64_t r = -1; r < cfg.reps; ++r) {  // r = -1: warm-up
    JIELONG_TRY(s.rewind(s.position()));
    const auto t0 = std::chrono::steady_clock::now();
    JIELONG_TRY(run());
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r >= 0) secs.push_back(sec);
  }
  Sample smp;
  smp.test = std::move(test);
  summarise(smp, secs, n_tokens);
  return smp;
}

// Every pp and tg test on nt threads, appended to samples.
inline Status run_tests(const std::shared_ptr<const model::Model>& m, size_t max_ctx, size_t nt, const Config& cfg,
                        std::vector<Sample>& samples) {
  ThreadPool pool(nt);
  run::SessionOptions so;
  so.n_ctx = max_ctx;
  so.n_batch = static_cast<size_t>(cfg.n_batch);
  so.kv_type = cfg.kv_type;
  so.backend = cfg.backend;
  so.executor = &pool;
  so.n_threads = nt;
  JIELONG_ASSIGN_OR_RETURN(run::Session s, run::Session::create(m, so));
  // Prompt tokens: a fixed spread over the vocabulary (speed does not
  // depend on which ids they are).
  const size_t n_vocab = m->hparams().n_vocab;
  std::vector<int32_t> ids(max_ctx);
  for (size_t i = 0; i < max_ctx; ++i) ids[i] = static_cast<int32_t>((i * 7919 + 1) % n_vocab);
  // pp<np>: prefill np prompt tokens.
  for (size_t np : cfg.prompts) {
    if (np == 0) continue;
    auto prefill = [&] { return s.prefill(std::span<const int32_t>(ids).first(np)); };
    JIELONG_ASSIGN_OR_RETURN(Sample smp, timed_test(s, "pp" + std::to_string(np), np, cfg, prefill));
    smp.n_prompt = np;
    smp.n_threads = nt;
    samples.push_back(std::move(smp));
  }
  // tg<ng>: ng single-token forward passes: the first token is fed, each
  // later one is the greedy pick of the previous step.
  for (size_t ng : cfg.gens) {
    if (ng == 0) continue;
    auto generate = [&]() -> Status {
      JIELONG_TRY(s.append(ids[0]));
      for (size_t i = 1; i < ng; ++i) JIELONG_TRY(s.step().status());
      return Status::ok();
    };
    JIELONG_ASSIGN_OR_RETURN(Sample smp, timed_test(s, "tg" + std::to_string(ng), ng, cfg, generate));
    smp.n_gen = ng;
    smp.n_threads = nt;
    samples.push_back(std::move(smp));
  }
  return Status::ok();
}

// What every line of the report shares.
struct Report {
  std::string model_name;
  size_t bytes = 0, params = 0, kv_bytes = 0;
  double load_ms = 0, peak_rss_mib = 0;
};

inline void print_json(const std::vector<Sample>& samples, const model::Model& m, const Config& cfg,
                       const Report& rep) {
  std::printf("[\n");
  for (size_t i = 0; i < samples.size(); ++i) {
    const auto& smp = samples[i];
    std::printf("  {\"model_filename\": ");
    std::fputs(json_string(cfg.model_path).c_str(), stdout);
    std::printf(", \"model_type\": ");
    std::fputs(json_string(rep.model_name).c_str(), stdout);
    std::printf(", \"model_size\": %zu, \"model_n_params\": %zu, \"backends\": \"CPU\", \"backend\": \"%s\","
                " \"n_batch\": %lld, \"n_threads\": %zu, \"type_k\": \"%s\", \"type_v\": \"%s\", \"use_mmap\": %s,"
                " \"n_prompt\": %zu, \"n_gen\": %zu, \"avg_ns\": %.0f, \"stddev_ns\": %.0f,"
                " \"avg_ts\": %.6f, \"stddev_ts\": %.6f, \"samples_ts\": [",
                rep.bytes, rep.params, run::backend_name(cfg.backend), static_cast<long long>(cfg.n_batch),
                smp.n_threads, model::kv_type_name(cfg.kv_type), model::kv_type_name(cfg.kv_type),
                cfg.lo.no_mmap ? "false" : "true", smp.n_prompt, smp.n_gen, smp.avg_ns, smp.stddev_ns, smp.avg_ts,
                smp.stddev_ts);
    for (size_t k = 0; k < smp.ts.size(); ++k) std::printf("%s%.6f", k ? ", " : "", smp.ts[k]);
    std::printf("], \"load_ms\": %.3f, \"peak_rss_bytes\": %.0f, \"kv_cache_bytes\": %zu, \"repack\": %s,"
                " \"repacked_bytes\": %zu", rep.load_ms, rep.peak_rss_mib * 1024.0 * 1024.0, rep.kv_bytes,
                m.panel_bytes() ? "true" : "false", m.panel_bytes());
    if (smp.bandwidth_gbs > 0)
      std::printf(", \"bandwidth_gbs\": %.3f, \"bandwidth_fraction\": %.4f", smp.bandwidth_gbs,
                  smp.n_gen ? smp.avg_ts * static_cast<double>(rep.bytes) / (smp.bandwidth_gbs * 1e9) : 0.0);
    std::printf("}%s\n", i + 1 < samples.size() ? "," : "");
  }
  std::printf("]\n");
}

inline void print_markdown(const std::vector<Sample>& samples, const model::Model& m, const Config& cfg,
                           const Report& rep) {
  const double mib = 1024.0 * 1024.0;
  std::printf("| model | size | params | backend | threads | test | t/s |%s\n",
              cfg.bandwidth ? " read GB/s | tg·size/bw |" : "");
  std::printf("| --- | ---: | ---: | --- | ---: | ---: | ---: |%s\n", cfg.bandwidth ? " ---: | ---: |" : "");
  for (const auto& smp : samples) {
    std::printf("| %s | %.2f MiB | %.2f M | %s | %zu | %s | %.2f ± %.2f |", rep.model_name.c_str(),
                static_cast<double>(rep.bytes) / mib, static_cast<double>(rep.params) / 1e6,
                run::backend_name(cfg.backend), smp.n_threads, smp.test.c_str(), smp.avg_ts, smp.stddev_ts);
    if (cfg.bandwidth) {
      if (smp.n_gen)
        std::printf(" %.1f | %.2f |", smp.bandwidth_gbs,
                    smp.avg_ts * static_cast<double>(rep.bytes) / (smp.bandwidth_gbs * 1e9));
      else
        std::printf(" %.1f | |", smp.bandwidth_gbs);
    }
    std::printf("\n");
  }
  std::printf("\nload %.1f ms%s, %.1f MiB repacked into panels, peak RSS %.1f MiB (weights %.1f MiB + KV cache %.1f MiB)\n",
              rep.load_ms, cfg.lo.no_mmap ? " (read into memory, --no-mmap)" : " (mapped)",
              static_cast<double>(m.panel_bytes()) / mib, rep.peak_rss_mib, static_cast<double>(rep.bytes) / mib,
              static_cast<double>(rep.kv_bytes) / mib);
}

}  // namespace bench_detail

inline int cmd_bench(Args& args) {
  namespace bd = bench_detail;
  bd::Config cfg;
  if (auto rc = bd::parse_args(args, cfg)) return *rc;
  auto fail = [](const Status& st) {
    std::fprintf(stderr, "jielong bench: %s\n", st.to_string().c_str());
    return 1;
  };
  const auto t_load = std::chrono::steady_clock::now();
  auto bound = bd::load_model(cfg);
  if (!bound.ok()) return fail(bound.status());
  bd::Report rep;
  rep.load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_load).count();
  const std::shared_ptr<const model::Model> m = *bound;

  size_t max_ctx = 1;
  for (size_t p : cfg.prompts) max_ctx = std::max(max_ctx, p);
  for (size_t g : cfg.gens) max_ctx = std::max(max_ctx, g);
  std::vector<bd::Sample> samples;
  for (size_t nt : cfg.threads)
    if (Status st = bd::run_tests(m, max_ctx, nt, cfg, samples); !st.is_ok()) return fail(st);
  const model::HParams& hp = m->hparams();
  rep.kv_bytes = model::kv_cache_bytes(hp.n_layers, max_ctx, hp.kv_dim(), model::kv_elem_bytes(cfg.kv_type));
  // Peak RSS before the bandwidth probe (which allocates 1 GiB of its own).
  struct rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  rep.peak_rss_mib = static_cast<double>(ru.ru_maxrss) / 1024.0;
  if (cfg.bandwidth) {
    for (size_t nt : cfg.threads) {
      ThreadPool pool(nt);
      const double gbs = bd::read_bandwidth_gbs(pool);
      for (auto& smp : samples)
        if (smp.n_threads == nt) smp.bandwidth_gbs = gbs;
    }
  }

  rep.bytes = bd::weight_bytes(*m);
  rep.params = bd::n_params(*m);
  const size_t slash = cfg.model_path.find_last_of('/');
  rep.model_name = cfg.model_path.substr(slash == std::string::npos ? 0 : slash + 1);
  if (cfg.output == "json") bd::print_json(samples, *m, cfg, rep);
  else bd::print_markdown(samples, *m, cfg, rep);
  return 0;
}

}  // namespace jielong::cli

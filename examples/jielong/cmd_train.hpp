// jielong train: a llama model trained from scratch on token shards from
// prepare-data (train/trainer.hpp), written as a GGUF with the tokenizer's
// vocabulary. Every evaluation checkpoints the model (OUT) and a resumable
// state (OUT.state), both replaced atomically; Ctrl-C checkpoints and stops;
// a NaN or infinite loss stops with the last good checkpoint left in place.
// The loss curve goes to a CSV (--log) and an SVG beside it.
#pragma once

#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "args.hpp"
#include "jielong/core/executor.hpp"
#include "jielong/io/gguf.hpp"
#include "jielong/io/quantize.hpp"
#include "jielong/train/export.hpp"
#include "jielong/train/trainer.hpp"
#include "loss_plot.hpp"
#include "progress.hpp"

namespace jielong::cli {

namespace train_cmd {

// Entropy of the shard's token frequencies in nats: the loss of a model that
// ignores context, the mark a trained model has to beat.
inline double unigram_entropy(const train::TokenShard& shard) {
  std::vector<uint64_t> counts(shard.header().vocab_size, 0);
  for (uint64_t i = 0; i < shard.size(); ++i) ++counts[shard.token(i)];
  double h = 0;
  for (uint64_t c : counts)
    if (c) {
      const double p = static_cast<double>(c) / static_cast<double>(shard.size());
      h -= p * std::log(p);
    }
  return h;
}

// The GGUF written beside a temporary name and renamed, so OUT is always a
// whole model.
inline Status write_checkpoint(const train::Trainer& t, const io::GgufFile& vocab, const std::string& path,
                               const std::string& name, const io::QuantMix* mix = nullptr) {
  const std::string tmp = path + ".tmp";
  train::ExportOptions eo;
  eo.name = name;
  eo.vocab = &vocab;
  eo.mix = mix;
  JIELONG_TRY(train::export_gguf(t.layout(), t.model().params(), tmp, eo));
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return make_error(Code::io_error, path + ": cannot rename from " + tmp + ": " + ec.message());
  return Status::ok();
}

// Rows of an earlier run's CSV up to `step`, so a resumed run's log and plot
// continue it.
inline std::vector<LossRow> read_log(const std::string& path, size_t step) {
  std::vector<LossRow> rows;
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return rows;
  char line[256];
  while (std::fgets(line, sizeof line, f)) {
    // step,loss,[val_loss],lr,tokens_per_s; the header and malformed lines are skipped.
    LossRow r{};
    char* p = line;
    char* end = nullptr;
    r.step = std::strtoull(p, &end, 10);
    if (end == p || *end != ',') continue;
    r.loss = std::strtod(p = end + 1, &end);
    if (end == p || *end != ',') continue;
    r.val_loss = std::strtod(p = end + 1, &end);
    if (end == p) r.val_loss = std::nan("");
    if (*end != ',') continue;
    r.lr = std::strtod(p = end + 1, &end);
    if (end == p || *end != ',') continue;
    r.tokens_per_s = std::strtod(p = end + 1, &end);
    if (end == p) continue;
    if (r.step <= step) rows.push_back(r);
  }
  std::fclose(f);
  return rows;
}

inline void write_log_row(std::FILE* f, const LossRow& r) {
  char val[32] = "";
  if (std::isfinite(r.val_loss)) std::snprintf(val, sizeof val, "%.6f", r.val_loss);
  std::fprintf(f, "%zu,%.6f,%s,%.6g,%.1f\n", r.step, r.loss, val, r.lr, r.tokens_per_s);
}

inline std::string svg_path(const std::string& log) {
  const std::filesystem::path p(log);
  return (p.parent_path() / (p.stem().string() + ".svg")).string();
}

inline void print_memory(const train::Trainer& t) {
  const train::MemoryEstimate m = t.memory();
  auto mb = [](size_t b) { return static_cast<double>(b) / (1024.0 * 1024.0); };
  std::fprintf(stderr,
               "model: %zu parameters (vocab %zu, embd %zu, layers %zu, heads %zu/%zu kv, ff %zu, ctx %zu)\n"
               "memory: parameters %.1f MiB + gradients %.1f MiB + 2 moments %.1f MiB + activations %.1f MiB "
               "(batch %zu x %zu) = %.1f MiB\n",
               t.layout().size(), t.shape().n_vocab, t.shape().n_embd, t.shape().n_layers, t.shape().n_heads,
               t.shape().n_kv_heads, t.shape().n_ff, t.shape().n_ctx, mb(m.params), mb(m.grads), mb(m.moments),
               mb(m.activations), t.config().batch, t.config().seq_len, mb(m.total()));
}

}  // namespace train_cmd

inline int cmd_train(Args& args) {
  std::vector<std::string> data;
  std::string tokenizer_path, out, resume, log_path, q8_path, name = "jielong-trained";
  int64_t vocab = 0, embd = 64, layers = 5, heads = 8, kv_heads = 4, ff = 172, ctx = 256;
  int64_t batch = 8, accumulation = 1, steps = 0, warmup = 100, seed = 0, threads = 0, eval_every = 0,
          eval_batches = 8;
  double lr = 1e-3, weight_decay = 0.1, clip = 1.0;
  bool dry_run = false, untied = false;
  Flags flags("train", "--data DIR|FILE -m TOKENIZER.gguf --out MODEL.gguf [--recipe FILE] [options]",
              "Train a llama model from scratch on token shards from prepare-data.");
  // A recipe file holds flags (models/*.recipe); the ones around it add to or override them.
  std::deque<std::string> recipe_words;
  std::string recipe_error;
  if (!expand_flag_files(args, "--recipe", recipe_words, recipe_error)) {
    std::fprintf(stderr, "jielong train: %s\n", recipe_error.c_str());
    return 1;
  }
  std::string recipe_help;  // never set: --recipe is spliced in above, listed here for --help
  flags.add_string("--recipe", &recipe_help, "read flags from this file (white space between words, '#' comments)");
  flags.add_strings("--data", &data, "prepare-data folder (train.bin, val.bin) or a training shard");
  flags.add_string("-m,--tokenizer", &tokenizer_path, "GGUF whose vocabulary encoded the shards (from train-tokenizer)");
  flags.add_string("-o,--out", &out, "model to write (F32 GGUF); the resumable state goes to OUT.state");
  flags.add_int("--vocab-size", &vocab, "vocabulary size (default: the tokenizer's; must match it)", 0, 1 << 24);
  flags.add_int("--embd", &embd, "model width", 2, 1 << 16);
  flags.add_int("--layers", &layers, "transformer layers", 1, 1024);
  flags.add_int("--heads", &heads, "attention heads", 1, 1024);
  flags.add_int("--kv-heads", &kv_heads, "key/value heads (grouped-query attention when fewer)", 1, 1024);
  flags.add_int("--ff", &ff, "feed-forward width", 1, 1 << 20);
  flags.add_int("--ctx", &ctx, "context length (the training sequence length)", 2, 1 << 16);
  flags.add_switch("--untied", &untied, "a separate output matrix instead of reusing the token embedding");
  flags.add_int("--batch", &batch, "sequences per micro-batch", 1, 1 << 16);
  flags.add_int("--accum", &accumulation, "micro-batches per optimizer step (gradient accumulation)", 1, 1 << 16);
  flags.add_int("--steps", &steps, "optimizer steps, where the cosine schedule ends (default 1000; resuming: the saved run's)",
                1, INT64_MAX);
  flags.add_float("--lr", &lr, "peak learning rate", 0.0, 10.0);
  flags.add_int("--warmup", &warmup, "linear warmup steps", 0, INT64_MAX);
  flags.add_float("--weight-decay", &weight_decay, "AdamW weight decay on matrices", 0.0, 10.0);
  flags.add_float("--clip", &clip, "clip the gradient's global norm to this (0: no clipping)", 0.0, 1e6);
  flags.add_int("-s,--seed", &seed, "initial weights and the order of training windows", 0);
  flags.add_int("-t,--threads", &threads, "threads (0: one per core)", 0, 1024);
  flags.add_string("--resume", &resume, "continue the run saved in this state file (its shape and settings)");
  flags.add_int("--eval-every", &eval_every, "validate and checkpoint every N steps (default 100; resuming: the saved run's)",
                1, INT64_MAX);
  flags.add_int("--eval-batches", &eval_batches, "validation batches per evaluation", 1, 1 << 20);
  flags.add_string("--log", &log_path, "CSV of step,loss,val_loss,lr,tokens_per_s; the loss curve as an SVG beside it");
  flags.add_string("--name", &name, "general.name of the written model");
  flags.add_string("--q8", &q8_path, "also write the final model with Q8_0 weights here (for shipping)");
  flags.add_switch("--dry-run", &dry_run, "print the parameter count and memory, then stop");
  if (auto rc = flags.parse(args)) return *rc;
  auto fail = [](const std::string& message) {
    std::fprintf(stderr, "jielong train: %s\n", message.c_str());
    return 1;
  };
  if (data.size() != 1) return fail("give one --data folder (from prepare-data) or training shard");
  if (tokenizer_path.empty()) return fail("give the tokenizer the shards were encoded with (-m TOKENIZER.gguf)");
  if (out.empty() && !dry_run) return fail("give the model to write with --out");

  namespace fs = std::filesystem;
  std::string train_path = data[0], val_path;
  if (fs::is_directory(data[0])) {
    train_path = (fs::path(data[0]) / "train.bin").string();
    val_path = (fs::path(data[0]) / "val.bin").string();
  } else if (const fs::path sibling = fs::path(data[0]).parent_path() / "val.bin"; fs::exists(sibling)) {
    val_path = sibling.string();
  }
  auto train_shard = train::TokenShard::open(train_path);
  if (!train_shard.ok()) return fail(train_shard.status().to_string());
  std::optional<train::TokenShard> val_shard;
  if (!val_path.empty() && fs::exists(val_path)) {
    auto v = train::TokenShard::open(val_path);
    if (!v.ok()) return fail(v.status().to_string());
    val_shard = std::move(*v);
  }
  auto vocab_file = io::GgufFile::open(tokenizer_path);
  if (!vocab_file.ok()) return fail(vocab_file.status().to_string());
  auto tokens = vocab_file->get_array("tokenizer.ggml.tokens");
  if (!tokens.ok()) return fail(tokenizer_path + ": no vocabulary (tokenizer.ggml.tokens)");
  if (vocab && static_cast<size_t>(vocab) != tokens->size())
    return fail("--vocab-size " + std::to_string(vocab) + " differs from the tokenizer's " +
                std::to_string(tokens->size()) + " tokens");

  ThreadPool pool(static_cast<size_t>(threads));
  std::optional<train::Trainer> trainer;
  if (!resume.empty()) {
    auto t = train::Trainer::resume(resume, *train_shard, val_shard ? &*val_shard : nullptr,
                                    static_cast<size_t>(steps));
    if (!t.ok()) return fail(t.status().to_string());
    trainer = std::move(*t);
  } else {
    train::ModelShape shape{tokens->size(), static_cast<size_t>(embd), static_cast<size_t>(layers),
                            static_cast<size_t>(heads), static_cast<size_t>(kv_heads), static_cast<size_t>(ff),
                            static_cast<size_t>(ctx), !untied};
    train::TrainConfig c;
    c.batch = static_cast<size_t>(batch);
    c.seq_len = static_cast<size_t>(ctx);
    c.accumulation = static_cast<size_t>(accumulation);
    c.steps = steps ? static_cast<size_t>(steps) : 1000;
    c.eval_batches = static_cast<size_t>(eval_batches);
    c.seed = static_cast<uint64_t>(seed);
    c.eval_every = eval_every ? static_cast<size_t>(eval_every) : 100;
    c.optimizer.lr = static_cast<float>(lr);
    c.optimizer.warmup_steps = static_cast<size_t>(warmup);
    c.optimizer.weight_decay = static_cast<float>(weight_decay);
    c.optimizer.grad_clip = static_cast<float>(clip);
    auto t = train::Trainer::create(shape, c, *train_shard, val_shard ? &*val_shard : nullptr);
    if (!t.ok()) return fail(t.status().to_string());
    trainer = std::move(*t);
  }
  train::Trainer& t = *trainer;
  if (eval_every) t.set_eval_every(static_cast<size_t>(eval_every));
  train_cmd::print_memory(t);
  if (dry_run) return 0;
  std::fprintf(stderr, "data: %" PRIu64 " training tokens, %" PRIu64 " validation tokens; unigram entropy %.3f nats/token\n",
               train_shard->size(), val_shard ? val_shard->size() : uint64_t{0},
               train_cmd::unigram_entropy(*train_shard));

  const std::string state_path = out + ".state";
  std::vector<LossRow> rows;
  std::FILE* log = nullptr;
  if (!log_path.empty()) {
    if (!resume.empty()) rows = train_cmd::read_log(log_path, t.step_index());
    log = std::fopen(log_path.c_str(), "w");
    if (!log) return fail(log_path + ": cannot open for writing");
    std::fprintf(log, "step,loss,val_loss,lr,tokens_per_s\n");
    for (const LossRow& r : rows) train_cmd::write_log_row(log, r);
    std::fflush(log);
  }
  const std::string title = "jielong train: " + std::to_string(t.layout().size()) + " parameters, " +
                            std::to_string(t.tokens_per_step()) + " tokens per step";
  auto checkpoint = [&]() -> bool {
    Status s = t.save_state(state_path);
    if (s.is_ok()) s = train_cmd::write_checkpoint(t, *vocab_file, out, name);
    if (s.is_ok() && log) {
      std::FILE* svg = std::fopen(train_cmd::svg_path(log_path).c_str(), "w");
      const std::string picture = loss_curve_svg(rows, title);
      if (!svg || std::fputs(picture.c_str(), svg) < 0) s = make_error(Code::io_error, train_cmd::svg_path(log_path) + ": write failed");
      if (svg && std::fclose(svg) != 0) s = make_error(Code::io_error, train_cmd::svg_path(log_path) + ": write failed");
    }
    if (!s.is_ok()) std::fprintf(stderr, "\njielong train: %s\n", s.to_string().c_str());
    return s.is_ok();
  };

  InterruptScope interrupt;
  const size_t total = t.config().steps;
  double val_loss = std::nan(""), train_seconds = 0;
  size_t steps_timed = 0;
  auto last_draw = ProgressLine::Clock::time_point{};
  bool drawn = false;
  int rc = 0;
  while (t.step_index() < total) {
    if (interrupt.interrupted()) {
      if (drawn) std::fprintf(stderr, "\n");
      const bool saved = checkpoint();
      std::fprintf(stderr, "jielong train: interrupted at step %zu; %s\n", t.step_index(),
                   saved ? ("continue with --resume " + state_path).c_str() : "the state could not be saved");
      rc = 130;
      break;
    }
    const auto t0 = ProgressLine::Clock::now();
    auto st = t.step(pool);
    if (!st.ok()) {
      if (drawn) std::fprintf(stderr, "\n");
      std::fprintf(stderr, "jielong train: %s; the last checkpoint (%s, %s) is kept\n", st.status().message().c_str(),
                   out.c_str(), state_path.c_str());
      rc = 1;
      break;
    }
    const auto t1 = ProgressLine::Clock::now();
    const double seconds = std::chrono::duration<double>(t1 - t0).count();
    train_seconds += seconds;
    ++steps_timed;
    LossRow row{st->step, st->loss, std::nan(""), st->lr,
                seconds > 0 ? static_cast<double>(t.tokens_per_step()) / seconds : 0.0};
    const bool eval = st->step % t.config().eval_every == 0 || st->step == total;
    if (eval) row.val_loss = val_loss = t.validate(pool);
    rows.push_back(row);
    if (log) {
      train_cmd::write_log_row(log, row);
      std::fflush(log);
    }
    if (eval && !checkpoint()) {
      rc = 1;
      break;
    }
    if (eval || t1 - last_draw > std::chrono::milliseconds(250) || st->step == total) {
      last_draw = t1;
      const double rate = static_cast<double>(steps_timed * t.tokens_per_step()) / train_seconds;
      const long eta = static_cast<long>(static_cast<double>(total - st->step) * train_seconds /
                                         static_cast<double>(steps_timed) + 0.5);
      std::fprintf(stderr, "\rstep %zu/%zu  loss %.4f  val %.4f  lr %.2e  %.0f tok/s  ETA %ld:%02ld\033[K", st->step,
                   total, st->loss, val_loss, st->lr, rate, eta / 60, eta % 60);
      std::fflush(stderr);
      drawn = true;
    }
  }
  if (log) std::fclose(log);
  if (rc != 0) return rc;
  if (drawn) std::fprintf(stderr, "\n");
  if (!q8_path.empty()) {
    if (Status s = train_cmd::write_checkpoint(t, *vocab_file, q8_path, name, io::find_quant_mix("q8_0")); !s.is_ok())
      return fail(s.to_string());
  }
  std::fprintf(stderr, "trained %zu steps (%.0f tok/s); validation loss %.4f nats/token; wrote %s and %s\n", total,
               steps_timed && train_seconds > 0 ? static_cast<double>(steps_timed * t.tokens_per_step()) / train_seconds
                                                : 0.0,
               val_loss, out.c_str(), state_path.c_str());
  return 0;
}

}  // namespace jielong::cli

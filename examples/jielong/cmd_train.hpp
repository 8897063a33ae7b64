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
#include <cstring>
#include <deque>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "args.hpp"
#include "corpus_input.hpp"
#include "jielong/core/executor.hpp"
#include "jielong/io/gguf.hpp"
#include "jielong/io/quantize.hpp"
#include "jielong/model/hparams.hpp"
#include "jielong/text/gguf_vocab.hpp"
#include "jielong/train/export.hpp"
#include "jielong/train/instruct.hpp"
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

// What --data names, made into shards: a prepare-data folder or a shard as
// they are; instruction data (*.jsonl) rendered, tokenised and packed with
// answer masks; anything else read as raw text through prepare-data's
// pipeline (clean, filter, split, encode) in memory.
struct TrainData {
  std::optional<train::TokenShard> train, val, train_mask, val_mask;
  train::AnswerMasks masks() const { return {train_mask ? &*train_mask : nullptr, val_mask ? &*val_mask : nullptr}; }
};

inline bool is_shard_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char magic[8] = {};
  const bool ok = std::fread(magic, 1, 8, f) == 8 && std::memcmp(magic, train::kShardMagic, 8) == 0;
  std::fclose(f);
  return ok;
}

inline bool is_jsonl(const std::string& path) {
  return path.size() > 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0;
}

inline Status open_shards(const std::string& data, TrainData& d) {
  namespace fs = std::filesystem;
  std::string train_path = data, val_path;
  if (fs::is_directory(data)) {
    train_path = (fs::path(data) / "train.bin").string();
    val_path = (fs::path(data) / "val.bin").string();
  } else if (const fs::path sibling = fs::path(data).parent_path() / "val.bin"; fs::exists(sibling)) {
    val_path = sibling.string();
  }
  JIELONG_ASSIGN_OR_RETURN(d.train, train::TokenShard::open(train_path));
  if (!val_path.empty() && fs::exists(val_path)) {
    JIELONG_ASSIGN_OR_RETURN(d.val, train::TokenShard::open(val_path));
  }
  return Status::ok();
}

// Instruction data: each line an example (train/instruct.hpp); a line goes to
// validation by the hash of its text, so the split does not move when lines
// are added elsewhere. Rows of ctx + 1 tokens.
inline Status load_instructions(const std::string& path, const text::Tokenizer& tok, size_t ctx, double validation,
                                uint64_t seed, TrainData& d) {
  JIELONG_ASSIGN_OR_RETURN(std::string text, read_corpus_file(path));
  std::vector<train::EncodedExample> split[2];
  size_t line_no = 0;
  for (size_t begin = 0; begin < text.size();) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + begin, end - begin);
    begin = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    auto ex = train::parse_instruct_line(line);
    if (!ex.ok()) return make_error(ex.status().code(), path + ":" + std::to_string(line_no) + ": " + ex.status().message());
    train::EncodedExample e;
    JIELONG_TRY(train::encode_example(tok, *ex, e));
    split[train::is_validation(line, validation, 0) ? 1 : 0].push_back(std::move(e));
  }
  const int32_t pad = tok.valid(tok.bos()) ? tok.bos() : 0;
  const uint32_t n_vocab = static_cast<uint32_t>(tok.n_tokens());
  for (int s = 0; s < 2; ++s) {
    if (split[s].empty()) continue;
    const train::PackedRows p = train::pack_examples(split[s], ctx + 1, pad, seed);
    std::fprintf(stderr, "%s: %zu examples in %zu rows of %zu tokens (%zu answer tokens, %.0f%% of the rows)%s\n",
                 s ? "validation" : "training", p.examples, p.rows, ctx + 1, p.answer_tokens,
                 p.rows ? 100.0 * static_cast<double>(p.answer_tokens) / static_cast<double>(p.rows * (ctx + 1)) : 0.0,
                 p.dropped ? (", " + std::to_string(p.dropped) + " longer than a row dropped").c_str() : "");
    if (p.rows == 0) continue;
    JIELONG_ASSIGN_OR_RETURN(train::TokenShard tokens, train::TokenShard::from_tokens(p.tokens, n_vocab, static_cast<uint32_t>(pad), p.examples));
    JIELONG_ASSIGN_OR_RETURN(train::TokenShard mask, train::TokenShard::from_tokens(p.mask, 2));
    (s ? d.val : d.train) = std::move(tokens);
    (s ? d.val_mask : d.train_mask) = std::move(mask);
  }
  if (!d.train) return make_error(Code::invalid_argument, path + ": no training example fits a row of " +
                                                              std::to_string(ctx + 1) + " tokens");
  return Status::ok();
}

// Raw text files and folders: cleaned, filtered and split as prepare-data
// does (its report printed), each document encoded with BOS in front.
inline Status load_raw_text(const std::vector<std::string>& inputs, const text::Tokenizer& tok, double validation,
                            const InterruptScope& interrupt, TrainData& d) {
  CorpusFlags cf;
  cf.inputs = inputs;
  cf.validation = validation;
  std::optional<train::Corpus> corpus = cf.build("train", interrupt);
  if (!corpus) return make_error(Code::invalid_argument, "the raw text could not be read (see above)");
  const uint32_t separator = tok.vocab().add_bos && tok.valid(tok.bos()) ? static_cast<uint32_t>(tok.bos())
                                                                         : train::kNoSeparator;
  for (int s = 0; s < 2; ++s) {
    const std::vector<std::string>& docs = s ? corpus->validation() : corpus->train();
    std::vector<int32_t> ids;
    for (const std::string& doc : docs)
      JIELONG_TRY(tok.encode_append(doc, {.add_bos = true, .parse_special = false}, ids));
    if (ids.size() < 2) continue;
    JIELONG_ASSIGN_OR_RETURN(train::TokenShard shard,
                             train::TokenShard::from_tokens(ids, static_cast<uint32_t>(tok.n_tokens()), separator,
                                                            docs.size()));
    (s ? d.val : d.train) = std::move(shard);
  }
  if (!d.train) return make_error(Code::invalid_argument, "the raw text left no training tokens after filtering");
  return Status::ok();
}

}  // namespace train_cmd

inline int cmd_train(Args& args) {
  std::vector<std::string> data;
  std::string tokenizer_path, out, resume, log_path, q8_path, name = "jielong-trained", init_path;
  double validation = 0.01;
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
  flags.add_strings("--data", &data,
                    "prepare-data folder (train.bin, val.bin), a training shard, instruction data (*.jsonl: "
                    "{\"system\"?, \"prompt\", \"answer\"} or {\"messages\": [...]} per line, the loss on the answers), "
                    "or raw text files and folders (cleaned and split as prepare-data does); repeatable for raw text");
  flags.add_string("-m,--tokenizer", &tokenizer_path,
                   "GGUF whose vocabulary encoded the shards or encodes the text (default with --init: its own)");
  flags.add_string("--init", &init_path,
                   "start from this model's weights (F32, or dequantized); its shape replaces the shape flags");
  flags.add_float("--validation", &validation, "raw text and instruction data: fraction held out for validation",
                  0.0, 1.0);
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
  if (data.empty()) return fail("give the training data with --data");
  if (tokenizer_path.empty()) tokenizer_path = init_path;
  if (tokenizer_path.empty()) return fail("give the tokenizer the shards were encoded with (-m TOKENIZER.gguf)");
  if (out.empty() && !dry_run) return fail("give the model to write with --out");
  if (!init_path.empty() && !resume.empty()) return fail("--init starts a run, --resume continues one: give one");

  // The starting model's shape, for packing instruction rows to its context.
  std::optional<io::GgufFile> init_file;
  model::HParams init_hp;
  if (!init_path.empty()) {
    auto f = io::GgufFile::open(init_path);
    if (!f.ok()) return fail(f.status().to_string());
    auto hp = model::hparams_from_gguf(*f);
    if (!hp.ok()) return fail(hp.status().to_string());
    init_hp = *hp;
    init_file = std::move(*f);
    ctx = static_cast<int64_t>(init_hp.n_ctx_train);
  }

  // A resumed run's data is prepared as the saved run's was.
  if (!resume.empty()) {
    auto saved = train::Trainer::peek_data_settings(resume);
    if (!saved.ok()) return fail(saved.status().to_string());
    if (saved->seq_len < 2 || saved->seq_len > (1 << 16))
      return fail(resume + ": training state: a sequence length of " + std::to_string(saved->seq_len));
    ctx = static_cast<int64_t>(saved->seq_len);
    seed = static_cast<int64_t>(saved->seed);
  }

  InterruptScope interrupt;
  train_cmd::TrainData d;
  {
    Status s = Status::ok();
    namespace fs = std::filesystem;
    if (data.size() == 1 && ((fs::is_directory(data[0]) && fs::exists(fs::path(data[0]) / "train.bin")) ||
                             train_cmd::is_shard_file(data[0]))) {
      s = train_cmd::open_shards(data[0], d);
    } else {
      auto tok = text::Tokenizer::from_gguf(tokenizer_path);
      if (!tok.ok()) return fail(tok.status().to_string());
      if (data.size() == 1 && train_cmd::is_jsonl(data[0]))
        s = train_cmd::load_instructions(data[0], *tok, static_cast<size_t>(ctx), validation,
                                         static_cast<uint64_t>(seed), d);
      else
        s = train_cmd::load_raw_text(data, *tok, validation, interrupt, d);
    }
    if (!s.is_ok()) return fail(s.to_string());
  }
  if (d.val && !d.val_mask && d.val->size() < static_cast<uint64_t>(ctx) + 1) {
    std::fprintf(stderr, "jielong train: the validation split (%" PRIu64 " tokens) is shorter than one window of %" PRId64
                         "; training without validation (raise --validation)\n",
                 d.val->size(), ctx + 1);
    d.val.reset();
  }
  const train::TokenShard* train_shard = &*d.train;
  const train::TokenShard* val_shard = d.val ? &*d.val : nullptr;
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
    auto t = train::Trainer::resume(resume, *train_shard, val_shard, static_cast<size_t>(steps), d.masks());
    if (!t.ok()) return fail(t.status().to_string());
    trainer = std::move(*t);
  } else {
    train::ModelShape shape{tokens->size(), static_cast<size_t>(embd), static_cast<size_t>(layers),
                            static_cast<size_t>(heads), static_cast<size_t>(kv_heads), static_cast<size_t>(ff),
                            static_cast<size_t>(ctx), !untied};
    if (init_file) {
      shape = {init_hp.n_vocab, init_hp.n_embd, init_hp.n_layers, init_hp.n_heads, init_hp.n_kv_heads, init_hp.n_ff,
               init_hp.n_ctx_train, !init_file->find_tensor("output.weight")};
      // The trainer builds a llama of the default rope, norm and head
      // settings: a model that differs in them is not one it can continue.
      const model::HParams mine = shape.hparams();
      if (init_hp.arch != mine.arch || init_hp.head_dim != mine.head_dim || init_hp.rope.freq_base != mine.rope.freq_base ||
          init_hp.rms_norm_eps != mine.rms_norm_eps || init_hp.qkv_bias != mine.qkv_bias)
        return fail(init_path + ": its architecture, head size, rope base, norm epsilon or biases differ from the "
                                "llama the trainer builds; only models written by jielong train can be continued");
      if (tokens->size() != init_hp.n_vocab)
        return fail(init_path + ": " + std::to_string(init_hp.n_vocab) + " tokens, the tokenizer " +
                    std::to_string(tokens->size()));
    }
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
    auto t = train::Trainer::create(shape, c, *train_shard, val_shard, d.masks());
    if (!t.ok()) return fail(t.status().to_string());
    if (init_file)
      if (Status s = train::import_gguf(t->layout(), t->model().params(), *init_file); !s.is_ok())
        return fail(s.to_string());
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

// The training loop: a model (model.hpp), AdamW (adamw.hpp) and the batch
// loaders of a train and a validation shard (shards.hpp), stepped together,
// with a state file that resumes a run exactly where it stopped.
//
//   auto t = train::Trainer::create(shape, config, train_shard, &val_shard).value();
//   while (t.step_index() < config.steps) {
//     auto s = t.step(pool);                 // an error on NaN/inf: parameters untouched
//     if (t.step_index() % config.eval_every == 0) t.validate(pool);
//   }
//   t.save_state("run.state");               // later: Trainer::resume("run.state", ...)
//
// One optimizer step sums the gradients of `accumulation` micro-batches of
// B x T tokens. Every batch is a function of (seed, batch index) and every
// reduction has a fixed partition, so a run resumed from its state file
// computes the same bits as the run that was never stopped.
//
// Instruction tuning passes answer masks beside the shards (packed rows of
// T + 1 tokens, shards.hpp's BatchLoader): the loss is then the mean over
// the answer tokens only.
//
// State file (version 2, little-endian):
//
//   offset size  field
//        0    8  magic "JLTRAINS"
//        8    4  version (2; version 1, without the last three fields, is read too)
//       12    4  zero
//       16  8·k  k = kStateFields u64: shape, batch shape, schedule, step, loader position,
//                evaluation interval, answer-masked or not, the training tokens' checksum
//        .  4·m  m = kStateFloats f32: the AdamW configuration
//        .  4·n  parameters, then AdamW's first and second moments (n floats each)
//        .    8  FNV-1a 64 of every byte before it
//
// It is written under a temporary name and renamed into place, so the file at
// the path is always a whole state: the old one or the new one.
#pragma once

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "jielong/core/executor.hpp"
#include "jielong/core/hash.hpp"
#include "jielong/core/status.hpp"
#include "jielong/model/synth.hpp"
#include "jielong/model/hparams.hpp"
#include "jielong/train/adamw.hpp"
#include "jielong/train/model.hpp"
#include "jielong/train/params.hpp"
#include "jielong/train/shards.hpp"

namespace jielong::train {

// A llama model's shape as the train command takes it.
struct ModelShape {
  size_t n_vocab = 512, n_embd = 64, n_layers = 5, n_heads = 8, n_kv_heads = 4, n_ff = 172, n_ctx = 256;
  bool tied_embeddings = true;

  model::HParams hparams() const {
    model::SynthSpec spec;
    spec.n_vocab = n_vocab;
    spec.n_embd = n_embd;
    spec.n_ff = n_ff;
    spec.n_layers = n_layers;
    spec.n_heads = n_heads;
    spec.n_kv_heads = n_kv_heads;
    spec.n_ctx = n_ctx;
    spec.tied = tied_embeddings;
    return model::synth_hparams(spec);  // the one place a llama shape becomes HParams
  }
};

struct TrainConfig {
  size_t batch = 8, seq_len = 256;  // B x T tokens per micro-batch
  size_t accumulation = 1;          // micro-batches per optimizer step
  size_t steps = 1000;              // optimizer steps of the whole run (the cosine schedule ends here)
  size_t eval_batches = 8;          // validation batches per validate()
  uint64_t seed = 0;                // initial weights and the order of training windows
  size_t eval_every = 100;          // steps between validations and checkpoints (the caller's loop; kept for a resume)
  AdamWConfig optimizer{};          // total_steps is set to `steps`
};

// Answer masks beside the token shards for instruction tuning (one entry per
// token, 1 inside an answer); both nullptr for plain language modelling.
struct AnswerMasks {
  const TokenShard* train = nullptr;
  const TokenShard* val = nullptr;
};

struct StepStats {
  size_t step;       // 1-based index of the step just taken
  double loss;       // mean over its micro-batches
  float lr;
  double grad_norm;  // before clipping
};

// Bytes a run holds, for --dry-run.
struct MemoryEstimate {
  size_t params = 0, grads = 0, moments = 0, activations = 0;
  size_t total() const noexcept { return params + grads + moments + activations; }
};

class Trainer {
 public:
  static constexpr char kStateMagic[8] = {'J', 'L', 'T', 'R', 'A', 'I', 'N', 'S'};
  static constexpr uint32_t kStateVersion = 2;
  static constexpr size_t kStateFields = 21, kStateFloats = 7;
  static constexpr size_t kStateHeaderBytes = 16 + 8 * kStateFields + 4 * kStateFloats;
  static constexpr size_t kStateFieldsV1 = 18;
  static constexpr size_t kStateHeaderBytesV1 = 16 + 8 * kStateFieldsV1 + 4 * kStateFloats;

  // Fresh weights from config.seed (or copy others into model().params()
  // before the first step). The shards must outlive the trainer.
  static Result<Trainer> create(const ModelShape& shape, const TrainConfig& config, const TokenShard& train_shard,
                                const TokenShard* val_shard, AnswerMasks masks = {}) {
    JIELONG_ASSIGN_OR_RETURN(Trainer t, build(shape, config, train_shard, val_shard, masks));
    model::detail::NormalStream normal{config.seed};
    init_params(t.model_->layout(), t.model_->params(), normal);
    return t;
  }

  // A run continued from a state file (its shape and configuration with it),
  // on the same data (the training tokens' checksum and whether answers are
  // masked must match). steps > 0 moves the end of the run (and of the
  // cosine schedule).
  static Result<Trainer> resume(const std::string& path, const TokenShard& train_shard, const TokenShard* val_shard,
                                size_t steps = 0, AnswerMasks masks = {}) {
    JIELONG_ASSIGN_OR_RETURN(std::vector<unsigned char> bytes, read_file(path));
    auto bad = [&](const std::string& what) { return make_error(Code::format_error, path + ": training state: " + what); };
    if (bytes.size() < 12 + 8)
      return bad("file of " + std::to_string(bytes.size()) + " bytes is shorter than its header and checksum (truncated)");
    if (std::memcmp(bytes.data(), kStateMagic, 8) != 0) return bad("bad magic (not a jielong training state)");
    uint32_t version = 0;
    std::memcpy(&version, bytes.data() + 8, 4);
    if (version != kStateVersion && version != 1)
      return make_error(Code::unsupported, path + ": training state version " + std::to_string(version) +
                                               " (this build reads versions 1 and " + std::to_string(kStateVersion) + ")");
    const size_t fields = version == 1 ? kStateFieldsV1 : kStateFields;
    const size_t header_bytes = version == 1 ? kStateHeaderBytesV1 : kStateHeaderBytes;
    if (bytes.size() < header_bytes + 8)
      return bad("file of " + std::to_string(bytes.size()) + " bytes is shorter than its " +
                 std::to_string(header_bytes + 8) + "-byte header and checksum (truncated)");
    uint64_t sum = 0;
    std::memcpy(&sum, bytes.data() + bytes.size() - 8, 8);
    if (sum != fnv1a(bytes.data(), bytes.size() - 8)) return bad("checksum mismatch (truncated or damaged)");
    // Version 1 had no evaluation interval (the command's default then was
    // 100), no masks and no data checksum (not checked).
    uint64_t f[kStateFields] = {};
    f[18] = 100;
    float x[kStateFloats];
    std::memcpy(f, bytes.data() + 16, 8 * fields);
    std::memcpy(x, bytes.data() + 16 + 8 * fields, sizeof x);
    ModelShape shape{f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7] != 0};
    TrainConfig c;
    c.batch = f[8], c.seq_len = f[9], c.accumulation = f[10], c.steps = f[11], c.eval_batches = f[12];
    c.seed = f[13];
    c.eval_every = f[18];
    c.optimizer = {.lr = x[0], .beta1 = x[1], .beta2 = x[2], .eps = x[3], .weight_decay = x[4],
                   .decay_embeddings = f[14] != 0, .grad_clip = x[5], .warmup_steps = f[15], .total_steps = 0,
                   .min_lr_ratio = x[6]};
    if (steps) c.steps = steps;
    const uint64_t step = f[16], loader_batch = f[17];
    if (c.eval_every == 0) return bad("an evaluation interval of 0 steps");
    if (version != 1) {
      if ((f[19] != 0) != (masks.train != nullptr))
        return bad(f[19] ? "the run was instruction tuning (answer-masked data); give the same instruction data"
                         : "the run was plain language modelling; instruction data (answer masks) cannot continue it");
      if (f[20] != train_shard.header().data_checksum)
        return bad("the training data differs from the run's (token checksum " + hex(train_shard.header().data_checksum) +
                   ", the run's " + hex(f[20]) + "); resume on the same data");
    }
    // A hostile file's shape must not make us allocate more than it holds.
    const size_t body = bytes.size() - header_bytes - 8;
    auto made = build(shape, c, train_shard, val_shard, masks, body / (3 * sizeof(float)));
    if (!made.ok()) return bad(made.status().message());
    Trainer t = std::move(*made);
    const size_t n = t.model_->layout().size();
    if (body != 3 * n * sizeof(float))
      return bad("holds " + std::to_string(body) + " bytes of weights and moments, the model's shape needs " +
                 std::to_string(3 * n * sizeof(float)));
    if (step > c.steps) return bad("step " + std::to_string(step) + " is past the run's " + std::to_string(c.steps));
    const unsigned char* p = bytes.data() + header_bytes;
    std::memcpy(t.model_->params(), p, n * sizeof(float));
    std::memcpy(t.opt_->first_moment().data(), p + n * sizeof(float), n * sizeof(float));
    std::memcpy(t.opt_->second_moment().data(), p + 2 * n * sizeof(float), n * sizeof(float));
    t.opt_->set_steps_taken(step);
    t.step_ = step;
    t.train_loader_.set_state({c.seed, loader_batch});
    return t;
  }

  // The sequence length and seed a state file's run was made with, read from
  // its header alone (resume() checks the whole file): what a caller needs to
  // prepare the same data before resuming (instruction rows are packed to
  // the sequence length in the seed's order).
  struct DataSettings {
    size_t seq_len = 0;
    uint64_t seed = 0;
  };
  static Result<DataSettings> peek_data_settings(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return make_error(Code::io_error, path + ": cannot open: " + std::strerror(errno));
    unsigned char head[16 + 8 * 14];
    const bool whole = std::fread(head, 1, sizeof head, f) == sizeof head;
    std::fclose(f);
    if (!whole || std::memcmp(head, kStateMagic, 8) != 0)
      return make_error(Code::format_error, path + ": training state: bad magic or truncated header");
    DataSettings d;
    std::memcpy(&d.seq_len, head + 16 + 8 * 9, 8);
    std::memcpy(&d.seed, head + 16 + 8 * 13, 8);
    return d;
  }

  // Writes the state atomically (temporary file, then rename).
  Status save_state(const std::string& path) const {
    const size_t n = model_->layout().size();
    std::vector<unsigned char> bytes(kStateHeaderBytes + 3 * n * sizeof(float) + 8, 0);
    std::memcpy(bytes.data(), kStateMagic, 8);
    std::memcpy(bytes.data() + 8, &kStateVersion, 4);
    const AdamWConfig& o = config_.optimizer;
    const uint64_t f[kStateFields] = {shape_.n_vocab, shape_.n_embd, shape_.n_layers, shape_.n_heads,
                                      shape_.n_kv_heads, shape_.n_ff, shape_.n_ctx, shape_.tied_embeddings,
                                      config_.batch, config_.seq_len, config_.accumulation, config_.steps,
                                      config_.eval_batches, config_.seed, o.decay_embeddings, o.warmup_steps,
                                      step_, train_loader_.state().batch, config_.eval_every,
                                      train_loader_.masked(), data_checksum_};
    const float x[kStateFloats] = {o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, o.grad_clip, o.min_lr_ratio};
    std::memcpy(bytes.data() + 16, f, sizeof f);
    std::memcpy(bytes.data() + 16 + sizeof f, x, sizeof x);
    unsigned char* p = bytes.data() + kStateHeaderBytes;
    std::memcpy(p, model_->params(), n * sizeof(float));
    std::memcpy(p + n * sizeof(float), opt_->first_moment().data(), n * sizeof(float));
    std::memcpy(p + 2 * n * sizeof(float), opt_->second_moment().data(), n * sizeof(float));
    const uint64_t sum = fnv1a(bytes.data(), bytes.size() - 8);
    std::memcpy(bytes.data() + bytes.size() - 8, &sum, 8);
    const std::string tmp = path + ".tmp";
    std::FILE* file = std::fopen(tmp.c_str(), "wb");
    if (!file) return make_error(Code::io_error, tmp + ": cannot open for writing: " + std::strerror(errno));
    const bool written = std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size() && std::fflush(file) == 0;
    if (std::fclose(file) != 0 || !written) {
      std::remove(tmp.c_str());
      return make_error(Code::io_error, tmp + ": write failed (disk full?)");
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
      return make_error(Code::io_error, path + ": cannot rename from " + tmp + ": " + std::strerror(errno));
    return Status::ok();
  }

  // One optimizer step. On a non-finite loss or gradient the parameters,
  // moments and data position stay as they were, and the error says so.
  Result<StepStats> step(Executor& ex) {
    const BatchLoader::State before = train_loader_.state();
    Model<float>& m = *model_;
    m.zero_grad();
    double loss = 0;
    for (size_t a = 0; a < config_.accumulation; ++a) {
      JIELONG_TRY(train_loader_.next(inputs_, targets_, mask_));
      loss += m.forward(inputs_.data(), targets_.data(), mask_.empty() ? nullptr : mask_.data(), ex);
      m.backward(ex);
    }
    loss /= static_cast<double>(config_.accumulation);
    const double norm = global_norm(m.grads(), m.layout().size(), ex);
    if (!std::isfinite(loss) || !std::isfinite(norm)) {
      train_loader_.set_state(before);
      return make_error(Code::out_of_range, "training step " + std::to_string(step_ + 1) + ": the " +
                                                (std::isfinite(loss) ? std::string("gradient norm") : "loss") + " is " +
                                                (std::isnan(std::isfinite(loss) ? norm : loss) ? "NaN" : "infinite") +
                                                "; stopped with the weights of step " + std::to_string(step_) +
                                                " (try a lower learning rate)");
    }
    const AdamW::StepInfo info = opt_->step(m.params(), m.grads(), config_.accumulation, ex);
    ++step_;
    return StepStats{step_, loss, info.lr, info.grad_norm};
  }

  // Mean loss over the first eval_batches sequential B x T windows of the
  // validation shard (the same windows every time); NaN without one.
  double validate(Executor& ex) {
    if (!val_loader_) return std::nan("");
    val_loader_->set_state({0, 0});
    double sum = 0;
    for (size_t b = 0; b < config_.eval_batches; ++b) {
      if (!val_loader_->next(inputs_, targets_, mask_).is_ok()) return std::nan("");
      sum += model_->forward(inputs_.data(), targets_.data(), mask_.empty() ? nullptr : mask_.data(), ex);
    }
    return sum / static_cast<double>(config_.eval_batches);
  }

  size_t step_index() const noexcept { return step_; }
  // A resumed run may change its cadence (> 0); the next state file keeps it.
  void set_eval_every(size_t n) noexcept {
    if (n) config_.eval_every = n;
  }
  const TrainConfig& config() const noexcept { return config_; }
  const ModelShape& shape() const noexcept { return shape_; }
  Model<float>& model() noexcept { return *model_; }
  const Model<float>& model() const noexcept { return *model_; }
  const ParamLayout& layout() const noexcept { return model_->layout(); }
  size_t tokens_per_step() const noexcept { return config_.batch * config_.seq_len * config_.accumulation; }

  MemoryEstimate memory() const noexcept {
    const size_t n = model_->layout().size() * sizeof(float);
    return {n, n, 2 * n, model_->activation_floats() * sizeof(float)};
  }

 private:
  static Result<Trainer> build(const ModelShape& shape, const TrainConfig& config, const TokenShard& train_shard,
                               const TokenShard* val_shard, AnswerMasks masks, size_t max_params = SIZE_MAX) {
    if (config.accumulation == 0 || config.eval_batches == 0 || config.steps == 0 || config.eval_every == 0)
      return make_error(Code::invalid_argument,
                        "trainer: steps, accumulation, validation batches and the evaluation interval must be > 0");
    if (val_shard && (masks.train != nullptr) != (masks.val != nullptr))
      return make_error(Code::invalid_argument, "trainer: answer masks are needed for both splits or neither");
    if (train_shard.header().vocab_size > shape.n_vocab)
      return make_error(Code::invalid_argument, "trainer: the training shard's vocabulary (" +
                                                    std::to_string(train_shard.header().vocab_size) +
                                                    " tokens) is larger than the model's " + std::to_string(shape.n_vocab));
    const model::HParams hp = shape.hparams();
    JIELONG_ASSIGN_OR_RETURN(ParamLayout layout, ParamLayout::create(hp));
    if (layout.size() > max_params)
      return make_error(Code::format_error, "a model of " + std::to_string(layout.size()) +
                                                " parameters does not fit in the file");
    // Bounds that keep the activations allocatable whatever a state file says.
    const double tokens = static_cast<double>(config.batch) * static_cast<double>(config.seq_len);
    if (tokens > double(1 << 20) || tokens * static_cast<double>(hp.n_vocab) > 0x1p32 ||
        tokens * static_cast<double>(config.seq_len * hp.n_heads * hp.n_layers) > 0x1p32)
      return make_error(Code::invalid_argument, "trainer: batch " + std::to_string(config.batch) + " x sequence " +
                                                    std::to_string(config.seq_len) + " is too large for this model");
    if (config.batch == 0 || config.seq_len > hp.n_ctx_train)
      return make_error(Code::invalid_argument, "trainer: batch " + std::to_string(config.batch) + " x sequence " +
                                                    std::to_string(config.seq_len) + " does not fit the context " +
                                                    std::to_string(hp.n_ctx_train));
    Trainer t;
    t.shape_ = shape;
    t.config_ = config;
    t.config_.optimizer.total_steps = config.steps;
    JIELONG_ASSIGN_OR_RETURN(Model<float> m, Model<float>::create(hp, config.batch, config.seq_len));
    t.model_ = std::make_unique<Model<float>>(std::move(m));
    t.opt_ = std::make_unique<AdamW>(t.model_->layout(), t.config_.optimizer);
    JIELONG_ASSIGN_OR_RETURN(t.train_loader_,
                             BatchLoader::create(train_shard, static_cast<int32_t>(config.batch),
                                                 static_cast<int32_t>(config.seq_len), config.seed,
                                                 BatchLoader::Order::random, masks.train));
    t.data_checksum_ = train_shard.header().data_checksum;
    if (val_shard) {
      if (val_shard->header().vocab_size > shape.n_vocab)
        return make_error(Code::invalid_argument, "trainer: the validation shard's vocabulary is larger than the model's");
      JIELONG_ASSIGN_OR_RETURN(BatchLoader v, BatchLoader::create(*val_shard, static_cast<int32_t>(config.batch),
                                                                  static_cast<int32_t>(config.seq_len), 0,
                                                                  BatchLoader::Order::sequential, masks.val));
      t.val_loader_ = std::make_unique<BatchLoader>(v);
    }
    t.inputs_.resize(config.batch * config.seq_len);   // [B][T]
    t.targets_.resize(config.batch * config.seq_len);  // [B][T]
    if (masks.train) t.mask_.resize(config.batch * config.seq_len);  // [B][T]
    return t;
  }

  static std::string hex(uint64_t v) {
    char b[24];
    std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
    return b;
  }

  static Result<std::vector<unsigned char>> read_file(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return make_error(Code::io_error, path + ": cannot open: " + std::strerror(errno));
    std::vector<unsigned char> out;
    unsigned char buf[1 << 16];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.insert(out.end(), buf, buf + n);
    const bool failed = std::ferror(f);
    std::fclose(f);
    if (failed) return make_error(Code::io_error, path + ": read failed");
    return out;
  }

  ModelShape shape_;
  TrainConfig config_;
  // Held by pointer: AdamW keeps the model's layout's address.
  std::unique_ptr<Model<float>> model_;
  std::unique_ptr<AdamW> opt_;
  BatchLoader train_loader_;
  std::unique_ptr<BatchLoader> val_loader_;
  std::vector<int32_t> inputs_, targets_;
  std::vector<uint8_t> mask_;  // empty unless the data is answer-masked
  uint64_t data_checksum_ = 0;
  size_t step_ = 0;
};

}  // namespace jielong::train

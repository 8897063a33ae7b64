// The engine against the reference implementations in ../shared/reference:
// llama.cpp's logits and greedy continuations for every shared GGUF model,
// llama2.c's greedy texts, and llama2.c's perplexity. Skipped (with a
// message) when ../shared is absent.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "jielong/run/eval.hpp"
#include "../examples/jielong/eval_json.hpp"
#include "jielong/run/generate.hpp"
#include "jielong/run/load.hpp"
#include "support/shared.hpp"

using namespace jielong;

namespace {

// A minimal JSON reader for the reference files (objects, arrays, strings,
// numbers): enough to read llama.cpp's records, nothing more.
struct Json {
  enum Kind { null, number, string, array, object } kind = null;
  double num = 0;
  std::string str;
  std::vector<Json> items;                          // array elements
  std::vector<std::pair<std::string, Json>> members;  // object members, in order

  const Json& operator[](std::string_view key) const {
    for (const auto& [k, v] : members)
      if (k == key) return v;
    static const Json none;
    return none;
  }
  const Json& operator[](size_t i) const { return items[i]; }
  size_t size() const { return items.size(); }

  static bool parse(std::string_view s, Json& out) {
    size_t i = 0;
    return parse_value(s, i, out);
  }

 private:
  static void skip(std::string_view s, size_t& i) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) ++i;
  }
  static void put_utf8(std::string& o, uint32_t cp) {
    if (cp < 0x80) {
      o += static_cast<char>(cp);
    } else if (cp < 0x800) {
      o += static_cast<char>(0xC0 | (cp >> 6));
      o += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      o += static_cast<char>(0xE0 | (cp >> 12));
      o += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      o += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  static bool parse_string(std::string_view s, size_t& i, std::string& o) {
    if (s[i] != '"') return false;
    ++i;
    while (i < s.size() && s[i] != '"') {
      if (s[i] == '\\') {
        ++i;
        if (i >= s.size()) return false;
        switch (s[i]) {
          case 'n': o += '\n'; break;
          case 't': o += '\t'; break;
          case 'r': o += '\r'; break;
          case 'b': o += '\b'; break;
          case 'f': o += '\f'; break;
          case 'u': {
            if (i + 4 >= s.size()) return false;
            put_utf8(o, static_cast<uint32_t>(std::stoul(std::string(s.substr(i + 1, 4)), nullptr, 16)));
            i += 4;
            break;
          }
          default: o += s[i];
        }
        ++i;
      } else {
        o += s[i++];
      }
    }
    if (i >= s.size()) return false;
    ++i;
    return true;
  }
  static bool parse_value(std::string_view s, size_t& i, Json& out) {
    skip(s, i);
    if (i >= s.size()) return false;
    if (s[i] == '"') {
      out.kind = string;
      return parse_string(s, i, out.str);
    }
    if (s[i] == '[' || s[i] == '{') {
      const bool obj = s[i] == '{';
      out.kind = obj ? object : array;
      ++i;
      skip(s, i);
      if (i < s.size() && s[i] == (obj ? '}' : ']')) {
        ++i;
        return true;
      }
      for (;;) {
        skip(s, i);
        std::string key;
        if (obj) {
          if (!parse_string(s, i, key)) return false;
          skip(s, i);
          if (i >= s.size() || s[i] != ':') return false;
          ++i;
        }
        Json v;
        if (!parse_value(s, i, v)) return false;
        if (obj) out.members.emplace_back(std::move(key), std::move(v));
        else out.items.push_back(std::move(v));
        skip(s, i);
        if (i >= s.size()) return false;
        if (s[i] == ',') {
          ++i;
          continue;
        }
        if (s[i] == (obj ? '}' : ']')) {
          ++i;
          return true;
        }
        return false;
      }
    }
    // A number.
    size_t end = i;
    while (end < s.size() && std::strchr("+-0123456789.eE", s[end]) != nullptr) ++end;
    if (end == i) return false;
    out.kind = number;
    out.num = std::strtod(std::string(s.substr(i, end - i)).c_str(), nullptr);
    i = end;
    return true;
  }
};

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string unhex(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
  return out;
}

// Largest |our logit - llama.cpp's logit| over the reference's listed top
// logits, per model, on the Scalar and Best backends: what each reaches in
// Release (CMake and Meson) and the sanitizer build, with a margin of about
// 1.5x (the worst of 2 prompts x 16 positions x 8 logits is itself a sample).
// llama.cpp computed with an f16 KV cache, which the engine reproduces (q
// and attention weights rounded to f16 as ggml does).
//  - f32: float summation order only; reaches 1.8e-3 on logits ~12.
//  - f16: llama.cpp also rounds activations to f16 inside f16 dot products,
//    which our kernels do not; reaches 2.5e-3 (qwen2), 1.3e-3 (llama).
//  - bf16: likewise with bf16 (8-bit mantissa) activations; reaches 0.049.
//  - quantized weights: activations are rounded to 8 bits before every
//    matvec, as ggml does, so the logits agree to the reference's printed
//    precision (6 digits: 5e-5) -- until the last bit of a float (summation
//    order, FMA contraction) flips one of those roundings; in these
//    random-weight models one flip moves every later logit by up to ~0.3.
//    Over the prompts, llama Q8_0, Q4_0 and Q3_K_M see no flip on either
//    backend in any of the builds: held to 1e-4 (the printed precision,
//    twice). The others flip, differently on each backend: held to 1.5x the
//    worst measured on either backend, Best measured on AVX-512 VNNI and on
//    AVX2. Built with -ffp-contract=off (CMakeLists.txt), Scalar's bits no
//    longer depend on the -march g++ tunes for; unfused, Scalar and Best both
//    flip once in qwen2 Q8_0 (0.089, where g++'s contraction for an AVX-512
//    CPU had kept it at 5e-5) and in Q4_K_M (0.124), and Scalar's
//    Q5_K_M is back at 0.015 (it was 0.128 when contracted). Over the greedy
//    continuation (64 more positions) flips come to the others too: the
//    Best backend flips on Q8_0 at step 17 of one prompt (Release and the
//    sanitizer build alike; Scalar does not), so a quantized model's
//    continuation may part from the reference where its top two are closer
//    than twice what one flip does (kFlip).
struct Tolerance {
  const char* model;
  float logit;
};
constexpr float kFlip = 0.35f;  // measured 0.15-0.32 after one flip
constexpr Tolerance kTolerances[] = {
    {"stories260K", 2e-3f},        {"synth-llama-f32", 3e-3f},     {"synth-llama-f16", 4e-3f},
    {"synth-qwen2-f16", 4e-3f},    {"synth-llama-bf16", 8e-2f},    {"synth-llama-q8_0", 1e-4f},
    {"synth-qwen2-q8_0", 0.14f},   {"synth-llama-q4_0", 1e-4f},    {"synth-llama-q3_k_m", 1e-4f},
    {"synth-llama-q4_1", 0.15f},   {"synth-llama-q5_0", 0.19f},    {"synth-llama-q5_1", 0.2f},
    {"synth-llama-q4_k_m", 0.19f}, {"synth-llama-q5_k_m", 0.09f},  {"synth-llama-q6_k", 0.3f},
};
// Top-1 checks over the prompts excused as near-ties (the reference's best
// two closer than twice the model's tolerance), per model and backend, at
// most: Q4_1 reaches 8 of its 16 positions, Q6_K 5, Q4_K_M 4; the other
// models 3 or fewer (in all 52 of 468 checks on AVX2, 11%, where one
// tolerance of 0.35 excused 37%).
constexpr size_t kMaxNearTies = 8;

// A model the table does not name (one added to ../shared later) is held to
// what one flip can do.
float tolerance_for(const std::string& name) {
  for (const auto& t : kTolerances)
    if (name == t.model) return t.logit;
  return kFlip;
}

// Float weights: no 8-bit rounding, so no flips; the logits' own tolerance.
float greedy_tolerance_for(const std::string& name) {
  const bool float_weights = name == "stories260K" || name.ends_with("f32") || name.ends_with("f16");
  return float_weights ? tolerance_for(name) : std::max(tolerance_for(name), kFlip);
}

std::string model_path_for(const std::filesystem::path& shared, const std::string& name) {
  if (name == "stories260K") return (shared / "models/stories260K/stories260K.gguf").string();
  return (shared / "models/synth" / (name + ".gguf")).string();
}

// llama.cpp's Q2_K mix stores ffn_down (704 columns, not a multiple of 256)
// as IQ4_NL, which the engine does not read yet.
constexpr const char* kNotLoadedYet = "synth-llama-q2_k";

// Every llama.cpp reference record of one model, on the Scalar and Best
// backends: the same tokens, each reference top logit within the model's
// tolerance, the same top-1 unless the reference's best two are a near-tie
// (at most kMaxNearTies of those excused per model and backend), and the
// greedy continuation equal until a near-tie (greedy_tolerance_for).
void check_llamacpp_reference(const std::filesystem::path& shared, const std::string& name) {
  CAPTURE(name);
  const std::string path = model_path_for(shared, name);
  if (!std::filesystem::exists(path)) {
    test::skip(path + " not found");
    return;
  }
  auto lm = run::load(path);
  REQUIRE_MESSAGE(lm.ok(), lm.status().to_string());
  const auto records = read_lines((shared / "reference/llamacpp" / (name + ".jsonl")).string());
  REQUIRE(!records.empty());
  for (run::Backend backend : {run::Backend::scalar, run::Backend::best}) {
    const std::string backend_str = run::backend_name(backend);
    CAPTURE(backend_str);
    const float tol = tolerance_for(name), greedy_tol = greedy_tolerance_for(name);
    float worst = 0;
    size_t positions = 0, near_ties = 0;
    for (const std::string& line : records) {
      Json j;
      REQUIRE(Json::parse(line, j));
      CAPTURE(j["prompt"].str);
      std::vector<int32_t> ref_tokens;
      for (const auto& t : j["tokens"].items) ref_tokens.push_back(static_cast<int32_t>(t.num));
      // Same tokens as llama.cpp's tokenizer.
      if (lm->tokenizer) {
        auto ids = lm->tokenizer->encode(j["prompt"].str);
        REQUIRE(ids.ok());
        CHECK(*ids == ref_tokens);
      } else {
        MESSAGE("tokenization of " << name << " not checked: no tokenizer for its vocabulary yet");
      }
      // Logits from the reference's tokens, with llama.cpp's f16 KV cache.
      run::SessionOptions so;
      so.kv_type = model::KvType::f16;
      so.backend = backend;
      auto e = run::evaluate_ids(lm->model, ref_tokens, j["greedy"].size(), 8, so);
      REQUIRE_MESSAGE(e.ok(), e.status().to_string());
      float record_worst = 0;
      for (size_t p = 0; p < ref_tokens.size(); ++p, ++positions) {
        const Json& top = j["prompt_top"][p];
        std::map<int32_t, float> ours;
        for (const auto& [id, logit] : e->prompt_top[p]) ours[id] = logit;
        // Top-1 equal unless the reference's best two are closer than two
        // deviations: then each of them may be ours by the deviation alone.
        const int32_t ref_best = static_cast<int32_t>(top[0][0].num);
        const bool near_tie = top.size() > 1 && top[0][1].num - top[1][1].num < 2 * tol;
        if (near_tie) ++near_ties;
        else CHECK_MESSAGE(e->prompt_top[p][0].first == ref_best, "position " << p << ": top-1 differs");
        // Each reference top logit that is also in our top 8 agrees; the
        // logit of the best token is always compared.
        for (size_t k = 0; k < top.size(); ++k) {
          const int32_t id = static_cast<int32_t>(top[k][0].num);
          if (!ours.count(id)) {
            CHECK_MESSAGE(k > 0, "position " << p << ": reference best token " << id << " not in our top 8");
            continue;
          }
          record_worst = std::max(record_worst, static_cast<float>(std::fabs(ours[id] - top[k][1].num)));
        }
      }
      CHECK_MESSAGE(record_worst <= tol, "max logit difference " << record_worst << " > tolerance " << tol);
      worst = std::max(worst, record_worst);
      // Greedy continuation equal until a near-tie.
      size_t agree = 0;
      for (; agree < j["greedy"].size(); ++agree)
        if (e->greedy[agree] != static_cast<int32_t>(j["greedy"][agree].num)) break;
      if (agree < j["greedy"].size())
        CHECK_MESSAGE(e->greedy_gap[agree] < 2 * greedy_tol,
                      "greedy diverges at step " << agree << " with a top-2 gap of " << e->greedy_gap[agree]);
    }
    CHECK_MESSAGE(near_ties <= kMaxNearTies, near_ties << " of " << positions << " top-1 checks excused as near-ties");
    MESSAGE(name << " [" << backend_str << "]: max logit diff " << worst << " (tolerance " << tol << "), "
                 << near_ties << "/" << positions << " near-ties");
  }
}

}  // namespace

TEST_CASE("eval JSON lines are byte-identical to the reference layout") {
  const auto shared = test::needs_shared("reference/llamacpp");
  if (!shared) return;
  size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(*shared / "reference/llamacpp")) {
    if (entry.path().extension() != ".jsonl") continue;
    for (const std::string& line : read_lines(entry.path().string())) {
      Json j;
      REQUIRE(Json::parse(line, j));
      run::EvalRecord r;
      r.prompt = j["prompt"].str;
      for (const auto& t : j["tokens"].items) r.tokens.push_back(static_cast<int32_t>(t.num));
      for (const auto& pos : j["prompt_top"].items) {
        r.prompt_top.emplace_back();
        for (const auto& e : pos.items) r.prompt_top.back().emplace_back(static_cast<int32_t>(e[0].num), static_cast<float>(e[1].num));
      }
      for (const auto& t : j["greedy"].items) r.greedy.push_back(static_cast<int32_t>(t.num));
      r.text = unhex(j["text_hex"].str);
      CHECK(cli::to_json_line(r) == line);
      ++n;
    }
  }
  CHECK(n > 0);
}

TEST_CASE("llama.cpp references: tokens, top logits, greedy continuation") {
  const auto shared = test::needs_shared("reference/llamacpp");
  if (!shared) return;
  size_t models = 0;
  for (const auto& entry : std::filesystem::directory_iterator(*shared / "reference/llamacpp")) {
    if (entry.path().extension() != ".jsonl") continue;
    const std::string name = entry.path().stem().string();
    if (name == kNotLoadedYet) continue;
    check_llamacpp_reference(*shared, name);
    ++models;
  }
  CHECK(models >= 15);
}

// Registered as an expected failure (tests/CMakeLists.txt, tests/meson.build).
TEST_CASE("llama.cpp reference of a model the engine does not load yet" * doctest::test_suite("unsupported")) {
  const auto shared = test::needs_shared("reference/llamacpp");
  if (!shared) return;
  check_llamacpp_reference(*shared, kNotLoadedYet);
}

TEST_CASE("llama2.c: stories260K greedy text, f32 and q8_0 checkpoints") {
  const auto tok = test::shared_file("models/stories260K/tok512.bin");
  if (!tok) return;
  struct Case {
    const char* model;
    const char* reference;
  };
  for (const Case c : {Case{"models/stories260K/stories260K.bin", "reference/llama2c/llama2c-stories260K-greedy200.txt"},
                       Case{"models/stories260K/stories260K_q8.bin",
                            "reference/llama2c/llama2c-stories260K_q8-greedy200.txt"}}) {
    const std::string model_name = c.model;  // a std::string, so that doctest prints the text
    CAPTURE(model_name);
    const auto model_path = test::shared_file(c.model);
    const auto ref_path = test::shared_file(c.reference);
    if (!model_path || !ref_path) continue;
    auto lm = run::load(*model_path, *tok);
    if (!lm.ok() && lm.status().code() == Code::unsupported) {
      WARN_MESSAGE(false, "not checked: " << lm.status().to_string());
      continue;
    }
    REQUIRE_MESSAGE(lm.ok(), lm.status().to_string());
    run::SessionOptions so;
    so.kv_type = model::KvType::f32;  // run.c keeps its cache in f32
    auto s = run::Session::create(lm->model, so);
    REQUIRE(s.ok());
    run::GenerateParams gp;
    gp.max_tokens = 200;
    std::string text;
    auto r = run::generate(*s, *lm->tokenizer, "", gp, [&](std::string_view piece) {
      text.append(piece);
      return true;
    });
    REQUIRE_MESSAGE(r.ok(), r.status().to_string());
    text += "\n";  // run.c ends its output with a newline
    CHECK(text == read_file(*ref_path));
  }
}

TEST_CASE("llama2.c: stories260K perplexity") {
  const auto model_path = test::shared_file("models/stories260K/stories260K.bin");
  const auto tok = test::shared_file("models/stories260K/tok512.bin");
  if (!model_path || !tok) return;
  auto lm = run::load(*model_path, *tok);
  REQUIRE_MESSAGE(lm.ok(), lm.status().to_string());
  run::SessionOptions so;
  so.kv_type = model::KvType::f32;
  auto r = run::perplexity(*lm, "One day, a clever fox found a shiny key under the old oak tree.", so);
  REQUIRE(r.ok());
  // reference/perplexity.txt: n_tokens 35, nll 54.404121, perplexity 4.953633.
  CHECK(r->n_tokens == 35);
  CHECK(std::fabs(r->nll - 54.404121) < 1e-3);
  CHECK(std::fabs(r->perplexity - 4.953633) < 1e-4);
}

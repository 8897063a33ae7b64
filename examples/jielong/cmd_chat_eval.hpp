// jielong chat-eval: a chat model's greedy answers to held-out questions
// (JSON lines as prepare-chat's heldout.jsonl writes them: a prompt and the
// reference answer) scored by token F1 against the reference (SQuAD's
// normalisation, train/instruct.hpp); prints the mean, and with --out each
// question, answer and score as JSON lines.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "args.hpp"
#include "cmd_prepare_chat.hpp"
#include "common.hpp"
#include "corpus_input.hpp"
#include "jielong/run/generate.hpp"
#include "jielong/run/load.hpp"
#include "jielong/text/chat_template.hpp"
#include "jielong/train/instruct.hpp"

namespace jielong::cli {

inline int cmd_chat_eval(Args& args) {
  std::string model_path, data_path, out_path;
  int64_t n_predict = 64, threads = 1, limit = 0;
  run::LoadOptions lo;
  Flags flags("chat-eval", "[-m MODEL] --data HELDOUT.jsonl [--out ANSWERS.jsonl]",
              "Greedy answers of a chat model to held-out questions, scored by token F1 against the references.");
  flags.add_string("-m,--model", &model_path, "chat model (default: the default model)");
  flags.add_string("--data", &data_path, "JSON lines with \"prompt\" and \"answer\" (prepare-chat's heldout.jsonl)");
  flags.add_string("--out", &out_path, "write each question, answer, reference and F1 here as JSON lines");
  flags.add_int("-n,--n-predict", &n_predict, "tokens per answer at most", 1, 4096);
  flags.add_int("-t,--threads", &threads, "threads", 1, 1024);
  flags.add_int("--limit", &limit, "score only the first N questions (0: all)", 0);
  if (auto rc = flags.parse(args)) return *rc;
  auto fail = [](const std::string& m) {
    std::fprintf(stderr, "jielong chat-eval: %s\n", m.c_str());
    return 1;
  };
  if (data_path.empty()) return fail("give the questions with --data");
  if (!model_or_default("chat-eval", model_path)) return 1;
  run::LoadedModel lm;
  if (!load_or_report("chat-eval", model_path, "", lo, lm)) return 1;
  if (!lm.tokenizer) return fail(model_path + " has no tokenizer");
  auto text = read_corpus_file(data_path);
  if (!text.ok()) return fail(text.status().to_string());
  std::FILE* out = nullptr;
  if (!out_path.empty() && !(out = std::fopen(out_path.c_str(), "w"))) return fail(out_path + ": cannot open");
  double sum = 0;
  size_t n = 0, line_no = 0;
  for (size_t b = 0; b < text->size() && (limit == 0 || n < static_cast<size_t>(limit));) {
    size_t e = text->find('\n', b);
    if (e == std::string::npos) e = text->size();
    const std::string line = text->substr(b, e - b);
    b = e + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto ex = train::parse_instruct_line(line);
    if (!ex.ok()) return fail(data_path + ":" + std::to_string(line_no) + ": " + ex.status().message());
    // The conversation up to the last assistant turn is the prompt; that turn is the reference.
    std::vector<text::ChatMessage> msgs;
    for (const train::ChatTurn& t : ex->turns) msgs.push_back({t.role, t.content});
    const std::string reference(msgs.back().content);
    msgs.pop_back();
    auto prompt = text::render_chat(text::ChatTemplate::chatml, msgs, true);
    if (!prompt.ok()) return fail(prompt.status().to_string());
    run::SessionOptions so;
    so.n_ctx = lm.model->hparams().n_ctx_train;
    so.n_threads = static_cast<size_t>(threads);
    so.kv_type = model::KvType::f32;
    auto session = run::Session::create(lm.model, so);  // greedy by default
    if (!session.ok()) return fail(session.status().to_string());
    run::GenerateParams gp;
    gp.max_tokens = static_cast<size_t>(n_predict);
    gp.parse_special = true;
    std::string answer;
    auto r = run::generate(*session, *lm.tokenizer, *prompt, gp, [&](std::string_view piece) {
      answer += piece;
      return true;
    });
    if (!r.ok()) return fail(r.status().to_string());
    const double f1 = train::token_f1(answer, reference);
    sum += f1;
    ++n;
    if (out)
      std::fprintf(out, "{\"prompt\": %s, \"answer\": %s, \"reference\": %s, \"f1\": %.4f}\n",
                   chat_data::json_string(msgs.back().content).c_str(), chat_data::json_string(answer).c_str(),
                   chat_data::json_string(reference).c_str(), f1);
  }
  if (out && std::fclose(out) != 0) return fail(out_path + ": write failed");
  if (n == 0) return fail(data_path + ": no questions");
  std::printf("questions %zu  mean token F1 %.4f\n", n, sum / static_cast<double>(n));
  return 0;
}

}  // namespace jielong::cli

// arithmetic: the reasoning model's data and evaluation (arithmetic.hpp).
//
//   arithmetic data -o DIR [--documents N] [-s SEED]
//       DIR/tok.gguf   a byte-level vocabulary (256 bytes + <|endoftext|>):
//                      every character is a token
//       DIR/train.bin  training problems, direct and scratchpad, none held out
//       DIR/val.bin    held-out problems (the validation loss is on unseen ones)
//   then: jielong train --recipe models/jielong-arith.recipe --data DIR -m DIR/tok.gguf ...
//
//   arithmetic eval -m MODEL [-n PER_CELL] [--md FILE] [--svg FILE] [-t THREADS]
//       greedy answers to held-out problems for every operation, digit count
//       and format; an answer counts when its last '=' line (direct: its
//       line) is the exact result. Prints the accuracy table as markdown.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <jielong/jielong.hpp>

#include "../jielong/args.hpp"
#include "arithmetic.hpp"
#include "jielong/io/gguf_writer.hpp"
#include "jielong/text/gguf_vocab.hpp"
#include "jielong/train/shards.hpp"

namespace {

using namespace jielong;

int fail(const std::string& message) {
  std::fprintf(stderr, "arithmetic: %s\n", message.c_str());
  return 1;
}

int cmd_data(cli::Args& args) {
  std::string out;
  int64_t documents = 200000, seed = 1, val_per_kind = 100;
  cli::Flags flags("data", "-o DIR [--documents N] [-s SEED]", "Write the tokenizer and the token shards.");
  flags.add_string("-o,--out", &out, "folder for tok.gguf, train.bin, val.bin");
  flags.add_int("--documents", &documents, "training problems", 1, INT64_MAX);
  flags.add_int("--val-per-kind", &val_per_kind, "held-out problems per operation, digit count and format", 1, 1 << 20);
  flags.add_int("-s,--seed", &seed, "which problems are drawn", 0);
  if (auto rc = flags.parse(args)) return *rc;
  if (out.empty()) return fail("give the output folder with -o");
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec) return fail(out + ": cannot create: " + ec.message());

  auto vocab = arith::byte_vocab();
  if (!vocab.ok()) return fail(vocab.status().to_string());
  io::GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_string("general.name", vocab->name);
  text::add_vocab_metadata(w, *vocab);
  const std::string tok_path = out + "/tok.gguf";
  if (Status s = w.write(tok_path); !s.is_ok()) return fail(s.to_string());
  auto tok = text::Tokenizer::create(*vocab);
  if (!tok.ok()) return fail(tok.status().to_string());

  std::vector<int32_t> ids;
  auto write = [&](const std::string& name, auto&& produce) -> Status {
    auto writer = train::ShardWriter::create(out + "/" + name, 257, static_cast<uint32_t>(tok->bos()));
    if (!writer.ok()) return writer.status();
    Status st;
    size_t docs = 0, tokens = 0;
    produce([&](const std::string& doc) {
      if (!st.is_ok()) return;
      ids.clear();
      st = tok->encode_append(doc, {.add_bos = true, .parse_special = false}, ids);
      if (st.is_ok()) st = writer->append(ids);
      ++docs, tokens += ids.size();
    });
    JIELONG_TRY(st);
    JIELONG_TRY(writer->finish());
    std::fprintf(stderr, "%s: %zu problems, %zu tokens\n", name.c_str(), docs, tokens);
    return Status::ok();
  };
  arith::DataOptions o;
  o.documents = static_cast<size_t>(documents);
  o.seed = static_cast<uint64_t>(seed);
  if (Status s = write("train.bin", [&](auto&& sink) { arith::generate_training(o, sink); }); !s.is_ok())
    return fail(s.to_string());
  Status s = write("val.bin", [&](auto&& sink) {
    for (arith::Op op : arith::kOps)
      for (int d = 1; d <= arith::max_digits(op); ++d)
        for (const arith::Problem& p : arith::held_out_problems(op, d, static_cast<size_t>(val_per_kind), 1000 + o.seed))
          for (arith::Format f : arith::kFormats) sink(arith::document(p, f));
  });
  if (!s.is_ok()) return fail(s.to_string());
  return 0;
}

struct Cell {
  arith::Op op;
  int digits;
  size_t right[2] = {0, 0}, total = 0;  // [format]
};

std::string percent(size_t right, size_t total) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f%%", total ? 100.0 * static_cast<double>(right) / static_cast<double>(total) : 0.0);
  return b;
}

// Grouped bars: per operation and digit count, direct and scratchpad.
std::string table_svg(const std::vector<Cell>& cells, const std::string& title) {
  const int w = 80 + 56 * static_cast<int>(cells.size()), h = 300, top = 40, bottom = 250, left = 50;
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(w) + "\" height=\"" +
                  std::to_string(h) + "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s += "<text x=\"" + std::to_string(left) + "\" y=\"20\" font-size=\"13\">" + title + "</text>\n";
  for (int pct = 0; pct <= 100; pct += 25) {
    const int y = bottom - (bottom - top) * pct / 100;
    s += "<line x1=\"" + std::to_string(left) + "\" x2=\"" + std::to_string(w - 20) + "\" y1=\"" + std::to_string(y) +
         "\" y2=\"" + std::to_string(y) + "\" stroke=\"#ddd\"/>\n";
    s += "<text x=\"" + std::to_string(left - 6) + "\" y=\"" + std::to_string(y + 4) + "\" text-anchor=\"end\">" +
         std::to_string(pct) + "%</text>\n";
  }
  const char* colour[2] = {"#8fb3d9", "#d9822b"};
  for (size_t i = 0; i < cells.size(); ++i) {
    const int x0 = left + 10 + 56 * static_cast<int>(i);
    for (int f = 0; f < 2; ++f) {
      const double frac = cells[i].total ? static_cast<double>(cells[i].right[f]) / static_cast<double>(cells[i].total) : 0;
      const int bh = static_cast<int>((bottom - top) * frac + 0.5);
      s += "<rect x=\"" + std::to_string(x0 + 20 * f) + "\" y=\"" + std::to_string(bottom - bh) +
           "\" width=\"18\" height=\"" + std::to_string(bh) + "\" fill=\"" + colour[f] + "\"/>\n";
    }
    s += "<text x=\"" + std::to_string(x0 + 19) + "\" y=\"" + std::to_string(bottom + 16) + "\" text-anchor=\"middle\">" +
         std::string(1, arith::op_char(cells[i].op)) + " " + std::to_string(cells[i].digits) + "d</text>\n";
  }
  for (int f = 0; f < 2; ++f)
    s += "<rect x=\"" + std::to_string(left + 160 * f) + "\" y=\"" + std::to_string(h - 22) +
         "\" width=\"12\" height=\"12\" fill=\"" + colour[f] + "\"/><text x=\"" + std::to_string(left + 18 + 160 * f) +
         "\" y=\"" + std::to_string(h - 12) + "\">" + arith::format_name(arith::kFormats[f]) + "</text>\n";
  return s + "</svg>\n";
}

int cmd_eval(cli::Args& args) {
  std::string model_path, md_path, svg_path;
  int64_t per_cell = 200, threads = 1, seed = 1;
  cli::Flags flags("eval", "-m MODEL [-n PER_CELL] [--md FILE] [--svg FILE]",
                   "Greedy accuracy on held-out problems per operation, digit count and format.");
  flags.add_string("-m,--model", &model_path, "the trained model");
  flags.add_int("-n,--per-cell", &per_cell, "held-out problems per operation and digit count", 1, 1 << 20);
  flags.add_int("-s,--seed", &seed, "which held-out problems are drawn", 0);
  flags.add_int("-t,--threads", &threads, "threads", 1, 256);
  flags.add_string("--md", &md_path, "also write the table here (markdown)");
  flags.add_string("--svg", &svg_path, "and as a bar chart here");
  if (auto rc = flags.parse(args)) return *rc;
  if (model_path.empty()) return fail("give the model with -m");
  auto lm = run::load(model_path);
  if (!lm.ok()) return fail(lm.status().to_string());
  if (!lm->tokenizer) return fail(model_path + ": no tokenizer");
  run::SessionOptions so;
  so.n_ctx = 256;
  so.n_threads = static_cast<size_t>(threads);
  auto session = run::Session::create(lm->model, so);
  if (!session.ok()) return fail(session.status().to_string());
  run::GenerateParams gp;
  gp.max_tokens = 240;
  gp.parse_special = false;

  std::vector<Cell> cells;
  std::string text, first_wrong;
  for (arith::Op op : arith::kOps)
    for (int d = 1; d <= arith::max_digits(op); ++d) {
      Cell c{op, d};
      for (const arith::Problem& p : arith::held_out_problems(op, d, static_cast<size_t>(per_cell), 2000 + seed)) {
        for (int f = 0; f < 2; ++f) {
          const arith::Format fmt = arith::kFormats[f];
          if (Status st = session->rewind(session->position()); !st.is_ok()) return fail(st.to_string());
          text.clear();
          auto r = run::generate(*session, *lm->tokenizer, arith::prompt(p, fmt), gp, [&](std::string_view piece) {
            text += piece;
            return true;
          });
          if (!r.ok()) return fail(r.status().to_string());
          const auto got = arith::answer_of(text, fmt);
          const bool right = got && *got == std::to_string(arith::result(p));
          c.right[f] += right;
          if (!right && first_wrong.empty() && fmt == arith::Format::scratchpad)
            first_wrong = arith::prompt(p, fmt) + text;
        }
        ++c.total;
      }
      std::fprintf(stderr, "%s %d digits: direct %s, scratchpad %s\n", arith::op_name(op), d,
                   percent(c.right[0], c.total).c_str(), percent(c.right[1], c.total).c_str());
      cells.push_back(c);
    }

  std::string md = "| operation | digits | problems | direct | scratchpad |\n|---|---:|---:|---:|---:|\n";
  for (const Cell& c : cells)
    md += std::string("| ") + arith::op_name(c.op) + " | " + std::to_string(c.digits) + " | " + std::to_string(c.total) +
          " | " + percent(c.right[0], c.total) + " | " + percent(c.right[1], c.total) + " |\n";
  std::fputs(md.c_str(), stdout);
  if (!first_wrong.empty()) std::fprintf(stderr, "a wrong scratchpad:\n%s\n", first_wrong.c_str());
  auto save = [](const std::string& path, const std::string& content) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    bool ok = f && std::fputs(content.c_str(), f) >= 0;
    if (f) ok = std::fclose(f) == 0 && ok;
    return ok;
  };
  if (!md_path.empty() && !save(md_path, md)) return fail(md_path + ": cannot write");
  if (!svg_path.empty() &&
      !save(svg_path, table_svg(cells, "jielong-arith: exact answers on held-out problems (" +
                                           std::to_string(per_cell) + " per bar, greedy)")))
    return fail(svg_path + ": cannot write");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || (std::string_view(argv[1]) != "data" && std::string_view(argv[1]) != "eval")) {
    std::fprintf(stderr, "usage: arithmetic data -o DIR [options] | arithmetic eval -m MODEL [options]\n"
                         "       (arithmetic data --help, arithmetic eval --help)\n");
    return 1;
  }
  cli::Args args{argv[1], {}};
  for (int i = 2; i < argc; ++i) args.argv.emplace_back(argv[i]);
  return args.command == "data" ? cmd_data(args) : cmd_eval(args);
}

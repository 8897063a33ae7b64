// jielong chat: an interactive conversation with a chat model, as
// `llama-cli -cnv` holds one. The model's replies go to stdout, everything
// else (the prompt, statistics, messages) to stderr, so the replies pipe.
//
// The KV cache keeps the conversation: each turn prefills only the text the
// chat template adds for it (found by rendering the conversation with the
// new message and taking what follows the text already in the cache), never
// the history again.
#pragma once

#include <signal.h>
#include <sys/select.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "args.hpp"
#include "common.hpp"
#include "jielong/run/generate.hpp"
#include "jielong/run/load.hpp"
#include "jielong/run/session.hpp"
#include "jielong/run/session_io.hpp"
#include "jielong/text/chat_template.hpp"

namespace jielong::cli {

namespace chat_detail {

// Ctrl-C: while a reply streams, it ends the reply (the callback sees the
// flag after the current token); at the prompt it ends the program.
inline volatile sig_atomic_t g_interrupted = 0;
extern "C" inline void on_sigint(int) { g_interrupted = 1; }

struct Message {
  std::string role, content;
};

// The conversation and the text of it that the KV cache holds.
struct Conversation {
  text::ChatTemplate tmpl = text::ChatTemplate::unknown;
  std::vector<Message> messages;  // the system prompt (if any) first
  std::string cached;             // the rendered text whose tokens are in the cache

  Result<std::string> render(std::span<const Message> ms, bool add_generation_prompt) const {
    std::vector<text::ChatMessage> views;
    views.reserve(ms.size());
    for (const Message& m : ms) views.push_back({m.role, m.content});
    return text::render_chat(tmpl, views, add_generation_prompt);
  }

  // The text a new user message adds to the cache, up to where the reply starts.
  Result<std::string> user_turn(std::string_view user) const {
    std::vector<Message> ms = messages;
    ms.push_back({"user", std::string(user)});
    JIELONG_ASSIGN_OR_RETURN(std::string full, render(ms, true));
    if (full.compare(0, cached.size(), cached) == 0) return full.substr(cached.size());
    // A format that rewrites earlier turns when one is added cannot keep its
    // cache; this library's formats append, so this is a bug, not an input error.
    return make_error(Code::internal, "chat: the template rewrote the conversation's earlier turns");
  }

  // The text that closes an assistant reply (ChatML: "<|im_end|>\n"): the
  // render of a reply whose content is one marker byte, after the marker.
  Result<std::string> reply_closing() const {
    std::vector<Message> ms = messages;
    ms.push_back({"user", "?"});
    ms.push_back({"assistant", "\x01"});
    JIELONG_ASSIGN_OR_RETURN(std::string full, render(ms, false));
    const size_t at = full.rfind('\x01');
    if (at == std::string::npos) return make_error(Code::internal, "chat: the template dropped the assistant's reply");
    return full.substr(at + 1);
  }

  Status commit(std::string user, std::string reply) {
    messages.push_back({"user", std::move(user)});
    messages.push_back({"assistant", std::move(reply)});
    JIELONG_ASSIGN_OR_RETURN(cached, render(messages, false));
    return Status::ok();
  }
};

// The /save file: "JLCHAT01", version, message count, then per message the
// role's and the content's lengths and bytes (u64 little-endian lengths),
// then the session (run/session_io.hpp) to the end of the file.
inline constexpr char kChatMagic[8] = {'J', 'L', 'C', 'H', 'A', 'T', '0', '1'};
inline constexpr uint64_t kChatVersion = 1;

inline void put_u64(std::string& out, uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); }

inline Status save_chat(const run::Session& s, const Conversation& c, const std::string& path) {
  std::string head(kChatMagic, 8);
  put_u64(head, kChatVersion);
  put_u64(head, c.messages.size());
  for (const Message& m : c.messages) {
    put_u64(head, m.role.size());
    put_u64(head, m.content.size());
    head += m.role;
    head += m.content;
  }
  JIELONG_ASSIGN_OR_RETURN(std::vector<std::byte> state, run::SessionIo::save(s));
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return make_error(Code::io_error, path + ": cannot open for writing: " + std::strerror(errno));
  const bool ok = std::fwrite(head.data(), 1, head.size(), f) == head.size() &&
                  std::fwrite(state.data(), 1, state.size(), f) == state.size();
  if (std::fclose(f) != 0 || !ok) return make_error(Code::io_error, path + ": write failed");
  return Status::ok();
}

// Replaces the session and the conversation with the file's, or leaves both
// as they were and says why.
inline Status load_chat(run::Session& s, Conversation& c, const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return make_error(Code::io_error, path + ": cannot open: " + std::strerror(errno));
  std::string buf;
  char chunk[1 << 16];
  for (size_t n; (n = std::fread(chunk, 1, sizeof chunk, f)) > 0;) buf.append(chunk, n);
  const bool err = std::ferror(f) != 0;
  std::fclose(f);
  if (err) return make_error(Code::io_error, path + ": read failed");
  size_t at = 0;
  auto u64 = [&](uint64_t& v) {
    if (buf.size() - at < 8) return false;
    std::memcpy(&v, buf.data() + at, 8);
    at += 8;
    return true;
  };
  auto bad = [&](const std::string& what) { return make_error(Code::format_error, path + ": " + what); };
  uint64_t version = 0, n = 0;
  if (buf.size() < 8 || std::memcmp(buf.data(), kChatMagic, 8) != 0) return bad("not a saved chat (bad magic)");
  at = 8;
  if (!u64(version) || version != kChatVersion) return bad("saved chat version " + std::to_string(version) +
                                                           ", expected " + std::to_string(kChatVersion));
  if (!u64(n) || n > buf.size() / 16) return bad("truncated message count");
  std::vector<Message> messages(n);
  for (Message& m : messages) {
    uint64_t lr = 0, lc = 0;
    if (!u64(lr) || !u64(lc) || lr > buf.size() - at || lc > buf.size() - at - lr) return bad("truncated message");
    m.role.assign(buf, at, lr);
    m.content.assign(buf, at + lr, lc);
    at += lr + lc;
  }
  Conversation next{c.tmpl, std::move(messages), {}};
  // With replies saved, the cache holds the whole render; without, nothing yet.
  if (next.messages.size() > 0 && next.messages.back().role == "assistant") {
    JIELONG_ASSIGN_OR_RETURN(next.cached, next.render(next.messages, false));
  }
  const auto* p = reinterpret_cast<const std::byte*>(buf.data() + at);
  if (Status st = run::SessionIo::load(s, std::span<const std::byte>(p, buf.size() - at)); !st.is_ok())
    return st.prefix(path);
  c = std::move(next);
  return Status::ok();
}

enum class LineStatus { line, eof, interrupted };

// One line from fd 0 (without its newline), read with read(2) so that Ctrl-C
// interrupts the wait. `pending` carries bytes read past the line.
inline LineStatus read_line(std::string& pending, std::string& line) {
  for (;;) {
    if (const size_t nl = pending.find('\n'); nl != std::string::npos) {
      line.assign(pending, 0, nl);
      pending.erase(0, nl + 1);
      return LineStatus::line;
    }
    // Wait for input with SIGINT let in only inside pselect: a Ctrl-C that
    // comes just before the wait is seen, not lost until the next line.
    sigset_t block, orig;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &orig);
    if (g_interrupted) {
      sigprocmask(SIG_SETMASK, &orig, nullptr);
      return LineStatus::interrupted;
    }
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(STDIN_FILENO, &fds);
    const int ready = ::pselect(STDIN_FILENO + 1, &fds, nullptr, nullptr, nullptr, &orig);
    sigprocmask(SIG_SETMASK, &orig, nullptr);
    if (ready < 0) {
      if (errno == EINTR) continue;  // the flag is checked at the top of the next round
      return LineStatus::eof;
    }
    char buf[4096];
    const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n > 0) {
      pending.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (pending.empty()) return LineStatus::eof;
    line.swap(pending);  // a last line without its newline
    pending.clear();
    return LineStatus::line;
  }
}

inline constexpr const char* kChatHelp =
    "  /help          this list\n"
    "  /reset         forget the conversation (the system prompt stays; sampling starts again from the seed)\n"
    "  /save FILE     write the conversation and its KV cache to FILE\n"
    "  /load FILE     continue the conversation saved in FILE\n"
    "  /quit          leave (so do Ctrl-D and, at this prompt, Ctrl-C)\n"
    "  A line ending in \\ goes on on the next line.\n"
    "  Ctrl-C while the model answers ends its reply.\n";

inline double per_second(size_t n, double s) { return s > 0 ? static_cast<double>(n) / s : 0.0; }

}  // namespace chat_detail

inline int cmd_chat(Args& args) {
  using namespace chat_detail;
  std::string model_path, tokenizer_path, system, template_name;
  int64_t n_predict = -1, threads = 1, ctx = 0;
  SamplingFlags sampling;
  run::LoadOptions lo;
  Flags flags("chat", "[-m MODEL] [--system TEXT] [options]",
              "Talk with a chat model: type a message, read the reply. Replies go to stdout; the prompt, statistics "
              "and messages to stderr. In the chat, /help lists the commands.");
  flags.add_string("-m,--model", &model_path, kModelHelp);
  flags.add_string("-z,--tokenizer", &tokenizer_path, "llama2.c tokenizer.bin (for a .bin checkpoint)");
  flags.add_string("--system", &system, "the system prompt");
  flags.add_string("--template", &template_name,
                   "chat template by name (chatml, llama3, gemma, ...) when the model's is missing or not recognised");
  flags.add_int("-n,--n-predict", &n_predict, "tokens per reply at most (default -1: until the end of the turn)", -1,
                1 << 24);
  sampling.add_to(flags);
  flags.add_int("-t,--threads", &threads, "threads (default 1)", 1, 1024);
  flags.add_int("-c,--ctx", &ctx, "context size: the whole conversation's tokens (default: the model's)", 0, 1 << 24);
  flags.add_switch("--no-mmap", &lo.no_mmap, kNoMmapHelp);
  flags.add_switch("--no-repack", &lo.no_repack, kNoRepackHelp);
  if (auto rc = flags.parse(args)) return *rc;

  if (!model_or_default("chat", model_path)) return 1;
  run::LoadedModel lm;
  if (!load_or_report("chat", model_path, tokenizer_path, lo, lm)) return 1;
  if (!lm.tokenizer) {
    std::fprintf(stderr, "jielong chat: %s has no tokenizer; pass -z TOKENIZER.bin\n", model_path.c_str());
    return 1;
  }
  const text::Tokenizer& tok = *lm.tokenizer;
  Conversation conv;
  if (!template_name.empty()) {
    conv.tmpl = text::chat_template_from_name(template_name);
    if (conv.tmpl == text::ChatTemplate::unknown) {
      std::fprintf(stderr, "jielong chat: --template '%s' is not a template this library renders\n",
                   template_name.c_str());
      return 1;
    }
  } else {
    conv.tmpl = text::detect_chat_template(tok.vocab().chat_template);
    if (conv.tmpl == text::ChatTemplate::unknown) {
      std::fprintf(stderr, "jielong chat: %s %s; name one with --template (e.g. chatml)\n", model_path.c_str(),
                   tok.vocab().chat_template.empty() ? "has no chat template (tokenizer.chat_template)"
                                                     : "has a chat template this library does not recognise");
      return 1;
    }
  }
  if (!system.empty()) conv.messages.push_back({"system", system});
  const std::vector<Message> initial = conv.messages;

  run::SessionOptions so;
  so.n_ctx = static_cast<size_t>(ctx);
  so.n_threads = static_cast<size_t>(threads);
  so.sampling = sampling.params();
  auto session = run::Session::create(lm.model, so);
  if (!session.ok()) {
    std::fprintf(stderr, "jielong chat: %s\n", session.status().to_string().c_str());
    return 1;
  }
  run::Session& s = *session;

  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);

  std::fprintf(stderr,
               "jielong chat: %s, template %.*s, context %zu tokens. /help lists the commands; Ctrl-C ends a reply, "
               "Ctrl-D leaves.\n",
               model_path.c_str(), int(text::chat_template_name(conv.tmpl).size()),
               text::chat_template_name(conv.tmpl).data(), s.capacity());
  std::string pending, line;
  for (;;) {
    g_interrupted = 0;  // a Ctrl-C from now on, at the prompt, leaves
    std::fprintf(stderr, "> ");
    std::fflush(stderr);
    const LineStatus ls = read_line(pending, line);
    if (ls == LineStatus::eof) {
      std::fprintf(stderr, "\n");
      return 0;
    }
    if (ls == LineStatus::interrupted) {
      std::fprintf(stderr, "\n");
      return 130;  // as a shell reports a program ended by SIGINT
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // A line ending in a backslash goes on on the next one (as in llama-cli).
    while (!line.empty() && line.back() == '\\') {
      line.back() = '\n';
      std::string more;
      const LineStatus ms = read_line(pending, more);
      if (ms == LineStatus::interrupted) {
        std::fprintf(stderr, "\n");
        return 130;
      }
      if (ms == LineStatus::eof) break;
      if (!more.empty() && more.back() == '\r') more.pop_back();
      line += more;
    }
    if (line.empty()) continue;

    if (line[0] == '/') {
      const size_t sp = line.find(' ');
      const std::string cmd = line.substr(0, sp);
      std::string arg = sp == std::string::npos ? std::string() : line.substr(sp + 1);
      while (!arg.empty() && arg.back() == ' ') arg.pop_back();
      if (cmd == "/quit" || cmd == "/exit") return 0;
      if (cmd == "/help") {
        std::fprintf(stderr, "%s", kChatHelp);
      } else if (cmd == "/reset") {
        Status st = s.rewind(s.position());
        if (st.is_ok()) st = s.set_sampling(so.sampling);
        if (!st.is_ok()) {
          std::fprintf(stderr, "jielong chat: /reset: %s\n", st.to_string().c_str());
          return 1;
        }
        conv.messages = initial;
        conv.cached.clear();
        std::fprintf(stderr, "[the conversation is forgotten]\n");
      } else if ((cmd == "/save" || cmd == "/load") && arg.empty()) {
        std::fprintf(stderr, "%s needs a FILE\n", cmd.c_str());
      } else if (cmd == "/save") {
        if (Status st = save_chat(s, conv, arg); !st.is_ok())
          std::fprintf(stderr, "/save: %s\n", st.to_string().c_str());
        else
          std::fprintf(stderr, "[saved %zu messages, %zu tokens to %s]\n", conv.messages.size(), s.position(),
                       arg.c_str());
      } else if (cmd == "/load") {
        if (Status st = load_chat(s, conv, arg); !st.is_ok())
          std::fprintf(stderr, "/load: %s (the conversation is unchanged)\n", st.to_string().c_str());
        else
          std::fprintf(stderr, "[loaded %zu messages, %zu tokens from %s]\n", conv.messages.size(), s.position(),
                       arg.c_str());
      } else {
        std::fprintf(stderr, "unknown command %s; /help lists them\n", cmd.c_str());
      }
      continue;
    }

    // The turn's text, the reply's closing, and whether they fit.
    auto turn = conv.user_turn(line);
    auto closing = conv.reply_closing();
    if (!turn.ok() || !closing.ok()) {
      std::fprintf(stderr, "jielong chat: %s\n", (turn.ok() ? closing.status() : turn.status()).to_string().c_str());
      return 1;
    }
    text::EncodeOptions eo;
    eo.add_bos = s.position() == 0;  // the tokenizer adds BOS only if the vocabulary asks for it
    eo.parse_special = true;
    auto ids = tok.encode(*turn, eo);
    eo.add_bos = false;
    auto close_ids = tok.encode(*closing, eo);
    if (!ids.ok() || !close_ids.ok()) {
      std::fprintf(stderr, "jielong chat: %s\n", (ids.ok() ? close_ids.status() : ids.status()).to_string().c_str());
      return 1;
    }
    // Room for the turn, its closing and at least one token of reply.
    const size_t need = ids->size() + close_ids->size() + 1;
    if (s.position() + need > s.capacity()) {
      std::fprintf(stderr,
                   "[context full: %zu of %zu tokens used, this message needs %zu more; it was not sent. /reset starts "
                   "over (/save first to keep this conversation), or restart with a larger -c]\n",
                   s.position(), s.capacity(), need);
      continue;
    }

    const auto t0 = std::chrono::steady_clock::now();
    if (Status st = s.prefill(*ids); !st.is_ok()) {
      std::fprintf(stderr, "jielong chat: %s\n", st.to_string().c_str());
      return 1;
    }
    for (int32_t id : *ids) s.accept(id);
    const double prompt_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    // The reply stops at the end of the turn, at -n, at Ctrl-C, or where
    // only the closing still fits.
    const size_t room = s.capacity() - s.position() - close_ids->size();
    run::GenerateParams gp;
    gp.max_tokens = n_predict < 0 ? room : std::min(room, static_cast<size_t>(n_predict));
    std::string reply;
    run::GenerateResult r;
    if (!g_interrupted) {  // a Ctrl-C during the prefill: no reply
      auto gen = run::generate_from(s, tok, gp, [&](std::string_view piece) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
        reply.append(piece);
        return !g_interrupted;
      });
      if (!gen.ok()) {
        std::fprintf(stderr, "\njielong chat: %s\n", gen.status().to_string().c_str());
        return 1;
      }
      r = std::move(*gen);
    }
    std::fputc('\n', stdout);
    std::fflush(stdout);
    const bool interrupted = g_interrupted != 0;
    if (Status st = s.prefill(*close_ids); !st.is_ok()) {
      std::fprintf(stderr, "jielong chat: %s\n", st.to_string().c_str());
      return 1;
    }
    for (int32_t id : *close_ids) s.accept(id);
    if (Status st = conv.commit(line, std::move(reply)); !st.is_ok()) {
      std::fprintf(stderr, "jielong chat: %s\n", st.to_string().c_str());
      return 1;
    }
    const bool cut = r.reason == run::StopReason::limit && r.n_generated == room;
    std::fprintf(stderr, "[prompt: %zu tokens, %.1f tok/s; reply: %zu tokens, %.1f tok/s%s; context: %zu/%zu]\n",
                 ids->size(), per_second(ids->size(), prompt_seconds), r.n_generated,
                 per_second(r.n_generated, r.generate_seconds),
                 interrupted ? ", interrupted"
                 : cut       ? ", cut: the context is full (/reset starts over)"
                             : "",
                 s.position(), s.capacity());
  }
}

}  // namespace jielong::cli

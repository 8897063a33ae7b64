// Command-line flags for the jielong command. Each subcommand declares its
// flags, then parses; an unknown flag, a missing or malformed value, or a
// value out of range prints one line naming the flag and exits with code 1.
#pragma once

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jielong::cli {

// The help line of --no-mmap, shared by the commands that load a model.
inline constexpr const char* kNoMmapHelp =
    "read the model into memory (huge pages where the system allows) instead of mapping it: slower to load, "
    "faster to decode";

// The help line of --no-repack.
inline constexpr const char* kNoRepackHelp =
    "keep Q4_0/Q8_0/Q4_K/F32 weights as the file stores them instead of repacking them at load into panels";

// The help line of -m for the commands that fall back to the default model.
inline constexpr const char* kModelHelp =
    "model file (.gguf, or llama2.c .bin with -z); default: $JIELONG_MODEL, else jielong-chat.gguf (or "
    "jielong-base.gguf) in $JIELONG_MODELS or models/";

// What a subcommand receives: its name and the arguments after it.
struct Args {
  std::string_view command;
  std::vector<std::string_view> argv;
};

// Replaces every `FLAG FILE` pair in args by the words of FILE (split at
// white space; '#' starts a comment to the end of the line), so a recipe
// file holds a command's flags and the command line adds to or overrides
// them (a later flag wins). The words live in `storage` (a deque: adding
// moves none of them), which must outlive args. false (and `error` set)
// when a file cannot be read.
inline bool expand_flag_files(Args& args, std::string_view flag, std::deque<std::string>& storage, std::string& error) {
  std::vector<std::string_view> argv;
  for (size_t i = 0; i < args.argv.size(); ++i) {
    std::string_view a = args.argv[i], path;
    if (a == flag) {
      if (i + 1 >= args.argv.size()) {
        error = "flag '" + std::string(flag) + "' needs a value";
        return false;
      }
      path = args.argv[++i];
    } else if (a.size() > flag.size() && a.substr(0, flag.size()) == flag && a[flag.size()] == '=') {
      path = a.substr(flag.size() + 1);
    } else {
      argv.push_back(a);
      continue;
    }
    std::FILE* f = std::fopen(std::string(path).c_str(), "rb");
    if (!f) {
      error = std::string(path) + ": cannot open the " + std::string(flag.substr(2)) + " file";
      return false;
    }
    std::string word;
    auto end_word = [&] {
      if (word.empty()) return;
      argv.push_back(storage.emplace_back(std::move(word)));
      word.clear();
    };
    bool comment = false;
    for (int c; (c = std::fgetc(f)) != EOF;) {
      if (c == '\n') comment = false;
      if (comment) continue;
      if (c == '#' && word.empty()) {
        comment = true;
      } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        end_word();
      } else {
        word.push_back(static_cast<char>(c));
      }
    }
    end_word();
    std::fclose(f);
  }
  args.argv = std::move(argv);
  return true;
}

class Flags {
 public:
  Flags(std::string_view command, std::string_view usage, std::string_view summary)
      : command_(command), usage_(usage), summary_(summary) {}

  // names: "-m,--model". Each add_* writes into `out` when the flag is given.
  void add_string(std::string_view names, std::string* out, std::string_view help) {
    specs_.push_back({split(names), help, Kind::string, out});
  }
  void add_strings(std::string_view names, std::vector<std::string>* out, std::string_view help) {
    specs_.push_back({split(names), help, Kind::strings, out});
  }
  void add_int(std::string_view names, int64_t* out, std::string_view help, int64_t min = INT64_MIN,
               int64_t max = INT64_MAX) {
    Spec s{split(names), help, Kind::integer, out};
    s.imin = min;
    s.imax = max;
    specs_.push_back(s);
  }
  void add_float(std::string_view names, double* out, std::string_view help, double min = -HUGE_VAL,
                 double max = HUGE_VAL) {
    Spec s{split(names), help, Kind::real, out};
    s.fmin = min;
    s.fmax = max;
    specs_.push_back(s);
  }
  void add_switch(std::string_view names, bool* out, std::string_view help) {
    specs_.push_back({split(names), help, Kind::boolean, out});
  }
  // Positional arguments, in order; `required` ones must be present.
  void add_positional(std::string_view name, std::string* out, std::string_view help, bool required = true) {
    positionals_.push_back({name, help, out, required});
  }

  // Any number of positional arguments after the fixed ones ("FILE...").
  void add_rest(std::string_view name, std::vector<std::string>* out, std::string_view help) {
    rest_ = {name, help, out};
  }

  // nullopt: parsed, go on. Otherwise the exit code (0 after --help, 1 on error).
  std::optional<int> parse(const Args& args) {
    size_t next_positional = 0;
    for (size_t i = 0; i < args.argv.size(); ++i) {
      std::string_view a = args.argv[i];
      if (a == "-h" || a == "--help") {
        print_help(stdout);
        return 0;
      }
      if (a.size() > 1 && a[0] == '-' && !looks_numeric(a)) {
        std::string_view value;
        bool inline_value = false;
        if (const size_t eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string_view::npos) {
          value = a.substr(eq + 1);
          a = a.substr(0, eq);
          inline_value = true;
        }
        Spec* spec = find(a);
        if (!spec) return fail("unknown flag '" + std::string(a) + "' (see 'jielong " + std::string(command_) + " --help')");
        if (spec->kind == Kind::boolean) {
          if (inline_value) return fail("flag '" + std::string(a) + "' takes no value");
          *static_cast<bool*>(spec->out) = true;
          continue;
        }
        if (!inline_value) {
          if (i + 1 >= args.argv.size()) return fail("flag '" + std::string(a) + "' needs a value");
          value = args.argv[++i];
        }
        if (auto err = assign(*spec, a, value)) return fail(*err);
        continue;
      }
      if (next_positional >= positionals_.size() && rest_.out) {
        rest_.out->emplace_back(a);
        continue;
      }
      if (next_positional >= positionals_.size())
        return fail("unexpected argument '" + std::string(a) + "' (see 'jielong " + std::string(command_) + " --help')");
      *positionals_[next_positional++].out = std::string(a);
    }
    for (size_t p = next_positional; p < positionals_.size(); ++p)
      if (positionals_[p].required) return fail("missing argument " + std::string(positionals_[p].name));
    return std::nullopt;
  }

  void print_help(std::FILE* f) const {
    std::fprintf(f, "usage: jielong %.*s %.*s\n\n%.*s\n", int(command_.size()), command_.data(), int(usage_.size()),
                 usage_.data(), int(summary_.size()), summary_.data());
    if (!positionals_.empty() || rest_.out || !specs_.empty()) std::fprintf(f, "\n");
    for (const Positional& p : positionals_)
      std::fprintf(f, "  %-24.*s %.*s\n", int(p.name.size()), p.name.data(), int(p.help.size()), p.help.data());
    if (rest_.out)
      std::fprintf(f, "  %-24.*s %.*s\n", int(rest_.name.size()), rest_.name.data(), int(rest_.help.size()), rest_.help.data());
    for (const Spec& s : specs_) {
      std::string names;
      for (std::string_view n : s.names) names += (names.empty() ? "" : ", ") + std::string(n);
      if (s.kind != Kind::boolean) names += s.kind == Kind::string || s.kind == Kind::strings ? " S" : " N";
      std::fprintf(f, "  %-24s %.*s\n", names.c_str(), int(s.help.size()), s.help.data());
    }
    std::fprintf(f, "  %-24s %s\n", "-h, --help", "show this help");
  }

 private:
  enum class Kind { string, strings, integer, real, boolean };
  struct Spec {
    std::vector<std::string_view> names;
    std::string_view help;
    Kind kind;
    void* out;
    int64_t imin = INT64_MIN, imax = INT64_MAX;
    double fmin = -HUGE_VAL, fmax = HUGE_VAL;
  };
  struct Positional {
    std::string_view name, help;
    std::string* out;
    bool required;
  };

  static std::vector<std::string_view> split(std::string_view names) {
    std::vector<std::string_view> out;
    while (!names.empty()) {
      const size_t comma = names.find(',');
      out.push_back(names.substr(0, comma));
      if (comma == std::string_view::npos) break;
      names.remove_prefix(comma + 1);
    }
    return out;
  }
  static bool looks_numeric(std::string_view a) {  // "-1" or "-0.5" is a value, not a flag
    return a.size() > 1 && a[0] == '-' && ((a[1] >= '0' && a[1] <= '9') || a[1] == '.');
  }
  Spec* find(std::string_view name) {
    for (Spec& s : specs_)
      for (std::string_view n : s.names)
        if (n == name) return &s;
    return nullptr;
  }
  std::optional<std::string> assign(Spec& s, std::string_view flag, std::string_view value) {
    const std::string v(value);
    switch (s.kind) {
      case Kind::string: *static_cast<std::string*>(s.out) = v; return std::nullopt;
      case Kind::strings: static_cast<std::vector<std::string>*>(s.out)->push_back(v); return std::nullopt;
      case Kind::integer: {
        char* end = nullptr;
        errno = 0;
        const long long x = std::strtoll(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0' || errno == ERANGE)
          return "flag '" + std::string(flag) + "' expects an integer, got '" + v + "'";
        if (x < s.imin || x > s.imax)
          return "flag '" + std::string(flag) + "' must be in [" + std::to_string(s.imin) + ", " +
                 std::to_string(s.imax) + "], got " + v;
        *static_cast<int64_t*>(s.out) = x;
        return std::nullopt;
      }
      case Kind::real: {
        char* end = nullptr;
        errno = 0;
        const double x = std::strtod(v.c_str(), &end);
        if (v.empty() || *end != '\0' || errno == ERANGE || std::isnan(x))
          return "flag '" + std::string(flag) + "' expects a number, got '" + v + "'";
        if (x < s.fmin || x > s.fmax)
          return "flag '" + std::string(flag) + "' must be in [" + fmt(s.fmin) + ", " + fmt(s.fmax) + "], got " + v;
        *static_cast<double*>(s.out) = x;
        return std::nullopt;
      }
      case Kind::boolean: return std::nullopt;
    }
    return std::nullopt;
  }
  static std::string fmt(double x) {
    if (std::isinf(x)) return x < 0 ? "-inf" : "inf";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", x);
    return buf;
  }
  std::optional<int> fail(const std::string& message) const {
    std::fprintf(stderr, "jielong %.*s: %s\n", int(command_.size()), command_.data(), message.c_str());
    return 1;
  }

  std::string_view command_, usage_, summary_;
  std::vector<Spec> specs_;
  std::vector<Positional> positionals_;
  struct Rest {
    std::string_view name, help;
    std::vector<std::string>* out = nullptr;
  } rest_;
};

}  // namespace jielong::cli

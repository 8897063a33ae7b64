// A live progress line for long commands ("\r<label> 1234/5678 units  250.0
// units/s  ETA 0:17"), redrawn at most a few times a second on stderr, and
// Ctrl-C as a request to stop: the first SIGINT sets a flag the command
// polls (it then finishes cleanly); a second one ends the process.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <string>

#include <unistd.h>

namespace jielong::cli {

inline volatile std::sig_atomic_t g_interrupted = 0;

extern "C" inline void on_interrupt(int) {
  if (g_interrupted) ::_exit(130);
  g_interrupted = 1;
}

// Installs the handler for the lifetime of a command; restores the default.
class InterruptScope {
 public:
  InterruptScope() {
    g_interrupted = 0;
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_);
  }
  ~InterruptScope() { sigaction(SIGINT, &old_, nullptr); }
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;
  bool interrupted() const noexcept { return g_interrupted != 0; }

 private:
  struct sigaction old_ {};
};

class ProgressLine {
 public:
  using Clock = std::chrono::steady_clock;

  ProgressLine(std::string label, std::string unit) : label_(std::move(label)), unit_(std::move(unit)) {}

  // done of total units (total 0: unknown, no ETA).
  void update(double done, double total, bool force = false) {
    const auto now = Clock::now();
    if (!force && now - last_ < std::chrono::milliseconds(250)) return;
    last_ = now;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double rate = seconds > 0 ? done / seconds : 0.0;
    char eta[32] = "";
    if (total > 0 && rate > 0 && done < total) {
      const long s = static_cast<long>((total - done) / rate + 0.5);
      std::snprintf(eta, sizeof eta, "  ETA %ld:%02ld", s / 60, s % 60);
    }
    char line[256];
    if (total > 0)
      std::snprintf(line, sizeof line, "%s %.0f/%.0f %s  %.1f %s/s%s", label_.c_str(), done, total, unit_.c_str(), rate,
                    unit_.c_str(), eta);
    else
      std::snprintf(line, sizeof line, "%s %.0f %s  %.1f %s/s", label_.c_str(), done, unit_.c_str(), rate, unit_.c_str());
    std::fprintf(stderr, "\r%s\033[K", line);
    std::fflush(stderr);
    drawn_ = true;
  }

  // Ends the line (the next output starts on a fresh one).
  void finish() {
    if (drawn_) std::fprintf(stderr, "\n");
    drawn_ = false;
  }

  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  std::string label_, unit_;
  Clock::time_point start_ = Clock::now(), last_{};
  bool drawn_ = false;
};

}  // namespace jielong::cli

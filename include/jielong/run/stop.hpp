// Stop strings over a stream of text pieces.
//
// Text that might be the beginning of a stop string is held back until the
// next pieces decide: it is either released (no match) or, when a stop string
// completes, everything before the match is released and the rest dropped.
// A stop string is valid UTF-8, so a match starts on a character boundary and
// the released text never ends inside a character.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace jielong::run {

class StopMatcher {
 public:
  StopMatcher() = default;
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
    std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
    size_t longest = 0;
    for (const auto& s : stops_) longest = std::max(longest, s.size());
    pending_.reserve(2 * longest + 64);
  }

  // Adds a piece; appends releasable text to `out`. Returns true when a stop
  // string completed (then `out` ends just before it).
  bool push(std::string_view piece, std::string& out) {
    if (stops_.empty()) {
      out.append(piece);
      return false;
    }
    pending_.append(piece);
    // A complete match anywhere in the pending text: release what precedes the earliest one.
    size_t first = std::string::npos;
    for (const auto& s : stops_) first = std::min(first, pending_.find(s));
    if (first != std::string::npos) {
      out.append(pending_, 0, first);
      pending_.clear();
      stopped_ = true;
      return true;
    }
    // Hold back the longest suffix that is a proper prefix of some stop string.
    size_t hold = 0;
    for (const auto& s : stops_) {
      for (size_t len = std::min(s.size() - 1, pending_.size()); len > hold; --len) {
        if (std::string_view(pending_).substr(pending_.size() - len) == std::string_view(s).substr(0, len)) {
          hold = len;
          break;
        }
      }
    }
    out.append(pending_, 0, pending_.size() - hold);
    pending_.erase(0, pending_.size() - hold);
    return false;
  }

  // End of stream: what was held back is released.
  void flush(std::string& out) {
    if (!stopped_) out.append(pending_);
    pending_.clear();
  }

  bool stopped() const noexcept { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace jielong::run

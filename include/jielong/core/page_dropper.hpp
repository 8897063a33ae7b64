// PageDropper: gives the pages of a mapped file back to the system while a
// reader walks through it in address order, except the pages of the ranges
// that are still read afterwards.
//
// Each drop() hands back the pages from where the previous one stopped up
// to its end, in as few calls of the file's drop function as the kept
// ranges allow (each call costs a page-table flush on every core that runs
// the process). The page a step shares with the next stays until that next
// step.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "jielong/core/memory.hpp"

namespace jielong {

class PageDropper {
 public:
  // The pages holding [p, p + n) are never dropped. All keep() calls come
  // before the first drop().
  void keep(const void* p, size_t n) {
    if (!p || n == 0) return;
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    live_.push_back({a / page_ * page_, (a + n + page_ - 1) / page_ * page_});
    sorted_ = false;
  }

  // Drops the pages in [start, end), where start is the first call's
  // `first` and afterwards the page the previous call ended in, less the
  // kept ones; drop_pages(p, n) gives a range back.
  template <class DropFn>
  void drop(const std::byte* first, const std::byte* end, DropFn&& drop_pages) {
    if (!sorted_) {
      std::sort(live_.begin(), live_.end());
      sorted_ = true;
    }
    uintptr_t cur = reinterpret_cast<uintptr_t>(dropped_ ? dropped_ : first);
    const uintptr_t stop = reinterpret_cast<uintptr_t>(end);
    for (const auto& [a, b] : live_) {
      if (b <= cur) continue;
      if (a >= stop) break;
      if (a > cur) drop_pages(reinterpret_cast<const void*>(cur), a - cur);
      cur = std::max(cur, b);
    }
    if (cur < stop) drop_pages(reinterpret_cast<const void*>(cur), stop - cur);
    dropped_ = end - reinterpret_cast<uintptr_t>(end) % page_;
  }

 private:
  uintptr_t page_ = page_bytes();
  std::vector<std::pair<uintptr_t, uintptr_t>> live_;  // kept [begin, end), whole pages
  bool sorted_ = true;
  const std::byte* dropped_ = nullptr;  // pages below this page boundary are dealt with
};

}  // namespace jielong

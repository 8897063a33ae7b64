// The small-head attention kernels (head_dim below one vector) against their
// plain twins: the same fused multiply-adds in the same order, so the bits
// must be identical, for f32 and f16 caches, any number of positions (full
// blocks of 16 and tails), strides wider than a head, and unaligned rows.
// The backend with its own kernels is Avx512Vnni (where this build and CPU
// have it); the others run the plain loops themselves.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "jielong/core/half.hpp"
#include "jielong/kernels/kernels.hpp"

using namespace jielong;
namespace sh = kernels::small_heads;
using Fast = kernels::Avx512Vnni;

namespace {
struct Cache {
  std::vector<std::byte> bytes;
  sh::Rows rows;
};
// n positions, rows of `row_elems` elements, the head at element `off`;
// one byte of offset when `misalign`, so no row is 16-byte aligned.
Cache make_cache(size_t n, size_t row_elems, size_t off, bool f16, bool misalign, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const size_t esize = f16 ? 2 : 4, stride = row_elems * esize;
  Cache c;
  c.bytes.resize(n * stride + 1);
  std::byte* base = c.bytes.data() + (misalign ? 1 : 0);
  for (size_t i = 0; i < n * row_elems; ++i) {
    const float v = dist(rng);
    if (f16) {
      const uint16_t h = f32_to_fp16(v);
      std::memcpy(base + i * 2, &h, 2);
    } else {
      std::memcpy(base + i * 4, &v, 4);
    }
  }
  c.rows = sh::Rows{base + off * esize, stride, f16};
  return c;
}
}  // namespace

TEST_CASE("small-head scores and mix equal their plain twins bit for bit") {
  if (!kernels::vnni_available()) {
    MESSAGE("skipped: this build or CPU has no AVX-512 VNNI");
    return;
  }
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (bool f16 : {false, true})
    for (bool misalign : {false, true})
      for (size_t hd : {size_t{4}, size_t{8}, size_t{12}})
        for (size_t n : {size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{15}, size_t{16}, size_t{17}, size_t{24},
                         size_t{33}, size_t{257}}) {
          CAPTURE(f16);
          CAPTURE(misalign);
          CAPTURE(hd);
          CAPTURE(n);
          const size_t row_elems = 4 * hd, off = 2 * hd;  // the third of four kv heads
          Cache k = make_cache(n, row_elems, off, f16, misalign, rng);
          Cache v = make_cache(n, row_elems, off, f16, misalign, rng);
          std::vector<float> q(hd), w(n);
          for (float& x : q) x = dist(rng);
          for (float& x : w) x = std::abs(dist(rng)) / static_cast<float>(n);
          std::vector<float> s_fast(n), s_plain(n), o_fast(hd, -1.0f), o_plain(hd, -2.0f);
          {
            const float* qp = q.data();
            float* sp = s_fast.data();
            kernels::small_head_scores<Fast>(&qp, 1, k.rows, hd, n, &sp);
          }
          sh::scores_plain(q.data(), k.rows, hd, n, s_plain.data());
          CHECK(std::memcmp(s_fast.data(), s_plain.data(), n * sizeof(float)) == 0);
          // Three query heads on the same keys at once (grouped-query
          // attention): each equals its own plain scores.
          std::vector<float> q3(3 * hd), s3(3 * n, -1.0f), s3_plain(n);
          for (float& x : q3) x = dist(rng);
          const float* qs[3] = {q3.data(), q3.data() + hd, q3.data() + 2 * hd};
          float* outs[3] = {s3.data(), s3.data() + n, s3.data() + 2 * n};
          kernels::small_head_scores<Fast>(qs, 3, k.rows, hd, n, outs);
          for (size_t h = 0; h < 3; ++h) {
            sh::scores_plain(qs[h], k.rows, hd, n, s3_plain.data());
            CHECK(std::memcmp(outs[h], s3_plain.data(), n * sizeof(float)) == 0);
          }
          {
            const float* wp = w.data();
            float* op = o_fast.data();
            kernels::small_head_mix<Fast>(&wp, &v.rows, 1, hd, n, &op);
          }
          sh::mix_plain(w.data(), v.rows, hd, n, o_plain.data());
          CHECK(std::memcmp(o_fast.data(), o_plain.data(), hd * sizeof(float)) == 0);
          // And the plain twin against a double-precision sum (|error| bound:
          // hd (or n) roundings of at most one ulp of the running magnitude).
          double ref = 0, mag = 0;
          for (size_t d = 0; d < hd; ++d) {
            ref += double(q[d]) * double(k.rows.at(n - 1, d));
            mag += std::abs(double(q[d]) * double(k.rows.at(n - 1, d)));
          }
          CHECK(std::abs(double(s_plain[n - 1]) - ref) <= double(hd) * 1.2e-7 * mag + 1e-30);
        }
}

TEST_CASE("mixing several small heads at once equals mixing each alone") {
  if (!kernels::vnni_available()) {
    MESSAGE("skipped: this build or CPU has no AVX-512 VNNI");
    return;
  }
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (bool f16 : {false, true})
    for (bool shared : {false, true})
    for (size_t n_heads : {size_t{1}, size_t{2}, size_t{3}, size_t{6}, size_t{8}, size_t{16}, size_t{17}})
      for (size_t n : {size_t{1}, size_t{9}, size_t{15}, size_t{16}, size_t{17}, size_t{130}}) {
        CAPTURE(f16);
        CAPTURE(shared);
        CAPTURE(n_heads);
        CAPTURE(n);
        const size_t hd = 8, n_kv = 4, row_elems = n_kv * hd;
        // Head h reads kv head h % n_kv of its own cache, or (shared: grouped
        // query attention, two query heads a kv head) kv head h / 2 of one cache.
        std::vector<Cache> caches;
        std::vector<std::vector<float>> w(n_heads, std::vector<float>(n));
        std::vector<std::vector<float>> got(n_heads, std::vector<float>(hd)), want(n_heads, std::vector<float>(hd));
        std::vector<const float*> wp;
        std::vector<sh::Rows> v;
        std::vector<float*> op;
        const size_t n_caches = shared ? 1 : n_heads;
        for (size_t i = 0; i < n_caches; ++i) caches.push_back(make_cache(n, row_elems, 0, f16, i % 2 == 1, rng));
        for (size_t h = 0; h < n_heads; ++h)
          for (float& x : w[h]) x = std::abs(dist(rng));
        for (size_t h = 0; h < n_heads; ++h) {
          sh::Rows r = caches[shared ? 0 : h].rows;
          r.base += (shared ? (h / 2) % n_kv : h % n_kv) * hd * (f16 ? 2 : 4);
          wp.push_back(w[h].data());
          v.push_back(r);
          op.push_back(got[h].data());
        }
        {  // small_head_mix takes at most kMaxHeads; larger groups go in chunks
          for (size_t c = 0; c < n_heads; c += sh::kMaxHeads) {
            const size_t m = std::min(sh::kMaxHeads, n_heads - c);
            kernels::small_head_mix<Fast>(wp.data() + c, v.data() + c, m, hd, n, op.data() + c);
          }
        }
        for (size_t h = 0; h < n_heads; ++h) {
          sh::mix_plain(w[h].data(), v[h], hd, n, want[h].data());
          CHECK(std::memcmp(got[h].data(), want[h].data(), hd * sizeof(float)) == 0);
        }
      }
}

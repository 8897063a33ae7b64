// Samplers against hand-computed distributions (the cases of llama.cpp's
// tests/test-sampling.cpp, recomputed here from the definitions), the chain,
// and the seeded RNG.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <vector>

#include "jielong/sample/chain.hpp"
#include "jielong/sample/rng.hpp"
#include "jielong/sample/samplers.hpp"

using namespace jielong::sample;

namespace {

// Candidates whose logits are log(probs), so softmax gives back probs.
struct Fixture {
  std::vector<TokenData> buffer;
  Candidates c;
  Rng rng{1234};
  explicit Fixture(const std::vector<float>& probs) : buffer(probs.size()) {
    std::vector<float> logits;
    for (float p : probs) logits.push_back(std::log(p));
    c = fill_candidates(logits, buffer);
  }
  // id -> probability of the live candidates, renormalised by a final softmax
  // (as llama.cpp's tests apply `dist` last).
  std::map<Token, float> probs_after_softmax() {
    softmax(c);
    std::map<Token, float> m;
    for (const auto& t : c) m[t.id] = t.p;
    return m;
  }
};

// Float probabilities from exp/normalise are good to a few ulps; 1e-5 is the
// tolerance llama.cpp's sampler tests use.
constexpr float kTol = 1e-5f;

void check(const std::map<Token, float>& got, const std::map<Token, float>& want) {
  REQUIRE(got.size() == want.size());
  for (const auto& [id, p] : want) {
    REQUIRE(got.count(id) == 1);
    CHECK(std::fabs(got.at(id) - p) < kTol);
  }
}

const std::vector<float> k4 = {0.1f, 0.2f, 0.3f, 0.4f};

}  // namespace

TEST_CASE("rng: counter-based, reproducible, restorable") {
  Rng a(42), b(42), c(43);
  std::vector<uint64_t> xa, xb, xc;
  for (int i = 0; i < 16; ++i) {
    xa.push_back(a.next_u64());
    xb.push_back(b.next_u64());
    xc.push_back(c.next_u64());
  }
  CHECK(xa == xb);
  CHECK(xa != xc);
  // The n-th draw is a pure function of (seed, n).
  for (uint64_t i = 0; i < 16; ++i) CHECK(Rng::draw(42, i) == xa[i]);
  // Saving and restoring the state replays the stream.
  Rng d(7);
  for (int i = 0; i < 5; ++i) d.next_u64();
  const Rng::State saved = d.state();
  const uint64_t next1 = d.next_u64(), next2 = d.next_u64();
  d.set_state(saved);
  CHECK(d.next_u64() == next1);
  CHECK(d.next_u64() == next2);
  // uniform() stays in [0, 1) and averages 1/2 (std of the mean of 10^5
  // uniforms is 0.0009; 0.005 is > 5 sigma).
  Rng u(9);
  double sum = 0;
  float lo = 1.0f, hi = 0.0f;
  for (int i = 0; i < 100000; ++i) {
    const float x = u.uniform();
    lo = std::min(lo, x);
    hi = std::max(hi, x);
    sum += x;
  }
  CHECK(lo >= 0.0f);
  CHECK(hi < 1.0f);
  CHECK(std::fabs(sum / 100000 - 0.5) < 0.005);
}

TEST_CASE("temperature") {
  {  // T = 1 leaves the distribution alone.
    Fixture f(k4);
    Temperature{1.0f}.apply(f.c, f.rng);
    check(f.probs_after_softmax(), {{0, 0.1f}, {1, 0.2f}, {2, 0.3f}, {3, 0.4f}});
  }
  {  // T = 1/2 squares the probabilities: p_i^2 / sum p^2 = {1,4,9,16}/30.
    Fixture f(k4);
    Temperature{0.5f}.apply(f.c, f.rng);
    check(f.probs_after_softmax(), {{0, 1 / 30.f}, {1, 4 / 30.f}, {2, 9 / 30.f}, {3, 16 / 30.f}});
  }
  {  // T = 0 keeps only the best.
    Fixture f(k4);
    Temperature{0.0f}.apply(f.c, f.rng);
    check(f.probs_after_softmax(), {{3, 1.0f}});
  }
}

TEST_CASE("top-k") {
  auto run = [](int k) {
    Fixture f(k4);
    TopK{k, 1}.apply(f.c, f.rng);
    return f.probs_after_softmax();
  };
  check(run(1), {{3, 1.0f}});
  check(run(3), {{3, 0.4f / 0.9f}, {2, 0.3f / 0.9f}, {1, 0.2f / 0.9f}});
  check(run(4), {{0, 0.1f}, {1, 0.2f}, {2, 0.3f}, {3, 0.4f}});
  check(run(0), {{0, 0.1f}, {1, 0.2f}, {2, 0.3f}, {3, 0.4f}});
  check(run(9), {{0, 0.1f}, {1, 0.2f}, {2, 0.3f}, {3, 0.4f}});
}

TEST_CASE("top-p") {
  auto run = [](float p, size_t min_keep = 1) {
    Fixture f(k4);
    TopP{p, min_keep}.apply(f.c, f.rng);
    return f.probs_after_softmax();
  };
  check(run(0.0f), {{3, 1.0f}});
  // 0.4 + 0.3 reaches 0.7: keep two, renormalised by 0.7.
  check(run(0.7f), {{3, 4 / 7.f}, {2, 3 / 7.f}});
  check(run(0.8f), {{3, 0.4f / 0.9f}, {2, 0.3f / 0.9f}, {1, 0.2f / 0.9f}});
  check(run(1.0f), {{0, 0.1f}, {1, 0.2f}, {2, 0.3f}, {3, 0.4f}});
  // min_keep wins over the mass criterion.
  check(run(0.1f, 3), {{3, 0.4f / 0.9f}, {2, 0.3f / 0.9f}, {1, 0.2f / 0.9f}});
}

TEST_CASE("min-p") {
  auto run = [](float m) {
    Fixture f(k4);
    MinP{m, 1}.apply(f.c, f.rng);
    return f.probs_after_softmax();
  };
  // keep p >= m * 0.4
  const std::map<Token, float> all = {{0, 0.1f}, {1, 0.2f}, {2, 0.3f}, {3, 0.4f}};
  const std::map<Token, float> three = {{1, 0.2f / 0.9f}, {2, 0.3f / 0.9f}, {3, 0.4f / 0.9f}};
  const std::map<Token, float> two = {{2, 0.3f / 0.7f}, {3, 0.4f / 0.7f}};
  const std::map<Token, float> one = {{3, 1.0f}};
  check(run(0.00f), all);
  check(run(0.24f), all);
  check(run(0.26f), three);
  check(run(0.49f), three);
  check(run(0.51f), two);
  check(run(0.74f), two);
  check(run(0.76f), one);
  check(run(1.00f), one);
  check(run(1.05f), one);
}

TEST_CASE("typical-p") {
  // H = -(0.97 ln 0.97 + 3·0.01 ln 0.01) = 0.1677; the surprise of 0.97 is
  // 0.030 (distance 0.14), of 0.01 is 4.6 (distance 4.4): 0.97 alone reaches 0.5.
  {
    Fixture f({0.97f, 0.01f, 0.01f, 0.01f});
    TypicalP{0.5f, 1}.apply(f.c, f.rng);
    REQUIRE(f.c.size == 1);
    CHECK(f.c.data[0].id == 0);
    CHECK(std::fabs(f.c.data[0].p - 0.97f) < kTol);  // not renormalised
  }
  // H = 1.3322; distances: 0.4 → |0.916 - 1.332| = 0.416, 0.2 → |1.609 - 1.332|
  // = 0.277. The three 0.2s are more typical and together reach 0.6 ≥ 0.5.
  {
    Fixture f({0.4f, 0.2f, 0.2f, 0.2f});
    TypicalP{0.5f, 1}.apply(f.c, f.rng);
    REQUIRE(f.c.size == 3);
    for (const auto& t : f.c) {
      CHECK(t.id != 0);
      CHECK(std::fabs(t.p - 0.2f) < kTol);
    }
  }
}

TEST_CASE("penalties") {
  const std::vector<float> flat(5, 0.2f);
  auto run = [&](std::vector<Token> history, float repeat, float freq, float presence, int32_t last_n = 64) {
    Fixture f(flat);
    Penalties pen(5, last_n, repeat, freq, presence);
    for (Token t : history) pen.accept(t);
    pen.apply(f.c, f.rng);
    return f.probs_after_softmax();
  };
  // Repetition 50 multiplies the (negative) logit ln 0.2 of a seen token by
  // 50: its probability falls to ~0.2^50, the others share the mass.
  check(run({0}, 50, 0, 0), {{0, 0}, {1, 0.25f}, {2, 0.25f}, {3, 0.25f}, {4, 0.25f}});
  check(run({0, 1, 2}, 50, 0, 0), {{0, 0}, {1, 0}, {2, 0}, {3, 0.5f}, {4, 0.5f}});
  check(run({0, 1, 2, 0, 0}, 50, 0, 0), {{0, 0}, {1, 0}, {2, 0}, {3, 0.5f}, {4, 0.5f}});
  // Frequency 5 and presence 5: a token seen n times loses 5n + 5 nats.
  // {0}: p0 = e^-10 / (e^-10 + 4) = 1.135e-5, the others (1 - p0) / 4.
  const float e10 = std::exp(-10.0f), e20 = std::exp(-20.0f);
  check(run({0}, 1, 5, 5), {{0, e10 / (e10 + 4)}, {1, 1 / (e10 + 4)}, {2, 1 / (e10 + 4)}, {3, 1 / (e10 + 4)},
                            {4, 1 / (e10 + 4)}});
  // {0,1,2,0,0}: token 0 seen 3 times (-20), 1 and 2 once (-10).
  const float z = e20 + 2 * e10 + 2;
  check(run({0, 1, 2, 0, 0}, 1, 5, 5), {{0, e20 / z}, {1, e10 / z}, {2, e10 / z}, {3, 1 / z}, {4, 1 / z}});
  // A window of 2 forgets token 0 after {0, 1, 2}.
  check(run({0, 1, 2}, 50, 0, 0, 2), {{0, 1 / 3.f}, {1, 0}, {2, 0}, {3, 1 / 3.f}, {4, 1 / 3.f}});
  // A positive logit is divided: logits {2, 1}, token 0 seen, penalty 2 →
  // {1, 1}: equal probabilities.
  {
    std::vector<TokenData> buf(2);
    const float logits[] = {2.0f, 1.0f};
    Candidates c = fill_candidates(logits, buf);
    Penalties pen(2, 8, 2.0f, 0, 0);
    pen.accept(0);
    Rng rng;
    pen.apply(c, rng);
    softmax(c);
    CHECK(std::fabs(c.data[0].p - 0.5f) < kTol);
    CHECK(std::fabs(c.data[1].p - 0.5f) < kTol);
    pen.reset();
    c = fill_candidates(logits, buf);
    pen.apply(c, rng);
    CHECK(c.data[0].logit == 2.0f);  // reset forgot the history
  }
}

TEST_CASE("greedy, logit bias") {
  Fixture f({0.3f, 0.1f, 0.3f, 0.3f});
  Greedy{}.apply(f.c, f.rng);
  CHECK(f.c.data[f.c.selected].id == 0);  // ties go to the lowest id

  Fixture g(k4);
  LogitBias{{{3, -std::numeric_limits<float>::infinity()}, {0, 10.0f}}}.apply(g.c, g.rng);
  Greedy{}.apply(g.c, g.rng);
  CHECK(g.c.data[g.c.selected].id == 0);
}

TEST_CASE("mirostat v2") {
  // Surprises of {1/2, 1/4, 1/8, 1/8} are 1, 2, 3, 3 bits. tau = 1 starts
  // mu at 2: keep {1/2, 1/4}, renormalised to {2/3, 1/3}; then
  // mu ← mu - eta·(surprise(chosen) - tau).
  Fixture f({0.5f, 0.25f, 0.125f, 0.125f});
  MirostatV2 m(1.0f, 0.1f);
  CHECK(m.mu == 2.0f);
  m.apply(f.c, f.rng);
  REQUIRE(f.c.size == 2);
  REQUIRE(f.c.selected >= 0);
  std::map<Token, float> p;
  for (const auto& t : f.c) p[t.id] = t.p;
  check(p, {{0, 2 / 3.f}, {1, 1 / 3.f}});
  const float chosen_p = f.c.data[f.c.selected].p;
  CHECK(m.mu == doctest::Approx(2.0f - 0.1f * (-std::log2(chosen_p) - 1.0f)));
  m.reset();
  CHECK(m.mu == 2.0f);
}

TEST_CASE("dist: fixed-seed frequencies match the distribution") {
  // 40000 draws from {0.1, 0.2, 0.3, 0.4}: the std of each frequency is at
  // most sqrt(0.25/40000) = 0.0025; 0.0125 is 5 sigma.
  const int n = 40000;
  std::array<int, 4> counts{};
  Rng rng(2024);
  for (int i = 0; i < n; ++i) {
    Fixture g(k4);
    Dist{}.apply(g.c, rng);
    ++counts[static_cast<size_t>(g.c.data[g.c.selected].id)];
  }
  for (size_t i = 0; i < 4; ++i) CHECK(std::fabs(counts[i] / double(n) - k4[i]) < 0.0125);
}

TEST_CASE("chain: greedy, seeds reproduce, clone continues identically") {
  const std::vector<float> logits = {0.5f, 2.0f, 1.0f, 1.9f, -3.0f, 0.0f};
  auto greedy = SamplerChain::from_params(SamplerParams::greedy(), logits.size());
  REQUIRE(greedy.ok());
  CHECK(greedy->sample(logits) == 1);

  SamplerParams p;
  p.temperature = 1.5f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 77;
  auto a = SamplerChain::from_params(p, logits.size());
  auto b = SamplerChain::from_params(p, logits.size());
  p.seed = 78;
  auto c = SamplerChain::from_params(p, logits.size());
  REQUIRE((a.ok() && b.ok() && c.ok()));
  std::vector<Token> sa, sb, sc;
  for (int i = 0; i < 64; ++i) {
    sa.push_back(a->sample(logits));
    sb.push_back(b->sample(logits));
    sc.push_back(c->sample(logits));
  }
  CHECK(sa == sb);
  CHECK(sa != sc);  // 64 draws over 6 tokens at T=1.5: equal by chance ~never

  SamplerChain d = a->clone();
  for (int i = 0; i < 16; ++i) CHECK(a->sample(logits) == d.sample(logits));
}

TEST_CASE("chain: top-k 1 is greedy whatever the seed; penalties steer away") {
  const std::vector<float> logits = {0.5f, 2.0f, 1.0f, 1.9f};
  SamplerParams p;
  p.top_k = 1;
  for (uint64_t seed = 0; seed < 8; ++seed) {
    p.seed = seed;
    auto c = SamplerChain::from_params(p, logits.size());
    REQUIRE(c.ok());
    CHECK(c->sample(logits) == 1);
  }
  // Repeat penalty 1.1 on token 1 (2.0 → 1.818) hands the lead to token 3 (1.9).
  SamplerParams g = SamplerParams::greedy();
  g.repeat_penalty = 1.1f;
  auto c = SamplerChain::from_params(g, logits.size());
  REQUIRE(c.ok());
  c->accept(1);
  CHECK(c->sample(logits) == 3);
}

TEST_CASE("chain: bad parameters are errors") {
  SamplerParams p;
  p.logit_bias = {{10, 1.0f}};
  auto r = SamplerChain::from_params(p, 4);
  CHECK(!r.ok());
  CHECK(r.status().code() == jielong::Code::out_of_range);
  SamplerParams q;
  q.mirostat = 1;
  CHECK(!SamplerChain::from_params(q, 4).ok());
  CHECK(!SamplerChain::create(0, 1).ok());
}

#if defined(__linux__)
#include <cstdlib>
#include <fstream>
#include <string>

namespace {
long rss_kib() {  // VmRSS of this process, or -1
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}
}  // namespace

TEST_CASE("chain: a greedy chain never touches its candidate buffer; a sampling one does") {
  // 8M candidates are 128 MiB: a chain that wrote them at creation (as a
  // value-initialised vector does) would show as resident memory.
  constexpr size_t n = size_t{8} << 20;
  std::vector<float> logits(n, 0.0f);
  logits[n - 3] = 1.0f;
#if defined(__SANITIZE_ADDRESS__)
  MESSAGE("skipped: AddressSanitizer writes shadow memory for every allocation");
  return;
#endif
  if (const char* perturb = std::getenv("MALLOC_PERTURB_"); perturb && std::atoi(perturb) != 0) {
    MESSAGE("skipped: MALLOC_PERTURB_ makes the allocator fill every allocation (meson test sets it)");
    return;
  }
  const long before = rss_kib();
  if (before < 0) {
    MESSAGE("skipped: /proc/self/status has no VmRSS");
    return;
  }
  auto greedy = SamplerChain::from_params(SamplerParams::greedy(), n);
  REQUIRE(greedy.ok());
  CHECK(greedy->sample(logits) == static_cast<Token>(n - 3));
  CHECK(rss_kib() - before < 16 * 1024);
  SamplerParams p;  // temperature 0.8, top-k 40: the candidates are filled
  auto sampling = SamplerChain::from_params(p, n);
  REQUIRE(sampling.ok());
  const long mid = rss_kib();
  (void)sampling->sample(logits);
  CHECK(rss_kib() - mid > 100 * 1024);  // the bound above means something
}
#endif

// A seeded, counter-based random number generator.
//
// The n-th draw is a pure function of (seed, n): splitmix64's output function
// applied to seed + (n+1)·γ. Its whole state is therefore two integers, which
// a host saves and restores to replay a generation exactly, and a forked
// session can continue either the same stream or a new one.
#pragma once

#include <cstdint>

namespace jielong::sample {

class Rng {
 public:
  struct State {
    uint64_t seed = 0;
    uint64_t counter = 0;  // draws made so far
    friend bool operator==(const State&, const State&) = default;
  };

  Rng() noexcept = default;
  explicit Rng(uint64_t seed) noexcept : state_{seed, 0} {}

  State state() const noexcept { return state_; }
  void set_state(State s) noexcept { state_ = s; }
  void reseed(uint64_t seed) noexcept { state_ = {seed, 0}; }

  uint64_t next_u64() noexcept { return draw(state_.seed, state_.counter++); }

  // Uniform in [0, 1) with 24 random bits: every value is exactly a float.
  float uniform() noexcept { return static_cast<float>(next_u64() >> 40) * 0x1.0p-24f; }

  // The draw at any counter value, without touching a generator.
  static constexpr uint64_t draw(uint64_t seed, uint64_t counter) noexcept {
    // γ = 2^64 / golden ratio, odd: the sequence seed + k·γ visits every
    // 64-bit value once before repeating.
    uint64_t z = seed + (counter + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

 private:
  State state_{};
};

}  // namespace jielong::sample

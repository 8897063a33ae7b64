// Rotary position embedding frequencies (Su et al. 2021, "RoFormer").
//
// Pair i of a head (i < rot_dim/2) turns by pos · inv_freq[i] radians, with
// inv_freq[i] = base^(-2i/rot_dim). Context extension methods only rescale
// these frequencies, so they live here and the kernel stays one loop.
#pragma once

#include <cmath>
#include <cstddef>
#include <numbers>
#include <span>

namespace jielong::model {

enum class RopeScaling {
  none,
  linear,  // positions divided by `factor` (all frequencies / factor)
  llama3,  // Llama 3.1: long wavelengths / factor, short kept, smooth between
};

struct RopeParams {
  float freq_base = 10000.0f;
  RopeScaling scaling = RopeScaling::none;
  float factor = 1.0f;
  // llama3 only: the context the model was trained on and the band edges.
  float original_context = 8192.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
};

// Fills inv_freq[rot_dim/2]. `freq_factors` (optional, [rot_dim/2]): a
// per-pair divisor stored in the file (GGUF `rope_freqs.weight`), which
// replaces the computed llama3 correction when present.
inline void rope_inv_freq(const RopeParams& p, size_t rot_dim, std::span<float> inv_freq,
                          std::span<const float> freq_factors = {}) noexcept {
  const size_t half = rot_dim / 2;
  for (size_t i = 0; i < half && i < inv_freq.size(); ++i) {
    // powf in float, as llama2.c computes it: the reference texts depend on it.
    float f = 1.0f / std::pow(p.freq_base, static_cast<float>(2 * i) / static_cast<float>(rot_dim));
    if (!freq_factors.empty()) {
      f /= freq_factors[i];
    } else if (p.scaling == RopeScaling::linear && p.factor > 0.0f) {
      f /= p.factor;
    } else if (p.scaling == RopeScaling::llama3 && p.factor > 0.0f) {
      const float wavelen = 2.0f * std::numbers::pi_v<float> / f;
      const float low_freq_wavelen = p.original_context / p.low_freq_factor;
      const float high_freq_wavelen = p.original_context / p.high_freq_factor;
      if (wavelen > low_freq_wavelen) {
        f /= p.factor;
      } else if (wavelen >= high_freq_wavelen) {
        const float smooth =
            (p.original_context / wavelen - p.low_freq_factor) / (p.high_freq_factor - p.low_freq_factor);
        f = (1.0f - smooth) * f / p.factor + smooth * f;
      }
    }
    inv_freq[i] = f;
  }
}

}  // namespace jielong::model

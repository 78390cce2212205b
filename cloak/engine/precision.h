// The arithmetic the surrogates run in. On CPUs with native bfloat16 (AVX512-BF16) the
// convolutions run in bf16 (2.5-8x faster, latents within ~1.5%, shifts within 0.001;
// bench/RESULTS.md); elsewhere, and whenever float32 is asked for, everything stays float32.
#pragma once

namespace cloak {

enum class Precision { Auto, Float32 };

// Process-wide choice (the CLI's --precision); Auto by default.
void set_precision(Precision p);
// Whether surrogate passes run in bf16: Auto on a CPU that has it.
bool low_precision();

// While alive, surrogate forward passes on this thread run in bf16 when low_precision().
class SurrogatePrecision {
 public:
  SurrogatePrecision();
  ~SurrogatePrecision();
  SurrogatePrecision(const SurrogatePrecision&) = delete;
  SurrogatePrecision& operator=(const SurrogatePrecision&) = delete;

 private:
  bool enabled_;
};

}  // namespace cloak

#include "cloak/engine/precision.h"

#include <ATen/autocast_mode.h>

#include <atomic>

namespace cloak {

namespace {
std::atomic<Precision> g_precision{Precision::Auto};
}

void set_precision(Precision p) {
  g_precision = p;
}

bool low_precision() {
#if defined(__x86_64__)
  static const bool has_bf16 = __builtin_cpu_supports("avx512bf16");
#else
  static const bool has_bf16 = false;
#endif
  return g_precision == Precision::Auto && has_bf16;
}

SurrogatePrecision::SurrogatePrecision()
    : enabled_(low_precision() && !at::autocast::is_cpu_enabled()) {
  if (!enabled_) return;
  at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  at::autocast::set_cpu_enabled(true);
}

SurrogatePrecision::~SurrogatePrecision() {
  if (!enabled_) return;
  at::autocast::set_cpu_enabled(false);
  at::autocast::clear_cache();
}

}  // namespace cloak

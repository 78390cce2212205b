#include "cloak/engine/settings.h"

#include <cstdio>

namespace cloak {

std::string describe(Strength s) {
  char text[64];
  std::snprintf(text, sizeof text, "%s (PSNR >= %g dB)", to_string(s).c_str(),
                strength_budget(s).min_psnr);
  return text;
}

}  // namespace cloak

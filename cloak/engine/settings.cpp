#include "cloak/engine/settings.h"

#include <cstdio>

namespace cloak {

std::string describe(Strength s) {
  char text[64];
  std::snprintf(text, sizeof text, "%s (no more visible than JPEG q%d)", to_string(s).c_str(),
                strength_budget(s).jpeg_quality);
  return text;
}

}  // namespace cloak

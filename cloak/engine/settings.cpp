#include "cloak/engine/settings.h"

#include <cstdio>

namespace cloak {

std::string describe(Mode m) {
  return to_string(m) + ": " + choice(kModes, m).help;
}

std::string describe(Strength s) {
  char text[64];
  std::snprintf(text, sizeof text, "%s (no more visible than JPEG q%d)", to_string(s).c_str(),
                strength_budget(s).jpeg_quality);
  return text;
}

std::string describe(InvisibleAt a) {
  return to_string(a) + ": " + choice(kInvisibleAt, a).help;
}

std::string describe(Preset p) {
  return to_string(p) + " (" + std::to_string(preset_sweeps(p)) + " sweeps)";
}

}  // namespace cloak

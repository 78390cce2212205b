#include "cloak/pipeline/settings_listing.h"

#include "cloak/engine/decoys.h"
#include "cloak/engine/settings.h"

namespace cloak {

nlohmann::json settings_listing() {
  nlohmann::json j;
  for (const auto& m : kModes)
    j["modes"].push_back({{"name", m.name},
                          {"help", m.help},
                          {"label", describe(m.value)},
                          {"needs_target", m.value == Mode::Poison}});
  for (const auto& s : kStrengths)
    j["strengths"].push_back({{"name", s.name},
                              {"label", describe(s.value)},
                              {"jpeg_quality", s.budget.jpeg_quality},
                              {"eps_codes", s.budget.eps_codes},
                              {"min_shift_jpeg75", s.budget.min_shift_jpeg75},
                              {"min_floor_multiple", s.budget.min_floor_multiple}});
  for (const auto& p : kPresets)
    j["presets"].push_back({{"name", p.name}, {"label", describe(p.value)}, {"sweeps", p.sweeps}});
  for (const auto& a : kInvisibleAt)
    j["invisible_at"].push_back({{"name", a.name}, {"label", describe(a.value)}});
  j["decoys"] = decoy_names();
  const ProtectSettings defaults;
  j["defaults"] = {{"mode", to_string(defaults.mode)},
                   {"strength", to_string(defaults.strength)},
                   {"preset", to_string(defaults.preset)},
                   {"invisible_at", to_string(defaults.invisible_at)},
                   {"decoy", defaults.decoy},
                   {"seed", defaults.seed}};
  return j;
}

}  // namespace cloak

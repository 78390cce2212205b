// Every choice a protect run offers, as JSON: what `cloak settings --json` prints and the web
// app's /api/settings answers, so that the plug-ins and the page offer the library's choices
// (engine/settings.h, engine/decoys.h) and nothing else.
#pragma once

#include <nlohmann/json.hpp>

namespace cloak {

// {"modes": [{name, help, label, needs_target}], "strengths": [{name, label, jpeg_quality,
// eps_codes, min_shift_jpeg75}], "presets": [{name, label, sweeps}], "decoys": [names],
// "defaults": {mode, strength, preset, decoy, seed}}. Labels are what a dialog shows.
nlohmann::json settings_listing();

}  // namespace cloak

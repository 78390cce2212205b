// cloak settings : every choice a protect run offers, with its promise and the defaults; with
// --json, the listing the plug-ins and the web app read (pipeline/settings_listing.h).
#include <iostream>

#include "cli/common.h"
#include "cloak/pipeline/settings_listing.h"

namespace cloak::cli {

namespace {

int run_settings(const Context& ctx) {
  const nlohmann::json j = settings_listing();
  if (ctx.json) {
    std::cout << j.dump() << std::endl;
    return kOk;
  }
  const auto& defaults = j["defaults"];
  const auto list = [&](const char* title, const char* key, const char* default_key) {
    std::cout << title << ":\n";
    for (const auto& c : j[key])
      std::cout << "  " << c["label"].get<std::string>()
                << (c["name"] == defaults[default_key] ? "  [default]" : "") << "\n";
  };
  list("modes (--mode)", "modes", "mode");
  list("strengths (--strength)", "strengths", "strength");
  list("effort (--preset)", "presets", "preset");
  list("large pictures invisible (--invisible-at)", "invisible_at", "invisible_at");
  std::cout << "decoys (--decoy, cloak mode):";
  for (const auto& d : j["decoys"])
    std::cout << " " << d.get<std::string>() << (d == defaults["decoy"] ? " [default]" : "");
  std::cout << "\n";
  return kOk;
}

}  // namespace

void add_settings_command(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("settings", "List the modes, strengths, efforts and decoys");
  cmd->footer("With --json: the listing plug-ins read (cloak settings --json).");
  cmd->callback([&ctx] { ctx.run = [&ctx] { return run_settings(ctx); }; });
}

}  // namespace cloak::cli

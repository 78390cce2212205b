// Finds, verifies and loads surrogate weights.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cloak/models/model_spec.h"

namespace cloak {

// Folders searched for weights, in order: `explicit_dir` (--models), $CLOAK_MODELS, PREFIX/share/
// cloak/models beside an installed PREFIX/bin, the first shared/models folder beside the program's
// folder or one above it (a development checkout with ../shared beside it), then the per-user data
// folder ($XDG_DATA_HOME/cloak/models, else ~/.local/share/cloak/models). Nothing of the machine
// the program was built on is compiled in.
std::vector<std::filesystem::path> model_search_path(
    const std::optional<std::filesystem::path>& explicit_dir = std::nullopt);

// The per-user folder `cloak models fetch` installs into.
std::filesystem::path user_models_dir();

struct FoundModel {
  std::filesystem::path file;
  const PinnedFile* pinned;  // which of the spec's two files this is
};

// The first file of `spec` (safetensors, else upstream .pth) in the first folder that has one.
std::optional<FoundModel> find_model(const ModelSpec& spec,
                                     const std::vector<std::filesystem::path>& search_path);

// A loaded surrogate: eval mode, weights frozen, 4-D weights channels-last (faster on CPU).
struct LoadedModel {
  const ModelSpec* spec;
  mutable torch::nn::Sequential net;  // running it does not change the model
  std::filesystem::path file;
  std::string sha256;
};

// Finds the model, checks its SHA-256 against the compiled-in manifest and loads it. Throws
// cloak::Error (Model) saying where it looked and how to get it when missing, and refuses a file
// whose hash differs.
LoadedModel load_model(const ModelSpec& spec,
                       const std::vector<std::filesystem::path>& search_path);

}  // namespace cloak

// Loading the surrogates a run uses, with the process's thread and precision set-up: the one way
// the CLI, the GIMP plug-in, the benchmark and the tests get their models.
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cloak/engine/precision.h"
#include "cloak/pipeline/cpu_share.h"
#include "cloak/report/audit.h"
#include "cloak/weights/model_store.h"

namespace cloak {

struct SurrogateOptions {
  std::optional<std::filesystem::path> models_dir;  // searched first (model_search_path)
  std::vector<std::string> names;  // the encoders to load; empty: every installed one
  int threads = 0;                 // libtorch's CPU threads; 0: default_threads()
  Precision precision = Precision::Auto;
  torch::Device device = torch::kCPU;
  // Told, in one line, about each encoder that is not installed when `names` is empty.
  std::function<void(const std::string&)> warn;
};

// Sets the threads and precision, then loads the encoders. Throws cloak::Error: Usage for an
// unknown name, Model (saying where it looked) when a named one, or every one, is missing or
// tampered with.
std::vector<LoadedModel> load_encoders(const SurrogateOptions& options);

// The taef2 autoencoder (encoder and decoder) that preview and the audit's purifications use.
Autoencoder load_autoencoder(const SurrogateOptions& options);

}  // namespace cloak

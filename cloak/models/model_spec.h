// The surrogate models Cloak knows, with the pinned files each one comes from. This table is the
// compiled-in manifest: a weight file whose SHA-256 is not listed here is never loaded.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

namespace cloak {

struct PinnedFile {
  std::string file;    // name inside a models folder
  std::string sha256;  // lower-case hex
  std::string url;     // where `cloak models fetch` downloads it; empty when not downloadable
};

// The pinned upstream commit of madebyollin/taesd that every TAESD-family file comes from.
inline constexpr const char* kTaesdUpstream =
    "https://raw.githubusercontent.com/madebyollin/taesd/5cccb12dc72074a4be35680c3b108548a7c69978/";

enum class ModelRole { Encoder, Decoder };

struct ModelSpec {
  std::string name;
  ModelRole role;
  int downscale;           // pixels per latent cell along each axis
  std::string mimics;      // the production autoencoder this surrogate is distilled from
  PinnedFile safetensors;  // float32 upcast with the same tensor names
  PinnedFile upstream;     // the exact upstream .pth
  std::function<torch::nn::Sequential()> build;
};

// Every known model, encoders first. Adding a surrogate: one file defining its spec, one line here.
const std::vector<ModelSpec>& model_specs();
const ModelSpec& model_spec(const std::string& name);

ModelSpec taef2_encoder_spec();
ModelSpec taef2_decoder_spec();
ModelSpec taesana_encoder_spec();

}  // namespace cloak

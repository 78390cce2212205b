// taef2 encoder: TAESD Encoder(latent_channels=32, use_midblock_gn=True), mimics the FLUX.2 VAE.
#include "cloak/models/model_spec.h"
#include "cloak/models/taesd_block.h"

namespace cloak {

ModelSpec taef2_encoder_spec() {
  return {"taef2_encoder",
          ModelRole::Encoder,
          8,
          "FLUX.2 VAE",
          {"taef2_encoder.safetensors",
           "b5a663c4904c3cbbe916c389cb09533182d69703d3764898a751fa0a57f4eaf4", ""},
          {"taef2_encoder.pth", "10a4e1021e89d7551eaf161352da8dbd0b1aa83872ae28b150c1df1ce2f147b6",
           kTaesdUpstream + std::string("taef2_encoder.pth")},
          [] {
            return torch::nn::Sequential(
                taesd_conv(3, 64), TaesdBlock(false), taesd_conv(64, 64, 2, false),
                TaesdBlock(false), TaesdBlock(false), TaesdBlock(false),
                taesd_conv(64, 64, 2, false), TaesdBlock(false), TaesdBlock(false),
                TaesdBlock(false), taesd_conv(64, 64, 2, false), TaesdBlock(true), TaesdBlock(true),
                TaesdBlock(true), taesd_conv(64, 32));
          }};
}

}  // namespace cloak

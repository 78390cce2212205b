// taesana encoder: TAESD F32Encoder(latent_channels=32), mimics the Sana DC-AE (f32c32).
#include "cloak/models/model_spec.h"
#include "cloak/models/taesd_block.h"

namespace cloak {

ModelSpec taesana_encoder_spec() {
  return {
      "taesana_encoder",
      ModelRole::Encoder,
      32,
      "Sana DC-AE",
      {"taesana_encoder.safetensors",
       "7bc44929b17ffda100fb50ee9ba4f2aeeb0525774a0d757357b0c369fff81896", ""},
      {"taesana_encoder.pth", "858f4e4cc293f88efaf58107f4154b960b9ced0cb5d9c050dad11f926b618c1f",
       kTaesdUpstream + std::string("taesana_encoder.pth")},
      [] {
        namespace nn = torch::nn;
        return nn::Sequential(taesd_conv(3, 32, 2), nn::ReLU(), taesd_conv(32, 64, 2), nn::ReLU(),
                              TaesdBlock(false), taesd_conv(64, 64, 2, false), TaesdBlock(false),
                              TaesdBlock(false), TaesdBlock(false), taesd_conv(64, 64, 2, false),
                              TaesdBlock(false), TaesdBlock(false), TaesdBlock(false),
                              taesd_conv(64, 64, 2, false), TaesdBlock(false), TaesdBlock(false),
                              TaesdBlock(false), taesd_conv(64, 32));
      }};
}

}  // namespace cloak

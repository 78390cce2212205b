// taef2 decoder: TAESD Decoder(latent_channels=32, use_midblock_gn=True); "what the AI sees".
#include "cloak/models/model_spec.h"
#include "cloak/models/taesd_block.h"

namespace cloak {

ModelSpec taef2_decoder_spec() {
  return {"taef2_decoder",
          ModelRole::Decoder,
          8,
          "FLUX.2 VAE",
          {"taef2_decoder.safetensors",
           "8aba2159b237e28f2b4958f5898dda3ba6622a461cc21997070e927b0b82543e", ""},
          {"taef2_decoder.pth", "0a44a31e1ae59eb9dbf9359d24942fd3ef5928162c1800d97a28c61d51be0ab5",
           kTaesdUpstream + std::string("taef2_decoder.pth")},
          [] {
            namespace nn = torch::nn;
            auto up = [] {
              return nn::Upsample(nn::UpsampleOptions()
                                      .scale_factor(std::vector<double>{2.0, 2.0})
                                      .mode(torch::kNearest));
            };
            return nn::Sequential(
                nn::Functional([](torch::Tensor z) { return torch::tanh(z / 3) * 3; }),
                taesd_conv(32, 64), nn::ReLU(), TaesdBlock(true), TaesdBlock(true),
                TaesdBlock(true), up(), taesd_conv(64, 64, 1, false), TaesdBlock(false),
                TaesdBlock(false), TaesdBlock(false), up(), taesd_conv(64, 64, 1, false),
                TaesdBlock(false), TaesdBlock(false), TaesdBlock(false), up(),
                taesd_conv(64, 64, 1, false), TaesdBlock(false), taesd_conv(64, 3));
          }};
}

}  // namespace cloak

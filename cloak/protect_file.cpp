#include "cloak/protect_file.h"

#include <torch/torch.h>

#include <cstring>

#include "cloak/metadata.h"

namespace cloak {

torch::Tensor image_tensor(const Image& image) {
  return torch::from_blob(const_cast<float*>(image.color.data()),
                          {1, image.color_channels, image.height, image.width})
      .clone();
}

torch::Tensor alpha_mask(const Image& image) {
  if (image.alpha.empty()) return {};
  auto a =
      torch::from_blob(const_cast<float*>(image.alpha.data()), {1, 1, image.height, image.width});
  return (a > 0).to(torch::kFloat32);
}

Image with_color(const Image& image, const torch::Tensor& color) {
  Image out = image;
  auto c = color.to(torch::kFloat32).contiguous();
  std::memcpy(out.color.data(), c.data_ptr<float>(), out.color.size() * sizeof(float));
  return out;
}

void add_ai_training_optout(ImageMetadata& metadata) {
  set_xmp_properties(
      metadata,
      {{"Xmp.plus.DataMining", "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING"},
       {"Xmp.xmpRights.UsageTerms",
        "Not to be used to train or fine-tune AI/ML models (protected with Cloak)."}});
}

FileResult protect_file(const std::vector<LoadedModel>& encoders, const std::filesystem::path& in,
                        const std::filesystem::path& out, const FileJob& job,
                        const ProgressFn& progress) {
  Image image = read_image(in, job.read);
  auto x = image_tensor(image);
  FileResult r;
  r.run = protect(encoders, {x, alpha_mask(image), image.bit_depth}, job.settings, progress);
  r.report = measure_protection(encoders, x, r.run.image, image.bit_depth, job.settings);
  Image result = with_color(image, r.run.image);
  if (job.optout_tag) add_ai_training_optout(result.metadata);
  write_image(result, out, {job.jpeg_quality, job.overwrite, in});
  return r;
}

nlohmann::json to_json(const ProtectSettings& s) {
  return {{"mode", to_string(s.mode)},
          {"strength", to_string(s.strength)},
          {"preset", to_string(s.preset)},
          {"seed", s.seed},
          {"tile", s.tile},
          {"decoy", s.target.defined() ? "target image" : s.decoy}};
}

}  // namespace cloak

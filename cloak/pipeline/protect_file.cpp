#include "cloak/pipeline/protect_file.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>

#include "cloak/core/error.h"
#include "cloak/engine/cancel.h"
#include "cloak/engine/vision.h"
#include "cloak/io/file_io.h"
#include "cloak/io/metadata.h"

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

torch::Tensor target_tensor(const Image& image) {
  return as_rgb(image_tensor(image)).contiguous();
}

const std::vector<std::string>& output_formats() {
  static const std::vector<std::string> formats = {"png", "jpg", "webp", "same"};
  return formats;
}

void add_ai_training_optout(ImageMetadata& metadata) {
  set_xmp_properties(
      metadata,
      {{"Xmp.plus.DataMining", "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING"},
       {"Xmp.xmpRights.UsageTerms",
        "Not to be used to train or fine-tune AI/ML models (protected with Cloak)."}});
}

void check_large_enough(const std::vector<LoadedModel>& encoders, int width, int height,
                        const std::string& name) {
  const int min_side = max_downscale(encoders);
  if (std::min(width, height) < min_side)
    throw Error(ErrorKind::Input, name + ": " + std::to_string(width) + "x" +
                                      std::to_string(height) +
                                      " is too small to protect (the encoders see at least " +
                                      std::to_string(min_side) + " px a side)");
}

FileResult protect_image(const std::vector<LoadedModel>& encoders, const Image& image,
                         const std::string& name, const std::filesystem::path& out,
                         const FileJob& job, const ProgressFn& progress) {
  check_large_enough(encoders, image.width, image.height, name);
  check_can_write(image, out);
  FileResult r;
  r.original = image_tensor(image);
  r.bit_depth = image.bit_depth;
  // A cancel (the callback returning false) stops the run and the measures after it within
  // moments, also inside the calls that report no progress (engine/cancel.h).
  double fraction = 0;
  const CancelScope cancel([&] { return progress && !progress(fraction); });
  r.run = protect(encoders, {r.original, alpha_mask(image), image.bit_depth}, job.settings,
                  [&](double f) {
                    fraction = f;
                    return !progress || progress(f);
                  });
  r.report =
      measure_protection(encoders, r.original, r.run, image.bit_depth, job.settings, job.report);
  Image result = with_color(image, r.run.image);
  if (job.optout_tag) add_ai_training_optout(result.metadata);
  r.encoded = encode_image(result, out, job.jpeg_quality);
  return r;
}

FileResult protect_to_bytes(const std::vector<LoadedModel>& encoders,
                            const std::filesystem::path& in, const std::filesystem::path& out,
                            const FileJob& job, const ProgressFn& progress) {
  // Cancelled already (while the models loaded): not a second spent decoding.
  if (progress && !progress(0)) throw Error(ErrorKind::Cancelled, "cancelled");
  return protect_image(encoders, read_image(in, job.read), in.string(), out, job, progress);
}

FileResult protect_file(const std::vector<LoadedModel>& encoders, const std::filesystem::path& in,
                        const std::filesystem::path& out, const FileJob& job,
                        const ProgressFn& progress) {
  InputFiles({in}).refuse_as_output(out);
  FileResult r = protect_to_bytes(encoders, in, out, job, progress);
  write_file_atomic(out, r.encoded, job.overwrite);
  return r;
}

nlohmann::json to_json(const ProtectSettings& s) {
  return {{"mode", to_string(s.mode)},
          {"strength", to_string(s.strength)},
          {"preset", to_string(s.preset)},
          {"invisible_at", to_string(s.invisible_at)},
          {"seed", s.seed},
          {"tile", s.tile},
          {"decoy", s.target.defined() ? "target image" : s.decoy}};
}

}  // namespace cloak

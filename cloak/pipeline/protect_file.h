// Protecting one image file: read, protect, measure, write with metadata. What `cloak protect` and
// `cloak batch` run for each file.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cloak/engine/protect.h"
#include "cloak/io/image_io.h"
#include "cloak/report/measure.h"

namespace cloak {

struct FileJob {
  ProtectSettings settings;
  int jpeg_quality = kDefaultJpegQuality;
  bool overwrite = false;
  bool optout_tag = true;  // mark the output as not for AI training
  ReadOptions read;
  ReportDetail report = ReportDetail::Full;
};

struct FileResult {
  torch::Tensor original;  // the colour planes that were protected, (1,C,H,W)
  int bit_depth = 8;       // of the image and its protected copy
  ProtectOutput run;
  ProtectionReport report;
  std::vector<std::uint8_t> encoded;  // the protected file's bytes, metadata included
};

// The colour planes as a (1,C,H,W) tensor, and where change is allowed (alpha > 0) as (1,1,H,W),
// undefined when the image has no alpha.
torch::Tensor image_tensor(const Image& image);
torch::Tensor alpha_mask(const Image& image);
// `image` with its colour planes replaced by `color` (1,C,H,W); alpha and metadata unchanged.
Image with_color(const Image& image, const torch::Tensor& color);

// A picture given as poison's anchor or cloak's decoy style, as the engine takes it: (1,3,H,W) RGB.
torch::Tensor target_tensor(const Image& image);

// The output formats a protect run offers: "same" keeps the input's.
const std::vector<std::string>& output_formats();

// Adds the IPTC PLUS "not for AI/ML training" data-mining value (XMP plus:DataMining) and a
// matching XMP usage-terms statement, keeping everything the artist already wrote.
void add_ai_training_optout(ImageMetadata& metadata);

// Refuses (cloak::Error naming `name`, one line) a picture smaller than the encoders can see.
void check_large_enough(const std::vector<LoadedModel>& encoders, int width, int height,
                        const std::string& name);

// Protects and measures `image`, and encodes the result for `out` (format by extension, metadata
// kept, opt-out tag added); writes nothing. Refuses, before any work, images smaller than the
// encoders can see and outputs that cannot hold the image. Throws cloak::Error naming `name`.
FileResult protect_image(const std::vector<LoadedModel>& encoders, const Image& image,
                         const std::string& name, const std::filesystem::path& out,
                         const FileJob& job, const ProgressFn& progress = {});

// Reads `in` (within job.read's limits), then protect_image.
FileResult protect_to_bytes(const std::vector<LoadedModel>& encoders,
                            const std::filesystem::path& in, const std::filesystem::path& out,
                            const FileJob& job, const ProgressFn& progress = {});

// protect_to_bytes, then an atomic write of `out` (never over `in`).
FileResult protect_file(const std::vector<LoadedModel>& encoders, const std::filesystem::path& in,
                        const std::filesystem::path& out, const FileJob& job,
                        const ProgressFn& progress = {});

nlohmann::json to_json(const ProtectSettings& s);

}  // namespace cloak

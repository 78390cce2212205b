// cloak preview IN [PROTECTED] : what the AI sees, as one contact sheet.
#include <torch/torch.h>

#include <iostream>

#include "cli/common.h"
#include "cloak/core/error.h"
#include "cloak/io/file_io.h"
#include "cloak/pipeline/preview.h"

namespace cloak::cli {

namespace fs = std::filesystem;

namespace {

struct PreviewArgs {
  fs::path input;
  std::optional<fs::path> protected_, output;
  int size = 512;
  bool overwrite = false, visibility = false;
};

int run_preview(const Context& ctx, const PreviewArgs& a) {
  if (a.visibility && !a.protected_)
    throw Error(ErrorKind::Usage, "--visibility needs the protected copy (PROTECTED)");
  const fs::path out =
      a.output ? *a.output
               : a.input.parent_path() / (a.input.stem().string() +
                                          (a.visibility ? "-visibility.png" : "-preview.png"));
  std::vector<fs::path> inputs = {a.input};
  if (a.protected_) inputs.push_back(*a.protected_);
  InputFiles(inputs).refuse_as_output(out);
  if (!a.overwrite && fs::exists(out))
    throw Error(ErrorKind::Output, out.string() + ": already exists (use --overwrite)");
  Image original = read_image(a.input);
  std::optional<Image> prot;
  if (a.protected_) prot = read_image(*a.protected_);
  if (a.visibility) {
    const auto x = image_tensor(original), p = image_tensor(*prot);
    if (p.sizes() != x.sizes())
      throw Error(ErrorKind::Input,
                  a.protected_->string() + ": not the same size as " + a.input.string());
    const auto v = butteraugli(x, p, true);
    write_image(picture(visibility_heatmap(p, v.distmap)), out,
                {kDefaultJpegQuality, a.overwrite, a.input});
    if (!ctx.quiet)
      std::cout << out.string() << "  Butteraugli max " << v.max << ", 3-norm " << v.norm3
                << std::endl;
    return kOk;
  }
  const Autoencoder ae = load_autoencoder(surrogate_options(ctx));
  torch::NoGradGuard no_grad;
  auto seen = [&](const torch::Tensor& x) { return reconstruct(ae, x); };
  auto x = preview_tensor(original, a.size);
  // Row 1: the original and what the AI sees of it. Row 2: the same for the protected copy, and
  // the difference between the two images amplified 10x.
  std::vector<torch::Tensor> rows = {torch::cat({x, seen(x), torch::ones_like(x)}, 3)};
  if (prot) {
    auto p = preview_tensor(*prot, a.size);
    if (p.sizes() != x.sizes())
      throw Error(ErrorKind::Input,
                  a.protected_->string() + ": not the same size as " + a.input.string());
    rows.push_back(torch::cat({p, seen(p), ((p - x).abs() * 10).clamp(0, 1)}, 3));
  } else {
    rows[0] = rows[0].slice(3, 0, 2 * x.size(3));
  }
  write_image(picture(torch::cat(rows, 2)), out, {kDefaultJpegQuality, a.overwrite, a.input});
  if (!ctx.quiet) std::cout << out.string() << std::endl;
  return kOk;
}

}  // namespace

void add_preview_command(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<PreviewArgs>();
  auto* cmd = app.add_subcommand("preview", "Show what the AI sees: a contact sheet PNG");
  cmd->add_option("IN", args->input, "the original image")->required();
  cmd->add_option("PROTECTED", args->protected_, "its protected copy, shown beside it");
  cmd->add_option("-o,--output", args->output,
                  "contact sheet (default: IN-preview.png, or IN-visibility.png)");
  cmd->add_option("--size", args->size, "longest side of each panel in pixels");
  cmd->add_flag("--overwrite", args->overwrite, "replace an existing contact sheet");
  cmd->add_flag("--visibility", args->visibility,
                "instead: a full-size heat map of where the change is visible (Butteraugli)");
  cmd->footer(
      "Top row: the original and the picture a generator's autoencoder (FLUX.2 VAE, through its\n"
      "taef2 surrogate) rebuilds from it. Bottom row: the same for the protected copy, and the\n"
      "change between the two images amplified 10x.\n"
      "--visibility: the protected copy in gray, coloured where a person can see the change\n"
      "(Butteraugli distance: green 0.5, yellow 1 = just visible, red 2 and more), full size.\n"
      "Examples:\n  cloak preview painting.png painting-cloaked.png -o what-the-ai-sees.png\n"
      "  cloak preview painting.png painting-cloaked.png --visibility -o where-it-shows.png");
  cmd->callback([&ctx, args] { ctx.run = [&ctx, args] { return run_preview(ctx, *args); }; });
}

}  // namespace cloak::cli

// cloak protect IN... : one image at a time, written next to the input.
#include <iostream>

#include "cli/common.h"
#include "cloak/error.h"
#include "cloak/file_io.h"

namespace cloak::cli {

namespace fs = std::filesystem;

namespace {

struct ProtectArgs {
  std::vector<fs::path> inputs;
  std::optional<fs::path> output, report;
  std::string suffix = "-cloaked";
  ProtectOptions options;
};

int run_protect(const Context& ctx, const ProtectArgs& a) {
  if (a.output && a.inputs.size() > 1)
    throw Error(ErrorKind::Usage, "-o names one output; with several inputs use --suffix");
  const FileJob job = make_job(a.options, ctx);
  std::vector<std::pair<fs::path, fs::path>> plan;
  for (const auto& in : a.inputs) {
    fs::path out =
        a.output ? *a.output
                 : in.parent_path() / (in.stem().string() + a.suffix + in.extension().string());
    plan.emplace_back(in, a.output ? out : with_format(out, a.options.format));
  }
  if (a.options.dry_run) {
    for (const auto& [in, out] : plan) std::cout << in.string() << " -> " << out.string() << "\n";
    return kOk;
  }
  const auto encoders = load_encoders(ctx, a.options.surrogates);
  nlohmann::json reports = nlohmann::json::array();
  int failed = 0;
  for (const auto& [in, out] : plan) {
    try {
      ProgressBar bar(ctx, in.filename().string());
      FileResult r = protect_file(encoders, in, out, job, std::ref(bar));
      reports.push_back(print_result(ctx, in, out, job, r));
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::Cancelled || e.kind() == ErrorKind::Usage ||
          e.kind() == ErrorKind::Model || plan.size() == 1)
        throw;
      std::cerr << "cloak: " << e.what() << "\n";
      ++failed;
    }
  }
  if (a.report) {
    std::string text = (reports.size() == 1 ? reports[0] : reports).dump(2) + "\n";
    write_file_atomic(*a.report, std::vector<std::uint8_t>(text.begin(), text.end()),
                      a.options.overwrite);
  }
  return failed == 0 ? kOk : failed == static_cast<int>(plan.size()) ? kFailure : kPartial;
}

}  // namespace

void add_protect_command(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<ProtectArgs>();
  auto* cmd = app.add_subcommand("protect", "Protect images before you publish them");
  cmd->add_option("IN", args->inputs, "images to protect (PNG, JPEG, WebP, TIFF, BMP)")->required();
  cmd->add_option("-o,--output", args->output, "output file (one input only)");
  cmd->add_option("--suffix", args->suffix, "added to the input's name for the output");
  cmd->add_option("--report", args->report, "write the measured protection report here (JSON)");
  add_protect_options(*cmd, args->options);
  cmd->footer(
      "Examples:\n"
      "  cloak protect painting.png                 writes painting-cloaked.png\n"
      "  cloak protect a.jpg b.png --strength high  stronger, still PSNR >= 32 dB\n"
      "  cloak protect sketch.png --mode poison --target cat.jpg -o sketch-safe.png\n"
      "  cloak protect art.tif --format png --report art.json");
  cmd->callback([&ctx, args] { ctx.run = [&ctx, args] { return run_protect(ctx, *args); }; });
}

}  // namespace cloak::cli

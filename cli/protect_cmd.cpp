// cloak protect IN... : one image at a time, written next to the input.
#include <iostream>

#include "cli/common.h"
#include "cloak/core/error.h"
#include "cloak/io/file_io.h"

namespace cloak::cli {

namespace fs = std::filesystem;

namespace {

struct ProtectArgs {
  std::vector<fs::path> inputs;
  std::optional<fs::path> output, report;
  std::string suffix = "-cloaked";
  bool audit = false;
  ProtectOptions options;
};

int run_protect(const Context& ctx, const ProtectArgs& a) {
  if (a.output && a.inputs.size() > 1)
    throw Error(ErrorKind::Usage, "-o names one output; with several inputs use --suffix");
  FileJob job = make_job(a.options, ctx);
  if (a.report) job.report = ReportDetail::Full;
  std::vector<PlannedFile> plan;
  for (const auto& in : a.inputs) {
    fs::path out =
        a.output ? *a.output
                 : in.parent_path() / (in.stem().string() + a.suffix + in.extension().string());
    plan.push_back({in, a.output ? out : with_format(out, a.options.format), ""});
  }
  mark_collisions(plan);
  // Before any work: nothing Cloak writes may be an input, or an existing file unless asked.
  const InputFiles inputs(a.inputs);
  if (a.report) {
    inputs.refuse_as_output(*a.report);
    for (const auto& f : plan)
      if (f.out.lexically_normal() == a.report->lexically_normal())
        throw Error(ErrorKind::Usage, a.report->string() + ": --report names an image output");
    if (!a.options.job.overwrite && fs::exists(*a.report))
      throw Error(ErrorKind::Output, a.report->string() + ": already exists (use --overwrite)");
  }
  if (a.options.dry_run) {
    for (const auto& f : plan) std::cout << f.in.string() << " -> " << f.out.string() << "\n";
    return kOk;
  }
  const auto encoders = load_encoders(surrogate_options(ctx, a.options.surrogates));
  std::optional<Autoencoder> ae;
  if (a.audit) ae = load_autoencoder(surrogate_options(ctx));
  nlohmann::json reports = nlohmann::json::array();
  int failed = 0;
  for (const auto& f : plan) {
    try {
      if (!f.error.empty()) throw Error(ErrorKind::Output, f.error);
      inputs.refuse_as_output(f.out);
      if (!job.overwrite && fs::exists(f.out))
        throw Error(ErrorKind::Output, f.out.string() + ": already exists (use --overwrite)");
      ProgressBar bar(ctx, f.in.filename().string());
      FileResult r = protect_file(encoders, f.in, f.out, job, std::ref(bar));
      std::optional<AuditReport> attacked;
      if (ae)
        attacked = audit(encoders, *ae, r.original, r.run.image, r.bit_depth, job.settings.strength,
                         r.run.mask);
      reports.push_back(
          print_result(ctx, f.in, f.out, job, r, attacked ? to_json(*attacked) : nlohmann::json()));
      if (attacked && !ctx.quiet && !ctx.json) print_audit(*attacked, job.settings.strength);
    } catch (const std::exception& e) {
      if (stops_the_run(e)) throw;
      std::cerr << "cloak: " << file_error(e, f.in) << "\n";
      ++failed;
    }
  }
  if (a.report && !reports.empty()) {
    std::string text = (reports.size() == 1 ? reports[0] : reports).dump(2) + "\n";
    write_file_atomic(*a.report, std::vector<std::uint8_t>(text.begin(), text.end()),
                      a.options.job.overwrite);
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
  cmd->add_flag("--audit", args->audit,
                "also attack the result as a mimic would (cloak audit) and report what survives");
  add_protect_options(*cmd, args->options);
  cmd->footer(
      "Examples:\n"
      "  cloak protect painting.png                 writes painting-cloaked.png\n"
      "  cloak protect a.jpg b.png --strength high  stronger, no more visible than a JPEG q80\n"
      "  cloak protect sketch.png --mode poison --target cat.jpg -o sketch-safe.png\n"
      "  cloak protect art.tif --format png --report art.json");
  cmd->callback([&ctx, args] { ctx.run = [&ctx, args] { return run_protect(ctx, *args); }; });
}

}  // namespace cloak::cli

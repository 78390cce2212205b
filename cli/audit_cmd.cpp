// cloak audit ORIGINAL PROTECTED : the red team. Applies what a mimic would do to a published copy
// and reports how much protection survives each step.
#include <cmath>
#include <iostream>

#include "cli/common.h"
#include "cloak/core/error.h"
#include "cloak/io/file_io.h"

namespace cloak::cli {

namespace fs = std::filesystem;

namespace {

struct AuditArgs : PairArgs {
  std::optional<fs::path> html;
  bool overwrite = false;
};

int run_audit(const Context& ctx, const AuditArgs& a) {
  if (a.html) {
    InputFiles({a.original, a.protected_}).refuse_as_output(*a.html);
    if (!a.overwrite && fs::exists(*a.html))
      throw Error(ErrorKind::Output, a.html->string() + ": already exists (use --overwrite)");
  }
  const auto [original, prot] = read_pair(a.original, a.protected_);
  const auto encoders = load_encoders(surrogate_options(ctx, a.surrogates));
  const Autoencoder ae = load_autoencoder(surrogate_options(ctx));
  const AuditReport report = audit(encoders, ae, image_tensor(original), image_tensor(prot),
                                   original.bit_depth, a.strength, alpha_mask(original));
  if (a.html) {
    const std::string page = audit_html(report, ae, a.protected_.filename().string());
    write_file_atomic(*a.html, std::vector<std::uint8_t>(page.begin(), page.end()), a.overwrite);
  }
  if (ctx.json) {
    auto j = to_json(report);
    j["original"] = a.original.string();
    j["protected"] = a.protected_.string();
    std::cout << j.dump() << std::endl;
  } else if (!ctx.quiet) {
    print_audit(report, a.strength);
  }
  return report.survives ? kOk : kNotProtected;
}

}  // namespace

void print_audit(const AuditReport& r, Strength strength) {
  std::printf("visibility of the protection: Butteraugli max %.2f, 3-norm %.2f: %s\n",
              r.visibility.max, r.visibility.norm3,
              describe_jpeg_equivalent(r.jpeg_equivalent).c_str());
  std::printf("%-60s", "attack (applied to the published copy and to the original)");
  for (const auto& e : r.encoders) std::printf(" %9s", e.substr(0, e.find('_')).c_str());
  std::printf("  %6s  %6s %7s  %-8s %s\n", "mean", "noise", "x noise", "survives",
              "PSNR vs published");
  std::string removed;
  for (const auto& a : r.results) {
    std::printf("%-60s", a.attack.description.c_str());
    for (double s : a.shift) std::printf(" %9.3f", s);
    std::printf("  %6.3f  %6.3f %6.2fx  %-8s ", a.mean_shift, a.mean_floor, a.multiple,
                a.survives ? "yes" : "NO");
    if (std::isnan(a.psnr_vs_protected))
      std::printf("-\n");
    else
      std::printf("%.1f dB\n", a.psnr_vs_protected);
    if (!a.survives) removed += (removed.empty() ? "" : ", ") + a.attack.description;
  }
  std::printf(
      "(noise: what plain random noise as visible keeps, Butteraugli 3-norm %.2f; that "
      "much is not protection)\n",
      r.floor_norm3);
  std::printf("%s at the %s thresholds: a shift of %.2f and %.2fx the noise's.\n",
              r.survives ? "The protection survives every JPEG, resize and blur step"
                         : "The protection does NOT survive every JPEG, resize and blur step",
              to_string(strength).c_str(), r.threshold, r.min_multiple);
  if (!removed.empty())
    std::printf("Removed, or brought down to what noise keeps, by: %s.\n", removed.c_str());
}

void add_audit_command(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<AuditArgs>();
  auto* cmd = app.add_subcommand(
      "audit", "Attack a protected copy as a mimic would, and measure what survives");
  add_pair_options(*cmd, *args);
  cmd->add_option("--html", args->html, "also write a self-contained HTML report with pictures");
  cmd->add_flag("--overwrite", args->overwrite, "replace an existing HTML report");
  cmd->footer(
      "Attacks: JPEG q50/75/95, resize 50% and back, resize to ~1 megapixel, blur sigma 0.5 and "
      "1,\n"
      "noise + re-synthesis through the taef2 autoencoder (a stand-in for noisy upscaling), and\n"
      "IMPRESS-style purification. Each is applied to both images; the latent shift between them\n"
      "is what remains of the protection; the same for a copy with plain noise as visible is the\n"
      "floor it is judged against (noise keeps that much too).\n"
      "Exit status: 0 when every JPEG/resize/blur step keeps the mean shift at or above the\n"
      "strength's threshold and its multiple of the noise's, 4 when one does not, 1 on an error.\n"
      "Example:\n  cloak audit painting.png painting-cloaked.png --html audit.html");
  cmd->callback([&ctx, args] { ctx.run = [&ctx, args] { return run_audit(ctx, *args); }; });
}

}  // namespace cloak::cli

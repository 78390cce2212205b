// cloak verify ORIGINAL PROTECTED : measure, without re-running the attack.
#include <iostream>

#include "cli/common.h"
#include "cloak/core/error.h"
#include "cloak/report/noise_floor.h"

namespace cloak::cli {

namespace fs = std::filesystem;

namespace {

int run_verify(const Context& ctx, const PairArgs& a) {
  const auto [original, prot] = read_pair(a.original, a.protected_);
  const auto encoders = load_encoders(surrogate_options(ctx, a.surrogates));
  ProtectSettings untargeted;
  untargeted.strength = a.strength;
  auto report =
      measure_protection(encoders, image_tensor(original), image_tensor(prot), original.bit_depth,
                         untargeted, *make_objective(encoders, untargeted), alpha_mask(original));
  const Verdict v = judge(report, a.strength);
  auto j = to_json(report);
  j.update(to_json(v, a.strength));
  if (ctx.json) {
    std::cout << j.dump() << std::endl;
  } else if (!ctx.quiet) {
    std::printf("quality: PSNR %.1f dB, SSIM %.4f, max change %.0f code values\n", report.psnr,
                report.ssim, report.linf_codes);
    std::printf("visibility: Butteraugli max %.2f, 3-norm %.2f: %s\n", report.visibility.max,
                report.visibility.norm3, describe_jpeg_equivalent(report.jpeg_equivalent).c_str());
    if (report.measured_height != original.height || report.measured_width != original.width)
      std::printf("shifts measured at %ldx%ld, the size fine-tuning pipelines resize it to\n",
                  static_cast<long>(report.measured_width),
                  static_cast<long>(report.measured_height));
    for (const auto& s : report.surrogates)
      std::printf(
          "%-16s latent shift %.3f (%.1fx noise as visible), after JPEG q75 %.3f (%.1fx), after "
          "50%% resize %.3f (%.1fx)\n",
          s.name.c_str(), *s.shift, floor_multiple(*s.shift, *s.floor), s.shift_jpeg75,
          floor_multiple(s.shift_jpeg75, s.floor_jpeg75), *s.shift_resize50,
          floor_multiple(*s.shift_resize50, *s.floor_resize50));
    std::printf("%s\n", describe(v, a.strength).c_str());
  }
  return v.protected_ ? kOk : kNotProtected;
}

}  // namespace

void add_verify_command(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<PairArgs>();
  auto* cmd = app.add_subcommand("verify", "Measure how well a protected copy is protected");
  add_pair_options(*cmd, *args);
  cmd->footer(
      "Exit status: 0 when, after JPEG q75 and on average over the surrogates, the latent shift\n"
      "reaches the strength's threshold and is at least its multiple of what plain noise as\n"
      "visible gets (the noise floor); 4 when it does not; 1 on an error.\n"
      "Example:\n  cloak verify painting.png painting-cloaked.png --json");
  cmd->callback([&ctx, args] { ctx.run = [&ctx, args] { return run_verify(ctx, *args); }; });
}

}  // namespace cloak::cli

// The cloak command: protect artwork from generative-AI mimicry.
#include <torch/torch.h>
#include <torch/version.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cli/common.h"
#include "cloak/core/error.h"
#include "cloak/engine/cancel.h"
#include "cloak/engine/openmp_wait.h"
#include "cloak/io/file_io.h"

using namespace cloak;
using namespace cloak::cli;

namespace {

std::string version_text() {
  std::string devices = "cpu";
  if (torch::cuda::is_available())
    devices += ", cuda (" + std::to_string(torch::cuda::device_count()) + ")";
  return "cloak " CLOAK_VERSION "\nlibtorch " TORCH_VERSION "\nthreads " +
         std::to_string(at::get_num_threads()) + "\ndevices " + devices;
}

int exit_code(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Usage:
      return kUsage;
    case ErrorKind::Cancelled:
      return kCancelled;
    case ErrorKind::NoSpace:
      return kNoSpace;
    default:
      return kFailure;
  }
}

}  // namespace

int main(int argc, char** argv) {
  restart_with_short_openmp_spin(argv);
  Context ctx;
  CLI::App app{
      "Cloak protects artwork before it is published: a near-invisible perturbation makes "
      "generative models see something else."};
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand
  app.set_version_flag("--version", [] {
    at::set_num_threads(default_threads());
    return version_text();
  });
  app.add_option("--models", ctx.models_dir, "folder with the surrogate weights");
  app.add_option("--threads", ctx.threads,
                 "CPU threads (default: the cores this process is given: its affinity, cgroup "
                 "quota, SLURM_CPUS_PER_TASK)");
  app.add_option("--device", ctx.device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--precision", ctx.precision,
                 "auto: bfloat16 surrogates on CPUs that have it (AVX512-BF16), else float32; "
                 "fp32: always float32")
      ->check(CLI::IsMember({"auto", "fp32"}));
  app.add_flag("-q,--quiet", ctx.quiet, "print nothing but errors");
  app.add_flag("-v,--verbose", ctx.verbose, "print more detail");
  app.add_flag("--json", ctx.json, "machine-readable result lines on stdout");
  app.add_flag("--progress-json", ctx.progress_json,
               "progress as JSON lines on stderr, one a percent: "
               "{\"file\":\"a.png\",\"fraction\":0.42,\"eta_s\":12}");
  app.footer("Run 'cloak COMMAND --help' for a command's options and examples.");
  add_protect_command(app, ctx);
  add_batch_command(app, ctx);
  add_preview_command(app, ctx);
  add_verify_command(app, ctx);
  add_audit_command(app, ctx);
  add_models_command(app, ctx);
  add_serve_command(app, ctx);
  add_settings_command(app, ctx);
  std::string commands;
  bool known = false;
  for (const auto* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    commands += (commands.empty() ? "" : ", ") + sub->get_name();
    known = known || (argc > 1 && sub->check_name(argv[1]));
  }
  if (argc > 1 && argv[1][0] != '-' && !known) {
    std::cerr << "cloak: unknown command '" << argv[1] << "' (commands: " << commands
              << "; see cloak --help)\n";
    return kUsage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kUsage;
  }
  install_signal_handlers();
  int rc = kOk;
  try {
    rc = ctx.run();
  } catch (const Error& e) {
    std::cerr << "cloak: " << printable(e.what()) << "\n";
    rc = exit_code(e.kind());
  } catch (const std::exception& e) {
    // Library errors (libtorch's carry a backtrace) are cut to their first line.
    const std::string what = e.what();
    std::cerr << "cloak: " << printable(what.substr(0, what.find('\n'))) << "\n";
    rc = kFailure;
  }
  // A measure a cancel left running (engine/cancel.h) must not meet the libraries' destructors.
  if (abandoned_computations() > 0) {
    std::cout.flush();
    std::fflush(nullptr);
    std::_Exit(rc);
  }
  return rc;
}

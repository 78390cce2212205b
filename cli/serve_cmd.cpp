// cloak serve : the local web app, for artists who never open a terminal.
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <iostream>
#include <thread>

#include "cli/common.h"
#include "cloak/core/error.h"
#include "web/server.h"

extern char** environ;

namespace cloak::cli {

namespace fs = std::filesystem;

namespace {

struct ServeArgs {
  int port = 0;
  bool open = false;
  std::optional<fs::path> output;
};

// Asks the desktop to open `url` in the default browser; says so when it cannot.
void open_in_browser(const std::string& url) {
  pid_t pid;
  const char* argv[] = {"xdg-open", url.c_str(), nullptr};
  if (posix_spawnp(&pid, "xdg-open", nullptr, nullptr, const_cast<char**>(argv), environ) != 0)
    std::cerr << "cloak: could not start a browser (xdg-open): open the address above\n";
}

int run_serve(const Context& ctx, const ServeArgs& a) {
  if (a.output && !fs::is_directory(*a.output))
    throw Error(ErrorKind::Usage, a.output->string() + ": --output must be an existing folder");
  const auto encoders = load_encoders(surrogate_options(ctx));
  const Autoencoder ae = load_autoencoder(surrogate_options(ctx));
  web::JobQueue jobs(encoders, ae, ctx.threads > 0 ? ctx.threads : default_threads(), a.output);
  web::ServeOptions options;
  options.defaults.settings.device = device_of(ctx);
  web::Server server(jobs, options);
  server.bind(a.port);
  std::cout << server.url() << std::endl;  // the first line: scripts and tests read it
  if (!ctx.quiet)
    std::cerr << "cloak: serving on this computer only (127.0.0.1); open the address above. "
                 "Ctrl-C stops.\n";
  if (a.open) open_in_browser(server.url());
  std::thread stopper([&server] {
    while (!g_interrupted) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    server.stop();
  });
  server.run();
  g_interrupted = true;
  stopper.join();
  return kOk;
}

}  // namespace

void add_serve_command(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<ServeArgs>();
  auto* cmd = app.add_subcommand("serve", "Protect images from a web page on this computer");
  cmd->add_option("--port", args->port, "port on 127.0.0.1 (default: any free one)")
      ->check(CLI::Range(0, 65535));
  cmd->add_flag("--open", args->open, "open the page in the default browser");
  cmd->add_option("--output", args->output,
                  "also save every result in this folder (never over an existing file)");
  cmd->footer(
      "Prints the page's address (with its session token) on the first line. Nothing is uploaded\n"
      "anywhere: the server listens on 127.0.0.1 only and refuses other hosts.\n"
      "Example:\n  cloak serve --open --output ~/Pictures/protected");
  cmd->callback([&ctx, args] { ctx.run = [&ctx, args] { return run_serve(ctx, *args); }; });
}

}  // namespace cloak::cli

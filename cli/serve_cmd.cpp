// cloak serve : the local web app, for artists who never open a terminal.
#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>
#ifdef CLOAK_TCMALLOC
#include <gperftools/malloc_extension_c.h>
#endif

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
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

// Asks the desktop to open `url` in the default browser, through a page only this user can read
// that forwards to it: on xdg-open's command line the token would be readable by every local user
// (/proc/PID/cmdline). Returns that page, to be removed when the server stops; says so when it
// cannot start a browser.
fs::path open_in_browser(const std::string& url) {
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  std::string dir =
      ((runtime && *runtime ? fs::path(runtime) : fs::temp_directory_path()) / "cloak-XXXXXX")
          .string();
  fs::path page;
  if (mkdtemp(dir.data())) {
    page = fs::path(dir) / "open.html";
    const std::string html = "<!doctype html><meta http-equiv=\"refresh\" content=\"0; url=" + url +
                             "\"><a href=\"" + url + "\">Open Cloak</a>\n";
    const int fd = ::open(page.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    const bool written =
        fd >= 0 && ::write(fd, html.data(), html.size()) == static_cast<ssize_t>(html.size());
    if (fd >= 0) ::close(fd);
    pid_t pid;
    const std::string target = page.string();
    const char* argv[] = {"xdg-open", target.c_str(), nullptr};
    if (written &&
        posix_spawnp(&pid, "xdg-open", nullptr, nullptr, const_cast<char**>(argv), environ) == 0)
      return page;
  }
  std::cerr << "cloak: could not start a browser (xdg-open): open the address above\n";
  return page;
}

int run_serve(const Context& ctx, const ServeArgs& a) {
  if (a.output && !fs::is_directory(*a.output))
    throw Error(ErrorKind::Usage, a.output->string() + ": --output must be an existing folder");
#ifdef CLOAK_TCMALLOC
  // A server waits between jobs: tcmalloc gives freed memory back at once instead of keeping it
  // for the next step (after a cancelled 4096 px job 0.24 GiB resident, not 4.3; bench/RESULTS.md).
  MallocExtension_SetNumericProperty("tcmalloc.aggressive_memory_decommit", 1);
#endif
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
  // Ctrl-C stops the server within a moment, whatever clients do; a second one ends it at once.
  const auto interrupt = [](int) {
    if (g_interrupted.exchange(true)) _exit(kCancelled);
  };
  std::signal(SIGINT, interrupt);
  std::signal(SIGTERM, interrupt);
  const fs::path opener = a.open ? open_in_browser(server.url()) : fs::path();
  std::thread stopper([&server] {
    while (!g_interrupted) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    server.stop();
  });
  server.run();
  g_interrupted = true;
  stopper.join();
  if (!opener.empty()) {
    std::error_code ignored;
    fs::remove_all(opener.parent_path(), ignored);
  }
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

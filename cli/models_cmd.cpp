// cloak models list|verify|fetch : the surrogate weights.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <iostream>

#include "cli/common.h"
#include "cloak/core/error.h"
#include "cloak/io/file_io.h"
#include "cloak/weights/sha256.h"

extern char** environ;

namespace cloak::cli {

namespace fs = std::filesystem;

namespace {

int run_list(const Context& ctx) {
  const auto search = model_search_path(ctx.models_dir);
  nlohmann::json all = nlohmann::json::array();
  for (const auto& spec : model_specs()) {
    auto found = find_model(spec, search);
    nlohmann::json j = {{"name", spec.name},
                        {"role", spec.role == ModelRole::Encoder ? "encoder" : "decoder"},
                        {"mimics", spec.mimics},
                        {"path", found ? found->file.string() : ""}};
    all.push_back(j);
    if (!ctx.json)
      std::printf("%-16s %-8s mimics %-11s %s\n", spec.name.c_str(),
                  j["role"].get<std::string>().c_str(), spec.mimics.c_str(),
                  found ? found->file.c_str() : "not installed");
  }
  if (ctx.json) std::cout << all.dump() << std::endl;
  if (!ctx.json && !ctx.quiet) {
    std::cerr << "searched:";
    for (const auto& d : search) std::cerr << " " << d.string();
    std::cerr << "\n";
  }
  return kOk;
}

int run_verify_models(const Context& ctx) {
  const auto search = model_search_path(ctx.models_dir);
  int bad = 0;
  for (const auto& spec : model_specs()) {
    auto found = find_model(spec, search);
    std::string status = "missing";
    if (found)
      status = sha256_file(found->file) == found->pinned->sha256 ? "ok" : "SHA-256 MISMATCH";
    if (status != "ok") ++bad;
    if (!ctx.quiet)
      std::printf("%-16s %-16s %s\n", spec.name.c_str(), status.c_str(),
                  found ? found->file.c_str() : "");
  }
  return bad ? kFailure : kOk;
}

// Downloads with the system curl (no shell involved); curl's own message becomes one line of ours.
void download(const std::string& url, const fs::path& to) {
  const fs::path log = to.string() + ".log";
  std::vector<std::string> args = {"curl", "-fsSL", "--retry",   "2", "--connect-timeout",
                                   "20",   "-o",    to.string(), url};
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid;
  const int spawned = posix_spawnp(&pid, "curl", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0)
    throw Error(ErrorKind::Model,
                "cannot download " + url + ": curl is not installed (apt-get install curl)");
  int status = 0;
  waitpid(pid, &status, 0);
  std::string why;
  std::error_code ec;
  if (fs::exists(log, ec)) {
    const auto bytes = read_file(log);
    why.assign(bytes.begin(), bytes.end());
    fs::remove(log, ec);
  }
  // "curl: (6) Could not resolve host: x" -> "Could not resolve host: x"
  if (const auto paren = why.find(") "); why.rfind("curl: (", 0) == 0 && paren != std::string::npos)
    why = why.substr(paren + 2);
  why = why.substr(0, why.find('\n'));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw Error(ErrorKind::Model, "cannot download " + url + ": " +
                                      (why.empty() ? "curl failed" : why) +
                                      " (check the network connection)");
}

int run_fetch(const Context& ctx) {
  const auto search = model_search_path(ctx.models_dir);
  const fs::path dir = ctx.models_dir ? *ctx.models_dir : user_models_dir();
  fs::create_directories(dir);
  for (const auto& spec : model_specs()) {
    auto found = find_model(spec, search);
    if (found && sha256_file(found->file) == found->pinned->sha256) {
      if (!ctx.quiet)
        std::printf("%-16s already installed: %s\n", spec.name.c_str(), found->file.c_str());
      continue;
    }
    // A damaged file that fetch manages is replaced; one elsewhere would still be found first.
    std::error_code ec;
    const bool repair = found && fs::equivalent(found->file.parent_path(), dir, ec);
    if (found && !repair)
      throw Error(ErrorKind::Model, found->file.string() +
                                        ": SHA-256 mismatch (damaged or tampered); delete it, "
                                        "then run 'cloak models fetch' again");
    const fs::path dest = dir / spec.upstream.file,
                   tmp = dir / ("." + spec.upstream.file + ".part");
    download(spec.upstream.url, tmp);
    const std::string sha = sha256_file(tmp);
    if (sha != spec.upstream.sha256) {
      fs::remove(tmp);
      throw Error(ErrorKind::Model, spec.upstream.url + ": downloaded file has SHA-256 " + sha +
                                        ", expected " + spec.upstream.sha256 +
                                        "; nothing was installed");
    }
    fs::rename(tmp, dest);
    if (repair && found->file != dest) fs::remove(found->file);
    if (!ctx.quiet)
      std::printf("%-16s %s %s\n", spec.name.c_str(), repair ? "repaired:" : "installed",
                  dest.c_str());
  }
  return kOk;
}

}  // namespace

void add_models_command(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("models", "List, verify or download the surrogate models");
  cmd->require_subcommand(1);
  cmd->add_subcommand("list", "Which models are known and where each was found")->callback([&ctx] {
    ctx.run = [&ctx] { return run_list(ctx); };
  });
  cmd->add_subcommand("verify", "Check installed weights against their pinned SHA-256")
      ->callback([&ctx] { ctx.run = [&ctx] { return run_verify_models(ctx); }; });
  cmd->add_subcommand("fetch", "Download the pinned upstream weights (checked by SHA-256)")
      ->callback([&ctx] { ctx.run = [&ctx] { return run_fetch(ctx); }; });
  cmd->footer(
      "Models are searched in --models DIR, $CLOAK_MODELS, ../shared/models beside the source "
      "tree,\n"
      "then $XDG_DATA_HOME/cloak/models (~/.local/share/cloak/models), where fetch installs them.");
}

}  // namespace cloak::cli

#include "cloak/weights/model_store.h"

#include <cstdlib>

#include "cloak/core/error.h"
#include "cloak/io/file_io.h"
#include "cloak/weights/sha256.h"
#include "cloak/weights/state_dict.h"

namespace cloak {

namespace fs = std::filesystem;

fs::path user_models_dir() {
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg)
    return fs::path(xdg) / "cloak" / "models";
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : ".") / ".local" / "share" / "cloak" / "models";
}

namespace {

// The folder of the running program, empty when the system does not say.
fs::path executable_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

}  // namespace

std::vector<fs::path> model_search_path(const std::optional<fs::path>& explicit_dir) {
  std::vector<fs::path> dirs;
  if (explicit_dir) dirs.push_back(*explicit_dir);
  if (const char* env = std::getenv("CLOAK_MODELS"); env && *env) dirs.emplace_back(env);
  if (const fs::path exe = executable_dir(); !exe.empty()) {
    dirs.push_back(exe.parent_path() / "share" / "cloak" / "models");  // installed: PREFIX/bin
    for (fs::path d = exe; !d.empty();
         d = d.parent_path()) {  // a checkout with ../shared beside it
      std::error_code ec;
      if (fs::is_directory(d / "shared" / "models", ec)) {
        dirs.push_back(d / "shared" / "models");
        break;
      }
      if (d == d.parent_path()) break;
    }
  }
  dirs.push_back(user_models_dir());
  return dirs;
}

std::optional<FoundModel> find_model(const ModelSpec& spec,
                                     const std::vector<fs::path>& search_path) {
  for (const auto& dir : search_path)
    for (const PinnedFile* pinned : {&spec.safetensors, &spec.upstream}) {
      std::error_code ec;
      if (fs::is_regular_file(dir / pinned->file, ec))
        return FoundModel{dir / pinned->file, pinned};
    }
  return std::nullopt;
}

LoadedModel load_model(const ModelSpec& spec, const std::vector<fs::path>& search_path) {
  auto found = find_model(spec, search_path);
  if (!found) {
    std::string looked;
    for (const auto& d : search_path) looked += (looked.empty() ? "" : ", ") + d.string();
    throw Error(ErrorKind::Model, spec.name + ": weights not found (looked for " +
                                      spec.safetensors.file + " or " + spec.upstream.file + " in " +
                                      looked + "); run 'cloak models fetch' to get them");
  }
  const std::string where = found->file.string();
  auto bytes = read_file(found->file);
  std::string sha = sha256_hex(bytes);
  if (sha != found->pinned->sha256)
    throw Error(ErrorKind::Model, where + ": SHA-256 mismatch (expected " + found->pinned->sha256 +
                                      ", got " + sha +
                                      "): damaged or not the pinned file; delete it and run "
                                      "'cloak models fetch'");
  TensorMap weights = found->pinned == &spec.safetensors ? parse_safetensors(bytes, where)
                                                         : parse_pth(bytes, where);
  auto net = spec.build();
  load_state_dict(*net, weights, where);
  net->eval();
  torch::NoGradGuard no_grad;
  for (auto& p : net->parameters()) {
    p.requires_grad_(false);
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  }
  return {&spec, net, found->file, sha};
}

}  // namespace cloak

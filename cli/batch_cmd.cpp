// cloak batch DIR|LIST : a whole portfolio, resumable, shardable across a cluster.
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "cli/common.h"
#include "cloak/error.h"
#include "cloak/file_io.h"
#include "cloak/sha256.h"

namespace cloak::cli {

namespace fs = std::filesystem;

namespace {

struct BatchArgs {
  fs::path source;
  std::optional<fs::path> outdir;
  bool recursive = false, resume = false;
  std::string shard;
  ProtectOptions options;
};

struct Shard {
  std::uint64_t index = 0, count = 1;
};

std::uint64_t env_number(const char* name, bool* present) {
  const char* v = std::getenv(name);
  *present = v && *v;
  return *present ? std::strtoull(v, nullptr, 10) : 0;
}

// "K/N" (0 <= K < N), "auto/N" or "" (K and N from SLURM array variables, or K from a Kubernetes
// Indexed Job's JOB_COMPLETION_INDEX).
Shard parse_shard(const std::string& spec) {
  bool has_id, has_count, has_min, has_k8s;
  const auto slurm_id = env_number("SLURM_ARRAY_TASK_ID", &has_id);
  const auto slurm_count = env_number("SLURM_ARRAY_TASK_COUNT", &has_count);
  const auto slurm_min = env_number("SLURM_ARRAY_TASK_MIN", &has_min);
  const auto k8s = env_number("JOB_COMPLETION_INDEX", &has_k8s);
  Shard s;
  if (spec.empty()) {
    if (has_id && has_count) s = {slurm_id - slurm_min, slurm_count};
    return s;
  }
  const auto slash = spec.find('/');
  if (slash == std::string::npos) throw Error(ErrorKind::Usage, "--shard takes K/N, e.g. 0/4");
  const std::string k = spec.substr(0, slash);
  try {
    s.count = std::stoull(spec.substr(slash + 1));
    if (k == "auto") {
      if (!has_id && !has_k8s)
        throw Error(ErrorKind::Usage,
                    "--shard auto/N: neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set");
      s.index = has_id ? slurm_id - slurm_min : k8s;
    } else {
      s.index = std::stoull(k);
    }
  } catch (const std::logic_error&) {
    throw Error(ErrorKind::Usage, "--shard takes K/N with whole numbers, e.g. 0/4");
  }
  if (s.count == 0 || s.index >= s.count)
    throw Error(ErrorKind::Usage, "--shard " + spec + ": K must be in 0..N-1");
  return s;
}

// FNV-1a: the same shard for the same relative path on every machine.
std::uint64_t stable_hash(const std::string& s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::vector<fs::path> list_inputs(const BatchArgs& a, const fs::path& outdir) {
  std::vector<fs::path> rel;
  std::error_code ec;
  if (fs::is_directory(a.source, ec)) {
    auto consider = [&](const fs::directory_entry& e) {
      if (!e.is_regular_file() || !format_from_extension(e.path())) return;
      auto r = e.path().lexically_relative(a.source);
      if (fs::weakly_canonical(e.path()).string().rfind(fs::weakly_canonical(outdir).string() + "/",
                                                        0) == 0)
        return;
      rel.push_back(r);
    };
    if (a.recursive)
      for (const auto& e : fs::recursive_directory_iterator(a.source)) consider(e);
    else
      for (const auto& e : fs::directory_iterator(a.source)) consider(e);
  } else {
    auto bytes = read_file(a.source);
    std::string line;
    std::istringstream list(std::string(bytes.begin(), bytes.end()));
    while (std::getline(list, line))
      if (!line.empty() && line[0] != '#') rel.emplace_back(line);
  }
  std::sort(rel.begin(), rel.end());
  return rel;
}

class Manifest {
 public:
  Manifest(fs::path file, bool resume) : file_(std::move(file)) {
    if (!fs::exists(file_)) return;
    if (!resume)
      throw Error(ErrorKind::Usage, file_.parent_path().string() +
                                        ": holds an earlier batch; pass --resume to continue it");
    auto bytes = read_file(file_);
    try {
      data_ = nlohmann::json::parse(bytes.begin(), bytes.end());
    } catch (const nlohmann::json::exception&) {
      throw Error(ErrorKind::Input, file_.string() + ": batch manifest is not valid JSON");
    }
  }
  nlohmann::json& entry(const std::string& rel) { return data_["files"][rel]; }
  bool has(const std::string& rel) const {
    return data_.contains("files") && data_["files"].contains(rel);
  }
  void save() {
    std::string text = data_.dump(1) + "\n";
    write_file_atomic(file_, std::vector<std::uint8_t>(text.begin(), text.end()), true);
  }

 private:
  fs::path file_;
  nlohmann::json data_ = {{"version", 1}, {"files", nlohmann::json::object()}};
};

int run_batch(const Context& ctx, const BatchArgs& a) {
  const fs::path outdir = a.outdir ? *a.outdir : fs::path(a.source.string() + "-cloaked");
  const Shard shard = parse_shard(a.shard);
  FileJob job = make_job(a.options, ctx);
  auto settings = to_json(job.settings);
  settings["quality"] = job.jpeg_quality;
  settings["optout_tag"] = job.optout_tag;
  const fs::path base = fs::is_directory(a.source) ? a.source : a.source.parent_path();
  std::vector<fs::path> files;
  for (const auto& rel : list_inputs(a, outdir))
    if (stable_hash(rel.generic_string()) % shard.count == shard.index) files.push_back(rel);
  if (a.options.dry_run) {
    for (const auto& rel : files)
      std::cout << (base / rel).string() << " -> "
                << with_format(outdir / rel, a.options.format).string() << "\n";
    return kOk;
  }
  fs::create_directories(outdir);
  Manifest manifest(outdir / (shard.count > 1 ? "cloak-manifest." + std::to_string(shard.index) +
                                                    "-of-" + std::to_string(shard.count) + ".json"
                                              : "cloak-manifest.json"),
                    a.resume);
  const auto encoders = load_encoders(ctx, a.options.surrogates);
  int done = 0, skipped = 0, failed = 0;
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (g_interrupted) break;
    const std::string key = files[i].generic_string();
    const fs::path in = base / files[i], out = with_format(outdir / files[i], a.options.format);
    try {
      const std::string in_sha = sha256_hex(read_file(in));
      const bool known = manifest.has(key);
      auto& e = manifest.entry(key);
      if (known && e.value("status", "") == "done" && e.value("input_sha256", "") == in_sha &&
          e["settings"] == settings && fs::exists(out) &&
          sha256_hex(read_file(out)) == e.value("output_sha256", "")) {
        ++skipped;
        continue;
      }
      e = {{"status", "started"}, {"input_sha256", in_sha}, {"settings", settings}};
      manifest.save();
      fs::create_directories(out.parent_path());
      FileJob file_job = job;
      file_job.overwrite = job.overwrite || known;  // an output this batch wrote before
      ProgressBar bar(
          ctx, "[" + std::to_string(i + 1) + "/" + std::to_string(files.size()) + "] " + key);
      FileResult r = protect_file(encoders, in, out, file_job, std::ref(bar));
      e["status"] = "done";
      e["output"] = out.lexically_relative(outdir).generic_string();
      e["output_sha256"] = sha256_hex(read_file(out));
      manifest.save();
      ++done;
      print_result(ctx, in, out, job, r);
    } catch (const Error& err) {
      if (err.kind() == ErrorKind::Cancelled) break;
      if (err.kind() == ErrorKind::Model || err.kind() == ErrorKind::Usage) throw;
      manifest.entry(key) = {{"status", "failed"}, {"error", err.what()}};
      manifest.save();
      std::cerr << "cloak: " << err.what() << "\n";
      ++failed;
    }
  }
  if (!ctx.quiet && !ctx.json)
    std::cerr << "cloak: " << done << " protected, " << skipped << " already done, " << failed
              << " failed" << (g_interrupted ? ", interrupted (run again with --resume)" : "")
              << "\n";
  if (g_interrupted) return kCancelled;
  return failed ? kPartial : kOk;
}

}  // namespace

void add_batch_command(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<BatchArgs>();
  auto* cmd = app.add_subcommand("batch", "Protect a whole folder or list of images, resumably");
  cmd->add_option("SOURCE", args->source,
                  "a folder of images, or a text file listing one path a line")
      ->required();
  cmd->add_option("-o,--output", args->outdir,
                  "output folder (default: SOURCE-cloaked); mirrors the tree");
  cmd->add_flag("-r,--recursive", args->recursive, "include sub-folders");
  cmd->add_flag("--resume", args->resume, "continue an earlier batch in the same output folder");
  cmd->add_option("--shard", args->shard,
                  "process shard K of N (K/N, 0-based), or auto/N to take K from "
                  "SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX");
  add_protect_options(*cmd, args->options);
  cmd->footer(
      "Examples:\n"
      "  cloak batch portfolio/ -o portfolio-cloaked/ -r\n"
      "  cloak batch portfolio/ -o out/ -r --resume        after Ctrl-C or a crash\n"
      "  cloak batch list.txt -o out/ --shard 2/8          the third of 8 machines\n"
      "Exit status: 0 all done, 3 some files failed (each reported), 130 interrupted.");
  cmd->callback([&ctx, args] { ctx.run = [&ctx, args] { return run_batch(ctx, *args); }; });
}

}  // namespace cloak::cli

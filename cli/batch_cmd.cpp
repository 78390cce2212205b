// cloak batch DIR|LIST : a whole portfolio, resumable, shardable across a cluster.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/common.h"
#include "cloak/core/error.h"
#include "cloak/io/file_io.h"
#include "cloak/pipeline/batch_manifest.h"
#include "cloak/pipeline/batch_shard.h"
#include "cloak/pipeline/batch_status.h"
#include "cloak/report/noise_floor.h"
#include "cloak/weights/sha256.h"

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

bool is_inside(const fs::path& path, const fs::path& dir) {
  const auto rel = path.lexically_relative(dir);
  return !rel.empty() && *rel.begin() != "..";
}

fs::path absolute_normal(const fs::path& p) {
  return fs::absolute(p).lexically_normal();
}

// The deepest folder holding both.
fs::path common_folder(const fs::path& a, const fs::path& b) {
  fs::path common;
  for (auto i = a.begin(), j = b.begin(); i != a.end() && j != b.end() && *i == *j; ++i, ++j)
    common /= *i;
  return common;
}

// Every input with its output inside `outdir`, keeping the relative structure: a folder's files
// relative to it; a list's entries relative to the list's folder, or, when some lie outside it
// (absolute or ../ paths), to the deepest folder that holds them all. Files inside `outdir` are
// never inputs.
std::vector<PlannedFile> plan_batch(const BatchArgs& a, const fs::path& outdir,
                                    std::vector<std::string>& keys) {
  std::vector<fs::path> inputs;
  fs::path base;
  std::error_code ec;
  const fs::path out_abs = absolute_normal(fs::weakly_canonical(outdir));
  if (fs::is_directory(a.source, ec)) {
    base = absolute_normal(a.source);
    auto consider = [&](const fs::directory_entry& e) {
      if (e.is_regular_file() && format_from_extension(e.path()))
        inputs.push_back(absolute_normal(e.path()));
    };
    if (a.recursive)
      for (const auto& e : fs::recursive_directory_iterator(a.source)) consider(e);
    else
      for (const auto& e : fs::directory_iterator(a.source)) consider(e);
  } else {
    base = absolute_normal(a.source).parent_path();
    const auto bytes = read_file(a.source);
    std::istringstream list(std::string(bytes.begin(), bytes.end()));
    for (std::string line; std::getline(list, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty() || line[0] == '#') continue;
      const fs::path entry = fs::path(line).is_absolute() ? fs::path(line) : base / line;
      inputs.push_back(entry.lexically_normal());
    }
    for (const auto& in : inputs)
      if (!is_inside(in, base)) base = common_folder(base, in.parent_path());
  }
  std::sort(inputs.begin(), inputs.end());
  inputs.erase(std::unique(inputs.begin(), inputs.end()), inputs.end());
  std::vector<PlannedFile> plan;
  const fs::path cwd = fs::current_path();
  for (const auto& in : inputs) {
    if (is_inside(absolute_normal(fs::weakly_canonical(in, ec)), out_abs)) continue;
    const fs::path rel = in.lexically_relative(base);
    keys.push_back(rel.generic_string());
    // Messages name an input below the working folder as the user would type it.
    const fs::path shown = is_inside(in, cwd) ? in.lexically_relative(cwd) : in;
    plan.push_back({shown, with_format(outdir / rel, a.options.format), ""});
  }
  mark_collisions(plan);
  return plan;
}

std::string file_sha256(const fs::path& file) {
  std::error_code ec;
  return fs::is_regular_file(file, ec) ? sha256_hex(read_file(file)) : "";
}

int run_batch(const Context& ctx, const BatchArgs& a) {
  const fs::path outdir = a.outdir ? *a.outdir : fs::path(a.source.string() + "-cloaked");
  std::error_code ec;
  if (fs::equivalent(outdir, a.source, ec))
    throw Error(ErrorKind::Usage, outdir.string() +
                                      ": the output folder is the source folder; choose another "
                                      "with -o (originals are never written over)");
  const Shard shard = parse_shard(a.shard);
  FileJob job = make_job(a.options, ctx);
  auto settings = to_json(job.settings);
  settings["quality"] = job.jpeg_quality;
  settings["optout_tag"] = job.optout_tag;
  std::vector<std::string> all_keys;
  const auto all = plan_batch(a, outdir, all_keys);
  std::vector<PlannedFile> files;
  std::vector<std::string> keys;
  std::vector<fs::path> all_inputs;
  for (std::size_t i = 0; i < all.size(); ++i) {
    all_inputs.push_back(all[i].in);
    if (shard_of(all_keys[i], shard.count) != shard.index) continue;
    files.push_back(all[i]);
    keys.push_back(all_keys[i]);
  }
  if (a.options.dry_run) {
    for (const auto& f : files) std::cout << f.in.string() << " -> " << f.out.string() << "\n";
    return kOk;
  }
  fs::create_directories(outdir);
  const InputFiles inputs(all_inputs);
  const fs::path manifest_file =
      outdir / (shard.count > 1 ? "cloak-manifest." + std::to_string(shard.index) + "-of-" +
                                      std::to_string(shard.count) + ".json"
                                : "cloak-manifest.json");
  inputs.refuse_as_output(manifest_file);
  BatchManifest manifest(manifest_file, a.resume);
  if (shard.count > 1 && manifest.version() < 2)
    throw Error(ErrorKind::Usage, manifest_file.string() +
                                      ": was started by an older cloak that chose shards "
                                      "differently; finish it with that version, or start the "
                                      "batch again in a new folder");
  manifest.set_plan(shard.name(), files.size(), all.size());
  manifest.save();
  // What killed runs left half-written; the lock says no other batch is writing here.
  remove_stale_temporaries(outdir);
  for (const auto& e : fs::recursive_directory_iterator(outdir, ec))
    if (e.is_directory()) remove_stale_temporaries(e.path());
  const auto encoders = load_encoders(surrogate_options(ctx, a.options.surrogates));
  int done = 0, skipped = 0, failed = 0;
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (g_interrupted) break;
    const auto& [in, out, plan_error] = files[i];
    auto& e = manifest.entry(keys[i]);
    try {
      if (!plan_error.empty()) throw Error(ErrorKind::Output, plan_error);
      const std::string in_sha = sha256_hex(read_file(in));
      const std::string out_sha = file_sha256(out);
      const bool same_job = e.value("input_sha256", "") == in_sha && e.contains("settings") &&
                            e["settings"] == settings;
      // A finished output, or one whose writing was cut off after it landed: keep it.
      if (same_job && !out_sha.empty() &&
          ((e.value("status", "") == "done" && out_sha == e.value("output_sha256", "")) ||
           (e.value("status", "") == "writing" && out_sha == e.value("pending_sha256", "")))) {
        if (e["status"] == "writing") {
          e["status"] = "done";
          e["output_sha256"] = out_sha;
          e.erase("pending_sha256");
          manifest.save();
        }
        ++skipped;
        continue;
      }
      // Only what this batch wrote may be replaced without --overwrite.
      const bool ours = !out_sha.empty() && (out_sha == e.value("output_sha256", "") ||
                                             out_sha == e.value("pending_sha256", ""));
      inputs.refuse_as_output(out);
      if (!out_sha.empty() && !ours && !job.overwrite)
        throw Error(ErrorKind::Output, out.string() +
                                           ": already exists and was not written by this batch "
                                           "(use --overwrite to replace it)");
      if (fs::exists(out) && out_sha.empty())
        throw Error(ErrorKind::Output, out.string() + ": exists and is not a regular file");
      e["status"] = "started";
      e["input_sha256"] = in_sha;
      e["settings"] = settings;
      e.erase("error");
      manifest.save();
      ProgressBar bar(
          ctx, "[" + std::to_string(i + 1) + "/" + std::to_string(files.size()) + "] " + keys[i]);
      FileResult r = protect_to_bytes(encoders, in, out, job, std::ref(bar));
      e["status"] = "writing";
      e["output"] = out.lexically_relative(outdir).generic_string();
      e["pending_sha256"] = sha256_hex(r.encoded);
      manifest.save();
      fs::create_directories(out.parent_path());
      write_file_atomic(out, r.encoded, !out_sha.empty());
      e["status"] = "done";
      e["output_sha256"] = e["pending_sha256"];
      e.erase("pending_sha256");
      e["megapixels"] = static_cast<double>(r.original.size(2) * r.original.size(3)) / 1e6;
      e["seconds"] = r.run.seconds;
      e["psnr"] = r.report.psnr;
      const Verdict v = judge(r.report, job.settings.strength);
      e["shift_jpeg75"] = v.shift;
      e["floor_jpeg75"] = v.floor;
      manifest.save();
      ++done;
      print_result(ctx, in, out, job, r);
    } catch (const std::exception& err) {
      const auto* cloak_err = dynamic_cast<const Error*>(&err);
      if (cloak_err && cloak_err->kind() == ErrorKind::Cancelled) break;
      if (stops_the_run(err)) throw;
      e["status"] = "failed";
      e["error"] = file_error(err, in);
      e.erase("pending_sha256");
      manifest.save();
      std::cerr << "cloak: " << file_error(err, in) << "\n";
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

std::string counts_text(const ImageCounts& c) {
  std::string text;
  const auto add = [&text](std::size_t n, const char* what) {
    if (n) text += (text.empty() ? "" : ", ") + std::to_string(n) + " " + what;
  };
  add(c.done, "done");
  add(c.failed, "failed");
  add(c.running, "running");
  add(c.pending, "pending");
  return text.empty() ? "nothing to do" : text;
}

// cloak batch status OUT: exit 0 when every image is done, 1 while some are pending or running,
// 3 when all have been tried and some failed.
int run_status(const Context& ctx, const fs::path& folder) {
  const BatchStatus st = read_batch_status(folder);
  const ImageCounts& n = st.images;
  if (ctx.json) {
    std::cout << to_json(st).dump() << std::endl;
  } else {
    std::cout << folder.string() << ": " << n.done + n.failed + n.running + n.pending
              << " images in " << st.shards.size() << " shard" << (st.shards.size() > 1 ? "s" : "")
              << ": " << counts_text(n) << "\n";
    for (const auto& s : st.shards) {
      std::cout << "  shard " << s.shard << ": ";
      if (!s.started)
        std::cout << "not started" << (s.images.pending ? ", about " : "")
                  << (s.images.pending ? counts_text(s.images) : "") << "\n";
      else
        std::cout << (s.running_on ? "running, " + s.running_on->describe() + ": " : "")
                  << counts_text(s.images)
                  << (s.interrupted ? "; interrupted, run it again with --resume" : "") << "\n";
    }
    if (!st.failed.empty()) std::cout << "failed:\n";
    for (const auto& f : st.failed) std::cout << "  " << f.error << "\n";
    if (n.done) {
      std::ostringstream totals;
      totals.precision(3);
      totals << "done: " << n.done << (n.done == 1 ? " image, " : " images, ") << st.megapixels
             << " megapixels, " << static_cast<long>(st.seconds + 0.5) << " s of protection";
      if (st.mean_psnr) totals << "; mean PSNR " << *st.mean_psnr << " dB";
      if (st.mean_shift_jpeg75)
        totals << ", mean latent shift after JPEG q75 " << *st.mean_shift_jpeg75;
      if (st.mean_shift_jpeg75 && st.mean_floor_jpeg75)
        totals << " (" << floor_multiple(*st.mean_shift_jpeg75, *st.mean_floor_jpeg75)
               << "x what noise as visible keeps)";
      std::cout << totals.str() << "\n";
    }
  }
  if (n.pending || n.running) return kFailure;
  return n.failed ? kPartial : kOk;
}

}  // namespace

void add_batch_command(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<BatchArgs>();
  auto* cmd = app.add_subcommand("batch", "Protect a whole folder or list of images, resumably");
  cmd->add_option("SOURCE", args->source,
                  "a folder of images, or a text file listing one path a line");
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
      "  cloak batch status out/                            where every shard stands\n"
      "Exit status: 0 all done, 3 some files failed (each reported), 130 interrupted.");
  auto folder = std::make_shared<fs::path>();
  auto* status = cmd->add_subcommand(
      "status", "Where a batch stands, over all its shards: done, failed, running, pending");
  status->add_option("OUT", *folder, "the batch's output folder")->required();
  status->footer(
      "Reads every shard's manifest in OUT and changes none. --json (before or after) for "
      "scripts.\n"
      "Exit status: 0 all done, 1 some still pending or running, 3 all tried and some failed.");
  cmd->callback([&ctx, args, status, folder] {
    if (status->parsed()) {
      ctx.run = [&ctx, folder] { return run_status(ctx, *folder); };
      return;
    }
    if (args->source.empty())
      throw CLI::RequiredError("SOURCE (a folder or a list of images; or: cloak batch status OUT)");
    ctx.run = [&ctx, args] { return run_batch(ctx, *args); };
  });
}

}  // namespace cloak::cli

// cloak batch DIR|LIST : a whole portfolio, resumable, shardable across a cluster.
#include <iostream>
#include <sstream>

#include "cli/common.h"
#include "cloak/core/error.h"
#include "cloak/io/file_io.h"
#include "cloak/pipeline/batch_manifest.h"
#include "cloak/pipeline/batch_shard.h"
#include "cloak/pipeline/batch_sources.h"
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

// Every input of the batch with its output inside `outdir`, keeping the relative structure, and
// its key (batch_sources.h).
std::vector<PlannedFile> plan_batch(const BatchSources& sources, const fs::path& outdir,
                                    const std::string& format, std::vector<std::string>& keys) {
  std::vector<PlannedFile> plan;
  const fs::path cwd = fs::current_path();
  for (const auto& in : list_inputs(sources, outdir)) {
    keys.push_back(in.key);
    // Messages name an input below the working folder as the user would type it.
    const fs::path shown = is_inside(in.file, cwd) ? in.file.lexically_relative(cwd) : in.file;
    plan.push_back({shown, with_format(outdir / in.relative, format),
                    in.error.empty() ? "" : shown.string() + ": " + in.error});
  }
  mark_collisions(plan);
  return plan;
}

// The batch `wanted` checked against those the manifests in `outdir` record: the same batch
// continues (taking the base its first run chose); another is refused, or with `overwrite` its
// manifests are removed (once no live process holds them) so that this run starts it afresh.
void check_batch(const fs::path& outdir, nlohmann::json& wanted, bool overwrite, bool dry_run,
                 BatchSources& sources) {
  std::vector<fs::path> replaced;
  for (const auto& f : find_manifests(outdir)) {
    nlohmann::json m;
    try {
      m = BatchManifest::read(f.file);
    } catch (const Error&) {
      if (!overwrite) throw;
      replaced.push_back(f.file);
      continue;
    }
    if (!m.contains("batch")) continue;  // an older cloak's: this run records its batch
    const std::string why = batch_difference(m["batch"], wanted);
    if (why.empty()) {
      sources.base = BatchSources::from_json(m["batch"]["sources"]).base;
      wanted["sources"] = sources.to_json();
    } else if (!overwrite) {
      throw Error(ErrorKind::Usage, printable(outdir.string()) + ": holds another batch: " + why +
                                        ". Choose a new output folder, or pass --overwrite to "
                                        "redo it with this run's");
    } else {
      replaced.push_back(f.file);
    }
  }
  for (const auto& file : dry_run ? std::vector<fs::path>() : replaced) {
    const BatchLock lock(file.string() + ".lock");
    fs::remove(file);
    fs::remove(file.string() + ".journal");
  }
}

// Throws cloak::Error (Output) when `out`'s folder, through a link, lies outside `outdir`.
void refuse_outside(const fs::path& out, const fs::path& outdir) {
  std::error_code ec;
  if (!is_inside(fs::weakly_canonical(out.parent_path(), ec), fs::weakly_canonical(outdir, ec)))
    throw Error(ErrorKind::Output, out.parent_path().string() +
                                       ": leads outside the output folder through a link; Cloak "
                                       "writes nothing outside it (remove the link)");
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
  settings["format"] = a.options.format;
  BatchSources sources = BatchSources::of(a.source, a.recursive);
  nlohmann::json batch = {
      {"sources", sources.to_json()}, {"shards", shard.count}, {"settings", settings}};
  if (fs::is_directory(outdir, ec))
    check_batch(outdir, batch, job.overwrite, a.options.dry_run, sources);
  std::vector<std::string> all_keys;
  const auto all = plan_batch(sources, outdir, a.options.format, all_keys);
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
    for (const auto& f : files)
      std::cout << printable(f.in.string()) << " -> " << printable(f.out.string()) << "\n";
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
  manifest.set_plan(batch, shard.name(), files.size(), all.size());
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
      // The manifest's batch has this run's settings; an older cloak's entry carries its own.
      const bool same_job = e.value("input_sha256", "") == in_sha &&
                            (!e.contains("settings") || e["settings"] == settings);
      // A finished output, or one whose writing was cut off after it landed: keep it.
      if (same_job && !out_sha.empty() &&
          ((e.value("status", "") == "done" && out_sha == e.value("output_sha256", "")) ||
           (e.value("status", "") == "writing" && out_sha == e.value("pending_sha256", "")))) {
        if (e["status"] == "writing") {
          e["status"] = "done";
          e["output_sha256"] = out_sha;
          e.erase("pending_sha256");
          manifest.save_entry(keys[i]);
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
      refuse_outside(out, outdir);
      e["status"] = "started";
      e["input_sha256"] = in_sha;
      e.erase("settings");
      e.erase("error");
      manifest.save_entry(keys[i]);
      ProgressBar bar(
          ctx, "[" + std::to_string(i + 1) + "/" + std::to_string(files.size()) + "] " + keys[i]);
      FileResult r = protect_to_bytes(encoders, in, out, job, std::ref(bar));
      e["status"] = "writing";
      e["output"] = printable(out.lexically_relative(outdir).generic_string());
      e["pending_sha256"] = sha256_hex(r.encoded);
      manifest.save_entry(keys[i]);
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
      manifest.save_entry(keys[i]);
      ++done;
      print_result(ctx, in, out, job, r);
    } catch (const std::exception& err) {
      const auto* cloak_err = dynamic_cast<const Error*>(&err);
      if (cloak_err && cloak_err->kind() == ErrorKind::Cancelled) break;
      if (stops_the_run(err)) throw;
      e["status"] = "failed";
      e["error"] = file_error(err, in);
      e.erase("pending_sha256");
      manifest.save_entry(keys[i]);
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

// cloak batch status OUT: exit 0 when every image of the batch as it stands now is done, 1 while
// some are pending or running, 3 when all have been tried and some failed, 6 when the folder or a
// manifest cannot be read (the other shards are still shown).
int run_status(const Context& ctx, const fs::path& folder) {
  BatchStatus st;
  try {
    st = read_batch_status(folder);
  } catch (const Error& e) {
    std::cerr << "cloak: " << printable(e.what()) << "\n";
    return kUnreadable;
  }
  const ImageCounts& n = st.images;
  if (ctx.json) {
    std::cout << to_json(st).dump() << std::endl;
  } else {
    std::cout << printable(folder.string()) << ": " << n.done + n.failed + n.running + n.pending
              << " images in " << st.shards.size() << " shard" << (st.shards.size() > 1 ? "s" : "")
              << ": " << counts_text(n) << "\n";
    for (const auto& s : st.shards) {
      std::cout << "  shard " << s.shard << ": ";
      if (s.damaged)
        std::cout << "its manifest cannot be read (below)\n";
      else if (!s.started)
        std::cout << "not started" << (s.images.pending ? ", " : "")
                  << (s.images.pending ? counts_text(s.images) : "") << "\n";
      else
        std::cout << (s.running_on ? "running, " + s.running_on->describe() + ": " : "")
                  << counts_text(s.images)
                  << (s.interrupted ? "; interrupted, run it again with --resume" : "") << "\n";
    }
    const auto list = [](const char* title, const std::vector<std::string>& items) {
      if (!items.empty()) std::cout << title << "\n";
      for (const auto& item : items) std::cout << "  " << item << "\n";
    };
    std::vector<std::string> failed, renamed;
    for (const auto& f : st.failed) failed.push_back(f.error);
    for (const auto& [was, now] : st.renamed) renamed.push_back(was + " -> " + now);
    list("failed:", failed);
    list("new since their shard ran (pending):", st.added);
    list("gone from the sources (not counted):", st.missing);
    list("renamed (pending under the new name):", renamed);
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
  for (const auto& why : st.unreadable) std::cerr << "cloak: " << why << "\n";
  if (!st.unreadable.empty()) return kUnreadable;
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
      "Exit status: 0 all done, 3 some files failed (each reported), 5 the disk is full, 130 "
      "interrupted.");
  auto folder = std::make_shared<fs::path>();
  auto* status = cmd->add_subcommand(
      "status", "Where a batch stands, over all its shards: done, failed, running, pending");
  status->add_option("OUT", *folder, "the batch's output folder");
  status->footer(
      "Reads every shard's manifest in OUT and changes none. --json (before or after) for "
      "scripts.\n"
      "Exit status: 0 every image of the batch as it stands now is done, 1 some still pending or "
      "running, 3 all tried and some failed, 6 the folder or a manifest cannot be read.");
  cmd->callback([&ctx, args, status, folder] {
    if (status->parsed()) {
      std::error_code ec;
      if (folder->empty() && fs::is_directory("status", ec)) {
        ctx.run = []() -> int {
          throw Error(ErrorKind::Usage,
                      "status: is both a folder here and the status command; to protect the "
                      "folder, write it as ./status");
        };
        return;
      }
      if (folder->empty()) throw CLI::RequiredError("OUT (the batch's output folder)");
      ctx.run = [&ctx, folder] { return run_status(ctx, *folder); };
      return;
    }
    if (args->source.empty())
      throw CLI::RequiredError("SOURCE (a folder or a list of images; or: cloak batch status OUT)");
    ctx.run = [&ctx, args] { return run_batch(ctx, *args); };
  });
}

}  // namespace cloak::cli

#include "cli/common.h"

#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "cloak/core/error.h"
#include "cloak/engine/decoys.h"
#include "cloak/io/file_io.h"

namespace cloak::cli {

namespace fs = std::filesystem;

std::atomic<bool> g_interrupted{false};

void install_signal_handlers() {
  auto handler = [](int) { g_interrupted = true; };
  std::signal(SIGINT, handler);
  std::signal(SIGTERM, handler);
}

namespace {

// Lets `option` take the names of a settings table (cloak/engine/settings.h), giving it the value
// (each table lists its enum in declaration order); help and errors list the names.
template <class Choice, std::size_t N>
CLI::Option* one_of(CLI::Option* option, const Choice (&table)[N]) {
  const std::string list = names_of(table);
  const auto to_value = [&table, list](std::string& input) -> std::string {
    const auto value = from_name(table, input);
    if (!value) return "'" + input + "' is not one of " + list;
    input = std::to_string(static_cast<int>(*value));
    return "";
  };
  return option->transform(CLI::Validator(to_value, "", "choice"))->option_text(list);
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

void add_protect_options(CLI::App& cmd, ProtectOptions& o) {
  auto& s = o.job.settings;
  std::string modes, strengths;
  for (const auto& m : kModes) modes += describe(m.value) + "; ";
  for (const auto& st : kStrengths)
    strengths += (strengths.empty() ? "" : ", ") + describe(st.value);
  one_of(cmd.add_option("--mode", s.mode, modes + "default " + to_string(s.mode)), kModes);
  one_of(cmd.add_option("--strength", s.strength, strengths + "; default " + to_string(s.strength)),
         kStrengths);
  one_of(
      cmd.add_option("--preset", s.preset, "time spent optimising; default " + to_string(s.preset)),
      kPresets);
  std::string places;
  for (const auto& a : kInvisibleAt) places += describe(a.value) + "; ";
  one_of(cmd.add_option("--invisible-at", s.invisible_at,
                        "where the strength's promise holds: " + places + "default " +
                            to_string(s.invisible_at)),
         kInvisibleAt);
  cmd.add_option("--target", o.target,
                 "poison: anchor image of another concept; cloak: decoy style image")
      ->check(CLI::ExistingFile);
  cmd.add_option("--decoy", s.decoy,
                 "cloak: built-in decoy style (" + join(decoy_names()) + "); default " + s.decoy)
      ->check(CLI::IsMember(decoy_names()));
  cmd.add_option("--seed", s.seed,
                 "random seed: same input, settings and seed give the same bytes");
  cmd.add_option("--format", o.format,
                 "output format: " + join(output_formats()) + " (same: as the input)")
      ->check(CLI::IsMember(output_formats()));
  cmd.add_option("--quality", o.job.jpeg_quality, "JPEG quality of the output")
      ->check(CLI::Range(1, 100));
  cmd.add_option("--max-side", o.job.read.max_side,
                 "refuse images larger than this many pixels a side");
  cmd.add_option("--max-megapixels", o.max_megapixels,
                 "refuse larger images (memory grows about 0.16 GiB a megapixel)")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--surrogates", o.surrogates,
                 "encoders to optimise against (default: all installed)")
      ->delimiter(',');
  cmd.add_flag("--overwrite", o.job.overwrite, "replace an existing output");
  cmd.add_flag("--dry-run", o.dry_run, "only list what would be written");
  cmd.add_flag("--no-optout-tag", o.no_optout_tag, "do not mark the output as not for AI training");
}

FileJob make_job(const ProtectOptions& o, const Context& ctx) {
  FileJob job = o.job;
  auto& s = job.settings;
  s.device = device_of(ctx);
  if (s.mode == Mode::Poison && !o.target)
    throw Error(ErrorKind::Usage, "--mode poison needs --target IMG (an image of another concept)");
  if (o.target) s.target = target_tensor(read_image(*o.target));
  job.optout_tag = !o.no_optout_tag;
  job.read.max_pixels = std::llround(o.max_megapixels * 1e6);
  // The one-line summary needs no more; --json and --verbose print the full report.
  job.report = ctx.json || ctx.verbose ? ReportDetail::Full : ReportDetail::Summary;
  return job;
}

fs::path with_format(const fs::path& path, const std::string& format) {
  if (format == "same") return path;
  fs::path out = path;
  return out.replace_extension("." + format);
}

void mark_collisions(std::vector<PlannedFile>& plan) {
  std::map<fs::path, const PlannedFile*> taken;
  for (auto& f : plan) {
    const auto [it, fresh] = taken.emplace(f.out.lexically_normal(), &f);
    if (!fresh && f.error.empty())
      f.error = f.in.string() + ": its output " + f.out.string() + " is also the output of " +
                it->second->in.string() + "; rename one of them";
  }
}

std::string file_error(const std::exception& e, const fs::path& file) {
  if (dynamic_cast<const Error*>(&e)) return printable(e.what());
  if (dynamic_cast<const std::bad_alloc*>(&e)) return printable(file.string()) + ": out of memory";
  const std::string what = e.what();
  return printable(file.string() + ": " + what.substr(0, what.find('\n')));
}

bool stops_the_run(const std::exception& e) {
  const auto* err = dynamic_cast<const Error*>(&e);
  return err && (err->kind() == ErrorKind::Cancelled || err->kind() == ErrorKind::Model ||
                 err->kind() == ErrorKind::Usage || err->kind() == ErrorKind::NoSpace);
}

torch::Device device_of(const Context& ctx) {
  if (ctx.device == "cuda") {
    if (!torch::cuda::is_available())
      throw Error(ErrorKind::Usage, "--device cuda: this libtorch has no CUDA device available");
    return torch::kCUDA;
  }
  return torch::kCPU;
}

SurrogateOptions surrogate_options(const Context& ctx, const std::vector<std::string>& names) {
  SurrogateOptions o;
  o.models_dir = ctx.models_dir;
  o.names = names;
  o.threads = ctx.threads;
  o.precision = ctx.precision == "fp32" ? Precision::Float32 : Precision::Auto;
  o.device = device_of(ctx);
  if (!ctx.quiet)
    o.warn = [](const std::string& w) { std::cerr << "cloak: warning: " << w << "\n"; };
  return o;
}

void add_pair_options(CLI::App& cmd, PairArgs& a) {
  cmd.add_option("ORIGINAL", a.original, "the unprotected image")->required();
  cmd.add_option("PROTECTED", a.protected_, "the protected copy")->required();
  one_of(cmd.add_option("--strength", a.strength,
                        "whose threshold to check against; default " + to_string(a.strength)),
         kStrengths);
  cmd.add_option("--surrogates", a.surrogates, "encoders to measure with (default: all installed)")
      ->delimiter(',');
}

std::pair<Image, Image> read_pair(const fs::path& original, const fs::path& protected_) {
  Image a = read_image(original), b = read_image(protected_);
  if (a.width != b.width || a.height != b.height || a.color_channels != b.color_channels)
    throw Error(ErrorKind::Input, protected_.string() + ": not the same size and colour type as " +
                                      original.string());
  return {std::move(a), std::move(b)};
}

namespace {
double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

ProgressBar::ProgressBar(const Context& ctx, std::string label)
    : bar_(!ctx.quiet && !ctx.json && !ctx.progress_json && isatty(STDERR_FILENO)),
      lines_(ctx.progress_json),
      label_(std::move(label)),
      start_(now_seconds()) {}

ProgressBar::~ProgressBar() {
  if (bar_ && last_percent_ >= 0) std::fprintf(stderr, "\r\033[K");
}

bool ProgressBar::operator()(double fraction) {
  const int percent = static_cast<int>(fraction * 100);
  if ((bar_ || lines_) && percent != last_percent_) {
    last_percent_ = percent;
    const double elapsed = now_seconds() - start_;
    const int eta = fraction > 0 ? static_cast<int>(elapsed * (1 - fraction) / fraction + 0.5) : 0;
    if (lines_) {
      const nlohmann::json line = {{"file", label_}, {"fraction", fraction}, {"eta_s", eta}};
      std::fprintf(stderr, "%s\n",
                   line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else {
      std::string bar(static_cast<std::size_t>(percent / 5), '#');
      bar.resize(20, '-');
      std::fprintf(stderr, "\r\033[K%s [%s] %3d%% ETA %d:%02d", label_.c_str(), bar.c_str(),
                   percent, eta / 60, eta % 60);
    }
    std::fflush(stderr);
  }
  return !g_interrupted;
}

namespace {

std::string summary_line(const fs::path& out, const FileResult& r,
                         const ProtectSettings& settings) {
  const Strength strength = settings.strength;
  std::ostringstream s;
  s.precision(3);
  s << printable(out.string()) << "  " << std::fixed;
  s.precision(1);
  s << r.run.seconds << " s  Butteraugli " << std::setprecision(2) << r.run.visibility.max << " / "
    << r.run.visibility.norm3 << " (JPEG q" << strength_budget(strength).jpeg_quality << ": "
    << r.run.goal.max << " / " << r.run.goal.norm3;
  if (judged_at_training_size(r.original.size(2), r.original.size(3), settings))
    s << "; the promise is judged at " << r.report.measured_width << "x"
      << r.report.measured_height;
  s << ")  PSNR " << std::setprecision(1) << r.report.psnr << " dB  SSIM ";
  s.precision(3);
  s << r.report.ssim << "  latent shift after JPEG q75";
  s.precision(2);
  for (const auto& e : r.report.surrogates)
    s << "  " << e.name.substr(0, e.name.find('_')) << " " << e.shift_jpeg75;
  const Verdict v = judge(r.report, strength);
  s << "  = " << v.multiple
    << "x noise as visible: " << (v.protected_ ? "protected" : "NOT protected");
  // Cloak and poison, in a full report: the share of the way to the target after JPEG q75, beside
  // the noise copy's. Not as a multiple: noise's share is often near 0 (or below), where any
  // multiple would be huge however little Cloak's moved (bench/RESULTS.md, "Cloak and poison").
  if (!r.report.surrogates.empty() && r.report.surrogates[0].toward_jpeg75) {
    s << "  toward the target after JPEG q75";
    s.precision(3);
    for (const auto& e : r.report.surrogates)
      s << "  " << e.name.substr(0, e.name.find('_')) << " " << *e.toward_jpeg75
        << " of the way (noise as visible " << *e.floor_toward_jpeg75 << ")";
  }
  return s.str();
}

}  // namespace

nlohmann::json print_result(const Context& ctx, const fs::path& in, const fs::path& out,
                            const FileJob& job, const FileResult& r, const nlohmann::json& audit) {
  auto j = to_json(r.report);
  j["verdict"] = to_json(judge(r.report, job.settings.strength), job.settings.strength);
  if (!audit.is_null()) j["audit"] = audit;
  j["input"] = printable(in.string());
  j["output"] = printable(out.string());
  j["settings"] = to_json(job.settings);
  j["steps"] = r.run.steps;
  j["seconds"] = r.run.seconds;
  if (ctx.json) {
    std::cout << j.dump() << std::endl;
  } else if (!ctx.quiet) {
    std::cout << summary_line(out, r, job.settings) << std::endl;
    if (ctx.verbose) std::cerr << j.dump(2) << std::endl;
  }
  return j;
}

}  // namespace cloak::cli

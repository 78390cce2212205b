#include "cli/common.h"

#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>

#include "cloak/error.h"
#include "cloak/precision.h"

namespace cloak::cli {

namespace fs = std::filesystem;

std::atomic<bool> g_interrupted{false};

void install_signal_handlers() {
  auto handler = [](int) { g_interrupted = true; };
  std::signal(SIGINT, handler);
  std::signal(SIGTERM, handler);
}

void add_protect_options(CLI::App& cmd, ProtectOptions& o) {
  cmd.add_option("--mode", o.mode,
                 "guard: break what editors and trainers see (default); "
                 "cloak: shift the style toward a decoy; "
                 "poison: shift the concept toward --target")
      ->check(CLI::IsMember({"guard", "cloak", "poison"}));
  cmd.add_option("--strength", o.strength,
                 "low (PSNR >= 40 dB), medium (>= 36 dB), high (>= 32 dB)")
      ->check(CLI::IsMember({"low", "medium", "high"}));
  cmd.add_option("--preset", o.preset, "fast, balanced or max: time spent optimising")
      ->check(CLI::IsMember({"fast", "balanced", "max"}));
  cmd.add_option("--target", o.target,
                 "poison: anchor image of another concept; cloak: decoy style image")
      ->check(CLI::ExistingFile);
  cmd.add_option("--decoy", o.decoy, "cloak: built-in decoy style (cubist, pointillist, woodcut)");
  cmd.add_option("--seed", o.seed,
                 "random seed: same input, settings and seed give the same bytes");
  cmd.add_option("--format", o.format, "output format: png, jpg, webp or same (as the input)")
      ->check(CLI::IsMember({"png", "jpg", "webp", "same"}));
  cmd.add_option("--quality", o.quality, "JPEG quality of the output")->check(CLI::Range(1, 100));
  cmd.add_option("--max-side", o.read.max_side,
                 "refuse images larger than this many pixels a side");
  cmd.add_option("--max-megapixels", o.max_megapixels,
                 "refuse larger images (memory grows about 0.16 GiB a megapixel)")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--surrogates", o.surrogates,
                 "encoders to optimise against (default: all installed)")
      ->delimiter(',');
  cmd.add_flag("--overwrite", o.overwrite, "replace an existing output");
  cmd.add_flag("--dry-run", o.dry_run, "only list what would be written");
  cmd.add_flag("--no-optout-tag", o.no_optout_tag, "do not mark the output as not for AI training");
}

FileJob make_job(const ProtectOptions& o, const Context& ctx) {
  FileJob job;
  auto& s = job.settings;
  s.mode = o.mode == "cloak" ? Mode::Cloak : o.mode == "poison" ? Mode::Poison : Mode::Guard;
  s.strength = strength_from_name(o.strength);
  s.preset = o.preset == "fast" ? Preset::Fast : o.preset == "max" ? Preset::Max : Preset::Balanced;
  s.seed = o.seed;
  s.decoy = o.decoy;
  s.device = device_of(ctx);
  if (s.mode == Mode::Poison && !o.target)
    throw Error(ErrorKind::Usage, "--mode poison needs --target IMG (an image of another concept)");
  if (o.target) {
    Image t = read_image(*o.target);
    auto x = image_tensor(t);
    s.target = x.size(1) == 1 ? x.expand({1, 3, x.size(2), x.size(3)}).contiguous() : x;
  }
  job.jpeg_quality = o.quality;
  job.overwrite = o.overwrite;
  job.optout_tag = !o.no_optout_tag;
  job.read = o.read;
  job.read.max_pixels = std::llround(o.max_megapixels * 1e6);
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
  if (dynamic_cast<const Error*>(&e)) return e.what();
  if (dynamic_cast<const std::bad_alloc*>(&e)) return file.string() + ": out of memory";
  const std::string what = e.what();
  return file.string() + ": " + what.substr(0, what.find('\n'));
}

bool stops_the_run(const std::exception& e) {
  const auto* err = dynamic_cast<const Error*>(&e);
  return err && (err->kind() == ErrorKind::Cancelled || err->kind() == ErrorKind::Model ||
                 err->kind() == ErrorKind::Usage);
}

torch::Device device_of(const Context& ctx) {
  if (ctx.device == "cuda") {
    if (!torch::cuda::is_available())
      throw Error(ErrorKind::Usage, "--device cuda: this libtorch has no CUDA device available");
    return torch::kCUDA;
  }
  return torch::kCPU;
}

std::vector<LoadedModel> load_encoders(const Context& ctx, const std::vector<std::string>& names) {
  if (ctx.threads > 0)
    at::set_num_threads(ctx.threads);
  else
    at::set_num_threads(static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN))));
  set_precision(ctx.precision == "fp32" ? Precision::Float32 : Precision::Auto);
  const auto device = device_of(ctx);
  const auto search = model_search_path(ctx.models_dir);
  std::vector<LoadedModel> out;
  for (const auto& spec : model_specs()) {
    if (spec.role != ModelRole::Encoder) continue;
    const bool named = std::find(names.begin(), names.end(), spec.name) != names.end();
    if (!names.empty() && !named) continue;
    if (names.empty() && !find_model(spec, search)) {
      if (!ctx.quiet)
        std::cerr << "cloak: warning: " << spec.name
                  << " is not installed; run 'cloak models fetch'\n";
      continue;
    }
    out.push_back(load_model(spec, search));
    out.back().net->to(device);
  }
  for (const auto& n : names) model_spec(n);                   // unknown names are a usage error
  if (out.empty()) load_model(model_specs().front(), search);  // throws: says where it looked
  return out;
}

Autoencoder load_autoencoder(const Context& ctx) {
  const auto search = model_search_path(ctx.models_dir);
  Autoencoder ae{load_model(model_spec("taef2_encoder"), search),
                 load_model(model_spec("taef2_decoder"), search)};
  ae.encoder.net->to(device_of(ctx));
  ae.decoder.net->to(device_of(ctx));
  return ae;
}

Strength strength_from_name(const std::string& name) {
  return name == "low" ? Strength::Low : name == "high" ? Strength::High : Strength::Medium;
}

void add_pair_options(CLI::App& cmd, PairArgs& a) {
  cmd.add_option("ORIGINAL", a.original, "the unprotected image")->required();
  cmd.add_option("PROTECTED", a.protected_, "the protected copy")->required();
  cmd.add_option("--strength", a.strength, "whose threshold to check against")
      ->check(CLI::IsMember({"low", "medium", "high"}));
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
    : enabled_(!ctx.quiet && !ctx.json && isatty(STDERR_FILENO)),
      label_(std::move(label)),
      start_(now_seconds()) {}

ProgressBar::~ProgressBar() {
  if (enabled_ && last_percent_ >= 0) std::fprintf(stderr, "\r\033[K");
}

bool ProgressBar::operator()(double fraction) {
  const int percent = static_cast<int>(fraction * 100);
  if (enabled_ && percent != last_percent_) {
    last_percent_ = percent;
    const double elapsed = now_seconds() - start_;
    const int eta = fraction > 0 ? static_cast<int>(elapsed * (1 - fraction) / fraction + 0.5) : 0;
    std::string bar(static_cast<std::size_t>(percent / 5), '#');
    bar.resize(20, '-');
    std::fprintf(stderr, "\r\033[K%s [%s] %3d%% ETA %d:%02d", label_.c_str(), bar.c_str(), percent,
                 eta / 60, eta % 60);
    std::fflush(stderr);
  }
  return !g_interrupted;
}

namespace {

std::string summary_line(const fs::path& out, const FileResult& r) {
  std::ostringstream s;
  s.precision(3);
  s << out.string() << "  " << std::fixed;
  s.precision(1);
  s << r.run.seconds << " s  PSNR " << r.report.psnr << " dB  SSIM ";
  s.precision(3);
  s << r.report.ssim << "  latent shift";
  for (const auto& e : r.report.surrogates) {
    s.precision(2);
    s << "  " << e.name.substr(0, e.name.find('_')) << " " << e.shift << " (JPEG " << e.shift_jpeg75
      << ")";
  }
  return s.str();
}

}  // namespace

nlohmann::json print_result(const Context& ctx, const fs::path& in, const fs::path& out,
                            const FileJob& job, const FileResult& r, const nlohmann::json& audit) {
  auto j = to_json(r.report);
  if (!audit.is_null()) j["audit"] = audit;
  j["input"] = in.string();
  j["output"] = out.string();
  j["settings"] = to_json(job.settings);
  j["steps"] = r.run.steps;
  j["seconds"] = r.run.seconds;
  if (ctx.json) {
    std::cout << j.dump() << std::endl;
  } else if (!ctx.quiet) {
    std::cout << summary_line(out, r) << std::endl;
    if (ctx.verbose) std::cerr << j.dump(2) << std::endl;
  }
  return j;
}

}  // namespace cloak::cli

// What the subcommands share: options, exit codes, progress display, Ctrl-C, surrogate loading.
#pragma once

#include <CLI/CLI.hpp>

#include <atomic>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cloak/engine/protect.h"
#include "cloak/pipeline/protect_file.h"
#include "cloak/pipeline/surrogates.h"
#include "cloak/report/audit.h"

namespace cloak::cli {

enum ExitCode {
  kOk = 0,
  kFailure = 1,       // an input, output or model error
  kUsage = 2,         // the command line is wrong
  kPartial = 3,       // a batch finished with some files failed
  kNotProtected = 4,  // verify: protection below the strength's threshold
  kNoSpace = 5,       // the disk or the quota is full: the run stopped
  kUnreadable = 6,    // batch status: the folder or a manifest cannot be read
  kCancelled = 130,   // Ctrl-C
};

struct Context {
  std::optional<std::filesystem::path> models_dir;
  int threads = 0;
  std::string device = "cpu";
  std::string precision = "auto";
  bool quiet = false, verbose = false, json = false;
  bool progress_json = false;  // progress as JSON lines on stderr, for plug-ins
  std::function<int()> run;    // set by the chosen subcommand
};

// Options every protecting subcommand takes, and the job they describe. Their defaults are the
// library's (ProtectSettings, FileJob, ReadOptions).
struct ProtectOptions {
  FileJob job;
  std::string format = "same";
  std::optional<std::filesystem::path> target;
  double max_megapixels = static_cast<double>(ReadOptions{}.max_pixels) / 1e6;
  bool dry_run = false, no_optout_tag = false;
  std::vector<std::string> surrogates;
};
void add_protect_options(CLI::App& cmd, ProtectOptions& o);
FileJob make_job(const ProtectOptions& o, const Context& ctx);
// The output name for `in` with the chosen format: its own extension for "same".
std::filesystem::path with_format(const std::filesystem::path& path, const std::string& format);

// A run's plan: each input and the file it becomes.
struct PlannedFile {
  std::filesystem::path in, out;
  std::string error;  // set when this file cannot be protected as planned
};
// Marks every file whose output an earlier one in the plan already takes.
void mark_collisions(std::vector<PlannedFile>& plan);

// A file's error in one line: Cloak's own messages name the file already; others (libtorch,
// OpenCV, out of memory) are cut to their first line and get the file's name.
std::string file_error(const std::exception& e, const std::filesystem::path& file);
// Whether an error stops the whole run rather than failing one file.
bool stops_the_run(const std::exception& e);

// What --models, --threads, --device and --precision ask of the surrogates (all that are installed,
// or those named); missing ones are warned about unless quiet.
SurrogateOptions surrogate_options(const Context& ctx, const std::vector<std::string>& names = {});
torch::Device device_of(const Context& ctx);

// What the measuring subcommands (verify, audit) take: an original, its protected copy, whose
// threshold to judge by and which encoders to measure with.
struct PairArgs {
  std::filesystem::path original, protected_;
  Strength strength = ProtectSettings{}.strength;
  std::vector<std::string> surrogates;
};
void add_pair_options(CLI::App& cmd, PairArgs& a);
// An original and its protected copy, refused unless they match in size and colour type.
std::pair<Image, Image> read_pair(const std::filesystem::path& original,
                                  const std::filesystem::path& protected_);
// The audit as a table on stdout, with the attacks that removed the protection named plainly.
void print_audit(const AuditReport& r, Strength strength);

// A progress bar with ETA on stderr when it is a terminal (and not --quiet/--json); with
// --progress-json, a JSON line a percent on stderr for whatever runs cloak:
// {"file":"a.png","fraction":0.42,"eta_s":12}. Nothing otherwise.
class ProgressBar {
 public:
  ProgressBar(const Context& ctx, std::string label);
  ~ProgressBar();
  // The engine's callback: draws, and returns false once Ctrl-C was pressed.
  bool operator()(double fraction);

 private:
  bool bar_, lines_;
  std::string label_;
  double start_;
  int last_percent_ = -1;
};

// Set by SIGINT/SIGTERM; long work checks it and stops cleanly.
extern std::atomic<bool> g_interrupted;
void install_signal_handlers();

// Reports a protected image: a JSON line on stdout with --json, else one human line (and the full
// report on stderr with --verbose); nothing with --quiet. Returns the JSON report, which holds
// `audit` when that is not null.
nlohmann::json print_result(const Context& ctx, const std::filesystem::path& in,
                            const std::filesystem::path& out, const FileJob& job,
                            const FileResult& r, const nlohmann::json& audit = nullptr);

void add_protect_command(CLI::App& app, Context& ctx);
void add_batch_command(CLI::App& app, Context& ctx);
void add_preview_command(CLI::App& app, Context& ctx);
void add_verify_command(CLI::App& app, Context& ctx);
void add_audit_command(CLI::App& app, Context& ctx);
void add_models_command(CLI::App& app, Context& ctx);
void add_serve_command(CLI::App& app, Context& ctx);
void add_settings_command(CLI::App& app, Context& ctx);

}  // namespace cloak::cli

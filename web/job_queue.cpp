#include "web/job_queue.h"

#include <torch/torch.h>

#include <algorithm>
#include <set>

#include "cloak/core/error.h"
#include "cloak/io/file_io.h"
#include "cloak/pipeline/preview.h"
#include "web/zip_archive.h"

namespace cloak::web {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// What the "what the AI sees" views are rebuilt at: enough to judge, cheap to compute.
constexpr int kAiViewSide = 768;

enum class State { Queued, Running, Done, Failed, Cancelled };

const char* name_of(State s) {
  switch (s) {
    case State::Queued:
      return "queued";
    case State::Running:
      return "running";
    case State::Done:
      return "done";
    case State::Failed:
      return "failed";
    case State::Cancelled:
      return "cancelled";
  }
  return "?";
}

std::vector<std::uint8_t> png_of(const Image& image) {
  Image plain = image;
  plain.metadata = {};
  return encode_image(plain, "view.png", kDefaultJpegQuality);
}

// The MIME type of a file in `format` (a result keeps its input's format).
const char* content_type_of(ImageFormat format) {
  switch (format) {
    case ImageFormat::Png:
      return "image/png";
    case ImageFormat::Jpeg:
      return "image/jpeg";
    case ImageFormat::Webp:
      return "image/webp";
    case ImageFormat::Tiff:
      return "image/tiff";
    case ImageFormat::Bmp:
      return "image/bmp";
  }
  return "application/octet-stream";
}

// How many numbered names ("name-2.png"...) a save tries before it gives up.
constexpr int kMaxNumbered = 1000;

// Writes `bytes` into `dir` as `name`, or as name-2, name-3... when that exists: never over a file.
// Returns the name written.
std::string write_unique(const fs::path& dir, const std::string& name,
                         const std::vector<std::uint8_t>& bytes) {
  for (int n = 1; n <= kMaxNumbered; ++n) {
    const std::string candidate = numbered_name(name, n);
    const fs::path file = dir / candidate;
    if (fs::exists(file)) continue;
    try {
      write_file_atomic(file, bytes, /*overwrite=*/false);
      return candidate;
    } catch (const Error&) {
      if (!fs::exists(file)) throw;  // lost a race to another writer: try the next name
    }
  }
  throw Error(ErrorKind::Output, (dir / name).string() + ": " + std::to_string(kMaxNumbered) +
                                     " files of that name are there already");
}

// Windows-1252's characters for the bytes 0x80-0x9F (what browsers take "Latin-1" to mean); its
// five unassigned bytes stay the C1 controls of the same number.
constexpr char16_t kWindows1252[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

void append_utf8(std::string& out, unsigned code) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xC0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
}

// `sent` as UTF-8: what is UTF-8 already is kept, any other byte is read as Windows-1252.
std::string as_utf8(const std::string& sent) {
  std::string out;
  for (std::size_t i = 0; i < sent.size();) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(sent[i + k]); };
    const unsigned char c = byte(0);
    const std::size_t len = c < 0x80                ? 1
                            : c >= 0xC2 && c < 0xE0 ? 2
                            : c >= 0xE0 && c < 0xF0 ? 3
                            : c >= 0xF0 && c < 0xF5 ? 4
                                                    : 0;
    bool ok = len > 0 && i + len <= sent.size();
    for (std::size_t k = 1; ok && k < len; ++k) ok = (byte(k) & 0xC0) == 0x80;
    // No overlong forms, UTF-16 surrogates or code points past U+10FFFF.
    if (ok && len == 3) ok = !(c == 0xE0 && byte(1) < 0xA0) && !(c == 0xED && byte(1) >= 0xA0);
    if (ok && len == 4) ok = !(c == 0xF0 && byte(1) < 0x90) && !(c == 0xF4 && byte(1) >= 0x90);
    if (ok) {
      out.append(sent, i, len);
      i += len;
    } else {
      append_utf8(out, c >= 0x80 && c < 0xA0 ? kWindows1252[c - 0x80] : c);
      ++i;
    }
  }
  return out;
}

// Whether UTF-8 `name` holds a control character: C0, DEL or C1 (U+0080-U+009F).
bool has_control(const std::string& name) {
  for (std::size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7F) return true;
    if (c == 0xC2 && i + 1 < name.size() && static_cast<unsigned char>(name[i + 1]) < 0xA0)
      return true;
  }
  return false;
}

// Frees `bytes` (clear() would keep the memory).
void release(std::vector<std::uint8_t>& bytes) {
  std::vector<std::uint8_t>().swap(bytes);
}

}  // namespace

struct JobQueue::Job {
  int id;
  JobRequest request;  // its bytes are freed once the job has run or is cancelled
  std::atomic<double> fraction{0};
  std::atomic<bool> cancel{false};
  // Guarded by the queue's mutex:
  State state = State::Queued;
  bool kept = false;  // past its last step: the result is kept, a cancel comes too late
  Clock::time_point started;
  std::string error, saved_as, save_error;
  nlohmann::json figures;
  std::map<std::string, Download> files;

  std::size_t upload_bytes() const { return request.bytes.size() + request.target_bytes.size(); }
};

std::string upload_name(const std::string& sent) {
  const std::string whole = as_utf8(sent);  // '/' and '\\' are never part of a longer character
  if (has_control(whole)) {
    std::string shown = whole;
    for (char& c : shown)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = '?';
    throw Error(ErrorKind::Usage, "'" + shown + "': a file name with control characters");
  }
  const std::string name = whole.substr(whole.find_last_of("/\\") + 1);
  if (name.empty() || name == "." || name == "..")
    throw Error(ErrorKind::Usage, "'" + whole + "' is not a file name");
  if (!format_from_extension(name))
    throw Error(ErrorKind::Usage, name + ": not an image name (.png, .jpg, .webp, .tif, .bmp)");
  if (name.size() <= kMaxNameBytes) return name;
  const std::string ext = fs::path(name).extension().string();
  std::size_t keep = kMaxNameBytes - ext.size();
  while (keep > 0 && (static_cast<unsigned char>(name[keep]) & 0xC0) == 0x80) --keep;
  return name.substr(0, keep) + ext;  // cut between characters, never inside one
}

std::string protected_name(const std::string& name) {
  const fs::path p(name);
  return p.stem().string() + "-cloaked" + p.extension().string();
}

std::string numbered_name(const std::string& name, int n) {
  if (n == 1) return name;
  const fs::path p(name);
  return p.stem().string() + "-" + std::to_string(n) + p.extension().string();
}

JobQueue::JobQueue(const std::vector<LoadedModel>& encoders, const Autoencoder& ae, int threads,
                   std::optional<fs::path> output_dir, QueueLimits limits)
    : encoders_(encoders),
      ae_(ae),
      threads_(threads),
      output_dir_(std::move(output_dir)),
      limits_(limits),
      worker_([this] { work(); }) {}

JobQueue::~JobQueue() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    for (auto& [id, job] : jobs_) job->cancel = true;
  }
  wake_.notify_all();
  worker_.join();
}

int JobQueue::add(JobRequest request) {
  auto job = std::make_shared<Job>();
  job->request = std::move(request);
  const std::size_t bytes = job->upload_bytes();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (queued_.size() >= limits_.files)
      throw QueueFull("the queue is full (" + std::to_string(limits_.files) +
                      " files waiting): try again when some are done");
    if (queued_bytes_ + bytes > limits_.bytes)
      throw QueueFull("the queue is full (" + std::to_string(limits_.bytes >> 20) +
                      " MiB of uploads waiting): try again when some are done");
    job->id = next_id_++;
    jobs_[job->id] = job;
    queued_.push_back(job);
    queued_bytes_ += bytes;
  }
  wake_.notify_all();
  return job->id;
}

void JobQueue::work() {
  at::set_num_threads(threads_);  // OpenMP's thread count is per calling thread
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queued_.empty(); });
      if (stopping_) return;
      job = queued_.front();
      queued_.pop_front();
      queued_bytes_ -= job->upload_bytes();
      job->state = State::Running;
      job->started = Clock::now();
    }
    run(*job);
  }
}

void JobQueue::run(Job& job) {
  const JobRequest& rq = job.request;
  const auto stop_if_cancelled = [&] {
    if (job.cancel) throw Error(ErrorKind::Cancelled, rq.name + ": cancelled");
  };
  try {
    const Image image = decode_image(rq.bytes, rq.name, rq.job.read);
    const std::string out_name = protected_name(rq.name);
    FileResult r;
    {
      FileJob file_job = rq.job;  // with its target, freed as soon as the run is over
      if (!rq.target_bytes.empty())
        file_job.settings.target =
            target_tensor(decode_image(rq.target_bytes, rq.target_name, rq.job.read));
      r = protect_image(encoders_, image, rq.name, out_name, file_job, [&job](double f) {
        job.fraction = f;
        return !job.cancel;
      });
    }
    stop_if_cancelled();
    std::map<std::string, Download> files;
    const Image protected_image = with_color(image, r.run.image);
    files["original.png"] = {png_of(image), "image/png", "original.png"};
    files["protected.png"] = {png_of(protected_image), "image/png", "protected.png"};
    {
      torch::NoGradGuard no_grad;
      files["visibility.png"] = {
          png_of(picture(visibility_heatmap(r.run.image, r.run.visibility.distmap))), "image/png",
          "visibility.png"};
      stop_if_cancelled();
      const auto x = preview_tensor(image, kAiViewSide);
      const auto p = preview_tensor(protected_image, kAiViewSide);
      files["ai-original.png"] = {png_of(picture(reconstruct(ae_, x))), "image/png",
                                  "ai-original.png"};
      files["ai-protected.png"] = {png_of(picture(reconstruct(ae_, p))), "image/png",
                                   "ai-protected.png"};
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_if_cancelled();
      job.kept = true;  // from here on the result is kept: a cancel is too late
    }
    std::string saved_as, save_error;
    if (output_dir_) {
      try {
        saved_as = write_unique(*output_dir_, out_name, r.encoded);
      } catch (const std::exception& e) {  // the result stays downloadable; the page says why
        const std::string what = e.what();
        save_error =
            "not saved in " + output_dir_->string() + ": " + what.substr(0, what.find('\n'));
      }
    }
    files["result"] = {std::move(r.encoded), content_type_of(image.format), out_name};
    nlohmann::json figures = to_json(r.report);
    figures["seconds"] = r.run.seconds;
    figures["verdict"] =
        to_json(judge(r.report, rq.job.settings.strength), rq.job.settings.strength);
    std::lock_guard<std::mutex> lock(mutex_);
    job.files = std::move(files);
    job.figures = std::move(figures);
    job.saved_as = std::move(saved_as);
    job.save_error = std::move(save_error);
    job.state = State::Done;
  } catch (const std::exception& e) {
    const auto* err = dynamic_cast<const Error*>(&e);
    const std::string what = e.what();
    std::lock_guard<std::mutex> lock(mutex_);
    job.state = err && err->kind() == ErrorKind::Cancelled ? State::Cancelled : State::Failed;
    job.error = err ? what : rq.name + ": " + what.substr(0, what.find('\n'));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  release(job.request.bytes);  // keep only what the page shows
  release(job.request.target_bytes);
}

std::optional<nlohmann::json> JobQueue::status(int id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::nullopt;
  const Job& job = *it->second;
  const double f = job.state == State::Done ? 1.0 : job.fraction.load();
  nlohmann::json j = {{"id", job.id},
                      {"name", job.request.name},
                      {"state", name_of(job.state)},
                      {"fraction", f},
                      {"error", job.error}};
  if (job.state == State::Running && f > 0) {
    const double elapsed = std::chrono::duration<double>(Clock::now() - job.started).count();
    j["eta_seconds"] = elapsed * (1 - f) / f;
  } else {
    j["eta_seconds"] = nullptr;
  }
  j["figures"] = job.figures.is_null() ? nlohmann::json::object() : job.figures;
  if (job.state == State::Done) {
    j["result_name"] = job.files.at("result").filename;
    if (!job.saved_as.empty()) j["saved_as"] = job.saved_as;
    if (!job.save_error.empty()) j["save_error"] = job.save_error;
  }
  return j;
}

nlohmann::json JobQueue::list() const {
  std::vector<int> ids;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [id, job] : jobs_) ids.push_back(id);
  }
  nlohmann::json out = nlohmann::json::array();
  for (int id : ids)
    if (auto s = status(id)) out.push_back(*s);
  return out;
}

CancelResult JobQueue::cancel(int id) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = jobs_.find(id);
  if (it == jobs_.end()) return CancelResult::Unknown;
  Job& job = *it->second;
  switch (job.state) {
    case State::Queued:
      job.cancel = true;
      job.state = State::Cancelled;
      queued_.erase(std::remove(queued_.begin(), queued_.end(), it->second), queued_.end());
      queued_bytes_ -= job.upload_bytes();
      release(job.request.bytes);
      release(job.request.target_bytes);
      return CancelResult::Cancelled;
    case State::Running:
      if (job.kept) return CancelResult::TooLate;
      job.cancel = true;
      return CancelResult::Cancelled;
    case State::Cancelled:
      return CancelResult::Cancelled;
    case State::Done:
    case State::Failed:
      break;
  }
  return CancelResult::TooLate;
}

void JobQueue::cancel_all() {
  std::vector<int> ids;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [id, job] : jobs_) ids.push_back(id);
  }
  for (int id : ids) cancel(id);
}

std::size_t JobQueue::held_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::size_t total = 0;
  for (const auto& [id, job] : jobs_) {
    total += job->upload_bytes();
    for (const auto& [which, file] : job->files) total += file.bytes.size();
  }
  return total;
}

std::optional<Download> JobQueue::file(int id, const std::string& which) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::nullopt;
  const auto f = it->second->files.find(which);
  if (f == it->second->files.end()) return std::nullopt;
  return f->second;
}

Download JobQueue::results_zip() const {
  std::vector<ZipEntry> entries;
  std::lock_guard<std::mutex> lock(mutex_);
  std::set<std::string> used;
  for (const auto& [id, job] : jobs_) {
    const auto f = job->files.find("result");
    if (f == job->files.end()) continue;
    int n = 1;
    while (!used.insert(numbered_name(f->second.filename, n)).second) ++n;
    entries.push_back({numbered_name(f->second.filename, n), &f->second.bytes});
  }
  return {zip_archive(entries), "application/zip", "cloak-results.zip"};
}

}  // namespace cloak::web

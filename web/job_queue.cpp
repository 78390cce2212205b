#include "web/job_queue.h"

#include <torch/torch.h>

#include <algorithm>

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

// Writes `bytes` into `dir` as `name`, or as name-2, name-3... when that exists: never over a file.
void write_unique(const fs::path& dir, const std::string& name,
                  const std::vector<std::uint8_t>& bytes) {
  const fs::path base(name);
  for (int n = 1;; ++n) {
    const fs::path file =
        dir / (n == 1 ? name
                      : base.stem().string() + "-" + std::to_string(n) + base.extension().string());
    if (fs::exists(file)) continue;
    try {
      write_file_atomic(file, bytes, /*overwrite=*/false);
      return;
    } catch (const Error&) {
      if (!fs::exists(file)) throw;  // lost a race to another writer: try the next name
    }
  }
}

}  // namespace

struct JobQueue::Job {
  int id;
  JobRequest request;
  std::atomic<double> fraction{0};
  std::atomic<bool> cancel{false};
  // Guarded by the queue's mutex:
  State state = State::Queued;
  Clock::time_point started;
  std::string error;
  nlohmann::json figures;
  std::map<std::string, Download> files;
};

std::string protected_name(const std::string& name) {
  const fs::path p(name);
  return p.stem().string() + "-cloaked" + p.extension().string();
}

JobQueue::JobQueue(const std::vector<LoadedModel>& encoders, const Autoencoder& ae, int threads,
                   std::optional<fs::path> output_dir)
    : encoders_(encoders),
      ae_(ae),
      threads_(threads),
      output_dir_(std::move(output_dir)),
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
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job->id = next_id_++;
    jobs_[job->id] = job;
    queued_.push_back(job);
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
      job->state = State::Running;
      job->started = Clock::now();
    }
    run(*job);
  }
}

void JobQueue::run(Job& job) {
  const JobRequest& rq = job.request;
  try {
    const std::string out_name = protected_name(rq.name);
    FileResult r = protect_image(encoders_, rq.image, rq.name, out_name, rq.job, [&job](double f) {
      job.fraction = f;
      return !job.cancel;
    });
    std::map<std::string, Download> files;
    const Image protected_image = with_color(rq.image, r.run.image);
    files["original.png"] = {png_of(rq.image), "image/png", "original.png"};
    files["protected.png"] = {png_of(protected_image), "image/png", "protected.png"};
    {
      torch::NoGradGuard no_grad;
      const auto x = preview_tensor(rq.image, kAiViewSide);
      const auto p = preview_tensor(protected_image, kAiViewSide);
      files["ai-original.png"] = {png_of(picture(reconstruct(ae_, x))), "image/png",
                                  "ai-original.png"};
      files["ai-protected.png"] = {png_of(picture(reconstruct(ae_, p))), "image/png",
                                   "ai-protected.png"};
      const auto v = butteraugli(r.original, r.run.image, true);
      files["visibility.png"] = {png_of(picture(visibility_heatmap(r.run.image, v.distmap))),
                                 "image/png", "visibility.png"};
    }
    if (output_dir_) write_unique(*output_dir_, out_name, r.encoded);
    files["result"] = {std::move(r.encoded), content_type_of(rq.image.format), out_name};
    nlohmann::json figures = to_json(r.report);
    figures["seconds"] = r.run.seconds;
    std::lock_guard<std::mutex> lock(mutex_);
    job.files = std::move(files);
    job.figures = std::move(figures);
    job.state = State::Done;
  } catch (const std::exception& e) {
    const auto* err = dynamic_cast<const Error*>(&e);
    const std::string what = e.what();
    std::lock_guard<std::mutex> lock(mutex_);
    job.state = err && err->kind() == ErrorKind::Cancelled ? State::Cancelled : State::Failed;
    job.error = err ? what : rq.name + ": " + what.substr(0, what.find('\n'));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  job.request.image = {};  // the pixels are no longer needed: keep only what the page shows
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
  if (job.state == State::Done) j["result_name"] = job.files.at("result").filename;
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

bool JobQueue::cancel(int id) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = jobs_.find(id);
  if (it == jobs_.end()) return false;
  Job& job = *it->second;
  job.cancel = true;
  if (job.state == State::Queued) {
    job.state = State::Cancelled;
    queued_.erase(std::remove(queued_.begin(), queued_.end(), it->second), queued_.end());
  }
  return true;
}

void JobQueue::cancel_all() {
  std::vector<int> ids;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [id, job] : jobs_) ids.push_back(id);
  }
  for (int id : ids) cancel(id);
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
  std::map<std::string, int> taken;
  for (const auto& [id, job] : jobs_) {
    const auto f = job->files.find("result");
    if (f == job->files.end()) continue;
    std::string name = f->second.filename;
    if (const int n = ++taken[name]; n > 1) {
      const fs::path p(name);
      name = p.stem().string() + "-" + std::to_string(n) + p.extension().string();
    }
    entries.push_back({name, &f->second.bytes});
  }
  return {zip_archive(entries), "application/zip", "cloak-results.zip"};
}

}  // namespace cloak::web

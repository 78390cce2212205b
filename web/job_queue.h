// The web app's work: uploaded images protected one at a time on a worker thread, each with its
// state, progress, result and the pictures the page shows. An upload waits as the bytes it was sent
// (decoded when its turn comes), the queue is bounded in files and bytes, and a cancelled or
// finished job keeps only what the page shows.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cloak/pipeline/protect_file.h"
#include "cloak/report/audit.h"

namespace cloak::web {

struct JobRequest {
  std::string name;                 // upload_name of what was sent: its extension is the format
  std::vector<std::uint8_t> bytes;  // the file as uploaded
  std::string target_name;          // an optional target image (cloak, poison), also as uploaded
  std::vector<std::uint8_t> target_bytes;
  FileJob job;  // job.settings.target stays empty: made from target_bytes
};

// How much may wait in the queue: past either, add() refuses with QueueFull.
struct QueueLimits {
  std::size_t files = 100;
  std::size_t bytes = std::size_t{1} << 30;  // of uploads (encoded) not yet started
};

struct QueueFull : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// What cancel() found.
enum class CancelResult { Unknown, Cancelled, TooLate };

// A file the page downloads or shows, with its MIME type and name.
struct Download {
  std::vector<std::uint8_t> bytes;
  std::string content_type, filename;
};

class JobQueue {
 public:
  // `encoders` and `ae` must outlive the queue. With `output_dir`, each result is also written
  // there (atomically, never over an existing file). `threads`: libtorch's threads for the work.
  JobQueue(const std::vector<LoadedModel>& encoders, const Autoencoder& ae, int threads,
           std::optional<std::filesystem::path> output_dir, QueueLimits limits = {});
  ~JobQueue();  // cancels what runs and waits for it
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;

  // Queues the job; throws QueueFull (one line saying which limit) when it would pass the limits.
  int add(JobRequest request);
  // The job's state as the API reports it: id, name, state (queued, running, done, failed,
  // cancelled), fraction, eta_seconds, error, figures; when done, result_name and, with an output
  // folder, saved_as (the file written there) or save_error (the result stays downloadable).
  // Nothing for an unknown id.
  std::optional<nlohmann::json> status(int id) const;
  nlohmann::json list() const;
  // Cancels a queued or running job; TooLate once its result is being kept (done, failed, or past
  // its last step).
  CancelResult cancel(int id);
  void cancel_all();
  // The bytes the jobs hold: uploads waiting and the files of finished ones.
  std::size_t held_bytes() const;
  // A finished job's files: "result" (the protected file), "original.png", "protected.png",
  // "ai-original.png", "ai-protected.png" (what the autoencoder rebuilds of each),
  // "visibility.png" (where the change shows: preview.h, visibility_heatmap).
  std::optional<Download> file(int id, const std::string& which) const;
  // Every finished result, as a zip archive.
  Download results_zip() const;

 private:
  struct Job;
  void work();
  void run(Job& job);

  const std::vector<LoadedModel>& encoders_;
  const Autoencoder& ae_;
  const int threads_;
  const std::optional<std::filesystem::path> output_dir_;
  const QueueLimits limits_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::map<int, std::shared_ptr<Job>> jobs_;
  std::deque<std::shared_ptr<Job>> queued_;
  std::size_t queued_bytes_ = 0;
  int next_id_ = 1;
  bool stopping_ = false;
  std::thread worker_;
};

// The name an upload is kept under, from the name it was sent with (any bytes): its base name
// (after the last slash or backslash), bytes that are not UTF-8 read as Windows-1252 (what old
// archives, scripts and browsers mean by Latin-1), at most kMaxNameBytes. Throws cloak::Error
// (Usage) for control characters, no base name ("", ".", "..", "dir/") and an extension Cloak does
// not write.
inline constexpr std::size_t kMaxNameBytes = 200;
std::string upload_name(const std::string& sent);

// The name a protected copy of `name` gets: "painting.png" -> "painting-cloaked.png".
std::string protected_name(const std::string& name);

// `name` for n = 1, else "stem-n.ext": how copies with the same name are told apart.
std::string numbered_name(const std::string& name, int n);

}  // namespace cloak::web

// The web app's work: uploaded images protected one at a time on a worker thread, each with its
// state, progress, result and the pictures the page shows.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cloak/pipeline/protect_file.h"
#include "cloak/report/audit.h"

namespace cloak::web {

struct JobRequest {
  std::string name;  // the uploaded file's name: its extension is the output's format
  Image image;
  FileJob job;
};

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
           std::optional<std::filesystem::path> output_dir);
  ~JobQueue();  // cancels what runs and waits for it
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;

  int add(JobRequest request);
  // The job's state as the API reports it: id, name, state (queued, running, done, failed,
  // cancelled), fraction, eta_seconds, error, figures. Nothing for an unknown id.
  std::optional<nlohmann::json> status(int id) const;
  nlohmann::json list() const;
  // Cancels a queued or running job; false for an unknown id.
  bool cancel(int id);
  void cancel_all();
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
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::map<int, std::shared_ptr<Job>> jobs_;
  std::deque<std::shared_ptr<Job>> queued_;
  int next_id_ = 1;
  bool stopping_ = false;
  std::thread worker_;
};

// The name a protected copy of `name` gets: "painting.png" -> "painting-cloaked.png".
std::string protected_name(const std::string& name);

}  // namespace cloak::web

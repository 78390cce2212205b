// `cloak serve`: a local web app on 127.0.0.1 only. One page (compiled in) and a small JSON API:
//   GET    /                      the page
//   GET    /api/settings          the choices and defaults (the library's settings table)
//   POST   /api/jobs              multipart: file, mode, strength, preset, decoy, seed, target
//   GET    /api/jobs              every job's state;  GET /api/jobs/ID: one job's
//   GET    /api/jobs/ID/result    the protected file; /api/jobs/ID/view/NAME.png: the page's views
//   DELETE /api/jobs/ID           cancels (409 once its result is kept);  DELETE /api/jobs: all
//   GET    /api/results.zip       every finished result
// Every request needs the session token (X-Cloak-Token header or `token` query parameter) and a
// Host of 127.0.0.1:PORT or localhost:PORT (DNS rebinding), else 403. A full queue gives 503.
// Connections are bounded in number and time (http_server.h).
#pragma once

#include <cstddef>
#include <string>

#include "web/http_server.h"
#include "web/job_queue.h"

namespace cloak::web {

struct ServeOptions {
  std::size_t max_upload_bytes = std::size_t{256} << 20;  // larger uploads get 413
  FileJob defaults;  // what every upload starts from: device, image limits, output quality
};

class Server {
 public:
  Server(JobQueue& jobs, ServeOptions options);
  // Binds 127.0.0.1:`port` (0: any free port) and returns the port; throws cloak::Error (Usage).
  int bind(int port);
  // http://127.0.0.1:PORT/?token=TOKEN: what the artist opens.
  std::string url() const;
  const std::string& token() const { return token_; }
  // Serves until stop() (from another thread).
  void run();
  // Closes every connection and returns once run() has.
  void stop();

 private:
  void routes();
  bool allowed(const httplib::Request& req) const;

  JobQueue& jobs_;
  ServeOptions options_;
  std::string token_;
  int port_ = 0;
  HttpServer http_;
};

}  // namespace cloak::web

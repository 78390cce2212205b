// cpp-httplib's request handling behind Cloak's own connection loop, so that no client can hold the
// server: a thread per connection (up to kMaxConnections, the rest wait to be accepted), one
// request per connection, the request's headers within kHeaderSeconds of its first byte being
// awaited, its body within kBodySeconds, the response within kWriteSeconds, and stop() closing
// every connection at once. httplib's own loop gives each read a timeout but the whole request
// none, and its fixed pool of 8 threads is held by 8 clients that send a byte every few seconds.
#pragma once

#include <httplib.h>

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <set>

namespace cloak::web {

class HttpServer : public httplib::Server {
 public:
  static constexpr std::size_t kMaxConnections = 64;
  static constexpr int kHeaderSeconds = 5;
  static constexpr int kBodySeconds = 60;
  static constexpr int kWriteSeconds = 120;

  ~HttpServer() override;
  // Serves on the socket bind_to_port / bind_to_any_port made, until stop().
  void serve();
  // Closes the listening socket and every open connection; returns once serve() and every
  // connection's thread have ended. Safe from any thread, more than once.
  void stop_now();
  // Marks the request being handled on this thread as read up to its body: the body gets its own
  // deadline. Called from the pre-routing handler.
  static void headers_received();

 private:
  void handle(int fd);

  std::mutex mutex_;
  std::condition_variable changed_;
  std::set<int> open_;  // connections being served
  bool stopping_ = false;
  bool serving_ = false;
};

}  // namespace cloak::web

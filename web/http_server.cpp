#include "web/http_server.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

namespace cloak::web {

namespace {

using Clock = std::chrono::steady_clock;

// One connection's socket as httplib reads and writes it, every wait bounded by the deadline of
// the phase the request is in.
class ConnectionStream : public httplib::Stream {
 public:
  explicit ConnectionStream(int fd) : fd_(fd) { set_deadline(HttpServer::kHeaderSeconds); }

  void set_deadline(int seconds) { deadline_ = Clock::now() + std::chrono::seconds(seconds); }

  bool is_readable() const override { return pos_ < end_ || ready(POLLIN); }
  bool is_writable() const override { return ready(POLLOUT); }

  ssize_t read(char* ptr, size_t size) override {
    if (pos_ == end_) {
      if (!ready(POLLIN)) return -1;
      if (size >= sizeof buffer_) return receive(ptr, size);  // large reads skip the buffer
      const ssize_t got = receive(buffer_, sizeof buffer_);
      if (got <= 0) return got;
      pos_ = 0;
      end_ = static_cast<size_t>(got);
    }
    const size_t n = std::min(size, end_ - pos_);
    std::memcpy(ptr, buffer_ + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!writing_) {  // the response has its own deadline, from its first byte
      writing_ = true;
      set_deadline(HttpServer::kWriteSeconds);
    }
    if (!ready(POLLOUT)) return -1;
    ssize_t n;
    do n = ::send(fd_, ptr, size, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    address(::getpeername, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    address(::getsockname, ip, port);
  }
  socket_t socket() const override { return fd_; }

 private:
  // Waits for `events` until the deadline; true when the socket is ready (or closed: the read or
  // write then says so).
  bool ready(short events) const {
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, events, 0};
      const int r = ::poll(&p, 1, static_cast<int>(left.count()));
      if (r > 0) return true;
      if (r < 0 && errno != EINTR) return false;
    }
  }
  ssize_t receive(char* ptr, size_t size) {
    ssize_t n;
    do n = ::recv(fd_, ptr, size, 0);
    while (n < 0 && errno == EINTR);
    return n;
  }
  template <class Query>
  void address(Query query, std::string& ip, int& port) const {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    char host[NI_MAXHOST], service[NI_MAXSERV];
    if (query(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0 &&
        ::getnameinfo(reinterpret_cast<sockaddr*>(&addr), len, host, sizeof host, service,
                      sizeof service, NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
      ip = host;
      port = std::atoi(service);
    }
  }

  const int fd_;
  Clock::time_point deadline_;
  bool writing_ = false;
  char buffer_[4096];
  size_t pos_ = 0, end_ = 0;
};

thread_local ConnectionStream* t_stream = nullptr;  // the connection this thread serves

}  // namespace

HttpServer::~HttpServer() {
  stop_now();
}

void HttpServer::headers_received() {
  if (t_stream) t_stream->set_deadline(kBodySeconds);
}

void HttpServer::serve() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    serving_ = true;
  }
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stopping_ || open_.size() < kMaxConnections; });
      if (stopping_) break;
    }
    pollfd p{svr_sock_, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;  // wakes now and then to notice stop_now()
    const int fd = ::accept4(svr_sock_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) {
      ::close(fd);
      break;
    }
    open_.insert(fd);
    std::thread([this, fd] { handle(fd); }).detach();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  serving_ = false;
  changed_.notify_all();
}

void HttpServer::handle(int fd) {
  {
    ConnectionStream stream(fd);
    t_stream = &stream;
    bool closed = false;
    try {
      process_request(stream, /*close_connection=*/true, closed, [](httplib::Request&) {});
    } catch (...) {  // httplib answers a handler's exception itself; nothing may end the process
    }
    t_stream = nullptr;
  }
  std::lock_guard<std::mutex> lock(
      mutex_);  // closed under the lock: stop_now never sees a reused fd
  ::close(fd);
  open_.erase(fd);
  changed_.notify_all();
}

void HttpServer::stop_now() {
  std::unique_lock<std::mutex> lock(mutex_);
  stopping_ = true;
  for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
  changed_.notify_all();
  changed_.wait(lock, [&] { return !serving_ && open_.empty(); });
  const socket_t listening = svr_sock_.exchange(INVALID_SOCKET);
  if (listening != INVALID_SOCKET) ::close(listening);
}

}  // namespace cloak::web

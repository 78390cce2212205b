#include "cloak/pipeline/batch_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cloak/core/error.h"
#include "cloak/io/file_io.h"

namespace cloak {

namespace fs = std::filesystem;

namespace {

// Field 22 of /proc/PID/stat, counted after the command name's closing parenthesis.
unsigned long long start_ticks_of(long pid) {
  const std::string stat = read_first_line("/proc/" + std::to_string(pid) + "/stat");
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i)
    if (i == 22) return std::strtoull(field.c_str(), nullptr, 10);
  return 0;
}

LockHolder this_process() {
  LockHolder h;
  h.host = host_name();
  h.boot_id = read_first_line("/proc/sys/kernel/random/boot_id");
  h.pid = static_cast<long>(getpid());
  h.start_ticks = start_ticks_of(h.pid);
  char when[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  h.since = when;
  if (const char* job = std::getenv("SLURM_JOB_ID")) h.slurm_job = job;
  return h;
}

std::string read_all(int fd) {
  std::string text;
  char buf[4096];
  for (off_t at = 0;;) {
    const ssize_t n = ::pread(fd, buf, sizeof(buf), at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    at += n;
  }
  return text;
}

// The holder a lock file names; nothing when it is empty (free) or not a holder record (damaged:
// then flock alone guards it).
std::optional<LockHolder> holder_in(int fd) {
  const auto j = nlohmann::json::parse(read_all(fd), nullptr, false);
  if (!j.is_object() || !j.contains("host") || !j["host"].is_string()) return std::nullopt;
  try {
    LockHolder h;
    h.host = j["host"];
    h.boot_id = j.value("boot_id", "");
    h.pid = j.value("pid", 0L);
    h.start_ticks = j.value("start_ticks", 0ull);
    h.since = j.value("since", "");
    h.slurm_job = j.value("slurm_job", "");
    return h;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

void write_holder(int fd, const LockHolder& h, const fs::path& file) {
  nlohmann::json j = {{"host", h.host},
                      {"boot_id", h.boot_id},
                      {"pid", h.pid},
                      {"start_ticks", h.start_ticks},
                      {"since", h.since}};
  if (!h.slurm_job.empty()) j["slurm_job"] = h.slurm_job;
  const std::string text = j.dump() + "\n";
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    const int err = errno;
    if (err == ENOSPC || err == EDQUOT) throw disk_full(file, err);
    throw Error(ErrorKind::Output,
                file.string() + ": cannot write the batch lock file: " + std::strerror(err));
  }
  ::fsync(fd);
}

// An exclusive flock, tried for 0.2 s so that a status view's brief look never makes a batch fail.
// Returns 0, EWOULDBLOCK, or the errno of a filesystem without flock (its holder record is then
// the only guard).
int try_lock(int fd) {
  for (int tries = 0;; ++tries) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return 0;
    if (errno != EWOULDBLOCK || tries == 10) return errno;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

std::string LockHolder::describe() const {
  std::string s = "cloak on " + host + " (pid " + std::to_string(pid);
  if (!since.empty()) s += ", since " + since;
  if (!slurm_job.empty()) s += ", Slurm job " + slurm_job;
  return s + ")";
}

HolderState holder_state(const LockHolder& h) {
  const LockHolder self = this_process();
  if (h.host != self.host) return HolderState::Elsewhere;
  if (!h.boot_id.empty() && h.boot_id != self.boot_id) return HolderState::Gone;
  const auto ticks = start_ticks_of(h.pid);
  return ticks != 0 && ticks == h.start_ticks ? HolderState::Alive : HolderState::Gone;
}

BatchLock::BatchLock(fs::path file) : file_(std::move(file)) {
  fd_ = open_plain_file(file_, O_RDWR | O_CREAT, "batch lock file");
  const auto refuse = [&](const std::string& why) {
    ::close(fd_);
    throw Error(ErrorKind::Output, why);
  };
  const int locked = try_lock(fd_);
  const auto holder = holder_in(fd_);
  const auto state = holder ? holder_state(*holder) : HolderState::Gone;
  if (locked == EWOULDBLOCK || state == HolderState::Alive)
    refuse(file_.parent_path().string() + ": another cloak batch is working in this folder" +
           (holder ? " (" + holder->describe() + ")" : "") + "; wait for it to finish");
  const LockHolder self = this_process();
  const bool requeued = !self.slurm_job.empty() && holder && holder->slurm_job == self.slurm_job;
  if (state == HolderState::Elsewhere && !requeued)
    refuse(file_.string() + ": held by " + holder->describe() +
           ", which cannot be checked from here; if that run is over, delete this lock file and "
           "run again");
  try {
    write_holder(fd_, self, file_);
  } catch (const Error&) {
    ::close(fd_);
    throw;
  }
}

BatchLock::~BatchLock() {
  if (::ftruncate(fd_, 0) == 0) ::fsync(fd_);
  ::close(fd_);
}

std::optional<LockHolder> live_holder(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  auto holder = holder_in(fd);
  const bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);  // releases the shared lock, if it was taken
  if (held && !holder) {
    holder = LockHolder();
    holder->host = "?";
  }
  if (held) return holder;
  if (holder && holder_state(*holder) != HolderState::Gone) return holder;
  return std::nullopt;
}

}  // namespace cloak

#include "cloak/engine/cancel.h"

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "cloak/core/error.h"

namespace cloak {

namespace {

thread_local const std::function<bool()>* t_check = nullptr;
std::atomic<int> g_abandoned{0};

}  // namespace

CancelScope::CancelScope(std::function<bool()> cancelled)
    : check_(std::move(cancelled)), outer_(t_check) {
  t_check = &check_;
}

CancelScope::~CancelScope() {
  t_check = outer_;
}

bool cancellable() {
  return t_check != nullptr;
}

void stop_if_cancelled() {
  if (t_check && (*t_check)()) throw Error(ErrorKind::Cancelled, "cancelled");
}

void run_cancellable(std::function<void()> work) {
  if (!cancellable()) return work();
  // The worker holds the task; whoever finishes last frees it.
  auto task = std::make_shared<std::packaged_task<void()>>(std::move(work));
  auto done = task->get_future();
  ++g_abandoned;
  std::thread([task] {
    (*task)();
    --g_abandoned;
  }).detach();
  while (done.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready)
    stop_if_cancelled();
  done.get();  // rethrows what the work threw
}

int abandoned_computations() {
  return g_abandoned.load();
}

}  // namespace cloak

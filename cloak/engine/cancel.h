// Cancelling a run inside the engine's long calls that report no progress of their own: a whole
// large image's Butteraugli takes 15 s on 16 megapixels and 2 cores. The caller of a run installs
// a check for its thread; those calls poll it and stop with Error (Cancelled) within a tenth of a
// second of it saying so.
#pragma once

#include <functional>

namespace cloak {

class CancelScope {
 public:
  // Installs `cancelled` (true: stop) for this thread until the scope ends.
  explicit CancelScope(std::function<bool()> cancelled);
  ~CancelScope();
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;

 private:
  std::function<bool()> check_;
  const std::function<bool()>* outer_;
};

// Whether this thread runs under a check.
bool cancellable();
// Throws cloak::Error (Cancelled) when this thread's check says to stop.
void stop_if_cancelled();

// Runs `work` (which must own what it reads) so that this thread's check is polled meanwhile: when
// it says to stop, throws at once and leaves `work` to finish on its own and be dropped.
void run_cancellable(std::function<void()> work);

// Computations left running by cancelled runs: a process that exits while one runs must end with
// _exit, since static destructors would pull the libraries out from under it.
int abandoned_computations();

}  // namespace cloak

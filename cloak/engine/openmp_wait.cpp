#include "cloak/engine/openmp_wait.h"

#include <unistd.h>

#include <cstdlib>

namespace cloak {

void restart_with_short_openmp_spin(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  if (setenv("GOMP_SPINCOUNT", "1000", 1) != 0) return;
  execv("/proc/self/exe", argv);  // returns only on failure: carry on with the default spin
}

}  // namespace cloak

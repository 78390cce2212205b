// How libtorch's OpenMP workers wait. libgomp lets an idle worker spin for 300,000 rounds before
// it sleeps; beside other busy programs on the same cores those spins take the time the working
// threads need (the 512 px protect ran 4.1x slower beside two busy processes, 2.2x with a short
// spin, and no slower alone: bench/RESULTS.md, load). libgomp reads the setting once, when it is
// loaded, so a running program can only change it by starting itself again with the setting in
// its environment.
#pragma once

namespace cloak {

// Unless the environment already says how OpenMP should wait (OMP_WAIT_POLICY or
// GOMP_SPINCOUNT), runs this program again (same arguments) with a short spin; returns only when
// the setting is already in place or the restart is impossible. Call first thing in main().
void restart_with_short_openmp_spin(char** argv);

}  // namespace cloak

#!/usr/bin/env bash
# Builds the library, the cloak command and the test suites with AddressSanitizer and
# UndefinedBehaviorSanitizer, and without precompiled headers (so that every header must include
# what it uses), then runs the I/O, weights, hostile-input and CLI tests on it. Left to the normal
# build, as under ASan they take too long for CI: the engine's optimisation tests, and the CLI's
# tests of batch resumption, sharding, locking, status, a batch refused for its settings, a full
# disk, settings, verify, thread counts and the targeted modes' report, whose inputs are the
# project's own images and manifests (the manifest parser has its own fuzzer). Any compile error,
# failed test or sanitizer report fails the run.
#   tests/sanitizers.sh BUILD_DIR
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: tests/sanitizers.sh BUILD_DIR}
cmake -S "$src" -B "$build" -DCLOAK_SANITIZE=ON -DCMAKE_DISABLE_PRECOMPILE_HEADERS=ON \
  -DCLOAK_BUILD_BENCH=OFF -DCLOAK_BUILD_GIMP_PLUGIN=OFF >/dev/null
cmake --build "$build" --target cloak_io_tests cloak_cli_tests -j2 >/dev/null
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export LSAN_OPTIONS=suppressions=$src/tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# The short OpenMP spin the cloak command would restart itself to get (tests/CMakeLists.txt).
export GOMP_SPINCOUNT=1000
# The two suites side by side: much of their time is the cloak command starting under ASan.
"$build/tests/cloak_io_tests" --gtest_brief=1 >"$build/io_tests.log" 2>&1 &
io=$!
"$build/tests/cloak_cli_tests" --gtest_brief=1 \
  --gtest_filter='ModelStore*:ModelSearchPath*:Safetensors*:PthArchive*:Cli*:-Cli.Killed*:Cli.Shard*:Cli.TwoBatches*:Cli.OpenMp*:Cli.BatchStatus*:Cli.StatusCounts*:Cli.ALock*:Cli.Threads*:Cli.BatchResumes*:Cli.ResumeReplaces*:Cli.Settings*:Cli.Verify*:Cli.AManifest*:Cli.AFullDisk*:Cli.Targeted*' \
  >"$build/cli_tests.log" 2>&1 &
cli=$!
failed=0
wait $io || failed=1
wait $cli || failed=1
cat "$build/io_tests.log" "$build/cli_tests.log"
exit $failed

#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/) with clang, replays the crash inputs kept in
# fuzz/regressions/HARNESS/, then fuzzes each harness for SECONDS from the seed corpora the
# project generates itself (a fixed seed, so a run can be repeated). Fails on any crash, leak,
# sanitizer report or out-of-memory.
#   tests/fuzz.sh BUILD_DIR [SECONDS] [MODELS_DIR]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: tests/fuzz.sh BUILD_DIR [SECONDS] [MODELS_DIR]}
seconds=${2:-60}
models=${3:-${CLOAK_SHARED_DIR:-$src/../shared}/models}
CC=clang CXX=clang++ cmake -S "$src" -B "$build" -DCLOAK_FUZZ=ON -DCLOAK_BUILD_TESTS=OFF \
  -DCLOAK_BUILD_BENCH=OFF -DCLOAK_BUILD_CLI=OFF -DCLOAK_BUILD_GIMP_PLUGIN=OFF >/dev/null
cmake --build "$build" --target fuzzers -j2 >/dev/null
corpus=$build/corpus
rm -rf "$corpus" "$build/found"
"$build/fuzz/make_seeds" "$corpus/seeds" "$models"
mkdir -p "$build/found"
failed=0
for pair in fuzz_image:image fuzz_png:png fuzz_metadata:metadata fuzz_weights:weights \
            fuzz_manifest:manifest; do
  harness=${pair%%:*}
  seeds=$corpus/seeds/${pair#*:}
  bin=$build/fuzz/$harness
  regressions=$src/fuzz/regressions/$harness
  if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
    if ! "$bin" -rss_limit_mb=2048 "$regressions"/* >"$build/$harness-replay.log" 2>&1; then
      echo "$harness: a kept regression input fails again:"; tail -n 20 "$build/$harness-replay.log"
      failed=1
      continue
    fi
  fi
  mkdir -p "$corpus/$harness"
  if "$bin" -seed=1 -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$build/found/$harness-" \
      "$corpus/$harness" "$seeds" >"$build/$harness.log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$build/$harness.log" | grep -o '[0-9]*$')
    echo "$harness: $runs executions in ${seconds} s, no crash (corpus $(ls "$corpus/$harness" | wc -l) inputs)"
  else
    echo "$harness: FAILED; the input is kept in $build/found/ (add it to fuzz/regressions/$harness/):"
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$build/$harness.log" | head -n 10
    failed=1
  fi
done
exit $failed

#!/usr/bin/env bash
# Runs every fuzz target ONE AFTER ANOTHER (never two at once: one core each, shared machine),
# SECONDS each (default 600), logging to build-fuzz/logs/<target>.log. A target that stops early
# (a finding) is not restarted: fix it, add the input to tests/corpus/regressions/, rerun run.sh.
set -uo pipefail
seconds="${1:-600}"
shift || true
repo="$(cd "$(dirname "$0")/../.." && pwd)"
build="${EMBER_FUZZ_BUILD:-$repo/build-fuzz}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_csv fuzz_filename_pattern fuzz_safetensors fuzz_checkpoint
                                      fuzz_dataset_config fuzz_image fuzz_experiment_config)
mkdir -p "$build/logs"
for t in "${targets[@]}"; do
  # A build may still be linking later targets while earlier ones run: wait for the executable.
  if [ ! -x "$build/tests/fuzz/$t" ]; then
    while [ ! -x "$build/tests/fuzz/$t" ]; do sleep 10; done
    sleep 30  # let the linker finish writing it
  fi
  start=$(date +%s)
  "$repo/tools/fuzz/run.sh" "$t" "$seconds" > "$build/logs/$t.log" 2>&1
  rc=$?
  echo "$t rc=$rc ran $(( $(date +%s) - start ))s" | tee -a "$build/logs/summary.txt"
done

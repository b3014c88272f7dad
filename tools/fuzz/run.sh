#!/usr/bin/env bash
# Runs ONE libFuzzer target for SECONDS on one core: tools/fuzz/run.sh fuzz_csv 600
# Build first (see docs/hardening.md):
#   CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DEMBER_FUZZ=ON -DEMBER_CUDA=OFF \
#     -DEMBER_BUILD_TESTS=OFF -DEMBER_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
#   cmake --build build-fuzz --target <target> -j2
# The growing corpus lives in build-fuzz/corpus/<target> (not committed); crashes, hangs and
# leaks land in build-fuzz/findings/<target>/. A finding, once fixed, goes to
# tests/corpus/regressions/<target>/ so the normal test suite replays it.
set -euo pipefail
target="${1:?usage: run.sh TARGET SECONDS}"
seconds="${2:?usage: run.sh TARGET SECONDS}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
build="${EMBER_FUZZ_BUILD:-$repo/build-fuzz}"
exe="$build/tests/fuzz/$target"
[ -x "$exe" ] || { echo "no $exe: build it first" >&2; exit 2; }
[ -d "$build/seeds/$target" ] || "$repo/tools/fuzz/make_seeds.sh" "$build/seeds"
mkdir -p "$build/corpus/$target" "$build/findings/$target"
dict=()
case "$target" in
  fuzz_*config|fuzz_safetensors|fuzz_checkpoint) dict=(-dict="$repo/tools/fuzz/json.dict") ;;
esac
# One process, one core (the machine is shared). rss_limit bounds a runaway allocation; a 10 s
# timeout per input flags hangs (EMBER_FUZZ_TIMEOUT overrides it: raise it when the machine is busy, since
# a starved process trips it without any hang). OpenMP is pinned to one thread for the same reason.
export OMP_NUM_THREADS=1
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
exec "$exe" "$build/corpus/$target" "$build/seeds/$target" "${dict[@]}" \
  -max_total_time="$seconds" -timeout="${EMBER_FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 -max_len=65536 \
  -artifact_prefix="$build/findings/$target/" -print_final_stats=1

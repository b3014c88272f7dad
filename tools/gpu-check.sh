#!/usr/bin/env bash
# GPU check for ember's CUDA backend, meant for the machine with the GPU:
#   1. configure with -DEMBER_CUDA=ON (cuDNN and LibTorch found inside the installed PyTorch),
#   2. build with ninja, 3. run ctest (all tests, GPU ones included),
#   4. compute-sanitizer memcheck + racecheck on the CUDA test binary,
#   5. the VGG16 train step against LibTorch (bench/cuda/torch_cuda_models), then the CUDA kernel
#      benchmarks, 6. a short summary table (last thing printed).
# Finishes inside 10 minutes: each step has its own time limit. Full logs go to $OUT (when set)
# or to $BUILD_DIR/gpu-check-logs. Usage: tools/gpu-check.sh [build-dir]
# On the device tool: first `tools/gpu-deps.sh` here, then run it with carry [".deps"].
# Knobs: CUDA_ARCHS (default: this GPU's compute capability), EMBER_BENCH_BATCH (default 64),
#        JOBS (default: nproc), SKIP_BENCH=1, SKIP_MODEL_BENCH=1, SKIP_SANITIZER=1, GPU_BENCH_BIN=path,
#        EMBER_BENCH_VGG_BATCH (VGG16 train step batch, default 32), BENCH_RESERVE (seconds kept for
#        the benchmarks, default 150). With $OUT set the logs end up in $OUT/gpu-check-logs.tgz.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The GPU machine's image has no GoogleTest, Google Benchmark, nlohmann-json, CLI11 or stb:
# tools/gpu-deps.sh bundles them into .deps/ on the development machine, and the device call
# carries it (carry: [".deps"]).
if [[ -d "$REPO/.deps/usr" ]]; then
  DEPS="$REPO/.deps/usr"
  export CMAKE_PREFIX_PATH="$DEPS${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export CPLUS_INCLUDE_PATH="$DEPS/include${CPLUS_INCLUDE_PATH:+:$CPLUS_INCLUDE_PATH}"
  export LD_LIBRARY_PATH="$DEPS/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
BUILD_DIR="${1:-${BUILD_DIR:-$REPO/build-gpu}}"
LOG_DIR="${OUT:-$BUILD_DIR}/gpu-check-logs"
JOBS="${JOBS:-$(nproc)}"
mkdir -p "$BUILD_DIR" "$LOG_DIR"
START=$SECONDS
declare -A RESULT  # step -> PASS / FAIL / SKIP (+ detail)
STEPS=()

note() { printf '\n=== [%4ds] %s\n' "$((SECONDS - START))" "$*"; }
record() {  # record STEP STATUS DETAIL
  STEPS+=("$1")
  RESULT["$1"]="$2|$3"
}
TOTAL_LIMIT=585  # seconds for the whole script (the device allows 10 minutes per command)
# Seconds the tests and sanitizers leave for the two benchmark steps (they run last; without a
# reserve slow sanitizer runs would starve them). Set before the tests, back to 0 before the benchmarks.
BENCH_RESERVE=${BENCH_RESERVE:-150}
[[ -n "${SKIP_BENCH:-}" ]] && BENCH_RESERVE=0
RESERVE=0
# run_step NAME LIMIT_SECONDS LOG command...: runs with a time limit (never past the script's total
# budget), output to LOG (its tail is shown on failure). Returns 124 when out of time.
run_step() {
  local name=$1 limit=$2 log=$3
  shift 3
  local left=$((TOTAL_LIMIT - RESERVE - (SECONDS - START)))
  ((limit > left - 5)) && limit=$((left - 5))
  if ((limit < 10)); then
    echo "out of time: $name not run" | tee "$log"
    return 124
  fi
  note "$name (limit ${limit}s, log $log)"
  timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
  local rc=$?
  if [[ $rc -eq 0 ]]; then
    echo "ok"
  else
    [[ $rc -eq 124 || $rc -eq 137 ]] && echo "TIMED OUT after ${limit}s" | tee -a "$log"
    tail -n 30 "$log"
  fi
  return $rc
}

# ---------------------------------------------------------------- environment
note "environment"
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader >"$LOG_DIR/gpu.txt" 2>/dev/null ||
  : >"$LOG_DIR/gpu.txt"  # empty: no GPU visible
cat "$LOG_DIR/gpu.txt"
NVCC="$(command -v nvcc || true)"
[[ -z "$NVCC" && -x /usr/local/cuda/bin/nvcc ]] && NVCC=/usr/local/cuda/bin/nvcc
echo "nvcc: ${NVCC:-not found}"
[[ -n "$NVCC" ]] && "$NVCC" --version | tail -n 2
if [[ -z "${CUDA_ARCHS:-}" ]]; then
  CC="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')"
  CUDA_ARCHS="${CC:-80;90}"
fi
echo "CUDA architectures: $CUDA_ARCHS"

PY="$(command -v python3 || true)"
TORCH_PREFIX="" CUDNN_DIR=""
if [[ -n "$PY" ]]; then
  TORCH_PREFIX="$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null || true)"
  # nvidia.cudnn is a namespace package in some wheels (__file__ is None): use __path__.
  CUDNN_DIR="$("$PY" -c 'import nvidia.cudnn as m, os; print(os.path.dirname(m.__file__) if m.__file__ else list(m.__path__)[0])' 2>/dev/null || true)"
fi
echo "LibTorch cmake prefix: ${TORCH_PREFIX:-not found}"
echo "cuDNN (pip nvidia-cudnn): ${CUDNN_DIR:-not found}"
# The pip wheel ships libcudnn.so.9 only; the loader must find it (and its sub-libraries) at run time.
[[ -n "$CUDNN_DIR" ]] && export LD_LIBRARY_PATH="$CUDNN_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# ---------------------------------------------------------------- configure + build
CMAKE_ARGS=(-S "$REPO" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEMBER_CUDA=ON
            "-DCMAKE_CUDA_ARCHITECTURES=$CUDA_ARCHS")
[[ -n "$NVCC" ]] && CMAKE_ARGS+=("-DCMAKE_CUDA_COMPILER=$NVCC")
[[ -n "$CUDNN_DIR" ]] && CMAKE_ARGS+=("-DCUDNN_ROOT=$CUDNN_DIR")
TORCH_ARGS=()
[[ -n "$TORCH_PREFIX" ]] && TORCH_ARGS=("-DCMAKE_PREFIX_PATH=$TORCH_PREFIX")
configure_detail() { grep -o 'cuDNN found: .*\|cuDNN not found.*\|LibTorch found\|LibTorch not found' "$1" | tr '\n' ' '; }
if run_step configure 120 "$LOG_DIR/configure.log" cmake "${CMAKE_ARGS[@]}" "${TORCH_ARGS[@]}"; then
  record configure PASS "$(configure_detail "$LOG_DIR/configure.log")"
# LibTorch's CMake config (its CUDA/cuDNN/NVTX checks) can fail the whole configure, which find_package's
# QUIET does not prevent: configure again without it, so tests and kernel benchmarks still run.
elif [[ -n "$TORCH_PREFIX" ]] && rm -f "$BUILD_DIR/CMakeCache.txt" &&
  run_step configure-no-torch 90 "$LOG_DIR/configure-no-torch.log" cmake "${CMAKE_ARGS[@]}" -DCMAKE_DISABLE_FIND_PACKAGE_Torch=ON; then
  record configure PASS "WITHOUT LibTorch (its config failed: configure.log); $(configure_detail "$LOG_DIR/configure-no-torch.log")"
else
  record configure FAIL "see configure.log"
fi

# -k 0: a target that fails to compile (e.g. torch_cuda_models against this LibTorch) must not stop
# the test binaries and bench_cuda_conv from being built; the tests below run whatever was built.
if [[ ${RESULT[configure]%%|*} == PASS ]] && run_step build 300 "$LOG_DIR/build.log" cmake --build "$BUILD_DIR" -j "$JOBS" -- -k 0; then
  record build PASS "$(grep -c 'warning' "$LOG_DIR/build.log") warning lines"
else
  record build FAIL "see build.log: $(grep -E '^FAILED: ' "$LOG_DIR/build.log" 2>/dev/null | head -n 3 | tr '\n' ' ')"
fi

# The CUDA test binaries (one per tests/cuda/*.cpp: test_cuda_*) and bench/cuda/bench_cuda_conv.
find_bins() { find "$BUILD_DIR" -type f -perm -u+x -name "$1" 2>/dev/null | sort; }
mapfile -t TEST_BINS < <(find_bins 'test_cuda_*')
BENCH_BIN="${GPU_BENCH_BIN:-$(find_bins 'bench_cuda*' | head -n 1)}"
echo "CUDA test binaries: ${TEST_BINS[*]:-none}; CUDA bench binary: ${BENCH_BIN:-none}"

# ---------------------------------------------------------------- tests
[[ -z "$BENCH_BIN" && -z "$(find_bins 'torch_cuda_models')" ]] && BENCH_RESERVE=0  # nothing to keep time for
RESERVE=$BENCH_RESERVE
if [[ ${RESULT[build]%%|*} == PASS || ${#TEST_BINS[@]} -gt 0 ]]; then
  run_step ctest 200 "$LOG_DIR/ctest.log" ctest --test-dir "$BUILD_DIR" --output-on-failure -j 4 --timeout 150
  rc=$?
  summary="$(grep -E 'tests passed|tests failed' "$LOG_DIR/ctest.log" | tail -n 1)"
  record ctest "$([[ $rc -eq 0 ]] && echo PASS || echo FAIL)" "${summary:-no summary}"
  # CTest reports GTEST_SKIP as passed: run the CUDA binaries directly to see what really ran.
  ran="" failed=0
  for bin in "${TEST_BINS[@]}"; do
    log="$LOG_DIR/$(basename "$bin").log"
    run_step "$(basename "$bin")" 90 "$log" "$bin" || failed=1
    ran+="$(basename "$bin"): $(grep -E '^\[ +(PASSED|FAILED|SKIPPED) +\] [0-9]+ test' "$log" | tr -s ' ' | tr '\n' ' ')"$'\n'"             "
    # A GPU that nvidia-smi sees but ember cannot use is a failure, not a skip.
    if [[ -s "$LOG_DIR/gpu.txt" ]] && grep -q 'no CUDA device' "$log"; then
      failed=1
      ran+="(GPU present but cuda_available() is false: $(grep -o 'cudaGetDeviceCount[^)]*' "$log" | head -n 1)) "
    fi
  done
  [[ ${#TEST_BINS[@]} -eq 0 ]] && failed=1 ran="no test_cuda_* binaries in $BUILD_DIR"
  record gpu-tests "$([[ $failed -eq 0 ]] && echo PASS || echo FAIL)" "$ran"
else
  record ctest SKIP "build failed"
fi

# ---------------------------------------------------------------- compute-sanitizer
SANITIZER="$(command -v compute-sanitizer || true)"
[[ -z "$SANITIZER" && -n "$NVCC" && -x "$(dirname "$NVCC")/compute-sanitizer" ]] && SANITIZER="$(dirname "$NVCC")/compute-sanitizer"
for tool in memcheck racecheck; do
  if [[ -n "${SKIP_SANITIZER:-}" || -z "$SANITIZER" || ${#TEST_BINS[@]} -eq 0 ]]; then
    record "$tool" SKIP "$([[ -z "$SANITIZER" ]] && echo 'compute-sanitizer not found' || echo 'skipped or no test binaries')"
    continue
  fi
  # Small shapes only: the sanitizers slow kernels down 10-100x; racecheck only matters for
  # kernels with shared memory (conv tiles, reductions).
  filter='-*Vgg*:*CopiesRoundTrip*:*QueuedUploads*'
  [[ $tool == racecheck ]] && filter='CudaConv.EveryVariant*:CudaPool*:CudaBatchNorm*:CudaReduce*:CudaSoftmax*'
  failed=0 errors=""
  for bin in "${TEST_BINS[@]}"; do
    log="$LOG_DIR/$tool-$(basename "$bin").log"
    run_step "$tool $(basename "$bin")" 120 "$log" "$SANITIZER" --tool "$tool" --error-exitcode 99 \
      "$bin" "--gtest_filter=$filter" || failed=1
    errors+="$(basename "$bin"): $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$log" | tail -n 1 | tr -s ' '); "
  done
  record "$tool" "$([[ $failed -eq 0 ]] && echo PASS || echo FAIL)" "$errors"
done

# ---------------------------------------------------------------- VGG16 train step vs LibTorch (issue 7)
# bench/cuda/torch_cuda_models: ember's autograd on the GPU against LibTorch eager, FP32 and TF32.
RESERVE=0
MODEL_BIN="$(find_bins 'torch_cuda_models' | head -n 1)"
if [[ -n "${SKIP_BENCH:-}${SKIP_MODEL_BENCH:-}" || -z "$MODEL_BIN" ]]; then
  record vgg16-train SKIP "$([[ -z "$MODEL_BIN" ]] && echo 'no torch_cuda_models binary (LibTorch not found?)' || echo 'skipped')"
else
  run_step vgg16-train 150 "$LOG_DIR/vgg16_train.log" "$MODEL_BIN" --benchmark_out="$LOG_DIR/vgg16_train.json" \
    --benchmark_out_format=json
  rc=$?
  record vgg16-train "$([[ $rc -eq 0 ]] && echo PASS || echo FAIL)" \
    "$(grep -E '^BM_vgg16' "$LOG_DIR/vgg16_train.log" | awk '{ips = ""; for (i = 4; i <= NF; ++i) if ($i ~ /^images\/s=/) ips = $i
        print $1, $2, $3, ips}' | tr '\n' ';' | head -c 400)"
fi

# ---------------------------------------------------------------- benchmarks
if [[ -n "${SKIP_BENCH:-}" || -z "$BENCH_BIN" ]]; then
  record bench SKIP "$([[ -z "$BENCH_BIN" ]] && echo 'no bench_cuda* binary' || echo 'skipped')"
else
  # Whatever time is left, minus a few seconds for the summary.
  run_step bench "$TOTAL_LIMIT" "$LOG_DIR/bench.log" "$BENCH_BIN" --benchmark_out="$LOG_DIR/bench.json" \
    --benchmark_out_format=json --benchmark_counters_tabular=true
  rc=$?
  record bench "$([[ $rc -eq 0 ]] && echo PASS || echo FAIL)" \
    "$([[ $rc -eq 124 ]] && echo 'timed out: partial results in bench.log' || echo 'bench.json, bench.log')"
fi

# ---------------------------------------------------------------- summary (printed last)
note "summary (logs in $LOG_DIR)"
if [[ -s "$LOG_DIR/bench.json" && -n "$PY" ]]; then
  "$PY" - "$LOG_DIR/bench.json" <<'PYEOF'
import json, sys, collections
text = open(sys.argv[1]).read()
try:
    runs = json.loads(text)["benchmarks"]
except ValueError:  # cut short (time limit, crash): keep the runs written before the cut
    try:
        runs = json.loads(text[:text.rfind("\n    }") + 6] + "\n  ]\n}")["benchmarks"]
        print("bench.json was cut short: the table below has only the runs before the cut")
    except ValueError:
        sys.exit("bench.json is unreadable: see bench.log")
# Two conv tables: VGG16's layers ("vgg16_conv3_C64_K128_112px" -> "conv3") and MobileNet's depthwise
# layers ("mobilenet_dw_C64_112px_s2" -> "C64_112px_s2"), each with its own implementations as columns.
tables = collections.OrderedDict()
other = []
for r in runs:
    parts = r["name"].split("/")
    if r.get("error_occurred"):
        continue
    if parts[0].startswith("conv_"):
        depthwise = parts[1].startswith("mobilenet_dw_")
        layer = parts[1][len("mobilenet_dw_"):] if depthwise else parts[1].split("_")[1]
        impls, rows = tables.setdefault("depthwise" if depthwise else "vgg16", ([], collections.OrderedDict()))
        if parts[2] not in impls:
            impls.append(parts[2])
        rows.setdefault(parts[0][5:] + " " + layer, {})[parts[2]] = r.get("GFLOP/s", 0) / 1e3
    else:
        other.append((parts[0] + "/" + parts[1], r.get("real_time", 0), r.get("GB/s", 0), r.get("vs_memcpy", 0)))
for family, (impls, rows) in tables.items():
    title = "VGG16 layers" if family == "vgg16" else "MobileNet v1 depthwise layers"
    print(f"conv TFLOP/s ({title}, batch from EMBER_BENCH_BATCH or 64)")
    width = max(len(k) for k in rows) + 2
    print(f"{'pass layer':<{width}}" + "".join(f"{i:>19}" for i in impls))
    for key, row in rows.items():
        print(f"{key:<{width}}" + "".join(f"{row.get(i, float('nan')):>19.2f}" for i in impls))
    print()
if other:
    print(f"\n{'memory-bound op':<40}{'ms':>10}{'GB/s':>10}{'vs memcpy':>11}")
    for name, ms, gbs, frac in other:
        print(f"{name:<40}{ms:>10.3f}{gbs:>10.0f}{frac:>11.2f}")
PYEOF
fi
if [[ -s "$LOG_DIR/vgg16_train.log" ]]; then
  echo; echo "VGG16 train step (arg 0: FP32, arg 1: TF32 convolutions; labels give each library's TF32 state)"
  grep -E '^BM_vgg16' "$LOG_DIR/vgg16_train.log"
fi
echo
printf '%-12s %-6s %s\n' STEP RESULT DETAIL
status=0
for step in "${STEPS[@]}"; do
  res="${RESULT[$step]%%|*}" detail="${RESULT[$step]#*|}"
  printf '%-12s %-6s %s\n' "$step" "$res" "$detail"
  [[ $res == FAIL ]] && status=1
done
echo "total time: $((SECONDS - START))s"
# The device machine brings back at most 8 files from $OUT: one archive instead of ~30 logs.
if [[ -n "${OUT:-}" && "$LOG_DIR" == "$OUT/gpu-check-logs" ]] && tar czf "$OUT/gpu-check-logs.tgz" -C "$OUT" gpu-check-logs; then
  rm -rf "$LOG_DIR"
  echo "logs: \$OUT/gpu-check-logs.tgz"
fi
exit $status

#!/usr/bin/env bash
# The README's first command: install Debian dependencies, build ember (Release), run the main job:
# all four milestone experiments on ember's own synthetic multimodal dataset (report in runs/synthetic/).
#   bash tools/setup.sh            # everything
#   EMBER_SKIP_APT=1 bash ...      # skip apt (dependencies already installed)
# Build dir: build/ (override with EMBER_BUILD_DIR). CUDA is built when nvcc is found (EMBER_CUDA=AUTO).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${EMBER_BUILD_DIR:-build}

DEPS=(build-essential cmake ninja-build pkg-config
      libgtest-dev libgmock-dev libbenchmark-dev libstb-dev nlohmann-json3-dev libcli11-dev libfmt-dev
      python3 python3-numpy python3-h5py python3-torch libtorch-dev libopenblas0-pthread
      chromium clang libclang-rt-14-dev python3-pil)

if [[ -z "${EMBER_SKIP_APT:-}" ]]; then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  missing=()
  for p in "${DEPS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "== installing: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

echo "== configuring ($BUILD_DIR)"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${EMBER_CMAKE_ARGS:-}
echo "== building"
cmake --build "$BUILD_DIR" -j"$(nproc)"
echo "== main job"
exec "$BUILD_DIR/apps/ember" run -o runs/synthetic

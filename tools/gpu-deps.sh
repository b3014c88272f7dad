#!/usr/bin/env bash
# Bundles the C++ packages ember's build needs but the lent GPU machine's image lacks (it is a
# Python/CUDA image: no GoogleTest, Google Benchmark, nlohmann-json, CLI11 or stb) into .deps/
# (git-ignored), copied from this Debian machine's installed packages (tools/setup.sh installs them).
# Header-only or static, plus libbenchmark's shared library: they build and run on the device's
# newer Ubuntu. Run here once per session, then name `.deps` in the device tool's `carry`;
# tools/gpu-check.sh picks it up by itself when $REPO/.deps exists. Usage: tools/gpu-deps.sh
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$REPO/.deps"
PACKAGES=(libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian nlohmann-json3-dev libcli11-dev libstb-dev)
rm -rf "$DEST"
mkdir -p "$DEST"
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || { echo "gpu-deps: package $p is not installed here (run tools/setup.sh)" >&2; exit 1; }
  # Files and symlinks only (directories come with --parents); docs are not needed.
  dpkg -L "$p" | grep -v '^/usr/share/doc' | while read -r f; do
    if [[ -f "$f" || -L "$f" ]]; then mkdir -p "$DEST$(dirname "$f")" && cp -a "$f" "$DEST$f"; fi
  done
done
echo "gpu-deps: $(du -sh "$DEST" | cut -f1) in $DEST (${PACKAGES[*]})"

#!/usr/bin/env bash
# Builds and runs the whole tokenmix test suite (README command 2; CI runs exactly this).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="${TOKENMIX_BUILD_DIR:-$root/build/test}"
jobs=$(nproc 2>/dev/null || echo 2)

bash "$root/scripts/deps.sh" test
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
  -DTOKENMIX_BUILD_TESTS=ON -DTOKENMIX_BUILD_EXAMPLES=ON -DTOKENMIX_BUILD_BENCHMARKS=OFF
cmake --build "$build" -j "$jobs"
cd "$build"
ctest --output-on-failure -j "$jobs"

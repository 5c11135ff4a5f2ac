#!/usr/bin/env bash
# Builds the examples and runs the demo (README command 1): every mixer on one sequence,
# ending with a mixers-vs-attention timing table.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="${TOKENMIX_BUILD_DIR:-$root/build/demo}"
jobs=$(nproc 2>/dev/null || echo 2)

bash "$root/scripts/deps.sh" demo
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
  -DTOKENMIX_BUILD_TESTS=OFF -DTOKENMIX_BUILD_EXAMPLES=ON -DTOKENMIX_BUILD_BENCHMARKS=OFF
cmake --build "$build" -j "$jobs"
"$build/examples/tokenmix-demo" "$@"

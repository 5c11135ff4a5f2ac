#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang (ASan + UBSan) and runs each one for a bounded
# time over its seed corpus: the committed fixtures plus tests/fuzz/seeds.
#   scripts/fuzz.sh [seconds per harness, default 60]
# A crash leaves its input as crash-* in the build's fuzz folder; copy it into tests/fuzz/seeds
# (every later run replays it) and turn it into a regression test before fixing. Longer runs:
#   scripts/fuzz.sh 3600      (an hour per harness; the corpus grows in build/fuzz/fuzz-*/corpus)
# The executions per harness go to fuzz-summary.txt in the build folder (and to stdout).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds="${1:-60}"
build="${TOKENMIX_FUZZ_BUILD_DIR:-$root/build/fuzz}"
jobs=$(nproc 2>/dev/null || echo 2)

bash "$root/scripts/deps.sh" fuzz
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DTOKENMIX_BUILD_FUZZERS=ON -DTOKENMIX_BUILD_TESTS=OFF -DTOKENMIX_BUILD_EXAMPLES=OFF \
  -DTOKENMIX_BUILD_BENCHMARKS=OFF -DTOKENMIX_INSTALL=OFF
cmake --build "$build" -j "$jobs"

seeds_for() {
  case "$1" in
    safetensors|checkpoint) echo "$root/tests/fuzz/seeds" "$root/tests/data/io" "$root/tests/data/attention" ;;
    npy) echo "$root/tests/data/io" ;;
    json_config) echo "$root/tests/fuzz/seeds" ;;
  esac
}

status=0
summary="$build/fuzz-summary.txt"
: > "$summary"
for harness in safetensors npy json_config checkpoint; do
  work="$build/fuzz-$harness"
  mkdir -p "$work/corpus"
  seed_dirs=()
  for d in $(seeds_for "$harness"); do [ -d "$d" ] && seed_dirs+=("$d"); done
  echo "== fuzz $harness for ${seconds}s"
  if ! (cd "$work" && "$build/tests/fuzz/tokenmix_fuzz_$harness" -max_total_time="$seconds" \
        -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 corpus "${seed_dirs[@]}" \
        > log.txt 2>&1); then
    echo "fuzz $harness: FAILED (see $work/log.txt)"; tail -40 "$work/log.txt"; status=1
  fi
  execs=$(grep -oE "stat::number_of_executed_units: *[0-9]+" "$work/log.txt" | grep -oE "[0-9]+$" || echo 0)
  rss=$(grep -oE "stat::peak_rss_mb: *[0-9]+" "$work/log.txt" | grep -oE "[0-9]+$" || echo "?")
  crashes=$(find "$work" -maxdepth 1 -name 'crash-*' -o -maxdepth 1 -name 'leak-*' -o -maxdepth 1 \
            -name 'timeout-*' -o -maxdepth 1 -name 'oom-*' | wc -l)
  echo "fuzz $harness: ${execs:-0} executions in ${seconds} s, peak RSS ${rss} MB, $crashes crash file(s)" |
    tee -a "$summary"
done
exit $status

#!/usr/bin/env bash
# Builds and runs the whole tokenmix test suite (README command 2; CI runs exactly this).
#   scripts/test.sh [--quick | --sanitize]
# Stages: (1) the suite, optimised as users build it; (2) each libFuzzer harness for a bounded
# time (clang). --quick runs stage 1 only. --sanitize adds (3) the suite again under
# AddressSanitizer + UndefinedBehaviorSanitizer and (4) the concurrency tests ([threads])
# under ThreadSanitizer: two more full builds, about half an hour on two cores, so they are
# not in CI's default run yet. TOKENMIX_FUZZ_SECONDS sets the fuzz time per harness (60).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="${TOKENMIX_BUILD_DIR:-$root/build}"
jobs=$(nproc 2>/dev/null || echo 2)
quick=0
sanitize=0
case "${1:-}" in
  "") ;;
  --quick) quick=1 ;;
  --sanitize) sanitize=1 ;;
  *) echo "usage: scripts/test.sh [--quick | --sanitize]" >&2; exit 2 ;;
esac

configure_and_build() {  # dir, extra cmake args...
  local dir=$1; shift
  cmake -S "$root" -B "$dir" -DTOKENMIX_BUILD_TESTS=ON -DTOKENMIX_BUILD_BENCHMARKS=OFF "$@"
  cmake --build "$dir" -j "$jobs"
}

echo "== tokenmix tests: optimised build"
bash "$root/scripts/deps.sh" test
configure_and_build "$build/test" -DCMAKE_BUILD_TYPE=Release -DTOKENMIX_BUILD_EXAMPLES=ON
(cd "$build/test" && ctest --output-on-failure -j "$jobs")
[ $quick -eq 1 ] && exit 0

echo "== tokenmix fuzzing"
bash "$root/scripts/fuzz.sh" "${TOKENMIX_FUZZ_SECONDS:-60}"
if [ $sanitize -eq 0 ]; then
  echo "tokenmix: all test stages passed (add --sanitize for the ASan/UBSan and TSan stages)"
  exit 0
fi

echo "== tokenmix tests: AddressSanitizer + UndefinedBehaviorSanitizer"
# -O1 without debug info: the sanitizers need no more, and g++ builds one test file under
# ASan+UBSan in 94 s at -O1 against 635 s at -O2 -g (measured on test_self_attention.cpp).
san="-O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
configure_and_build "$build/asan" -DCMAKE_BUILD_TYPE=None -DTOKENMIX_BUILD_EXAMPLES=ON \
  -DTOKENMIX_INSTALL=OFF -DCMAKE_CXX_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san"
(cd "$build/asan" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
   UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
   ctest --output-on-failure -j "$jobs" -E '^package\.')

echo "== tokenmix concurrency tests: ThreadSanitizer"
threaded=$(cd "$root/tests" && grep -l '\[threads\]' */test_*.cpp | sed 's/\.cpp$//' | paste -sd'|' || true)
if [ -n "$threaded" ]; then
  tsan="-O1 -fsanitize=thread"
  configure_and_build "$build/tsan" -DCMAKE_BUILD_TYPE=None \
    -DTOKENMIX_BUILD_EXAMPLES=OFF -DTOKENMIX_INSTALL=OFF -DTOKENMIX_TEST_FILTER="$threaded" \
    -DCMAKE_CXX_FLAGS="$tsan" -DCMAKE_EXE_LINKER_FLAGS="$tsan"
  for t in "$build"/tsan/tests/tokenmix_*_tests; do
    [ -x "$t" ] || continue
    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 "$t" "[threads]"
  done
fi

echo "tokenmix: all test stages passed, sanitizers included"

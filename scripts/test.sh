#!/usr/bin/env bash
# Builds and runs the whole tokenmix test suite (README command 2; CI runs exactly this).
#   scripts/test.sh [--quick | --no-sanitize]
# Stages (each prints its wall time when the next starts):
#   1. the suite, optimised as users build it (Release), under ctest: ~8 min
#   2. the stage-1 binaries again with each other runtime ISA path forced (TOKENMIX_ISA=scalar,
#      and avx2 on AVX-512 hosts; stage 1 ran the best one): no rebuild
#   3. each libFuzzer harness for TOKENMIX_FUZZ_SECONDS (60) over its seeds: ~6 min
#   4. the whole suite under AddressSanitizer + UndefinedBehaviorSanitizer (g++ -Og)
#   5. the concurrency tests ([threads]) under ThreadSanitizer (g++ -O1)
# --quick runs stage 1 only; --no-sanitize stops after stage 3.
#
# Sanitizer configuration, chosen by measurement (CPU seconds, user time, g++ 12 / clang 14,
# no -g, so no var-tracking; measured 2026-11-24 on the shared 2-core machine):
#                             compile test_mlp_mixer   compile+link test_gemm   run test_gemm
#   g++ -O2 (no sanitizer)          38.5                      -                   3.7
#   g++ -O1  ASan+UBSan             52.0                     24.4                23.2
#   g++ -Og  ASan+UBSan             37.4                     17.6                41.8
#   clang -O0 ASan+UBSan            15.1                      8.2               130.2
#   clang -O1 ASan+UBSan           165.6                      -                   -
#   g++ -O0  ASan+UBSan             27.8                      -                   -
#   g++ -O1  TSan                   31.4;  clang -O1 TSan 27.4
# The compile of ~50 test files dominates stage 4 and a handful of numeric tests dominate its
# run: g++ -Og compiles 28% faster than -O1 and runs the heaviest test 1.8x slower; clang -O0
# compiles fastest but runs 5.6x slower than -O1 (Eigen unoptimised), which a few heavy tests
# multiply; clang -O1 under ASan compiles 3x slower than g++. TSan covers only the [threads]
# files, with g++: clang's static sanitizer runtimes define operator new themselves, which
# collides with the counting operator new of tests/hostile (link error), and clang saves
# only 13% there.
# Stage times of a fresh clone on the 2-core machine (2026-12-03, at 21aa3a8): 464 s, 24 + 22 s,
# 350 s, 1057 s, 276 s: 37 min in all. Compilation is nearly all of it (the tests themselves
# run in ~60 s, ASan ~160 s), so every test, example and fuzzer program links one compiled
# copy of the dispatched kernels (TOKENMIX_SEPARATE_KERNELS, README "Build time") and test
# files are compiled six per translation unit (tests/CMakeLists.txt). Before the kernels were
# shared the same run took 80 min here (ASan alone 27 min) and 89 min on the CI machine.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="${TOKENMIX_BUILD_DIR:-$root/build}"
jobs=$(nproc 2>/dev/null || echo 2)
quick=0
sanitize=1
case "${1:-}" in
  "") ;;
  --quick) quick=1 ;;
  --no-sanitize) sanitize=0 ;;
  *) echo "usage: scripts/test.sh [--quick | --no-sanitize]" >&2; exit 2 ;;
esac

stage_start=$SECONDS
stage() {  # prints the previous stage's time, then the new stage's name
  echo "== ($((SECONDS - stage_start)) s) $*"
  stage_start=$SECONDS
}

configure_and_build() {  # dir, extra cmake args...
  local dir=$1; shift
  cmake -S "$root" -B "$dir" -DTOKENMIX_BUILD_TESTS=ON -DTOKENMIX_BUILD_BENCHMARKS=OFF "$@"
  cmake --build "$dir" -j "$jobs"
}

stage "tokenmix tests: optimised build"
bash "$root/scripts/deps.sh" test
configure_and_build "$build/test" -DCMAKE_BUILD_TYPE=Release -DTOKENMIX_BUILD_EXAMPLES=ON
(cd "$build/test" && ctest --output-on-failure -j "$jobs")
[ $quick -eq 1 ] && { stage "done (--quick)"; exit 0; }

# The dispatched kernels pick the best ISA the CPU has; the others only run when forced.
# Forcing one the CPU lacks is an error, so only the supported ones run here.
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
isas=(scalar)
if [[ " $flags " == *" avx512f "* ]]; then isas+=(avx2)
elif [[ " $flags " != *" avx2 "* ]]; then isas=()  # not x86 with AVX2: scalar is already the best
fi
for isa in "${isas[@]}"; do
  stage "tokenmix tests: TOKENMIX_ISA=$isa (stage-1 binaries)"
  (cd "$build/test" && TOKENMIX_ISA=$isa ctest --output-on-failure -j "$jobs" -E '^package\.')
done

stage "tokenmix fuzzing"
bash "$root/scripts/fuzz.sh" "${TOKENMIX_FUZZ_SECONDS:-60}"
if [ $sanitize -eq 0 ]; then
  stage "done (--no-sanitize)"
  exit 0
fi

stage "tokenmix tests: AddressSanitizer + UndefinedBehaviorSanitizer"
san_cxx="${TOKENMIX_ASAN_CXX:-g++}"
san="-Og -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
configure_and_build "$build/asan" -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_COMPILER="$san_cxx" \
  -DTOKENMIX_BUILD_EXAMPLES=ON -DTOKENMIX_INSTALL=OFF -DCMAKE_CXX_FLAGS="$san" \
  -DCMAKE_EXE_LINKER_FLAGS="$san"
# allocator_may_return_null: a test asks for more memory than exists and expects bad_alloc.
(cd "$build/asan" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:allocator_may_return_null=1 \
   UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
   ctest --output-on-failure -j "$jobs" -E '^package\.')

stage "tokenmix concurrency tests: ThreadSanitizer"
# The test files that have [threads] cases; tests/hostile/ files share one catalogue, so that
# folder comes whole.
threaded=$(cd "$root/tests" && grep -l '\[threads\]' */test_*.cpp | sed 's/\.cpp$/\\.cpp/;s|^hostile/.*|hostile/|' |
           sort -u | paste -sd'|' || true)
if [ -n "$threaded" ]; then
  tsan="-O1 -fsanitize=thread"
  configure_and_build "$build/tsan" -DCMAKE_BUILD_TYPE=None \
    -DCMAKE_CXX_COMPILER="${TOKENMIX_TSAN_CXX:-g++}" \
    -DTOKENMIX_BUILD_EXAMPLES=OFF -DTOKENMIX_INSTALL=OFF -DTOKENMIX_TEST_FILTER="$threaded" \
    -DCMAKE_CXX_FLAGS="$tsan" -DCMAKE_EXE_LINKER_FLAGS="$tsan"
  for t in "$build"/tsan/tests/tokenmix_*_tests; do
    [ -x "$t" ] || continue
    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 "$t" "[threads]"
  done
fi

stage "tokenmix: all test stages passed, sanitizers included"

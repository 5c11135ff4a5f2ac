#!/usr/bin/env bash
# Portability matrix: builds and runs tests with gcc and clang at -O2 without -march and with
# -march=x86-64-v2 / haswell / native, and for aarch64 (NEON) with g++-aarch64-linux-gnu under
# qemu-user. Each cell is one build directory under $TOKENMIX_BUILD_DIR/portability (build/).
#   scripts/portability.sh [--quick | --full] [cell...]
# Cells: gcc-O2 gcc-v2 gcc-haswell gcc-native clang-O2 clang-v2 clang-haswell clang-native
#        aarch64 (default: all). Without --full each cell builds the ISA-sensitive part of the
# suite: the core kernel tests (isa, gemm*, fft*, simd_reduce, packed_matrix) and the hostile
# area, which runs every public layer and model; --quick builds the hostile area alone (three
# files: the quickest check that every layer and model builds and behaves); --full builds
# every test. In each x86 cell the test binaries then run again with every other runtime ISA
# path the CPU has forced (TOKENMIX_ISA=scalar, avx2), so each compiler and flag set is
# checked on each kernel path; aarch64 has one path (NEON). Under qemu the two
# long-double-reference tests (gemm, complex FFT: software quad precision, hours emulated)
# are skipped; they run in every x86 cell.
# Prints a pass/fail matrix at the end (also written to portability/matrix.txt); exit status 1
# if any cell failed.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="${TOKENMIX_BUILD_DIR:-$root/build}/portability"
jobs=$(nproc 2>/dev/null || echo 2)
filter='core/test_(isa|gemm|gemm_kernels|gemm_microkernel|fft|fft_kernels|fft_plan|simd_reduce|packed_matrix)\.cpp|hostile/'
cells=()
for a in "$@"; do
  case "$a" in
    --full) filter='' ;;
    --quick) filter='hostile/' ;;
    -*) echo "usage: scripts/portability.sh [--quick | --full] [cell...]" >&2; exit 2 ;;
    *) cells+=("$a") ;;
  esac
done
[ ${#cells[@]} -eq 0 ] && cells=(gcc-O2 gcc-v2 gcc-haswell gcc-native clang-O2 clang-v2
                                 clang-haswell clang-native aarch64)

bash "$root/scripts/deps.sh" portability
mkdir -p "$out"
matrix="$out/matrix.txt"
: > "$matrix"

run_cell() {  # cell -> 0 pass, 1 build failed, 2 tests failed
  local cell=$1 dir="$out/$1" cxx flags args=()
  case "$cell" in
    gcc-*) cxx=g++ ;;
    clang-*) cxx=clang++ ;;
    aarch64) cxx=aarch64-linux-gnu-g++ ;;
    *) echo "unknown cell $cell" >&2; return 1 ;;
  esac
  case "$cell" in
    *-O2|aarch64) flags="-O2" ;;
    *-v2) flags="-O2 -march=x86-64-v2" ;;
    *-haswell) flags="-O2 -march=haswell" ;;
    *-native) flags="-O2 -march=native" ;;
  esac
  if [ "$cell" = aarch64 ]; then
    # Header-only dependencies (Eigen, nlohmann_json, Catch2) come from the host's packages;
    # the binaries run under qemu, which ctest and Catch's test discovery call through the
    # emulator property.
    args+=(-DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64
           "-DCMAKE_CROSSCOMPILING_EMULATOR=qemu-aarch64;-L;/usr/aarch64-linux-gnu")
  fi
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_CXX_FLAGS="$flags" -DTOKENMIX_BUILD_TESTS=ON -DTOKENMIX_BUILD_EXAMPLES=OFF \
    -DTOKENMIX_BUILD_BENCHMARKS=OFF -DTOKENMIX_INSTALL=OFF -DTOKENMIX_TEST_FILTER="$filter" \
    "${args[@]}" > "$dir.log" 2>&1 || return 1
  cmake --build "$dir" -j "$jobs" >> "$dir.log" 2>&1 || return 1
  local skip='^package\.'
  [ "$cell" = aarch64 ] && skip='^package\.|long-double'
  (cd "$dir" && ctest --output-on-failure -j "$jobs" -E "$skip") >> "$dir.log" 2>&1 || return 2
  [ "$cell" = aarch64 ] && return 0
  local flags_line isa t
  flags_line=$(grep -m1 '^flags' /proc/cpuinfo || true)
  for isa in scalar avx2; do
    [ $isa = avx2 ] && [[ " $flags_line " != *" avx512f "* ]] && continue
    for t in "$dir"/tests/tokenmix_*_tests; do
      echo "== TOKENMIX_ISA=$isa $t" >> "$dir.log"
      TOKENMIX_ISA=$isa "$t" >> "$dir.log" 2>&1 || return 2
    done
  done
  return 0
}

status=0
for cell in "${cells[@]}"; do
  echo "== portability: $cell"
  start=$SECONDS
  run_cell "$cell"
  rc=$?
  took=$((SECONDS - start))
  case $rc in
    0) result="pass" ;;
    1) result="FAIL (build; see $out/$cell.log)"; status=1 ;;
    *) result="FAIL (tests; see $out/$cell.log)"; status=1 ;;
  esac
  summary=$(grep -E "% tests passed" "$out/$cell.log" | tail -1)
  printf '%-14s %-40s %5d s  %s\n' "$cell" "$result" "$took" "$summary" | tee -a "$matrix"
done
echo "== portability matrix ($matrix)"
cat "$matrix"
exit $status

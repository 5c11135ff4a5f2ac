#!/usr/bin/env bash
# Builds the benchmarks in Release, runs the whole suite and writes a report folder: the JSON
# of every program, machine.txt (CPU, compiler, library versions, load), summary.md (crossovers,
# ratios to the anchors and to PyTorch) and PNG plots.
#   bench/report.sh [--quick] [--out DIR]      (DIR defaults to bench-report/)
# The full run takes about 10 minutes of benchmarks on two quiet cores (560-640 s in three
# runs on 2026-12-03), plus the first build;
# --quick runs a few shapes once each (about two minutes) for a demo. Anchors or PyTorch that
# are missing are skipped with a message. TOKENMIX_BENCH_BUILD_DIR picks the build directory.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="$root/bench-report"
quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --out) [ $# -ge 2 ] || { echo "report: --out needs a directory" >&2; exit 2; }
           out=$(realpath -m "$2"); shift ;;
    *) echo "usage: bench/report.sh [--quick] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done
build="${TOKENMIX_BENCH_BUILD_DIR:-$root/build/bench}"
jobs=$(nproc 2>/dev/null || echo 2)
python=/usr/bin/python3  # Debian's, the one python3-torch / -matplotlib install into
[ -x "$python" ] || python=python3

bash "$root/scripts/deps.sh" bench
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTOKENMIX_BUILD_BENCHMARKS=ON \
  -DTOKENMIX_BUILD_TESTS=OFF -DTOKENMIX_BUILD_EXAMPLES=OFF -DTOKENMIX_BENCH_FILTER= >/dev/null
cmake --build "$build" -j "$jobs" -- -k >/dev/null ||
  echo "report: some benchmark programs did not build; their rows are skipped"

# OpenBLAS (also the BLAS under Debian's PyTorch) does not recognise some virtualised CPUs and
# falls back to older kernels: Prescott on an "Intel(R) Xeon(R) Processor" VM (4-5x slower than
# the hardware allows), Haswell on this AMD EPYC VM (about 2x). Name the core from the CPU
# flags unless the caller did.
openblas_core="${OPENBLAS_CORETYPE:-}"
avx512=0
grep -qw avx512f /proc/cpuinfo 2>/dev/null && avx512=1
if [ -z "$openblas_core" ] && [ -r /proc/cpuinfo ]; then
  if [ $avx512 -eq 1 ]; then
    export OPENBLAS_CORETYPE=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo; then
    export OPENBLAS_CORETYPE=Haswell
  fi
fi
# A core type inherited from the caller wins, but an AVX2 one on an AVX-512 machine runs
# OpenBLAS at about half speed (a shell here exported Haswell: 96 instead of 176 GFLOP/s for a
# Linear in PyTorch, whose ViT at batch 1 took 104-109 instead of 63-73 ms); say so where the
# run's numbers are read.
openblas_warning=""
core_lower=$(printf '%s' "${OPENBLAS_CORETYPE:-}" | tr '[:upper:]' '[:lower:]')
case "$core_lower" in
  ""|skylakex|cooperlake|sapphirerapids) ;;
  *) if [ $avx512 -eq 1 ]; then
       openblas_warning="OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE came from the environment on an AVX-512 machine: OpenBLAS and PyTorch run below this CPU's speed (unset it or set SkylakeX)"
       echo "report: warning: $openblas_warning" >&2
     fi ;;
esac

mkdir -p "$out"
rm -f "$out"/*.json "$out"/*.png "$out"/summary.md "$out"/machine.txt
logs=$(mktemp -d "${TMPDIR:-/tmp}/tokenmix-report.XXXXXX")
started=$(date +%s)

# cpu = CPU seconds used so far by finished child processes (bash's `times`, which must run
# in this shell, not in a $(...) subshell). On a loaded machine the wall time grows, the CPU
# time does not, and it is about what the run takes on quiet cores.
child_cpu() {
  times >"$logs/times"
  cpu=$(awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/);
                       printf "%.0f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$logs/times")
}
child_cpu
cpu_started=$cpu
step() { t0=$(date +%s); child_cpu; c0=$cpu; }
done_line() { child_cpu; echo "report: $1 done in $(( $(date +%s) - t0 )) s ($(( cpu - c0 )) s CPU)"; }

{
  echo "# Machine and software of this run"
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "tokenmix: $(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"
  echo "mode: $([ $quick -eq 1 ] && echo quick || echo full)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo ?)"
  echo "kernel: $(uname -srm)"
  echo "compiler: $(c++ --version 2>/dev/null | head -1)"
  echo "cmake: $(cmake --version | head -1)"
  echo "memory: $(free -g 2>/dev/null | awk '/^Mem:/ {print $2 " GiB"}')"
  echo "OPENBLAS_CORETYPE: ${OPENBLAS_CORETYPE:-auto}$([ -z "$openblas_core" ] &&
    [ -n "${OPENBLAS_CORETYPE:-}" ] && echo ' (set by report.sh from the CPU flags)')"
  [ -z "$openblas_warning" ] || echo "WARNING: $openblas_warning"
  echo
  echo "## packages"
  for p in libeigen3-dev libbenchmark-dev libfftw3-dev libopenblas-dev libdnnl-dev \
           python3-torch python3-numpy python3-matplotlib; do
    echo "$p: $(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo 'not installed')"
  done
  echo
  echo "## lscpu"
  lscpu 2>/dev/null | grep -v -i '^flags' || echo "lscpu not available"
} >"$out/machine.txt"

# Every row is repeated and its median used; min_time is per repetition (CPU seconds for the
# single-thread rows). Large n rows run one call per repetition whatever min_time says.
# Repetitions of all rows run in random order, interleaved (Google Benchmark >= 1.6): the
# implementations compared in a ratio then share the machine's drift (other processes,
# clock changes) instead of one of them running through a busy stretch as a block.
if [ $quick -eq 1 ]; then
  gb=(--benchmark_repetitions=1 --benchmark_min_time=0.05 --benchmark_enable_random_interleaving=true)
  declare -A filter=(
    [gemm]='^gemm/(tokenmix|onednn|openblas|eigen)/(256x256x256|512x512x512|1024x1024x1024|196x768x384|512x3072x768)$'
    [fft]='^fft/[a-z_0-9]+/mix/(128x768|512x768|1024x1024)$'
    [layers]='^layer/(FeedForward|GMLPBlock)/[a-z_]+/512x768$'
    [attention]='/(64|128|256|512|1024|2048)x768$'
  )
  torch_gb=(--repetitions 1 --min-time 0.05)
  declare -A torch_filter=([layers]='/(FeedForward|GMLPBlock)/torch/512x768$' [attention]='/(64|256|1024)x768$')
  models_filter='^(mixer_s16_224|resmlp_12_224)/batch:1/'
  models_args=(--repetitions 2 --min-time 0.1)  # medians need two
else
  gb=(--benchmark_repetitions=3 --benchmark_report_aggregates_only=true
      --benchmark_min_time=0.1 --benchmark_enable_random_interleaving=true)
  declare -A filter=([gemm]='.' [fft]='.' [layers]='.' [attention]='.')
  torch_gb=(--repetitions 3 --min-time 0.1)
  # PyTorch's attention keeps the n x n scores of every head: at n = 8192 that is 3 GB and
  # a minute per row, so its rows stop at 4096.
  declare -A torch_filter=([layers]='.' [attention]='/(64|128|256|512|1024|2048|4096)x768$')
  models_filter='.'
  models_args=(--repetitions 3 --min-time 0.3)
fi

for program in gemm fft layers attention; do
  exe="$build/bench/tokenmix_bench_$program"
  if [ ! -x "$exe" ]; then
    echo "report: $exe not built (missing dependency?); its rows are skipped"
    continue
  fi
  step
  "$exe" --benchmark_filter="${filter[$program]}" "${gb[@]}" \
    --benchmark_out="$out/$program.json" --benchmark_out_format=json >"$logs/$program.txt" 2>&1 ||
    { echo "report: $program failed, see $logs/$program.txt"; tail -5 "$logs/$program.txt"; }
  done_line "$program"
done

# PyTorch counterparts, in the same run; each script skips itself when torch is missing.
have_torch=0
"$python" -c 'import torch' 2>/dev/null && have_torch=1
[ $have_torch -eq 1 ] || echo "report: PyTorch (python3-torch) not found; PyTorch rows skipped"
if [ $have_torch -eq 1 ]; then
  for area in layers attention; do
    step
    "$python" "$root/bench/torch_bench_$area.py" "$out/torch_bench_$area.json" "${torch_gb[@]}" \
      --filter "${torch_filter[$area]}" >"$logs/torch_$area.txt" 2>&1 ||
      { echo "report: torch_bench_$area failed, see $logs/torch_$area.txt"; }
    done_line "torch_bench_$area"
  done
fi

# Models: with PyTorch, torch_bench_models.py alternates PyTorch and tokenmix row by row so
# both see the same load; without it, the tokenmix program runs alone.
models="$build/bench/tokenmix_bench_models"
step
if [ ! -x "$models" ]; then
  echo "report: $models not built; model rows skipped"
elif [ $have_torch -eq 1 ]; then
  "$python" "$root/bench/torch_bench_models.py" --tokenmix "$models" "${models_args[@]}" \
    --filter "$models_filter" --json "$out/torch_bench_models.json" >"$logs/models.txt" 2>&1 ||
    { echo "report: torch_bench_models failed, see $logs/models.txt"; tail -5 "$logs/models.txt"; }
else
  [ $quick -eq 1 ] && mf='^models/tokenmix/(mixer_s16_224|resmlp_12_224)/batch:1' || mf='.'
  "$models" --benchmark_filter="$mf" "${gb[@]}" --benchmark_out="$out/models.json" \
    --benchmark_out_format=json >"$logs/models.txt" 2>&1 ||
    { echo "report: models failed, see $logs/models.txt"; tail -5 "$logs/models.txt"; }
fi
[ -x "$models" ] && done_line models

elapsed=$(( $(date +%s) - started ))
child_cpu
cpu=$(( cpu - cpu_started ))
{
  echo
  echo "## run"
  echo "benchmarks took: $elapsed s wall, $cpu s CPU"
  echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo ?)"
} >>"$out/machine.txt"

"$python" "$root/bench/plot_report.py" "$out"
echo "report: benchmarks took $elapsed s wall, $cpu s CPU; console logs in $logs"
echo "report: $out/summary.md"

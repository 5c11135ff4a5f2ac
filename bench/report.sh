#!/usr/bin/env bash
# Builds the benchmarks in Release, runs the whole suite and writes a report folder: the JSON
# of every program, summary.md (crossovers, ratios to the anchors and to PyTorch) and PNG plots.
#   bench/report.sh [--quick] [--out DIR]      (DIR defaults to bench-report/)
# --quick runs a few shapes with one repetition (about two minutes); the full run repeats each
# benchmark 3 times and quotes medians (about fifteen minutes on two cores).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="$root/bench-report"
quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --out) out=$(realpath -m "$2"); shift ;;
    *) echo "usage: bench/report.sh [--quick] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done
build="${TOKENMIX_BENCH_BUILD_DIR:-$root/build/bench}"
jobs=$(nproc 2>/dev/null || echo 2)

bash "$root/scripts/deps.sh" bench
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTOKENMIX_BUILD_BENCHMARKS=ON \
  -DTOKENMIX_BUILD_TESTS=OFF -DTOKENMIX_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" -j "$jobs" -- -k ||
  echo "report: some benchmark programs did not build; their rows are skipped"
mkdir -p "$out"
rm -f "$out"/*.json "$out"/*.png "$out"/summary.md

if [ $quick -eq 1 ]; then
  reps=(--benchmark_repetitions=1 --benchmark_min_time=0.05)
  declare -A filter=(
    [gemm]='gemm/(tokenmix|onednn|eigen|openblas)/(256x256x256|512x512x512|196x768x384)$'
    [fft]='fft/[a-z_0-9]+/mix/(128x768|512x768)$'
    [layers]='layer/[A-Za-z]+/tokenmix/(64|512)x768$'
    [attention]='layer/[A-Za-z]+/tokenmix/(64|128|256|512|1024|2048)x768$'
    [models]='model/(mixer_s16_224|fnet-base)/tokenmix/.*batch:1$'
  )
  torch_filter='/(64|512)x768$'
else
  reps=(--benchmark_repetitions=3 --benchmark_report_aggregates_only=true)
  declare -A filter=([gemm]='.' [fft]='.' [layers]='.' [attention]='.' [models]='.')
  torch_filter='.'
fi

for program in gemm fft layers attention models; do
  exe="$build/bench/tokenmix_bench_$program"
  if [ ! -x "$exe" ]; then
    echo "report: $exe not built (missing dependency?); skipped"
    continue
  fi
  echo "== $program"
  "$exe" --benchmark_filter="${filter[$program]}" "${reps[@]}" \
    --benchmark_out="$out/$program.json" --benchmark_out_format=json >"$out/$program.txt" 2>&1 ||
    { echo "report: $program failed, see $out/$program.txt"; tail -5 "$out/$program.txt"; }
done

# PyTorch counterparts, in the same run; each script skips itself when torch is missing.
python=/usr/bin/python3
[ -x "$python" ] || python=python3
for script in torch_bench_layers torch_bench_attention torch_bench_models; do
  [ -f "$root/bench/$script.py" ] || continue
  echo "== $script"
  args=("$out/$script.json" --filter "$torch_filter")
  [ $quick -eq 1 ] && args+=(--repetitions 1)
  "$python" "$root/bench/$script.py" "${args[@]}" || echo "report: $script failed"
done

"$python" "$root/bench/plot_report.py" "$out"
echo "report: $out/summary.md"

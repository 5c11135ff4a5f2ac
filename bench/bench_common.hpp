#pragma once
// Shared helpers for the tokenmix benchmark programs:
//  - the machine's FMA peak, measured in the same binary by a register-only FMA loop with
//    runtime ISA dispatch (no -march needed), so "%peak" compares like with like;
//  - benchmark names as a parsable hierarchy: <area>/<impl>/<shape>[/threads:N];
//  - counters GFLOPS and %peak, and notes about the anchors in the JSON context.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <ctime>
#include <cstdint>
#include <string>
#include <type_traits>

#include "tokenmix/core/gemm_kernels.hpp"
#include "tokenmix/core/isa.hpp"
#include "tokenmix/core/tensor.hpp"

namespace tokenmix_bench {

using tokenmix::Index;

namespace detail {

// Independent accumulator chains: more than FMA latency (4) x FMA ports (2), so the loop is
// bound by FMA throughput alone. Returns flops per call.
constexpr int peak_chains = 12;

// The loop is written once over the library's GEMM vector traits (set1, fmadd, add, width)
// and stamped per ISA by this macro, because the target attribute is what differs: a template
// without it could not inline the AVX intrinsics.
#define TOKENMIX_BENCH_FMA_CHAINS(name, target)                                          \
  template <class V>                                                                    \
  target double name(std::int64_t iters) {                                              \
    using T = typename V::T;                                                            \
    typename V::reg acc[peak_chains];                                                   \
    for (int c = 0; c < peak_chains; ++c) acc[c] = V::set1(T(0.001) * T(c));            \
    const typename V::reg x = V::set1(T(0.999)), y = V::set1(T(0.0001));                \
    for (std::int64_t i = 0; i < iters; ++i) {                                          \
      _Pragma("GCC unroll 16") for (int c = 0; c < peak_chains; ++c) acc[c] =           \
          V::fmadd(acc[c], x, y);                                                       \
    }                                                                                   \
    typename V::reg sum = acc[0];                                                       \
    for (int c = 1; c < peak_chains; ++c) sum = V::add(sum, acc[c]);                    \
    benchmark::DoNotOptimize(sum);                                                      \
    return double(iters) * peak_chains * V::width * 2;                                  \
  }

TOKENMIX_BENCH_FMA_CHAINS(fma_chains_scalar, )
#if defined(TOKENMIX_HAVE_X86_DISPATCH)
TOKENMIX_BENCH_FMA_CHAINS(fma_chains_avx512, TOKENMIX_TARGET_AVX512)
TOKENMIX_BENCH_FMA_CHAINS(fma_chains_avx2, TOKENMIX_TARGET_AVX2)
#endif
#undef TOKENMIX_BENCH_FMA_CHAINS

inline double fma_loop(bool single, std::int64_t iters) {
  switch (tokenmix::active_isa()) {
#if defined(TOKENMIX_HAVE_X86_DISPATCH)
    case tokenmix::Isa::avx512:
      return single ? fma_chains_avx512<tokenmix::detail::Avx512F32>(iters)
                    : fma_chains_avx512<tokenmix::detail::Avx512F64>(iters);
    case tokenmix::Isa::avx2:
      return single ? fma_chains_avx2<tokenmix::detail::Avx2F32>(iters)
                    : fma_chains_avx2<tokenmix::detail::Avx2F64>(iters);
#endif
    default:
      return single ? fma_chains_scalar<tokenmix::detail::ScalarVec<float>>(iters)
                    : fma_chains_scalar<tokenmix::detail::ScalarVec<double>>(iters);
  }
}

// CPU time of the calling thread: on a shared machine, wall time would count the time other
// processes held the core.
inline double thread_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

inline double measure_peak_gflops(bool single) {
  // Median of 12 runs of >= 10 ms thread CPU time each. The GEMM rows are rates averaged
  // over many calls and reported as the median over repetitions, so the peak they are
  // divided by must be the same statistic (a best-of peak sits above the typical rate).
  double rates[12];
  std::int64_t iters = 1 << 16;
  for (int run = 0; run < 12; ++run) {
    const double t0 = thread_seconds();
    const double flops = fma_loop(single, iters);
    const double s = thread_seconds() - t0;
    if (s < 0.01) {
      iters *= 2;
      --run;
      continue;
    }
    rates[run] = flops / s * 1e-9;
  }
  std::sort(rates, rates + 12);
  return (rates[5] + rates[6]) / 2;
}

}  // namespace detail

// Single-core FMA peak in GFLOP/s for T on the active ISA, measured once per process.
template <class T>
double peak_gflops() {
  static const double peak = detail::measure_peak_gflops(std::is_same<T, float>::value);
  return peak;
}

// The FMA peak measured again now, or the start-up one where that is higher. A row that runs
// for seconds can find the core at another clock than the ~0.1 s measured at start-up (a
// model row once came out at 102% of the start-up peak); dividing by the higher of the two
// keeps a fraction of peak from overstating. Costs ~0.15 s, so call it outside timed loops.
template <class T>
double peak_gflops_rechecked() {
  return std::max(peak_gflops<T>(),
                  detail::measure_peak_gflops(std::is_same<T, float>::value));
}

inline std::string shape_name(Index m, Index n, Index k) {
  return std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k);
}

// "<area>/<impl>/<shape>", plus "/threads:N" when N > 1.
inline std::string bench_name(const std::string& area, const std::string& impl,
                              const std::string& shape, int threads = 1) {
  std::string name = area + "/" + impl + "/" + shape;
  if (threads > 1) name += "/threads:" + std::to_string(threads);
  return name;
}

// GFLOPS and %peak (against `threads` cores at the single-core peak) as rate counters. Rates
// follow the benchmark's timer: single-thread rows should keep Google Benchmark's default
// (CPU time of the benchmark thread, robust to other processes on a shared machine),
// multi-thread rows need UseRealTime().
template <class T>
void set_flop_counters(benchmark::State& state, double flops_per_iteration, int threads = 1) {
  state.counters["GFLOPS"] =
      benchmark::Counter(flops_per_iteration * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["%peak"] = benchmark::Counter(
      flops_per_iteration * 1e-9 * 100.0 / (peak_gflops<T>() * threads),
      benchmark::Counter::kIsIterationInvariantRate);
}

// Rows "peak/fma/f32" and "peak/fma/f64": the FMA loop timed like any benchmark row, so
// a run shows the peak next to the GEMM rows under the same repetitions and aggregates.
inline void register_peak_benchmarks() {
  for (bool single : {true, false})
    benchmark::RegisterBenchmark(single ? "peak/fma/f32" : "peak/fma/f64",
                                 [single](benchmark::State& state) {
                                   double flops = 0;
                                   for (auto _ : state) flops = detail::fma_loop(single, 1 << 16);
                                   state.counters["GFLOPS"] = benchmark::Counter(
                                       flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
                                 });
}

// Records the peak and ISA in the JSON "context" block; call before RunSpecifiedBenchmarks.
inline void add_common_context() {
  benchmark::AddCustomContext("tokenmix_isa", tokenmix::isa_name(tokenmix::active_isa()));
  benchmark::AddCustomContext("fma_peak_gflops_f32_1core", std::to_string(peak_gflops<float>()));
  benchmark::AddCustomContext("fma_peak_gflops_f64_1core", std::to_string(peak_gflops<double>()));
  benchmark::AddCustomContext(
      "anchor_notes",
      "eigen = Eigen 3.4 compiled with -march=native (bench/anchors); openblas = cblas via "
      "openblas_set_num_threads; onednn = dnnl_sgemm with OpenMP threads set per row; "
      "tokenmix compiled without -march (runtime dispatch)");
}

}  // namespace tokenmix_bench

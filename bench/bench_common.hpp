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

#include "tokenmix/core/isa.hpp"
#include "tokenmix/core/tensor.hpp"

#if defined(TOKENMIX_HAVE_X86_DISPATCH)
#include <immintrin.h>
#endif

namespace tokenmix_bench {

using tokenmix::Index;

namespace detail {

// Independent accumulator chains: more than FMA latency (4) x FMA ports (2), so the loop is
// bound by FMA throughput alone. Returns flops per call.
constexpr int peak_chains = 12;

#if defined(TOKENMIX_HAVE_X86_DISPATCH)
TOKENMIX_TARGET_AVX512 inline double fma_loop_avx512(bool single, std::int64_t iters) {
  if (single) {
    __m512 acc[peak_chains];
    for (int c = 0; c < peak_chains; ++c) acc[c] = _mm512_set1_ps(0.001f * float(c));
    const __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(0.0001f);
    for (std::int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
      for (int c = 0; c < peak_chains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], x, y);
    }
    __m512 sum = acc[0];
    for (int c = 1; c < peak_chains; ++c) sum = _mm512_add_ps(sum, acc[c]);
    benchmark::DoNotOptimize(sum);
    return double(iters) * peak_chains * 16 * 2;
  }
  __m512d acc[peak_chains];
  for (int c = 0; c < peak_chains; ++c) acc[c] = _mm512_set1_pd(0.001 * c);
  const __m512d x = _mm512_set1_pd(0.999), y = _mm512_set1_pd(0.0001);
  for (std::int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int c = 0; c < peak_chains; ++c) acc[c] = _mm512_fmadd_pd(acc[c], x, y);
  }
  __m512d sum = acc[0];
  for (int c = 1; c < peak_chains; ++c) sum = _mm512_add_pd(sum, acc[c]);
  benchmark::DoNotOptimize(sum);
  return double(iters) * peak_chains * 8 * 2;
}

TOKENMIX_TARGET_AVX2 inline double fma_loop_avx2(bool single, std::int64_t iters) {
  if (single) {
    __m256 acc[peak_chains];
    for (int c = 0; c < peak_chains; ++c) acc[c] = _mm256_set1_ps(0.001f * float(c));
    const __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(0.0001f);
    for (std::int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
      for (int c = 0; c < peak_chains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], x, y);
    }
    __m256 sum = acc[0];
    for (int c = 1; c < peak_chains; ++c) sum = _mm256_add_ps(sum, acc[c]);
    benchmark::DoNotOptimize(sum);
    return double(iters) * peak_chains * 8 * 2;
  }
  __m256d acc[peak_chains];
  for (int c = 0; c < peak_chains; ++c) acc[c] = _mm256_set1_pd(0.001 * c);
  const __m256d x = _mm256_set1_pd(0.999), y = _mm256_set1_pd(0.0001);
  for (std::int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int c = 0; c < peak_chains; ++c) acc[c] = _mm256_fmadd_pd(acc[c], x, y);
  }
  __m256d sum = acc[0];
  for (int c = 1; c < peak_chains; ++c) sum = _mm256_add_pd(sum, acc[c]);
  benchmark::DoNotOptimize(sum);
  return double(iters) * peak_chains * 4 * 2;
}
#endif

template <class T>
double fma_loop_scalar(std::int64_t iters) {
  T acc[peak_chains];
  for (int c = 0; c < peak_chains; ++c) acc[c] = T(0.001) * T(c);
  const T x = T(0.999), y = T(0.0001);
  for (std::int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int c = 0; c < peak_chains; ++c) acc[c] = acc[c] * x + y;
  }
  T sum = 0;
  for (int c = 0; c < peak_chains; ++c) sum += acc[c];
  benchmark::DoNotOptimize(sum);
  return double(iters) * peak_chains * 2;
}

inline double fma_loop(bool single, std::int64_t iters) {
  switch (tokenmix::active_isa()) {
#if defined(TOKENMIX_HAVE_X86_DISPATCH)
    case tokenmix::Isa::avx512: return fma_loop_avx512(single, iters);
    case tokenmix::Isa::avx2: return fma_loop_avx2(single, iters);
#endif
    default: return single ? fma_loop_scalar<float>(iters) : fma_loop_scalar<double>(iters);
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
  // Best of several >= 10 ms runs of thread CPU time: the best run is the hardware's.
  double best = 0;
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
    best = std::max(best, flops / s * 1e-9);
  }
  return best;
}

}  // namespace detail

// Single-core FMA peak in GFLOP/s for T on the active ISA, measured once per process.
template <class T>
double peak_gflops() {
  static const double peak = detail::measure_peak_gflops(std::is_same<T, float>::value);
  return peak;
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

// GEMM benchmarks: tokenmix against Eigen (-march=native), OpenBLAS and oneDNN, single
// thread and two threads, on the shapes of PERF.md and of the models tokenmix serves.
// Names: gemm/<impl>/<M>x<N>x<K>[/threads:2]; counters GFLOPS and %peak.
//   tokenmix_bench_gemm --benchmark_repetitions=3 --benchmark_report_aggregates_only=true

#include <benchmark/benchmark.h>
#include <dlfcn.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "tokenmix/core/gemm.hpp"

#if __has_include("anchors/eigen_native.hpp")
#include "anchors/eigen_native.hpp"
#define TOKENMIX_BENCH_HAVE_EIGEN_NATIVE 1
#endif
#if defined(TOKENMIX_HAVE_OPENBLAS)
#include <cblas.h>
#endif
#if defined(TOKENMIX_HAVE_DNNL)
#include <oneapi/dnnl/dnnl.h>
#endif

namespace {

using tokenmix::Index;
using tokenmix_bench::bench_name;
using tokenmix_bench::set_flop_counters;
using tokenmix_bench::shape_name;

struct Shape {
  Index m, n, k;
};

// PERF.md's table, then model shapes: Mixer-S/16 (196 tokens x 512 channels, hidden 256 and
// 2048), gMLP-S (d 256, hidden 1536, SGU 768 x 196 x 196), FNet-base (512 tokens x 768,
// 3072), and token mixing W(n x n) X(n x 768).
std::vector<Shape> shapes() {
  std::vector<Shape> s = {{256, 256, 256},  {512, 512, 512},   {1024, 1024, 1024},
                          {2048, 2048, 2048}, {256, 768, 768}, {196, 768, 384},
                          {512, 1536, 256}, {4096, 64, 64},
                          {196, 2048, 512}, {196, 512, 2048},  {512, 256, 196}, {512, 196, 256},
                          {196, 1536, 256}, {196, 256, 768},   {768, 196, 196},
                          {512, 3072, 768}, {512, 768, 3072}};
  for (Index n : {64, 128, 256, 512, 1024, 2048}) s.push_back({n, 768, n});
  return s;
}

struct Operands {
  std::vector<float> a, b, c;
  explicit Operands(const Shape& s) : a(s.m * s.k), b(s.k * s.n), c(s.m * s.n) {
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (auto& v : a) v = dist(rng);
    for (auto& v : b) v = dist(rng);
  }
};

double flops(const Shape& s) { return 2.0 * double(s.m) * double(s.n) * double(s.k); }

void set_omp_threads(int threads) {
  // oneDNN runs on libgomp; reach omp_set_num_threads without linking OpenMP ourselves.
  using Fn = void (*)(int);
  static const Fn fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  if (fn) fn(threads);
}

// Single-thread rows are timed by the benchmark thread's CPU time (Google Benchmark's
// default), which other processes on a shared machine do not inflate; two-thread rows need
// wall time.
void timing(int threads, benchmark::internal::Benchmark* b) {
  if (threads > 1) b->UseRealTime();
}

void register_shape(const Shape& s, const char* group = "gemm") {
  const std::string shape = shape_name(s.m, s.n, s.k);
  for (int threads : {1, 2}) {
    if (threads > tokenmix::hardware_threads()) continue;
    timing(threads, benchmark::RegisterBenchmark(
        bench_name(group, "tokenmix", shape, threads).c_str(),
        [s, threads](benchmark::State& state) {
          Operands o(s);
          for (auto _ : state) {
            tokenmix::gemm<float>(tokenmix::Trans::N, tokenmix::Trans::N, s.m, s.n, s.k, 1.0f,
                                  o.a.data(), s.k, o.b.data(), s.n, 0.0f, o.c.data(), s.n, {},
                                  threads);
            benchmark::DoNotOptimize(o.c.data());
          }
          set_flop_counters<float>(state, flops(s), threads);
        }));
#if defined(TOKENMIX_HAVE_DNNL)
    timing(threads, benchmark::RegisterBenchmark(
        bench_name(group, "onednn", shape, threads).c_str(),
        [s, threads](benchmark::State& state) {
          Operands o(s);
          set_omp_threads(threads);
          for (auto _ : state) {
            dnnl_sgemm('N', 'N', s.m, s.n, s.k, 1.0f, o.a.data(), s.k, o.b.data(), s.n, 0.0f,
                       o.c.data(), s.n);
            benchmark::DoNotOptimize(o.c.data());
          }
          set_flop_counters<float>(state, flops(s), threads);
        }));
#endif
#if defined(TOKENMIX_HAVE_OPENBLAS)
    timing(threads, benchmark::RegisterBenchmark(
        bench_name(group, "openblas", shape, threads).c_str(),
        [s, threads](benchmark::State& state) {
          Operands o(s);
          openblas_set_num_threads(threads);
          for (auto _ : state) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s.m, s.n, s.k, 1.0f,
                        o.a.data(), s.k, o.b.data(), s.n, 0.0f, o.c.data(), s.n);
            benchmark::DoNotOptimize(o.c.data());
          }
          set_flop_counters<float>(state, flops(s), threads);
        }));
#endif
#if defined(TOKENMIX_BENCH_HAVE_EIGEN_NATIVE)
    if (threads == 1)  // Eigen parallelises only with OpenMP, which the anchor is built without
      benchmark::RegisterBenchmark(bench_name(group, "eigen", shape).c_str(),
                                   [s](benchmark::State& state) {
                                     Operands o(s);
                                     for (auto _ : state) {
                                       tokenmix_bench::eigen_native_gemm(
                                           s.m, s.n, s.k, o.a.data(), o.b.data(), o.c.data());
                                       benchmark::DoNotOptimize(o.c.data());
                                     }
                                     set_flop_counters<float>(state, flops(s));
                                   });
#endif
  }
}

// Linear + bias + GELU(erf): y = gelu(x W^T + b) with W packed at load, fused in the GEMM
// epilogue versus a GEMM followed by a separate bias + GELU pass over y.
void register_linear_gelu(const Shape& s) {
  const std::string shape = shape_name(s.m, s.n, s.k);
  for (bool fused : {true, false})
    benchmark::RegisterBenchmark(
        bench_name("gemm_linear_gelu", fused ? "tokenmix_fused" : "tokenmix_unfused", shape)
            .c_str(),
        [s, fused](benchmark::State& state) {
          Operands o(s);  // b holds W as [n, k] (PyTorch layout)
          std::vector<float> bias(s.n, 0.1f);
          const auto w = tokenmix::pack_b<float>(tokenmix::Trans::T, s.k, s.n, o.b.data(), s.k);
          tokenmix::Epilogue<float> e;
          e.col_bias = bias.data();
          e.act = tokenmix::Activation::gelu_erf;
          for (auto _ : state) {
            if (fused) {
              tokenmix::gemm_packed<float>(tokenmix::Trans::N, s.m, o.a.data(), s.k, w, 0.0f,
                                           o.c.data(), s.n, e, 1);
            } else {
              tokenmix::gemm_packed<float>(tokenmix::Trans::N, s.m, o.a.data(), s.k, w, 0.0f,
                                           o.c.data(), s.n, {}, 1);
              for (Index i = 0; i < s.m; ++i)
                for (Index j = 0; j < s.n; ++j) {
                  const float x = o.c[i * s.n + j] + bias[j];
                  o.c[i * s.n + j] = 0.5f * x * std::erfc(-x * 0.70710678f);
                }
            }
            benchmark::DoNotOptimize(o.c.data());
          }
          set_flop_counters<float>(state, flops(s));
        });
}

}  // namespace

int main(int argc, char** argv) {
  for (const Shape& s : shapes()) register_shape(s);
  // Few rows of C over a row-major B read in place (short sequences, batch 1): not among the
  // shapes the headline median is taken over, hence a group of their own.
  for (const Shape& s : {Shape{1, 768, 768}, Shape{4, 768, 768}, Shape{4, 3072, 768},
                         Shape{16, 512, 512}, Shape{30, 3072, 768}, Shape{56, 3072, 768}})
    register_shape(s, "gemm_few_rows");
  for (const Shape& s : {Shape{196, 2048, 512}, Shape{196, 1536, 256}, Shape{512, 3072, 768}})
    register_linear_gelu(s);
  tokenmix_bench::register_peak_benchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  tokenmix_bench::add_common_context();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

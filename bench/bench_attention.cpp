// Attention-style token mixers, one thread, fp32: SelfAttention (tiled online softmax),
// ExternalAttention, SynthesizerRandom, SynthesizerDense, at d in {256, 768} and n from 64 to
// 8192. Names: layer/<Layer>/tokenmix/<n>x<d>; bench/torch_bench_attention.py writes the same
// names with "torch" for PyTorch 1.13's modules, so the two JSON files join on the name.
//
// Counters: GFLOPS (multiply-adds x 2 of the layer's products, exps not counted) and
// peak_heap_bytes: the largest number of heap bytes the layer held at once beyond what was
// live before, during one COLD forward (first call on a fresh thread, so the scratch arena
// grows from nothing), with input, output and parameters allocated beforehand. It is measured
// by replacing malloc & co. in this program (every allocation path, Eigen's, operator new's
// and the scratch arena's aligned_alloc, ends there), not estimated.
//
//   tokenmix_bench_attention --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

#include <benchmark/benchmark.h>
#include <malloc.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>

#include "tokenmix/core/random.hpp"
#include "tokenmix/core/threads.hpp"
#include "tokenmix/layers/external_attention.hpp"
#include "tokenmix/layers/self_attention.hpp"
#include "tokenmix/layers/synthesizer_dense.hpp"
#include "tokenmix/layers/synthesizer_random.hpp"

// ---------------------------------------------------------------------------------------------
// Heap accounting: glibc lets a program replace the malloc family; each replacement forwards
// to glibc's own implementation and records the usable size of every block.
// ---------------------------------------------------------------------------------------------
namespace heap {
std::atomic<long long> live{0};
std::atomic<long long> peak{0};

inline void note_alloc(void* p) {
  if (p == nullptr) return;
  const long long now = live.fetch_add(static_cast<long long>(malloc_usable_size(p)),
                                       std::memory_order_relaxed) +
                        static_cast<long long>(malloc_usable_size(p));
  long long seen = peak.load(std::memory_order_relaxed);
  while (now > seen && !peak.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
  }
}
inline void note_free(void* p) {
  if (p != nullptr)
    live.fetch_sub(static_cast<long long>(malloc_usable_size(p)), std::memory_order_relaxed);
}

// Peak bytes above the level live when `f` starts.
template <class F>
long long peak_during(F&& f) {
  const long long base = live.load();
  peak.store(base);
  f();
  return peak.load() - base;
}
}  // namespace heap

extern "C" {
void* __libc_malloc(std::size_t);
void __libc_free(void*);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void* __libc_valloc(std::size_t);
void* __libc_pvalloc(std::size_t);

void* malloc(std::size_t n) {
  void* p = __libc_malloc(n);
  heap::note_alloc(p);
  return p;
}
void free(void* p) {
  heap::note_free(p);
  __libc_free(p);
}
void* calloc(std::size_t count, std::size_t size) {
  void* p = __libc_calloc(count, size);
  heap::note_alloc(p);
  return p;
}
void* realloc(void* old, std::size_t n) {
  const long long before = old ? static_cast<long long>(malloc_usable_size(old)) : 0;
  void* p = __libc_realloc(old, n);
  if (p != nullptr || n == 0) {
    heap::live.fetch_sub(before, std::memory_order_relaxed);
    heap::note_alloc(p);
  }
  return p;
}
void* memalign(std::size_t alignment, std::size_t n) {
  void* p = __libc_memalign(alignment, n);
  heap::note_alloc(p);
  return p;
}
void* aligned_alloc(std::size_t alignment, std::size_t n) { return memalign(alignment, n); }
int posix_memalign(void** out, std::size_t alignment, std::size_t n) {
  void* p = __libc_memalign(alignment, n);
  if (p == nullptr) return 12;  // ENOMEM
  heap::note_alloc(p);
  *out = p;
  return 0;
}
void* valloc(std::size_t n) {
  void* p = __libc_valloc(n);
  heap::note_alloc(p);
  return p;
}
void* pvalloc(std::size_t n) {
  void* p = __libc_pvalloc(n);
  heap::note_alloc(p);
  return p;
}
}  // extern "C"

namespace {

using tokenmix::Index;
using tokenmix::Matrix;

template <class Layer>
void run(benchmark::State& state, const Layer& layer, Index n, Index d, double flops) {
  tokenmix::ScopedThreads one(1);
  Matrix<float> x(n, d), y(n, d);
  tokenmix::Random(1).fill_normal(x, 0.0, 1.0);
  long long cold_peak = 0;
  std::thread([&] {
    tokenmix::ScopedThreads single(1);
    cold_peak = heap::peak_during([&] { layer.forward(x, n, y); });
  }).join();
  for (auto _ : state) {
    layer.forward(x, n, y);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOPS"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_heap_bytes"] = static_cast<double>(cold_peak);
}

std::string name_of(const char* layer, Index n, Index d) {
  return std::string("layer/") + layer + "/tokenmix/" + std::to_string(n) + "x" +
         std::to_string(d);
}

void register_all() {
  const Index lengths[] = {64, 128, 256, 512, 1024, 2048, 4096, 8192};
  for (Index d : {Index(256), Index(768)}) {
    for (Index n : lengths) {
      const double nd = static_cast<double>(n) * static_cast<double>(d);
      // SelfAttention: QKV and out projections 8nd^2, QK^T and PV 4n^2 d.
      if (d == 256 || n <= 4096) {
        benchmark::RegisterBenchmark(name_of("SelfAttention", n, d).c_str(),
                                     [=](benchmark::State& s) {
                                       tokenmix::SelfAttention<float> layer(
                                           {d, d == 256 ? 8 : 12, false});
                                       layer.init_random(1);
                                       run(s, layer, n, d, 8.0 * nd * d + 4.0 * nd * n);
                                     })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
      // ExternalAttention, S = 64: two products of 2ndS.
      benchmark::RegisterBenchmark(name_of("ExternalAttention", n, d).c_str(),
                                   [=](benchmark::State& s) {
                                     tokenmix::ExternalAttention<float> layer({d, 64, 1});
                                     layer.init_random(1);
                                     run(s, layer, n, d, 4.0 * nd * 64);
                                   })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
      // SynthesizerRandom (1 head): value and out 4nd^2, A V 2n^2 d. R is n^2 parameters.
      if (n <= 4096) {
        benchmark::RegisterBenchmark(name_of("SynthesizerRandom", n, d).c_str(),
                                     [=](benchmark::State& s) {
                                       tokenmix::SynthesizerRandom<float> layer({n, d, 1, 0, false});
                                       layer.init_random(1);
                                       run(s, layer, n, d, 4.0 * nd * d + 2.0 * nd * n);
                                     })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
      // SynthesizerDense (1 head): dense1, value, out 6nd^2; dense2 and A V 4n^2 d. Its
      // h*N-wide dense2 makes it quadratic in parameters and memory: stop at 2048.
      if (n <= 2048) {
        benchmark::RegisterBenchmark(name_of("SynthesizerDense", n, d).c_str(),
                                     [=](benchmark::State& s) {
                                       tokenmix::SynthesizerDense<float> layer({n, d, 1, false});
                                       layer.init_random(1);
                                       run(s, layer, n, d, 6.0 * nd * d + 4.0 * nd * n);
                                     })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

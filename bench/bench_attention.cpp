// Every token mixer against self-attention over the sequence length: one thread, fp32, one
// sequence of n tokens (n = 64 .. 8192) at d = 768, the data of the report's plots 1 and 2 and
// of its crossover table. Mixers: MLP-Mixer's token MLP, gMLP's SpatialGatingUnit, FNet's
// FourierMixer, ExternalAttention (S = 64), SynthesizerRandom and SynthesizerDense (one head)
// and SelfAttention (12 heads, tiled online softmax, with its Q/K/V/output projections).
// Names: layer/<Layer>/tokenmix/<n>x<d>; bench/torch_bench_attention.py writes the same names
// with "torch" for PyTorch 1.13's modules, so the two JSON files join on the name.
//
// Counters: GFLOPS (multiply-adds x 2 of the layer's products, exps not counted; none for the
// FFT) and two heap peaks, measured by replacing malloc & co. in this program (every
// allocation path, Eigen's, operator new's and the scratch arena's aligned_alloc, ends there),
// not estimated:
//   peak_heap_bytes   working memory: the most heap the layer held at once beyond what was
//                     live before, during one COLD forward (first call on a fresh thread, so
//                     the scratch arena grows from nothing), input, output and parameters
//                     allocated beforehand;
//   total_heap_bytes  the most heap live at once from before the layer was built through that
//                     cold forward: parameters + input + output + working memory, i.e. what
//                     running this one configuration needs.
//
//   tokenmix_bench_attention --benchmark_repetitions=3 --benchmark_report_aggregates_only=true

#include <benchmark/benchmark.h>
#include <malloc.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "bench_common.hpp"
#include "tokenmix/core/gemm.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/core/threads.hpp"
#include "tokenmix/core/workspace.hpp"
#include "tokenmix/layers/external_attention.hpp"
#include "tokenmix/layers/feed_forward.hpp"
#include "tokenmix/layers/fourier_mixer.hpp"
#include "tokenmix/layers/layer_norm.hpp"
#include "tokenmix/layers/self_attention.hpp"
#include "tokenmix/layers/spatial_gating_unit.hpp"
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

// MLP-Mixer's token-mixing sublayer alone, Y = X + W2 GELU(W1 LN(X) + b1) + b2 over tokens:
// the first half of MLPMixerBlock::forward with the block's own members and GEMM calls, so
// this row times the mixer without the block's channel MLP, as the other rows time theirs.
struct MixerTokenMlp {
  tokenmix::LayerNorm<float> norm;
  tokenmix::FeedForward<float> mlp;  // fc1 [Ds, N], fc2 [N, Ds]

  MixerTokenMlp(Index n, Index d) : norm({d, 1e-6}), mlp({n, d / 2, n}) {}
  void init_random(std::uint64_t seed) {
    tokenmix::Random rng(seed);
    norm.init_random(rng);
    mlp.init_timm(rng);
  }
  void forward(const Matrix<float>& x, Index n, Matrix<float>& y) const {
    using tokenmix::Trans;
    const Index d = x.cols(), ds = mlp.fc1.weight.rows();
    tokenmix::ScratchFrame frame;
    float* xn = frame.take<float>(static_cast<std::size_t>(n * d));
    float* h = frame.take<float>(static_cast<std::size_t>(ds * d));
    norm.forward(n, x.data(), d, xn, d);
    tokenmix::Epilogue<float> e1;
    e1.row_bias = mlp.fc1.bias.data();
    e1.act = mlp.config().act;
    tokenmix::gemm<float>(Trans::N, Trans::N, ds, d, n, 1.0f, mlp.fc1.weight.data(), n, xn, d,
                          0.0f, h, d, e1);
    tokenmix::Epilogue<float> e2;
    e2.row_bias = mlp.fc2.bias.data();
    e2.residual = x.data();
    e2.ld_residual = d;
    tokenmix::gemm<float>(Trans::N, Trans::N, n, d, ds, 1.0f, mlp.fc2.weight.data(), ds, h, d,
                          0.0f, y.data(), d, e2);
  }
};

// The FourierMixer has no parameters; this gives it the interface of the other layers.
struct Fourier {
  tokenmix::FourierMixer<float> mixer{{tokenmix::FourierMethod::automatic, 1}};
  void init_random(std::uint64_t) {}
  void forward(const Matrix<float>& x, Index n, Matrix<float>& y) const { mixer.forward(x, n, y); }
};

// One benchmark row: builds the layer (input `in_cols` wide, output d wide) on a fresh thread
// under the heap counters, runs its cold forward there, then times warm forwards.
template <class Layer>
void run(benchmark::State& state, const std::function<std::unique_ptr<Layer>()>& make, Index n,
         Index in_cols, Index d, double flops) {
  std::unique_ptr<Layer> layer;
  Matrix<float> x, y;
  long long built = 0, working = 0, total = 0;
  std::thread([&] {
    tokenmix::ScopedThreads single(1);
    const long long base = heap::live.load();
    built = heap::peak_during([&] {
      layer = make();
      layer->init_random(1);
      x.resize(n, in_cols);
      tokenmix::Random(1).fill_normal(x, 0.0, 1.0);
      y.resize(n, d);
    });
    const long long held = heap::live.load() - base;  // parameters, input, output
    working = heap::peak_during([&] { layer->forward(x, n, y); });
    total = std::max(built, held + working);
  }).join();
  tokenmix::ScopedThreads one(1);
  layer->forward(x, n, y);  // warm this thread's scratch arena
  for (auto _ : state) {
    layer->forward(x, n, y);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  if (flops > 0) tokenmix_bench::set_flop_counters<float>(state, flops);
  state.counters["peak_heap_bytes"] = static_cast<double>(working);
  state.counters["total_heap_bytes"] = static_cast<double>(total);
}

template <class Layer>
void add(const char* name, Index n, Index d, Index in_cols, double flops,
         std::function<std::unique_ptr<Layer>()> make) {
  benchmark::RegisterBenchmark(
      tokenmix_bench::bench_name(std::string("layer/") + name, "tokenmix",
                                 std::to_string(n) + "x" + std::to_string(d))
          .c_str(),
      [=](benchmark::State& state) { run<Layer>(state, make, n, in_cols, d, flops); })
      ->Unit(benchmark::kMillisecond);
}

void register_all(Index d) {
  using std::make_unique;
  for (Index n = 64; n <= 8192; n *= 2) {
    const double nd = static_cast<double>(n) * static_cast<double>(d);
    const double nn = static_cast<double>(n);
    // Token MLP: two products of 2 n (d/2) d.
    add<MixerTokenMlp>("MixerTokenMLP", n, d, d, 2.0 * nd * d,
                       [=] { return make_unique<MixerTokenMlp>(n, d); });
    // SGU: input 2d wide (gMLP's SGU sees the doubled width), one n x n x d product.
    add<tokenmix::SpatialGatingUnit<float>>(
        "SpatialGatingUnit", n, d, 2 * d, 2.0 * nd * nn,
        [=] { return make_unique<tokenmix::SpatialGatingUnit<float>>(
                  typename tokenmix::SpatialGatingUnit<float>::Config{n, 2 * d}); });
    add<Fourier>("FourierMixer", n, d, d, 0, [] { return make_unique<Fourier>(); });
    // ExternalAttention, S = 64: two products of 2ndS.
    add<tokenmix::ExternalAttention<float>>(
        "ExternalAttention", n, d, d, 4.0 * nd * 64,
        [=] { return make_unique<tokenmix::ExternalAttention<float>>(
                  typename tokenmix::ExternalAttention<float>::Config{d, 64, 1}); });
    // SynthesizerRandom (1 head): value and out 4nd^2, A V 2n^2 d. R is n^2 parameters.
    add<tokenmix::SynthesizerRandom<float>>(
        "SynthesizerRandom", n, d, d, 4.0 * nd * d + 2.0 * nd * nn,
        [=] { return make_unique<tokenmix::SynthesizerRandom<float>>(
                  typename tokenmix::SynthesizerRandom<float>::Config{n, d, 1, 0, false}); });
    // SynthesizerDense (1 head): dense1, value, out 6nd^2; dense2 and A V 4n^2 d.
    add<tokenmix::SynthesizerDense<float>>(
        "SynthesizerDense", n, d, d, 6.0 * nd * d + 4.0 * nd * nn,
        [=] { return make_unique<tokenmix::SynthesizerDense<float>>(
                  typename tokenmix::SynthesizerDense<float>::Config{n, d, 1, false}); });
    // SelfAttention (12 heads): Q, K, V and output projections 8nd^2, QK^T and PV 4n^2 d.
    add<tokenmix::SelfAttention<float>>(
        "SelfAttention", n, d, d, 8.0 * nd * d + 4.0 * nd * nn,
        [=] { return make_unique<tokenmix::SelfAttention<float>>(
                  typename tokenmix::SelfAttention<float>::Config{d, 12, false}); });
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  tokenmix_bench::add_common_context();
  benchmark::AddCustomContext("mixer_notes",
                              "single thread; one sequence of n tokens; d = 768; token MLP "
                              "hidden d/2; SGU input 2d -> d; ExternalAttention S = 64; "
                              "Synthesizers 1 head; SelfAttention 12 heads; float32");
  register_all(768);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

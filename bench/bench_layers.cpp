// Layer benchmarks: the building blocks and MLP-style token mixers, one thread (the same
// setting as bench/torch_bench_layers.py, which times the PyTorch modules at these shapes).
// Names: layer/<Layer>/tokenmix/<n>x<d>, n tokens (one sequence), d channels; token-tied
// layers get weights sized n. Counters GFLOPS and %peak where the layer has a flop count.
// layer/<Layer>/gemm_only/<n>x<d> runs just the layer's GEMMs (same shapes, no epilogue, no
// norms or gating): the layer's time over this row is its overhead beyond the GEMMs.
//   tokenmix_bench_layers --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//   bench/torch_bench_layers.py torch.json   # the PyTorch rows, same names with /torch/

#include <benchmark/benchmark.h>

#include <functional>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "tokenmix/core/gemm.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/core/threads.hpp"
#include "tokenmix/layers/feed_forward.hpp"
#include "tokenmix/layers/gmlp_block.hpp"
#include "tokenmix/layers/layer_norm.hpp"
#include "tokenmix/layers/mlp_mixer_block.hpp"
#include "tokenmix/layers/resmlp_block.hpp"
#include "tokenmix/layers/spatial_gating_unit.hpp"

namespace {

using tokenmix::Index;
using tokenmix::Matrix;
using Mat = Matrix<float>;

Mat random_input(Index rows, Index cols) {
  Mat x(rows, cols);
  tokenmix::Random rng(1234);
  rng.fill_normal(x, 0.0, 1.0);
  return x;
}

std::string shape(Index n, Index d) { return std::to_string(n) + "x" + std::to_string(d); }

// Runs `step` (one forward) single-threaded; flops <= 0 means no flop counters.
template <class Step>
void run(benchmark::State& state, double flops, Step step) {
  tokenmix::ScopedThreads one(1);
  step();  // warm: scratch arena and packed buffers reach their size
  for (auto _ : state) {
    step();
    benchmark::ClobberMemory();
  }
  if (flops > 0) tokenmix_bench::set_flop_counters<float>(state, flops);
}

void add(const std::string& layer, Index n, Index d, std::function<void(benchmark::State&)> fn) {
  benchmark::RegisterBenchmark(
      tokenmix_bench::bench_name("layer/" + layer, "tokenmix", shape(n, d)).c_str(),
      [fn](benchmark::State& state) { fn(state); })
      ->Unit(benchmark::kMicrosecond);
}

// A residual block over one sequence: built from `config`, input and output n x d.
template <class Block>
void add_block(const std::string& layer, Index n, Index d, typename Block::Config config,
               double flops) {
  add(layer, n, d, [=](benchmark::State& state) {
    Block block(config);
    block.init_random(1);
    const Mat x = random_input(n, d);
    Mat y(n, d);
    run(state, flops, [&] { block.forward(x, n, y); });
  });
}

using tokenmix::Trans;

// The products a layer performs, as (transA, transB, m, n, k) on row-major operands.
struct Product {
  Trans ta, tb;
  Index m, n, k;
};

void add_gemm_only(const std::string& layer, Index n, Index d, std::vector<Product> products,
                   double flops) {
  benchmark::RegisterBenchmark(
      tokenmix_bench::bench_name("layer/" + layer, "gemm_only", shape(n, d)).c_str(),
      [products, flops](benchmark::State& state) {
        std::vector<Mat> a, b, c;
        for (const Product& p : products) {
          a.push_back(p.ta == Trans::N ? random_input(p.m, p.k) : random_input(p.k, p.m));
          b.push_back(p.tb == Trans::N ? random_input(p.k, p.n) : random_input(p.n, p.k));
          c.emplace_back(p.m, p.n);
        }
        run(state, flops, [&] {
          for (std::size_t i = 0; i < products.size(); ++i) {
            const Product& p = products[i];
            tokenmix::gemm<float>(p.ta, p.tb, p.m, p.n, p.k, 1.0f, a[i].data(), a[i].cols(),
                                  b[i].data(), b[i].cols(), 0.0f, c[i].data(), p.n);
          }
        });
      })
      ->Unit(benchmark::kMicrosecond);
}

void register_all() {
  const Index ds[] = {256, 768};
  for (Index d : ds) {
    for (Index n : {64, 512, 2048, 8192}) {
      add("LayerNorm", n, d, [n, d](benchmark::State& state) {
        tokenmix::LayerNorm<float> norm({d, 1e-6});
        norm.init_random(1);
        const Mat x = random_input(n, d);
        Mat y(n, d);
        run(state, 0, [&] { norm.forward(x, y); });
        state.SetBytesProcessed(state.iterations() * 2 * n * d * Index(sizeof(float)));
      });
    }
    for (Index n : {64, 512, 2048}) {
      add("FeedForward", n, d, [n, d](benchmark::State& state) {
        tokenmix::FeedForward<float> mlp({d, 4 * d});
        mlp.init_random(1);
        const Mat x = random_input(n, d);
        Mat y(n, d);
        run(state, 16.0 * n * d * d, [&] { mlp.forward(x, y); });
      });
      add_gemm_only("FeedForward", n, d,
                    {{Trans::N, Trans::T, n, 4 * d, d}, {Trans::N, Trans::T, n, d, 4 * d}},
                    16.0 * n * d * d);
    }
    for (Index n : {64, 196, 512, 2048}) {
      // Gate input width 2d, output d (the gMLP models' SGU is 2 x 3D -> 3D). At d = 768 and
      // powers of two the row comes from bench_attention (every mixer over n, same layer and
      // name), so that the report does not time it twice.
      if (d == 256 || n == 196)
        add("SpatialGatingUnit", n, d, [n, d](benchmark::State& state) {
          tokenmix::SpatialGatingUnit<float> sgu({n, 2 * d});
          sgu.init_random(1);
          const Mat z = random_input(n, 2 * d);
          Mat y(n, d);
          run(state, 2.0 * n * n * d, [&] { sgu.forward(z, n, y); });
        });
      add_gemm_only("SpatialGatingUnit", n, d, {{Trans::N, Trans::N, n, d, n}}, 2.0 * n * n * d);
    }
    for (Index n : {64, 196, 512}) {
      // token MLP 2 * 2 n (d/2) d + channel MLP 2 * 2 n d (4d)
      add_block<tokenmix::MLPMixerBlock<float>>("MLPMixerBlock", n, d, {n, d},
                                                2.0 * n * d * d + 16.0 * n * d * d);
      add_gemm_only("MLPMixerBlock", n, d,
                    {{Trans::N, Trans::N, d / 2, d, n}, {Trans::N, Trans::N, n, d, d / 2},
                     {Trans::N, Trans::T, n, 4 * d, d}, {Trans::N, Trans::T, n, d, 4 * d}},
                    2.0 * n * d * d + 16.0 * n * d * d);
      add_block<tokenmix::ResMLPBlock<float>>("ResMLPBlock", n, d, {n, d},
                                              2.0 * n * n * d + 16.0 * n * d * d);
      add_gemm_only("ResMLPBlock", n, d,
                    {{Trans::N, Trans::N, n, d, n}, {Trans::N, Trans::T, n, 4 * d, d},
                     {Trans::N, Trans::T, n, d, 4 * d}},
                    2.0 * n * n * d + 16.0 * n * d * d);
      typename tokenmix::GMLPBlock<float>::Config gmlp;
      gmlp.seq_len = n;
      gmlp.channels = d;
      gmlp.mlp_ratio = 6.0;  // as in the gMLP models
      // fc1 2 n d 6d + SGU 2 n^2 3d + fc2 2 n 3d d
      add_block<tokenmix::GMLPBlock<float>>("GMLPBlock", n, d, gmlp,
                                            18.0 * n * d * d + 6.0 * n * n * d);
      add_gemm_only("GMLPBlock", n, d,
                    {{Trans::N, Trans::T, n, 6 * d, d}, {Trans::N, Trans::N, n, 3 * d, n},
                     {Trans::N, Trans::T, n, d, 3 * d}},
                    18.0 * n * d * d + 6.0 * n * n * d);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  tokenmix_bench::add_common_context();
  benchmark::AddCustomContext("layer_notes",
                              "single thread; one sequence of n tokens; gMLP ratio 6; SGU input "
                              "2d -> d; FeedForward d -> 4d -> d; float32");
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

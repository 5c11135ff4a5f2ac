// End-to-end model throughput with random weights (issue 7): mixer_s16_224, gmlp_s16_224,
// resmlp_12_224, vit_small_patch16_224 (images/s, 224x224) and FNet-base at n = 512
// (sequences/s), batch 1 and 8, 1 and 2 threads, float32.
//
// Rows: models/tokenmix/<model>/batch:<B>[/threads:2]. Counters: items_per_second (images or
// sequences per second), GFLOPS, %peak, and flop_limit_frac = (model flops / (measured FMA
// peak x threads)) / measured time, the peak re-measured after each row: the FLOP-limit time
// over the time taken (1.0 = at the limit; the target is >= 0.8 for the
// GEMM-dominated models). Single-thread rows time the CPU time of the benchmark thread
// (robust on a shared machine); 2-thread rows use real time.
// bench/torch_bench_models.py times the same models in PyTorch and prints the ratios.

#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <string>

#include "bench_common.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/core/threads.hpp"
#include "tokenmix/models/fnet.hpp"
#include "tokenmix/models/mlp_mixer.hpp"
#include "tokenmix/models/presets.hpp"

namespace {

using namespace tokenmix;

// %peak and flop_limit_frac divide by the peak re-measured right after the row's timing
// (peak_gflops_rechecked), not only the start-up one.
void set_model_counters(benchmark::State& state, double flops, int threads) {
  tokenmix_bench::set_flop_counters<float>(state, flops, threads);
  const double peak = tokenmix_bench::peak_gflops_rechecked<float>() * threads;
  state.counters["%peak"] = benchmark::Counter(flops * 1e-9 * 100.0 / peak,
                                               benchmark::Counter::kIsIterationInvariantRate);
  state.counters["flop_limit_frac"] =
      benchmark::Counter(flops * 1e-9 / peak, benchmark::Counter::kIsIterationInvariantRate);
}

// Models are built once per process: random init of 20-80 M parameters takes a while.
const MlpMixer<float>& image_model(const std::string& name) {
  static std::map<std::string, std::unique_ptr<MlpMixer<float>>> cache;
  auto& slot = cache[name];
  if (!slot) {
    slot = std::make_unique<MlpMixer<float>>(model_preset(name).image);
    slot->init_random(42);
  }
  return *slot;
}

const FNet<float>& fnet_base() {
  static const std::unique_ptr<FNet<float>> model = [] {
    auto m = std::make_unique<FNet<float>>(model_preset("fnet-base").fnet);
    m->init_random(42);
    return m;
  }();
  return *model;
}

void run_image(benchmark::State& state, const std::string& name, Index batch, int threads) {
  const MlpMixer<float>& model = image_model(name);
  ScopedThreads scoped(std::min(threads, hardware_threads()));
  Matrix<float> images(batch, model.image_values());
  Random(1).fill_normal(images, 0.0, 1.0);
  Matrix<float> out(batch, model.output_dim());
  model.forward(images, out);  // warm the scratch arena and plans
  for (auto _ : state) {
    model.forward(images, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * batch);
  set_model_counters(state, model.flops() * static_cast<double>(batch), threads);
}

void run_fnet(benchmark::State& state, Index batch, Index n, int threads) {
  const FNet<float>& model = fnet_base();
  ScopedThreads scoped(std::min(threads, hardware_threads()));
  Matrix<std::int64_t> ids(batch, n);
  Random rng(3);
  for (Index i = 0; i < ids.size(); ++i)
    ids.data()[i] = static_cast<std::int64_t>(rng.next_u64() % 32000);
  const Index h = model.hidden_size();
  Matrix<float> hidden(batch * n, h), pooled(batch, h);
  auto call = [&] {
    model.forward(ids.data(), batch, n, nullptr, hidden.data(), h, pooled.data(), h);
  };
  call();
  for (auto _ : state) {
    call();
    benchmark::DoNotOptimize(pooled.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * batch);
  set_model_counters(state, model.flops(n) * static_cast<double>(batch), threads);
}

void register_all() {
  for (const char* name :
       {"mixer_s16_224", "gmlp_s16_224", "resmlp_12_224", "vit_small_patch16_224"})
    for (Index batch : {1, 8})
      for (int threads : {1, 2}) {
        auto* b = benchmark::RegisterBenchmark(
            tokenmix_bench::bench_name("models/tokenmix", name, "batch:" + std::to_string(batch),
                                       threads)
                .c_str(),
            [=](benchmark::State& s) { run_image(s, name, batch, threads); });
        b->Unit(benchmark::kMillisecond);
        if (threads > 1) b->UseRealTime();
      }
  for (Index batch : {1, 8})
    for (int threads : {1, 2}) {
      auto* b = benchmark::RegisterBenchmark(
          tokenmix_bench::bench_name("models/tokenmix", "fnet-base_n512",
                                     "batch:" + std::to_string(batch), threads)
              .c_str(),
          [=](benchmark::State& s) { run_fnet(s, batch, 512, threads); });
      b->Unit(benchmark::kMillisecond);
      if (threads > 1) b->UseRealTime();
    }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  tokenmix_bench::add_common_context();
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

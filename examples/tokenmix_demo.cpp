// The tokenmix demo: runs every token mixer on the same batch, then times each against
// self-attention as the sequence grows — the question the token-mixing papers argue about.
//   tokenmix-demo [--channels D] [--lengths 128,512,2048] [--threads N]
#include <tokenmix/tokenmix.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace {

using tokenmix::Index;
using Mat = tokenmix::Matrix<float>;
using Forward = std::function<void(const Mat& x, Index seq_len, Mat& y)>;

struct Mixer {
  std::string name;
  std::string complexity;
  Forward forward;
};

// Builds every mixer for sequences of n tokens and d channels, with deterministic weights.
std::vector<Mixer> make_mixers(Index n, Index d) {
  using namespace tokenmix;
  std::vector<Mixer> mixers;

  MLPMixerBlock<float>::Config mixer_config;
  mixer_config.seq_len = n;
  mixer_config.channels = d;
  auto mixer = std::make_shared<MLPMixerBlock<float>>(mixer_config);
  mixer->init_random(1);
  mixers.push_back({"MLPMixerBlock", "O(n^2 d)", [mixer](const Mat& x, Index s, Mat& y) {
                      mixer->forward(x, s, y);
                    }});

  // The SGU halves its width: feed it 2d channels so it returns d like the others.
  SpatialGatingUnit<float>::Config sgu_config;
  sgu_config.seq_len = n;
  sgu_config.channels = 2 * d;
  auto sgu = std::make_shared<SpatialGatingUnit<float>>(sgu_config);
  sgu->init_random(2);
  auto wide = std::make_shared<Mat>();
  mixers.push_back({"SpatialGatingUnit", "O(n^2 d)", [sgu, wide](const Mat& x, Index s, Mat& y) {
                      wide->resize(x.rows(), 2 * x.cols());
                      *wide << x, x;
                      sgu->forward(*wide, s, y);
                    }});

  auto fourier = std::make_shared<FourierMixer<float>>();
  mixers.push_back({"FourierMixer", "O(n d log nd)", [fourier](const Mat& x, Index s, Mat& y) {
                      fourier->forward(x, s, y);
                    }});

  ExternalAttention<float>::Config external_config;
  external_config.channels = d;
  auto external = std::make_shared<ExternalAttention<float>>(external_config);
  external->init_random(3);
  mixers.push_back({"ExternalAttention", "O(n d S)", [external](const Mat& x, Index s, Mat& y) {
                      external->forward(x, s, y);
                    }});

  SynthesizerRandom<float>::Config random_config;
  random_config.seq_len = n;
  random_config.channels = d;
  auto synth_random = std::make_shared<SynthesizerRandom<float>>(random_config);
  synth_random->init_random(4);
  mixers.push_back({"SynthesizerRandom", "O(n^2 d)",
                    [synth_random](const Mat& x, Index s, Mat& y) {
                      synth_random->forward(x, s, y);
                    }});

  SynthesizerDense<float>::Config dense_config;
  dense_config.seq_len = n;
  dense_config.channels = d;
  auto synth_dense = std::make_shared<SynthesizerDense<float>>(dense_config);
  synth_dense->init_random(5);
  mixers.push_back({"SynthesizerDense", "O(n^2 d)", [synth_dense](const Mat& x, Index s, Mat& y) {
                      synth_dense->forward(x, s, y);
                    }});

  SelfAttention<float>::Config attention_config;
  attention_config.channels = d;
  attention_config.heads = d % 64 == 0 ? d / 64 : 1;
  auto attention = std::make_shared<SelfAttention<float>>(attention_config);
  attention->init_random(6);
  mixers.push_back({"SelfAttention", "O(n^2 d)", [attention](const Mat& x, Index s, Mat& y) {
                      attention->forward(x, s, y);
                    }});
  return mixers;
}

double median_ms(const Mixer& mixer, const Mat& x, Index n, Mat& y) {
  mixer.forward(x, n, y);  // warm-up: plans, packing, scratch
  std::vector<double> ms;
  const auto start_all = std::chrono::steady_clock::now();
  for (int rep = 0; rep < 15; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    mixer.forward(x, n, y);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    if (rep >= 4 && std::chrono::steady_clock::now() - start_all > std::chrono::milliseconds(400)) break;
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

std::vector<Index> parse_list(const std::string& text) {
  std::vector<Index> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::stol(item));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Index d = 256;
  std::vector<Index> lengths = {128, 512, 2048};
  int threads = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--channels" && has_value) d = std::stol(argv[++i]);
    else if (arg == "--lengths" && has_value) lengths = parse_list(argv[++i]);
    else if (arg == "--threads" && has_value) threads = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: tokenmix-demo [--channels D] [--lengths n1,n2,..] [--threads N]\n");
      return 2;
    }
  }
  try {
    tokenmix::set_num_threads(threads);
    std::printf("tokenmix %s  |  kernels: %s  |  threads: %d\n\n", tokenmix::version_string,
                tokenmix::isa_name(tokenmix::active_isa()), tokenmix::num_threads());

    // 1. Every mixer on one batch of 2 sequences of 64 tokens.
    const Index demo_n = 64;
    tokenmix::Random rng(2024);
    Mat x(2 * demo_n, d);
    rng.fill_normal(x, 0.0, 1.0);
    std::printf("Every mixer on a batch of 2 x %ld tokens x %ld channels:\n", long(demo_n), long(d));
    std::printf("  %-18s %-14s %-12s %s\n", "mixer", "cost", "output", "mean |y|");
    for (const Mixer& mixer : make_mixers(demo_n, d)) {
      Mat y;
      y.resize(x.rows(), d);
      mixer.forward(x, demo_n, y);
      std::printf("  %-18s %-14s %4ldx%-7ld %.4g\n", mixer.name.c_str(), mixer.complexity.c_str(),
                  long(y.rows()), long(y.cols()), double(y.cwiseAbs().mean()));
    }

    // 2. Time per sequence against self-attention as n grows.
    std::printf("\nTime per sequence (ms, median), d = %ld, one sequence, %d thread(s):\n",
                long(d), tokenmix::num_threads());
    std::printf("  %-18s", "mixer");
    for (Index n : lengths) std::printf("  n=%-6ld", long(n));
    std::printf("  vs attention at n=%ld\n", long(lengths.back()));
    std::vector<std::vector<double>> table;
    std::vector<std::string> names;
    for (Index n : lengths) {
      Mat xs(n, d);
      rng.fill_normal(xs, 0.0, 1.0);
      Mat ys(n, d);
      const auto mixers = make_mixers(n, d);
      if (table.empty()) {
        table.resize(mixers.size());
        for (const auto& m : mixers) names.push_back(m.name);
      }
      for (std::size_t i = 0; i < mixers.size(); ++i) table[i].push_back(median_ms(mixers[i], xs, n, ys));
    }
    const double attention_last = table.back().back();
    for (std::size_t i = 0; i < table.size(); ++i) {
      std::printf("  %-18s", names[i].c_str());
      for (double ms : table[i]) std::printf("  %8.3f", ms);
      const double speedup = attention_last / table[i].back();
      if (i + 1 == table.size())
        std::printf("  %6.2fx (baseline)\n", 1.0);
      else if (speedup >= 1.0)
        std::printf("  %6.2fx faster\n", speedup);
      else
        std::printf("  %6.2fx slower\n", 1.0 / speedup);
    }
  } catch (const tokenmix::Error& e) {
    std::fprintf(stderr, "tokenmix-demo: %s\n", e.what());
    return 1;
  }
  return 0;
}

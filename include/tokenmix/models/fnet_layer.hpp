#pragma once
// One encoder layer of Hugging Face's FNet (`FNetLayer`, SPEC.md §3.2), post-LayerNorm:
//   F  = LayerNorm_f(H + Re(FFT2(H)))                    (fourier.output.LayerNorm)
//   H' = LayerNorm_o(F + output.dense(act(intermediate.dense(F))))   (output.LayerNorm)
// act = the config's hidden_act ("gelu_new": tanh form, "gelu": exact). The 2-D transform is
// per sequence over tokens and channels, unnormalised (torch.fft.fftn(x, dim=(1, 2)).real);
// sequences of a batch are transformed in parallel. The feed-forward runs as two GEMMs with
// bias + activation and bias + residual fused in their epilogues.
// Keys: fourier.output.LayerNorm.{weight,bias}, intermediate.dense.{weight,bias},
// output.dense.{weight,bias}, output.LayerNorm.{weight,bias}. y may be x itself.

#include <cstdint>
#include <string>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/fft.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/core/thread_pool.hpp"
#include "tokenmix/core/threads.hpp"
#include "tokenmix/core/workspace.hpp"
#include "tokenmix/io/state_dict.hpp"
#include "tokenmix/layers/sequence_block.hpp"
#include "tokenmix/layers/activation.hpp"
#include "tokenmix/layers/feed_forward.hpp"
#include "tokenmix/layers/layer_norm.hpp"

namespace tokenmix {

template <class T>
class FNetLayer : public SequenceBlock<FNetLayer<T>, T> {
  using Base = SequenceBlock<FNetLayer<T>, T>;

 public:
  static constexpr const char* layer_name = "FNetLayer";
  // load(dict, prefix), init_random(seed) and the Eigen-view forwards (sequence_block.hpp).
  using Base::forward;
  using Base::init_random;
  using Base::load;

  struct Config {
    Index hidden_size = 768;
    Index intermediate_size = 3072;
    Activation hidden_act = Activation::gelu_tanh;  // HF "gelu_new"
    double layer_norm_eps = 1e-12;
  };

  explicit FNetLayer(const Config& config)
      : config_(validated(config)),
        fourier_norm({config.hidden_size, config.layer_norm_eps}),
        ffn(typename FeedForward<T>::Config{config.hidden_size, config.intermediate_size,
                                            config.hidden_size, config.hidden_act}),
        output_norm({config.hidden_size, config.layer_norm_eps}) {}

  const Config& config() const { return config_; }
  Index channels() const { return config_.hidden_size; }

  void load(StateDictLoader& loader, const std::string& prefix) {
    fourier_norm.load(loader, prefix + "fourier.output.LayerNorm.");
    ffn.fc1.load(loader, prefix + "intermediate.dense.");
    ffn.fc2.load(loader, prefix + "output.dense.");
    output_norm.load(loader, prefix + "output.LayerNorm.");
  }
  void save(StateDict& dict, const std::string& prefix = "") const {
    fourier_norm.save(dict, prefix + "fourier.output.LayerNorm.");
    ffn.fc1.save(dict, prefix + "intermediate.dense.");
    ffn.fc2.save(dict, prefix + "output.dense.");
    output_norm.save(dict, prefix + "output.LayerNorm.");
  }

  // HF init: Linear N(0, 0.02^2) with zero bias, LayerNorm 1 / 0.
  void init_random(Random& rng) {
    fourier_norm.reset();
    output_norm.reset();
    ffn.fc1.init_normal(rng, 0.02);
    ffn.fc2.init_normal(rng, 0.02);
  }

  void forward(Index rows, Index seq_len, const T* x, Index ldx, T* y, Index ldy) const {
    const Index batch = detail::batch_count("FNetLayer", rows, seq_len);
    if (rows == 0) return;
    const Index n = seq_len, d = config_.hidden_size;
    ScratchFrame frame;
    T* f = frame.take<T>(static_cast<std::size_t>(rows * d));
    ThreadPool::global().parallel_for(batch, num_threads(), [&](Index b) {
      const T* xb = x + b * n * ldx;
      T* fb = f + b * n * d;
      fft2_real_part<T>(ConstMatrixMap<T>(xb, n, d, Eigen::OuterStride<>(ldx)),
                        MatrixMap<T>(fb, n, d, Eigen::OuterStride<>(d)));
      using Rows = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>,
                              0, Eigen::OuterStride<>>;
      using ConstRows = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic,
                                                      Eigen::RowMajor>, 0, Eigen::OuterStride<>>;
      Rows(fb, n, d, Eigen::OuterStride<>(d)) += ConstRows(xb, n, d, Eigen::OuterStride<>(ldx));
      fourier_norm.forward(n, fb, d, fb, d);
    });
    ffn.forward(rows, f, d, y, ldy, f, d);
    output_norm.forward(rows, y, ldy, y, ldy);
  }

  // Multiply-adds x 2 of one sequence of n tokens, counting the FFT as 5 N log2 N per
  // complex transform (real input: half of the full 2-D complex transform).
  double flops(Index n) const {
    const double nn = static_cast<double>(n), d = static_cast<double>(config_.hidden_size);
    const double i = static_cast<double>(config_.intermediate_size);
    return 4.0 * nn * d * i + 2.5 * nn * d * std::log2(nn * d);
  }

 private:
  static Config validated(const Config& c) {
    if (c.hidden_size <= 0 || c.intermediate_size <= 0)
      detail::fail<ArgumentError>(
          "FNetLayer: expected positive hidden_size and intermediate_size, got ", c.hidden_size,
          " and ", c.intermediate_size);
    return c;
  }

  Config config_;

 public:
  LayerNorm<T> fourier_norm;  // fourier.output.LayerNorm
  FeedForward<T> ffn;         // fc1 = intermediate.dense, fc2 = output.dense
  LayerNorm<T> output_norm;   // output.LayerNorm
};

}  // namespace tokenmix

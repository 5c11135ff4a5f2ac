#pragma once
// ResMLP block (timm `ResBlock`, SPEC.md §2.10):
//   Y = X + ls1 * TokLin(linear_tokens)(Aff1(X)),   Z = Y + ls2 * Mlp(D -> 4D -> D)(Aff2(Y)),
// with Aff(x) = beta + alpha * x and no LayerNorm anywhere. Each branch is one GEMM chain
// whose last epilogue adds the (per-token or per-channel) bias, multiplies by the LayerScale
// vector and adds the residual stream: v = residual + ls * (acc + bias).
//
// Length-tied: built for N tokens, accepts n <= N using the leading n x n block of
// linear_tokens and its leading n bias entries. y may be x itself.

#include <cstdint>
#include <string>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/gemm.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/core/workspace.hpp"
#include "tokenmix/io/state_dict.hpp"
#include "tokenmix/layers/sequence_block.hpp"
#include "tokenmix/layers/affine.hpp"
#include "tokenmix/layers/feed_forward.hpp"
#include "tokenmix/layers/layer_scale.hpp"
#include "tokenmix/layers/linear.hpp"

namespace tokenmix {

template <class T>
class ResMLPBlock : public SequenceBlock<ResMLPBlock<T>, T> {
  using Base = SequenceBlock<ResMLPBlock<T>, T>;

 public:
  static constexpr const char* layer_name = "ResMLPBlock";
  // load(dict, prefix), init_random(seed) and the Eigen-view forwards (sequence_block.hpp).
  using Base::forward;
  using Base::init_random;
  using Base::load;

  struct Config {
    Index seq_len = 0;   // N
    Index channels = 0;  // D
    double mlp_ratio = 4.0;
    double init_values = 1e-4;  // LayerScale start (1e-4 at depth 12, 1e-5 at 24, 1e-6 at 36)
  };

  explicit ResMLPBlock(const Config& config)
      : config_(validated(config)),
        norm1(config.channels),
        linear_tokens({config.seq_len, config.seq_len}),
        norm2(config.channels),
        mlp_channels(typename FeedForward<T>::Config{
            config.channels, static_cast<Index>(config.mlp_ratio * static_cast<double>(config.channels)),
            config.channels}),
        ls1({config.channels, config.init_values}),
        ls2({config.channels, config.init_values}) {}

  const Config& config() const { return config_; }
  Index seq_len() const { return config_.seq_len; }
  Index channels() const { return config_.channels; }

  void load(StateDictLoader& loader, const std::string& prefix) {
    norm1.load(loader, prefix + "norm1.");
    linear_tokens.load(loader, prefix + "linear_tokens.");
    norm2.load(loader, prefix + "norm2.");
    mlp_channels.load(loader, prefix + "mlp_channels.");
    ls1.load_parameter(loader, prefix + "ls1");
    ls2.load_parameter(loader, prefix + "ls2");
  }
  void save(StateDict& dict, const std::string& prefix = "") const {
    norm1.save(dict, prefix + "norm1.");
    linear_tokens.save(dict, prefix + "linear_tokens.");
    norm2.save(dict, prefix + "norm2.");
    mlp_channels.save(dict, prefix + "mlp_channels.");
    ls1.save_parameter(dict, prefix + "ls1");
    ls2.save_parameter(dict, prefix + "ls2");
  }

  // timm init: Affine 1 / 0, linear_tokens xavier_uniform with bias 0 (its name has no
  // "mlp"), mlp_channels xavier_uniform with biases N(0, 1e-6^2), ls = init_values.
  void init_random(Random& rng) {
    norm1.reset();
    norm2.reset();
    linear_tokens.init_xavier(rng, 0.0);
    mlp_channels.init_timm(rng);
    ls1.reset();
    ls2.reset();
  }

  void forward(Index rows, Index seq_len, const T* x, Index ldx, T* y, Index ldy) const {
    if (seq_len <= 0 || seq_len > config_.seq_len)
      detail::fail<ShapeError>("ResMLPBlock: expected input with ", config_.seq_len,
                               " tokens or fewer, got ", seq_len);
    const Index batch = detail::batch_count("ResMLPBlock", rows, seq_len);
    const Index n = seq_len, d = config_.channels;
    ScratchFrame frame;
    T* a = frame.take<T>(static_cast<std::size_t>(rows * d));
    norm1.forward(rows, x, ldx, a, d);
    for (Index b = 0; b < batch; ++b) {
      Epilogue<T> e;
      e.row_bias = linear_tokens.bias.data();
      e.col_scale = ls1.gamma.data();
      e.residual = x + b * n * ldx;
      e.ld_residual = ldx;
      gemm<T>(Trans::N, Trans::N, n, d, n, T(1), linear_tokens.weight.data(), config_.seq_len,
              a + b * n * d, d, T(0), y + b * n * ldy, ldy, e);
    }
    norm2.forward(rows, y, ldy, a, d);
    mlp_channels.forward(rows, a, d, y, ldy, y, ldy, ls2.gamma.data());
  }

 private:
  static Config validated(const Config& c) {
    if (c.seq_len <= 0 || c.channels <= 0)
      detail::fail<ArgumentError>("ResMLPBlock: expected positive seq_len and channels, got ",
                                  c.seq_len, " and ", c.channels);
    if (!(c.mlp_ratio * static_cast<double>(c.channels) >= 1.0))
      detail::fail<ArgumentError>("ResMLPBlock: expected mlp_ratio * channels >= 1, got ",
                                  c.mlp_ratio, " * ", c.channels);
    return c;
  }

  Config config_;

 public:
  Affine<T> norm1;
  Linear<T> linear_tokens;  // weight [N, N], bias [N] (per output token)
  Affine<T> norm2;
  FeedForward<T> mlp_channels;
  LayerScale<T> ls1;  // key "ls1" [D]
  LayerScale<T> ls2;  // key "ls2" [D]
};

}  // namespace tokenmix

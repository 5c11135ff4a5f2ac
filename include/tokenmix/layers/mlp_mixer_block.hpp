#pragma once
// MLP-Mixer block (timm `MixerBlock`, SPEC.md §2.2):
//   Y = X + T(LN1(X)),  T = Mlp(N -> Ds -> N) along the token axis,
//   Z = Y + Mlp(D -> Dc -> D)(LN2(Y)),
// with Ds = int(0.5 D) (from D, not N), Dc = int(4 D), LN eps 1e-6, exact GELU.
//
// PyTorch transposes to [B, D, N] for the token MLP. Here it stays row-major: on one
// sequence X (n x D), fc1 over tokens is H = GELU(W1 X + b1) (Ds x D, b1 a row bias) and fc2
// is Y = X + W2 H + b2 (b2 a row bias, X the fused residual), two GEMMs with no transpose.
//
// Length-tied: built for N tokens, accepts n <= N using W1[:, :n], W2[:n, :], b2[:n].
// y may be x itself (the residual stream updated in place).

#include <cstdint>
#include <string>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/gemm.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/core/workspace.hpp"
#include "tokenmix/io/state_dict.hpp"
#include "tokenmix/layers/sequence_block.hpp"
#include "tokenmix/layers/feed_forward.hpp"
#include "tokenmix/layers/layer_norm.hpp"

namespace tokenmix {

template <class T>
class MLPMixerBlock : public SequenceBlock<MLPMixerBlock<T>, T> {
  using Base = SequenceBlock<MLPMixerBlock<T>, T>;

 public:
  static constexpr const char* layer_name = "MLPMixerBlock";
  // load(dict, prefix), init_random(seed) and the Eigen-view forwards (sequence_block.hpp).
  using Base::forward;
  using Base::init_random;
  using Base::load;

  struct Config {
    Index seq_len = 0;   // N
    Index channels = 0;  // D
    double tokens_ratio = 0.5;    // Ds = int(tokens_ratio * D)
    double channels_ratio = 4.0;  // Dc = int(channels_ratio * D)
    double eps = 1e-6;
    Index tokens_hidden = 0;    // overrides Ds when > 0
    Index channels_hidden = 0;  // overrides Dc when > 0
  };

  explicit MLPMixerBlock(const Config& config)
      : config_(resolved(config)),
        norm1({config_.channels, config_.eps}),
        mlp_tokens(typename FeedForward<T>::Config{config_.seq_len, config_.tokens_hidden,
                                                   config_.seq_len}),
        norm2({config_.channels, config_.eps}),
        mlp_channels(typename FeedForward<T>::Config{config_.channels,
                                                     config_.channels_hidden,
                                                     config_.channels}) {}

  const Config& config() const { return config_; }
  Index seq_len() const { return config_.seq_len; }
  Index channels() const { return config_.channels; }

  void load(StateDictLoader& loader, const std::string& prefix) {
    norm1.load(loader, prefix + "norm1.");
    mlp_tokens.load(loader, prefix + "mlp_tokens.");
    norm2.load(loader, prefix + "norm2.");
    mlp_channels.load(loader, prefix + "mlp_channels.");
  }
  void save(StateDict& dict, const std::string& prefix = "") const {
    norm1.save(dict, prefix + "norm1.");
    mlp_tokens.save(dict, prefix + "mlp_tokens.");
    norm2.save(dict, prefix + "norm2.");
    mlp_channels.save(dict, prefix + "mlp_channels.");
  }

  // timm MlpMixer init: LayerNorm 1 / 0, every Linear xavier_uniform with bias N(0, 1e-6^2).
  void init_random(Random& rng) {
    norm1.reset();
    norm2.reset();
    mlp_tokens.init_timm(rng);
    mlp_channels.init_timm(rng);
  }

  void forward(Index rows, Index seq_len, const T* x, Index ldx, T* y, Index ldy) const {
    if (seq_len <= 0 || seq_len > config_.seq_len)
      detail::fail<ShapeError>("MLPMixerBlock: expected input with ", config_.seq_len,
                               " tokens or fewer, got ", seq_len);
    const Index batch = detail::batch_count("MLPMixerBlock", rows, seq_len);
    const Index n = seq_len, d = config_.channels, ds = config_.tokens_hidden;
    const Linear<T>& fc1 = mlp_tokens.fc1;  // [Ds, N]
    const Linear<T>& fc2 = mlp_tokens.fc2;  // [N, Ds]
    ScratchFrame frame;
    T* xn = frame.take<T>(static_cast<std::size_t>(n * d));
    T* h = frame.take<T>(static_cast<std::size_t>(ds * d));
    for (Index b = 0; b < batch; ++b) {
      const T* xb = x + b * n * ldx;
      T* yb = y + b * n * ldy;
      norm1.forward(n, xb, ldx, xn, d);
      Epilogue<T> e1;
      e1.row_bias = fc1.bias.data();
      e1.act = mlp_tokens.config().act;
      gemm<T>(Trans::N, Trans::N, ds, d, n, T(1), fc1.weight.data(), config_.seq_len, xn, d,
              T(0), h, d, e1);
      Epilogue<T> e2;
      e2.row_bias = fc2.bias.data();
      e2.residual = xb;
      e2.ld_residual = ldx;
      gemm<T>(Trans::N, Trans::N, n, d, ds, T(1), fc2.weight.data(), ds, h, d, T(0), yb, ldy,
              e2);
    }
    // Channel MLP over every row at once; LN2's output is the only copy of the stream.
    T* yn = frame.take<T>(static_cast<std::size_t>(rows * d));
    norm2.forward(rows, y, ldy, yn, d);
    mlp_channels.forward(rows, yn, d, y, ldy, y, ldy);
  }

 private:
  static Config resolved(Config c) {
    if (c.seq_len <= 0 || c.channels <= 0)
      detail::fail<ArgumentError>("MLPMixerBlock: expected positive seq_len and channels, got ",
                                  c.seq_len, " and ", c.channels);
    if (c.tokens_hidden <= 0)
      c.tokens_hidden = static_cast<Index>(c.tokens_ratio * static_cast<double>(c.channels));
    if (c.channels_hidden <= 0)
      c.channels_hidden = static_cast<Index>(c.channels_ratio * static_cast<double>(c.channels));
    if (c.tokens_hidden <= 0 || c.channels_hidden <= 0)
      detail::fail<ArgumentError>(
          "MLPMixerBlock: expected positive token / channel hidden widths, got ",
          c.tokens_hidden, " and ", c.channels_hidden);
    return c;
  }

  Config config_;

 public:
  LayerNorm<T> norm1;
  FeedForward<T> mlp_tokens;  // fc1 [Ds, N], fc2 [N, Ds], applied along tokens
  LayerNorm<T> norm2;
  FeedForward<T> mlp_channels;  // fc1 [Dc, D], fc2 [D, Dc]
};

}  // namespace tokenmix

#pragma once
// Dense Synthesizer (Tay et al. 2020; SPEC 2.8): each token predicts its own attention row
// from itself alone, with a two-layer MLP, instead of from query-key dot products.
//
//   L = dense2(ReLU(dense1(X)))     [B*n, h*N]; L[b, i, h*N + j] = logit of head h, query i, key j
//   A_h = softmax_j(L_h + M);  V = value(X);  O_h = A_h V_h;  Y = out(concat_h O_h)
//
// Keys: dense1.{weight [D,D], bias [D]}, dense2.{weight [h*N, D], bias [h*N]},
// value.{weight [D,D], bias [D]}, out.{weight [D,D], bias [D]}.
// Length-tied: n' <= N tokens use, per head, the first n' logits (rows h*N .. h*N+n' of
// dense2), so the softmax runs over the n' keys that exist; longer input is a ShapeError.
// Causal hides key j > i. The logits are n' x h*n' per sequence: O(n^2) memory is inherent
// to this layer (every token owns a full attention row).

#include <algorithm>
#include <cstdint>
#include <string>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/gemm.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/core/workspace.hpp"
#include "tokenmix/io/state_dict.hpp"
#include "tokenmix/layers/causal_product.hpp"
#include "tokenmix/layers/softmax.hpp"
#include "tokenmix/layers/synthesizer_random.hpp"  // detail::linear_default_init

namespace tokenmix {

template <class T>
class SynthesizerDense {
 public:
  struct Config {
    Index seq_len = 0;   // N, the longest sequence
    Index channels = 0;  // D
    Index heads = 1;     // h, must divide D
    bool causal = false;
  };

  explicit SynthesizerDense(const Config& config) : config_(config) {
    if (config.seq_len <= 0 || config.channels <= 0)
      detail::fail<ArgumentError>("SynthesizerDense: expected seq_len > 0 and channels > 0, got ",
                                  config.seq_len, " and ", config.channels);
    if (config.heads <= 0 || config.channels % config.heads != 0)
      detail::fail<ArgumentError>("SynthesizerDense: expected heads > 0 dividing channels ",
                                  config.channels, ", got ", config.heads);
    const Index n = config.seq_len, d = config.channels, h = config.heads;
    dense1_weight.reset(d, d);
    dense1_bias = Vector<T>::Zero(d);
    dense2_weight.reset(h * n, d);
    dense2_bias = Vector<T>::Zero(h * n);
    value_weight.reset(d, d);
    value_bias = Vector<T>::Zero(d);
    out_weight.reset(d, d);
    out_bias = Vector<T>::Zero(d);
  }

  const Config& config() const { return config_; }

  void load(const StateDict& dict, const std::string& prefix = "") {
    StateDictLoader loader(dict);
    load(loader, prefix);
    loader.finish("SynthesizerDense", prefix);
  }
  void load(StateDictLoader& loader, const std::string& prefix) {
    const Index n = config_.seq_len, d = config_.channels, h = config_.heads;
    dense1_weight.load(loader, prefix + "dense1.weight");
    loader.vector(prefix + "dense1.bias", dense1_bias, d);
    dense2_weight.load(loader, prefix + "dense2.weight");
    loader.vector(prefix + "dense2.bias", dense2_bias, h * n);
    value_weight.load(loader, prefix + "value.weight");
    loader.vector(prefix + "value.bias", value_bias, d);
    out_weight.load(loader, prefix + "out.weight");
    loader.vector(prefix + "out.bias", out_bias, d);
  }
  void save(StateDict& dict, const std::string& prefix = "") const {
    dict.insert(prefix + "dense1.weight", dense1_weight.value());
    dict.insert(prefix + "dense1.bias", dense1_bias);
    dict.insert(prefix + "dense2.weight", dense2_weight.value());
    dict.insert(prefix + "dense2.bias", dense2_bias);
    dict.insert(prefix + "value.weight", value_weight.value());
    dict.insert(prefix + "value.bias", value_bias);
    dict.insert(prefix + "out.weight", out_weight.value());
    dict.insert(prefix + "out.bias", out_bias);
  }

  // PyTorch's default nn.Linear init for all four projections (SPEC 2.8).
  void init_random(std::uint64_t seed) {
    Random rng(seed);
    detail::linear_default_init(rng, dense1_weight, dense1_bias);
    detail::linear_default_init(rng, dense2_weight, dense2_bias);
    detail::linear_default_init(rng, value_weight, value_bias);
    detail::linear_default_init(rng, out_weight, out_bias);
  }

  // x: (B*n') x D with n' <= N; y: (B*n') x D (may alias x).
  void forward(const ConstMatrixRef<T>& x, Index seq_len, MatrixRef<T> y) const {
    const Index d = config_.channels, h = config_.heads, hd = d / h, big_n = config_.seq_len;
    detail::expect_cols("SynthesizerDense", "input", d, x.cols());
    detail::expect_shape("SynthesizerDense", "output", x.rows(), d, y.rows(), y.cols());
    const Index batch = detail::batch_count("SynthesizerDense", x.rows(), seq_len);
    if (seq_len > big_n)
      detail::fail<ShapeError>("SynthesizerDense: expected input with ", big_n,
                               " tokens or fewer, got ", seq_len);
    const Index n = seq_len, rows = x.rows(), width = h * n;

    ScratchFrame frame;
    T* hidden = frame.take<T>(static_cast<std::size_t>(rows * d));
    T* logits = frame.take<T>(static_cast<std::size_t>(rows * width));
    T* v = frame.take<T>(static_cast<std::size_t>(rows * d));

    Epilogue<T> e1;
    e1.col_bias = dense1_bias.data();
    e1.act = Activation::relu;
    dense1_weight.multiply(rows, x.data(), x.outerStride(), T(0), hidden, d, e1);
    // Head k's logits for the n existing keys are dense2 rows [k*N, k*N + n): one gemm
    // against the packed weight when n == N (all heads contiguous), one per head on the
    // unpacked rows otherwise.
    if (n == big_n) {
      Epilogue<T> e2;
      e2.col_bias = dense2_bias.data();
      dense2_weight.multiply(rows, hidden, d, T(0), logits, width, e2);
    } else {
      for (Index k = 0; k < h; ++k) {
        Epilogue<T> e2;
        e2.col_bias = dense2_bias.data() + k * big_n;
        gemm<T>(Trans::N, Trans::T, rows, n, d, T(1), hidden, d,
                dense2_weight.data() + k * big_n * d, d, T(0), logits + k * n, width, e2);
      }
    }
    for (Index b = 0; b < batch; ++b)
      for (Index k = 0; k < h; ++k)
        detail::softmax_block(logits + b * n * width + k * n, n, width, config_.causal);

    Epilogue<T> ev;
    ev.col_bias = value_bias.data();
    value_weight.multiply(rows, x.data(), x.outerStride(), T(0), v, d, ev);
    // O_h overwrites the ReLU features, which are no longer needed.
    T* o = hidden;
    for (Index b = 0; b < batch; ++b)
      for (Index k = 0; k < h; ++k)
        detail::mix_tokens<T>(config_.causal, n, hd, logits + b * n * width + k * n, width,
                              v + b * n * d + k * hd, d, o + b * n * d + k * hd, d);
    Epilogue<T> eo;
    eo.col_bias = out_bias.data();
    out_weight.multiply(rows, o, d, T(0), y.data(), y.outerStride(), eo);
  }

  Matrix<T> forward(const ConstMatrixRef<T>& x, Index seq_len) const {
    Matrix<T> y(x.rows(), config_.channels);
    forward(x, seq_len, y);
    return y;
  }

  // Weights are PackedWeights: W^T is packed whenever they are set (packed_weight.hpp).
  PackedWeight<T> dense1_weight;  // [D, D]
  Vector<T> dense1_bias;          // [D]
  PackedWeight<T> dense2_weight;  // [h*N, D]
  Vector<T> dense2_bias;          // [h*N]
  PackedWeight<T> value_weight;   // [D, D]
  Vector<T> value_bias;           // [D]
  PackedWeight<T> out_weight;     // [D, D]
  Vector<T> out_bias;       // [D]

 private:
  Config config_;
};

}  // namespace tokenmix

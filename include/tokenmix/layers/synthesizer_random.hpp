#pragma once
// Random Synthesizer (Tay et al. 2020, "Synthesizer: Rethinking Self-Attention in Transformer
// Models"; SPEC 2.8): the attention matrix is a learned parameter, not a function of the input.
//
//   A_h = softmax(R_h + M) over keys      R_h = attention_weights[h]        [N, N]
//                                         or R1[h] R2[h]^T (factorised, rank k)
//   V = X value.weight^T + value.bias;    O_h = A_h V_h (heads split channels);
//   Y = concat_h(O_h) out.weight^T + out.bias
//
// Keys: attention_weights [h, N, N] (or R1 [h, N, k] and R2 [h, N, k] when factor k > 0),
// value.{weight [D,D], bias [D]}, out.{weight [D,D], bias [D]}.
// Length-tied: an input of n' <= N tokens uses the leading n' x n' block of R (leading n' rows
// of R1, R2) and its softmax runs over those n' keys only; longer input is a ShapeError.
// Causal hides key j > i. The paper's "fixed" variant (R not trained) is the same layer at
// inference. A_h is shared by the whole batch, so it is computed once per call.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/gemm.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/core/workspace.hpp"
#include "tokenmix/io/state_dict.hpp"
#include "tokenmix/layers/causal_product.hpp"
#include "tokenmix/layers/packed_weight.hpp"
#include "tokenmix/layers/softmax.hpp"

namespace tokenmix {

namespace detail {

// PyTorch's default nn.Linear init: weight and bias U(+-1/sqrt(in)) (shared with
// SynthesizerDense).
template <class T>
void linear_default_init(Random& rng, PackedWeight<T>& weight, Vector<T>& bias) {
  weight.update([&](Matrix<T>& w) { rng.fill_linear_default(w); });
  const double bound = weight.cols() > 0 ? 1.0 / std::sqrt(static_cast<double>(weight.cols())) : 0;
  for (Index i = 0; i < bias.size(); ++i) bias[i] = static_cast<T>(rng.uniform(-bound, bound));
}

}  // namespace detail

template <class T>
class SynthesizerRandom {
 public:
  struct Config {
    Index seq_len = 0;   // N, the longest sequence
    Index channels = 0;  // D
    Index heads = 1;     // h, must divide D
    Index factor = 0;    // k > 0: factorised R = R1 R2^T of rank k; 0: dense R
    bool causal = false;
  };

  explicit SynthesizerRandom(const Config& config) : config_(config) {
    if (config.seq_len <= 0 || config.channels <= 0 || config.factor < 0)
      detail::fail<ArgumentError>(
          "SynthesizerRandom: expected seq_len > 0, channels > 0, factor >= 0, got ",
          config.seq_len, ", ", config.channels, ", ", config.factor);
    if (config.heads <= 0 || config.channels % config.heads != 0)
      detail::fail<ArgumentError>("SynthesizerRandom: expected heads > 0 dividing channels ",
                                  config.channels, ", got ", config.heads);
    const Index n = config.seq_len, d = config.channels, h = config.heads;
    if (factorised()) {
      r1 = Matrix<T>::Zero(h * n, config.factor);
      r2 = Matrix<T>::Zero(h * n, config.factor);
    } else {
      attention_weights = Matrix<T>::Zero(h * n, n);
    }
    value_weight.reset(d, d);
    value_bias = Vector<T>::Zero(d);
    out_weight.reset(d, d);
    out_bias = Vector<T>::Zero(d);
  }

  const Config& config() const { return config_; }
  bool factorised() const { return config_.factor > 0; }

  void load(const StateDict& dict, const std::string& prefix = "") {
    StateDictLoader loader(dict);
    load(loader, prefix);
    loader.finish("SynthesizerRandom", prefix);
  }
  void load(StateDictLoader& loader, const std::string& prefix) {
    const Index n = config_.seq_len, d = config_.channels, h = config_.heads, k = config_.factor;
    if (factorised()) {
      loader.matrix_as(prefix + "R1", r1, h * n, k, {h, n, k});
      loader.matrix_as(prefix + "R2", r2, h * n, k, {h, n, k});
    } else {
      loader.matrix_as(prefix + "attention_weights", attention_weights, h * n, n, {h, n, n});
    }
    value_weight.load(loader, prefix + "value.weight");
    loader.vector(prefix + "value.bias", value_bias, d);
    out_weight.load(loader, prefix + "out.weight");
    loader.vector(prefix + "out.bias", out_bias, d);
  }
  void save(StateDict& dict, const std::string& prefix = "") const {
    const Index n = config_.seq_len, h = config_.heads, k = config_.factor;
    if (factorised()) {
      dict.insert(prefix + "R1", Tensor::from_values<T>({h, n, k}, r1.data()));
      dict.insert(prefix + "R2", Tensor::from_values<T>({h, n, k}, r2.data()));
    } else {
      dict.insert(prefix + "attention_weights",
                  Tensor::from_values<T>({h, n, n}, attention_weights.data()));
    }
    dict.insert(prefix + "value.weight", value_weight.value());
    dict.insert(prefix + "value.bias", value_bias);
    dict.insert(prefix + "out.weight", out_weight.value());
    dict.insert(prefix + "out.bias", out_bias);
  }

  // R ~ N(0, 0.02^2) (SPEC 2.8); value / out: PyTorch's default nn.Linear init.
  void init_random(std::uint64_t seed) {
    Random rng(seed);
    if (factorised()) {
      rng.fill_normal(r1, 0.0, 0.02);
      rng.fill_normal(r2, 0.0, 0.02);
    } else {
      rng.fill_normal(attention_weights, 0.0, 0.02);
    }
    detail::linear_default_init(rng, value_weight, value_bias);
    detail::linear_default_init(rng, out_weight, out_bias);
  }

  // x: (B*n') x D with n' <= N; y: (B*n') x D (may alias x).
  void forward(const ConstMatrixRef<T>& x, Index seq_len, MatrixRef<T> y) const {
    const Index d = config_.channels, h = config_.heads, hd = d / h, big_n = config_.seq_len;
    detail::expect_cols("SynthesizerRandom", "input", d, x.cols());
    detail::expect_shape("SynthesizerRandom", "output", x.rows(), d, y.rows(), y.cols());
    const Index batch = detail::batch_count("SynthesizerRandom", x.rows(), seq_len);
    if (seq_len > big_n)
      detail::fail<ShapeError>("SynthesizerRandom: expected input with ", big_n,
                               " tokens or fewer, got ", seq_len);
    const Index n = seq_len, rows = x.rows();

    ScratchFrame frame;
    T* probs = frame.take<T>(static_cast<std::size_t>(h * n * n));
    T* v = frame.take<T>(static_cast<std::size_t>(rows * d));
    T* o = frame.take<T>(static_cast<std::size_t>(rows * d));

    for (Index k = 0; k < h; ++k) {
      T* p = probs + k * n * n;
      if (factorised()) {
        const Index f = config_.factor;
        gemm<T>(Trans::N, Trans::T, n, n, f, T(1), r1.data() + k * big_n * f, f,
                r2.data() + k * big_n * f, f, T(0), p, n, {}, 1);
      } else {
        for (Index i = 0; i < n; ++i) {
          const T* src = attention_weights.data() + (k * big_n + i) * big_n;
          std::copy(src, src + n, p + i * n);
        }
      }
      detail::softmax_block(p, n, n, config_.causal);
    }

    Epilogue<T> vb;
    vb.col_bias = value_bias.data();
    value_weight.multiply(rows, x.data(), x.outerStride(), T(0), v, d, vb);
    for (Index b = 0; b < batch; ++b)
      for (Index k = 0; k < h; ++k)
        detail::mix_tokens<T>(config_.causal, n, hd, probs + k * n * n, n,
                              v + b * n * d + k * hd, d, o + b * n * d + k * hd, d);
    Epilogue<T> ob;
    ob.col_bias = out_bias.data();
    out_weight.multiply(rows, o, d, T(0), y.data(), y.outerStride(), ob);
  }

  Matrix<T> forward(const ConstMatrixRef<T>& x, Index seq_len) const {
    Matrix<T> y(x.rows(), config_.channels);
    forward(x, seq_len, y);
    return y;
  }

  // [h, N, N] stored as (h*N) x N (dense form only)
  Matrix<T> attention_weights;
  // [h, N, k] each, stored as (h*N) x k (factorised form only)
  Matrix<T> r1, r2;
  PackedWeight<T> value_weight;  // [D, D]; W^T packed when set (packed_weight.hpp)
  Vector<T> value_bias;          // [D]
  PackedWeight<T> out_weight;    // [D, D]
  Vector<T> out_bias;      // [D]

 private:
  Config config_;
};

}  // namespace tokenmix

#pragma once
// Multi-head self-attention, equal to torch.nn.MultiheadAttention(D, heads, bias=True,
// batch_first=True) called as mha(x, x, x) (SPEC 2.9):
//
//   [Q | K | V] = X in_proj_weight^T + in_proj_bias          (K computed transposed)
//   O_h = softmax(Q_h K_h^T / sqrt(D/heads) + M) V_h         (tiled, attention_kernel.hpp)
//   Y = concat_h(O_h) out_proj.weight^T + out_proj.bias
//
// Head h is the column range [h*hd, (h+1)*hd) of Q and V (rows [h*hd, (h+1)*hd) of K^T),
// read in place. Memory is O(n D) at every length: the n x n scores never exist.
// Masks: `causal` (config) hides key j > i; a key-padding mask passed to forward() (batch x n,
// true = ignore, as PyTorch's key_padding_mask) hides keys per sequence. A query that sees no
// key comes out NaN, as in PyTorch.

#include <cmath>
#include <cstdint>
#include <string>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/gemm.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/core/workspace.hpp"
#include "tokenmix/io/state_dict.hpp"
#include "tokenmix/layers/attention_kernel.hpp"
#include "tokenmix/layers/softmax.hpp"

namespace tokenmix {

template <class T>
class SelfAttention {
 public:
  struct Config {
    Index channels = 0;  // D, the embedding width
    Index heads = 8;     // must divide D
    bool causal = false;
  };

  explicit SelfAttention(const Config& config) : config_(config) {
    if (config.channels <= 0)
      detail::fail<ArgumentError>("SelfAttention: expected channels > 0, got ", config.channels);
    if (config.heads <= 0 || config.channels % config.heads != 0)
      detail::fail<ArgumentError>("SelfAttention: expected heads > 0 dividing channels ",
                                  config.channels, ", got ", config.heads);
    const Index d = config.channels;
    in_proj_weight = Matrix<T>::Zero(3 * d, d);
    in_proj_bias = Vector<T>::Zero(3 * d);
    out_proj_weight = Matrix<T>::Zero(d, d);
    out_proj_bias = Vector<T>::Zero(d);
  }

  const Config& config() const { return config_; }
  Index channels() const { return config_.channels; }
  Index heads() const { return config_.heads; }
  Index head_dim() const { return config_.channels / config_.heads; }

  void load(const StateDict& dict, const std::string& prefix = "") {
    StateDictLoader loader(dict);
    load(loader, prefix);
    loader.finish("SelfAttention", prefix);
  }
  void load(StateDictLoader& loader, const std::string& prefix) {
    const Index d = config_.channels;
    loader.matrix(prefix + "in_proj_weight", in_proj_weight, 3 * d, d);
    loader.vector(prefix + "in_proj_bias", in_proj_bias, 3 * d);
    loader.matrix(prefix + "out_proj.weight", out_proj_weight, d, d);
    loader.vector(prefix + "out_proj.bias", out_proj_bias, d);
  }
  void save(StateDict& dict, const std::string& prefix = "") const {
    dict.insert(prefix + "in_proj_weight", in_proj_weight);
    dict.insert(prefix + "in_proj_bias", in_proj_bias);
    dict.insert(prefix + "out_proj.weight", out_proj_weight);
    dict.insert(prefix + "out_proj.bias", out_proj_bias);
  }

  // nn.MultiheadAttention._reset_parameters: xavier_uniform over the whole [3D, D] in-proj
  // (bound sqrt(6 / 4D)), zero biases, default nn.Linear init for out_proj.weight.
  void init_random(std::uint64_t seed) {
    Random rng(seed);
    rng.fill_xavier_uniform(in_proj_weight);
    in_proj_bias.setZero();
    rng.fill_linear_default(out_proj_weight);
    out_proj_bias.setZero();
  }

  // x: (B*n) x D, y: (B*n) x D (may alias x).
  void forward(const ConstMatrixRef<T>& x, Index seq_len, MatrixRef<T> y) const {
    run(x, seq_len, nullptr, y);
  }
  // key_padding_mask: B x n, true = that key is ignored by every query of its sequence.
  void forward(const ConstMatrixRef<T>& x, Index seq_len,
               const ConstBoolMatrixRef& key_padding_mask, MatrixRef<T> y) const {
    run(x, seq_len, &key_padding_mask, y);
  }
  Matrix<T> forward(const ConstMatrixRef<T>& x, Index seq_len) const {
    Matrix<T> y(x.rows(), config_.channels);
    forward(x, seq_len, y);
    return y;
  }
  Matrix<T> forward(const ConstMatrixRef<T>& x, Index seq_len,
                    const ConstBoolMatrixRef& key_padding_mask) const {
    Matrix<T> y(x.rows(), config_.channels);
    forward(x, seq_len, key_padding_mask, y);
    return y;
  }

  // Parameters under their PyTorch names ('.' -> '_').
  Matrix<T> in_proj_weight;   // [3D, D]: rows [0,D) Q, [D,2D) K, [2D,3D) V
  Vector<T> in_proj_bias;     // [3D]
  Matrix<T> out_proj_weight;  // [D, D]
  Vector<T> out_proj_bias;    // [D]

 private:
  void run(const ConstMatrixRef<T>& x, Index seq_len, const ConstBoolMatrixRef* mask,
           MatrixRef<T>& y) const {
    const Index d = config_.channels;
    detail::expect_cols("SelfAttention", "input", d, x.cols());
    detail::expect_shape("SelfAttention", "output", x.rows(), d, y.rows(), y.cols());
    const Index batch = detail::batch_count("SelfAttention", x.rows(), seq_len);
    if (mask != nullptr) {
      detail::expect_shape("SelfAttention", "key_padding_mask", batch, seq_len, mask->rows(),
                           mask->cols());
    }
    const Index rows = x.rows();
    if (rows == 0) return;

    // Q and V as (B*n) x D rows; K transposed per sequence (D x n, see attention_kernel.hpp),
    // computed as W_k X_b^T with the key bias per row.
    ScratchFrame frame;
    T* q = frame.take<T>(static_cast<std::size_t>(rows * d));
    T* kt = frame.take<T>(static_cast<std::size_t>(rows * d));
    T* v = frame.take<T>(static_cast<std::size_t>(rows * d));
    T* o = frame.take<T>(static_cast<std::size_t>(rows * d));
    const T* w = in_proj_weight.data();
    const T* bias = in_proj_bias.data();
    Epilogue<T> q_bias, v_bias;
    q_bias.col_bias = bias;
    v_bias.col_bias = bias + 2 * d;
    gemm<T>(Trans::N, Trans::T, rows, d, d, T(1), x.data(), x.outerStride(), w, d, T(0), q, d,
            q_bias);
    gemm<T>(Trans::N, Trans::T, rows, d, d, T(1), x.data(), x.outerStride(), w + 2 * d * d, d,
            T(0), v, d, v_bias);
    for (Index b = 0; b < batch; ++b) {
      Epilogue<T> k_bias;
      k_bias.row_bias = bias + d;
      gemm<T>(Trans::N, Trans::T, d, seq_len, d, T(1), w + d * d, d,
              x.data() + b * seq_len * x.outerStride(), x.outerStride(), T(0),
              kt + b * seq_len * d, seq_len, k_bias);
    }

    const Index hd = head_dim();
    const T scale = T(1) / std::sqrt(static_cast<T>(hd));
    const Index heads = config_.heads;
    detail::attention_heads<T>(batch * heads, seq_len, [&](Index i) {
      const Index b = i / heads, h = i % heads;
      detail::AttentionHead<T> head;
      head.n_q = head.n_k = seq_len;
      head.dim_qk = head.dim_v = hd;
      head.q = q + b * seq_len * d + h * hd;
      head.kt = kt + b * seq_len * d + h * hd * seq_len;
      head.v = v + b * seq_len * d + h * hd;
      head.ldq = head.ldv = d;
      head.ldkt = seq_len;
      head.o = o + b * seq_len * d + h * hd;
      head.ldo = d;
      head.scale = scale;
      head.causal = config_.causal;
      if (mask != nullptr) head.key_hidden = mask->data() + b * mask->outerStride();
      return head;
    });

    Epilogue<T> out_bias;
    out_bias.col_bias = out_proj_bias.data();
    gemm<T>(Trans::N, Trans::T, rows, d, d, T(1), o, d, out_proj_weight.data(), d, T(0),
            y.data(), y.outerStride(), out_bias);
  }

  Config config_;
};

}  // namespace tokenmix

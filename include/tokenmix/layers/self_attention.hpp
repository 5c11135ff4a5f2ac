#pragma once
// Multi-head self-attention, equal to torch.nn.MultiheadAttention(D, heads, bias=True,
// batch_first=True) called as mha(x, x, x) (SPEC 2.9):
//
//   [Q | K | V] = X in_proj_weight^T + in_proj_bias          (one packed GEMM; K then transposed)
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
#include "tokenmix/layers/packed_weight.hpp"
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
    in_proj_weight.reset(3 * d, d);
    in_proj_bias = Vector<T>::Zero(3 * d);
    out_proj_weight.reset(d, d);
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
    in_proj_weight.load(loader, prefix + "in_proj_weight");
    loader.vector(prefix + "in_proj_bias", in_proj_bias, 3 * d);
    out_proj_weight.load(loader, prefix + "out_proj.weight");
    loader.vector(prefix + "out_proj.bias", out_proj_bias, d);
  }
  void save(StateDict& dict, const std::string& prefix = "") const {
    dict.insert(prefix + "in_proj_weight", in_proj_weight.value());
    dict.insert(prefix + "in_proj_bias", in_proj_bias);
    dict.insert(prefix + "out_proj.weight", out_proj_weight.value());
    dict.insert(prefix + "out_proj.bias", out_proj_bias);
  }

  // nn.MultiheadAttention._reset_parameters: xavier_uniform over the whole [3D, D] in-proj
  // (bound sqrt(6 / 4D)), zero biases, default nn.Linear init for out_proj.weight.
  void init_random(std::uint64_t seed) {
    Random rng(seed);
    in_proj_weight.update([&](Matrix<T>& w) { rng.fill_xavier_uniform(w); });
    in_proj_bias.setZero();
    out_proj_weight.update([&](Matrix<T>& w) { rng.fill_linear_default(w); });
    out_proj_bias.setZero();
  }

  // x: (B*n) x D, y: (B*n) x D (may alias x).
  void forward(const ConstMatrixRef<T>& x, Index seq_len, MatrixRef<T> y) const {
    check_output(x, y);
    run(x, seq_len, nullptr, y.data(), y.outerStride(), nullptr, 0);
  }
  // y = residual + attention(x): the residual add rides in out_proj's GEMM epilogue (a
  // pre-LN block's whole attention branch without another pass). residual may alias y;
  // x must not.
  void forward_residual(const ConstMatrixRef<T>& x, Index seq_len, const T* residual,
                        Index ld_residual, MatrixRef<T> y) const {
    check_output(x, y);
    run(x, seq_len, nullptr, y.data(), y.outerStride(), residual, ld_residual);
  }
  // key_padding_mask: B x n, true = that key is ignored by every query of its sequence.
  void forward(const ConstMatrixRef<T>& x, Index seq_len,
               const ConstBoolMatrixRef& key_padding_mask, MatrixRef<T> y) const {
    check_output(x, y);
    run(x, seq_len, &key_padding_mask, y.data(), y.outerStride(), nullptr, 0);
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
  // Weights are PackedWeights: W^T is packed whenever they are set (packed_weight.hpp).
  PackedWeight<T> in_proj_weight;   // [3D, D]: rows [0,D) Q, [D,2D) K, [2D,3D) V
  Vector<T> in_proj_bias;     // [3D]
  PackedWeight<T> out_proj_weight;  // [D, D]
  Vector<T> out_proj_bias;    // [D]

 private:
  void check_output(const ConstMatrixRef<T>& x, const MatrixRef<T>& y) const {
    detail::expect_cols("SelfAttention", "input", config_.channels, x.cols());
    detail::expect_shape("SelfAttention", "output", x.rows(), config_.channels, y.rows(),
                         y.cols());
  }
  void run(const ConstMatrixRef<T>& x, Index seq_len, const ConstBoolMatrixRef* mask, T* y,
           Index ldy, const T* residual, Index ld_residual) const {
    const Index d = config_.channels;
    const Index batch = detail::batch_count("SelfAttention", x.rows(), seq_len);
    if (mask != nullptr) {
      detail::expect_shape("SelfAttention", "key_padding_mask", batch, seq_len, mask->rows(),
                           mask->cols());
    }
    const Index rows = x.rows();
    if (rows == 0) return;

    // One GEMM against the packed [3D, D] in-projection gives Q | K | V side by side
    // (rows x 3D, biases in the epilogue); the kernel wants K transposed per sequence
    // (D x n, see attention_kernel.hpp), a copy of rows x D values against the GEMM's
    // rows x 3D x D multiply-adds.
    ScratchFrame frame;
    T* qkv = frame.take<T>(static_cast<std::size_t>(rows * 3 * d));
    T* kt = frame.take<T>(static_cast<std::size_t>(rows * d));
    T* o = frame.take<T>(static_cast<std::size_t>(rows * d));
    Epilogue<T> in_bias;
    in_bias.col_bias = in_proj_bias.data();
    in_proj_weight.multiply(rows, x.data(), x.outerStride(), T(0), qkv, 3 * d, in_bias);
    detail::transpose_keys(batch, seq_len, d, qkv + d, 3 * d, kt);

    const Index hd = head_dim();
    const T scale = T(1) / std::sqrt(static_cast<T>(hd));
    const Index heads = config_.heads;
    detail::attention_heads<T>(batch * heads, seq_len, [&](Index i) {
      const Index b = i / heads, h = i % heads;
      detail::AttentionHead<T> head;
      head.n_q = head.n_k = seq_len;
      head.dim_qk = head.dim_v = hd;
      head.q = qkv + b * seq_len * 3 * d + h * hd;
      head.kt = kt + b * seq_len * d + h * hd * seq_len;
      head.v = qkv + b * seq_len * 3 * d + 2 * d + h * hd;
      head.ldq = head.ldv = 3 * d;
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
    out_bias.residual = residual;
    out_bias.ld_residual = ld_residual;
    out_proj_weight.multiply(rows, o, d, T(0), y, ldy, out_bias);
  }

  Config config_;
};

}  // namespace tokenmix

#pragma once
// aMLP's tiny attention (SPEC 2.5; lucidrains g-mlp-pytorch `Attention`): one head of width
// a = attn_dim (64 in the paper) on the block's normalised input, its output added to the
// spatial gating unit's gate.
//
//   [Q | K | V] = X to_qkv.weight^T              (no bias; chunk(3): Q first, then K, V)
//   T = softmax((Q K^T) * a^-1/2 + M) V           (tiled, attention_kernel.hpp)
//   Y = T to_out.weight^T + to_out.bias           [B*n, out_channels]   (out = H/2 in aMLP)
//
// Causal hides key j > i (lucidrains fills with -float max; the softmax is the same).
// forward_add() accumulates into y instead of overwriting it, which is how the aMLP block
// adds T to the gate without another buffer or pass.

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

namespace tokenmix {

template <class T>
class TinyAttention {
 public:
  struct Config {
    Index channels = 0;      // D, input width
    Index out_channels = 0;  // width of the result (H/2 in the aMLP block)
    Index attn_dim = 64;     // a
    bool causal = false;
  };

  explicit TinyAttention(const Config& config) : config_(config) {
    if (config.channels <= 0 || config.out_channels <= 0 || config.attn_dim <= 0)
      detail::fail<ArgumentError>(
          "TinyAttention: expected channels, out_channels and attn_dim > 0, got ",
          config.channels, ", ", config.out_channels, ", ", config.attn_dim);
    to_qkv_weight.reset(3 * config.attn_dim, config.channels);
    to_out_weight.reset(config.out_channels, config.attn_dim);
    to_out_bias = Vector<T>::Zero(config.out_channels);
  }

  const Config& config() const { return config_; }

  void load(const StateDict& dict, const std::string& prefix = "") {
    StateDictLoader loader(dict);
    load(loader, prefix);
    loader.finish("TinyAttention", prefix);
  }
  void load(StateDictLoader& loader, const std::string& prefix) {
    to_qkv_weight.load(loader, prefix + "to_qkv.weight");
    to_out_weight.load(loader, prefix + "to_out.weight");
    loader.vector(prefix + "to_out.bias", to_out_bias, config_.out_channels);
  }
  void save(StateDict& dict, const std::string& prefix = "") const {
    dict.insert(prefix + "to_qkv.weight", to_qkv_weight.value());
    dict.insert(prefix + "to_out.weight", to_out_weight.value());
    dict.insert(prefix + "to_out.bias", to_out_bias);
  }

  // PyTorch's default nn.Linear init for both projections (lucidrains does not override it).
  void init_random(std::uint64_t seed) {
    Random rng(seed);
    to_qkv_weight.update([&](Matrix<T>& w) { rng.fill_linear_default(w); });
    to_out_weight.update([&](Matrix<T>& w) { rng.fill_linear_default(w); });
    const double bound = 1.0 / std::sqrt(static_cast<double>(config_.attn_dim));
    for (Index i = 0; i < to_out_bias.size(); ++i)
      to_out_bias[i] = static_cast<T>(rng.uniform(-bound, bound));
  }

  // x: (B*n) x channels; y: (B*n) x out_channels (y may alias x when the widths agree).
  void forward(const ConstMatrixRef<T>& x, Index seq_len, MatrixRef<T> y) const {
    run(x, seq_len, y, false);
  }
  // y += attention(x): the aMLP gate accumulation.
  void forward_add(const ConstMatrixRef<T>& x, Index seq_len, MatrixRef<T> y) const {
    run(x, seq_len, y, true);
  }
  Matrix<T> forward(const ConstMatrixRef<T>& x, Index seq_len) const {
    Matrix<T> y(x.rows(), config_.out_channels);
    forward(x, seq_len, y);
    return y;
  }

  PackedWeight<T> to_qkv_weight;  // [3a, D]; W^T packed when set (packed_weight.hpp)
  PackedWeight<T> to_out_weight;  // [out, a]
  Vector<T> to_out_bias;    // [out]

 private:
  void run(const ConstMatrixRef<T>& x, Index seq_len, MatrixRef<T>& y, bool accumulate) const {
    const Index d = config_.channels, a = config_.attn_dim, out = config_.out_channels;
    detail::expect_cols("TinyAttention", "input", d, x.cols());
    detail::expect_shape("TinyAttention", "output", x.rows(), out, y.rows(), y.cols());
    const Index batch = detail::batch_count("TinyAttention", x.rows(), seq_len);
    const Index rows = x.rows();

    // Q | K | V from one GEMM against the packed to_qkv weight, then K transposed per
    // sequence (see attention_kernel.hpp).
    ScratchFrame frame;
    T* qkv = frame.take<T>(static_cast<std::size_t>(rows * 3 * a));
    T* kt = frame.take<T>(static_cast<std::size_t>(rows * a));
    T* o = frame.take<T>(static_cast<std::size_t>(rows * a));
    to_qkv_weight.multiply(rows, x.data(), x.outerStride(), T(0), qkv, 3 * a);
    detail::transpose_keys(batch, seq_len, a, qkv + a, 3 * a, kt);

    const T scale = T(1) / std::sqrt(static_cast<T>(a));
    detail::attention_heads<T>(batch, seq_len, [&](Index b) {
      detail::AttentionHead<T> head;
      head.n_q = head.n_k = seq_len;
      head.dim_qk = head.dim_v = a;
      head.q = qkv + b * seq_len * 3 * a;
      head.kt = kt + b * seq_len * a;
      head.v = qkv + b * seq_len * 3 * a + 2 * a;
      head.ldq = head.ldv = 3 * a;
      head.ldkt = seq_len;
      head.o = o + b * seq_len * a;
      head.ldo = a;
      head.scale = scale;
      head.causal = config_.causal;
      return head;
    });

    Epilogue<T> bias;
    bias.col_bias = to_out_bias.data();
    to_out_weight.multiply(rows, o, a, accumulate ? T(1) : T(0), y.data(), y.outerStride(),
                           bias);
  }

  Config config_;
};

}  // namespace tokenmix

#pragma once
// External attention (Guo et al. 2021, "Beyond Self-attention: External Attention using Two
// Linear Layers for Visual Tasks"; SPEC 2.7): tokens attend to S learned memory slots instead
// of to each other, so cost and memory are linear in n.
//
// heads = 1 (SPEC 2.7, xmu-xiaoma666 `ExternalAttention`; keys mk.weight [S,D], mv.weight [D,S]):
//   A0 = X mk^T  [n, S];  A^ = softmax over the TOKEN axis (per sequence and slot s);
//   A = A^ / sum_s A^ (L1 over slots);  Y = A mv^T  [n, D].
//
// heads > 1 follows the paper's multi-head form as the official EANet code (EAMLP) writes it:
//   F = X trans_dims^T + b;  split F's channels into heads of width D/h;  per head the
//   single-head recurrence above with mk [S, D/h] and mv [D/h, S] SHARED by all heads (EAMLP
//   applies one linear_0 / linear_1 to every head);  concat;  Y = O proj^T + b.
// Keys: trans_dims.{weight [D,D], bias [D]}, mk.weight [S, D/h], mv.weight [D/h, S],
// proj.{weight [D,D], bias [D]}. EAMLP's linear_0 / linear_1 carry biases; we leave them out
// because they add nothing: a bias on mk shifts each (head, slot) logit equally for every
// token, which the softmax over tokens cancels, and a bias on mv is a constant per channel
// that proj.bias absorbs. EAMLP's 1e-9 in the L1 denominator is left out as in SPEC 2.7.
//
// Shapes: any n; memories S. With heads = h, the (B*n) x D activations are viewed as
// (B*n*h) x (D/h) rows, so all heads go through one gemm per product without copies.

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
#include "tokenmix/layers/packed_weight.hpp"
#include "tokenmix/layers/softmax.hpp"

namespace tokenmix {

template <class T>
class ExternalAttention {
 public:
  struct Config {
    Index channels = 0;  // D
    Index memory = 64;   // S, memory slots
    Index heads = 1;     // 1: SPEC 2.7's layer; > 1: EANet multi-head (must divide D)
  };

  explicit ExternalAttention(const Config& config) : config_(config) {
    if (config.channels <= 0 || config.memory <= 0)
      detail::fail<ArgumentError>("ExternalAttention: expected channels and memory > 0, got ",
                                  config.channels, " and ", config.memory);
    if (config.heads <= 0 || config.channels % config.heads != 0)
      detail::fail<ArgumentError>("ExternalAttention: expected heads > 0 dividing channels ",
                                  config.channels, ", got ", config.heads);
    const Index d = config.channels, hd = head_dim(), s = config.memory;
    mk_weight.reset(s, hd);
    mv_weight.reset(hd, s);
    if (multi_head()) {
      trans_dims_weight.reset(d, d);
      trans_dims_bias = Vector<T>::Zero(d);
      proj_weight.reset(d, d);
      proj_bias = Vector<T>::Zero(d);
    }
  }

  const Config& config() const { return config_; }
  Index head_dim() const { return config_.channels / config_.heads; }
  bool multi_head() const { return config_.heads > 1; }

  void load(const StateDict& dict, const std::string& prefix = "") {
    StateDictLoader loader(dict);
    load(loader, prefix);
    loader.finish("ExternalAttention", prefix);
  }
  void load(StateDictLoader& loader, const std::string& prefix) {
    const Index d = config_.channels;
    mk_weight.load(loader, prefix + "mk.weight");
    mv_weight.load(loader, prefix + "mv.weight");
    if (multi_head()) {
      trans_dims_weight.load(loader, prefix + "trans_dims.weight");
      loader.vector(prefix + "trans_dims.bias", trans_dims_bias, d);
      proj_weight.load(loader, prefix + "proj.weight");
      loader.vector(prefix + "proj.bias", proj_bias, d);
    }
  }
  void save(StateDict& dict, const std::string& prefix = "") const {
    dict.insert(prefix + "mk.weight", mk_weight.value());
    dict.insert(prefix + "mv.weight", mv_weight.value());
    if (multi_head()) {
      dict.insert(prefix + "trans_dims.weight", trans_dims_weight.value());
      dict.insert(prefix + "trans_dims.bias", trans_dims_bias);
      dict.insert(prefix + "proj.weight", proj_weight.value());
      dict.insert(prefix + "proj.bias", proj_bias);
    }
  }

  // Memories N(0, 0.001^2) (xmu-xiaoma666 / EANet); the multi-head projections as EAMLP's
  // timm init: truncated normal std 0.02 (cut at +-2 std), zero bias.
  void init_random(std::uint64_t seed) {
    Random rng(seed);
    mk_weight.update([&](Matrix<T>& w) { rng.fill_normal(w, 0.0, 0.001); });
    mv_weight.update([&](Matrix<T>& w) { rng.fill_normal(w, 0.0, 0.001); });
    if (multi_head()) {
      for (PackedWeight<T>* w : {&trans_dims_weight, &proj_weight})
        w->update([&](Matrix<T>& m) {
          for (Index i = 0; i < m.size(); ++i)
            m.data()[i] = static_cast<T>(rng.truncated_normal(0.0, 0.02, -2.0, 2.0));
        });
      trans_dims_bias.setZero();
      proj_bias.setZero();
    }
  }

  // x: (B*n) x D; y: (B*n) x D (may alias x).
  void forward(const ConstMatrixRef<T>& x, Index seq_len, MatrixRef<T> y) const {
    const Index d = config_.channels, h = config_.heads, hd = head_dim(), s = config_.memory;
    detail::expect_cols("ExternalAttention", "input", d, x.cols());
    detail::expect_shape("ExternalAttention", "output", x.rows(), d, y.rows(), y.cols());
    const Index batch = detail::batch_count("ExternalAttention", x.rows(), seq_len);
    const Index rows = x.rows();
    if (rows == 0) return;

    ScratchFrame frame;
    const Index width = h * s;  // attention columns per token: [head][slot]
    T* attn = frame.take<T>(static_cast<std::size_t>(rows * width));

    // Per-head features as (rows*h) x hd: row r*h + k is head k of token r.
    const T* feat = x.data();
    Index ld_feat = x.outerStride();
    T* trans = nullptr;
    if (multi_head()) {
      trans = frame.take<T>(static_cast<std::size_t>(rows * d));
      Epilogue<T> bias;
      bias.col_bias = trans_dims_bias.data();
      trans_dims_weight.multiply(rows, x.data(), x.outerStride(), T(0), trans, d, bias);
      feat = trans;
      ld_feat = hd;  // contiguous rows of D = h consecutive head rows of width hd
    }
    mk_weight.multiply(rows * h, feat, ld_feat, T(0), attn, s);

    for (Index b = 0; b < batch; ++b) normalise(attn + b * seq_len * width, seq_len, width);

    if (!multi_head()) {
      mv_weight.multiply(rows, attn, s, T(0), y.data(), y.outerStride());
      return;
    }
    // Heads' outputs land in place of the features (no longer needed), then the projection.
    mv_weight.multiply(rows * h, attn, s, T(0), trans, hd);
    Epilogue<T> bias;
    bias.col_bias = proj_bias.data();
    proj_weight.multiply(rows, trans, d, T(0), y.data(), y.outerStride(), bias);
  }

  Matrix<T> forward(const ConstMatrixRef<T>& x, Index seq_len) const {
    Matrix<T> y(x.rows(), config_.channels);
    forward(x, seq_len, y);
    return y;
  }

  // Weights are PackedWeights: W^T is packed whenever they are set (packed_weight.hpp).
  PackedWeight<T> mk_weight;  // [S, D/h]
  PackedWeight<T> mv_weight;  // [D/h, S]
  // heads > 1 only (empty otherwise)
  PackedWeight<T> trans_dims_weight;  // [D, D]
  Vector<T> trans_dims_bias;          // [D]
  PackedWeight<T> proj_weight;        // [D, D]
  Vector<T> proj_bias;          // [D]

 private:
  // One sequence's n x (h*S) logits: softmax down each column (over tokens), then each row's
  // S-wide head segment divided by its sum (L1 over slots). Done as the identical
  //   A[i,s] = softmax_s(a[i,s] - lse[s]),  lse[s] = log sum_i exp(a[i,s])
  // so that a token whose every slot underflows after the token softmax (inputs ~1e4) still
  // gets its exact distribution instead of 0/0: the row softmax rescales by the row maximum.
  void normalise(T* a, Index n, Index width) const {
    ScratchFrame frame;
    T* lse = frame.take<T>(static_cast<std::size_t>(width));
    T* sum = frame.take<T>(static_cast<std::size_t>(width));
    T* tmp = frame.take<T>(static_cast<std::size_t>(width));
    std::fill(lse, lse + width, -std::numeric_limits<T>::infinity());
    std::fill(sum, sum + width, T(0));
    for (Index i = 0; i < n; ++i) {
      const T* row = a + i * width;
      for (Index c = 0; c < width; ++c) lse[c] = row[c] > lse[c] ? row[c] : lse[c];
    }
    for (Index i = 0; i < n; ++i) {
      std::copy(a + i * width, a + (i + 1) * width, tmp);
      detail::exp_columns(tmp, lse, sum, width);
    }
    for (Index c = 0; c < width; ++c) lse[c] += std::log(sum[c]);
    const Index s = config_.memory;
    for (Index i = 0; i < n; ++i) {
      T* row = a + i * width;
      for (Index c = 0; c < width; ++c) row[c] -= lse[c];
      for (Index c0 = 0; c0 < width; c0 += s) detail::softmax_row_inplace(row + c0, s);
    }
  }

  Config config_;
};

}  // namespace tokenmix

#pragma once
// timm `Mlp` (SPEC.md §2.1): y = fc2(act(fc1(x))), act = exact GELU unless configured.
// Two GEMMs and nothing else: fc1's epilogue adds its bias and applies the activation while
// the tile is still in registers, fc2's adds its bias and, when the caller asks, scales by a
// LayerScale and adds the residual stream, so a whole `x + ls * mlp(norm(x))` branch costs
// two passes over the hidden activations.

#include <algorithm>
#include <cstdint>
#include <string>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/gemm.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/core/workspace.hpp"
#include "tokenmix/io/state_dict.hpp"
#include "tokenmix/layers/linear.hpp"

namespace tokenmix {

template <class T>
class FeedForward {
 public:
  struct Config {
    Index in_features = 0;
    Index hidden_features = 0;  // 0: in_features
    Index out_features = 0;     // 0: in_features
    Activation act = Activation::gelu_erf;
  };

  explicit FeedForward(const Config& config)
      : config_(resolved(config)),
        fc1({config_.in_features, config_.hidden_features}),
        fc2({config_.hidden_features, config_.out_features}) {}

  const Config& config() const { return config_; }
  Index in_features() const { return config_.in_features; }
  Index hidden_features() const { return config_.hidden_features; }
  Index out_features() const { return config_.out_features; }

  void load(const StateDict& dict, const std::string& prefix = "") {
    StateDictLoader loader(dict);
    load(loader, prefix);
    loader.finish("FeedForward", prefix);
  }
  void load(StateDictLoader& loader, const std::string& prefix) {
    fc1.load(loader, prefix + "fc1.");
    fc2.load(loader, prefix + "fc2.");
  }
  void save(StateDict& dict, const std::string& prefix = "") const {
    fc1.save(dict, prefix + "fc1.");
    fc2.save(dict, prefix + "fc2.");
  }

  // PyTorch default Linear init for both layers.
  void init_random(Random& rng) {
    fc1.init_random(rng);
    fc2.init_random(rng);
  }
  void init_random(std::uint64_t seed) {
    Random rng(seed);
    init_random(rng);
  }
  // timm MLP-model init: xavier_uniform weights, biases N(0, 1e-6^2).
  void init_timm(Random& rng) {
    fc1.init_xavier(rng, 1e-6);
    fc2.init_xavier(rng, 1e-6);
  }

  void forward(const ConstMatrixRef<T>& x, MatrixRef<T> y) const {
    check_io(x, y.rows(), y.cols());
    forward(x.rows(), x.data(), x.outerStride(), y.data(), y.outerStride());
  }
  // y = residual + col_scale * mlp(x); residual may alias y (the residual stream updated in
  // place), col_scale may be null (no LayerScale).
  void forward(const ConstMatrixRef<T>& x, MatrixRef<T> y, const T* residual, Index ld_residual,
               const T* col_scale = nullptr) const {
    check_io(x, y.rows(), y.cols());
    forward(x.rows(), x.data(), x.outerStride(), y.data(), y.outerStride(), residual,
            ld_residual, col_scale);
  }
  Matrix<T> forward(const ConstMatrixRef<T>& x) const {
    Matrix<T> y(x.rows(), config_.out_features);
    forward(x, y);
    return y;
  }

  // Raw form used by blocks. x must not alias y; residual may.
  void forward(Index rows, const T* x, Index ldx, T* y, Index ldy, const T* residual = nullptr,
               Index ld_residual = 0, const T* col_scale = nullptr) const {
    ScratchFrame frame;
    const Index hidden = config_.hidden_features;
    // Row chunks bound the hidden scratch (rows x 4d grows with the batch) to ~32 MB. The
    // weights are packed once (PackedWeight), so a chunk costs only its GEMM calls' fixed
    // overhead; chunks stay large: all rows up to that bound, never fewer than 1024.
    const Index chunk = std::min<Index>(
        rows, std::max<Index>(1024, (Index(32) << 20) / (hidden * Index(sizeof(T)))));
    T* h = frame.take<T>(static_cast<std::size_t>(std::max<Index>(chunk, 1) * hidden));
    for (Index r0 = 0; r0 < rows; r0 += chunk) {
      const Index m = std::min(chunk, rows - r0);
      Epilogue<T> e1;
      e1.act = config_.act;
      fc1.forward(m, x + r0 * ldx, ldx, h, hidden, e1);
      Epilogue<T> e2;
      e2.col_scale = col_scale;
      if (residual) {
        e2.residual = residual + r0 * ld_residual;
        e2.ld_residual = ld_residual;
      }
      fc2.forward(m, h, hidden, y + r0 * ldy, ldy, e2);
    }
  }

 private:
  static Config resolved(Config c) {
    if (c.in_features <= 0)
      detail::fail<ArgumentError>("FeedForward: expected positive in_features, got ",
                                  c.in_features);
    if (c.hidden_features < 0 || c.out_features < 0)
      detail::fail<ArgumentError>(
          "FeedForward: expected hidden_features and out_features >= 0 (0 = in_features), got ",
          c.hidden_features, " and ", c.out_features);
    if (c.hidden_features == 0) c.hidden_features = c.in_features;
    if (c.out_features == 0) c.out_features = c.in_features;
    return c;
  }
  void check_io(const ConstMatrixRef<T>& x, Index rows, Index cols) const {
    detail::expect_cols("FeedForward", "input", config_.in_features, x.cols());
    detail::expect_shape("FeedForward", "output", x.rows(), config_.out_features, rows, cols);
  }

  Config config_;

 public:
  Linear<T> fc1;  // [hidden, in]
  Linear<T> fc2;  // [out, hidden]
};

}  // namespace tokenmix

#pragma once
// gMLP's Spatial Gating Unit (timm `SpatialGatingUnit`, SPEC.md §2.3): the input Z [n, H] is
// split into halves U (channels [0, H/2)) and V ([H/2, H)); V is normalised (LayerNorm,
// eps 1e-5 even inside gMLP) and mixed along tokens, G = W LN(V) + b with b per output
// token; the output is U * G. The token mixing is one row-major GEMM W(n x n) LN(V)(n x H/2)
// per sequence with the bias as the epilogue's row bias, so no transpose is materialised.
// aMLP adds the tiny-attention output to G before the product (forward's gate_addend), which
// rides in the same GEMM as the epilogue's residual.
//
// Length-tied: the layer is built for seq_len N and accepts any n <= N, using the leading
// n x n block of W and the leading n bias entries. Causal: W[i, j] is ignored for j > i (as
// lucidrains masks it at forward time; the stored weight is left as loaded). The causal
// product never reads the upper triangle (causal_product.hpp), so a NaN in a later token
// stays out of earlier rows, and it costs about half the full one.

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
#include "tokenmix/layers/layer_norm.hpp"
#include "tokenmix/layers/linear.hpp"

namespace tokenmix {

template <class T>
class SpatialGatingUnit {
 public:
  struct Config {
    Index seq_len = 0;   // N: proj is N x N
    Index channels = 0;  // H: input width (even); the output has H / 2 channels
    bool causal = false;
    double eps = 1e-5;
  };

  explicit SpatialGatingUnit(const Config& config)
      : config_(validated(config)),
        norm({config.channels / 2, config.eps}),
        proj({config.seq_len, config.seq_len}) {}

  const Config& config() const { return config_; }
  Index seq_len() const { return config_.seq_len; }
  Index in_channels() const { return config_.channels; }
  Index out_channels() const { return config_.channels / 2; }

  void load(const StateDict& dict, const std::string& prefix = "") {
    StateDictLoader loader(dict);
    load(loader, prefix);
    loader.finish("SpatialGatingUnit", prefix);
  }
  void load(StateDictLoader& loader, const std::string& prefix) {
    norm.load(loader, prefix + "norm.");
    proj.load(loader, prefix + "proj.");
  }
  void save(StateDict& dict, const std::string& prefix = "") const {
    norm.save(dict, prefix + "norm.");
    proj.save(dict, prefix + "proj.");
  }

  // timm init: LayerNorm 1 / 0, proj.weight ~ N(0, 1e-6^2), proj.bias = 1 (out ~ U at init).
  void init_random(Random& rng) {
    norm.reset();
    proj.weight.update([&](Matrix<T>& w) { rng.fill_normal(w, 0.0, 1e-6); });
    proj.bias.setOnes();
  }
  void init_random(std::uint64_t seed) {
    Random rng(seed);
    init_random(rng);
  }

  // z: (B*n) x H, y: (B*n) x H/2. gate_addend, when given, is (B*n) x H/2 with row stride
  // ld_gate_addend and is added to the token-mixed gate before the product.
  void forward(const ConstMatrixRef<T>& z, Index seq_len, MatrixRef<T> y,
               const T* gate_addend = nullptr, Index ld_gate_addend = 0) const {
    detail::expect_cols("SpatialGatingUnit", "input", config_.channels, z.cols());
    detail::expect_shape("SpatialGatingUnit", "output", z.rows(), out_channels(), y.rows(),
                         y.cols());
    forward(z.rows(), seq_len, z.data(), z.outerStride(), y.data(), y.outerStride(),
            gate_addend, ld_gate_addend);
  }
  Matrix<T> forward(const ConstMatrixRef<T>& z, Index seq_len) const {
    Matrix<T> y(z.rows(), out_channels());
    forward(z, seq_len, y);
    return y;
  }

  // Raw form used by blocks; y must not overlap z.
  void forward(Index rows, Index seq_len, const T* z, Index ldz, T* y, Index ldy,
               const T* gate_addend = nullptr, Index ld_gate_addend = 0) const {
    check_length(seq_len);
    const Index batch = detail::batch_count("SpatialGatingUnit", rows, seq_len);
    const Index n = seq_len, half = out_channels(), full = config_.seq_len;
    if (gate_addend != nullptr && ld_gate_addend < half)
      detail::fail<ShapeError>("SpatialGatingUnit: expected gate addend row stride >= ", half,
                               ", got ", ld_gate_addend);
    ScratchFrame frame;
    T* vn = frame.take<T>(static_cast<std::size_t>(n * half));
    const T* w = proj.weight.data();
    for (Index b = 0; b < batch; ++b) {
      const T* zb = z + b * n * ldz;
      T* yb = y + b * n * ldy;
      norm.forward(n, zb + half, ldz, vn, half);
      Epilogue<T> e;
      e.row_bias = proj.bias.data();
      if (gate_addend) {
        e.residual = gate_addend + b * n * ld_gate_addend;
        e.ld_residual = ld_gate_addend;
      }
      if (!config_.causal) {
        // The gating product u * (W v + b) rides in the GEMM's epilogue too.
        e.multiplier = zb;
        e.ld_multiplier = ldz;
        gemm<T>(Trans::N, Trans::N, n, half, n, T(1), w, full, vn, half, T(0), yb, ldy, e);
      } else {
        // The gate starts as bias (+ addend) and the staircase accumulates onto it: W's
        // upper triangle and the rows of V it would weight are never read (causal under NaN).
        for (Index i = 0; i < n; ++i) {
          T* gi = yb + i * ldy;
          std::fill(gi, gi + half, proj.bias[i]);
          if (gate_addend)
            for (Index c = 0; c < half; ++c) gi[c] += e.residual[i * ld_gate_addend + c];
        }
        detail::causal_gemm<T>(n, half, n, 0, T(1), w, full, vn, half, yb, ldy);
        using Row = Eigen::Map<const Eigen::Array<T, 1, Eigen::Dynamic>>;
        using RowOut = Eigen::Map<Eigen::Array<T, 1, Eigen::Dynamic>>;
        for (Index i = 0; i < n; ++i) RowOut(yb + i * ldy, half) *= Row(zb + i * ldz, half);
      }
    }
  }

 private:
  static Config validated(const Config& c) {
    if (c.seq_len <= 0)
      detail::fail<ArgumentError>("SpatialGatingUnit: expected positive seq_len, got ",
                                  c.seq_len);
    if (c.channels <= 0 || c.channels % 2 != 0)
      detail::fail<ArgumentError>(
          "SpatialGatingUnit: expected a positive even channel count (split in halves), got ",
          c.channels);
    return c;
  }
  void check_length(Index n) const {
    if (n <= 0 || n > config_.seq_len)
      detail::fail<ShapeError>("SpatialGatingUnit: expected input with ", config_.seq_len,
                               " tokens or fewer, got ", n);
  }
  Config config_;

 public:
  LayerNorm<T> norm;  // over the H/2 channels of V
  Linear<T> proj;     // token projection: weight [N, N], bias [N] (per output token)
};

}  // namespace tokenmix

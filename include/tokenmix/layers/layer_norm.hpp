#pragma once
// nn.LayerNorm over the channel axis (SPEC.md §1): biased variance, eps per layer (1e-5 by
// default, 1e-6 inside Mixer/gMLP blocks, 1e-12 in FNet). Mean and variance are computed in
// two passes over the row (the row sits in L1), never as E[x^2] - E[x]^2, which cancels
// catastrophically for inputs of magnitude 1e4 with small spread; see layer_norm_row for the
// shift that keeps fp32 exact enough there too.

#include <cmath>
#include <cstdint>
#include <string>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/io/state_dict.hpp"

namespace tokenmix {

namespace detail {
// One row: y = (x - mean) / sqrt(var + eps) * gamma + beta. y may alias x.
// The row is shifted by its first element before anything is summed: for |x| ~ 1e4 with unit
// spread, a float mean is off by half an ulp of 1e4 (5e-4), which is already a 5e-4 error
// in every output; x - x0 is exact (Sterbenz) and small, so its mean `delta` and the
// centred values (x - x0) - delta keep full precision. mean = x0 + delta is never formed.
template <class T>
inline void layer_norm_row(const T* x, T* y, Index d, const T* gamma, const T* beta, T eps) {
  using Row = Eigen::Map<const Eigen::Array<T, 1, Eigen::Dynamic>>;
  using RowOut = Eigen::Map<Eigen::Array<T, 1, Eigen::Dynamic>>;
  const Row xr(x, d);
  const T x0 = x[0];
  const T delta = (xr - x0).sum() / T(d);
  const T var = ((xr - x0) - delta).square().sum() / T(d);
  const T rstd = T(1) / std::sqrt(var + eps);
  RowOut(y, d) = ((xr - x0) - delta) * rstd * Row(gamma, d) + Row(beta, d);
}
}  // namespace detail

template <class T>
class LayerNorm {
 public:
  struct Config {
    Index channels = 0;
    double eps = 1e-5;
  };

  explicit LayerNorm(const Config& config) : config_(config) {
    if (config.channels <= 0)
      detail::fail<ArgumentError>("LayerNorm: expected positive channels, got ",
                                  config.channels);
    if (!(config.eps >= 0.0))
      detail::fail<ArgumentError>("LayerNorm: expected eps >= 0, got ", config.eps);
    weight = Vector<T>::Ones(config.channels);
    bias = Vector<T>::Zero(config.channels);
  }

  const Config& config() const { return config_; }
  Index channels() const { return config_.channels; }

  void load(const StateDict& dict, const std::string& prefix = "") {
    StateDictLoader loader(dict);
    load(loader, prefix);
    loader.finish("LayerNorm", prefix);
  }
  void load(StateDictLoader& loader, const std::string& prefix) {
    loader.vector(prefix + "weight", weight, config_.channels);
    loader.vector(prefix + "bias", bias, config_.channels);
  }
  void save(StateDict& dict, const std::string& prefix = "") const {
    dict.insert(prefix + "weight", weight);
    dict.insert(prefix + "bias", bias);
  }

  // PyTorch initialises gamma = 1, beta = 0; init_random() instead draws them around those
  // values so tests see the affine part act (gamma ~ 1 + N(0, 0.1^2), beta ~ N(0, 0.1^2)).
  void reset() {
    weight.setOnes();
    bias.setZero();
  }
  void init_random(Random& rng) {
    for (Index i = 0; i < config_.channels; ++i) weight[i] = static_cast<T>(1.0 + 0.1 * rng.normal());
    rng.fill_normal(bias, 0.0, 0.1);
  }
  void init_random(std::uint64_t seed) {
    Random rng(seed);
    init_random(rng);
  }

  // Normalises every row of x into y (y may be x itself).
  void forward(const ConstMatrixRef<T>& x, MatrixRef<T> y) const {
    detail::expect_cols("LayerNorm", "input", config_.channels, x.cols());
    detail::expect_shape("LayerNorm", "output", x.rows(), x.cols(), y.rows(), y.cols());
    forward(x.rows(), x.data(), x.outerStride(), y.data(), y.outerStride());
  }
  void forward(Index rows, const T* x, Index ldx, T* y, Index ldy) const {
    const T eps = static_cast<T>(config_.eps);
    for (Index r = 0; r < rows; ++r)
      detail::layer_norm_row(x + r * ldx, y + r * ldy, config_.channels, weight.data(),
                             bias.data(), eps);
  }
  Matrix<T> forward(const ConstMatrixRef<T>& x) const {
    Matrix<T> y(x.rows(), x.cols());
    forward(x, y);
    return y;
  }

  Vector<T> weight;  // gamma [channels]
  Vector<T> bias;    // beta [channels]

 private:
  Config config_;
};

}  // namespace tokenmix

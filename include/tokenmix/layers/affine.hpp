#pragma once
// ResMLP's Affine (timm `Affine`): y = beta + alpha * x per channel, the normalisation that
// replaces LayerNorm in ResMLP. timm stores alpha and beta as [1, 1, D]; the original FB
// checkpoints as [D]. load() accepts the timm shape, load_flat() the FB one.

#include <cstdint>
#include <string>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/io/state_dict.hpp"

namespace tokenmix {

template <class T>
class Affine {
 public:
  struct Config {
    Index channels = 0;
  };

  explicit Affine(const Config& config) : config_(config) {
    if (config.channels <= 0)
      detail::fail<ArgumentError>("Affine: expected positive channels, got ", config.channels);
    alpha = Vector<T>::Ones(config.channels);
    beta = Vector<T>::Zero(config.channels);
  }
  explicit Affine(Index channels) : Affine(Config{channels}) {}

  const Config& config() const { return config_; }
  Index channels() const { return config_.channels; }

  void load(const StateDict& dict, const std::string& prefix = "") {
    StateDictLoader loader(dict);
    load(loader, prefix);
    loader.finish("Affine", prefix);
  }
  void load(StateDictLoader& loader, const std::string& prefix) {
    const std::vector<std::int64_t> shape{1, 1, config_.channels};
    loader.vector_as(prefix + "alpha", alpha, config_.channels, shape);
    loader.vector_as(prefix + "beta", beta, config_.channels, shape);
  }
  void save(StateDict& dict, const std::string& prefix = "") const {
    const std::vector<std::int64_t> shape{1, 1, config_.channels};
    dict.insert(prefix + "alpha", Tensor::from_values<T>(shape, alpha.data()));
    dict.insert(prefix + "beta", Tensor::from_values<T>(shape, beta.data()));
  }

  // timm init is alpha = 1, beta = 0 (reset()); init_random() perturbs both so tests see them.
  void reset() {
    alpha.setOnes();
    beta.setZero();
  }
  void init_random(Random& rng) {
    for (Index i = 0; i < config_.channels; ++i) alpha[i] = static_cast<T>(1.0 + 0.1 * rng.normal());
    rng.fill_normal(beta, 0.0, 0.1);
  }
  void init_random(std::uint64_t seed) {
    Random rng(seed);
    init_random(rng);
  }

  // y = beta + alpha * x, row by row (y may be x itself).
  void forward(const ConstMatrixRef<T>& x, MatrixRef<T> y) const {
    detail::expect_cols("Affine", "input", config_.channels, x.cols());
    detail::expect_shape("Affine", "output", x.rows(), x.cols(), y.rows(), y.cols());
    forward(x.rows(), x.data(), x.outerStride(), y.data(), y.outerStride());
  }
  void forward(Index rows, const T* x, Index ldx, T* y, Index ldy) const {
    using Row = Eigen::Map<const Eigen::Array<T, 1, Eigen::Dynamic>>;
    using RowOut = Eigen::Map<Eigen::Array<T, 1, Eigen::Dynamic>>;
    const Index d = config_.channels;
    const Row a(alpha.data(), d), b(beta.data(), d);
    for (Index r = 0; r < rows; ++r) RowOut(y + r * ldy, d) = b + a * Row(x + r * ldx, d);
  }
  Matrix<T> forward(const ConstMatrixRef<T>& x) const {
    Matrix<T> y(x.rows(), x.cols());
    forward(x, y);
    return y;
  }

  Vector<T> alpha;  // [channels], stored as [1, 1, channels]
  Vector<T> beta;

 private:
  Config config_;
};

}  // namespace tokenmix

#pragma once
// LayerScale (CaiT / timm): a learned per-channel factor on a residual branch, y = gamma * x,
// initialised to a small init_values (1e-4 .. 1e-6) so deep stacks start close to identity.
// timm's LayerScale module names its parameter `gamma`; ResMLP's ResBlock keeps bare
// parameters `ls1` / `ls2`, which load_parameter() reads by full key.

#include <cstdint>
#include <string>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/io/state_dict.hpp"

namespace tokenmix {

template <class T>
class LayerScale {
 public:
  struct Config {
    Index channels = 0;
    double init_values = 1e-5;
  };

  explicit LayerScale(const Config& config) : config_(config) {
    if (config.channels <= 0)
      detail::fail<ArgumentError>("LayerScale: expected positive channels, got ",
                                  config.channels);
    reset();
  }

  const Config& config() const { return config_; }
  Index channels() const { return config_.channels; }

  void load(const StateDict& dict, const std::string& prefix = "") {
    StateDictLoader loader(dict);
    load(loader, prefix);
    loader.finish("LayerScale", prefix);
  }
  void load(StateDictLoader& loader, const std::string& prefix) {
    load_parameter(loader, prefix + "gamma");
  }
  void load_parameter(StateDictLoader& loader, const std::string& key) {
    loader.vector(key, gamma, config_.channels);
  }
  void save(StateDict& dict, const std::string& prefix = "") const {
    save_parameter(dict, prefix + "gamma");
  }
  void save_parameter(StateDict& dict, const std::string& key) const { dict.insert(key, gamma); }

  void reset() { gamma = Vector<T>::Constant(config_.channels, static_cast<T>(config_.init_values)); }
  // Random factors of order one, for tests where init_values would hide the branch.
  void init_random(Random& rng) { rng.fill_uniform(gamma, 0.5, 1.5); }
  void init_random(std::uint64_t seed) {
    Random rng(seed);
    init_random(rng);
  }

  // y = gamma * x, or y = residual + gamma * x when residual is given (may alias y or x).
  void forward(const ConstMatrixRef<T>& x, MatrixRef<T> y) const {
    check("output", x, y.rows(), y.cols());
    forward(x.rows(), x.data(), x.outerStride(), y.data(), y.outerStride());
  }
  void forward(const ConstMatrixRef<T>& x, const ConstMatrixRef<T>& residual,
               MatrixRef<T> y) const {
    check("output", x, y.rows(), y.cols());
    check("residual", x, residual.rows(), residual.cols());
    forward(x.rows(), x.data(), x.outerStride(), y.data(), y.outerStride(), residual.data(),
            residual.outerStride());
  }
  void forward(Index rows, const T* x, Index ldx, T* y, Index ldy, const T* residual = nullptr,
               Index ld_residual = 0) const {
    using Row = Eigen::Map<const Eigen::Array<T, 1, Eigen::Dynamic>>;
    using RowOut = Eigen::Map<Eigen::Array<T, 1, Eigen::Dynamic>>;
    const Index d = config_.channels;
    const Row g(gamma.data(), d);
    for (Index r = 0; r < rows; ++r) {
      if (residual)
        RowOut(y + r * ldy, d) = Row(residual + r * ld_residual, d) + g * Row(x + r * ldx, d);
      else
        RowOut(y + r * ldy, d) = g * Row(x + r * ldx, d);
    }
  }
  Matrix<T> forward(const ConstMatrixRef<T>& x) const {
    Matrix<T> y(x.rows(), x.cols());
    forward(x, y);
    return y;
  }

  Vector<T> gamma;  // [channels]

 private:
  void check(const char* what, const ConstMatrixRef<T>& x, Index rows, Index cols) const {
    detail::expect_cols("LayerScale", "input", config_.channels, x.cols());
    detail::expect_shape("LayerScale", what, x.rows(), x.cols(), rows, cols);
  }

  Config config_;
};

}  // namespace tokenmix

#pragma once
// nn.Linear: y = x W^T + b with W [out, in] as PyTorch stores it. The product runs through
// tokenmix::gemm so callers can fuse what follows (activation, LayerScale, residual add)
// into the same pass over the output. The weight is a PackedWeight: W^T is packed when the
// weight is set (construction, load, init, assignment, update) and every forward reuses it;
// see packed_weight.hpp for why it cannot go stale.

#include <cmath>
#include <cstdint>
#include <string>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/gemm.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/io/state_dict.hpp"
#include "tokenmix/layers/packed_weight.hpp"

namespace tokenmix {

template <class T>
class Linear {
 public:
  struct Config {
    Index in_features = 0;
    Index out_features = 0;
    bool bias = true;
  };

  explicit Linear(const Config& config) : config_(config) {
    if (config.in_features <= 0 || config.out_features <= 0)
      detail::fail<ArgumentError>("Linear: expected positive in_features and out_features, got ",
                                  config.in_features, " and ", config.out_features);
    weight.reset(config.out_features, config.in_features);
    if (config.bias) bias = Vector<T>::Zero(config.out_features);
  }

  const Config& config() const { return config_; }
  Index in_features() const { return config_.in_features; }
  Index out_features() const { return config_.out_features; }
  bool has_bias() const { return config_.bias; }

  void load(const StateDict& dict, const std::string& prefix = "") {
    StateDictLoader loader(dict);
    load(loader, prefix);
    loader.finish("Linear", prefix);
  }
  void load(StateDictLoader& loader, const std::string& prefix) {
    weight.load(loader, prefix + "weight");
    if (config_.bias) loader.vector(prefix + "bias", bias, config_.out_features);
  }
  void save(StateDict& dict, const std::string& prefix = "") const {
    dict.insert(prefix + "weight", weight.value());
    if (config_.bias) dict.insert(prefix + "bias", bias);
  }

  // PyTorch's default init: weight and bias U(+-1/sqrt(in)).
  void init_random(Random& rng) {
    weight.update([&](Matrix<T>& w) { rng.fill_linear_default(w); });
    if (config_.bias) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(config_.in_features));
      rng.fill_uniform(bias, -bound, bound);
    }
  }
  void init_random(std::uint64_t seed) {
    Random rng(seed);
    init_random(rng);
  }
  // timm's MLP-model init: xavier_uniform weight, bias N(0, bias_std^2) (1e-6 inside "mlp"
  // modules, else 0).
  void init_xavier(Random& rng, double bias_std = 0.0) {
    weight.update([&](Matrix<T>& w) { rng.fill_xavier_uniform(w); });
    if (config_.bias) {
      if (bias_std > 0) rng.fill_normal(bias, 0.0, bias_std);
      else bias.setZero();
    }
  }

  // Hugging Face's init: weight N(0, stddev^2), bias 0.
  void init_normal(Random& rng, double stddev) {
    weight.update([&](Matrix<T>& w) { rng.fill_normal(w, 0.0, stddev); });
    if (config_.bias) bias.setZero();
  }

  // y = x W^T + b, then the epilogue's extras (activation, col_scale, residual). The bias of
  // the layer replaces epilogue.col_bias.
  void forward(const ConstMatrixRef<T>& x, MatrixRef<T> y, Epilogue<T> epilogue = {},
               int threads = 0) const {
    check_io(x, y);
    epilogue.col_bias = config_.bias ? bias.data() : nullptr;
    weight.multiply(x.rows(), x.data(), x.outerStride(), T(0), y.data(), y.outerStride(),
                    epilogue, threads);
  }

  // Raw-pointer form for row blocks carved out of scratch memory.
  void forward(Index rows, const T* x, Index ldx, T* y, Index ldy, Epilogue<T> epilogue = {},
               int threads = 0) const {
    epilogue.col_bias = config_.bias ? bias.data() : nullptr;
    weight.multiply(rows, x, ldx, T(0), y, ldy, epilogue, threads);
  }

  Matrix<T> forward(const ConstMatrixRef<T>& x) const {
    Matrix<T> y(x.rows(), config_.out_features);
    forward(x, y);
    return y;
  }

  PackedWeight<T> weight;  // [out_features, in_features]; W^T packed when set
  Vector<T> bias;    // [out_features], empty without bias

 private:
  void check_io(const ConstMatrixRef<T>& x, const MatrixRef<T>& y) const {
    detail::expect_cols("Linear", "input", config_.in_features, x.cols());
    detail::expect_shape("Linear", "output", x.rows(), config_.out_features, y.rows(),
                         y.cols());
  }

  Config config_;
};

}  // namespace tokenmix

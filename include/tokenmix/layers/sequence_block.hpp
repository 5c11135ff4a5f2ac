#pragma once
// The public wrappers every residual sequence block (MLPMixerBlock, GMLPBlock, ResMLPBlock,
// TransformerBlock, FNetLayer) offers around its two real entry points, written once (CRTP).
//
// Derived provides:
//   static constexpr const char* layer_name;   // for error messages and load() scopes
//   Index channels() const;
//   void load(StateDictLoader&, const std::string& prefix);
//   void init_random(Random&);
//   void forward(Index rows, Index seq_len, const T* x, Index ldx, T* y, Index ldy) const;
// and gets load(const StateDict&, prefix) (strict: unused or missing keys throw KeyError),
// init_random(seed), and the Eigen-view forwards with their shape checks. Derived must say
// `using SequenceBlock<...>::load;` (and init_random, forward) so its own overloads do not
// hide these.

#include <cstdint>
#include <string>

#include "tokenmix/core/random.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/io/state_dict.hpp"

namespace tokenmix {

template <class Derived, class T>
class SequenceBlock {
 public:
  void load(const StateDict& dict, const std::string& prefix = "") {
    StateDictLoader loader(dict);
    self().load(loader, prefix);
    loader.finish(Derived::layer_name, prefix);
  }

  void init_random(std::uint64_t seed) {
    Random rng(seed);
    self().init_random(rng);
  }

  // x, y: (B*n) x channels; y may be x itself (the residual stream updated in place).
  void forward(const ConstMatrixRef<T>& x, Index seq_len, MatrixRef<T> y) const {
    detail::expect_cols(Derived::layer_name, "input", self().channels(), x.cols());
    detail::expect_shape(Derived::layer_name, "output", x.rows(), x.cols(), y.rows(), y.cols());
    self().forward(x.rows(), seq_len, x.data(), x.outerStride(), y.data(), y.outerStride());
  }
  Matrix<T> forward(const ConstMatrixRef<T>& x, Index seq_len) const {
    Matrix<T> y(x.rows(), x.cols());
    forward(x, seq_len, y);
    return y;
  }

 protected:
  SequenceBlock() = default;

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
  const Derived& self() const { return static_cast<const Derived&>(*this); }
};

}  // namespace tokenmix

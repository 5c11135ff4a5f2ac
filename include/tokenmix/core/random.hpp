#pragma once
// Deterministic random numbers for layer initialisation in tests and benchmarks: the same
// seed gives the same weights on every platform and standard library (std::normal_distribution
// is implementation-defined, so the transforms here are our own).

#include <cmath>
#include <cstdint>

#include "tokenmix/core/tensor.hpp"

namespace tokenmix {

class Random {
 public:
  explicit Random(std::uint64_t seed) : state_(seed) {}

  // splitmix64: full-period, passes BigCrush, trivially seedable.
  std::uint64_t next_u64() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

  // Standard normal by Box-Muller (one value per call; the pair's twin is discarded so the
  // sequence does not depend on call parity).
  double normal() {
    double u1 = uniform();
    while (u1 <= 0.0) u1 = uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586476925 * u2);
  }
  double normal(double mean, double stddev) { return mean + stddev * normal(); }

  // Normal truncated to [lo, hi] (in units of stddev around mean) by rejection.
  double truncated_normal(double mean, double stddev, double lo, double hi) {
    for (;;) {
      const double v = normal();
      if (v >= lo && v <= hi) return mean + stddev * v;
    }
  }

  template <class Derived>
  void fill_uniform(Eigen::DenseBase<Derived>& m, double lo, double hi) {
    using T = typename Derived::Scalar;
    for (Index i = 0; i < m.rows(); ++i)
      for (Index j = 0; j < m.cols(); ++j) m(i, j) = static_cast<T>(uniform(lo, hi));
  }
  template <class Derived>
  void fill_normal(Eigen::DenseBase<Derived>& m, double mean, double stddev) {
    using T = typename Derived::Scalar;
    for (Index i = 0; i < m.rows(); ++i)
      for (Index j = 0; j < m.cols(); ++j) m(i, j) = static_cast<T>(normal(mean, stddev));
  }
  // xavier_uniform for an nn.Linear-layout weight [out, in].
  template <class Derived>
  void fill_xavier_uniform(Eigen::DenseBase<Derived>& w) {
    const double bound = std::sqrt(6.0 / static_cast<double>(w.rows() + w.cols()));
    fill_uniform(w, -bound, bound);
  }
  // PyTorch's default nn.Linear init (kaiming_uniform a=sqrt(5)): U(+-1/sqrt(in)).
  template <class Derived>
  void fill_linear_default(Eigen::DenseBase<Derived>& w) {
    const double bound = w.cols() > 0 ? 1.0 / std::sqrt(static_cast<double>(w.cols())) : 0.0;
    fill_uniform(w, -bound, bound);
  }

 private:
  std::uint64_t state_;
};

}  // namespace tokenmix

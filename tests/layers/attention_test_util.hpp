#pragma once
// Shared helpers for the attention-style layer tests: fixture loading (written by
// tests/reference/make_attention_fixtures.py) and SPEC.md's comparison criterion.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <thread>

#include "tokenmix/core/random.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/io/safetensors.hpp"
#include "tokenmix/layers/softmax.hpp"

namespace attention_test {

using tokenmix::Index;
template <class T>
using Matrix = tokenmix::Matrix<T>;

inline tokenmix::SafetensorsFile fixture(const std::string& name) {
  return tokenmix::read_safetensors_file(std::string(TOKENMIX_TEST_DATA_DIR) + "/attention/" +
                                         name + ".safetensors");
}

inline Index meta(const tokenmix::SafetensorsFile& f, const std::string& key) {
  return static_cast<Index>(std::stoll(f.metadata.at(key)));
}

// The fixture's module parameters alone (inputs, outputs and masks removed), for strict loads.
inline tokenmix::StateDict params(const tokenmix::SafetensorsFile& f) {
  tokenmix::StateDict out = f.tensors;
  for (const char* k : {"input", "output", "input_short", "output_short", "key_padding_mask"})
    out.erase(k);
  return out;
}

// A [B, n, D] (or [n, D]) tensor as a (B*n) x D matrix of T.
template <class T>
Matrix<T> rows_of(const tokenmix::SafetensorsFile& f, const std::string& key) {
  const tokenmix::Tensor& t = f.tensors.at(key);
  const Index cols = t.shape().back();
  Matrix<T> m(static_cast<Index>(t.numel()) / cols, cols);
  t.copy_to(m.data());
  return m;
}

// A 0/1 float mask tensor [B, n] as a bool matrix.
inline tokenmix::BoolMatrix mask_of(const tokenmix::SafetensorsFile& f, const std::string& key) {
  const Matrix<double> m = rows_of<double>(f, key);
  return (m.array() != 0.0).matrix();
}

template <class T>
constexpr double rtol() {
  return sizeof(T) == 4 ? 1e-5 : 1e-10;
}

// SPEC.md 5: |y - ref| <= atol + rtol |ref| with atol = rtol max|ref|; NaN must match NaN.
template <class A, class B>
void check_close(const A& y, const B& ref, double rtol) {
  REQUIRE(y.rows() == ref.rows());
  REQUIRE(y.cols() == ref.cols());
  double max_ref = 0;
  for (Index i = 0; i < ref.rows(); ++i)
    for (Index j = 0; j < ref.cols(); ++j)
      if (std::isfinite(static_cast<double>(ref(i, j))))
        max_ref = std::max(max_ref, std::abs(static_cast<double>(ref(i, j))));
  const double atol = rtol * max_ref;
  Index bad = 0;
  double worst = 0;
  for (Index i = 0; i < ref.rows(); ++i)
    for (Index j = 0; j < ref.cols(); ++j) {
      const double r = static_cast<double>(ref(i, j));
      const double v = static_cast<double>(y(i, j));
      if (std::isnan(r)) {
        if (!std::isnan(v)) ++bad;
        continue;
      }
      const double err = std::abs(v - r);
      if (!(err <= atol + rtol * std::abs(r))) {
        ++bad;
        worst = std::max(worst, std::isnan(err) ? INFINITY : err / (atol + rtol * std::abs(r)));
      }
    }
  INFO("elements outside tolerance: " << bad << ", worst error / allowed: " << worst);
  CHECK(bad == 0);
}

// Runs `f` on two threads at once and returns both results.
template <class F>
auto on_two_threads(F f) {
  decltype(f()) a, b;
  std::thread t1([&] { a = f(); });
  std::thread t2([&] { b = f(); });
  t1.join();
  t2.join();
  return std::make_pair(a, b);
}

// Causality under NaN / Inf: token p of the second of two n-token sequences is set to NaN,
// then +Inf; the rows of that sequence before p must stay bit-identical to the clean run
// (and the first sequence entirely). forward(x) returns the layer's output for x.
template <class T, class F>
void check_causal_under_nan(F forward, Index n, Index d, std::initializer_list<Index> positions) {
  Matrix<T> x(2 * n, d);
  tokenmix::Random(17).fill_normal(x, 0, 1);
  const Matrix<T> clean = forward(x);
  for (Index p : positions)
    for (T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity()}) {
      INFO("token " << p << " of " << n << " set to " << bad);
      Matrix<T> poisoned = x;
      poisoned.row(n + p).setConstant(bad);
      const Matrix<T> y = forward(poisoned);
      CHECK(y.topRows(n + p) == clean.topRows(n + p));
      CHECK(!y.row(n + p).array().isFinite().all());
    }
}

}  // namespace attention_test

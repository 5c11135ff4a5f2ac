#pragma once
// Helpers shared by the tests of the building-block and MLP-style layers: fixtures written
// by tests/reference/make_layer_fixtures.py, the SPEC.md §5 closeness criterion, and a
// two-thread determinism check.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <thread>

#include "tokenmix/core/tensor.hpp"
#include "tokenmix/io/safetensors.hpp"
#include "tokenmix/io/state_dict.hpp"

namespace tokenmix_test {

using tokenmix::Index;
using tokenmix::Matrix;
using tokenmix::StateDict;

inline StateDict layer_fixture(const std::string& name) {
  return tokenmix::read_safetensors(std::string(TOKENMIX_TEST_DATA_DIR) + "/layers/" + name +
                                    ".safetensors");
}

// A fixture tensor of any rank as a matrix whose columns are its last dimension.
template <class T>
Matrix<T> fixture_matrix(const StateDict& dict, const std::string& key, Index cols = -1) {
  const auto& t = dict.at(key);
  const Index last = cols > 0 ? cols : static_cast<Index>(t.shape().back());
  Matrix<T> m(static_cast<Index>(t.numel()) / last, last);
  t.copy_to(m.data());
  return m;
}

// The parameters alone: what a strict load() must accept without complaint.
inline StateDict fixture_weights(const StateDict& dict) {
  StateDict out(dict.source());
  for (const auto& kv : dict)
    if (kv.first != "input" && kv.first != "output" && kv.first != "gate_addend")
      out.insert(kv.first, kv.second);
  return out;
}

template <class T>
constexpr double layer_rtol() {
  return std::is_same<T, float>::value ? 1e-5 : 1e-10;
}

// SPEC.md §5: |y - ref| <= atol + rtol |ref| elementwise, atol = rtol * max |ref|.
template <class T>
void check_close(const Matrix<T>& y, const Matrix<double>& ref, double rtol) {
  REQUIRE(y.rows() == ref.rows());
  REQUIRE(y.cols() == ref.cols());
  const double atol = rtol * ref.cwiseAbs().maxCoeff();
  Index bad = 0;
  double worst = 0;
  for (Index i = 0; i < ref.rows(); ++i)
    for (Index j = 0; j < ref.cols(); ++j) {
      const double err = std::abs(static_cast<double>(y(i, j)) - ref(i, j));
      const double allowed = atol + rtol * std::abs(ref(i, j));
      if (!(err <= allowed)) ++bad;
      worst = std::max(worst, err / allowed);
    }
  INFO("worst error / allowed = " << worst << ", rtol " << rtol);
  CHECK(bad == 0);
}

// forward run by two threads at once must give exactly the serial result.
template <class F>
void check_concurrent_identical(F&& run) {
  const auto serial = run();
  decltype(run()) a, b;
  std::thread ta([&] { for (int i = 0; i < 3; ++i) a = run(); });
  std::thread tb([&] { for (int i = 0; i < 3; ++i) b = run(); });
  ta.join();
  tb.join();
  CHECK(a == serial);
  CHECK(b == serial);
}

// A KeyError whose message names `key`.
template <class F>
void check_key_error_mentions(F&& load, const std::string& key) {
  try {
    load();
    FAIL("expected tokenmix::KeyError mentioning " << key);
  } catch (const tokenmix::KeyError& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).find(key) != std::string::npos);
  }
}

}  // namespace tokenmix_test

#include "tokenmix/layers/softmax.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "isa_paths.hpp"
#include "tokenmix/core/random.hpp"

namespace test_layers_softmax {

using namespace tokenmix;

namespace {

// Softmax of one row in long double, masked entries skipped; all masked -> NaN.
template <class T>
std::vector<long double> reference_row(const T* x, Index n, const std::vector<bool>& hide) {
  long double m = -INFINITY;
  for (Index j = 0; j < n; ++j)
    if (!hide[j]) m = std::max<long double>(m, x[j]);
  std::vector<long double> out(n, 0.0L);
  long double sum = 0;
  for (Index j = 0; j < n; ++j)
    if (!hide[j]) sum += out[j] = std::exp(static_cast<long double>(x[j]) - m);
  for (Index j = 0; j < n; ++j) out[j] = sum > 0 ? out[j] / sum : NAN;
  return out;
}

}  // namespace

TEMPLATE_TEST_CASE("vectorised exp is accurate to a few ulp on every ISA", "[layers][softmax]",
                   float, double) {
  using T = TestType;
  Random rng(7);
  std::vector<T> x;
  for (int i = 0; i < 4000; ++i) x.push_back(static_cast<T>(rng.uniform(-80.0, 80.0)));
  for (int i = 0; i < 2000; ++i) x.push_back(static_cast<T>(rng.uniform(-1.0, 1.0)));
  const T specials[] = {0, T(-0.0), T(1e-30), T(-1e-30), T(0.34657359), T(-0.34657359)};
  for (T s : specials) x.push_back(s);
  for (Isa isa : tokenmix_test::supported_isa_paths("softmax")) {
    ScopedIsa scoped(isa);
    INFO("isa " << isa_name(isa));
    std::vector<T> y(x.size());
    detail::exp_vector(x.data(), y.data(), static_cast<Index>(x.size()));
    double worst_ulp = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const long double ref = std::exp(static_cast<long double>(x[i]));
      const long double ulp = std::nextafter(static_cast<T>(ref), std::numeric_limits<T>::max()) -
                              static_cast<T>(ref);
      worst_ulp = std::max(worst_ulp, static_cast<double>(std::abs(y[i] - ref) / ulp));
    }
    CHECK(worst_ulp <= 3.0);
  }
}

TEMPLATE_TEST_CASE("exp saturates like std::exp at the range ends and keeps NaN",
                   "[layers][softmax]", float, double) {
  using T = TestType;
  const T inf = std::numeric_limits<T>::infinity();
  // Lengths 1..19 exercise full vectors and every tail size.
  for (Isa isa : tokenmix_test::supported_isa_paths("softmax")) {
    ScopedIsa scoped(isa);
    INFO("isa " << isa_name(isa));
    std::vector<T> x = {-inf, inf, T(-2000), T(2000), T(-50), T(50), T(0), T(1), T(-1),
                        std::numeric_limits<T>::quiet_NaN(), T(-0.5), T(0.5), T(3), T(-3),
                        T(10), T(-10), T(20), T(-20), T(7)};
    std::vector<T> y(x.size());
    detail::exp_vector(x.data(), y.data(), static_cast<Index>(x.size()));
    CHECK(y[0] == 0);
    CHECK(y[1] == inf);
    CHECK(y[2] == 0);
    CHECK(y[3] == inf);
    CHECK(y[4] == Approx(std::exp(T(-50))).epsilon(1e-6));
    CHECK(y[5] == Approx(std::exp(T(50))).epsilon(1e-6));
    CHECK(y[6] == 1);
    CHECK(std::isnan(y[9]));
    for (std::size_t len = 1; len <= x.size(); ++len) {
      std::vector<T> z(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(len));
      detail::exp_vector(z.data(), z.data(), static_cast<Index>(len));
      for (std::size_t i = 0; i < len; ++i)
        CHECK((std::isnan(z[i]) ? std::isnan(y[i]) : z[i] == y[i]));
    }
  }
}

TEMPLATE_TEST_CASE("softmax rows match a long-double reference, with and without masks",
                   "[layers][softmax]", float, double) {
  using T = TestType;
  Random rng(3);
  const double tol = sizeof(T) == 4 ? 1e-6 : 1e-14;
  for (Isa isa : tokenmix_test::supported_isa_paths("softmax")) {
    ScopedIsa scoped(isa);
    INFO("isa " << isa_name(isa));
    for (Index cols : {1, 7, 16, 33, 100}) {
      Matrix<T> x(6, cols);
      rng.fill_uniform(x, -6.0, 6.0);
      BoolMatrix mask(6, cols);
      for (Index i = 0; i < 6; ++i)
        for (Index j = 0; j < cols; ++j) mask(i, j) = rng.uniform() < 0.3;
      mask(0, 0) = false;  // row 0 always has a visible entry
      for (int variant = 0; variant < 3; ++variant) {
        Softmax<T> sm(typename Softmax<T>::Config{variant == 2});
        Matrix<T> y(6, cols);
        if (variant == 1)
          sm.forward(x, 3, mask, y);
        else
          sm.forward(x, 3, y);
        for (Index i = 0; i < 6; ++i) {
          std::vector<bool> hide(cols, false);
          for (Index j = 0; j < cols; ++j) {
            if (variant == 1) hide[j] = mask(i, j);
            if (variant == 2) hide[j] = j > i % 3;
          }
          const auto ref = reference_row(x.row(i).data(), cols, hide);
          for (Index j = 0; j < cols; ++j) {
            if (std::isnan(static_cast<double>(ref[j]))) {
              CHECK(std::isnan(y(i, j)));
            } else {
              CHECK(y(i, j) == Approx(static_cast<double>(ref[j])).epsilon(tol).margin(tol));
            }
          }
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("softmax is stable for huge logits and NaN for fully masked rows",
                   "[layers][softmax]", float, double) {
  using T = TestType;
  Matrix<T> x(3, 5);
  x << T(1e4), T(1e4 - 1), T(-1e4), T(0), T(1e4), T(3e4), T(-3e4), T(2e4), T(1), T(0), T(1), T(2),
      T(3), T(4), T(5);
  BoolMatrix mask = BoolMatrix::Zero(3, 5);
  mask.row(2).setConstant(true);  // PyTorch: an all -inf row softmaxes to NaN
  mask(1, 0) = true;              // hides the largest entry of row 1
  Matrix<T> y(3, 5);
  Softmax<T>().forward(x, 3, mask, y);
  const double e1 = std::exp(-1.0);
  CHECK(y(0, 0) == Approx(1 / (2 + e1)).epsilon(1e-6));
  CHECK(y(0, 1) == Approx(e1 / (2 + e1)).epsilon(1e-6));
  CHECK(y(0, 2) == 0);
  CHECK(y(1, 0) == 0);
  CHECK(y(1, 2) == Approx(1.0).epsilon(1e-6));
  CHECK(y(1, 3) == Approx(0.0).margin(1e-30));
  for (Index j = 0; j < 5; ++j) CHECK(std::isnan(y(2, j)));
  // In place: y may be x.
  Matrix<T> z = x;
  Softmax<T>().forward(z, 3, mask, z);
  for (Index i = 0; i < 2; ++i)
    for (Index j = 0; j < 5; ++j) CHECK(z(i, j) == y(i, j));
}

TEST_CASE("softmax rejects mismatched shapes", "[layers][softmax]") {
  Matrix<float> x(6, 4), y(6, 3);
  CHECK_THROWS_AS(Softmax<float>().forward(x, 3, y), ShapeError);
  Matrix<float> y2(6, 4);
  CHECK_THROWS_WITH(Softmax<float>().forward(x, 4, y2), Catch::Contains("multiple of seq_len"));
  BoolMatrix mask(5, 4);
  CHECK_THROWS_WITH(Softmax<float>().forward(x, 3, mask, y2), Catch::Contains("mask"));
}

}  // namespace test_layers_softmax

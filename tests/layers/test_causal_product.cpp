#include "tokenmix/layers/causal_product.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "tokenmix/core/random.hpp"

namespace test_layers_causal_product {

using namespace tokenmix;

namespace {

Index visible(Index i, Index shift, Index k) { return std::clamp<Index>(i + shift + 1, 0, k); }

// Reference: the dense product with the hidden entries of A skipped (not multiplied by 0).
template <class T>
Matrix<T> staircase_reference(const Matrix<T>& a, const Matrix<T>& b, Index shift, T alpha,
                              const Matrix<T>& c0) {
  Matrix<T> c = c0;
  for (Index i = 0; i < a.rows(); ++i)
    for (Index j = 0; j < visible(i, shift, a.cols()); ++j) c.row(i) += alpha * a(i, j) * b.row(j);
  return c;
}

}  // namespace

TEMPLATE_TEST_CASE("causal_gemm: the staircase product matches the masked reference",
                   "[layers][causal_product]", float, double) {
  using T = TestType;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  Random rng(3);
  for (Index m : {1, 7, 8, 9, 40, 131})
    for (Index k : {1, 5, 64, 140})
      for (Index shift : {-50, -3, 0, 2, 17, 200}) {
        INFO("m " << m << " k " << k << " shift " << shift);
        const Index n = 13;
        Matrix<T> a(m, k), b(k, n), c(m, n);
        rng.fill_normal(a, 0, 1);
        rng.fill_normal(b, 0, 1);
        rng.fill_normal(c, 0, 1);
        const Matrix<T> ref = staircase_reference<T>(a, b, shift, T(0.5), c);
        // Hidden entries of A hold NaN: never read, so never multiplied by anything.
        for (Index i = 0; i < m; ++i)
          for (Index j = visible(i, shift, k); j < k; ++j) a(i, j) = nan;
        detail::causal_gemm<T>(m, n, k, shift, T(0.5), a.data(), k, b.data(), n, c.data(), n);
        REQUIRE(c.array().isFinite().all());
        CHECK((c - ref).cwiseAbs().maxCoeff() <= T(1e-4) * (T(1) + ref.cwiseAbs().maxCoeff()));
      }
}

TEMPLATE_TEST_CASE("causal_gemm: rows of B past a row's staircase do not reach it",
                   "[layers][causal_product]", float, double) {
  using T = TestType;
  const Index m = 150, k = 150, n = 9;
  Random rng(4);
  Matrix<T> a(m, k), b(k, n);
  rng.fill_normal(a, 0, 1);
  rng.fill_normal(b, 0, 1);
  Matrix<T> clean = Matrix<T>::Zero(m, n);
  detail::causal_gemm<T>(m, n, k, 0, T(1), a.data(), k, b.data(), n, clean.data(), n);
  for (Index p : {1, 8, 63, 64, 65, 100, 148}) {
    INFO("row " << p << " of B set to NaN");
    Matrix<T> bad = b, c = Matrix<T>::Zero(m, n);
    bad.row(p).setConstant(std::numeric_limits<T>::quiet_NaN());
    detail::causal_gemm<T>(m, n, k, 0, T(1), a.data(), k, bad.data(), n, c.data(), n);
    CHECK(c.topRows(p) == clean.topRows(p));
    CHECK(c.row(p).array().isNaN().all());
  }
}

TEMPLATE_TEST_CASE("mix_tokens: causal mixing ignores the upper triangle",
                   "[layers][causal_product]", float, double) {
  using T = TestType;
  const Index m = 70, n = 6;
  Random rng(5);
  Matrix<T> a(m, m), b(m, n), c(m, n), full(m, n);
  rng.fill_normal(a, 0, 1);
  rng.fill_normal(b, 0, 1);
  const Matrix<T> lower = a.template triangularView<Eigen::Lower>();
  detail::mix_tokens<T>(false, m, n, lower.data(), m, b.data(), n, full.data(), n);
  c.setConstant(std::numeric_limits<T>::quiet_NaN());  // overwritten, never read
  a.template triangularView<Eigen::StrictlyUpper>().setConstant(
      std::numeric_limits<T>::infinity());
  detail::mix_tokens<T>(true, m, n, a.data(), m, b.data(), n, c.data(), n);
  CHECK((c - full).cwiseAbs().maxCoeff() <= T(1e-4) * (T(1) + full.cwiseAbs().maxCoeff()));
}

}  // namespace test_layers_causal_product

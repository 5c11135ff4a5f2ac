#include "tokenmix/layers/layer_norm.hpp"

#include <catch2/catch.hpp>

#include "isa_paths.hpp"
#include "layers/mlp_layers_testing.hpp"
#include "tokenmix/core/isa.hpp"

namespace test_layers_layer_norm {

using namespace tokenmix;
using namespace tokenmix_test;

TEMPLATE_TEST_CASE("LayerNorm matches nn.LayerNorm", "[layers][layer_norm]", float, double) {
  struct Case {
    const char* name;
    Index d;
    double eps;
  };
  for (const Case& c : {Case{"layer_norm_a", 9, 1e-5}, Case{"layer_norm_b", 16, 1e-6}}) {
    INFO(c.name);
    const StateDict dict = layer_fixture(c.name);
    LayerNorm<TestType> norm({c.d, c.eps});
    norm.load(fixture_weights(dict));
    const Matrix<TestType> x = fixture_matrix<TestType>(dict, "input");
    check_close(norm.forward(x), fixture_matrix<double>(dict, "output"), layer_rtol<TestType>());
    // In place gives the same values.
    Matrix<TestType> inplace = x;
    norm.forward(inplace, inplace);
    CHECK(inplace == norm.forward(x));
  }
}

TEST_CASE("LayerNorm of magnitude-1e4 inputs with unit spread", "[layers][layer_norm]") {
  const StateDict dict = layer_fixture("layer_norm_large");
  LayerNorm<double> norm64({33, 1e-6});
  norm64.load(fixture_weights(dict));
  const Matrix<double> x = fixture_matrix<double>(dict, "input");
  check_close(norm64.forward(x), fixture_matrix<double>(dict, "output"), 1e-10);

  // fp32: the input itself is rounded at ~1e-3 (ulp of 1e4), so the reference is the exact
  // normalisation of the rounded input; a one-pass E[x^2] - E[x]^2 would be off by O(1) here.
  LayerNorm<float> norm32({33, 1e-6});
  norm32.load(fixture_weights(dict));
  const Matrix<float> xf = x.cast<float>();
  const Matrix<double> ref = norm64.forward(xf.cast<double>());
  const Matrix<float> y = norm32.forward(xf);
  CHECK(y.allFinite());
  check_close(y, ref, 1e-5);
}

TEMPLATE_TEST_CASE("LayerNorm edge cases", "[layers][layer_norm]", float, double) {
  LayerNorm<TestType> norm({5, 1e-5});
  // Constant rows: zero variance, output is beta exactly.
  norm.init_random(4);
  Matrix<TestType> x = Matrix<TestType>::Constant(2, 5, TestType(3e4));
  const Matrix<TestType> y = norm.forward(x);
  for (Index j = 0; j < 5; ++j) {
    CHECK(y(0, j) == Approx(norm.bias[j]).margin(1e-6));
    CHECK(y(1, j) == Approx(norm.bias[j]).margin(1e-6));
  }
  // One channel: always beta.
  LayerNorm<TestType> one({1, 1e-5});
  one.bias[0] = TestType(0.25);
  Matrix<TestType> x1(3, 1);
  x1 << 1, -7, 1e4;
  const Matrix<TestType> y1 = one.forward(x1);
  for (Index i = 0; i < 3; ++i) CHECK(y1(i, 0) == TestType(0.25));
  // Zero rows is fine.
  Matrix<TestType> empty(0, 5);
  CHECK(norm.forward(empty).rows() == 0);
}

TEST_CASE("LayerNorm errors and strict loading", "[layers][layer_norm]") {
  LayerNorm<float> norm({8, 1e-6});
  Matrix<float> x(3, 7);
  CHECK_THROWS_AS(norm.forward(x), ShapeError);
  CHECK_THROWS_AS(LayerNorm<float>({0, 1e-5}), ArgumentError);
  CHECK_THROWS_AS(LayerNorm<float>({4, -1.0}), ArgumentError);

  norm.init_random(1);
  StateDict saved;
  norm.save(saved, "norm1.");
  LayerNorm<float> copy({8, 1e-6});
  copy.load(saved, "norm1.");
  CHECK(copy.weight == norm.weight);
  CHECK(copy.bias == norm.bias);
  StateDict missing = saved;
  missing.erase("norm1.weight");
  check_key_error_mentions([&] { copy.load(missing, "norm1."); }, "norm1.weight");
  LayerNorm<float> wider({9, 1e-6});
  check_key_error_mentions([&] { wider.load(saved, "norm1."); }, "norm1.bias");
}

TEMPLATE_TEST_CASE("LayerNorm forward is thread-safe", "[layers][layer_norm][threads]", float, double) {
  LayerNorm<TestType> norm({256, 1e-6});
  norm.init_random(2);
  Matrix<TestType> x(64, 256);
  Random rng(3);
  rng.fill_normal(x, 1.0, 2.0);
  check_concurrent_identical([&] { return Matrix<TestType>(norm.forward(x)); });
}

TEST_CASE("LayerNorm fp32 kernels agree across ISAs", "[layers][layer_norm]") {
  // The AVX-512 row kernel against the portable one, at widths that exercise the 64-wide
  // loop, the 16-wide loop and the masked tail, for well-centred and 1e4-offset rows.
  for (Index d : {Index(1), Index(15), Index(16), Index(64), Index(100), Index(768)}) {
    INFO("d = " << d);
    LayerNorm<float> norm({d, 1e-6});
    norm.init_random(static_cast<std::uint64_t>(d));
    Matrix<float> x(7, d);
    Random rng(5);
    rng.fill_normal(x, 0.0, 1.0);
    x.bottomRows(3).array() += 1e4f;
    Matrix<float> portable;
    {
      ScopedIsa scalar(Isa::scalar);
      portable = norm.forward(x);
    }
    const Matrix<double> ref = portable.cast<double>();
    for (Isa isa : {Isa::avx2, Isa::avx512}) {
      if (!isa_supported(isa)) continue;
      ScopedIsa use(isa);
      const Matrix<float> y = norm.forward(x);
      check_close(y, ref, 1e-5);
    }
  }
}

TEMPLATE_TEST_CASE("LayerNorm is scale-invariant up to the overflow range", "[layers][layer_norm]",
                   float, double) {
  using T = TestType;
  // Rows whose squared spread overflows T (1e30 in float, 1e300 in double) must normalise
  // like the unscaled row instead of collapsing to the bias; NaN and Inf still propagate.
  const T big = std::is_same<T, float>::value ? T(1e30) : T(1e300);
  for (Index d : {Index(5), Index(16), Index(77)}) {
    LayerNorm<T> norm({d, 1e-5});
    norm.init_random(static_cast<std::uint64_t>(d) + 1);
    Matrix<T> x(3, d);
    Random rng(6);
    rng.fill_uniform(x, -1.0, 1.0);
    Matrix<T> ref;
    {
      ScopedIsa scalar(Isa::scalar);
      ref = norm.forward(x);
    }
    for (Isa isa : tokenmix_test::supported_isa_paths("LayerNorm")) {
      ScopedIsa use(isa);
      for (T scale : {big, -big, std::numeric_limits<T>::max() / T(2)}) {
        INFO(isa_name(isa) << " d = " << d << " scale " << scale);
        const Matrix<T> y = norm.forward(Matrix<T>(x * scale));
        const T sign = scale > 0 ? T(1) : T(-1);
        for (Index i = 0; i < y.rows(); ++i)
          for (Index j = 0; j < d; ++j) {
            const T want = (ref(i, j) - norm.bias[j]) * sign + norm.bias[j];
            CHECK(y(i, j) == Approx(want).epsilon(1e-4).margin(1e-4));
          }
      }
      Matrix<T> poisoned = x * big;
      poisoned(0, d / 2) = std::numeric_limits<T>::quiet_NaN();
      poisoned(1, 0) = std::numeric_limits<T>::infinity();
      const Matrix<T> y = norm.forward(poisoned);
      CHECK(y.row(0).array().isNaN().all());
      CHECK_FALSE(y.row(1).array().isFinite().all());
      CHECK(y.row(2).array().isFinite().all());
    }
  }
}

}  // namespace test_layers_layer_norm

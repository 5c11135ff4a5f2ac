#include "tokenmix/layers/linear.hpp"

#include <catch2/catch.hpp>

#include "layers/mlp_layers_testing.hpp"

namespace test_layers_linear {

using namespace tokenmix;
using namespace tokenmix_test;

TEMPLATE_TEST_CASE("Linear matches nn.Linear", "[layers][linear]", float, double) {
  struct Case {
    const char* name;
    Index in, out;
    bool bias;
  };
  for (const Case& c : {Case{"linear_a", 7, 5, true}, Case{"linear_nobias", 4, 9, false}}) {
    INFO(c.name);
    const StateDict dict = layer_fixture(c.name);
    Linear<TestType> layer({c.in, c.out, c.bias});
    layer.load(fixture_weights(dict));
    const Matrix<TestType> x = fixture_matrix<TestType>(dict, "input");
    check_close(layer.forward(x), fixture_matrix<double>(dict, "output"), layer_rtol<TestType>());
  }
}

TEMPLATE_TEST_CASE("Linear fuses activation, LayerScale and residual", "[layers][linear]", float,
                   double) {
  Linear<TestType> layer({6, 4});
  layer.init_random(3);
  Matrix<TestType> x(5, 6);
  Random rng(4);
  rng.fill_normal(x, 0.0, 1.0);
  Matrix<TestType> residual(5, 4), scale(1, 4);
  rng.fill_normal(residual, 0.0, 1.0);
  rng.fill_uniform(scale, 0.5, 1.5);

  Epilogue<TestType> e;
  e.act = Activation::relu;
  e.col_scale = scale.data();
  e.residual = residual.data();
  e.ld_residual = 4;
  Matrix<TestType> fused(5, 4);
  layer.forward(x, fused, e);

  const Matrix<TestType> plain = layer.forward(x);
  for (Index i = 0; i < 5; ++i)
    for (Index j = 0; j < 4; ++j) {
      const TestType v = residual(i, j) + scale(0, j) * std::max(plain(i, j), TestType(0));
      CHECK(fused(i, j) == Approx(v).epsilon(1e-5).margin(1e-6));
    }
}

TEMPLATE_TEST_CASE("Linear writes into strided views", "[layers][linear]", float, double) {
  Linear<TestType> layer({3, 2});
  layer.init_random(9);
  Matrix<TestType> big = Matrix<TestType>::Constant(4, 8, TestType(-5));
  big.block(0, 0, 4, 3).setConstant(TestType(0.5));
  layer.forward(big.block(0, 0, 4, 3), big.block(0, 5, 4, 2));
  const Matrix<TestType> ref = layer.forward(Matrix<TestType>::Constant(4, 3, TestType(0.5)));
  CHECK(big.block(0, 5, 4, 2) == ref);
  CHECK(big(0, 4) == TestType(-5));
  CHECK(big(0, 7) == TestType(-5));
}

TEST_CASE("Linear rejects bad shapes and configs", "[layers][linear]") {
  Linear<float> layer({4, 3});
  Matrix<float> x(2, 5), y(2, 3);
  CHECK_THROWS_AS(layer.forward(x, y), ShapeError);
  Matrix<float> x4(2, 4), y_bad(3, 3);
  CHECK_THROWS_AS(layer.forward(x4, y_bad), ShapeError);
  try {
    layer.forward(x, y);
  } catch (const ShapeError& e) {
    CHECK(std::string(e.what()) == "Linear: expected input with 4 channels, got 5");
  }
  CHECK_THROWS_AS(Linear<float>({0, 3}), ArgumentError);
}

TEST_CASE("Linear load is strict and round-trips through save", "[layers][linear]") {
  Linear<double> layer({7, 5});
  layer.init_random(1);
  StateDict saved;
  layer.save(saved, "fc.");
  Linear<double> copy({7, 5});
  copy.load(saved, "fc.");
  CHECK(copy.weight.value() == layer.weight.value());
  CHECK(copy.bias == layer.bias);

  StateDict missing = saved;
  missing.erase("fc.bias");
  check_key_error_mentions([&] { copy.load(missing, "fc."); }, "fc.bias");

  StateDict extra = saved;
  extra.insert("fc.scale", saved.at("fc.bias"));
  check_key_error_mentions([&] { copy.load(extra, "fc."); }, "fc.scale");

  Linear<double> wrong({5, 7});
  check_key_error_mentions([&] { wrong.load(saved, "fc."); }, "fc.weight");
  // Keys outside the prefix belong to someone else and are not "unused".
  StateDict other = saved;
  other.insert("head.weight", saved.at("fc.weight"));
  CHECK_NOTHROW(copy.load(other, "fc."));

  Linear<double> nobias({7, 5, false});
  check_key_error_mentions([&] { nobias.load(saved, "fc."); }, "fc.bias");
}

TEST_CASE("Linear default init follows PyTorch bounds", "[layers][linear]") {
  Linear<double> layer({16, 8});
  layer.init_random(5);
  CHECK(layer.weight.value().cwiseAbs().maxCoeff() <= 0.25);
  CHECK(layer.bias.cwiseAbs().maxCoeff() <= 0.25);
  CHECK(layer.weight.value().cwiseAbs().maxCoeff() > 0.2);
  Linear<double> again({16, 8});
  again.init_random(5);
  CHECK(again.weight.value() == layer.weight.value());
}

TEMPLATE_TEST_CASE("Linear forward is thread-safe", "[layers][linear][threads]", float, double) {
  Linear<TestType> layer({64, 48});
  layer.init_random(2);
  Matrix<TestType> x(37, 64);
  Random rng(8);
  rng.fill_normal(x, 0.0, 1.0);
  check_concurrent_identical([&] { return Matrix<TestType>(layer.forward(x)); });
}

}  // namespace test_layers_linear

#include "tokenmix/layers/feed_forward.hpp"

#include <catch2/catch.hpp>

#include "layers/mlp_layers_testing.hpp"

namespace test_layers_feed_forward {

using namespace tokenmix;
using namespace tokenmix_test;

TEMPLATE_TEST_CASE("FeedForward matches timm Mlp", "[layers][feed_forward]", float, double) {
  struct Case {
    const char* name;
    Index in, hidden, out;
    Activation act;
  };
  for (const Case& c : {Case{"feed_forward_a", 8, 20, 8, Activation::gelu_erf},
                        Case{"feed_forward_b", 6, 10, 4, Activation::gelu_tanh}}) {
    INFO(c.name);
    const StateDict dict = layer_fixture(c.name);
    FeedForward<TestType> mlp({c.in, c.hidden, c.out, c.act});
    mlp.load(fixture_weights(dict));
    const Matrix<TestType> x = fixture_matrix<TestType>(dict, "input");
    check_close(mlp.forward(x), fixture_matrix<double>(dict, "output"), layer_rtol<TestType>());
  }
}

TEST_CASE("FeedForward with the wrong GELU does not match", "[layers][feed_forward]") {
  // The fixture's tanh-GELU output must be distinguishable from the erf form at 1e-5.
  const StateDict dict = layer_fixture("feed_forward_b");
  FeedForward<double> wrong({6, 10, 4, Activation::gelu_erf});
  wrong.load(fixture_weights(dict));
  const Matrix<double> y = wrong.forward(fixture_matrix<double>(dict, "input"));
  const Matrix<double> ref = fixture_matrix<double>(dict, "output");
  CHECK((y - ref).cwiseAbs().maxCoeff() > 1e-5 * ref.cwiseAbs().maxCoeff());
}

TEMPLATE_TEST_CASE("FeedForward fused residual and LayerScale, in place", "[layers][feed_forward]",
                   float, double) {
  FeedForward<TestType> mlp({12, 48});
  mlp.init_random(6);
  Random rng(7);
  Matrix<TestType> x(9, 12), stream(9, 12), scale(1, 12);
  rng.fill_normal(x, 0.0, 1.0);
  rng.fill_normal(stream, 0.0, 1.0);
  rng.fill_uniform(scale, 0.5, 1.5);
  const Matrix<TestType> branch = mlp.forward(x);
  Matrix<TestType> updated = stream;
  mlp.forward(x, updated, updated.data(), updated.outerStride(), scale.data());
  for (Index i = 0; i < 9; ++i)
    for (Index j = 0; j < 12; ++j)
      CHECK(updated(i, j) ==
            Approx(stream(i, j) + scale(0, j) * branch(i, j)).epsilon(1e-5).margin(1e-6));
}

TEMPLATE_TEST_CASE("FeedForward row chunking matches one pass", "[layers][feed_forward]", float,
                   double) {
  // Enough rows that the hidden scratch (32 MB bound, chunks of >= 1024 rows) is processed
  // in several chunks: 2100 rows x 8192 hidden.
  FeedForward<TestType> mlp({8, 8192, 8});
  mlp.init_random(11);
  Matrix<TestType> x(2100, 8);
  Random rng(12);
  rng.fill_normal(x, 0.0, 1.0);
  const Matrix<TestType> y = mlp.forward(x);
  for (Index r : {Index(0), Index(1023), Index(1024), Index(2047), Index(2048), Index(2099)}) {
    const Matrix<TestType> one = mlp.forward(x.row(r));
    CHECK((one - y.row(r)).cwiseAbs().maxCoeff() <= 1e-5 * (1 + one.cwiseAbs().maxCoeff()));
  }
}

TEST_CASE("FeedForward errors, defaults and strict loading", "[layers][feed_forward]") {
  FeedForward<float> mlp({6});
  CHECK(mlp.hidden_features() == 6);
  CHECK(mlp.out_features() == 6);
  Matrix<float> x(2, 5);
  CHECK_THROWS_AS(mlp.forward(x), ShapeError);
  CHECK_THROWS_AS(FeedForward<float>({0}), ArgumentError);
  CHECK_THROWS_AS(FeedForward<float>({4, -1}), ArgumentError);

  FeedForward<float> a({6, 10, 4});
  a.init_random(3);
  StateDict saved;
  a.save(saved, "mlp.");
  CHECK(saved.size() == 4);
  FeedForward<float> b({6, 10, 4});
  b.load(saved, "mlp.");
  CHECK(b.fc1.weight.value() == a.fc1.weight.value());
  CHECK(b.fc2.bias == a.fc2.bias);
  StateDict missing = saved;
  missing.erase("mlp.fc2.weight");
  missing.insert("mlp.fc3.weight", saved.at("mlp.fc2.weight"));
  try {
    b.load(missing, "mlp.");
    FAIL("expected KeyError");
  } catch (const KeyError& e) {
    // Both problems are reported in one go.
    CHECK(std::string(e.what()).find("mlp.fc2.weight") != std::string::npos);
    CHECK(std::string(e.what()).find("mlp.fc3.weight") != std::string::npos);
  }
}

TEMPLATE_TEST_CASE("FeedForward forward is thread-safe", "[layers][feed_forward][threads]", float,
                   double) {
  FeedForward<TestType> mlp({32, 128});
  mlp.init_random(2);
  Matrix<TestType> x(50, 32);
  Random rng(5);
  rng.fill_normal(x, 0.0, 1.0);
  check_concurrent_identical([&] { return Matrix<TestType>(mlp.forward(x)); });
}

}  // namespace test_layers_feed_forward

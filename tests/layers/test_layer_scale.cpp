#include "tokenmix/layers/layer_scale.hpp"

#include <catch2/catch.hpp>

#include "layers/mlp_layers_testing.hpp"

namespace test_layers_layer_scale {

using namespace tokenmix;
using namespace tokenmix_test;

TEMPLATE_TEST_CASE("LayerScale matches timm LayerScale", "[layers][layer_scale]", float, double) {
  for (auto c : {std::make_pair("layer_scale_a", Index(5)),
                 std::make_pair("layer_scale_b", Index(2))}) {
    INFO(c.first);
    const StateDict dict = layer_fixture(c.first);
    LayerScale<TestType> ls({c.second, 1e-5});
    ls.load(fixture_weights(dict));
    const Matrix<TestType> x = fixture_matrix<TestType>(dict, "input");
    const Matrix<double> ref = fixture_matrix<double>(dict, "output");
    check_close(ls.forward(x), ref, layer_rtol<TestType>());
    // With a residual: y = residual + gamma x.
    const Matrix<TestType> residual = Matrix<TestType>::Constant(x.rows(), x.cols(), TestType(2));
    Matrix<TestType> y(x.rows(), x.cols());
    ls.forward(x, residual, y);
    check_close(y, Matrix<double>(ref.array() + 2.0), layer_rtol<TestType>());
  }
}

TEST_CASE("LayerScale init, keys, errors", "[layers][layer_scale]") {
  LayerScale<float> ls({4, 1e-4});
  CHECK(ls.gamma == Vector<float>::Constant(4, 1e-4f));
  StateDict saved;
  ls.save(saved, "ls.");
  CHECK(saved.contains("ls.gamma"));
  StateDict bare;
  ls.save_parameter(bare, "blocks.0.ls1");
  StateDictLoader loader(bare);
  LayerScale<float> copy({4, 1.0});
  copy.load_parameter(loader, "blocks.0.ls1");
  CHECK_NOTHROW(loader.finish("test"));
  CHECK(copy.gamma == ls.gamma);
  Matrix<float> x(2, 3);
  CHECK_THROWS_AS(ls.forward(x), ShapeError);
  Matrix<float> x4(2, 4), r(3, 4), y(2, 4);
  CHECK_THROWS_AS(ls.forward(x4, r, y), ShapeError);
  CHECK_THROWS_AS(LayerScale<float>({0, 1.0}), ArgumentError);
  LayerScale<float> wrong({5, 1.0});
  check_key_error_mentions([&] { wrong.load(saved, "ls."); }, "ls.gamma");
}

TEST_CASE("LayerScale forward is thread-safe", "[layers][layer_scale][threads]") {
  LayerScale<float> ls({64, 1.0});
  ls.init_random(4);
  Matrix<float> x(40, 64);
  Random rng(2);
  rng.fill_normal(x, 0.0, 1.0);
  check_concurrent_identical([&] { return Matrix<float>(ls.forward(x)); });
}

}  // namespace test_layers_layer_scale

#include "tokenmix/layers/affine.hpp"

#include <catch2/catch.hpp>

#include "layers/mlp_layers_testing.hpp"

namespace test_layers_affine {

using namespace tokenmix;
using namespace tokenmix_test;

TEMPLATE_TEST_CASE("Affine matches timm Affine", "[layers][affine]", float, double) {
  for (auto c : {std::make_pair("affine_a", Index(6)), std::make_pair("affine_b", Index(3))}) {
    INFO(c.first);
    const StateDict dict = layer_fixture(c.first);
    Affine<TestType> aff(c.second);
    aff.load(fixture_weights(dict));
    const Matrix<TestType> x = fixture_matrix<TestType>(dict, "input");
    check_close(aff.forward(x), fixture_matrix<double>(dict, "output"), layer_rtol<TestType>());
    Matrix<TestType> inplace = x;
    aff.forward(inplace, inplace);
    CHECK(inplace == aff.forward(x));
  }
}

TEST_CASE("Affine keeps timm's [1, 1, D] parameter shape", "[layers][affine]") {
  Affine<float> aff(4);
  aff.init_random(2);
  StateDict saved;
  aff.save(saved, "norm1.");
  CHECK(saved.at("norm1.alpha").shape() == std::vector<std::int64_t>{1, 1, 4});
  CHECK(saved.at("norm1.beta").shape() == std::vector<std::int64_t>{1, 1, 4});
  Affine<float> copy(4);
  copy.load(saved, "norm1.");
  CHECK(copy.alpha == aff.alpha);
  CHECK(copy.beta == aff.beta);

  // The flat FB layout [D] is a shape mismatch for the timm-keyed layer.
  StateDict flat;
  flat.insert("norm1.alpha", aff.alpha);
  flat.insert("norm1.beta", aff.beta);
  check_key_error_mentions([&] { copy.load(flat, "norm1."); }, "norm1.alpha");
}

TEST_CASE("Affine errors, identity init, thread safety", "[layers][affine][threads]") {
  Affine<double> aff(5);
  Matrix<double> x(3, 5);
  Random rng(1);
  rng.fill_normal(x, 0.0, 1e4);
  CHECK(aff.forward(x) == x);  // alpha 1, beta 0
  Matrix<double> bad(3, 4);
  CHECK_THROWS_AS(aff.forward(bad), ShapeError);
  CHECK_THROWS_AS(Affine<double>(0), ArgumentError);
  aff.init_random(3);
  check_concurrent_identical([&] { return Matrix<double>(aff.forward(x)); });
}

}  // namespace test_layers_affine

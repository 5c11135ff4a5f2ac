#include "tokenmix/layers/spatial_gating_unit.hpp"

#include <catch2/catch.hpp>

#include "layers/attention_test_util.hpp"
#include "layers/mlp_layers_testing.hpp"

namespace test_layers_spatial_gating_unit {

using namespace tokenmix;
using namespace tokenmix_test;

namespace {
struct SguCase {
  const char* name;
  Index N, H, n;
  bool causal;
};
const SguCase sgu_cases[] = {
    {"spatial_gating_unit_a", 7, 12, 7, false},
    {"spatial_gating_unit_causal", 9, 4, 9, true},
    {"spatial_gating_unit_causal_long", 80, 6, 70, true},  // > one 64-row causal block
    {"spatial_gating_unit_short", 9, 4, 6, false},
    {"spatial_gating_unit_n1", 1, 6, 1, false},
};
}  // namespace

TEMPLATE_TEST_CASE("SpatialGatingUnit matches timm (causal, short, batched)",
                   "[layers][spatial_gating]", float, double) {
  for (const SguCase& c : sgu_cases) {
    INFO(c.name);
    const StateDict dict = layer_fixture(c.name);
    SpatialGatingUnit<TestType> sgu({c.N, c.H, c.causal});
    sgu.load(fixture_weights(dict));
    const Matrix<TestType> z = fixture_matrix<TestType>(dict, "input");
    check_close(sgu.forward(z, c.n), fixture_matrix<double>(dict, "output"),
                layer_rtol<TestType>());
  }
}

TEMPLATE_TEST_CASE("SpatialGatingUnit adds the aMLP gate addend before the product",
                   "[layers][spatial_gating]", float, double) {
  const StateDict dict = layer_fixture("spatial_gating_unit_gate");
  SpatialGatingUnit<TestType> sgu({5, 8});
  sgu.load(fixture_weights(dict));
  const Matrix<TestType> z = fixture_matrix<TestType>(dict, "input");
  // The addend in a wider buffer, to exercise its row stride.
  const Matrix<TestType> addend = fixture_matrix<TestType>(dict, "gate_addend");
  Matrix<TestType> wide = Matrix<TestType>::Zero(addend.rows(), 7);
  wide.leftCols(4) = addend;
  Matrix<TestType> y(z.rows(), 4);
  sgu.forward(z, 5, y, wide.data(), 7);
  check_close(y, fixture_matrix<double>(dict, "output"), layer_rtol<TestType>());
  CHECK_THROWS_AS(sgu.forward(z, 5, y, wide.data(), 3), ShapeError);
}

TEST_CASE("causal SpatialGatingUnit ignores weights above the diagonal",
          "[layers][spatial_gating]") {
  SpatialGatingUnit<double> sgu({150, 4, true});
  Random rng(3);
  sgu.proj.weight.update([&](auto& w) { rng.fill_normal(w, 0.0, 0.1); });
  rng.fill_normal(sgu.proj.bias, 0.0, 0.1);
  Matrix<double> z(300, 4);
  rng.fill_normal(z, 0.0, 1.0);
  const Matrix<double> y = sgu.forward(z, 150);
  // Same as the non-causal layer with the upper triangle zeroed.
  SpatialGatingUnit<double> masked({150, 4, false});
  masked.proj.weight = sgu.proj.weight.value().triangularView<Eigen::Lower>();
  masked.proj.bias = sgu.proj.bias;
  check_close(y, masked.forward(z, 150), 1e-12);
  // Token i's output does not depend on later tokens.
  Matrix<double> z2 = z;
  z2.row(140).setConstant(7.0);
  const Matrix<double> y2 = sgu.forward(z2, 150);
  CHECK(y2.topRows(140) == y.topRows(140));
  CHECK(y2.bottomRows(150) == y.bottomRows(150));
}

TEST_CASE("SpatialGatingUnit init makes it pass U through", "[layers][spatial_gating]") {
  SpatialGatingUnit<double> sgu({6, 8});
  sgu.init_random(1);
  CHECK(sgu.proj.bias == Vector<double>::Ones(6));
  CHECK(sgu.proj.weight.value().cwiseAbs().maxCoeff() < 1e-5);
  Matrix<double> z(12, 8);
  Random rng(2);
  rng.fill_normal(z, 0.0, 1.0);
  const Matrix<double> y = sgu.forward(z, 6);
  CHECK((y - z.leftCols(4)).cwiseAbs().maxCoeff() < 1e-4);
}

TEST_CASE("SpatialGatingUnit shape errors and config checks", "[layers][spatial_gating]") {
  SpatialGatingUnit<float> sgu({196, 8});
  Matrix<float> z(200, 8);
  try {
    sgu.forward(z, 200);
    FAIL("expected ShapeError");
  } catch (const ShapeError& e) {
    CHECK(std::string(e.what()) ==
          "SpatialGatingUnit: expected input with 196 tokens or fewer, got 200");
  }
  CHECK_THROWS_AS(sgu.forward(z, 7), ShapeError);  // 200 rows are not whole sequences of 7
  Matrix<float> odd(10, 6);
  CHECK_THROWS_AS(sgu.forward(odd, 10), ShapeError);
  Matrix<float> z10(10, 8), y_bad(10, 8);
  CHECK_THROWS_AS(sgu.forward(z10, 10, y_bad), ShapeError);
  CHECK_THROWS_AS(SpatialGatingUnit<float>({4, 7}), ArgumentError);
  CHECK_THROWS_AS(SpatialGatingUnit<float>({0, 8}), ArgumentError);
}

TEST_CASE("SpatialGatingUnit load is strict and round-trips", "[layers][spatial_gating]") {
  SpatialGatingUnit<double> sgu({5, 6});
  sgu.init_random(4);
  StateDict saved;
  sgu.save(saved, "mlp_channels.gate.");
  CHECK(saved.at("mlp_channels.gate.proj.weight").shape() == std::vector<std::int64_t>{5, 5});
  CHECK(saved.at("mlp_channels.gate.norm.weight").shape() == std::vector<std::int64_t>{3});
  SpatialGatingUnit<double> copy({5, 6});
  copy.load(saved, "mlp_channels.gate.");
  CHECK(copy.proj.weight.value() == sgu.proj.weight.value());
  CHECK(copy.norm.bias == sgu.norm.bias);
  SpatialGatingUnit<double> longer({6, 6});
  check_key_error_mentions([&] { longer.load(saved, "mlp_channels.gate."); },
                           "mlp_channels.gate.proj.weight");
  StateDict extra = saved;
  extra.insert("mlp_channels.gate.proj.scale", saved.at("mlp_channels.gate.proj.bias"));
  check_key_error_mentions([&] { copy.load(extra, "mlp_channels.gate."); },
                           "mlp_channels.gate.proj.scale");
}

TEMPLATE_TEST_CASE("SpatialGatingUnit is finite at magnitude 1e4 and thread-safe",
                   "[layers][spatial_gating][threads]", float, double) {
  SpatialGatingUnit<TestType> sgu({96, 32, true});
  Random rng(5);
  sgu.proj.weight.update([&](auto& w) { rng.fill_normal(w, 0.0, 0.1); });
  Matrix<TestType> z(192, 32);
  rng.fill_normal(z, 0.0, 1e4);
  const Matrix<TestType> y = sgu.forward(z, 96);
  CHECK(y.allFinite());
  check_concurrent_identical([&] { return Matrix<TestType>(sgu.forward(z, 96)); });
}

TEMPLATE_TEST_CASE("causal SpatialGatingUnit keeps a later NaN or Inf out of earlier rows",
                   "[layers][spatial_gating]", float, double) {
  using T = TestType;
  SpatialGatingUnit<T> sgu({200, 8, true});
  Random rng(6);
  sgu.proj.weight.update([&](auto& w) { rng.fill_normal(w, 0.0, 0.1); });
  rng.fill_normal(sgu.proj.bias, 0.0, 0.1);
  attention_test::check_causal_under_nan<T>(
      [&](const Matrix<T>& z) { return Matrix<T>(sgu.forward(z, 200)); }, 200, 8,
      {1, 7, 8, 63, 64, 100, 199});
}

}  // namespace test_layers_spatial_gating_unit

#include "tokenmix/layers/resmlp_block.hpp"

#include <catch2/catch.hpp>

#include "layers/mlp_layers_testing.hpp"

namespace test_layers_resmlp_block {

using namespace tokenmix;
using namespace tokenmix_test;

TEMPLATE_TEST_CASE("ResMLPBlock matches timm ResBlock", "[layers][resmlp]", float, double) {
  struct Case {
    const char* name;
    Index N, D, n;
  };
  for (const Case& c : {Case{"resmlp_block_a", 7, 8, 7}, Case{"resmlp_block_b", 4, 5, 4},
                        Case{"resmlp_block_short", 9, 4, 5}}) {
    INFO(c.name);
    const StateDict dict = layer_fixture(c.name);
    ResMLPBlock<TestType> block({c.N, c.D});
    block.load(fixture_weights(dict));
    const Matrix<TestType> x = fixture_matrix<TestType>(dict, "input");
    const Matrix<double> ref = fixture_matrix<double>(dict, "output");
    check_close(block.forward(x, c.n), ref, layer_rtol<TestType>());
    Matrix<TestType> stream = x;
    block.forward(stream, c.n, stream);
    check_close(stream, ref, layer_rtol<TestType>());
  }
}

TEST_CASE("ResMLPBlock keys and timm init", "[layers][resmlp]") {
  ResMLPBlock<float> block({196, 384, 4.0, 1e-4});
  block.init_random(1);
  StateDict saved;
  block.save(saved, "blocks.0.");
  CHECK(saved.at("blocks.0.norm1.alpha").shape() == std::vector<std::int64_t>{1, 1, 384});
  CHECK(saved.at("blocks.0.linear_tokens.weight").shape() == std::vector<std::int64_t>{196, 196});
  CHECK(saved.at("blocks.0.mlp_channels.fc1.weight").shape() ==
        std::vector<std::int64_t>{1536, 384});
  CHECK(saved.at("blocks.0.ls1").shape() == std::vector<std::int64_t>{384});
  CHECK(saved.contains("blocks.0.ls2"));
  CHECK(saved.size() == 12);
  CHECK(block.ls1.gamma == Vector<float>::Constant(384, 1e-4f));
  CHECK(block.linear_tokens.bias == Vector<float>::Zero(196));
  CHECK(block.norm2.alpha == Vector<float>::Ones(384));
  // Near-identity at init: the branches are scaled by 1e-4.
  Matrix<float> x(196, 384);
  Random rng(2);
  rng.fill_normal(x, 0.0, 1.0);
  CHECK((block.forward(x, 196) - x).cwiseAbs().maxCoeff() < 0.05f);
}

TEST_CASE("ResMLPBlock errors and strict loading", "[layers][resmlp]") {
  ResMLPBlock<double> block({6, 4});
  Matrix<double> x(14, 4);
  CHECK_THROWS_AS(block.forward(x, 7), ShapeError);
  Matrix<double> x3(12, 3);
  CHECK_THROWS_AS(block.forward(x3, 6), ShapeError);
  CHECK_THROWS_AS(ResMLPBlock<double>({6, 0}), ArgumentError);
  block.init_random(2);
  StateDict saved;
  block.save(saved);
  ResMLPBlock<double> copy({6, 4});
  copy.load(saved);
  CHECK(copy.ls2.gamma == block.ls2.gamma);
  StateDict broken = saved;
  broken.erase("ls1");
  check_key_error_mentions([&] { copy.load(broken); }, "ls1");
  StateDict fb = saved;  // FB layout: gamma_1 instead of ls1
  fb.insert("gamma_1", saved.at("ls1"));
  check_key_error_mentions([&] { copy.load(fb); }, "gamma_1");
}

TEMPLATE_TEST_CASE("ResMLPBlock: n = 1, large inputs finite, thread-safe", "[layers][resmlp][threads]",
                   float, double) {
  ResMLPBlock<TestType> block({40, 16, 4.0, 0.5});
  block.init_random(3);
  Matrix<TestType> x(80, 16);
  Random rng(4);
  rng.fill_normal(x, 0.0, 1e4);
  CHECK(block.forward(x, 40).allFinite());
  // n = 1: token mixing is w00 * a + b0.
  const Matrix<TestType> one = block.forward(x.topRows(3), 1);
  CHECK(one.allFinite());
  check_concurrent_identical([&] { return Matrix<TestType>(block.forward(x, 40)); });
}

}  // namespace test_layers_resmlp_block

#include "tokenmix/layers/gmlp_block.hpp"

#include <catch2/catch.hpp>

#include "layers/mlp_layers_testing.hpp"

namespace test_layers_gmlp_block {

using namespace tokenmix;
using namespace tokenmix_test;

namespace {
struct Case {
  const char* name;
  Index N, D, H, n;
  bool causal;
  Index attn_dim;
};
const Case cases[] = {
    {"gmlp_block_a", 7, 8, 24, 7, false, 0},
    {"gmlp_block_causal", 6, 6, 12, 6, true, 0},
    {"gmlp_block_short", 8, 5, 10, 5, false, 0},
    {"amlp_block_a", 7, 8, 12, 7, false, 4},
    {"amlp_block_causal", 6, 6, 8, 6, true, 5},
};
}  // namespace

TEMPLATE_TEST_CASE("GMLPBlock matches timm SpatialGatingBlock and the aMLP reference",
                   "[layers][gmlp]", float, double) {
  for (const Case& c : cases) {
    INFO(c.name);
    const StateDict dict = layer_fixture(c.name);
    typename GMLPBlock<TestType>::Config config;
    config.seq_len = c.N;
    config.channels = c.D;
    config.hidden = c.H;
    config.causal = c.causal;
    config.attn_dim = c.attn_dim;
    GMLPBlock<TestType> block(config);
    CHECK(block.has_attention() == (c.attn_dim > 0));
    block.load(fixture_weights(dict));
    const Matrix<TestType> x = fixture_matrix<TestType>(dict, "input");
    const Matrix<double> ref = fixture_matrix<double>(dict, "output");
    check_close(block.forward(x, c.n), ref, layer_rtol<TestType>());
    Matrix<TestType> stream = x;
    block.forward(stream, c.n, stream);
    check_close(stream, ref, layer_rtol<TestType>());
  }
}

TEST_CASE("GMLPBlock widths, eps and keys follow timm gmlp_s16", "[layers][gmlp]") {
  typename GMLPBlock<float>::Config config;
  config.seq_len = 196;
  config.channels = 256;
  config.mlp_ratio = 6.0;
  GMLPBlock<float> block(config);
  CHECK(block.hidden() == 1536);
  CHECK(block.norm.config().eps == 1e-6);
  CHECK(block.gate.norm.config().eps == 1e-5);
  StateDict saved;
  block.save(saved, "blocks.0.");
  CHECK(saved.at("blocks.0.mlp_channels.fc1.weight").shape() ==
        std::vector<std::int64_t>{1536, 256});
  CHECK(saved.at("blocks.0.mlp_channels.gate.norm.weight").shape() ==
        std::vector<std::int64_t>{768});
  CHECK(saved.at("blocks.0.mlp_channels.gate.proj.weight").shape() ==
        std::vector<std::int64_t>{196, 196});
  CHECK(saved.at("blocks.0.mlp_channels.fc2.weight").shape() ==
        std::vector<std::int64_t>{256, 768});
  CHECK(saved.size() == 10);

  config.attn_dim = 64;
  GMLPBlock<float> amlp(config);
  StateDict with_attn;
  amlp.save(with_attn, "blocks.0.");
  CHECK(with_attn.size() == 13);
  CHECK(with_attn.at("blocks.0.attn.to_qkv.weight").shape() ==
        std::vector<std::int64_t>{192, 256});
  CHECK(with_attn.at("blocks.0.attn.to_out.weight").shape() ==
        std::vector<std::int64_t>{768, 64});
  // A plain gMLP checkpoint lacks the attention; an aMLP one has keys gMLP does not use.
  check_key_error_mentions([&] { amlp.load(saved, "blocks.0."); }, "blocks.0.attn.to_qkv.weight");
  check_key_error_mentions([&] { block.load(with_attn, "blocks.0."); },
                           "blocks.0.attn.to_out.bias");
}

TEST_CASE("GMLPBlock errors", "[layers][gmlp]") {
  typename GMLPBlock<float>::Config config;
  config.seq_len = 10;
  config.channels = 4;
  GMLPBlock<float> block(config);
  Matrix<float> x(22, 4);
  try {
    block.forward(x, 11);
    FAIL("expected ShapeError");
  } catch (const ShapeError& e) {
    CHECK(std::string(e.what()) == "GMLPBlock: expected input with 10 tokens or fewer, got 11");
  }
  Matrix<float> x5(10, 5);
  CHECK_THROWS_AS(block.forward(x5, 10), ShapeError);
  config.hidden = 7;
  CHECK_THROWS_AS(GMLPBlock<float>(config), ArgumentError);
  config.hidden = 0;
  config.attn_dim = -1;
  CHECK_THROWS_AS(GMLPBlock<float>(config), ArgumentError);
}

TEMPLATE_TEST_CASE("GMLPBlock: init round trip, large inputs, thread safety", "[layers][gmlp][threads]",
                   float, double) {
  for (Index attn_dim : {Index(0), Index(16)}) {
    typename GMLPBlock<TestType>::Config config;
    config.seq_len = 50;
    config.channels = 16;
    config.causal = true;
    config.attn_dim = attn_dim;
    GMLPBlock<TestType> block(config);
    block.init_random(9);
    StateDict saved;
    block.save(saved);
    GMLPBlock<TestType> copy(config);
    copy.load(saved);
    Matrix<TestType> x(100, 16);
    Random rng(10);
    rng.fill_normal(x, 0.0, 1e4);
    const Matrix<TestType> y = block.forward(x, 50);
    CHECK(y.allFinite());
    CHECK(copy.forward(x, 50) == y);
    check_concurrent_identical([&] { return Matrix<TestType>(block.forward(x, 50)); });
  }
}

}  // namespace test_layers_gmlp_block

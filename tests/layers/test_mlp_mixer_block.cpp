#include "tokenmix/layers/mlp_mixer_block.hpp"

#include <catch2/catch.hpp>

#include "layers/mlp_layers_testing.hpp"

namespace test_layers_mlp_mixer_block {

using namespace tokenmix;
using namespace tokenmix_test;

TEMPLATE_TEST_CASE("MLPMixerBlock matches timm MixerBlock", "[layers][mlp_mixer]", float, double) {
  struct Case {
    const char* name;
    Index N, D, n;
  };
  for (const Case& c : {Case{"mlp_mixer_block_a", 7, 8, 7}, Case{"mlp_mixer_block_b", 5, 6, 5},
                        Case{"mlp_mixer_block_short", 9, 6, 6},
                        Case{"mlp_mixer_block_n1", 1, 4, 1}}) {
    INFO(c.name);
    const StateDict dict = layer_fixture(c.name);
    MLPMixerBlock<TestType> block({c.N, c.D});
    block.load(fixture_weights(dict));
    const Matrix<TestType> x = fixture_matrix<TestType>(dict, "input");
    const Matrix<double> ref = fixture_matrix<double>(dict, "output");
    check_close(block.forward(x, c.n), ref, layer_rtol<TestType>());
    // In place: the residual stream updated where it lies.
    Matrix<TestType> stream = x;
    block.forward(stream, c.n, stream);
    check_close(stream, ref, layer_rtol<TestType>());
  }
}

TEST_CASE("MLPMixerBlock widths follow timm (Ds from D, not N)", "[layers][mlp_mixer]") {
  MLPMixerBlock<float> block({196, 768});
  CHECK(block.mlp_tokens.fc1.weight.value().rows() == 384);
  CHECK(block.mlp_tokens.fc1.weight.value().cols() == 196);
  CHECK(block.mlp_tokens.fc2.weight.value().rows() == 196);
  CHECK(block.mlp_channels.fc1.weight.value().rows() == 3072);
  CHECK(block.norm1.config().eps == 1e-6);
  StateDict saved;
  block.save(saved, "blocks.0.");
  CHECK(saved.size() == 12);
  CHECK(saved.at("blocks.0.mlp_tokens.fc2.bias").shape() == std::vector<std::int64_t>{196});
}

TEST_CASE("MLPMixerBlock errors and strict loading", "[layers][mlp_mixer]") {
  MLPMixerBlock<float> block({8, 6});
  Matrix<float> x(18, 6);
  try {
    block.forward(x, 9);
    FAIL("expected ShapeError");
  } catch (const ShapeError& e) {
    CHECK(std::string(e.what()) == "MLPMixerBlock: expected input with 8 tokens or fewer, got 9");
  }
  Matrix<float> x5(10, 5);
  CHECK_THROWS_AS(block.forward(x5, 5), ShapeError);
  CHECK_THROWS_AS(block.forward(x, 4), ShapeError);  // 18 rows, seq 4
  CHECK_THROWS_AS(MLPMixerBlock<float>({0, 6}), ArgumentError);

  block.init_random(3);
  StateDict saved;
  block.save(saved);
  MLPMixerBlock<float> copy({8, 6});
  copy.load(saved);
  CHECK(copy.mlp_tokens.fc1.weight.value() == block.mlp_tokens.fc1.weight.value());
  StateDict broken = saved;
  broken.erase("norm2.bias");
  broken.insert("norm3.bias", saved.at("norm2.bias"));
  try {
    copy.load(broken);
    FAIL("expected KeyError");
  } catch (const KeyError& e) {
    CHECK(std::string(e.what()).find("norm2.bias") != std::string::npos);
    CHECK(std::string(e.what()).find("norm3.bias") != std::string::npos);
  }
  MLPMixerBlock<float> other_n({9, 6});
  check_key_error_mentions([&] { other_n.load(saved); }, "mlp_tokens.fc1.weight");
}

TEMPLATE_TEST_CASE("MLPMixerBlock: large inputs finite, thread-safe", "[layers][mlp_mixer][threads]", float,
                   double) {
  MLPMixerBlock<TestType> block({33, 24});
  block.init_random(7);
  Matrix<TestType> x(66, 24);
  Random rng(8);
  rng.fill_normal(x, 0.0, 1e4);
  const Matrix<TestType> y = block.forward(x, 33);
  CHECK(y.allFinite());
  check_concurrent_identical([&] { return Matrix<TestType>(block.forward(x, 33)); });
}

TEST_CASE("block forwards reuse their scratch once warm", "[layers][mlp_mixer]") {
  // Layer scratch comes from the thread's arena; after the first call with a shape, further
  // calls must not grow it (the arena is where a per-call allocation would show up).
  MLPMixerBlock<float> block({20, 16});
  block.init_random(1);
  Matrix<float> x(60, 16), y(60, 16);
  Random rng(2);
  rng.fill_normal(x, 0.0, 1.0);
  block.forward(x, 20, y);
  const std::size_t warm = detail::thread_scratch_arena().capacity();
  for (int i = 0; i < 3; ++i) block.forward(x, 20, y);
  CHECK(detail::thread_scratch_arena().capacity() == warm);
  block.forward(x.topRows(40), 20, y.topRows(40));  // smaller input: still no growth
  CHECK(detail::thread_scratch_arena().capacity() == warm);
}

}  // namespace test_layers_mlp_mixer_block

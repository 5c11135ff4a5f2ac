#include <catch2/catch.hpp>

#include <thread>

#include "model_test_util.hpp"
#include "tokenmix/models/transformer_block.hpp"

namespace test_models_transformer_block {

using namespace tokenmix;

TEMPLATE_TEST_CASE("TransformerBlock equals LN -> SelfAttention -> residual -> LN -> Mlp",
                   "[models]", float, double) {
  using T = TestType;
  const double rtol = std::is_same<T, float>::value ? 2e-5 : 1e-12;
  for (const bool causal : {false, true}) {
    typename TransformerBlock<T>::Config c;
    c.channels = 24;
    c.heads = 3;
    c.mlp_ratio = 2.5;
    c.causal = causal;
    TransformerBlock<T> block(c);
    Random rng(5);
    block.init_random(rng);
    block.norm1.init_random(rng);
    block.norm2.init_random(rng);
    rng.fill_normal(block.attn.in_proj_bias, 0.0, 0.2);
    const Index n = 13;
    Matrix<T> x(2 * n, 24);
    rng.fill_normal(x, 0.0, 1.0);
    // Composition of the layers' own forward passes.
    const Matrix<T> a = block.attn.forward(block.norm1.forward(x), n);
    const Matrix<T> y1 = x + a;
    const Matrix<T> ref = y1 + block.mlp.forward(block.norm2.forward(y1));
    tokenmix_test::require_close(block.forward(x, n), ref, rtol);
    Matrix<T> inplace = x;
    block.forward(inplace, n, inplace);
    CHECK(inplace == block.forward(x, n));
  }
}

TEST_CASE("TransformerBlock loads both key layouts and checks keys", "[models]") {
  TransformerBlock<float>::Config c;
  c.channels = 16;
  c.heads = 2;
  TransformerBlock<float> a(c);
  a.init_random(9);
  StateDict lib;
  a.save(lib, "blocks.0.");
  CHECK(lib.contains("blocks.0.attn.in_proj_weight"));
  CHECK(lib.contains("blocks.0.mlp.fc2.bias"));
  c.timm_names = true;
  TransformerBlock<float> timm(c);
  timm.load(lib, "blocks.0.");
  StateDict timm_dict;
  timm.save(timm_dict);
  CHECK(timm_dict.contains("attn.qkv.weight"));
  CHECK(timm_dict.contains("attn.proj.bias"));
  TransformerBlock<float> b(c);
  b.load(timm_dict);
  Matrix<float> x = Matrix<float>::Random(10, 16);
  CHECK(b.forward(x, 5) == a.forward(x, 5));

  timm_dict.erase("attn.proj.bias");
  CHECK_THROWS_AS(b.load(timm_dict), KeyError);
  CHECK_THROWS_AS(a.forward(x, 3), ShapeError);
  c.heads = 3;
  CHECK_THROWS_AS(TransformerBlock<float>(c), ArgumentError);

  Matrix<float> r1, r2;
  std::thread t1([&] { r1 = a.forward(x, 5); });
  std::thread t2([&] { r2 = a.forward(x, 5); });
  t1.join();
  t2.join();
  CHECK(r1 == a.forward(x, 5));
  CHECK(r2 == r1);
  Matrix<float> big = Matrix<float>::Constant(4, 16, 1e4f);
  big(1, 1) = -1e4f;
  CHECK(a.forward(big, 1).allFinite());  // n = 1
}

}  // namespace test_models_transformer_block

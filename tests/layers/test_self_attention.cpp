#include "tokenmix/layers/self_attention.hpp"

#include <catch2/catch.hpp>

#include "layers/attention_test_util.hpp"

namespace test_layers_self_attention {

using namespace tokenmix;
using attention_test::fixture;
using attention_test::meta;
using attention_test::rows_of;

namespace {

template <class T>
SelfAttention<T> layer_from(const SafetensorsFile& f) {
  typename SelfAttention<T>::Config c;
  c.channels = meta(f, "channels");
  c.heads = meta(f, "heads");
  c.causal = meta(f, "causal") != 0;
  SelfAttention<T> layer(c);
  layer.load(attention_test::params(f));
  return layer;
}

}  // namespace

TEMPLATE_TEST_CASE("SelfAttention matches torch.nn.MultiheadAttention", "[layers][self_attention]",
                   float, double) {
  using T = TestType;
  for (const char* name : {"self_attention_plain", "self_attention_causal_padded",
                           "self_attention_long_padded", "self_attention_single_token",
                           "self_attention_fully_masked"}) {
    INFO("fixture " << name);
    const SafetensorsFile f = fixture(name);
    const SelfAttention<T> layer = layer_from<T>(f);
    const Matrix<T> x = rows_of<T>(f, "input");
    const Matrix<double> ref = rows_of<double>(f, "output");
    const Index n = meta(f, "seq_len");
    Matrix<T> y;
    if (f.tensors.contains("key_padding_mask"))
      y = layer.forward(x, n, attention_test::mask_of(f, "key_padding_mask"));
    else
      y = layer.forward(x, n);
    attention_test::check_close(y, ref, attention_test::rtol<T>());
  }
}

TEST_CASE("SelfAttention: fully masked sequences give NaN rows like PyTorch, others are unaffected",
          "[layers][self_attention]") {
  const SafetensorsFile f = fixture("self_attention_fully_masked");
  const SelfAttention<double> layer = layer_from<double>(f);
  const Matrix<double> x = rows_of<double>(f, "input");
  const Matrix<double> y = layer.forward(x, 5, attention_test::mask_of(f, "key_padding_mask"));
  CHECK(y.topRows(5).array().isFinite().all());
  CHECK(y.bottomRows(5).array().isNaN().all());
}

TEST_CASE("SelfAttention: load is strict and save round-trips", "[layers][self_attention]") {
  SelfAttention<float> layer({16, 4, false});
  layer.init_random(3);
  StateDict dict;
  layer.save(dict, "blocks.1.attn.");
  CHECK(dict.size() == 4);
  CHECK(dict.at("blocks.1.attn.in_proj_weight").shape() == std::vector<std::int64_t>{48, 16});

  SelfAttention<float> other({16, 4, false});
  other.load(dict, "blocks.1.attn.");
  CHECK(other.in_proj_weight.value() == layer.in_proj_weight.value());
  CHECK(other.out_proj_bias == layer.out_proj_bias);

  StateDict broken = dict;
  broken.erase("blocks.1.attn.out_proj.bias");
  broken.insert("blocks.1.attn.in_proj_bias", Tensor(DType::F32, {47}));
  broken.insert("blocks.1.attn.extra", Tensor(DType::F32, {1}));
  broken.insert("blocks.2.attn.other", Tensor(DType::F32, {1}));  // outside the prefix
  try {
    other.load(broken, "blocks.1.attn.");
    FAIL("expected KeyError");
  } catch (const KeyError& e) {
    const std::string what = e.what();
    CHECK_THAT(what, Catch::Contains("out_proj.bias"));
    CHECK_THAT(what, Catch::Contains("in_proj_bias: expected [48], got [47]"));
    CHECK_THAT(what, Catch::Contains("blocks.1.attn.extra"));
    CHECK_THAT(what, !Catch::Contains("blocks.2.attn.other"));
    CHECK(e.keys().size() == 3);
  }
}

TEST_CASE("SelfAttention: init follows nn.MultiheadAttention", "[layers][self_attention]") {
  SelfAttention<double> layer({64, 8, false});
  layer.init_random(1);
  const double xavier = std::sqrt(6.0 / (4 * 64));
  CHECK(layer.in_proj_weight.value().cwiseAbs().maxCoeff() <= xavier);
  CHECK(layer.in_proj_weight.value().cwiseAbs().maxCoeff() > 0.9 * xavier);
  CHECK(layer.out_proj_weight.value().cwiseAbs().maxCoeff() <= 1.0 / 8.0);
  CHECK(layer.in_proj_bias.isZero(0));
  CHECK(layer.out_proj_bias.isZero(0));
  SelfAttention<double> again({64, 8, false});
  again.init_random(1);
  CHECK(again.in_proj_weight.value() == layer.in_proj_weight.value());
}

TEST_CASE("SelfAttention: bad configs and shapes are rejected with clear messages",
          "[layers][self_attention]") {
  CHECK_THROWS_AS(SelfAttention<float>({0, 1, false}), ArgumentError);
  CHECK_THROWS_WITH(SelfAttention<float>({30, 4, false}), Catch::Contains("dividing channels 30"));
  SelfAttention<float> layer({8, 2, false});
  Matrix<float> x = Matrix<float>::Zero(10, 8);
  CHECK_THROWS_WITH(layer.forward(Matrix<float>::Zero(10, 9), 5),
                    Catch::Contains("SelfAttention: expected input with 8 channels, got 9"));
  CHECK_THROWS_WITH(layer.forward(x, 3), Catch::Contains("multiple of seq_len"));
  BoolMatrix mask = BoolMatrix::Zero(2, 4);
  CHECK_THROWS_WITH(layer.forward(x, 5, mask),
                    Catch::Contains("key_padding_mask of shape [2, 5], got [2, 4]"));
  Matrix<float> y(10, 7);
  CHECK_THROWS_AS(layer.forward(x, 5, y), ShapeError);
}

TEMPLATE_TEST_CASE("SelfAttention: output may alias input; threads give identical results",
                   "[layers][self_attention][threads]", float, double) {
  using T = TestType;
  SelfAttention<T> layer({32, 4, true});
  layer.init_random(8);
  Matrix<T> x(2 * 90, 32);
  Random(4).fill_normal(x, 0, 1);
  const Matrix<T> y = layer.forward(x, 90);
  Matrix<T> inplace = x;
  layer.forward(inplace, 90, inplace);
  CHECK(inplace == y);
  auto both = attention_test::on_two_threads([&] { return Matrix<T>(layer.forward(x, 90)); });
  CHECK(both.first == y);
  CHECK(both.second == y);
}

TEST_CASE("SelfAttention: inputs of magnitude 1e4 stay finite", "[layers][self_attention]") {
  SelfAttention<float> layer({16, 2, false});
  layer.init_random(2);
  Matrix<float> x(40, 16);
  Random(6).fill_normal(x, 0, 1e4);
  const Matrix<float> y = layer.forward(x, 20);
  CHECK(y.array().isFinite().all());
}

TEST_CASE("SelfAttention: warm forward allocates no scratch", "[layers][self_attention]") {
  SelfAttention<float> layer({32, 4, false});
  layer.init_random(1);
  Matrix<float> x(300, 32), y(300, 32);
  Random(1).fill_normal(x, 0, 1);
  layer.forward(x, 300, y);
  // Only the calling thread's arena is observable: keep every task on it.
  ScopedThreads single_thread(1);
  layer.forward(x, 300, y);
  const std::size_t warm = detail::thread_scratch_arena().capacity();
  layer.forward(x, 300, y);
  CHECK(detail::thread_scratch_arena().capacity() == warm);
}

TEST_CASE("SelfAttention: scratch memory is O(n d), never an n x n score matrix",
          "[layers][self_attention]") {
  const Index n = 2048, d = 16;
  SelfAttention<float> layer({d, 2, false});
  layer.init_random(3);
  Matrix<float> x(n, d), y(n, d);
  Random(2).fill_normal(x, 0, 1);
  std::size_t capacity = 0;
  // A fresh thread has an empty arena, so its capacity afterwards is this call's peak.
  std::thread([&] {
    ScopedThreads single(1);
    layer.forward(x, n, y);
    capacity = detail::thread_scratch_arena().capacity();
  }).join();
  const std::size_t one_score_matrix = sizeof(float) * n * n;  // 16 MB
  INFO("scratch bytes " << capacity);
  CHECK(capacity < one_score_matrix / 8);
  CHECK(y.array().isFinite().all());
}

TEMPLATE_TEST_CASE("SelfAttention: causal rows never see a later NaN or Inf, across tiles",
                   "[layers][self_attention]", float, double) {
  using T = TestType;
  SelfAttention<T> layer({32, 4, true});
  layer.init_random(5);
  // 300 tokens cross the 56-row query blocks and the 256-key tiles.
  attention_test::check_causal_under_nan<T>(
      [&](const Matrix<T>& x) { return Matrix<T>(layer.forward(x, 300)); }, 300, 32,
      {1, 55, 56, 57, 200, 255, 256, 257, 298});
}

}  // namespace test_layers_self_attention

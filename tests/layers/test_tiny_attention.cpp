#include "tokenmix/layers/tiny_attention.hpp"

#include <catch2/catch.hpp>

#include "layers/attention_test_util.hpp"

namespace test_layers_tiny_attention {

using namespace tokenmix;
using attention_test::fixture;
using attention_test::meta;
using attention_test::rows_of;

namespace {

template <class T>
TinyAttention<T> layer_from(const SafetensorsFile& f) {
  typename TinyAttention<T>::Config c;
  c.channels = meta(f, "channels");
  c.out_channels = meta(f, "out_channels");
  c.attn_dim = meta(f, "attn_dim");
  c.causal = meta(f, "causal") != 0;
  TinyAttention<T> layer(c);
  layer.load(attention_test::params(f));
  return layer;
}

}  // namespace

TEMPLATE_TEST_CASE("TinyAttention matches the lucidrains aMLP attention", "[layers][tiny_attention]",
                   float, double) {
  using T = TestType;
  for (const char* name : {"tiny_attention_plain", "tiny_attention_causal"}) {
    INFO("fixture " << name);
    const SafetensorsFile f = fixture(name);
    const TinyAttention<T> layer = layer_from<T>(f);
    const Matrix<T> x = rows_of<T>(f, "input");
    attention_test::check_close(layer.forward(x, meta(f, "seq_len")),
                                rows_of<double>(f, "output"), attention_test::rtol<T>());
  }
}

TEMPLATE_TEST_CASE("TinyAttention::forward_add accumulates into the output",
                   "[layers][tiny_attention]", float, double) {
  using T = TestType;
  const SafetensorsFile f = fixture("tiny_attention_plain");
  const TinyAttention<T> layer = layer_from<T>(f);
  const Matrix<T> x = rows_of<T>(f, "input");
  Matrix<T> y(x.rows(), layer.config().out_channels);
  Random(2).fill_normal(y, 0, 1);
  const Matrix<T> start = y;
  layer.forward_add(x, meta(f, "seq_len"), y);
  const Matrix<double> expected = rows_of<double>(f, "output") + start.template cast<double>();
  attention_test::check_close(y, expected, attention_test::rtol<T>());
}

TEST_CASE("TinyAttention: single token, causal prefix property, huge inputs",
          "[layers][tiny_attention]") {
  TinyAttention<double> layer({12, 6, 8, true});
  layer.init_random(4);
  Matrix<double> x(3 * 50, 12);
  Random(1).fill_normal(x, 0, 1);
  const Matrix<double> y = layer.forward(x, 50);
  // Causal: the first 20 tokens of a sequence do not depend on what follows them.
  Matrix<double> prefix(20, 12);
  prefix = x.block(50, 0, 20, 12);
  const Matrix<double> yp = layer.forward(prefix, 20);
  attention_test::check_close(yp, Matrix<double>(y.block(50, 0, 20, 6)), 1e-12);
  // n = 1: softmax over one key is 1, so the output is to_out(V).
  const Matrix<double> one = layer.forward(x.topRows(1), 1);
  const Matrix<double> v = x.topRows(1) * layer.to_qkv_weight.value().bottomRows(8).transpose();
  const Matrix<double> expected =
      (v * layer.to_out_weight.value().transpose()).rowwise() + layer.to_out_bias.transpose();
  attention_test::check_close(one, expected, 1e-12);
  Matrix<float> big(40, 12);
  Random(3).fill_normal(big, 0, 1e4);
  TinyAttention<float> lf({12, 6, 8, false});
  lf.init_random(5);
  CHECK(lf.forward(big, 20).array().isFinite().all());
}

TEST_CASE("TinyAttention: strict load, save round trip, init", "[layers][tiny_attention]") {
  TinyAttention<float> layer({16, 10, 8, false});
  layer.init_random(7);
  CHECK(layer.to_qkv_weight.value().cwiseAbs().maxCoeff() <= 0.25f);  // 1/sqrt(16)
  CHECK(layer.to_out_bias.cwiseAbs().maxCoeff() > 0);
  StateDict dict;
  layer.save(dict, "blocks.3.attn.");
  CHECK(dict.size() == 3);
  TinyAttention<float> other({16, 10, 8, false});
  other.load(dict, "blocks.3.attn.");
  CHECK(other.to_qkv_weight.value() == layer.to_qkv_weight.value());
  CHECK(other.to_out_bias == layer.to_out_bias);
  TinyAttention<float> wrong({16, 10, 4, false});
  CHECK_THROWS_WITH(wrong.load(dict, "blocks.3.attn."),
                    Catch::Contains("to_qkv.weight: expected [12, 16], got [24, 16]"));
  dict.insert("blocks.3.attn.to_qkv.bias", Tensor(DType::F32, {24}));
  CHECK_THROWS_AS(other.load(dict, "blocks.3.attn."), KeyError);
}

TEST_CASE("TinyAttention: shapes and configs are checked", "[layers][tiny_attention]") {
  CHECK_THROWS_AS(TinyAttention<float>({16, 0, 8, false}), ArgumentError);
  TinyAttention<float> layer({16, 10, 8, false});
  CHECK_THROWS_WITH(layer.forward(Matrix<float>::Zero(6, 15), 3),
                    Catch::Contains("TinyAttention: expected input with 16 channels, got 15"));
  Matrix<float> y(6, 9);
  CHECK_THROWS_AS(layer.forward(Matrix<float>::Zero(6, 16), 3, y), ShapeError);
}

TEMPLATE_TEST_CASE("TinyAttention is thread-safe and allocation-free when warm",
                   "[layers][tiny_attention][threads]", float, double) {
  using T = TestType;
  TinyAttention<T> layer({24, 12, 64, true});
  layer.init_random(9);
  Matrix<T> x(2 * 140, 24);
  Random(8).fill_normal(x, 0, 1);
  const Matrix<T> y = layer.forward(x, 140);
  auto both = attention_test::on_two_threads([&] { return Matrix<T>(layer.forward(x, 140)); });
  CHECK(both.first == y);
  CHECK(both.second == y);
  Matrix<T> out(x.rows(), 12);
  layer.forward(x, 140, out);
  // Only the calling thread's arena is observable: keep every task on it.
  ScopedThreads single_thread(1);
  layer.forward(x, 140, out);
  const std::size_t warm = detail::thread_scratch_arena().capacity();
  layer.forward(x, 140, out);
  CHECK(detail::thread_scratch_arena().capacity() == warm);
}

TEMPLATE_TEST_CASE("TinyAttention: causal rows never see a later NaN or Inf",
                   "[layers][tiny_attention]", float, double) {
  using T = TestType;
  typename TinyAttention<T>::Config c;
  c.channels = 24;
  c.out_channels = 16;
  c.attn_dim = 8;
  c.causal = true;
  TinyAttention<T> layer(c);
  layer.init_random(4);
  attention_test::check_causal_under_nan<T>(
      [&](const Matrix<T>& x) { return Matrix<T>(layer.forward(x, 280)); }, 280, 24,
      {3, 56, 111, 256, 270});
}

}  // namespace test_layers_tiny_attention

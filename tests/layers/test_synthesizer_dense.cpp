#include "tokenmix/layers/synthesizer_dense.hpp"

#include <catch2/catch.hpp>

#include "layers/attention_test_util.hpp"

namespace test_layers_synthesizer_dense {

using namespace tokenmix;
using attention_test::fixture;
using attention_test::meta;
using attention_test::rows_of;

namespace {

template <class T>
SynthesizerDense<T> layer_from(const SafetensorsFile& f) {
  typename SynthesizerDense<T>::Config c;
  c.seq_len = meta(f, "seq_len");
  c.channels = meta(f, "channels");
  c.heads = meta(f, "heads");
  c.causal = meta(f, "causal") != 0;
  SynthesizerDense<T> layer(c);
  layer.load(attention_test::params(f));
  return layer;
}

}  // namespace

TEMPLATE_TEST_CASE("SynthesizerDense matches the reference at N and at shorter lengths",
                   "[layers][synthesizer]", float, double) {
  using T = TestType;
  for (const char* name : {"synthesizer_dense_plain", "synthesizer_dense_causal"}) {
    INFO("fixture " << name);
    const SafetensorsFile f = fixture(name);
    const SynthesizerDense<T> layer = layer_from<T>(f);
    attention_test::check_close(layer.forward(rows_of<T>(f, "input"), meta(f, "seq_len")),
                                rows_of<double>(f, "output"), attention_test::rtol<T>());
    attention_test::check_close(
        layer.forward(rows_of<T>(f, "input_short"), meta(f, "short_len")),
        rows_of<double>(f, "output_short"), attention_test::rtol<T>());
  }
}

TEST_CASE("SynthesizerDense: logits come from each token alone, through ReLU",
          "[layers][synthesizer]") {
  SynthesizerDense<double> layer({9, 6, 3, false});
  layer.init_random(2);
  layer.value_weight.update([](auto& w) { w.setIdentity(); });
  layer.value_bias.setZero();
  layer.out_weight.update([](auto& w) { w.setIdentity(); });
  layer.out_bias.setZero();
  Matrix<double> x(2 * 7, 6);
  Random(3).fill_normal(x, 0, 1);
  const Matrix<double> y = layer.forward(x, 7);
  for (Index b = 0; b < 2; ++b) {
    const Matrix<double> xb = x.middleRows(b * 7, 7);
    const Matrix<double> hidden =
        ((xb * layer.dense1_weight.value().transpose()).rowwise() + layer.dense1_bias.transpose())
            .cwiseMax(0.0);
    for (Index k = 0; k < 3; ++k) {
      Matrix<double> logits =
          (hidden * layer.dense2_weight.value().middleRows(k * 9, 7).transpose()).rowwise() +
          layer.dense2_bias.segment(k * 9, 7).transpose();
      Matrix<double> a(7, 7);
      Softmax<double>().forward(logits, 7, a);
      attention_test::check_close(Matrix<double>(y.block(b * 7, k * 2, 7, 2)),
                                  Matrix<double>(a * xb.middleCols(k * 2, 2)), 1e-12);
    }
  }
  Matrix<float> big(18, 6);
  Random(4).fill_normal(big, 0, 1e4);
  SynthesizerDense<float> lf({9, 6, 3, true});
  lf.init_random(5);
  CHECK(lf.forward(big, 9).array().isFinite().all());
}

TEST_CASE("SynthesizerDense: keys, round trip and errors", "[layers][synthesizer]") {
  SynthesizerDense<float> layer({10, 6, 2, true});
  layer.init_random(5);
  StateDict d;
  layer.save(d, "mix.");
  CHECK(d.size() == 8);
  CHECK(d.at("mix.dense2.weight").shape() == std::vector<std::int64_t>{20, 6});
  SynthesizerDense<float> back({10, 6, 2, true});
  back.load(d, "mix.");
  CHECK(back.dense2_weight.value() == layer.dense2_weight.value());
  Matrix<float> x(20, 6);
  Random(1).fill_normal(x, 0, 1);
  CHECK(back.forward(x, 10) == layer.forward(x, 10));
  CHECK_THROWS_WITH(SynthesizerDense<float>({10, 6, 1, true}).load(d, "mix."),
                    Catch::Contains("dense2.weight: expected [10, 6], got [20, 6]"));
  d.erase("mix.out.bias");
  CHECK_THROWS_WITH(back.load(d, "mix."), Catch::Contains("mix.out.bias"));
  CHECK_THROWS_WITH(layer.forward(Matrix<float>::Zero(11, 6), 11),
                    Catch::Contains("SynthesizerDense: expected input with 10 tokens or fewer, got 11"));
  CHECK_THROWS_AS(layer.forward(Matrix<float>::Zero(10, 7), 10), ShapeError);
  CHECK_THROWS_AS(SynthesizerDense<float>({10, 6, 4, false}), ArgumentError);
}

TEMPLATE_TEST_CASE("SynthesizerDense is thread-safe, alias-safe and allocation-free when warm",
                   "[layers][synthesizer][threads]", float, double) {
  using T = TestType;
  SynthesizerDense<T> layer({80, 16, 2, true});
  layer.init_random(7);
  Matrix<T> x(2 * 75, 16);
  Random(8).fill_normal(x, 0, 1);
  const Matrix<T> y = layer.forward(x, 75);
  auto both = attention_test::on_two_threads([&] { return Matrix<T>(layer.forward(x, 75)); });
  CHECK(both.first == y);
  CHECK(both.second == y);
  Matrix<T> inplace = x;
  layer.forward(inplace, 75, inplace);
  CHECK(inplace == y);
  // Only the calling thread's arena is observable: keep every task on it.
  ScopedThreads single_thread(1);
  layer.forward(x, 75, inplace);
  const std::size_t warm = detail::thread_scratch_arena().capacity();
  layer.forward(x, 75, inplace);
  CHECK(detail::thread_scratch_arena().capacity() == warm);
}

TEMPLATE_TEST_CASE("SynthesizerDense: causal rows never see a later NaN or Inf",
                   "[layers][synthesizer]", float, double) {
  using T = TestType;
  typename SynthesizerDense<T>::Config c;
  c.seq_len = 150;
  c.channels = 16;
  c.heads = 2;
  c.causal = true;
  SynthesizerDense<T> layer(c);
  layer.init_random(9);
  attention_test::check_causal_under_nan<T>(
      [&](const Matrix<T>& x) { return Matrix<T>(layer.forward(x, 150)); }, 150, 16,
      {1, 64, 65, 120, 149});
}

}  // namespace test_layers_synthesizer_dense

#include "tokenmix/layers/synthesizer_random.hpp"

#include <catch2/catch.hpp>

#include "layers/attention_test_util.hpp"

namespace test_layers_synthesizer_random {

using namespace tokenmix;
using attention_test::fixture;
using attention_test::meta;
using attention_test::rows_of;

namespace {

template <class T>
SynthesizerRandom<T> layer_from(const SafetensorsFile& f) {
  typename SynthesizerRandom<T>::Config c;
  c.seq_len = meta(f, "seq_len");
  c.channels = meta(f, "channels");
  c.heads = meta(f, "heads");
  c.factor = meta(f, "factor");
  c.causal = meta(f, "causal") != 0;
  SynthesizerRandom<T> layer(c);
  layer.load(attention_test::params(f));
  return layer;
}

}  // namespace

TEMPLATE_TEST_CASE("SynthesizerRandom matches the reference at N and at shorter lengths",
                   "[layers][synthesizer]", float, double) {
  using T = TestType;
  for (const char* name : {"synthesizer_random_plain", "synthesizer_random_factorized_causal"}) {
    INFO("fixture " << name);
    const SafetensorsFile f = fixture(name);
    const SynthesizerRandom<T> layer = layer_from<T>(f);
    attention_test::check_close(layer.forward(rows_of<T>(f, "input"), meta(f, "seq_len")),
                                rows_of<double>(f, "output"), attention_test::rtol<T>());
    // n' < N: leading block of R, softmax over the n' existing keys only.
    attention_test::check_close(
        layer.forward(rows_of<T>(f, "input_short"), meta(f, "short_len")),
        rows_of<double>(f, "output_short"), attention_test::rtol<T>());
  }
}

TEST_CASE("SynthesizerRandom: attention is input-independent and causal rows are prefixes",
          "[layers][synthesizer]") {
  SynthesizerRandom<double> layer({12, 8, 2, 0, true});
  layer.init_random(3);
  Random(1).fill_normal(layer.attention_weights, 0, 2);  // sharp rows
  // With value = identity and out = identity (zero biases), y = A x per head.
  layer.value_weight.update([](auto& w) { w.setIdentity(); });
  layer.value_bias.setZero();
  layer.out_weight.update([](auto& w) { w.setIdentity(); });
  layer.out_bias.setZero();
  Matrix<double> x(12, 8);
  Random(2).fill_normal(x, 0, 1);
  const Matrix<double> y = layer.forward(x, 12);
  for (Index k = 0; k < 2; ++k) {
    Matrix<double> r = layer.attention_weights.middleRows(k * 12, 12);
    Matrix<double> a(12, 12);
    Softmax<double>({true}).forward(r, 12, a);
    attention_test::check_close(Matrix<double>(y.middleCols(k * 4, 4)),
                                Matrix<double>(a * x.middleCols(k * 4, 4)), 1e-12);
  }
  // n' = 1: the single key gets all the weight.
  const Matrix<double> one = layer.forward(x.topRows(1), 1);
  attention_test::check_close(one, Matrix<double>(x.topRows(1)), 1e-12);
  // Huge inputs stay finite (the attention does not see them; value/out are linear).
  Matrix<float> big(24, 8);
  Random(3).fill_normal(big, 0, 1e4);
  SynthesizerRandom<float> lf({12, 8, 2, 3, false});
  lf.init_random(4);
  CHECK(lf.forward(big, 12).array().isFinite().all());
}

TEST_CASE("SynthesizerRandom: keys, round trip and errors", "[layers][synthesizer]") {
  SynthesizerRandom<float> dense({10, 6, 2, 0, false});
  dense.init_random(5);
  CHECK(dense.attention_weights.cwiseAbs().maxCoeff() < 0.2f);
  StateDict d;
  dense.save(d, "mix.");
  CHECK(d.at("mix.attention_weights").shape() == std::vector<std::int64_t>{2, 10, 10});
  SynthesizerRandom<float> back({10, 6, 2, 0, false});
  back.load(d, "mix.");
  CHECK(back.attention_weights == dense.attention_weights);
  CHECK(back.out_bias == dense.out_bias);

  SynthesizerRandom<float> fact({10, 6, 2, 4, false});
  fact.init_random(6);
  StateDict df;
  fact.save(df);
  CHECK(df.at("R1").shape() == std::vector<std::int64_t>{2, 10, 4});
  CHECK_THROWS_WITH(fact.load(d, "mix."), Catch::Contains("missing keys"));
  CHECK_THROWS_WITH(SynthesizerRandom<float>({11, 6, 2, 0, false}).load(d, "mix."),
                    Catch::Contains("attention_weights: expected [2, 11, 11], got [2, 10, 10]"));

  Matrix<float> x = Matrix<float>::Zero(22, 6);
  CHECK_THROWS_WITH(dense.forward(x, 11),
                    Catch::Contains("SynthesizerRandom: expected input with 10 tokens or fewer, got 11"));
  CHECK_THROWS_AS(dense.forward(Matrix<float>::Zero(20, 5), 10), ShapeError);
  CHECK_THROWS_AS(SynthesizerRandom<float>({10, 6, 4, 0, false}), ArgumentError);
  CHECK_THROWS_AS(SynthesizerRandom<float>({0, 6, 1, 0, false}), ArgumentError);
}

TEMPLATE_TEST_CASE("SynthesizerRandom is thread-safe, alias-safe and allocation-free when warm",
                   "[layers][synthesizer][threads]", float, double) {
  using T = TestType;
  SynthesizerRandom<T> layer({70, 16, 4, 0, true});
  layer.init_random(7);
  Matrix<T> x(2 * 70, 16);
  Random(8).fill_normal(x, 0, 1);
  const Matrix<T> y = layer.forward(x, 70);
  auto both = attention_test::on_two_threads([&] { return Matrix<T>(layer.forward(x, 70)); });
  CHECK(both.first == y);
  CHECK(both.second == y);
  Matrix<T> inplace = x;
  layer.forward(inplace, 70, inplace);
  CHECK(inplace == y);
  // Only the calling thread's arena is observable: keep every task on it.
  ScopedThreads single_thread(1);
  layer.forward(x, 70, inplace);
  const std::size_t warm = detail::thread_scratch_arena().capacity();
  layer.forward(x, 70, inplace);
  CHECK(detail::thread_scratch_arena().capacity() == warm);
}

TEMPLATE_TEST_CASE("SynthesizerRandom: causal rows never see a later NaN or Inf",
                   "[layers][synthesizer]", float, double) {
  using T = TestType;
  typename SynthesizerRandom<T>::Config c;
  c.seq_len = 150;
  c.channels = 16;
  c.heads = 2;
  c.causal = true;
  SynthesizerRandom<T> layer(c);
  layer.init_random(9);
  attention_test::check_causal_under_nan<T>(
      [&](const Matrix<T>& x) { return Matrix<T>(layer.forward(x, 150)); }, 150, 16,
      {1, 64, 65, 120, 149});
}

}  // namespace test_layers_synthesizer_random

#include "tokenmix/layers/external_attention.hpp"

#include <catch2/catch.hpp>

#include "layers/attention_test_util.hpp"

namespace test_layers_external_attention {

using namespace tokenmix;
using attention_test::fixture;
using attention_test::meta;
using attention_test::rows_of;

namespace {

template <class T>
ExternalAttention<T> layer_from(const SafetensorsFile& f) {
  typename ExternalAttention<T>::Config c;
  c.channels = meta(f, "channels");
  c.memory = meta(f, "memory");
  c.heads = meta(f, "heads");
  ExternalAttention<T> layer(c);
  layer.load(attention_test::params(f));
  return layer;
}

// SPEC 2.7 written out directly, in double: softmax over tokens, then L1 over slots.
Matrix<double> naive_single_head(const Matrix<double>& x, Index n, const Matrix<double>& mk,
                                 const Matrix<double>& mv) {
  Matrix<double> a = x * mk.transpose();
  for (Index b = 0; b < x.rows() / n; ++b) {
    auto block = a.middleRows(b * n, n);
    for (Index s = 0; s < a.cols(); ++s) {
      const double m = block.col(s).maxCoeff();
      block.col(s) = (block.col(s).array() - m).exp().matrix();
      block.col(s) /= block.col(s).sum();
    }
  }
  for (Index i = 0; i < a.rows(); ++i) a.row(i) /= a.row(i).sum();
  return a * mv.transpose();
}

}  // namespace

TEMPLATE_TEST_CASE("ExternalAttention matches the reference (single and multi-head)",
                   "[layers][external_attention]", float, double) {
  using T = TestType;
  for (const char* name : {"external_attention_single", "external_attention_default_s",
                           "external_attention_multihead"}) {
    INFO("fixture " << name);
    const SafetensorsFile f = fixture(name);
    const ExternalAttention<T> layer = layer_from<T>(f);
    const Matrix<T> x = rows_of<T>(f, "input");
    attention_test::check_close(layer.forward(x, meta(f, "seq_len")),
                                rows_of<double>(f, "output"), attention_test::rtol<T>());
  }
}

TEST_CASE("ExternalAttention: softmax is over tokens, so sequences in a batch are independent",
          "[layers][external_attention]") {
  ExternalAttention<double> layer({10, 6, 1});
  Random rng(3);
  layer.mk_weight.update([&](auto& w) { rng.fill_normal(w, 0, 0.5); });
  layer.mv_weight.update([&](auto& w) { rng.fill_normal(w, 0, 0.5); });
  Matrix<double> x(3 * 17, 10);
  rng.fill_normal(x, 0, 1);
  const Matrix<double> y = layer.forward(x, 17);
  attention_test::check_close(y, naive_single_head(x, 17, layer.mk_weight, layer.mv_weight),
                              1e-12);
  // Treating the batch as one long sequence changes the result (token axis, not slots).
  const Matrix<double> joined = layer.forward(x, 51);
  CHECK((joined - y).cwiseAbs().maxCoeff() > 1e-3);
  // n = 1: the token softmax is 1 for every slot, L1 gives 1/S: y = mean of mv's columns.
  const Matrix<double> one = layer.forward(x.topRows(1), 1);
  for (Index c = 0; c < 10; ++c) CHECK(one(0, c) == Approx(layer.mv_weight.value().row(c).mean()));
  // Odd widths, S not a multiple of the vector width.
  ExternalAttention<float> odd({7, 5, 1});
  odd.init_random(2);
  Matrix<float> xo(9, 7);
  rng.fill_normal(xo, 0, 1);
  attention_test::check_close(
      odd.forward(xo, 9),
      naive_single_head(xo.cast<double>(), 9, odd.mk_weight.value().cast<double>(),
                        odd.mv_weight.value().cast<double>()),
      1e-5);
}

TEST_CASE("ExternalAttention: inputs of magnitude 1e4 give the exact finite result",
          "[layers][external_attention]") {
  // Logits of ~1e3 make whole rows of the token softmax underflow in float; the result is still
  // finite and equal to the double-precision formula evaluated stably.
  ExternalAttention<float> layer({16, 8, 1});
  Random rng(4);
  layer.mk_weight.update([&](auto& w) { rng.fill_normal(w, 0, 0.02); });
  layer.mv_weight.update([&](auto& w) { rng.fill_normal(w, 0, 1); });
  Matrix<float> x(40, 16);
  rng.fill_normal(x, 0, 1e4);
  const Matrix<float> y = layer.forward(x, 40);
  CHECK(y.array().isFinite().all());
  ExternalAttention<double> exact({16, 8, 1});
  exact.mk_weight = layer.mk_weight.value().cast<double>();
  exact.mv_weight = layer.mv_weight.value().cast<double>();
  attention_test::check_close(y, exact.forward(x.cast<double>(), 40), 1e-4);
}

TEST_CASE("ExternalAttention: keys, round trip, init, errors", "[layers][external_attention]") {
  ExternalAttention<float> single({12, 64, 1});
  single.init_random(1);
  CHECK(single.mk_weight.value().rows() == 64);
  CHECK(single.mk_weight.value().cwiseAbs().maxCoeff() < 0.01f);
  StateDict d1;
  single.save(d1);
  CHECK(d1.keys() == std::vector<std::string>{"mk.weight", "mv.weight"});

  ExternalAttention<float> multi({12, 8, 3});
  multi.init_random(2);
  CHECK(multi.trans_dims_weight.value().cwiseAbs().maxCoeff() <= 0.04f);
  StateDict d2;
  multi.save(d2, "ea.");
  CHECK(d2.at("ea.mk.weight").shape() == std::vector<std::int64_t>{8, 4});
  CHECK(d2.at("ea.mv.weight").shape() == std::vector<std::int64_t>{4, 8});
  ExternalAttention<float> back({12, 8, 3});
  back.load(d2, "ea.");
  CHECK(back.proj_weight.value() == multi.proj_weight.value());
  Matrix<float> x(20, 12);
  Random(5).fill_normal(x, 0, 1);
  CHECK(back.forward(x, 10) == multi.forward(x, 10));

  CHECK_THROWS_WITH(single.load(d2, "ea."), Catch::Contains("mk.weight: expected [64, 12]"));
  CHECK_THROWS_WITH(single.load(d2, "ea."), Catch::Contains("unused keys"));
  CHECK_THROWS_AS(ExternalAttention<float>({12, 8, 5}), ArgumentError);
  CHECK_THROWS_AS(ExternalAttention<float>({12, 0, 1}), ArgumentError);
  CHECK_THROWS_WITH(single.forward(Matrix<float>::Zero(4, 11), 2),
                    Catch::Contains("ExternalAttention: expected input with 12 channels, got 11"));
  CHECK_THROWS_AS(single.forward(Matrix<float>::Zero(5, 12), 2), ShapeError);
}

TEMPLATE_TEST_CASE("ExternalAttention is thread-safe, alias-safe and allocation-free when warm",
                   "[layers][external_attention][threads]", float, double) {
  using T = TestType;
  ExternalAttention<T> layer({32, 16, 4});
  layer.init_random(6);
  Matrix<T> x(3 * 50, 32);
  Random(7).fill_normal(x, 0, 1);
  const Matrix<T> y = layer.forward(x, 50);
  auto both = attention_test::on_two_threads([&] { return Matrix<T>(layer.forward(x, 50)); });
  CHECK(both.first == y);
  CHECK(both.second == y);
  Matrix<T> inplace = x;
  layer.forward(inplace, 50, inplace);
  CHECK(inplace == y);
  // Only the calling thread's arena is observable: keep every task on it.
  ScopedThreads single_thread(1);
  layer.forward(inplace, 50, inplace);
  const std::size_t warm = detail::thread_scratch_arena().capacity();
  layer.forward(inplace, 50, inplace);
  CHECK(detail::thread_scratch_arena().capacity() == warm);
}

}  // namespace test_layers_external_attention

#include <catch2/catch.hpp>

#include <thread>

#include "model_test_util.hpp"
#include "tokenmix/models/gmlp_sequence.hpp"
#include "tokenmix/models/model_json.hpp"

namespace test_models_gmlp_sequence {

using namespace tokenmix;
using tokenmix_test::load_model_fixture;

namespace {
Matrix<std::int64_t> ids_of(const Tensor& t) {
  Matrix<std::int64_t> m(t.shape()[0], t.shape()[1]);
  t.copy_to(m.data());
  return m;
}
}  // namespace

TEMPLATE_TEST_CASE("GMLPSequence matches the PyTorch reference (gMLP with head, causal aMLP "
                   "on a shorter input)", "[models]", float, double) {
  using T = TestType;
  const double rtol = std::is_same<T, float>::value ? 1e-4 : 1e-9;
  const char* name = GENERATE("gmlp_seq", "amlp_seq_causal");
  INFO("fixture " << name);
  const auto f = load_model_fixture(name);
  GMLPSequenceConfig c = infer_gmlp_sequence_config(f.weights);
  apply_json(f.config, c, nullptr);
  GMLPSequence<T> model(c);
  model.load(f.weights);
  const Matrix<T> y = model.forward(ids_of(f.io.at("input_ids")));
  tokenmix_test::require_close(y, tokenmix_test::as_rows<double>(f.io.at("output"), c.output_dim()),
                               rtol);
}

TEST_CASE("GMLPSequence inference, causality, errors and threads", "[models][threads]") {
  const auto f = load_model_fixture("amlp_seq_causal");
  GMLPSequenceConfig c = infer_gmlp_sequence_config(f.weights);
  CHECK(c.num_tokens == 50);
  CHECK(c.dim == 32);
  CHECK(c.depth == 2);
  CHECK(c.seq_len == 16);
  CHECK(c.attn_dim == 16);
  CHECK_FALSE(c.head);
  c.causal = true;
  GMLPSequence<double> model(c);
  model.load(f.weights);

  // Causal: changing a later token leaves earlier outputs unchanged.
  Matrix<std::int64_t> ids(1, 9);
  for (Index i = 0; i < 9; ++i) ids(0, i) = (5 * i + 1) % 50;
  const Matrix<double> y = model.forward(ids);
  Matrix<std::int64_t> changed = ids;
  changed(0, 6) = 49;
  const Matrix<double> z = model.forward(changed);
  CHECK(z.topRows(6) == y.topRows(6));
  CHECK(z.row(6) != y.row(6));

  Matrix<std::int64_t> too_long = Matrix<std::int64_t>::Zero(1, 17);
  CHECK_THROWS_AS(model.forward(too_long), ShapeError);
  Matrix<std::int64_t> bad = ids;
  bad(0, 2) = -1;
  CHECK_THROWS_AS(model.forward(bad), ArgumentError);

  StateDict extra = f.weights;
  extra.insert("head.weight", Tensor(DType::F32, {50, 32}));
  CHECK_THROWS_AS(model.load(extra), KeyError);
  ModelLoadOptions skip;
  skip.ignore_head = true;
  model.load(extra, skip);

  Matrix<double> r1, r2;
  std::thread t1([&] { r1 = model.forward(ids); });
  std::thread t2([&] { r2 = model.forward(ids); });
  t1.join();
  t2.join();
  CHECK(r1 == y);
  CHECK(r2 == y);

  StateDict saved;
  model.save(saved);
  GMLPSequence<double> again(infer_gmlp_sequence_config(saved, c));
  again.load(saved);
  CHECK(again.forward(ids) == y);
}

}  // namespace test_models_gmlp_sequence

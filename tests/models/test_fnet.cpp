#include <catch2/catch.hpp>

#include <thread>

#include "model_test_util.hpp"
#include "tokenmix/models/fnet.hpp"
#include "tokenmix/models/model_json.hpp"

namespace test_models_fnet {

using namespace tokenmix;
using tokenmix_test::load_model_fixture;

namespace {

FNetConfig fixture_config(const tokenmix_test::ModelFixture& f) {
  FNetConfig c = infer_fnet_config(f.weights);
  apply_json(f.config, c, nullptr);
  return c;
}

Matrix<std::int64_t> ids_of(const Tensor& t) {
  Matrix<std::int64_t> m(t.shape()[0], t.shape()[1]);
  t.copy_to(m.data());
  return m;
}

}  // namespace

TEMPLATE_TEST_CASE("FNet matches Hugging Face FNetModel (no prefix, gelu_new, token types)",
                   "[models]", float, double) {
  using T = TestType;
  const double rtol = std::is_same<T, float>::value ? 1e-4 : 1e-9;
  const auto f = load_model_fixture("fnet");
  const FNetConfig c = fixture_config(f);
  CHECK(c.hidden_act == "gelu_new");
  CHECK_FALSE(c.mlm_head);
  FNet<T> model(c);
  model.load(f.weights);
  const auto out = model.forward(ids_of(f.io.at("input_ids")), ids_of(f.io.at("token_type_ids")));
  tokenmix_test::require_close(out.last_hidden_state,
                               tokenmix_test::as_rows<double>(f.io.at("output"), 64), rtol);
  tokenmix_test::require_close(out.pooled, tokenmix_test::as_rows<double>(f.io.at("pooled"), 64),
                               rtol);
}

TEMPLATE_TEST_CASE("FNet matches FNetForMaskedLM (fnet. prefix, gelu, tied decoder, n = 33)",
                   "[models]", float, double) {
  using T = TestType;
  const double rtol = std::is_same<T, float>::value ? 1e-4 : 1e-9;
  const auto f = load_model_fixture("fnet_mlm");
  const FNetConfig c = fixture_config(f);
  CHECK(c.mlm_head);
  CHECK(c.hidden_act == "gelu");
  FNet<T> model(c);
  model.load(f.weights);
  CHECK(model.tied_decoder());
  const auto out = model.forward(ids_of(f.io.at("input_ids")));
  tokenmix_test::require_close(out.last_hidden_state,
                               tokenmix_test::as_rows<double>(f.io.at("output"), 64), rtol);
  tokenmix_test::require_close(out.pooled, tokenmix_test::as_rows<double>(f.io.at("pooled"), 64),
                               rtol);
  const Matrix<T> logits = model.mlm_logits(out.last_hidden_state);
  const Matrix<double> ref = tokenmix_test::as_rows<double>(f.io.at("logits"), 100);
  tokenmix_test::require_close(logits, ref, rtol);
  tokenmix_test::require_same_argmax(logits, ref);
}

TEST_CASE("FNet loads the encoder of a task checkpoint and ignores heads on request",
          "[models]") {
  const auto f = load_model_fixture("fnet_mlm");
  FNetConfig c = fixture_config(f);
  c.mlm_head = false;
  FNet<double> encoder(c);
  try {
    encoder.load(f.weights);
    FAIL("expected a KeyError for the unused MLM head");
  } catch (const KeyError& e) {
    CHECK(std::string(e.what()).find("cls.predictions.transform.dense.weight") !=
          std::string::npos);
  }
  ModelLoadOptions options;
  options.ignore_head = true;
  encoder.load(f.weights, options);
  const auto out = encoder.forward(ids_of(f.io.at("input_ids")));
  tokenmix_test::require_close(out.last_hidden_state,
                               tokenmix_test::as_rows<double>(f.io.at("output"), 64), 1e-9);

  // The prefix-free form of the same weights loads too.
  StateDict plain = f.weights.with_prefix_removed("fnet.");
  FNet<double> again(c);
  again.load(plain);
  CHECK(again.forward(ids_of(f.io.at("input_ids"))).pooled == out.pooled);
}

TEST_CASE("FNet strict loading: missing, extra and mis-shaped keys", "[models]") {
  const auto f = load_model_fixture("fnet");
  const FNetConfig c = fixture_config(f);
  StateDict bad = f.weights;
  bad.erase("encoder.layer.1.output.LayerNorm.weight");
  bad.insert("encoder.layer.0.extra.weight", Tensor(DType::F32, {2}));
  bad.insert("pooler.dense.bias", Tensor(DType::F32, {65}));
  FNet<float> model(c);
  try {
    model.load(bad);
    FAIL("expected a KeyError");
  } catch (const KeyError& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(e.keys().size() == 3);
    CHECK(msg.find("encoder.layer.1.output.LayerNorm.weight") != std::string::npos);
    CHECK(msg.find("encoder.layer.0.extra.weight") != std::string::npos);
    CHECK(msg.find("pooler.dense.bias") != std::string::npos);
    CHECK(msg.find("position_ids") == std::string::npos);  // the buffer is not a parameter
  }
}

TEST_CASE("FNet checks its inputs and round-trips through save", "[models]") {
  FNetConfig c;
  c.vocab_size = 20;
  c.hidden_size = 12;
  c.num_hidden_layers = 2;
  c.intermediate_size = 20;
  c.max_position_embeddings = 10;
  c.type_vocab_size = 2;
  c.mlm_head = true;
  FNet<float> a(c);
  a.init_random(5);
  a.decoder_weight = Matrix<float>::Random(20, 12);  // untied
  StateDict saved;
  a.save(saved);
  FNet<float> b(infer_fnet_config(saved, c));
  b.load(saved);
  CHECK_FALSE(b.tied_decoder());
  Matrix<std::int64_t> ids(2, 7);
  for (Index i = 0; i < ids.size(); ++i) ids.data()[i] = (i * 7) % 20;
  const auto ya = a.forward(ids);
  const auto yb = b.forward(ids);
  CHECK(ya.last_hidden_state == yb.last_hidden_state);
  CHECK(a.mlm_logits(ya.last_hidden_state) == b.mlm_logits(yb.last_hidden_state));

  // n = 1 and a single sequence work; FNet sees no padding mask.
  Matrix<std::int64_t> one(1, 1);
  one(0, 0) = 4;
  CHECK(a.forward(one).last_hidden_state.allFinite());

  Matrix<std::int64_t> bad_id = ids;
  bad_id(1, 3) = 20;
  CHECK_THROWS_AS(a.forward(bad_id), ArgumentError);
  Matrix<std::int64_t> types = Matrix<std::int64_t>::Zero(2, 7);
  types(0, 0) = 2;
  CHECK_THROWS_AS(a.forward(ids, types), ArgumentError);
  CHECK_THROWS_AS(a.forward(ids, Matrix<std::int64_t>::Zero(2, 6)), ShapeError);
  Matrix<std::int64_t> too_long = Matrix<std::int64_t>::Zero(1, 11);
  CHECK_THROWS_AS(a.forward(too_long), ShapeError);

  c.hidden_act = "swish";
  CHECK_THROWS_AS(FNet<float>(c), ArgumentError);

  // Two threads on one model give the serial result.
  FNetLayer<float>::Config lc;
  (void)lc;
  decltype(a.forward(ids)) r1, r2;
  std::thread t1([&] { r1 = a.forward(ids); });
  std::thread t2([&] { r2 = a.forward(ids); });
  t1.join();
  t2.join();
  CHECK(r1.last_hidden_state == ya.last_hidden_state);
  CHECK(r2.pooled == ya.pooled);
}

}  // namespace test_models_fnet

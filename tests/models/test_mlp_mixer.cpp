#include <catch2/catch.hpp>

#include <thread>

#include "model_test_util.hpp"
#include "tokenmix/models/mlp_mixer.hpp"
#include "tokenmix/models/model_json.hpp"

namespace test_models_mlp_mixer {

using namespace tokenmix;
using tokenmix_test::load_model_fixture;

namespace {

MlpMixerConfig fixture_config(const tokenmix_test::ModelFixture& f) {
  MlpMixerConfig c = infer_mlp_mixer_config(f.weights);
  apply_json(f.config, c, nullptr);
  return c;
}

template <class T>
Matrix<T> fixture_images(const tokenmix_test::ModelFixture& f, const MlpMixerConfig& c) {
  return tokenmix_test::as_rows<T>(f.io.at("input"), c.in_chans * c.img_size * c.img_size);
}

}  // namespace

TEMPLATE_TEST_CASE("MlpMixer matches the PyTorch reference for every block kind", "[models]",
                   float, double) {
  using T = TestType;
  const double rtol = std::is_same<T, float>::value ? 1e-4 : 1e-9;
  const char* name = GENERATE("mixer", "gmlp", "amlp", "resmlp", "vit", "vit_timm");
  INFO("fixture " << name);
  const auto f = load_model_fixture(name);
  const MlpMixerConfig c = fixture_config(f);
  MlpMixer<T> model(c);
  model.load(f.weights);
  const Matrix<T> images = fixture_images<T>(f, c);
  const Matrix<T> y = model.forward(images);
  const Matrix<double> ref = tokenmix_test::as_rows<double>(f.io.at("output"), c.num_classes);
  tokenmix_test::require_close(y, ref, rtol);
  tokenmix_test::require_same_argmax(y, ref);
}

TEST_CASE("MlpMixer config inference reads the checkpoint shapes", "[models]") {
  const auto mixer = infer_mlp_mixer_config(load_model_fixture("mixer").weights);
  CHECK(mixer.block == ImageBlock::mixer);
  CHECK(mixer.embed_dim == 64);
  CHECK(mixer.patch_size == 4);
  CHECK(mixer.img_size == 32);
  CHECK(mixer.num_blocks == 2);
  CHECK(mixer.hidden_tokens() == 32);
  CHECK(mixer.hidden_channels() == 256);
  CHECK(mixer.num_classes == 10);
  const auto gmlp = infer_mlp_mixer_config(load_model_fixture("gmlp").weights);
  CHECK(gmlp.block == ImageBlock::gmlp);
  CHECK(gmlp.hidden_channels() == 384);
  const auto amlp = infer_mlp_mixer_config(load_model_fixture("amlp").weights);
  CHECK(amlp.block == ImageBlock::amlp);
  CHECK(amlp.attn_dim == 16);
  const auto resmlp = infer_mlp_mixer_config(load_model_fixture("resmlp").weights);
  CHECK(resmlp.block == ImageBlock::resmlp);
  const auto vit = infer_mlp_mixer_config(load_model_fixture("vit_timm").weights);
  CHECK(vit.block == ImageBlock::transformer);
  CHECK(vit.class_token);
  CHECK(vit.timm_vit_names);
  CHECK(vit.img_size == 24);
  CHECK(vit.seq_len() == 37);
  CHECK(vit.num_classes == 7);

  StateDict empty("empty.safetensors");
  CHECK_THROWS_AS(infer_mlp_mixer_config(empty), KeyError);
  StateDict odd;
  odd.insert("stem.proj.weight", Tensor(DType::F32, {8, 3, 4, 4}));
  odd.insert("blocks.0.linear_tokens.weight", Tensor(DType::F32, {10, 10}));
  odd.insert("blocks.0.mlp_channels.fc1.weight", Tensor(DType::F32, {32, 8}));
  CHECK_THROWS_WITH(infer_mlp_mixer_config(odd), Catch::Contains("square token grid"));
}

TEST_CASE("MlpMixer strict loading lists missing, extra and mis-shaped keys", "[models]") {
  const auto f = load_model_fixture("mixer");
  const MlpMixerConfig c = fixture_config(f);

  StateDict missing = f.weights;
  missing.erase("blocks.1.norm2.bias");
  StateDict extra = f.weights;
  extra.insert("blocks.0.surprise", Tensor(DType::F32, {3}));
  StateDict shape = f.weights;
  shape.insert("blocks.0.mlp_tokens.fc1.bias", Tensor(DType::F32, {33}));

  struct Case {
    const StateDict* dict;
    const char* key;
  };
  for (const Case& k : {Case{&missing, "blocks.1.norm2.bias"}, Case{&extra, "blocks.0.surprise"},
                        Case{&shape, "blocks.0.mlp_tokens.fc1.bias"}}) {
    MlpMixer<float> model(c);
    try {
      model.load(*k.dict);
      FAIL("expected a KeyError for " << k.key);
    } catch (const KeyError& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(k.key) != std::string::npos);
      REQUIRE(e.keys().size() == 1);
      CHECK(e.keys()[0].find(k.key) == 0);
    }
  }

  // All three problems at once are reported together.
  StateDict all = missing;
  all.insert("blocks.0.surprise", Tensor(DType::F32, {3}));
  all.insert("blocks.0.mlp_tokens.fc1.bias", Tensor(DType::F32, {33}));
  MlpMixer<float> model(c);
  try {
    model.load(all);
    FAIL("expected a KeyError");
  } catch (const KeyError& e) {
    CHECK(e.keys().size() == 3);
  }
}

TEST_CASE("MlpMixer can ignore the checkpoint's head (opt-in)", "[models]") {
  const auto f = load_model_fixture("resmlp");
  MlpMixerConfig c = fixture_config(f);
  c.num_classes = 0;  // features only
  MlpMixer<double> features(c);
  CHECK_THROWS_AS(features.load(f.weights), KeyError);
  ModelLoadOptions options;
  options.ignore_head = true;
  features.load(f.weights, options);
  const Matrix<double> images = fixture_images<double>(f, c);
  const Matrix<double> pooled = features.forward(images);
  REQUIRE(pooled.cols() == 64);

  // The head applied to those features gives the reference logits.
  MlpMixer<double> full(fixture_config(f));
  full.load(f.weights);
  const Matrix<double> logits =
      (pooled * full.head->weight.value().transpose()).rowwise() + full.head->bias.transpose();
  tokenmix_test::require_close(logits, full.forward(images), 1e-12);

  // A head-less checkpoint loads into a model with a head only with the opt-in.
  StateDict headless = f.weights;
  headless.erase("head.weight");
  headless.erase("head.bias");
  MlpMixer<double> with_head(fixture_config(f));
  CHECK_THROWS_AS(with_head.load(headless), KeyError);
  with_head.load(headless, options);
}

TEST_CASE("MlpMixer save/load round trip and thread safety", "[models][threads]") {
  MlpMixerConfig c;
  c.block = ImageBlock::gmlp;
  c.img_size = 20;
  c.patch_size = 4;
  c.embed_dim = 24;
  c.num_blocks = 2;
  c.mlp_ratio_channels = 2;
  c.num_classes = 5;
  MlpMixer<float> a(c);
  a.init_random(7);
  StateDict saved;
  a.save(saved);
  const MlpMixerConfig inferred = infer_mlp_mixer_config(saved);
  CHECK(inferred.embed_dim == 24);
  CHECK(inferred.img_size == 20);
  CHECK(inferred.hidden_channels() == 48);
  MlpMixer<float> b(inferred);
  b.load(saved);
  Random rng(3);
  Matrix<float> images(3, 3 * 20 * 20);
  rng.fill_normal(images, 0.0, 1.0);
  const Matrix<float> ya = a.forward(images);
  CHECK(ya == b.forward(images));

  Matrix<float> y1, y2;
  std::thread t1([&] { y1 = a.forward(images); });
  std::thread t2([&] { y2 = a.forward(images); });
  t1.join();
  t2.join();
  CHECK(y1 == ya);
  CHECK(y2 == ya);
}

TEST_CASE("MlpMixer rejects bad configs and inputs", "[models]") {
  MlpMixerConfig c;
  c.img_size = 30;
  c.patch_size = 4;
  CHECK_THROWS_AS(MlpMixer<float>(c), ArgumentError);
  c.img_size = 32;
  c.class_token = true;
  CHECK_THROWS_AS(MlpMixer<float>(c), ArgumentError);
  c.class_token = false;
  c.embed_dim = 16;
  c.num_blocks = 1;
  MlpMixer<float> m(c);
  m.init_random(1);
  Matrix<float> wrong(1, 3 * 32 * 31);
  wrong.setZero();
  CHECK_THROWS_AS(m.forward(wrong), ShapeError);
  // Large inputs stay finite (LayerNorm right after the stem).
  Matrix<float> big = Matrix<float>::Constant(2, 3 * 32 * 32, 1e4f);
  big(0, 5) = -1e4f;
  CHECK(m.forward(big).allFinite());
}

}  // namespace test_models_mlp_mixer

#include <catch2/catch.hpp>

#include "tokenmix/models/presets.hpp"

namespace test_models_presets {

using namespace tokenmix;

namespace {
// Parameter counts of SPEC.md §3.1 / §3.2, from the model's own save().
template <class Model>
std::int64_t parameter_count(const Model& m) {
  StateDict sd;
  m.save(sd);
  std::int64_t total = 0;
  for (const auto& kv : sd) total += static_cast<std::int64_t>(kv.second.numel());
  return total;
}
}  // namespace

TEST_CASE("Image presets have timm's parameter counts", "[models]") {
  struct Expect {
    const char* name;
    std::int64_t params;
  };
  for (const Expect& e : {Expect{"mixer_s16_224", 18528264}, Expect{"gmlp_s16_224", 19422656},
                          Expect{"resmlp_12_224", 15350872}, Expect{"resmlp_24_224", 30020680},
                          Expect{"amlp_s16_224", 22394816},
                          Expect{"transformer_s16_224", 22049896},
                          Expect{"vit_small_patch16_224", 22050664}}) {
    INFO(e.name);
    const ModelPreset& p = model_preset(e.name);
    MlpMixer<float> m(p.image);
    CHECK(parameter_count(m) == e.params);
  }
  CHECK(model_preset("mixer_b16_224").image.embed_dim == 768);
  CHECK(model_preset("mixer_l16_224").image.num_blocks == 24);
  CHECK(model_preset("gmlp_ti16_224").image.embed_dim == 128);
  CHECK(model_preset("gmlp_b16_224").image.hidden_channels() == 3072);
  CHECK(model_preset("resmlp_36_224").image.init_values == 1e-6);
  CHECK(model_preset("vit_small_patch16_224").image.heads() == 6);
}

TEST_CASE("FNet presets have Hugging Face's sizes", "[models]") {
  const ModelPreset& base = model_preset("fnet-base");
  CHECK(base.family == ModelFamily::fnet);
  FNet<float> m(base.fnet);
  CHECK(parameter_count(m) == 82861056);
  const ModelPreset& large = model_preset("google/fnet-large");
  CHECK(large.fnet.hidden_size == 1024);
  CHECK(large.fnet.num_hidden_layers == 24);
  CHECK(large.fnet.intermediate_size == 4096);
}

TEST_CASE("Families and unknown names", "[models]") {
  CHECK(parse_model_family("resmlp") == ModelFamily::resmlp);
  CHECK(parse_model_family("transformer") == ModelFamily::vit);
  CHECK_FALSE(parse_model_family("bert").has_value());
  CHECK(image_family_defaults(ModelFamily::gmlp).mlp_ratio_channels == 6.0);
  CHECK_THROWS_AS(image_block_of(ModelFamily::fnet), ArgumentError);
  CHECK(find_model_preset("mixer_x16") == nullptr);
  CHECK_THROWS_WITH(model_preset("mixer_x16"), Catch::Contains("mixer_s16_224"));
}

}  // namespace test_models_presets

#include <catch2/catch.hpp>

#include <algorithm>
#include <sstream>

#include "tokenmix/models/model_json.hpp"

namespace test_models_model_json {

using namespace tokenmix;

TEST_CASE("Image configs from timm constructor arguments", "[models]") {
  MlpMixerConfig c;
  std::ostringstream warn;
  apply_json(JsonConfig::parse(R"({"img_size": [32, 32], "patch_size": 4, "num_blocks": 3,
      "embed_dim": 48, "mlp_ratio": [0.25, 3.0], "num_classes": 5, "in_chans": 1,
      "drop_rate": 0.1})", "cfg.json"), c, &warn);
  CHECK(c.img_size == 32);
  CHECK(c.patch_size == 4);
  CHECK(c.num_blocks == 3);
  CHECK(c.hidden_tokens() == 12);
  CHECK(c.hidden_channels() == 144);
  CHECK(c.num_classes == 5);
  CHECK(c.in_chans == 1);
  const std::string w = warn.str();
  CHECK(w.find("drop_rate") != std::string::npos);
  CHECK(std::count(w.begin(), w.end(), '\n') == 1);

  MlpMixerConfig g;
  g.block = ImageBlock::gmlp;
  g.channels_hidden = 100;  // as if inferred: the explicit ratio wins
  apply_json(JsonConfig::parse(R"({"mlp_ratio": 6, "embed_dim": 10})", "g"), g, nullptr);
  CHECK(g.hidden_channels() == 60);

  MlpMixerConfig v;
  v.block = ImageBlock::transformer;
  apply_json(JsonConfig::parse(R"({"depth": 4, "num_heads": 2, "class_token": true,
      "global_pool": "token"})", "v"), v, nullptr);
  CHECK(v.num_blocks == 4);
  CHECK(v.class_token);
  CHECK_THROWS_AS(apply_json(JsonConfig::parse(R"({"global_pool": "max"})", "v"), v, nullptr),
                  FormatError);
  CHECK_THROWS_AS(apply_json(JsonConfig::parse(R"({"img_size": [32, 16]})", "c"), c, nullptr),
                  FormatError);
  CHECK_THROWS_AS(apply_json(JsonConfig::parse(R"({"mlp_ratio": [1, 2, 3]})", "c"), c, nullptr),
                  FormatError);
  CHECK_THROWS_AS(apply_json(JsonConfig::parse(R"({"embed_dim": "wide"})", "c"), c, nullptr),
                  FormatError);
}

TEST_CASE("FNet configs from Hugging Face config.json", "[models]") {
  FNetConfig c;
  std::ostringstream warn;
  apply_json(JsonConfig::parse(R"({"architectures": ["FNetForPreTraining"], "hidden_act": "gelu",
      "hidden_size": 1024, "num_hidden_layers": 24, "intermediate_size": 4096,
      "layer_norm_eps": 1e-12, "model_type": "fnet", "vocab_size": 32000,
      "use_tpu_fourier_optimizations": false})", "config.json"), c, &warn);
  CHECK(c.hidden_size == 1024);
  CHECK(c.hidden_act == "gelu");
  CHECK(c.num_hidden_layers == 24);
  const std::string w = warn.str();
  CHECK(w.find("architectures") != std::string::npos);
  CHECK(w.find("model_type") != std::string::npos);
  CHECK(std::count(w.begin(), w.end(), '\n') == 1);
  CHECK_THROWS_AS(apply_json(JsonConfig::parse(R"({"hidden_act": "mish"})", "c"), c, nullptr),
                  FormatError);
}

TEST_CASE("Sequence gMLP configs", "[models]") {
  GMLPSequenceConfig c;
  c.hidden = 99;
  apply_json(JsonConfig::parse(R"({"num_tokens": 256, "dim": 64, "depth": 3, "seq_len": 128,
      "ff_mult": 2, "attn_dim": 32, "causal": true, "head": false})", "s"), c, nullptr);
  CHECK(c.num_tokens == 256);
  CHECK(c.hidden_width() == 128);
  CHECK(c.attn_dim == 32);
  CHECK(c.causal);
  CHECK_FALSE(c.head);
  CHECK_THROWS_AS(apply_json(JsonConfig::parse(R"({"causal": 1})", "s"), c, nullptr),
                  FormatError);
}

}  // namespace test_models_model_json

#pragma once
// Named configurations of the standard variants (SPEC.md §3) and the model families
// tokenmix-run knows. A preset fixes every hyper-parameter, so a model built from one needs
// no checkpoint (benchmarks, random-weight tests); with a checkpoint, its shapes still win
// (see infer_mlp_mixer_config / infer_fnet_config).
//
//   mixer_s16_224  mixer_b16_224  mixer_l16_224         timm MlpMixer + MixerBlock
//   gmlp_ti16_224  gmlp_s16_224   gmlp_b16_224          timm gMLP (mlp_ratio 6)
//   resmlp_12_224  resmlp_24_224  resmlp_36_224         timm ResMLP (LayerScale 1e-4/1e-5/1e-6)
//   vit_small_patch16_224                               timm ViT-S/16 (class token, 6 heads)
//   amlp_s16_224   transformer_s16_224                  library twins (SPEC.md §3.1 table)
//   fnet-base      fnet-large                           Hugging Face google/fnet-*

#include <optional>
#include <string>
#include <vector>

#include "tokenmix/core/error.hpp"
#include "tokenmix/models/fnet.hpp"
#include "tokenmix/models/mlp_mixer.hpp"

namespace tokenmix {

enum class ModelFamily { mixer, gmlp, amlp, resmlp, vit, fnet };

inline const char* model_family_name(ModelFamily f) {
  switch (f) {
    case ModelFamily::mixer: return "mixer";
    case ModelFamily::gmlp: return "gmlp";
    case ModelFamily::amlp: return "amlp";
    case ModelFamily::resmlp: return "resmlp";
    case ModelFamily::vit: return "vit";
    case ModelFamily::fnet: return "fnet";
  }
  return "?";
}

inline std::optional<ModelFamily> parse_model_family(const std::string& name) {
  for (ModelFamily f : {ModelFamily::mixer, ModelFamily::gmlp, ModelFamily::amlp,
                        ModelFamily::resmlp, ModelFamily::vit, ModelFamily::fnet})
    if (name == model_family_name(f)) return f;
  if (name == "transformer") return ModelFamily::vit;
  return std::nullopt;
}

inline ImageBlock image_block_of(ModelFamily f) {
  switch (f) {
    case ModelFamily::mixer: return ImageBlock::mixer;
    case ModelFamily::gmlp: return ImageBlock::gmlp;
    case ModelFamily::amlp: return ImageBlock::amlp;
    case ModelFamily::resmlp: return ImageBlock::resmlp;
    case ModelFamily::vit: return ImageBlock::transformer;
    case ModelFamily::fnet: break;
  }
  detail::fail<ArgumentError>("image_block_of: expected an image model family, got fnet");
}

// The timm defaults of a family at 224 px, 16 px patches, 1000 classes (before a checkpoint
// or a JSON config refines them).
inline MlpMixerConfig image_family_defaults(ModelFamily f) {
  MlpMixerConfig c;
  c.block = image_block_of(f);
  switch (f) {
    case ModelFamily::mixer: c.num_blocks = 8; c.embed_dim = 512; break;
    case ModelFamily::gmlp:
    case ModelFamily::amlp:
      c.num_blocks = 30; c.embed_dim = 256; c.mlp_ratio_channels = 6.0; break;
    case ModelFamily::resmlp: c.num_blocks = 12; c.embed_dim = 384; break;
    case ModelFamily::vit: c.num_blocks = 12; c.embed_dim = 384; break;
    case ModelFamily::fnet: break;
  }
  return c;
}

struct ModelPreset {
  std::string name;
  ModelFamily family;
  MlpMixerConfig image;  // image families
  FNetConfig fnet;       // fnet
};

namespace detail {
inline ModelPreset image_preset(const char* name, ModelFamily f, Index dim, Index depth,
                                double ratio, Index heads = 0, double init_values = 1e-4) {
  ModelPreset p{name, f, image_family_defaults(f), {}};
  p.image.embed_dim = dim;
  p.image.num_blocks = depth;
  p.image.mlp_ratio_channels = ratio;
  p.image.num_heads = heads;
  p.image.init_values = init_values;
  return p;
}
}  // namespace detail

inline const std::vector<ModelPreset>& model_presets() {
  static const std::vector<ModelPreset> presets = [] {
    using detail::image_preset;
    std::vector<ModelPreset> v;
    v.push_back(image_preset("mixer_s16_224", ModelFamily::mixer, 512, 8, 4.0));
    v.push_back(image_preset("mixer_b16_224", ModelFamily::mixer, 768, 12, 4.0));
    v.push_back(image_preset("mixer_l16_224", ModelFamily::mixer, 1024, 24, 4.0));
    v.push_back(image_preset("gmlp_ti16_224", ModelFamily::gmlp, 128, 30, 6.0));
    v.push_back(image_preset("gmlp_s16_224", ModelFamily::gmlp, 256, 30, 6.0));
    v.push_back(image_preset("gmlp_b16_224", ModelFamily::gmlp, 512, 30, 6.0));
    v.push_back(image_preset("resmlp_12_224", ModelFamily::resmlp, 384, 12, 4.0, 0, 1e-4));
    v.push_back(image_preset("resmlp_24_224", ModelFamily::resmlp, 384, 24, 4.0, 0, 1e-5));
    v.push_back(image_preset("resmlp_36_224", ModelFamily::resmlp, 384, 36, 4.0, 0, 1e-6));
    ModelPreset vit = image_preset("vit_small_patch16_224", ModelFamily::vit, 384, 12, 4.0, 6);
    vit.image.class_token = true;
    vit.image.timm_vit_names = true;
    v.push_back(vit);
    ModelPreset amlp = image_preset("amlp_s16_224", ModelFamily::amlp, 256, 30, 6.0);
    amlp.image.attn_dim = 64;
    v.push_back(amlp);
    v.push_back(image_preset("transformer_s16_224", ModelFamily::vit, 384, 12, 4.0, 6));
    ModelPreset base{"fnet-base", ModelFamily::fnet, {}, {}};
    v.push_back(base);
    ModelPreset large{"fnet-large", ModelFamily::fnet, {}, {}};
    large.fnet.hidden_size = 1024;
    large.fnet.num_hidden_layers = 24;
    large.fnet.intermediate_size = 4096;
    v.push_back(large);
    return v;
  }();
  return presets;
}

// Accepts Hugging Face hub ids too ("google/fnet-base").
inline const ModelPreset* find_model_preset(const std::string& name) {
  std::string key = name;
  if (key.compare(0, 7, "google/") == 0) key = key.substr(7);
  for (const auto& p : model_presets())
    if (p.name == key) return &p;
  return nullptr;
}

inline const ModelPreset& model_preset(const std::string& name) {
  if (const ModelPreset* p = find_model_preset(name)) return *p;
  std::string names;
  for (const auto& p : model_presets()) names += (names.empty() ? "" : ", ") + p.name;
  detail::fail<ArgumentError>("model_preset: expected one of ", names, ", got '", name, "'");
}

}  // namespace tokenmix

#pragma once
// Model configurations from JSON files whose field names are the reference's own:
// timm's MlpMixer / VisionTransformer constructor arguments for the image families,
// Hugging Face's config.json (FNetConfig) for FNet, lucidrains' gMLP arguments for the
// sequence gMLP / aMLP. Each apply_json() overwrites only the fields the file gives, so the
// caller layers it over a preset or over what a checkpoint's shapes told. Fields a family
// does not know (an HF config.json has many: dropout, initializer_range, architectures, ...)
// are ignored with one warning line. Needs nlohmann-json (through io/json_config.hpp).

#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "tokenmix/core/error.hpp"
#include "tokenmix/io/json_config.hpp"
#include "tokenmix/layers/activation.hpp"
#include "tokenmix/models/fnet.hpp"
#include "tokenmix/models/gmlp_sequence.hpp"
#include "tokenmix/models/mlp_mixer.hpp"

namespace tokenmix {

namespace detail {
inline void json_index(const JsonConfig& cfg, const char* key, Index& field) {
  if (cfg.has(key) && !cfg.json().at(key).is_null()) field = cfg.get<Index>(key);
}
inline void json_double(const JsonConfig& cfg, const char* key, double& field) {
  if (cfg.has(key) && !cfg.json().at(key).is_null()) field = cfg.get<double>(key);
}
inline void json_bool(const JsonConfig& cfg, const char* key, bool& field) {
  if (cfg.has(key) && !cfg.json().at(key).is_null()) field = cfg.get<bool>(key);
}

// timm reads some arguments through to_2tuple: a number x stands for (x, x); an array must
// hold exactly two numbers.
template <class V>
struct NumberOrPair {
  V first, second;
  bool given_as_pair;
};
template <class V>
std::optional<NumberOrPair<V>> json_number_or_pair(const JsonConfig& cfg, const char* key,
                                                   const char* expected) {
  if (!cfg.has(key) || cfg.json().at(key).is_null()) return std::nullopt;
  const auto& v = cfg.json().at(key);
  if (!v.is_array()) {
    const V x = cfg.get<V>(key);
    return NumberOrPair<V>{x, x, false};
  }
  const auto pair = cfg.get<std::vector<V>>(key);
  if (pair.size() != 2)
    fail<FormatError>(cfg.source(), ": field '", key, "': expected ", expected, ", got ", v.dump());
  return NumberOrPair<V>{pair[0], pair[1], true};
}
}  // namespace detail

// timm fields: img_size (int or [h, w] with h == w), in_chans, patch_size, num_blocks (or
// ViT's depth), embed_dim, mlp_ratio (a number r = (r, r) as timm's to_2tuple reads it, or a
// pair [tokens, channels]), num_classes, num_heads, attn_dim, init_values, class_token,
// global_pool ("avg" | "token"), norm_eps.
inline void apply_json(const JsonConfig& cfg, MlpMixerConfig& c, std::ostream* warn = &std::cerr) {
  constexpr const char* img_size_expected = "an integer or a square [h, w] pair";
  if (const auto hw = detail::json_number_or_pair<Index>(cfg, "img_size", img_size_expected)) {
    if (hw->first != hw->second)
      detail::fail<FormatError>(cfg.source(), ": field 'img_size': expected ", img_size_expected,
                                ", got ", cfg.json().at("img_size").dump());
    c.img_size = hw->first;
  }
  detail::json_index(cfg, "in_chans", c.in_chans);
  detail::json_index(cfg, "patch_size", c.patch_size);
  detail::json_index(cfg, "num_blocks", c.num_blocks);
  detail::json_index(cfg, "depth", c.num_blocks);
  detail::json_index(cfg, "embed_dim", c.embed_dim);
  if (const auto r = detail::json_number_or_pair<double>(
          cfg, "mlp_ratio", "a number or a [tokens, channels] pair")) {
    c.mlp_ratio_tokens = r->first;
    c.mlp_ratio_channels = r->second;
    // Only Mixer blocks have a token MLP; for the others one number is the channel ratio.
    if (!r->given_as_pair && c.block != ImageBlock::mixer) c.mlp_ratio_tokens = 0.5;
    c.tokens_hidden = c.channels_hidden = 0;  // the ratio given wins over inferred widths
  }
  detail::json_index(cfg, "num_classes", c.num_classes);
  detail::json_index(cfg, "num_heads", c.num_heads);
  detail::json_index(cfg, "attn_dim", c.attn_dim);
  detail::json_double(cfg, "init_values", c.init_values);
  detail::json_double(cfg, "norm_eps", c.norm_eps);
  detail::json_bool(cfg, "class_token", c.class_token);
  if (cfg.has("global_pool")) {
    const std::string pool = cfg.get<std::string>("global_pool");
    if (pool != "avg" && pool != "token")
      detail::fail<FormatError>(cfg.source(), ": field 'global_pool': expected \"avg\" or "
                                "\"token\", got \"", pool, "\"");
    if ((pool == "token") != c.class_token)
      detail::fail<FormatError>(cfg.source(), ": field 'global_pool': expected \"token\" "
                                "exactly with class_token true, got \"", pool, "\"");
  }
  if (warn)
    cfg.warn_unknown_fields({"img_size", "in_chans", "patch_size", "num_blocks", "depth",
                             "embed_dim", "mlp_ratio", "num_classes", "num_heads", "attn_dim",
                             "init_values", "norm_eps", "class_token", "global_pool"},
                            *warn);
}

// Hugging Face FNetConfig / config.json fields.
inline void apply_json(const JsonConfig& cfg, FNetConfig& c, std::ostream* warn = &std::cerr) {
  detail::json_index(cfg, "vocab_size", c.vocab_size);
  detail::json_index(cfg, "hidden_size", c.hidden_size);
  detail::json_index(cfg, "num_hidden_layers", c.num_hidden_layers);
  detail::json_index(cfg, "intermediate_size", c.intermediate_size);
  if (cfg.has("hidden_act")) {
    c.hidden_act = cfg.get<std::string>("hidden_act");
    try {
      parse_activation(c.hidden_act);
    } catch (const ArgumentError&) {
      detail::fail<FormatError>(cfg.source(), ": field 'hidden_act': expected gelu, gelu_new, "
                                "relu or tanh, got \"", c.hidden_act, "\"");
    }
  }
  detail::json_index(cfg, "max_position_embeddings", c.max_position_embeddings);
  detail::json_index(cfg, "type_vocab_size", c.type_vocab_size);
  detail::json_double(cfg, "layer_norm_eps", c.layer_norm_eps);
  detail::json_index(cfg, "pad_token_id", c.pad_token_id);
  if (warn)
    cfg.warn_unknown_fields({"vocab_size", "hidden_size", "num_hidden_layers",
                             "intermediate_size", "hidden_act", "max_position_embeddings",
                             "type_vocab_size", "layer_norm_eps", "pad_token_id"},
                            *warn);
}

// lucidrains gMLP arguments: num_tokens, dim, depth, seq_len, ff_mult, attn_dim, causal;
// plus head (bool) and layer_norm_eps.
inline void apply_json(const JsonConfig& cfg, GMLPSequenceConfig& c,
                       std::ostream* warn = &std::cerr) {
  detail::json_index(cfg, "num_tokens", c.num_tokens);
  detail::json_index(cfg, "dim", c.dim);
  detail::json_index(cfg, "depth", c.depth);
  detail::json_index(cfg, "seq_len", c.seq_len);
  if (cfg.has("ff_mult")) {
    c.ff_mult = cfg.get<double>("ff_mult");
    c.hidden = 0;
  }
  detail::json_index(cfg, "attn_dim", c.attn_dim);
  detail::json_bool(cfg, "causal", c.causal);
  detail::json_bool(cfg, "head", c.head);
  detail::json_double(cfg, "layer_norm_eps", c.layer_norm_eps);
  if (warn)
    cfg.warn_unknown_fields({"num_tokens", "dim", "depth", "seq_len", "ff_mult", "attn_dim",
                             "causal", "head", "layer_norm_eps"},
                            *warn);
}

}  // namespace tokenmix

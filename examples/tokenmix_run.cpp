// tokenmix-run: runs a tokenmix model or a single layer on a .npy input and writes what the
// PyTorch module returns. See print_help() for the full usage; exit codes: 0 success,
// 1 bad input (files, shapes, checkpoint keys, values), 2 bad usage (options).

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/fft.hpp"
#include "tokenmix/core/threads.hpp"
#include "tokenmix/io/json_config.hpp"
#include "tokenmix/io/npy.hpp"
#include "tokenmix/io/safetensors.hpp"
#include "tokenmix/layers/external_attention.hpp"
#include "tokenmix/layers/gmlp_block.hpp"
#include "tokenmix/layers/mlp_mixer_block.hpp"
#include "tokenmix/layers/resmlp_block.hpp"
#include "tokenmix/layers/self_attention.hpp"
#include "tokenmix/layers/spatial_gating_unit.hpp"
#include "tokenmix/layers/synthesizer_dense.hpp"
#include "tokenmix/layers/synthesizer_random.hpp"
#include "tokenmix/models/fnet.hpp"
#include "tokenmix/models/gmlp_sequence.hpp"
#include "tokenmix/models/mlp_mixer.hpp"
#include "tokenmix/models/model_json.hpp"
#include "tokenmix/models/presets.hpp"
#include "tokenmix/models/transformer_block.hpp"

namespace {

using namespace tokenmix;

// Bad usage (exit 2), as opposed to tokenmix::Error from bad input (exit 1).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const std::vector<std::string> kLayers = {
    "MLPMixerBlock", "SpatialGatingUnit", "FourierMixer", "ExternalAttention",
    "SynthesizerRandom", "SynthesizerDense", "SelfAttention", "GMLPBlock", "AMLPBlock",
    "ResMLPBlock", "TransformerBlock"};

void print_help(std::ostream& out) {
  out << R"(Usage: tokenmix-run --model NAME --weights W.safetensors --input X.npy --output Y.npy
                    [--config CFG.json] [--output-pooled P.npy] [--output-logits L.npy]
                    [--token-types T.npy] [--threads N] [--dtype f32|f64] [--ignore-head]

Runs a tokenmix model or one layer on a NumPy array and writes what the PyTorch module
returns, in PyTorch's layout.

--model NAME      one of
                  * a preset: mixer_s16_224 mixer_b16_224 mixer_l16_224 gmlp_ti16_224
                    gmlp_s16_224 gmlp_b16_224 resmlp_12_224 resmlp_24_224 resmlp_36_224
                    vit_small_patch16_224 amlp_s16_224 transformer_s16_224 fnet-base fnet-large
                  * a family: mixer gmlp amlp resmlp vit fnet
                  * a layer class: MLPMixerBlock SpatialGatingUnit FourierMixer
                    ExternalAttention SynthesizerRandom SynthesizerDense SelfAttention
                    GMLPBlock AMLPBlock ResMLPBlock TransformerBlock
--weights FILE    safetensors checkpoint keyed by the reference module's own names (timm,
                  Hugging Face; FNet task checkpoints with the "fnet." prefix load too).
                  Checked strictly: missing, unused or mis-shaped tensors are listed and
                  rejected. Optional only for FourierMixer (no parameters).
--config FILE     JSON object with the reference's constructor arguments. Image families
                  (timm): img_size, patch_size, num_blocks (or depth), embed_dim, mlp_ratio
                  (number or [tokens, channels]), num_classes, in_chans, num_heads, attn_dim,
                  init_values, class_token, global_pool. fnet: Hugging Face config.json
                  (vocab_size, hidden_size, num_hidden_layers, intermediate_size, hidden_act,
                  max_position_embeddings, type_vocab_size, layer_norm_eps, pad_token_id).
                  gmlp/amlp on token ids: num_tokens, dim, depth, seq_len, ff_mult,
                  attn_dim, causal, head. Layers: what shapes cannot tell (num_heads, causal,
                  eps, factor). Fields not given are read from the checkpoint's shapes (then
                  the preset); unknown fields are ignored with one warning line.
--input FILE      .npy input: images (B, C, H, W) float for image models; token ids (B, n)
                  int64/int32 for fnet and for gmlp/amlp sequence checkpoints (those with
                  embed.weight); hidden states (B, n, d) float for layers.
--output FILE     .npy output: logits (B, classes) (pooled features (B, D) without a head),
                  last hidden state (B, n, H) for fnet, (B, n, d) for layers and sequence
                  models (logits (B, n, vocab) when the checkpoint has a head).
--output-pooled FILE   fnet: also write the pooler output (B, H).
--output-logits FILE   fnet with an MLM head (cls.predictions.*): also write MLM logits
                  (B, n, vocab).
--token-types FILE     fnet: token type ids (B, n) int64 (default all 0).
--threads N       threads to use (default: all cores).
--dtype f32|f64   compute and output precision (default f32).
--ignore-head     do not read (nor require) the checkpoint's task head (image: head.*,
                  fnet: cls.* and other task heads).
--help            this text.

Exit status: 0 success, 1 bad input (unreadable or malformed files, shape or key
mismatches, out-of-range ids), 2 bad usage (unknown or missing options, unknown model).
)";
}

struct Options {
  std::string model, weights, config, input, output, output_pooled, output_logits, token_types;
  int threads = 0;
  bool f64 = false;
  bool ignore_head = false;
};

Options parse_args(int argc, char** argv, bool& help) {
  Options o;
  const std::map<std::string, std::string*> values = {
      {"--model", &o.model},           {"--weights", &o.weights},
      {"--config", &o.config},         {"--input", &o.input},
      {"--output", &o.output},         {"--output-pooled", &o.output_pooled},
      {"--output-logits", &o.output_logits}, {"--token-types", &o.token_types}};
  std::string threads, dtype = "f32";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i], value;
    bool has_value = false;
    const auto eq = arg.find('=');
    if (arg.compare(0, 2, "--") == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    if (arg == "--help" || arg == "-h") {
      help = true;
      return o;
    }
    if (arg == "--ignore-head") {
      o.ignore_head = true;
      continue;
    }
    std::string* target = nullptr;
    if (auto it = values.find(arg); it != values.end()) target = it->second;
    else if (arg == "--threads") target = &threads;
    else if (arg == "--dtype") target = &dtype;
    if (!target) throw UsageError("unknown option '" + arg + "' (see --help)");
    if (!has_value) {
      if (i + 1 >= argc) throw UsageError("option " + arg + " expects a value");
      value = argv[++i];
    }
    *target = value;
  }
  if (o.model.empty()) throw UsageError("missing --model (see --help)");
  if (o.input.empty()) throw UsageError("missing --input");
  if (o.output.empty()) throw UsageError("missing --output");
  if (o.weights.empty() && o.model != "FourierMixer") throw UsageError("missing --weights");
  if (dtype != "f32" && dtype != "f64")
    throw UsageError("--dtype expects f32 or f64, got '" + dtype + "'");
  o.f64 = dtype == "f64";
  if (!threads.empty()) {
    char* end = nullptr;
    const long t = std::strtol(threads.c_str(), &end, 10);
    if (end == threads.c_str() || *end != '\0' || t < 1 || t > 4096)
      throw UsageError("--threads expects a positive integer, got '" + threads + "'");
    o.threads = static_cast<int>(std::min<long>(t, hardware_threads()));
  }
  return o;
}

// ---- input / output helpers ------------------------------------------------------------

bool is_float(DType t) { return t == DType::F32 || t == DType::F64 || t == DType::F16 || t == DType::BF16; }

template <class T>
Matrix<T> read_float_rows(const Tensor& t, const std::string& what, Index cols) {
  if (!is_float(t.dtype()))
    detail::fail<FormatError>(what, ": expected a floating-point array, got ",
                              dtype_name(t.dtype()));
  Matrix<T> m(cols > 0 ? static_cast<Index>(t.numel()) / cols : 0, cols);
  t.copy_to(m.data());
  return m;
}

Matrix<std::int64_t> read_ids(const std::string& path, const char* what) {
  const Tensor t = read_npy(path);
  if (t.dtype() != DType::I64 && t.dtype() != DType::I32)
    detail::fail<FormatError>(path, ": expected ", what, " as an int64 or int32 array, got ",
                              dtype_name(t.dtype()));
  if (t.dim() != 2)
    detail::fail<ShapeError>(path, ": expected ", what, " of shape (B, n), got ",
                             t.shape_string());
  Matrix<std::int64_t> m(t.shape()[0], t.shape()[1]);
  t.copy_to(m.data());
  return m;
}

template <class T>
void write_array(const std::string& path, const Matrix<T>& m, std::vector<std::int64_t> shape) {
  write_npy(path, Tensor::from_values<T>(std::move(shape), m.data()));
}

std::optional<JsonConfig> read_config(const Options& o) {
  if (o.config.empty()) return std::nullopt;
  return JsonConfig::read(o.config);
}

void require_unused(const Options& o, const std::string& option, const std::string& value) {
  if (!value.empty())
    throw UsageError(option + " applies only to fnet models, not to --model " + o.model);
}

// ---- models ------------------------------------------------------------------------------

template <class T>
int run_image(const Options& o, const StateDict& weights, MlpMixerConfig base,
              ModelFamily family) {
  require_unused(o, "--output-pooled", o.output_pooled);
  require_unused(o, "--token-types", o.token_types);
  MlpMixerConfig c = infer_mlp_mixer_config(weights, base);
  if (c.block != base.block)
    detail::fail<KeyError>(o.weights, ": expected a checkpoint of the ", model_family_name(family),
                           " family, got one with ", image_block_name(c.block), " blocks");
  if (auto cfg = read_config(o)) apply_json(*cfg, c);
  MlpMixer<T> model(c);
  ModelLoadOptions lo;
  lo.ignore_head = o.ignore_head;
  model.load(weights, lo);
  const Tensor x = read_npy(o.input);
  const std::vector<std::int64_t> want{x.dim() == 4 ? x.shape()[0] : -1, c.in_chans, c.img_size,
                                       c.img_size};
  if (x.dim() != 4 || x.shape()[1] != want[1] || x.shape()[2] != want[2] || x.shape()[3] != want[3])
    detail::fail<ShapeError>(o.input, ": expected images of shape (B, ", c.in_chans, ", ",
                             c.img_size, ", ", c.img_size, "), got ", x.shape_string());
  const Matrix<T> images = read_float_rows<T>(x, o.input, model.image_values());
  const Matrix<T> y = model.forward(images);
  write_array(o.output, y, {y.rows(), y.cols()});
  return 0;
}

template <class T>
int run_sequence(const Options& o, const StateDict& weights, ModelFamily family) {
  require_unused(o, "--output-pooled", o.output_pooled);
  require_unused(o, "--token-types", o.token_types);
  GMLPSequenceConfig c = infer_gmlp_sequence_config(weights);
  if ((family == ModelFamily::amlp) != (c.attn_dim > 0))
    detail::fail<KeyError>(o.weights, ": expected a ", model_family_name(family),
                           " checkpoint, got one ", c.attn_dim > 0 ? "with" : "without",
                           " tiny attention (attn.to_qkv)");
  if (auto cfg = read_config(o)) apply_json(*cfg, c);
  GMLPSequence<T> model(c);
  ModelLoadOptions lo;
  lo.ignore_head = o.ignore_head;
  model.load(weights, lo);
  const Matrix<std::int64_t> ids = read_ids(o.input, "token ids");
  const Matrix<T> y = model.forward(ids);
  write_array(o.output, y, {ids.rows(), ids.cols(), y.cols()});
  return 0;
}

template <class T>
int run_fnet(const Options& o, const StateDict& weights, FNetConfig base) {
  FNetConfig c = infer_fnet_config(weights, base);
  if (auto cfg = read_config(o)) apply_json(*cfg, c);
  if (o.ignore_head) c.mlm_head = false;
  if (!o.output_logits.empty() && !c.mlm_head)
    detail::fail<KeyError>(o.weights, ": expected an MLM head (cls.predictions.*) for "
                           "--output-logits, got none");
  FNet<T> model(c);
  ModelLoadOptions lo;
  lo.ignore_head = o.ignore_head;
  model.load(weights, lo);
  const Matrix<std::int64_t> ids = read_ids(o.input, "token ids");
  Matrix<std::int64_t> types;
  if (!o.token_types.empty()) {
    types = read_ids(o.token_types, "token type ids");
    if (types.rows() != ids.rows() || types.cols() != ids.cols())
      detail::fail<ShapeError>(o.token_types, ": expected token types of shape (", ids.rows(),
                               ", ", ids.cols(), ") like the ids, got (", types.rows(), ", ",
                               types.cols(), ")");
  }
  if (!o.output_pooled.empty() && !model.has_pooler())
    detail::fail<KeyError>(o.weights, ": expected a pooler (pooler.dense.*) for "
                           "--output-pooled, got none");
  const auto out = model.forward(ids, types);
  const Index h = c.hidden_size;
  write_array(o.output, out.last_hidden_state, {ids.rows(), ids.cols(), h});
  if (!o.output_pooled.empty()) write_array(o.output_pooled, out.pooled, {ids.rows(), h});
  if (!o.output_logits.empty()) {
    const Matrix<T> logits = model.mlm_logits(out.last_hidden_state);
    write_array(o.output_logits, logits, {ids.rows(), ids.cols(), c.vocab_size});
  }
  return 0;
}

// ---- layers ------------------------------------------------------------------------------

const std::vector<std::int64_t>& shape_or_fail(const StateDict& w, const std::string& key,
                                               std::size_t rank) {
  if (!w.contains(key) || w.at(key).shape().size() != rank)
    detail::fail<KeyError>(w.describe(), ": expected '", key, "' with ", rank,
                           " dimensions, got ", w.contains(key) ? w.at(key).shape_string() : "none");
  return w.at(key).shape();
}

struct LayerArgs {
  std::optional<JsonConfig> cfg;
  std::vector<std::string> known;
  template <class V>
  V get(const std::string& key, V fallback) {
    known.push_back(key);
    return cfg ? cfg->get<V>(key, fallback) : fallback;
  }
  void finish() {
    if (cfg) cfg->warn_unknown_fields(known);
  }
};

template <class T, class Layer>
Matrix<T> apply_layer(const Layer& layer, const Matrix<T>& x, Index n, Index d_out) {
  Matrix<T> y(x.rows(), d_out);
  layer.forward(x, n, y);
  return y;
}

template <class T>
int run_layer(const Options& o, const StateDict& w) {
  require_unused(o, "--output-pooled", o.output_pooled);
  require_unused(o, "--token-types", o.token_types);
  if (o.ignore_head) throw UsageError("--ignore-head applies to models, not to layers");
  const Tensor xt = read_npy(o.input);
  if (xt.dim() != 3)
    detail::fail<ShapeError>(o.input, ": expected hidden states of shape (B, n, d), got ",
                             xt.shape_string());
  const Index batch = xt.shape()[0], n = xt.shape()[1], d = xt.shape()[2];
  const Matrix<T> x = read_float_rows<T>(xt, o.input, d);
  LayerArgs args{read_config(o), {}};
  const std::string& m = o.model;
  Matrix<T> y;
  auto load = [&](auto& layer) {
    layer.load(w);
    return 0;
  };
  if (m == "FourierMixer") {
    args.finish();
    if (!o.weights.empty() && !w.empty())
      detail::fail<KeyError>(w.describe(), ": expected no tensors (FourierMixer has no "
                             "parameters), got ", w.size());
    y.resize(x.rows(), d);
    for (Index b = 0; b < batch; ++b)
      fft2_real_part<T>(x.middleRows(b * n, n), y.middleRows(b * n, n));
  } else if (m == "MLPMixerBlock") {
    typename MLPMixerBlock<T>::Config c;
    const auto& t = shape_or_fail(w, "mlp_tokens.fc1.weight", 2);
    c.seq_len = t[1];
    c.tokens_hidden = t[0];
    c.channels = shape_or_fail(w, "norm1.weight", 1)[0];
    c.channels_hidden = shape_or_fail(w, "mlp_channels.fc1.weight", 2)[0];
    c.eps = args.get<double>("eps", 1e-6);
    args.finish();
    MLPMixerBlock<T> layer(c);
    load(layer);
    y = apply_layer(layer, x, n, d);
  } else if (m == "SpatialGatingUnit") {
    typename SpatialGatingUnit<T>::Config c;
    c.seq_len = shape_or_fail(w, "proj.weight", 2)[0];
    c.channels = 2 * shape_or_fail(w, "norm.weight", 1)[0];
    c.causal = args.get<bool>("causal", false);
    c.eps = args.get<double>("eps", 1e-5);
    args.finish();
    SpatialGatingUnit<T> layer(c);
    load(layer);
    y = apply_layer(layer, x, n, c.channels / 2);
  } else if (m == "GMLPBlock" || m == "AMLPBlock") {
    typename GMLPBlock<T>::Config c;
    c.channels = shape_or_fail(w, "norm.weight", 1)[0];
    c.seq_len = shape_or_fail(w, "mlp_channels.gate.proj.weight", 2)[0];
    c.hidden = shape_or_fail(w, "mlp_channels.fc1.weight", 2)[0];
    if (m == "AMLPBlock") c.attn_dim = shape_or_fail(w, "attn.to_qkv.weight", 2)[0] / 3;
    c.causal = args.get<bool>("causal", false);
    c.eps = args.get<double>("eps", 1e-6);
    c.gate_eps = args.get<double>("gate_eps", 1e-5);
    args.finish();
    GMLPBlock<T> layer(c);
    load(layer);
    y = apply_layer(layer, x, n, d);
  } else if (m == "ResMLPBlock") {
    typename ResMLPBlock<T>::Config c;
    c.seq_len = shape_or_fail(w, "linear_tokens.weight", 2)[0];
    c.channels = shape_or_fail(w, "norm1.alpha", 3)[2];
    c.mlp_ratio = static_cast<double>(shape_or_fail(w, "mlp_channels.fc1.weight", 2)[0]) /
                  static_cast<double>(c.channels);
    args.finish();
    ResMLPBlock<T> layer(c);
    load(layer);
    y = apply_layer(layer, x, n, d);
  } else if (m == "TransformerBlock") {
    typename TransformerBlock<T>::Config c;
    c.channels = shape_or_fail(w, "norm1.weight", 1)[0];
    c.hidden = shape_or_fail(w, "mlp.fc1.weight", 2)[0];
    c.heads = args.get<Index>("num_heads", 8);
    c.causal = args.get<bool>("causal", false);
    c.eps = args.get<double>("eps", 1e-6);
    args.finish();
    TransformerBlock<T> layer(c);
    load(layer);
    y = apply_layer(layer, x, n, d);
  } else if (m == "SelfAttention") {
    typename SelfAttention<T>::Config c;
    c.channels = shape_or_fail(w, "in_proj_weight", 2)[1];
    c.heads = args.get<Index>("num_heads", 8);
    c.causal = args.get<bool>("causal", false);
    args.finish();
    SelfAttention<T> layer(c);
    load(layer);
    y = apply_layer(layer, x, n, d);
  } else if (m == "ExternalAttention") {
    typename ExternalAttention<T>::Config c;
    const auto& mk = shape_or_fail(w, "mk.weight", 2);
    c.memory = mk[0];
    c.channels = w.contains("trans_dims.weight") ? shape_or_fail(w, "trans_dims.weight", 2)[0]
                                                 : mk[1];
    c.heads = c.channels / mk[1];
    args.finish();
    ExternalAttention<T> layer(c);
    load(layer);
    y = apply_layer(layer, x, n, d);
  } else if (m == "SynthesizerRandom") {
    typename SynthesizerRandom<T>::Config c;
    c.channels = shape_or_fail(w, "value.weight", 2)[0];
    if (w.contains("R1")) {
      const auto& r = shape_or_fail(w, "R1", 3);
      c.heads = r[0];
      c.seq_len = r[1];
      c.factor = r[2];
    } else {
      const auto& r = shape_or_fail(w, "attention_weights", 3);
      c.heads = r[0];
      c.seq_len = r[1];
    }
    c.causal = args.get<bool>("causal", false);
    args.finish();
    SynthesizerRandom<T> layer(c);
    load(layer);
    y = apply_layer(layer, x, n, d);
  } else if (m == "SynthesizerDense") {
    typename SynthesizerDense<T>::Config c;
    c.channels = shape_or_fail(w, "value.weight", 2)[0];
    c.heads = args.get<Index>("num_heads", 1);
    const Index rows = shape_or_fail(w, "dense2.weight", 2)[0];
    if (c.heads <= 0 || rows % c.heads != 0)
      detail::fail<ArgumentError>(o.config, ": expected num_heads dividing dense2's ", rows,
                                  " rows, got ", c.heads);
    c.seq_len = rows / c.heads;
    c.causal = args.get<bool>("causal", false);
    args.finish();
    SynthesizerDense<T> layer(c);
    load(layer);
    y = apply_layer(layer, x, n, d);
  } else {
    throw UsageError("unknown layer '" + m + "'");
  }
  write_array(o.output, y, {batch, n, y.cols()});
  return 0;
}

bool known_model(const std::string& name) {
  if (find_model_preset(name) || parse_model_family(name)) return true;
  for (const auto& l : kLayers)
    if (l == name) return true;
  return false;
}

template <class T>
int run(const Options& o) {
  StateDict weights;
  if (!o.weights.empty()) weights = read_safetensors(o.weights);
  if (const ModelPreset* p = find_model_preset(o.model)) {
    if (p->family == ModelFamily::fnet) return run_fnet<T>(o, weights, p->fnet);
    return run_image<T>(o, weights, p->image, p->family);
  }
  if (const auto family = parse_model_family(o.model)) {
    if (*family == ModelFamily::fnet) return run_fnet<T>(o, weights, FNetConfig{});
    if ((*family == ModelFamily::gmlp || *family == ModelFamily::amlp) &&
        weights.contains("embed.weight"))
      return run_sequence<T>(o, weights, *family);
    return run_image<T>(o, weights, image_family_defaults(*family), *family);
  }
  for (const auto& l : kLayers)
    if (l == o.model) return run_layer<T>(o, weights);
  std::string layers;
  for (const auto& l : kLayers) layers += " " + l;
  throw UsageError("unknown --model '" + o.model +
                   "': expected a preset, a family (mixer gmlp amlp resmlp vit fnet) or a "
                   "layer class (" + layers.substr(1) + "); see --help");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    bool help = false;
    const Options o = parse_args(argc, argv, help);
    if (help) {
      print_help(std::cout);
      return 0;
    }
    if (!known_model(o.model)) {
      std::string layers;
      for (const auto& l : kLayers) layers += " " + l;
      throw UsageError("unknown --model '" + o.model +
                       "': expected a preset, a family (mixer gmlp amlp resmlp vit fnet) or a "
                       "layer class (" + layers.substr(1) + "); see --help");
    }
    if (o.threads > 0) set_num_threads(o.threads);
    return o.f64 ? run<double>(o) : run<float>(o);
  } catch (const UsageError& e) {
    std::cerr << "tokenmix-run: " << e.what() << '\n';
    return 2;
  } catch (const tokenmix::Error& e) {
    std::cerr << "tokenmix-run: error: " << e.what() << '\n';
    return 1;
  } catch (const nlohmann::json::exception& e) {
    std::cerr << "tokenmix-run: error: " << e.what() << '\n';
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "tokenmix-run: error: out of memory\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "tokenmix-run: error: " << e.what() << '\n';
    return 1;
  } catch (...) {
    std::cerr << "tokenmix-run: error: unknown failure\n";
    return 1;
  }
}

#pragma once
// Hugging Face's FNetModel (SPEC.md §3.2) and the MLM head of FNetForMaskedLM /
// FNetForPreTraining:
//
//   E  = LayerNorm(word[ids] + token_type[tt] + position[0..n-1]);  H0 = projection(E)
//   H_l = FNetLayer_l(H_{l-1})  (fnet_layer.hpp);  last_hidden_state = H_L
//   pooled = tanh(pooler.dense(H_L[:, 0]))
//   MLM: logits = decoder(LayerNorm(act(transform.dense(H_L)))) + bias, decoder tied to the
//        word embeddings unless the checkpoint carries its own cls.predictions.decoder.weight
//
// Keys are HF's: embeddings.{word,position,token_type}_embeddings.weight,
// embeddings.LayerNorm.*, embeddings.projection.*, encoder.layer.<i>.*, pooler.dense.*,
// cls.predictions.transform.{dense,LayerNorm}.*, cls.predictions.bias (or .decoder.bias).
// Task checkpoints prefix the encoder with "fnet."; load() accepts both forms. The buffers
// embeddings.position_ids / embeddings.token_type_ids are not parameters and are ignored.
// There is no attention mask in FNet: padding tokens enter the FFT like any other token.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/gemm.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/core/workspace.hpp"
#include "tokenmix/io/state_dict.hpp"
#include "tokenmix/layers/activation.hpp"
#include "tokenmix/layers/layer_norm.hpp"
#include "tokenmix/layers/linear.hpp"
#include "tokenmix/models/fnet_layer.hpp"
#include "tokenmix/models/mlp_mixer.hpp"  // ModelLoadOptions, detail::count_indexed

namespace tokenmix {

// Field names and defaults of HF's FNetConfig (google/fnet-base).
struct FNetConfig {
  Index vocab_size = 32000;
  Index hidden_size = 768;
  Index num_hidden_layers = 12;
  Index intermediate_size = 3072;
  std::string hidden_act = "gelu_new";
  Index max_position_embeddings = 512;
  Index type_vocab_size = 4;
  double layer_norm_eps = 1e-12;
  Index pad_token_id = 3;
  bool add_pooling_layer = true;
  bool mlm_head = false;  // build cls.predictions (FNetForMaskedLM / FNetForPreTraining)
};

// What the shapes of an HF FNet checkpoint tell (with or without the "fnet." prefix);
// hidden_act, layer_norm_eps and pad_token_id come from `base`.
inline FNetConfig infer_fnet_config(const StateDict& dict, FNetConfig base = {}) {
  const std::string p =
      dict.contains("fnet.embeddings.word_embeddings.weight") ? "fnet." : "";
  auto shape2 = [&](const std::string& key) {
    if (!dict.contains(key) || dict.at(key).shape().size() != 2)
      detail::infer_fail(dict, detail::concat("'", key, "' with 2 dimensions"));
    return dict.at(key).shape();
  };
  FNetConfig c = base;
  const auto word = shape2(p + "embeddings.word_embeddings.weight");
  c.vocab_size = word[0];
  c.hidden_size = word[1];
  c.max_position_embeddings = shape2(p + "embeddings.position_embeddings.weight")[0];
  c.type_vocab_size = shape2(p + "embeddings.token_type_embeddings.weight")[0];
  c.num_hidden_layers = detail::count_indexed(dict, p + "encoder.layer.");
  if (c.num_hidden_layers > 0)
    c.intermediate_size = shape2(p + "encoder.layer.0.intermediate.dense.weight")[0];
  c.add_pooling_layer = dict.contains(p + "pooler.dense.weight");
  c.mlm_head = dict.contains("cls.predictions.transform.dense.weight");
  return c;
}

template <class T>
class FNet {
 public:
  using Config = FNetConfig;

 private:
  Config config_;  // first: the members below are built from it

 public:
  explicit FNet(const Config& config)
      : config_(validated(config)),
        act_(parse_activation(config.hidden_act)),
        embed_norm({config.hidden_size, config.layer_norm_eps}),
        projection({config.hidden_size, config.hidden_size}) {
    const Index h = config.hidden_size;
    word_embeddings = Matrix<T>::Zero(config.vocab_size, h);
    position_embeddings = Matrix<T>::Zero(config.max_position_embeddings, h);
    token_type_embeddings = Matrix<T>::Zero(config.type_vocab_size, h);
    typename FNetLayer<T>::Config lc{h, config.intermediate_size, act_, config.layer_norm_eps};
    layers.reserve(static_cast<std::size_t>(config.num_hidden_layers));
    for (Index i = 0; i < config.num_hidden_layers; ++i) layers.emplace_back(lc);
    if (config.add_pooling_layer) pooler.emplace(typename Linear<T>::Config{h, h});
    if (config.mlm_head) {
      transform_dense.emplace(typename Linear<T>::Config{h, h});
      transform_norm.emplace(typename LayerNorm<T>::Config{h, config.layer_norm_eps});
      decoder_bias = Vector<T>::Zero(config.vocab_size);
    }
  }

  const Config& config() const { return config_; }
  Index hidden_size() const { return config_.hidden_size; }
  bool has_pooler() const { return pooler.has_value(); }
  bool has_mlm_head() const { return transform_dense.has_value(); }
  bool tied_decoder() const { return decoder_weight.size() == 0; }

  // Reads an FNetModel checkpoint or a task checkpoint with the "fnet." prefix. Strict:
  // missing, mis-shaped and unused keys are reported together (KeyError). With
  // options.ignore_head, task heads (cls.*, classifier.*, anything outside "fnet.") are
  // skipped and the MLM head, if the model has one, is not read.
  void load(const StateDict& dict, const ModelLoadOptions& options = {}) {
    const std::string p =
        dict.contains("fnet.embeddings.word_embeddings.weight") ? "fnet." : "";
    StateDictLoader loader(dict);
    for (const char* buffer : {"embeddings.position_ids", "embeddings.token_type_ids"})
      loader.ignore_prefix(p + buffer);
    if (options.ignore_head) {
      for (const auto& kv : dict)
        if (p.empty() ? kv.first.compare(0, 4, "cls.") == 0 ||
                            kv.first.compare(0, 11, "classifier.") == 0 ||
                            kv.first.compare(0, 11, "qa_outputs.") == 0
                      : kv.first.compare(0, p.size(), p) != 0)
          loader.ignore_prefix(kv.first);
    }
    load(loader, p);
    if (transform_dense && !options.ignore_head) load_mlm_head(loader, dict);
    loader.finish("FNet");
  }
  void load(StateDictLoader& loader, const std::string& prefix) {
    const Index h = config_.hidden_size;
    loader.matrix(prefix + "embeddings.word_embeddings.weight", word_embeddings,
                  config_.vocab_size, h);
    loader.matrix(prefix + "embeddings.position_embeddings.weight", position_embeddings,
                  config_.max_position_embeddings, h);
    loader.matrix(prefix + "embeddings.token_type_embeddings.weight", token_type_embeddings,
                  config_.type_vocab_size, h);
    embed_norm.load(loader, prefix + "embeddings.LayerNorm.");
    projection.load(loader, prefix + "embeddings.projection.");
    for (std::size_t i = 0; i < layers.size(); ++i)
      layers[i].load(loader, prefix + "encoder.layer." + std::to_string(i) + ".");
    if (pooler) pooler->load(loader, prefix + "pooler.dense.");
  }
  void save(StateDict& dict, const std::string& prefix = "") const {
    dict.insert(prefix + "embeddings.word_embeddings.weight", word_embeddings);
    dict.insert(prefix + "embeddings.position_embeddings.weight", position_embeddings);
    dict.insert(prefix + "embeddings.token_type_embeddings.weight", token_type_embeddings);
    embed_norm.save(dict, prefix + "embeddings.LayerNorm.");
    projection.save(dict, prefix + "embeddings.projection.");
    for (std::size_t i = 0; i < layers.size(); ++i)
      layers[i].save(dict, prefix + "encoder.layer." + std::to_string(i) + ".");
    if (pooler) pooler->save(dict, prefix + "pooler.dense.");
    if (transform_dense) {
      transform_dense->save(dict, "cls.predictions.transform.dense.");
      transform_norm->save(dict, "cls.predictions.transform.LayerNorm.");
      dict.insert("cls.predictions.bias", decoder_bias);
      if (!tied_decoder()) dict.insert("cls.predictions.decoder.weight", decoder_weight);
    }
  }

  // HF init: Linear / Embedding N(0, 0.02^2), biases 0, the padding row 0, LayerNorm 1 / 0.
  void init_random(std::uint64_t seed) {
    Random rng(seed);
    rng.fill_normal(word_embeddings, 0.0, 0.02);
    if (config_.pad_token_id >= 0 && config_.pad_token_id < config_.vocab_size)
      word_embeddings.row(config_.pad_token_id).setZero();
    rng.fill_normal(position_embeddings, 0.0, 0.02);
    rng.fill_normal(token_type_embeddings, 0.0, 0.02);
    embed_norm.reset();
    init_linear(projection, rng);
    for (auto& l : layers) l.init_random(rng);
    if (pooler) init_linear(*pooler, rng);
    if (transform_dense) {
      init_linear(*transform_dense, rng);
      transform_norm->reset();
      decoder_bias.setZero();
    }
  }

  // ids, token_types: batch x seq_len row-major (token_types may be null: all 0).
  // hidden: (batch * seq_len) x hidden_size; pooled: batch x hidden_size (row stride ldp, 0 =
  // hidden_size), or null. Ids and types are range-checked (ArgumentError), seq_len against the positions.
  void forward(const std::int64_t* ids, Index batch, Index seq_len,
               const std::int64_t* token_types, T* hidden, Index ldh, T* pooled = nullptr,
               Index ldp = 0) const {
    check_inputs(ids, batch, seq_len, token_types);
    if (pooled && !pooler)
      detail::fail<ArgumentError>("FNet: expected no pooled output (built without the "
                                  "pooler), got a request for it");
    const Index h = config_.hidden_size, rows = batch * seq_len;
    if (rows == 0) return;
    ScratchFrame frame;
    T* e = frame.take<T>(static_cast<std::size_t>(rows * h));
    for (Index b = 0; b < batch; ++b)
      for (Index i = 0; i < seq_len; ++i) {
        const Index r = b * seq_len + i;
        const Index tt = token_types ? static_cast<Index>(token_types[r]) : 0;
        Eigen::Map<Eigen::Array<T, 1, Eigen::Dynamic>>(e + r * h, h) =
            (word_embeddings.row(static_cast<Index>(ids[r])).array() +
             token_type_embeddings.row(tt).array()) +
            position_embeddings.row(i).array();
      }
    embed_norm.forward(rows, e, h, e, h);
    projection.forward(rows, e, h, hidden, ldh);
    for (const auto& layer : layers) layer.forward(rows, seq_len, hidden, ldh, hidden, ldh);
    if (pooled) {
      if (ldp == 0) ldp = h;
      T* first = frame.take<T>(static_cast<std::size_t>(batch * h));
      for (Index b = 0; b < batch; ++b)
        std::copy(hidden + b * seq_len * ldh, hidden + b * seq_len * ldh + h, first + b * h);
      Epilogue<T> e2;
      e2.act = Activation::tanh;
      pooler->forward(batch, first, h, pooled, ldp, e2);
    }
  }

  struct Output {
    Matrix<T> last_hidden_state;  // (batch * seq_len) x hidden_size
    Matrix<T> pooled;             // batch x hidden_size (empty without a pooler)
  };
  // ids: batch x seq_len; token_types: empty or the same shape.
  Output forward(const Eigen::Ref<const Matrix<std::int64_t>>& ids,
                 const Eigen::Ref<const Matrix<std::int64_t>>& token_types =
                     Matrix<std::int64_t>()) const {
    if (token_types.size() != 0)
      detail::expect_shape("FNet", "token_type_ids", ids.rows(), ids.cols(), token_types.rows(),
                           token_types.cols());
    const Matrix<std::int64_t> id = ids, tt = token_types;
    Output out;
    out.last_hidden_state.resize(ids.rows() * ids.cols(), config_.hidden_size);
    if (pooler) out.pooled.resize(ids.rows(), config_.hidden_size);
    forward(id.data(), ids.rows(), ids.cols(), tt.size() ? tt.data() : nullptr,
            out.last_hidden_state.data(), config_.hidden_size,
            pooler ? out.pooled.data() : nullptr, config_.hidden_size);
    return out;
  }

  // MLM logits from last hidden states: rows x vocab_size.
  void mlm_logits(const ConstMatrixRef<T>& hidden, MatrixRef<T> logits) const {
    if (!transform_dense)
      detail::fail<ArgumentError>("FNet: expected a model built with mlm_head, got none");
    detail::expect_cols("FNet", "hidden states", config_.hidden_size, hidden.cols());
    detail::expect_shape("FNet", "logits", hidden.rows(), config_.vocab_size, logits.rows(),
                         logits.cols());
    const Index rows = hidden.rows(), h = config_.hidden_size;
    if (rows == 0) return;
    ScratchFrame frame;
    T* t = frame.take<T>(static_cast<std::size_t>(rows * h));
    Epilogue<T> e1;
    e1.act = act_;
    transform_dense->forward(rows, hidden.data(), hidden.outerStride(), t, h, e1);
    transform_norm->forward(rows, t, h, t, h);
    const Matrix<T>& w = tied_decoder() ? word_embeddings : decoder_weight;
    Epilogue<T> e2;
    e2.col_bias = decoder_bias.data();
    gemm<T>(Trans::N, Trans::T, rows, config_.vocab_size, h, T(1), t, h, w.data(), h, T(0),
            logits.data(), logits.outerStride(), e2);
  }
  Matrix<T> mlm_logits(const ConstMatrixRef<T>& hidden) const {
    Matrix<T> out(hidden.rows(), config_.vocab_size);
    mlm_logits(hidden, out);
    return out;
  }

  // Multiply-adds x 2 of one sequence of n tokens (embeddings, layers, pooler).
  double flops(Index n) const {
    const double h = static_cast<double>(config_.hidden_size);
    double f = 2.0 * static_cast<double>(n) * h * h + (pooler ? 2.0 * h * h : 0.0);
    for (const auto& l : layers) f += l.flops(n);
    return f;
  }

  Matrix<T> word_embeddings;        // [vocab_size, H]
  Matrix<T> position_embeddings;    // [max_position_embeddings, H]
  Matrix<T> token_type_embeddings;  // [type_vocab_size, H]

 private:
  Activation act_;

 public:
  LayerNorm<T> embed_norm;  // embeddings.LayerNorm
  Linear<T> projection;     // embeddings.projection
  std::vector<FNetLayer<T>> layers;
  std::optional<Linear<T>> pooler;  // pooler.dense
  std::optional<Linear<T>> transform_dense;     // cls.predictions.transform.dense
  std::optional<LayerNorm<T>> transform_norm;   // cls.predictions.transform.LayerNorm
  Matrix<T> decoder_weight;  // [vocab, H], or empty: tied to word_embeddings
  Vector<T> decoder_bias;    // cls.predictions.bias

 private:
  static Config validated(const Config& c) {
    if (c.vocab_size <= 0 || c.hidden_size <= 0 || c.num_hidden_layers < 0 ||
        c.intermediate_size <= 0 || c.max_position_embeddings <= 0 || c.type_vocab_size <= 0)
      detail::fail<ArgumentError>(
          "FNet: expected positive vocab_size, hidden_size, intermediate_size, "
          "max_position_embeddings, type_vocab_size and num_hidden_layers >= 0, got ",
          c.vocab_size, ", ", c.hidden_size, ", ", c.intermediate_size, ", ",
          c.max_position_embeddings, ", ", c.type_vocab_size, ", ", c.num_hidden_layers);
    parse_activation(c.hidden_act);
    return c;
  }

  static void init_linear(Linear<T>& l, Random& rng) {
    l.init_normal(rng, 0.02);
  }

  void load_mlm_head(StateDictLoader& loader, const StateDict& dict) {
    const Index h = config_.hidden_size, v = config_.vocab_size;
    transform_dense->load(loader, "cls.predictions.transform.dense.");
    transform_norm->load(loader, "cls.predictions.transform.LayerNorm.");
    // The bias is one parameter under two names (decoder.bias is tied to it); HF's
    // safetensors writer keeps one of them.
    const bool own = dict.contains("cls.predictions.bias");
    const bool alias = dict.contains("cls.predictions.decoder.bias");
    if (own || !alias) loader.vector("cls.predictions.bias", decoder_bias, v);
    if (alias) {
      Vector<T> b;
      loader.vector("cls.predictions.decoder.bias", b, v);
      if (!own) decoder_bias = b;
    }
    if (dict.contains("cls.predictions.decoder.weight"))
      loader.matrix("cls.predictions.decoder.weight", decoder_weight, v, h);
    else
      decoder_weight.resize(0, 0);
  }

  void check_inputs(const std::int64_t* ids, Index batch, Index seq_len,
                    const std::int64_t* token_types) const {
    if (batch < 0 || seq_len <= 0 || seq_len > config_.max_position_embeddings)
      detail::fail<ShapeError>("FNet: expected sequences of 1..",
                               config_.max_position_embeddings, " tokens, got ", seq_len,
                               " (batch ", batch, ")");
    detail::check_ids("FNet", "token ids", ids, batch, seq_len, config_.vocab_size);
    if (token_types)
      detail::check_ids("FNet", "token type ids", token_types, batch, seq_len,
                        config_.type_vocab_size);
  }
};

}  // namespace tokenmix

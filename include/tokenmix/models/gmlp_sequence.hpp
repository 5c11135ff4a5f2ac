#pragma once
// gMLP / aMLP for token sequences, the NLP form of Liu et al. 2021 (lucidrains' `gMLP` with
// num_tokens): token ids -> embedding -> blocks -> LayerNorm -> (optional) Linear head.
//
//   X0 = embed[ids];  X_l = GMLPBlock_l(X_{l-1})  (SPEC.md §2.4 / §2.5: the SGU, plus the
//   tiny attention when attn_dim > 0);  out = norm(X_L), or head(norm(X_L)) with a head
//
// Causal (for language modelling): the SGU's token projection and the tiny attention only
// look at earlier tokens. Length-tied like the SGU: built for seq_len tokens, it accepts any
// n <= seq_len (the leading n x n block of each projection). LayerNorms use eps 1e-5 as
// lucidrains' nn.LayerNorm does.
// Keys: embed.weight [num_tokens, dim], blocks.<i>.* (GMLPBlock: norm, mlp_channels.fc1,
// mlp_channels.gate.{norm,proj}, mlp_channels.fc2, attn.*), norm.*, head.{weight,bias}.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/core/workspace.hpp"
#include "tokenmix/io/state_dict.hpp"
#include "tokenmix/layers/gmlp_block.hpp"
#include "tokenmix/layers/layer_norm.hpp"
#include "tokenmix/layers/linear.hpp"
#include "tokenmix/models/mlp_mixer.hpp"  // ModelLoadOptions, detail::count_indexed

namespace tokenmix {

struct GMLPSequenceConfig {
  Index num_tokens = 0;  // vocabulary size
  Index dim = 0;
  Index depth = 0;
  Index seq_len = 0;     // N of the token projections
  double ff_mult = 4.0;  // hidden = int(ff_mult * dim), split in halves by the SGU
  Index hidden = 0;      // overrides ff_mult when > 0
  Index attn_dim = 0;    // > 0: aMLP (tiny attention of this width)
  bool causal = false;
  bool head = true;      // Linear(dim, num_tokens) after the final norm
  double layer_norm_eps = 1e-5;

  Index hidden_width() const {
    return hidden > 0 ? hidden : static_cast<Index>(ff_mult * static_cast<double>(dim));
  }
  Index output_dim() const { return head ? num_tokens : dim; }
};

// Widths, depth, seq_len, attn_dim and the head from the shapes; causal from `base`.
inline GMLPSequenceConfig infer_gmlp_sequence_config(const StateDict& dict,
                                                     GMLPSequenceConfig base = {}) {
  auto shape2 = [&](const std::string& key) {
    if (!dict.contains(key) || dict.at(key).shape().size() != 2)
      detail::infer_fail(dict, detail::concat("'", key, "' with 2 dimensions"));
    return dict.at(key).shape();
  };
  GMLPSequenceConfig c = base;
  const auto embed = shape2("embed.weight");
  c.num_tokens = embed[0];
  c.dim = embed[1];
  c.depth = detail::count_indexed(dict, "blocks.");
  if (c.depth == 0) detail::infer_fail(dict, "keys 'blocks.<i>.*'");
  c.seq_len = shape2("blocks.0.mlp_channels.gate.proj.weight")[0];
  c.hidden = shape2("blocks.0.mlp_channels.fc1.weight")[0];
  c.attn_dim = dict.contains("blocks.0.attn.to_qkv.weight")
                   ? shape2("blocks.0.attn.to_qkv.weight")[0] / 3
                   : 0;
  c.head = dict.contains("head.weight");
  return c;
}

template <class T>
class GMLPSequence {
 public:
  using Config = GMLPSequenceConfig;

 private:
  Config config_;

 public:
  explicit GMLPSequence(const Config& config)
      : config_(validated(config)), norm({config.dim, config.layer_norm_eps}) {
    embed = Matrix<T>::Zero(config.num_tokens, config.dim);
    typename GMLPBlock<T>::Config bc;
    bc.seq_len = config.seq_len;
    bc.channels = config.dim;
    bc.hidden = config.hidden_width();
    bc.eps = config.layer_norm_eps;
    bc.gate_eps = config.layer_norm_eps;
    bc.causal = config.causal;
    bc.attn_dim = config.attn_dim;
    blocks.reserve(static_cast<std::size_t>(config.depth));
    for (Index i = 0; i < config.depth; ++i) blocks.emplace_back(bc);
    if (config.head) head.emplace(typename Linear<T>::Config{config.dim, config.num_tokens});
  }

  const Config& config() const { return config_; }
  Index output_dim() const { return config_.output_dim(); }

  void load(const StateDict& dict, const ModelLoadOptions& options = {}) {
    StateDictLoader loader(dict);
    if (options.ignore_head) loader.ignore_prefix("head.");
    load(loader, "", options);
    loader.finish("GMLPSequence");
  }
  void load(StateDictLoader& loader, const std::string& prefix,
            const ModelLoadOptions& options = {}) {
    loader.matrix(prefix + "embed.weight", embed, config_.num_tokens, config_.dim);
    for (std::size_t i = 0; i < blocks.size(); ++i)
      blocks[i].load(loader, prefix + "blocks." + std::to_string(i) + ".");
    norm.load(loader, prefix + "norm.");
    if (head && !options.ignore_head) head->load(loader, prefix + "head.");
  }
  void save(StateDict& dict, const std::string& prefix = "") const {
    dict.insert(prefix + "embed.weight", embed);
    for (std::size_t i = 0; i < blocks.size(); ++i)
      blocks[i].save(dict, prefix + "blocks." + std::to_string(i) + ".");
    norm.save(dict, prefix + "norm.");
    if (head) head->save(dict, prefix + "head.");
  }

  void init_random(std::uint64_t seed) {
    Random rng(seed);
    rng.fill_normal(embed, 0.0, 1.0);
    for (auto& b : blocks) b.init_random(rng);
    norm.reset();
    if (head) head->init_random(rng);
  }

  // ids: batch x n row-major token ids, n <= seq_len; out: (batch * n) x output_dim().
  void forward(const std::int64_t* ids, Index batch, Index n, T* out, Index ldo) const {
    if (batch < 0 || n <= 0 || n > config_.seq_len)
      detail::fail<ShapeError>("GMLPSequence: expected input with ", config_.seq_len,
                               " tokens or fewer, got ", n);
    const Index rows = batch * n, d = config_.dim;
    detail::check_ids("GMLPSequence", "token ids", ids, batch, n, config_.num_tokens);
    if (rows == 0) return;
    ScratchFrame frame;
    T* x = frame.take<T>(static_cast<std::size_t>(rows * d));
    for (Index r = 0; r < rows; ++r)
      Eigen::Map<Vector<T>>(x + r * d, d) = embed.row(static_cast<Index>(ids[r])).transpose();
    for (const auto& b : blocks) b.forward(rows, n, x, d, x, d);
    if (head) {
      norm.forward(rows, x, d, x, d);
      head->forward(rows, x, d, out, ldo);
    } else {
      norm.forward(rows, x, d, out, ldo);
    }
  }
  Matrix<T> forward(const Eigen::Ref<const Matrix<std::int64_t>>& ids) const {
    const Matrix<std::int64_t> id = ids;
    Matrix<T> out(ids.rows() * ids.cols(), output_dim());
    if (ids.rows() > 0) forward(id.data(), ids.rows(), ids.cols(), out.data(), out.cols());
    return out;
  }

  Matrix<T> embed;  // [num_tokens, dim]
  std::vector<GMLPBlock<T>> blocks;
  LayerNorm<T> norm;
  std::optional<Linear<T>> head;  // [num_tokens, dim]

 private:
  static Config validated(const Config& c) {
    if (c.num_tokens <= 0 || c.dim <= 0 || c.depth < 0 || c.seq_len <= 0)
      detail::fail<ArgumentError>(
          "GMLPSequence: expected positive num_tokens, dim, seq_len and depth >= 0, got ",
          c.num_tokens, ", ", c.dim, ", ", c.seq_len, ", ", c.depth);
    return c;
  }
};

}  // namespace tokenmix

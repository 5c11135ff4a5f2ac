#pragma once
// The image models built on timm's `MlpMixer` skeleton (SPEC.md §3.1):
//
//   images [B, C, H, W] -> stem.proj (Conv2d, kernel = stride = p) -> tokens [B, N, D]
//   (-> + pos_embed for the Transformer twin) -> blocks.0 .. blocks.{L-1} -> norm
//   -> mean over tokens -> head (Linear D -> classes)
//
// One class serves every block kind timm (and the library) puts in that skeleton: MixerBlock
// (MLP-Mixer), SpatialGatingBlock (gMLP), the aMLP block, ResBlock (ResMLP: the final norm is
// an Affine) and the pre-LN attention block (the Transformer baseline). The Transformer also
// loads timm VisionTransformer checkpoints: patch_embed.* instead of stem.*, a class token
// (cls_token [1, 1, D], pos_embed [1, N + 1, D], pooling = the class token's row) and
// attn.qkv / attn.proj names.
//
// Config inference: infer_mlp_mixer_config() reads depth, widths, patch size, token count,
// classes and the block kind from a checkpoint's shapes; what shapes cannot tell (heads,
// LayerScale init) comes from the caller's base config.
//
// forward() is const and thread-safe; its scratch (the residual stream, B*N*D values) comes
// from the calling thread's ScratchFrame arena, so it allocates nothing once warm.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/core/workspace.hpp"
#include "tokenmix/io/state_dict.hpp"
#include "tokenmix/layers/affine.hpp"
#include "tokenmix/layers/gmlp_block.hpp"
#include "tokenmix/layers/layer_norm.hpp"
#include "tokenmix/layers/linear.hpp"
#include "tokenmix/layers/mlp_mixer_block.hpp"
#include "tokenmix/layers/patch_embed.hpp"
#include "tokenmix/layers/resmlp_block.hpp"
#include "tokenmix/models/transformer_block.hpp"

namespace tokenmix {

enum class ImageBlock { mixer, gmlp, amlp, resmlp, transformer };

inline const char* image_block_name(ImageBlock b) {
  switch (b) {
    case ImageBlock::mixer: return "mixer";
    case ImageBlock::gmlp: return "gmlp";
    case ImageBlock::amlp: return "amlp";
    case ImageBlock::resmlp: return "resmlp";
    case ImageBlock::transformer: return "vit";
  }
  return "?";
}

// Field names follow timm's MlpMixer.__init__ (and VisionTransformer's for the twin).
struct MlpMixerConfig {
  ImageBlock block = ImageBlock::mixer;
  Index img_size = 224;  // square images
  Index in_chans = 3;
  Index patch_size = 16;
  Index num_blocks = 8;
  Index embed_dim = 512;
  double mlp_ratio_tokens = 0.5;    // MixerBlock's token MLP: Ds = int(r * D)
  double mlp_ratio_channels = 4.0;  // channel MLP (gMLP: H = int(r * D), split in halves)
  Index tokens_hidden = 0;          // > 0: Ds exactly (from a checkpoint's shapes)
  Index channels_hidden = 0;        // > 0: the channel MLP's hidden width exactly
  Index num_classes = 1000;         // 0: no head, forward() returns the pooled features
  Index num_heads = 0;              // Transformer; 0 = embed_dim / 64 (ViT convention)
  Index attn_dim = 64;              // aMLP's tiny attention width
  double init_values = 1e-4;        // ResMLP LayerScale start value
  double norm_eps = 1e-6;
  bool class_token = false;         // timm ViT: prepend cls_token, pool its row
  bool timm_vit_names = false;      // patch_embed.* and attn.qkv / attn.proj key names

  Index grid() const { return patch_size > 0 ? img_size / patch_size : 0; }
  Index num_patches() const { return grid() * grid(); }
  Index seq_len() const { return num_patches() + (class_token ? 1 : 0); }
  Index heads() const { return num_heads > 0 ? num_heads : std::max<Index>(1, embed_dim / 64); }
  Index hidden_channels() const {
    return channels_hidden > 0
               ? channels_hidden
               : static_cast<Index>(mlp_ratio_channels * static_cast<double>(embed_dim));
  }
  Index hidden_tokens() const {
    return tokens_hidden > 0
               ? tokens_hidden
               : static_cast<Index>(mlp_ratio_tokens * static_cast<double>(embed_dim));
  }
  Index output_dim() const { return num_classes > 0 ? num_classes : embed_dim; }
};

struct ModelLoadOptions {
  // The checkpoint's classifier head (image models: head.*; FNet: cls.* and other task heads)
  // is not read and not required; the model keeps its own head weights.
  bool ignore_head = false;
};

namespace detail {

inline void validate_image_config(const MlpMixerConfig& c) {
  if (c.in_chans <= 0 || c.patch_size <= 0 || c.embed_dim <= 0 || c.num_blocks < 0 ||
      c.num_classes < 0)
    fail<ArgumentError>("MlpMixer: expected positive in_chans, patch_size, embed_dim and ",
                        "non-negative num_blocks, num_classes, got ", c.in_chans, ", ",
                        c.patch_size, ", ", c.embed_dim, ", ", c.num_blocks, ", ",
                        c.num_classes);
  if (c.img_size <= 0 || c.img_size % c.patch_size != 0)
    fail<ArgumentError>("MlpMixer: expected img_size a positive multiple of patch_size ",
                        c.patch_size, ", got ", c.img_size);
  if (c.class_token && c.block != ImageBlock::transformer)
    fail<ArgumentError>("MlpMixer: expected class_token only with transformer blocks, got it "
                        "with ", image_block_name(c.block), " blocks");
}

inline const std::vector<std::int64_t>* shape_of(const StateDict& dict, const std::string& key) {
  return dict.contains(key) ? &dict.at(key).shape() : nullptr;
}

// Number of blocks: one more than the largest i with a key "<prefix><i>.".
inline Index count_indexed(const StateDict& dict, const std::string& prefix) {
  Index count = 0;
  for (const auto& kv : dict) {
    const std::string& k = kv.first;
    if (k.compare(0, prefix.size(), prefix) != 0) continue;
    std::size_t pos = prefix.size();
    Index i = 0;
    bool digits = false;
    while (pos < k.size() && k[pos] >= '0' && k[pos] <= '9') {
      i = i * 10 + (k[pos] - '0');
      ++pos;
      digits = true;
    }
    if (digits && pos < k.size() && k[pos] == '.') count = std::max(count, i + 1);
  }
  return count;
}

// Every id of a batch x seq_len row-major block must index a table of `limit` rows; the error
// names the model, which ids (`what`), and where the first bad one sits.
inline void check_ids(const char* model, const char* what, const std::int64_t* ids, Index batch,
                      Index seq_len, Index limit) {
  for (Index r = 0; r < batch * seq_len; ++r)
    if (ids[r] < 0 || ids[r] >= limit)
      fail<ArgumentError>(model, ": expected ", what, " in [0, ", limit, "), got ", ids[r],
                          " at sequence ", r / seq_len, ", position ", r % seq_len);
}

[[noreturn]] inline void infer_fail(const StateDict& dict, const std::string& what) {
  fail<KeyError>("config inference: ", dict.describe(), ": expected ", what);
}

inline Index isqrt_exact(Index n) {
  Index r = static_cast<Index>(std::llround(std::sqrt(static_cast<double>(n))));
  return r * r == n ? r : -1;
}

}  // namespace detail

// The architecture a timm-layout image checkpoint describes. Everything shapes tell comes from
// the checkpoint; num_heads, init_values, norm_eps come from `base`.
inline MlpMixerConfig infer_mlp_mixer_config(const StateDict& dict, MlpMixerConfig base = {}) {
  using detail::shape_of;
  MlpMixerConfig c = base;
  const auto* stem = shape_of(dict, "stem.proj.weight");
  c.timm_vit_names = false;
  if (!stem) {
    stem = shape_of(dict, "patch_embed.proj.weight");
    c.timm_vit_names = stem != nullptr;
  }
  if (!stem || stem->size() != 4 || (*stem)[2] != (*stem)[3])
    detail::infer_fail(dict, "a stem 'stem.proj.weight' or 'patch_embed.proj.weight' of shape "
                             "[D, C, p, p]");
  c.embed_dim = (*stem)[0];
  c.in_chans = (*stem)[1];
  c.patch_size = (*stem)[2];
  c.num_blocks = detail::count_indexed(dict, "blocks.");
  if (c.num_blocks == 0) detail::infer_fail(dict, "keys 'blocks.<i>.*'");
  const Index d = c.embed_dim;
  auto dims = [&](const std::string& key, std::size_t rank) -> std::vector<std::int64_t> {
    const auto* s = shape_of(dict, key);
    if (!s || s->size() != rank)
      detail::infer_fail(dict, detail::concat("'", key, "' with ", rank, " dimensions"));
    return *s;
  };
  Index tokens = 0;
  if (dict.contains("blocks.0.mlp_tokens.fc1.weight")) {
    c.block = ImageBlock::mixer;
    const auto w = dims("blocks.0.mlp_tokens.fc1.weight", 2);
    c.tokens_hidden = w[0];
    tokens = w[1];
    c.channels_hidden = dims("blocks.0.mlp_channels.fc1.weight", 2)[0];
  } else if (dict.contains("blocks.0.mlp_channels.gate.proj.weight")) {
    c.block = dict.contains("blocks.0.attn.to_qkv.weight") ? ImageBlock::amlp : ImageBlock::gmlp;
    tokens = dims("blocks.0.mlp_channels.gate.proj.weight", 2)[0];
    c.channels_hidden = dims("blocks.0.mlp_channels.fc1.weight", 2)[0];
    if (c.block == ImageBlock::amlp) c.attn_dim = dims("blocks.0.attn.to_qkv.weight", 2)[0] / 3;
  } else if (dict.contains("blocks.0.linear_tokens.weight")) {
    c.block = ImageBlock::resmlp;
    tokens = dims("blocks.0.linear_tokens.weight", 2)[0];
    c.channels_hidden = dims("blocks.0.mlp_channels.fc1.weight", 2)[0];
  } else if (dict.contains("blocks.0.attn.in_proj_weight") ||
             dict.contains("blocks.0.attn.qkv.weight")) {
    c.block = ImageBlock::transformer;
    c.class_token = dict.contains("cls_token");
    c.channels_hidden = dims("blocks.0.mlp.fc1.weight", 2)[0];
    if (dict.contains("pos_embed"))
      tokens = dims("pos_embed", 3)[1] - (c.class_token ? 1 : 0);
    else
      tokens = c.num_patches();
  } else {
    detail::infer_fail(dict, "a known block under 'blocks.0.' (mlp_tokens: Mixer, "
                             "mlp_channels.gate: gMLP/aMLP, linear_tokens: ResMLP, "
                             "attn.in_proj_weight or attn.qkv: Transformer)");
  }
  const Index grid = detail::isqrt_exact(tokens);
  if (grid <= 0)
    detail::infer_fail(dict, detail::concat("a square token grid, got ", tokens, " tokens"));
  c.img_size = grid * c.patch_size;
  c.mlp_ratio_channels = static_cast<double>(c.channels_hidden) / static_cast<double>(d);
  if (c.block == ImageBlock::mixer)
    c.mlp_ratio_tokens = static_cast<double>(c.tokens_hidden) / static_cast<double>(d);
  if (const auto* head = shape_of(dict, "head.weight"))
    c.num_classes = head->size() == 2 ? (*head)[0] : 0;
  else
    c.num_classes = 0;
  return c;
}

template <class T>
class MlpMixer {
 public:
  using Config = MlpMixerConfig;
  using Block = std::variant<MLPMixerBlock<T>, GMLPBlock<T>, ResMLPBlock<T>, TransformerBlock<T>>;

 private:
  Config config_;  // first: the members below are built from it

 public:

  explicit MlpMixer(const Config& config)
      : config_(validated(config)),
        stem(typename PatchEmbed<T>::Config{config_.in_chans, config_.img_size, config_.img_size,
                                            config_.patch_size, config_.embed_dim}) {
    const Index n = config_.num_patches(), d = config_.embed_dim;
    blocks.reserve(static_cast<std::size_t>(config_.num_blocks));
    for (Index i = 0; i < config_.num_blocks; ++i) blocks.push_back(make_block(n, d));
    if (config_.block == ImageBlock::resmlp)
      norm.template emplace<Affine<T>>(d);
    else
      norm.template emplace<LayerNorm<T>>(typename LayerNorm<T>::Config{d, config_.norm_eps});
    if (config_.block == ImageBlock::transformer)
      pos_embed = Matrix<T>::Zero(config_.seq_len(), d);
    if (config_.class_token) cls_token = Vector<T>::Zero(d);
    if (config_.num_classes > 0) head.emplace(typename Linear<T>::Config{d, config_.num_classes});
  }

  const Config& config() const { return config_; }
  Index image_values() const { return config_.in_chans * config_.img_size * config_.img_size; }
  Index output_dim() const { return config_.output_dim(); }

  void load(const StateDict& dict, const ModelLoadOptions& options = {}) {
    StateDictLoader loader(dict);
    if (options.ignore_head) loader.ignore_prefix("head.");
    load(loader, "", options);
    loader.finish("MlpMixer");
  }
  void load(StateDictLoader& loader, const std::string& prefix,
            const ModelLoadOptions& options = {}) {
    stem.load(loader, prefix + stem_prefix());
    const Index d = config_.embed_dim;
    if (config_.block == ImageBlock::transformer)
      loader.matrix_as(prefix + "pos_embed", pos_embed, config_.seq_len(), d,
                       {1, config_.seq_len(), d});
    if (config_.class_token)
      loader.vector_as(prefix + "cls_token", cls_token, d, {1, 1, d});
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      const std::string p = prefix + "blocks." + std::to_string(i) + ".";
      std::visit([&](auto& b) { b.load(loader, p); }, blocks[i]);
    }
    std::visit([&](auto& n) { n.load(loader, prefix + "norm."); }, norm);
    if (head && !options.ignore_head) head->load(loader, prefix + "head.");
  }
  void save(StateDict& dict, const std::string& prefix = "") const {
    stem.save(dict, prefix + stem_prefix());
    const Index d = config_.embed_dim;
    if (config_.block == ImageBlock::transformer)
      dict.insert(prefix + "pos_embed",
                  Tensor::from_values<T>({1, config_.seq_len(), d}, pos_embed.data()));
    if (config_.class_token)
      dict.insert(prefix + "cls_token", Tensor::from_values<T>({1, 1, d}, cls_token.data()));
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      const std::string p = prefix + "blocks." + std::to_string(i) + ".";
      std::visit([&](const auto& b) { b.save(dict, p); }, blocks[i]);
    }
    std::visit([&](const auto& n) { n.save(dict, prefix + "norm."); }, norm);
    if (head) head->save(dict, prefix + "head.");
  }

  // timm's init (SPEC.md §3.1), except the head: timm zeroes it, which would make every
  // output 0; here it is xavier_uniform so random-weight models give informative outputs.
  void init_random(std::uint64_t seed) {
    Random rng(seed);
    stem.init_random(rng);
    if (pos_embed.size() > 0)
      for (Index i = 0; i < pos_embed.size(); ++i)
        pos_embed.data()[i] = static_cast<T>(rng.truncated_normal(0.0, 0.02, -2.0 / 0.02, 2.0 / 0.02));
    if (cls_token.size() > 0) rng.fill_normal(cls_token, 0.0, 1e-6);
    for (auto& b : blocks) std::visit([&](auto& blk) { blk.init_random(rng); }, b);
    std::visit([](auto& n) { n.reset(); }, norm);
    if (head) head->init_xavier(rng, 0.0);
  }

  // images: B rows of C*H*W values (a contiguous [B, C, H, W] array); out: B x output_dim()
  // (logits, or the pooled features without a head).
  void forward(const ConstMatrixRef<T>& images, MatrixRef<T> out) const {
    check_images(images.cols());
    detail::expect_shape("MlpMixer", "output", images.rows(), output_dim(), out.rows(),
                         out.cols());
    if (images.rows() > 1 && images.outerStride() != image_values())
      detail::fail<ShapeError>("MlpMixer: expected contiguous image rows (stride ",
                               image_values(), "), got stride ", images.outerStride());
    forward(images.data(), images.rows(), out.data(), out.outerStride());
  }
  Matrix<T> forward(const ConstMatrixRef<T>& images) const {
    Matrix<T> out(images.rows(), output_dim());
    forward(images, out);
    return out;
  }

  void forward(const T* images, Index batch, T* out, Index ldo) const {
    if (batch <= 0) return;
    const Index n = config_.seq_len(), d = config_.embed_dim;
    ScratchFrame frame;
    T* x = frame.take<T>(static_cast<std::size_t>(batch * n * d));
    T* pooled = frame.take<T>(static_cast<std::size_t>(batch * d));
    features(images, batch, x);
    pool(x, batch, pooled);
    if (head) {
      head->forward(batch, pooled, d, out, ldo);
    } else {
      for (Index b = 0; b < batch; ++b)
        std::copy(pooled + b * d, pooled + (b + 1) * d, out + b * ldo);
    }
  }

  // The normalised token features before pooling: (B * seq_len) x D (the class token first
  // in each sequence when there is one).
  Matrix<T> forward_features(const ConstMatrixRef<T>& images) const {
    check_images(images.cols());
    Matrix<T> x(images.rows() * config_.seq_len(), config_.embed_dim);
    if (images.rows() > 0) {
      const Matrix<T> contiguous = images;
      features(contiguous.data(), images.rows(), x.data());
    }
    return x;
  }

  // Multiply-adds x 2 of one image (the head included).
  double flops() const {
    const double n = static_cast<double>(config_.num_patches()), d = config_.embed_dim;
    const double s = static_cast<double>(config_.seq_len());
    const double hc = static_cast<double>(config_.hidden_channels());
    double per_block = 0;
    switch (config_.block) {
      case ImageBlock::mixer:
        per_block = 4.0 * n * static_cast<double>(config_.hidden_tokens()) * d + 4.0 * n * d * hc;
        break;
      case ImageBlock::gmlp:
      case ImageBlock::amlp:
        per_block = 2.0 * n * d * hc + 2.0 * n * n * hc / 2 + 2.0 * n * hc / 2 * d;
        if (config_.block == ImageBlock::amlp) {
          const double a = static_cast<double>(config_.attn_dim);
          per_block += 2.0 * n * d * 3 * a + 4.0 * n * n * a + 2.0 * n * a * hc / 2;
        }
        break;
      case ImageBlock::resmlp: per_block = 2.0 * n * n * d + 4.0 * n * d * hc; break;
      case ImageBlock::transformer:
        per_block = 2.0 * s * (4 * d * d + 2 * d * hc) + 4.0 * s * s * d;
        break;
    }
    const double stem_flops = 2.0 * n * d * static_cast<double>(stem.patch_features());
    return stem_flops + static_cast<double>(config_.num_blocks) * per_block +
           2.0 * d * static_cast<double>(config_.num_classes);
  }

  PatchEmbed<T> stem;
  Matrix<T> pos_embed;  // [seq_len, D] (file: [1, seq_len, D]); Transformer only
  Vector<T> cls_token;  // [D] (file: [1, 1, D]); timm ViT only
  std::vector<Block> blocks;
  std::variant<LayerNorm<T>, Affine<T>> norm{std::in_place_index<1>, Index(1)};
  std::optional<Linear<T>> head;  // [num_classes, D]

 private:
  static Config validated(const Config& c) {
    detail::validate_image_config(c);
    return c;
  }
  std::string stem_prefix() const { return config_.timm_vit_names ? "patch_embed." : "stem."; }

  Block make_block(Index n, Index d) const {
    switch (config_.block) {
      case ImageBlock::mixer: {
        typename MLPMixerBlock<T>::Config c;
        c.seq_len = n;
        c.channels = d;
        c.tokens_ratio = config_.mlp_ratio_tokens;
        c.channels_ratio = config_.mlp_ratio_channels;
        c.tokens_hidden = config_.hidden_tokens();
        c.channels_hidden = config_.hidden_channels();
        c.eps = config_.norm_eps;
        return Block(std::in_place_index<0>, c);
      }
      case ImageBlock::gmlp:
      case ImageBlock::amlp: {
        typename GMLPBlock<T>::Config c;
        c.seq_len = n;
        c.channels = d;
        c.hidden = config_.hidden_channels();
        c.eps = config_.norm_eps;
        c.attn_dim = config_.block == ImageBlock::amlp ? config_.attn_dim : 0;
        return Block(std::in_place_index<1>, c);
      }
      case ImageBlock::resmlp: {
        typename ResMLPBlock<T>::Config c;
        c.seq_len = n;
        c.channels = d;
        c.mlp_ratio = static_cast<double>(config_.hidden_channels()) / static_cast<double>(d);
        c.init_values = config_.init_values;
        return Block(std::in_place_index<2>, c);
      }
      case ImageBlock::transformer: {
        typename TransformerBlock<T>::Config c;
        c.channels = d;
        c.heads = config_.heads();
        c.hidden = config_.hidden_channels();
        c.eps = config_.norm_eps;
        c.timm_names = config_.timm_vit_names;
        return Block(std::in_place_index<3>, c);
      }
    }
    detail::fail<ArgumentError>("MlpMixer: unknown block kind");
  }

  void check_images(Index cols) const {
    if (cols != image_values())
      detail::fail<ShapeError>("MlpMixer: expected images of ", config_.in_chans, "x",
                               config_.img_size, "x", config_.img_size, " = ", image_values(),
                               " values, got ", cols);
  }

  // Stem, position / class tokens, blocks and the final norm into x ((B * seq_len) x D).
  void features(const T* images, Index batch, T* x) const {
    const Index n = config_.seq_len(), d = config_.embed_dim, hw = config_.img_size;
    if (config_.class_token) {
      for (Index b = 0; b < batch; ++b) {
        T* xb = x + b * n * d;
        std::copy(cls_token.data(), cls_token.data() + d, xb);
        stem.forward(images + b * image_values(), 1, hw, hw, xb + d, d);
      }
    } else {
      stem.forward(images, batch, hw, hw, x, d);
    }
    if (pos_embed.size() > 0) {
      using Rows = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;
      const auto pe = pos_embed.array();
      for (Index b = 0; b < batch; ++b) Rows(x + b * n * d, n, d) += pe;
    }
    const Index rows = batch * n;
    for (const auto& blk : blocks)
      std::visit([&](const auto& b) { b.forward(rows, n, x, d, x, d); }, blk);
    std::visit([&](const auto& nm) { nm.forward(rows, x, d, x, d); }, norm);
  }

  void pool(const T* x, Index batch, T* pooled) const {
    const Index n = config_.seq_len(), d = config_.embed_dim;
    using Row = Eigen::Map<Eigen::Array<T, 1, Eigen::Dynamic>>;
    using ConstRows = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;
    for (Index b = 0; b < batch; ++b) {
      const T* xb = x + b * n * d;
      if (config_.class_token)
        Row(pooled + b * d, d) = ConstRows(xb, 1, d).row(0);
      else
        Row(pooled + b * d, d) = ConstRows(xb, n, d).colwise().sum() / static_cast<T>(n);
    }
  }
};

}  // namespace tokenmix

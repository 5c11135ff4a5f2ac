#pragma once
// The attention twin of the MLP blocks (SPEC.md §3.1, "Transformer baseline"): a pre-LN ViT
// block
//   Y = X + attn(norm1(X)),   Z = Y + mlp(norm2(Y)),
// attn = nn.MultiheadAttention (SPEC.md §2.9), mlp = timm Mlp (D -> r D -> D, exact GELU),
// LayerNorm eps 1e-6.
//
// Keys (library form): norm1.*, attn.in_proj_weight [3D, D], attn.in_proj_bias [3D],
// attn.out_proj.{weight,bias}, norm2.*, mlp.fc1.*, mlp.fc2.*. timm's VisionTransformer
// `Block` stores the same attention as attn.qkv.{weight,bias} (rows Q, K, V: the reshape to
// (3, heads, hd) splits Q|K|V outermost, like in_proj) and attn.proj.{weight,bias}; load()
// accepts either form, save() writes the form the config names.
//
// Attention runs through SelfAttention::forward (heads in parallel on the thread pool); the
// residual is added after it. y may be x itself.

#include <cmath>
#include <cstdint>
#include <string>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/gemm.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/core/thread_pool.hpp"
#include "tokenmix/core/threads.hpp"
#include "tokenmix/core/workspace.hpp"
#include "tokenmix/io/state_dict.hpp"
#include "tokenmix/layers/sequence_block.hpp"
#include "tokenmix/layers/attention_kernel.hpp"
#include "tokenmix/layers/feed_forward.hpp"
#include "tokenmix/layers/layer_norm.hpp"
#include "tokenmix/layers/self_attention.hpp"

namespace tokenmix {

template <class T>
class TransformerBlock : public SequenceBlock<TransformerBlock<T>, T> {
  using Base = SequenceBlock<TransformerBlock<T>, T>;

 public:
  static constexpr const char* layer_name = "TransformerBlock";
  // load(dict, prefix), init_random(seed) and the Eigen-view forwards (sequence_block.hpp).
  using Base::forward;
  using Base::init_random;
  using Base::load;

  struct Config {
    Index channels = 0;      // D
    Index heads = 8;         // must divide D
    double mlp_ratio = 4.0;  // hidden = int(mlp_ratio * D)
    Index hidden = 0;        // overrides the ratio when > 0
    double eps = 1e-6;
    bool causal = false;
    bool timm_names = false;  // save() as attn.qkv / attn.proj (timm ViT) instead of in_proj
  };

  explicit TransformerBlock(const Config& config)
      : config_(resolved(config)),
        norm1({config_.channels, config_.eps}),
        attn({config_.channels, config_.heads, config_.causal}),
        norm2({config_.channels, config_.eps}),
        mlp(typename FeedForward<T>::Config{config_.channels, config_.hidden,
                                            config_.channels}) {}

  const Config& config() const { return config_; }
  Index channels() const { return config_.channels; }

  void load(StateDictLoader& loader, const std::string& prefix) {
    const Index d = config_.channels;
    norm1.load(loader, prefix + "norm1.");
    if (loader.contains(prefix + "attn.qkv.weight")) {
      attn.in_proj_weight.load(loader, prefix + "attn.qkv.weight");
      loader.vector(prefix + "attn.qkv.bias", attn.in_proj_bias, 3 * d);
      attn.out_proj_weight.load(loader, prefix + "attn.proj.weight");
      loader.vector(prefix + "attn.proj.bias", attn.out_proj_bias, d);
    } else {
      attn.load(loader, prefix + "attn.");
    }
    norm2.load(loader, prefix + "norm2.");
    mlp.load(loader, prefix + "mlp.");
  }
  void save(StateDict& dict, const std::string& prefix = "") const {
    norm1.save(dict, prefix + "norm1.");
    if (config_.timm_names) {
      dict.insert(prefix + "attn.qkv.weight", attn.in_proj_weight.value());
      dict.insert(prefix + "attn.qkv.bias", attn.in_proj_bias);
      dict.insert(prefix + "attn.proj.weight", attn.out_proj_weight.value());
      dict.insert(prefix + "attn.proj.bias", attn.out_proj_bias);
    } else {
      attn.save(dict, prefix + "attn.");
    }
    norm2.save(dict, prefix + "norm2.");
    mlp.save(dict, prefix + "mlp.");
  }

  // timm ViT init: LayerNorm 1 / 0, Linear xavier_uniform with bias 0 ("attn") or
  // N(0, 1e-6^2) ("mlp"); the attention keeps nn.MultiheadAttention's own init.
  void init_random(Random& rng) {
    norm1.reset();
    norm2.reset();
    attn.init_random(rng.next_u64());
    mlp.init_timm(rng);
  }

  void forward(Index rows, Index seq_len, const T* x, Index ldx, T* y, Index ldy) const {
    detail::batch_count("TransformerBlock", rows, seq_len);
    if (rows == 0) return;
    const Index d = config_.channels;
    ScratchFrame frame;
    T* xn = frame.take<T>(static_cast<std::size_t>(rows * d));
    norm1.forward(rows, x, ldx, xn, d);
    // y = x + attn(LN1(x)): the residual add is out_proj's epilogue (y may be x itself).
    attn.forward_residual(ConstMatrixMap<T>(xn, rows, d, Eigen::OuterStride<>(d)), seq_len, x,
                          ldx, MatrixMap<T>(y, rows, d, Eigen::OuterStride<>(ldy)));
    norm2.forward(rows, y, ldy, xn, d);
    mlp.forward(rows, xn, d, y, ldy, y, ldy);
  }

  // Multiply-adds x 2 for one sequence of n tokens.
  double flops(Index n) const {
    const double d = static_cast<double>(config_.channels), nn = static_cast<double>(n);
    const double h = static_cast<double>(config_.hidden);
    return 2.0 * nn * (3 * d * d + d * d + 2 * d * h) + 4.0 * nn * nn * d;
  }

 private:
  static Config resolved(Config c) {
    if (c.channels <= 0)
      detail::fail<ArgumentError>("TransformerBlock: expected positive channels, got ",
                                  c.channels);
    if (c.heads <= 0 || c.channels % c.heads != 0)
      detail::fail<ArgumentError>("TransformerBlock: expected heads > 0 dividing channels ",
                                  c.channels, ", got ", c.heads);
    if (c.hidden <= 0) c.hidden = static_cast<Index>(c.mlp_ratio * static_cast<double>(c.channels));
    if (c.hidden <= 0)
      detail::fail<ArgumentError>("TransformerBlock: expected a positive MLP width, got ",
                                  c.hidden);
    return c;
  }

  Config config_;

 public:
  LayerNorm<T> norm1;
  SelfAttention<T> attn;  // parameters only; see the forward pass
  LayerNorm<T> norm2;
  FeedForward<T> mlp;     // mlp.fc1 [hidden, D], mlp.fc2 [D, hidden]
};

}  // namespace tokenmix

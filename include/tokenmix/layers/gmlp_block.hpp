#pragma once
// gMLP / aMLP block (timm `SpatialGatingBlock` around `GatedMlp`, SPEC.md §2.4, §2.5):
//   Y = X + fc2(SGU(GELU(fc1(LN(X))))),  H = int(mlp_ratio * D), fc2: H/2 -> D,
// LN eps 1e-6 while the SGU's own norm keeps PyTorch's 1e-5. fc1's epilogue applies bias and
// GELU, fc2's adds bias and the residual stream, so the block is three GEMMs (fc1, the SGU's
// token mixing, fc2) plus two LayerNorms and the gating product.
// Keys: norm.*, mlp_channels.fc1.*, mlp_channels.gate.{norm,proj}.*, mlp_channels.fc2.*.
//
// With attn_dim > 0 it is the aMLP block (SPEC.md §2.5, lucidrains wiring): a one-head tiny
// attention (TinyAttention, keys attn.to_qkv.weight, attn.to_out.{weight,bias}) reads the
// same normalised input and its [n, H/2] output is added to the token-projected gate before
// the gating product; the SGU's GEMM takes it as its residual epilogue, so the addition
// costs no extra pass.
// Length-tied through the SGU: accepts n <= N. y may be x itself.

#include <cstdint>
#include <optional>
#include <string>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/gemm.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/core/workspace.hpp"
#include "tokenmix/io/state_dict.hpp"
#include "tokenmix/layers/sequence_block.hpp"
#include "tokenmix/layers/layer_norm.hpp"
#include "tokenmix/layers/linear.hpp"
#include "tokenmix/layers/spatial_gating_unit.hpp"
#include "tokenmix/layers/tiny_attention.hpp"

namespace tokenmix {

template <class T>
class GMLPBlock : public SequenceBlock<GMLPBlock<T>, T> {
  using Base = SequenceBlock<GMLPBlock<T>, T>;

 public:
  static constexpr const char* layer_name = "GMLPBlock";
  // load(dict, prefix), init_random(seed) and the Eigen-view forwards (sequence_block.hpp).
  using Base::forward;
  using Base::init_random;
  using Base::load;

  struct Config {
    Index seq_len = 0;   // N
    Index channels = 0;  // D
    double mlp_ratio = 4.0;  // H = int(mlp_ratio * D); the gMLP models use 6
    Index hidden = 0;        // overrides H when > 0 (must be even)
    double eps = 1e-6;       // block LayerNorm
    double gate_eps = 1e-5;  // the SGU's LayerNorm
    bool causal = false;     // SGU weights and (aMLP) attention see only j <= i
    Index attn_dim = 0;      // > 0: aMLP block with a tiny attention of this width (64)
  };

  explicit GMLPBlock(const Config& config)
      : config_(resolved(config)),
        norm({config_.channels, config_.eps}),
        fc1({config_.channels, config_.hidden}),
        gate(typename SpatialGatingUnit<T>::Config{config_.seq_len, config_.hidden,
                                                   config_.causal, config_.gate_eps}),
        fc2({config_.hidden / 2, config_.channels}) {
    if (config_.attn_dim > 0)
      attn.emplace(typename TinyAttention<T>::Config{config_.channels, config_.hidden / 2,
                                                     config_.attn_dim, config_.causal});
  }

  const Config& config() const { return config_; }
  Index seq_len() const { return config_.seq_len; }
  Index channels() const { return config_.channels; }
  Index hidden() const { return config_.hidden; }
  bool has_attention() const { return attn.has_value(); }

  void load(StateDictLoader& loader, const std::string& prefix) {
    norm.load(loader, prefix + "norm.");
    fc1.load(loader, prefix + "mlp_channels.fc1.");
    gate.load(loader, prefix + "mlp_channels.gate.");
    fc2.load(loader, prefix + "mlp_channels.fc2.");
    if (attn) attn->load(loader, prefix + "attn.");
  }
  void save(StateDict& dict, const std::string& prefix = "") const {
    norm.save(dict, prefix + "norm.");
    fc1.save(dict, prefix + "mlp_channels.fc1.");
    gate.save(dict, prefix + "mlp_channels.gate.");
    fc2.save(dict, prefix + "mlp_channels.fc2.");
    if (attn) attn->save(dict, prefix + "attn.");
  }

  // timm init: LN 1 / 0, fc1 / fc2 xavier_uniform with biases N(0, 1e-6^2), then the SGU's
  // own init (proj.weight N(0, 1e-6^2), proj.bias 1); the tiny attention keeps PyTorch's
  // default Linear init, seeded from this generator.
  void init_random(Random& rng) {
    norm.reset();
    fc1.init_xavier(rng, 1e-6);
    gate.init_random(rng);
    fc2.init_xavier(rng, 1e-6);
    if (attn) attn->init_random(rng.next_u64());
  }

  void forward(Index rows, Index seq_len, const T* x, Index ldx, T* y, Index ldy) const {
    if (seq_len <= 0 || seq_len > config_.seq_len)
      detail::fail<ShapeError>("GMLPBlock: expected input with ", config_.seq_len,
                               " tokens or fewer, got ", seq_len);
    detail::batch_count("GMLPBlock", rows, seq_len);
    const Index d = config_.channels, h = config_.hidden, half = h / 2;
    ScratchFrame frame;
    T* xn = frame.take<T>(static_cast<std::size_t>(rows * d));
    T* u = frame.take<T>(static_cast<std::size_t>(rows * h));
    T* g = frame.take<T>(static_cast<std::size_t>(rows * half));
    norm.forward(rows, x, ldx, xn, d);
    Epilogue<T> e1;
    e1.act = Activation::gelu_erf;
    fc1.forward(rows, xn, d, u, h, e1);
    T* t = nullptr;
    if (attn) {
      t = frame.take<T>(static_cast<std::size_t>(rows * half));
      attn->forward(ConstMatrixMap<T>(xn, rows, d, Eigen::OuterStride<>(d)), seq_len,
                    MatrixMap<T>(t, rows, half, Eigen::OuterStride<>(half)));
    }
    gate.forward(rows, seq_len, u, h, g, half, t, half);
    Epilogue<T> e2;
    e2.residual = x;
    e2.ld_residual = ldx;
    fc2.forward(rows, g, half, y, ldy, e2);
  }

 private:
  static Config resolved(Config c) {
    if (c.seq_len <= 0 || c.channels <= 0)
      detail::fail<ArgumentError>("GMLPBlock: expected positive seq_len and channels, got ",
                                  c.seq_len, " and ", c.channels);
    if (c.hidden <= 0) c.hidden = static_cast<Index>(c.mlp_ratio * static_cast<double>(c.channels));
    if (c.attn_dim < 0)
      detail::fail<ArgumentError>("GMLPBlock: expected attn_dim >= 0 (0 = plain gMLP), got ",
                                  c.attn_dim);
    if (c.hidden <= 0 || c.hidden % 2 != 0)
      detail::fail<ArgumentError>(
          "GMLPBlock: expected a positive even hidden width (the SGU splits it), got ", c.hidden);
    return c;
  }

  Config config_;

 public:
  LayerNorm<T> norm;
  Linear<T> fc1;                // mlp_channels.fc1: [H, D]
  SpatialGatingUnit<T> gate;    // mlp_channels.gate
  Linear<T> fc2;                // mlp_channels.fc2: [D, H/2]
  std::optional<TinyAttention<T>> attn;  // aMLP only: attn.*
};

}  // namespace tokenmix

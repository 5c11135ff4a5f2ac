#pragma once
// The image stem of the MLP models (timm `PatchEmbed`): a Conv2d with kernel = stride = p,
// then flatten(2).transpose(1, 2), so image [B, C, H, W] becomes tokens [B, N, D] with
// N = (H/p)(W/p) in raster order (token t = row * (W/p) + col). Non-overlapping patches make
// the convolution exactly im2col + one GEMM: each patch is copied into a row laid out as
// (c, ki, kj), the flattening order of the weight [D, C, p, p], and multiplied by W^T with
// the bias in the epilogue. Keys: proj.weight [D, C, p, p], proj.bias [D].

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/gemm.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/core/workspace.hpp"
#include "tokenmix/io/state_dict.hpp"
#include "tokenmix/layers/packed_weight.hpp"

namespace tokenmix {

template <class T>
class PatchEmbed {
 public:
  struct Config {
    Index in_channels = 3;
    Index image_height = 224;
    Index image_width = 224;
    Index patch_size = 16;
    Index embed_dim = 0;
  };

  explicit PatchEmbed(const Config& config) : config_(validated(config)) {
    weight.reset(config.embed_dim, patch_features());
    bias = Vector<T>::Zero(config.embed_dim);
  }

  const Config& config() const { return config_; }
  Index embed_dim() const { return config_.embed_dim; }
  Index patch_features() const {
    return config_.in_channels * config_.patch_size * config_.patch_size;
  }
  Index grid_height() const { return config_.image_height / config_.patch_size; }
  Index grid_width() const { return config_.image_width / config_.patch_size; }
  Index num_patches() const { return grid_height() * grid_width(); }
  Index image_size() const {
    return config_.in_channels * config_.image_height * config_.image_width;
  }

  void load(const StateDict& dict, const std::string& prefix = "") {
    StateDictLoader loader(dict);
    load(loader, prefix);
    loader.finish("PatchEmbed", prefix);
  }
  void load(StateDictLoader& loader, const std::string& prefix) {
    weight.load_as(loader, prefix + "proj.weight", weight_shape());
    loader.vector(prefix + "proj.bias", bias, config_.embed_dim);
  }
  void save(StateDict& dict, const std::string& prefix = "") const {
    dict.insert(prefix + "proj.weight", Tensor::from_values<T>(weight_shape(), weight.data()));
    dict.insert(prefix + "proj.bias", bias);
  }

  // timm init: lecun_normal weight (N(0,1) truncated to +-2, times sqrt(1/fan_in) /
  // 0.87962566103423978 to restore unit variance after truncation), bias 0.
  void init_random(Random& rng) {
    const double stddev =
        std::sqrt(1.0 / static_cast<double>(patch_features())) / 0.87962566103423978;
    weight.update([&](Matrix<T>& w) {
      for (Index i = 0; i < w.rows(); ++i)
        for (Index j = 0; j < w.cols(); ++j)
          w(i, j) = static_cast<T>(rng.truncated_normal(0.0, stddev, -2.0, 2.0));
    });
    bias.setZero();
  }
  void init_random(std::uint64_t seed) {
    Random rng(seed);
    init_random(rng);
  }

  // images: B rows of C*H*W values ([C, H, W] row-major each); y: (B*N) x D.
  void forward(const ConstMatrixRef<T>& images, MatrixRef<T> y) const {
    if (images.cols() != image_size())
      detail::fail<ShapeError>("PatchEmbed: expected images with ", config_.in_channels, "x",
                               config_.image_height, "x", config_.image_width, " = ",
                               image_size(), " values per row, got ", images.cols());
    detail::expect_shape("PatchEmbed", "output", images.rows() * num_patches(),
                         config_.embed_dim, y.rows(), y.cols());
    if (images.outerStride() == image_size() || images.rows() <= 1) {
      forward(images.data(), images.rows(), config_.image_height, config_.image_width,
              y.data(), y.outerStride());
      return;
    }
    for (Index b = 0; b < images.rows(); ++b)
      forward(images.data() + b * images.outerStride(), 1, config_.image_height,
              config_.image_width, y.data() + b * num_patches() * y.outerStride(),
              y.outerStride());
  }
  Matrix<T> forward(const ConstMatrixRef<T>& images) const {
    Matrix<T> y(images.rows() * num_patches(), config_.embed_dim);
    forward(images, y);
    return y;
  }

  // Contiguous [batch, C, height, width] images of any size divisible by the patch; writes
  // batch * (height/p) * (width/p) token rows.
  void forward(const T* images, Index batch, Index height, Index width, T* y, Index ldy) const {
    const Index p = config_.patch_size, c_in = config_.in_channels;
    if (batch < 0 || height <= 0 || width <= 0 || height % p != 0 || width % p != 0)
      detail::fail<ShapeError>("PatchEmbed: expected images whose height and width are ",
                               "positive multiples of the patch size ", p, ", got ", height,
                               "x", width);
    const Index gh = height / p, gw = width / p, tokens = gh * gw, k = patch_features();
    ScratchFrame frame;
    T* cols = frame.take<T>(static_cast<std::size_t>(batch * tokens * k));
    for (Index b = 0; b < batch; ++b) {
      const T* img = images + b * c_in * height * width;
      T* out = cols + b * tokens * k;
      for (Index c = 0; c < c_in; ++c)
        for (Index pr = 0; pr < gh; ++pr)
          for (Index ki = 0; ki < p; ++ki) {
            const T* src = img + (c * height + pr * p + ki) * width;
            T* dst = out + (pr * gw) * k + (c * p + ki) * p;
            for (Index pc = 0; pc < gw; ++pc)
              std::memcpy(dst + pc * k, src + pc * p, static_cast<std::size_t>(p) * sizeof(T));
          }
    }
    Epilogue<T> e;
    e.col_bias = bias.data();
    weight.multiply(batch * tokens, cols, k, T(0), y, ldy, e);
  }

  PackedWeight<T> weight;  // [D, C*p*p], stored in files as [D, C, p, p]; packed when set
  Vector<T> bias;    // [D]

 private:
  std::vector<std::int64_t> weight_shape() const {
    return {config_.embed_dim, config_.in_channels, config_.patch_size, config_.patch_size};
  }
  static Config validated(const Config& c) {
    if (c.in_channels <= 0 || c.patch_size <= 0 || c.embed_dim <= 0)
      detail::fail<ArgumentError>(
          "PatchEmbed: expected positive in_channels, patch_size and embed_dim, got ",
          c.in_channels, ", ", c.patch_size, " and ", c.embed_dim);
    if (c.image_height <= 0 || c.image_width <= 0 || c.image_height % c.patch_size != 0 ||
        c.image_width % c.patch_size != 0)
      detail::fail<ArgumentError>("PatchEmbed: expected an image size divisible by the patch ",
                                  c.patch_size, ", got ", c.image_height, "x", c.image_width);
    return c;
  }

  Config config_;
};

}  // namespace tokenmix

#pragma once
// nn.LayerNorm over the channel axis (SPEC.md §1): biased variance, eps per layer (1e-5 by
// default, 1e-6 inside Mixer/gMLP blocks, 1e-12 in FNet). Mean and variance are computed in
// two passes over the row (the row sits in L1), never as E[x^2] - E[x]^2, which cancels
// catastrophically for inputs of magnitude 1e4 with small spread; see layer_norm_row for the
// shift that keeps fp32 exact enough there too.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/isa.hpp"
#include "tokenmix/core/simd_reduce.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/io/state_dict.hpp"

#if defined(TOKENMIX_HAVE_X86_DISPATCH)
#include <immintrin.h>
#endif

namespace tokenmix {

namespace detail {
// One row: y = (x - mean) / sqrt(var + eps) * gamma + beta. y may alias x.
// The row is shifted by its first element before anything is summed: for |x| ~ 1e4 with unit
// spread, a float mean is off by half an ulp of 1e4 (5e-4), which is already a 5e-4 error
// in every output; x - x0 is exact (Sterbenz) and small, so its mean `delta` and the
// centred values (x - x0) - delta keep full precision. mean = x0 + delta is never formed.
template <class T>
inline void layer_norm_row_rescaled(const T* x, T* y, Index d, const T* gamma, const T* beta,
                                    T eps);

template <class T>
inline void layer_norm_row(const T* x, T* y, Index d, const T* gamma, const T* beta, T eps) {
  using Row = Eigen::Map<const Eigen::Array<T, 1, Eigen::Dynamic>>;
  using RowOut = Eigen::Map<Eigen::Array<T, 1, Eigen::Dynamic>>;
  const Row xr(x, d);
  const T x0 = x[0];
  const T delta = (xr - x0).sum() / T(d);
  const T var = ((xr - x0) - delta).square().sum() / T(d);
  if (!std::isfinite(var)) return layer_norm_row_rescaled(x, y, d, gamma, beta, eps);
  const T rstd = T(1) / std::sqrt(var + eps);
  RowOut(y, d) = ((xr - x0) - delta) * rstd * Row(gamma, d) + Row(beta, d);
}

// A row of finite values whose spread squared overflows (|x| ~ 1e19 in float, 1e154 in
// double) would get rstd = 0 and come out as the bias. LayerNorm is scale-invariant, so the
// row is redone scaled by a power of two (exact) that brings its largest magnitude near 1;
// eps scales by the square and is negligible there. Rows holding NaN or Inf keep the plain
// arithmetic, which propagates them. Rare, so kept out of the fast loops.
template <class T>
inline void layer_norm_row_rescaled(const T* x, T* y, Index d, const T* gamma, const T* beta,
                                    T eps) {
  T max_abs = 0;
  for (Index j = 0; j < d; ++j) {
    if (!std::isfinite(x[j])) max_abs = std::numeric_limits<T>::infinity();
    max_abs = std::max(max_abs, std::abs(x[j]));
  }
  const bool finite = std::isfinite(max_abs) && max_abs > 0;
  const int shift = finite ? -std::ilogb(max_abs) : 0;
  T x0 = std::ldexp(x[0], shift), delta = 0, var = 0;
  for (Index j = 0; j < d; ++j) delta += std::ldexp(x[j], shift) - x0;
  delta /= T(d);
  for (Index j = 0; j < d; ++j) {
    const T c = (std::ldexp(x[j], shift) - x0) - delta;
    var += c * c;
  }
  var /= T(d);
  const T rstd = T(1) / std::sqrt(var + (finite ? std::ldexp(eps, 2 * shift) : eps));
  for (Index j = 0; j < d; ++j)
    y[j] = ((std::ldexp(x[j], shift) - x0) - delta) * rstd * gamma[j] + beta[j];
}

#if defined(TOKENMIX_HAVE_X86_DISPATCH)
// The same three passes for float rows with AVX-512: four accumulators hide the add
// latency, the tail is a masked load, and the row stays in L1 between passes. Without
// -march, Eigen's version above is limited to SSE2; this one runs 3-4x faster.
TOKENMIX_TARGET_AVX512 inline void layer_norm_rows_avx512(Index rows, const float* x, Index ldx,
                                                         float* y, Index ldy, Index d,
                                                         const float* gamma, const float* beta,
                                                         float eps) {
  const Index full = d / 16 * 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (d - full)) - 1u);
  for (Index r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    float* yr = y + r * ldy;
    const __m512 x0 = _mm512_set1_ps(xr[0]);
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    Index j = 0;
    for (; j + 64 <= full; j += 64) {
      s0 = _mm512_add_ps(s0, _mm512_sub_ps(_mm512_loadu_ps(xr + j), x0));
      s1 = _mm512_add_ps(s1, _mm512_sub_ps(_mm512_loadu_ps(xr + j + 16), x0));
      s2 = _mm512_add_ps(s2, _mm512_sub_ps(_mm512_loadu_ps(xr + j + 32), x0));
      s3 = _mm512_add_ps(s3, _mm512_sub_ps(_mm512_loadu_ps(xr + j + 48), x0));
    }
    for (; j < full; j += 16) s0 = _mm512_add_ps(s0, _mm512_sub_ps(_mm512_loadu_ps(xr + j), x0));
    if (tail) s1 = _mm512_add_ps(s1, _mm512_maskz_sub_ps(tail, _mm512_maskz_loadu_ps(tail, xr + full), x0));
    const float delta = detail::reduce_add(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3))) /
                        static_cast<float>(d);
    // Shift by x0 + delta in two steps so the centred value is (x - x0) - delta exactly as
    // in the scalar version.
    const __m512 dv = _mm512_set1_ps(delta);
    s0 = s1 = s2 = s3 = _mm512_setzero_ps();
    for (j = 0; j + 64 <= full; j += 64) {
      const __m512 c0 = _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(xr + j), x0), dv);
      const __m512 c1 = _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(xr + j + 16), x0), dv);
      const __m512 c2 = _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(xr + j + 32), x0), dv);
      const __m512 c3 = _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(xr + j + 48), x0), dv);
      s0 = _mm512_fmadd_ps(c0, c0, s0);
      s1 = _mm512_fmadd_ps(c1, c1, s1);
      s2 = _mm512_fmadd_ps(c2, c2, s2);
      s3 = _mm512_fmadd_ps(c3, c3, s3);
    }
    for (; j < full; j += 16) {
      const __m512 c = _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(xr + j), x0), dv);
      s0 = _mm512_fmadd_ps(c, c, s0);
    }
    if (tail) {
      const __m512 c =
          _mm512_maskz_sub_ps(tail, _mm512_sub_ps(_mm512_maskz_loadu_ps(tail, xr + full), x0), dv);
      s1 = _mm512_fmadd_ps(c, c, s1);
    }
    const float var = detail::reduce_add(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3))) /
                      static_cast<float>(d);
    if (!std::isfinite(var)) {
      layer_norm_row_rescaled(xr, yr, d, gamma, beta, eps);
      continue;
    }
    const __m512 rstd = _mm512_set1_ps(1.0f / std::sqrt(var + eps));
    for (j = 0; j < full; j += 16) {
      const __m512 c = _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(xr + j), x0), dv);
      const __m512 g = _mm512_mul_ps(_mm512_loadu_ps(gamma + j), rstd);
      _mm512_storeu_ps(yr + j, _mm512_fmadd_ps(c, g, _mm512_loadu_ps(beta + j)));
    }
    if (tail) {
      const __m512 c = _mm512_sub_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, xr + full), x0), dv);
      const __m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, gamma + full), rstd);
      _mm512_mask_storeu_ps(yr + full, tail,
                            _mm512_fmadd_ps(c, g, _mm512_maskz_loadu_ps(tail, beta + full)));
    }
  }
}
#endif

template <class T>
inline void layer_norm_rows(Index rows, const T* x, Index ldx, T* y, Index ldy, Index d,
                            const T* gamma, const T* beta, T eps) {
#if defined(TOKENMIX_HAVE_X86_DISPATCH)
  if constexpr (std::is_same<T, float>::value) {
    if (active_isa() == Isa::avx512) {
      layer_norm_rows_avx512(rows, x, ldx, y, ldy, d, gamma, beta, eps);
      return;
    }
  }
#endif
  for (Index r = 0; r < rows; ++r) layer_norm_row(x + r * ldx, y + r * ldy, d, gamma, beta, eps);
}
}  // namespace detail

template <class T>
class LayerNorm {
 public:
  struct Config {
    Index channels = 0;
    double eps = 1e-5;
  };

  explicit LayerNorm(const Config& config) : config_(config) {
    if (config.channels <= 0)
      detail::fail<ArgumentError>("LayerNorm: expected positive channels, got ",
                                  config.channels);
    if (!(config.eps >= 0.0))
      detail::fail<ArgumentError>("LayerNorm: expected eps >= 0, got ", config.eps);
    weight = Vector<T>::Ones(config.channels);
    bias = Vector<T>::Zero(config.channels);
  }

  const Config& config() const { return config_; }
  Index channels() const { return config_.channels; }

  void load(const StateDict& dict, const std::string& prefix = "") {
    StateDictLoader loader(dict);
    load(loader, prefix);
    loader.finish("LayerNorm", prefix);
  }
  void load(StateDictLoader& loader, const std::string& prefix) {
    loader.vector(prefix + "weight", weight, config_.channels);
    loader.vector(prefix + "bias", bias, config_.channels);
  }
  void save(StateDict& dict, const std::string& prefix = "") const {
    dict.insert(prefix + "weight", weight);
    dict.insert(prefix + "bias", bias);
  }

  // PyTorch initialises gamma = 1, beta = 0; init_random() instead draws them around those
  // values so tests see the affine part act (gamma ~ 1 + N(0, 0.1^2), beta ~ N(0, 0.1^2)).
  void reset() {
    weight.setOnes();
    bias.setZero();
  }
  void init_random(Random& rng) {
    for (Index i = 0; i < config_.channels; ++i) weight[i] = static_cast<T>(1.0 + 0.1 * rng.normal());
    rng.fill_normal(bias, 0.0, 0.1);
  }
  void init_random(std::uint64_t seed) {
    Random rng(seed);
    init_random(rng);
  }

  // Normalises every row of x into y (y may be x itself).
  void forward(const ConstMatrixRef<T>& x, MatrixRef<T> y) const {
    detail::expect_cols("LayerNorm", "input", config_.channels, x.cols());
    detail::expect_shape("LayerNorm", "output", x.rows(), x.cols(), y.rows(), y.cols());
    forward(x.rows(), x.data(), x.outerStride(), y.data(), y.outerStride());
  }
  void forward(Index rows, const T* x, Index ldx, T* y, Index ldy) const {
    detail::layer_norm_rows(rows, x, ldx, y, ldy, config_.channels, weight.data(), bias.data(),
                            static_cast<T>(config_.eps));
  }
  Matrix<T> forward(const ConstMatrixRef<T>& x) const {
    Matrix<T> y(x.rows(), x.cols());
    forward(x, y);
    return y;
  }

  Vector<T> weight;  // gamma [channels]
  Vector<T> bias;    // beta [channels]

 private:
  Config config_;
};

}  // namespace tokenmix

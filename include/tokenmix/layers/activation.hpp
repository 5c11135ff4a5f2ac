#pragma once
// Elementwise activations with the exact forms of SPEC.md §1. The GEMM epilogue applies the
// same functions fused into matrix products; these are for activations that stand alone and
// for tests. GELU (erf) and GELU-tanh differ by up to 4.7e-4, so they are never substituted.

#include <cmath>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/gemm.hpp"
#include "tokenmix/core/tensor.hpp"

namespace tokenmix {

// nn.GELU(): 0.5 x (1 + erf(x / sqrt 2)), written with erfc, which keeps full relative
// precision where 1 + erf(.) would cancel (x << 0).
template <class T>
inline T gelu_erf(T x) {
  return T(0.5) * x * std::erfc(-x * T(0.70710678118654752440));
}

// HF "gelu_new": 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), evaluated as the
// identical x / (1 + exp(-2u)), which does not cancel for x << 0 (1 + tanh(u) does).
template <class T>
inline T gelu_tanh(T x) {
  const T u = T(0.79788456080286535588) * (x + T(0.044715) * x * x * x);
  return x / (T(1) + std::exp(T(-2) * u));
}

template <class T>
inline T relu(T x) {
  // NaN must stay NaN, as in torch.relu; (x > 0 ? x : 0) would turn it into 0.
  return x < T(0) ? T(0) : x;
}

template <class T>
inline T activate(Activation act, T x) {
  switch (act) {
    case Activation::none: return x;
    case Activation::gelu_erf: return gelu_erf(x);
    case Activation::gelu_tanh: return gelu_tanh(x);
    case Activation::relu: return relu(x);
    case Activation::tanh: return std::tanh(x);
  }
  return x;
}

inline const char* activation_name(Activation act) {
  switch (act) {
    case Activation::none: return "none";
    case Activation::gelu_erf: return "gelu";
    case Activation::gelu_tanh: return "gelu_new";
    case Activation::relu: return "relu";
    case Activation::tanh: return "tanh";
  }
  return "?";
}

// Names as PyTorch / HF configs spell them ("gelu" is the exact erf form, "gelu_new" and
// "gelu_pytorch_tanh" the tanh approximation).
inline Activation parse_activation(const std::string& name) {
  if (name == "none" || name == "identity" || name == "linear") return Activation::none;
  if (name == "gelu" || name == "gelu_erf") return Activation::gelu_erf;
  if (name == "gelu_new" || name == "gelu_tanh" || name == "gelu_pytorch_tanh")
    return Activation::gelu_tanh;
  if (name == "relu") return Activation::relu;
  if (name == "tanh") return Activation::tanh;
  detail::fail<ArgumentError>("activation: expected one of none|gelu|gelu_new|relu|tanh, got '",
                              name, "'");
}

namespace detail {
// One switch per call, then a branch-free loop the compiler can vectorise (relu, none) or at
// least keep tight around the libm call (erfc, tanh).
template <class T, class F>
inline void map_span(const T* in, T* out, Index count, F f) {
  for (Index i = 0; i < count; ++i) out[i] = f(in[i]);
}

template <class T>
inline void activate_span(Activation act, const T* in, T* out, Index count) {
  switch (act) {
    case Activation::none:
      if (in != out) map_span(in, out, count, [](T v) { return v; });
      return;
    case Activation::gelu_erf: map_span(in, out, count, [](T v) { return gelu_erf(v); }); return;
    case Activation::gelu_tanh: map_span(in, out, count, [](T v) { return gelu_tanh(v); }); return;
    case Activation::relu: map_span(in, out, count, [](T v) { return relu(v); }); return;
    case Activation::tanh: map_span(in, out, count, [](T v) { return std::tanh(v); }); return;
  }
}
}  // namespace detail

// y = act(x) row by row; y may be x itself.
template <class T>
void apply_activation(Activation act, const ConstMatrixRef<T>& x, MatrixRef<T> y) {
  detail::expect_shape("apply_activation", "output", x.rows(), x.cols(), y.rows(), y.cols());
  for (Index r = 0; r < x.rows(); ++r)
    detail::activate_span(act, x.data() + r * x.outerStride(), y.data() + r * y.outerStride(),
                          x.cols());
}

template <class T>
void apply_activation(Activation act, MatrixRef<T> x) {
  for (Index r = 0; r < x.rows(); ++r) {
    T* row = x.data() + r * x.outerStride();
    detail::activate_span(act, row, row, x.cols());
  }
}

}  // namespace tokenmix

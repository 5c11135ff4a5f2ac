#pragma once
// General matrix multiply with fused epilogues: the one compute core every layer runs on.
//
//   C (m x n) = epilogue(alpha * op(A) * op(B) + beta * C)
//
// All operands are row-major with a leading dimension; op(X) is X or X^T, so column-major
// operands are handled as transposes of row-major ones. beta == 0 never reads C.

#include <algorithm>
#include <cmath>
#include <vector>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/packed_matrix.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/core/threads.hpp"

namespace tokenmix {

enum class Trans { N, T };
enum class Activation { none, gelu_erf, gelu_tanh, relu, tanh };

// Applied per element of the m x n result, in this order, while the tile is hot:
//   v = alpha*acc + beta*C_old; v += col_bias[j] (if set) + row_bias[i] (if set);
//   v = act(v); v *= col_scale[j] (if set); v += residual[i*ld_residual + j] (if set).
template <class T>
struct Epilogue {
  const T* col_bias = nullptr;   // length n  (nn.Linear bias)
  const T* row_bias = nullptr;   // length m  (token-mixing bias per output token)
  Activation act = Activation::none;
  const T* col_scale = nullptr;  // length n  (LayerScale)
  const T* residual = nullptr;   // may alias C (in-place residual)
  Index ld_residual = 0;
};

namespace detail {

// Scalar activations in double, exact to the last bit of a float result and to ~1 ulp of a
// double one. GELU is written as x * Phi(x) with Phi through erfc, so its relative accuracy
// holds for large negative x where 1 + erf(x) would cancel.
inline double activate_scalar(Activation act, double x) {
  switch (act) {
    case Activation::none: return x;
    case Activation::relu: return x > 0 ? x : 0.0;
    case Activation::tanh: return std::tanh(x);
    case Activation::gelu_erf: return 0.5 * x * std::erfc(-x * 0.70710678118654752440);
    case Activation::gelu_tanh: {
      const double u = 0.79788456080286535588 * (x + 0.044715 * x * x * x);
      // 0.5 * (1 + tanh(u)) == 1 / (1 + exp(-2u)), without the cancellation at u << 0.
      return x / (1.0 + std::exp(-2.0 * u));
    }
  }
  return x;
}

inline const char* trans_name(Trans t) { return t == Trans::N ? "N" : "T"; }

}  // namespace detail

template <class T>
void gemm(Trans trans_a, Trans trans_b, Index m, Index n, Index k, T alpha, const T* a,
          Index lda, const T* b, Index ldb, T beta, T* c, Index ldc,
          const Epilogue<T>& epilogue = {}, int threads = 0) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                "gemm: T must be float or double");
  if (m < 0 || n < 0 || k < 0)
    detail::fail<ArgumentError>("gemm: expected non-negative m, n, k, got ", m, ", ", n, ", ",
                                k);
  (void)threads;
  if (m == 0 || n == 0) return;
  std::vector<double> row(static_cast<std::size_t>(n));
  for (Index i = 0; i < m; ++i) {
    std::fill(row.begin(), row.end(), 0.0);
    for (Index p = 0; p < k; ++p) {
      const double aip = trans_a == Trans::N ? a[i * lda + p] : a[p * lda + i];
      for (Index j = 0; j < n; ++j)
        row[j] += aip * (trans_b == Trans::N ? b[p * ldb + j] : b[j * ldb + p]);
    }
    for (Index j = 0; j < n; ++j) {
      double v = alpha * row[j];
      if (beta != T(0)) v += beta * c[i * ldc + j];
      if (epilogue.col_bias) v += epilogue.col_bias[j];
      if (epilogue.row_bias) v += epilogue.row_bias[i];
      v = detail::activate_scalar(epilogue.act, static_cast<T>(v));
      if (epilogue.col_scale) v *= epilogue.col_scale[j];
      if (epilogue.residual) v += epilogue.residual[i * epilogue.ld_residual + j];
      c[i * ldc + j] = static_cast<T>(v);
    }
  }
}

template <class T>
void gemm(Trans trans_a, Trans trans_b, T alpha, const ConstMatrixRef<T>& a,
          const ConstMatrixRef<T>& b, T beta, MatrixRef<T> c, const Epilogue<T>& epilogue = {},
          int threads = 0) {
  const Index m = trans_a == Trans::N ? a.rows() : a.cols();
  const Index k = trans_a == Trans::N ? a.cols() : a.rows();
  const Index kb = trans_b == Trans::N ? b.rows() : b.cols();
  const Index n = trans_b == Trans::N ? b.cols() : b.rows();
  if (kb != k)
    detail::fail<ShapeError>("gemm: expected op(B) with ", k, " rows to match op(A) [", m, ", ",
                             k, "] (trans ", detail::trans_name(trans_a), detail::trans_name(trans_b),
                             "), got op(B) [", kb, ", ", n, "]");
  detail::expect_shape("gemm", "C", m, n, c.rows(), c.cols());
  gemm<T>(trans_a, trans_b, m, n, k, alpha, a.data(), a.outerStride(), b.data(),
          b.outerStride(), beta, c.data(), c.outerStride(), epilogue, threads);
}

template <class T>
PackedMatrix<T> pack_b(Trans trans_b, Index k, Index n, const T* b, Index ldb) {
  if (k < 0 || n < 0)
    detail::fail<ArgumentError>("pack_b: expected non-negative k, n, got ", k, ", ", n);
  return PackedMatrix<T>(trans_b == Trans::T, k, n, b, ldb);
}

template <class T>
void gemm_packed(Trans trans_a, Index m, const T* a, Index lda, const PackedMatrix<T>& b,
                 T beta, T* c, Index ldc, const Epilogue<T>& epilogue = {}, int threads = 0) {
  const Index k = b.rows(), n = b.cols();
  (void)threads;
  if (m == 0 || n == 0) return;
  std::vector<double> row(static_cast<std::size_t>(n));
  for (Index i = 0; i < m; ++i) {
    std::fill(row.begin(), row.end(), 0.0);
    for (Index p = 0; p < k; ++p) {
      const double aip = trans_a == Trans::N ? a[i * lda + p] : a[p * lda + i];
      for (Index j = 0; j < n; ++j) row[j] += aip * b.at(p, j);
    }
    for (Index j = 0; j < n; ++j) {
      double v = row[j];
      if (beta != T(0)) v += beta * c[i * ldc + j];
      if (epilogue.col_bias) v += epilogue.col_bias[j];
      if (epilogue.row_bias) v += epilogue.row_bias[i];
      v = detail::activate_scalar(epilogue.act, static_cast<T>(v));
      if (epilogue.col_scale) v *= epilogue.col_scale[j];
      if (epilogue.residual) v += epilogue.residual[i * epilogue.ld_residual + j];
      c[i * ldc + j] = static_cast<T>(v);
    }
  }
}

}  // namespace tokenmix

#pragma once
// Causal token mixing: C += A B where row i of A may only use columns j <= i + shift, i.e. a
// lower-triangular (shifted) A, without reading the hidden part of A or the rows of B it
// would pick up. Multiplying the hidden entries by 0 instead is not causal under NaN/Inf:
// 0 x NaN = NaN, so a poisoned token j would contaminate the outputs of every i < j.
//
// The staircase is cut recursively: the rows of a range first take the columns all of them
// see as one rectangular product, then the range is halved and each half does the same with
// the columns that remain. For a full triangle of n rows that is one (n/2 x n/2) product,
// two of n/4, ... (half the flops of the dense product, in a few large GEMMs); ranges of
// up to causal_leaf_rows finish their small triangle with a row loop.
//
// Callers supply the rectangle product, so the same cut serves tokenmix::gemm (synthesizers,
// SGU) and the attention kernel's tile product. Summation order depends only on the shapes,
// never on the thread count.

#include <algorithm>

#include "tokenmix/core/gemm.hpp"
#include "tokenmix/core/tensor.hpp"

namespace tokenmix {
namespace detail {

inline constexpr Index causal_leaf_rows = 8;

// C (m x n) += alpha * A B over the visible staircase: row i uses the columns
// j < clamp(i + shift + 1, 0, k) of A (m x k) and the same rows of B (k x n). Nothing else of
// A or B is read. rect(rows, inner, a, b, c) must compute c += alpha * a b for a (rows x
// inner) block of A at `a` (stride lda) and the (inner x n) block of B at `b` (stride ldb),
// into C at `c` (stride ldc).
template <class T, class Rect>
void causal_product(Index m, Index n, Index k, Index shift, T alpha, const T* a, Index lda,
                    const T* b, Index ldb, T* c, Index ldc, Rect&& rect) {
  const auto visible = [&](Index i) { return std::clamp<Index>(i + shift + 1, 0, k); };
  // Rows [r0, r1) still need columns [c0, visible(i)).
  const auto cut = [&](auto&& self, Index r0, Index r1, Index c0) -> void {
    const Index common = visible(r0);
    if (common > c0) {
      rect(r1 - r0, common - c0, a + r0 * lda + c0, b + c0 * ldb, c + r0 * ldc);
      c0 = common;
    }
    if (visible(r1 - 1) <= c0) return;
    if (r1 - r0 <= causal_leaf_rows) {
      for (Index i = r0 + 1; i < r1; ++i) {
        T* ci = c + i * ldc;
        for (Index j = c0; j < visible(i); ++j) {
          const T w = alpha * a[i * lda + j];
          const T* bj = b + j * ldb;
          for (Index col = 0; col < n; ++col) ci[col] += w * bj[col];
        }
      }
      return;
    }
    const Index mid = r0 + (r1 - r0) / 2;
    self(self, r0, mid, c0);
    self(self, mid, r1, c0);
  };
  if (m > 0 && n > 0 && k > 0) cut(cut, 0, m, 0);
}

// The same with tokenmix::gemm as the rectangle product (threads as gemm takes them).
template <class T>
void causal_gemm(Index m, Index n, Index k, Index shift, T alpha, const T* a, Index lda,
                 const T* b, Index ldb, T* c, Index ldc, int threads = 0) {
  causal_product<T>(m, n, k, shift, alpha, a, lda, b, ldb, c, ldc,
                    [&](Index rows, Index inner, const T* ab, const T* bb, T* cb) {
                      gemm<T>(Trans::N, Trans::N, rows, n, inner, alpha, ab, lda, bb, ldb,
                              T(1), cb, ldc, {}, threads);
                    });
}

// C (m x n) = A B with A an m x m token-mixing matrix, lower-triangular when causal (its upper
// triangle is then never read, whatever it holds).
template <class T>
void mix_tokens(bool causal, Index m, Index n, const T* a, Index lda, const T* b, Index ldb,
                T* c, Index ldc, int threads = 0) {
  if (!causal) {
    gemm<T>(Trans::N, Trans::N, m, n, m, T(1), a, lda, b, ldb, T(0), c, ldc, {}, threads);
    return;
  }
  for (Index i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, T(0));
  causal_gemm<T>(m, n, m, 0, T(1), a, lda, b, ldb, c, ldc, threads);
}

}  // namespace detail
}  // namespace tokenmix

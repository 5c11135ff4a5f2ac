#pragma once
// A weight matrix op(B) (k x n) rearranged once, at load time, into the layout the GEMM
// micro-kernels stream, so that every later gemm_packed() call skips the packing pass.
//
// Layout: k is cut into blocks of detail::gemm_kc_for<T>(k) rows; inside a block, columns are cut
// into panels of gemm_panel_width<T> (one 64-byte cache line) and each panel is stored row
// after row (kc x panel_width, contiguous). The last panel is zero-padded. The layout does
// not depend on the ISA: every kernel reads whole panels (AVX-512 one vector per panel row,
// AVX2 two, scalar sixteen or eight lanes), so one PackedMatrix serves every dispatch path.

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "tokenmix/core/tensor.hpp"
#include "tokenmix/core/workspace.hpp"

namespace tokenmix {
namespace detail {

// Columns per packed panel: one cache line, i.e. one AVX-512 vector.
template <class T>
inline constexpr Index gemm_panel_width = static_cast<Index>(64 / sizeof(T));

// Largest number of rows of op(B) per k block (KC). Each k block reads and writes all of C
// once and every tile pays its fixed costs (C loads and stores, loop set-up) once per block,
// so fewer, longer blocks win even where the KC x MR sliver of packed A (14 x 1024 floats =
// 56 KB) no longer fits L1d (48 KB) and streams from L2 beside the B sliver. Paired
// in-process, 13 pairs, float KC 1024 vs 512 (not bit-identical: C takes the partial sums
// at other k): 2048^3 +2.7%, 2048x768x2048 +2%, 256x768x768 (one block instead of two) +2%,
// 1024x768x1024 +1.5%, 512x3072x768 +1.3%, 1024^3 +0.8%, 512x768x3072 and 196x512x2048
// -0.6% (a second run: +1.5..3.5% on the first six, -1.3% and -0.8% on the last two).
// Earlier, KC 512 had beaten 384 (+1..1.5%) and 256 / 192, where the A sliver and a KC x NR
// sliver of B (64 KB at KC 512) both fit L1 (best of three runs, GFLOP/s for KC 512 / 256 /
// 192: 1024^3 203.6 / 200.1 / 199.1, 2048^3 197.1 / 190.0 / 183.8, 512x768x3072 200.7 /
// 197.4 / 196.6). Doubles keep 256 (14 x 256 doubles = 28 KB).
template <class T>
inline constexpr Index gemm_kc = std::is_same<T, float>::value ? 1024 : 256;

// Longest k block over which a packed A sliver stays in L1d from one tile to the next: at
// 512 floats a 14-row sliver is 28 KB of the 48 KB, beside the B sliver streaming through.
// Beyond it the kernels prefetch the sliver ahead (gemm_tile). Doubles never exceed it
// (their KC is 256).
template <class T>
inline constexpr Index gemm_l1_sliver_k = static_cast<Index>(2048 / sizeof(T));

// Rows per k block for an inner dimension k: k split into equal blocks of at most gemm_kc
// (rounded up to 8 rows), so that no block is a short remainder whose C update and call
// overhead cost as much as a full one (k = 384 runs as 2 x 192, not 256 + 128). Depends on
// k alone, so packed weights and every thread count cut k the same way.
template <class T>
inline constexpr Index gemm_kc_for(Index k) {
  if (k <= gemm_kc<T>) return k < 1 ? 1 : k;
  const Index blocks = (k + gemm_kc<T> - 1) / gemm_kc<T>;
  return ((k + blocks - 1) / blocks + 7) / 8 * 8;
}

// Element offset of op(B)(p, j) inside a packed buffer for k-block layout with `n` columns.
template <class T>
inline std::size_t packed_offset(Index k, Index n, Index p, Index j) {
  constexpr Index pw = gemm_panel_width<T>;
  const Index kc = gemm_kc_for<T>(k);
  const Index panels = (n + pw - 1) / pw;
  const Index block = p / kc;
  const Index block_rows = std::min(kc, k - block * kc);
  return static_cast<std::size_t>(block * kc * panels * pw + (j / pw) * block_rows * pw +
                                  (p - block * kc) * pw + (j % pw));
}

// Packs op(B) rows [0, kc) x columns [0, nc) into kc x PW panels (the last zero-padded).
// `src` points at op(B)(0, 0) of the block: row-major B (trans_b false) or its transpose.
template <class T>
void pack_b_block(bool trans_b, Index kc, Index nc, const T* src, Index ldb, T* dst) {
  constexpr Index pw = gemm_panel_width<T>;
  for (Index j0 = 0; j0 < nc; j0 += pw) {
    const Index w = std::min(pw, nc - j0);
    if (!trans_b) {
      for (Index p = 0; p < kc; ++p) {
        const T* row = src + p * ldb + j0;
        T* out = dst + p * pw;
        for (Index j = 0; j < w; ++j) out[j] = row[j];
        for (Index j = w; j < pw; ++j) out[j] = T(0);
      }
    } else {
      // Column j of the panel is row j0 + j of the stored B: read it contiguously.
      for (Index j = 0; j < w; ++j) {
        const T* col = src + (j0 + j) * ldb;
        for (Index p = 0; p < kc; ++p) dst[p * pw + j] = col[p];
      }
      if (w < pw)
        for (Index p = 0; p < kc; ++p)
          for (Index j = w; j < pw; ++j) dst[p * pw + j] = T(0);
    }
    dst += kc * pw;
  }
}

}  // namespace detail

template <class T>
class PackedMatrix {
 public:
  PackedMatrix() = default;

  // Packs op(B), where B is row-major with leading dimension ldb and op(B) is k x n.
  PackedMatrix(bool trans_b, Index k, Index n, const T* b, Index ldb) : k_(k), n_(n) {
    const Index pw = detail::gemm_panel_width<T>;
    const Index panels = (n + pw - 1) / pw;
    size_ = static_cast<std::size_t>(k * panels * pw);
    if (size_ == 0) return;
    void* p = std::aligned_alloc(64, detail::round_up(size_ * sizeof(T), 64));
    if (p == nullptr) throw std::bad_alloc();
    data_.reset(static_cast<T*>(p));
    const Index kc = detail::gemm_kc_for<T>(k);
    for (Index p0 = 0; p0 < k; p0 += kc) {
      const Index rows = std::min(kc, k - p0);
      const T* src = trans_b ? b + p0 : b + p0 * ldb;
      detail::pack_b_block(trans_b, rows, n, src, ldb, data_.get() + p0 * panels * pw);
    }
  }

  Index rows() const { return k_; }  // k: the inner dimension
  Index cols() const { return n_; }  // n: columns of the product
  bool empty() const { return k_ == 0 || n_ == 0; }

  // op(B)(p, j), for tests and debugging; the kernels read data() directly.
  T at(Index p, Index j) const { return data_.get()[detail::packed_offset<T>(k_, n_, p, j)]; }

  // Start of the k block whose first row is p0 (a multiple of gemm_kc_for(rows())).
  const T* block(Index p0) const {
    const Index pw = detail::gemm_panel_width<T>;
    return data_.get() + p0 * ((n_ + pw - 1) / pw) * pw;
  }
  const T* data() const { return data_.get(); }
  std::size_t size() const { return size_; }

 private:
  Index k_ = 0, n_ = 0;
  std::size_t size_ = 0;
  std::unique_ptr<T, detail::AlignedFree> data_;
};

}  // namespace tokenmix

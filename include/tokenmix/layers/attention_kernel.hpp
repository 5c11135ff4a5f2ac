#pragma once
// Scaled dot-product attention for one head, tiled with an online softmax (the
// flash-attention recurrence), shared by SelfAttention and TinyAttention.
//
//   O = softmax(scale * Q K^T + M) V          Q: n_q x d_qk, K: n_k x d_qk, V: n_k x d_v
//
// K comes TRANSPOSED (d_qk x n_k, keys along the row): callers produce it directly with the
// key projection written as W_k X^T, so that S = Q K^T reads K^T in place as the gemm's
// row-major B operand (no per-tile packing of K, which was as costly as the product itself
// at head widths of 32-64), and P V reads V in place likewise.
//
// Memory is O(tile), never n_q x n_k: queries go in blocks of attention_q_block rows, keys in
// blocks of attention_kv_block. For each query row we keep the running maximum m and the
// running sum l of exp(s - m); when a new key block raises m, the partial output row and l
// are rescaled by exp(m_old - m_new) before the block's P V is added. Both products run
// through tokenmix::gemm on strided views, so heads are column ranges of one Q|K|V buffer
// and nothing is copied. The scale goes into the Q K^T gemm's alpha: PyTorch scales Q first,
// which differs only in rounding.
//
// Masks follow PyTorch: causal hides key j from query i when j > i (top-left aligned), and a
// key-padding flag hides a key from every query. A query row that sees no key at all gets
// NaN, as torch's softmax over an all -inf row does (see softmax.hpp); causal masks alone
// never produce one.

#include <algorithm>
#include <cmath>
#include <limits>

#include "tokenmix/core/gemm.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/core/thread_pool.hpp"
#include "tokenmix/core/threads.hpp"
#include "tokenmix/core/workspace.hpp"
#include "tokenmix/layers/softmax.hpp"

namespace tokenmix {
namespace detail {

// A q block of 56 rows against 256 keys is a 56 x 256 score tile (56 KB in float): it stays
// in L2 with the K and V blocks while Q K^T, the exp pass and P V stream over it. 56 is four
// AVX-512 register tiles of 14 rows: up to that many rows the gemm reads B unpacked.
inline constexpr Index attention_q_block = 56;
inline constexpr Index attention_kv_block = 256;

template <class T>
struct AttentionHead {
  Index n_q = 0, n_k = 0;      // query and key counts
  Index dim_qk = 0, dim_v = 0;  // widths of Q/K rows and of V/O rows
  const T* q = nullptr;
  Index ldq = 0;
  const T* kt = nullptr;  // K^T: dim_qk rows of n_k keys
  Index ldkt = 0;
  const T* v = nullptr;
  Index ldv = 0;
  T* o = nullptr;  // n_q x dim_v output, may not alias Q, K or V
  Index ldo = 0;
  T scale = 1;
  bool causal = false;
  Index q_offset = 0;  // causal: row i of q is query q_offset + i (a slice of a longer q)
  const bool* key_hidden = nullptr;  // n_k flags (true = ignore that key) or null
};

// Computes one head (or a slice of its queries, see q_offset). Single-threaded by design:
// callers parallelise over heads, sequences and query blocks (attention_heads below), which
// keeps every tile in one core's cache.
template <class T>
void attention_head(const AttentionHead<T>& a) {
  constexpr Index QB = attention_q_block;
  constexpr Index KB = attention_kv_block;
  const T neg_inf = -std::numeric_limits<T>::infinity();
  if (a.n_q == 0 || a.dim_v == 0) return;

  ScratchFrame frame;
  T* s = frame.take<T>(static_cast<std::size_t>(QB * KB));
  T* m = frame.take<T>(QB);
  T* l = frame.take<T>(QB);

  for (Index q0 = 0; q0 < a.n_q; q0 += QB) {
    const Index qb = std::min(QB, a.n_q - q0);
    // Causal: key blocks starting past the block's last query are entirely hidden.
    const Index first_query = a.q_offset + q0;
    const Index k_end = a.causal ? std::min(a.n_k, first_query + qb) : a.n_k;
    T* o = a.o + q0 * a.ldo;
    std::fill(m, m + qb, neg_inf);
    std::fill(l, l + qb, T(0));
    bool first = true;

    for (Index k0 = 0; k0 < k_end; k0 += KB) {
      const Index kb = std::min(KB, k_end - k0);
      gemm<T>(Trans::N, Trans::N, qb, kb, a.dim_qk, a.scale, a.q + q0 * a.ldq, a.ldq,
              a.kt + k0, a.ldkt, T(0), s, KB, {}, 1);

      for (Index i = 0; i < qb; ++i) {
        T* row = s + i * KB;
        Index visible = kb;
        if (a.causal) visible = std::max<Index>(0, std::min(kb, first_query + i - k0 + 1));
        std::fill(row + visible, row + kb, neg_inf);
        if (a.key_hidden != nullptr)
          for (Index j = 0; j < visible; ++j)
            if (a.key_hidden[k0 + j]) row[j] = neg_inf;

        const T m_new = std::max(m[i], row_max(row, kb));
        T rescale = 1;
        if (m_new == neg_inf) {
          // Nothing visible yet: contribute nothing, keep the (zero) state as it is.
          std::fill(row, row + kb, T(0));
        } else {
          const T sum = exp_shift_sum(row, kb, m_new);
          rescale = std::exp(m[i] - m_new);  // exp(-inf) = 0 on the first visible block
          l[i] = l[i] * rescale + sum;
          m[i] = m_new;
        }
        if (!first && rescale != T(1)) scale_row(o + i * a.ldo, a.dim_v, rescale);
      }
      gemm<T>(Trans::N, Trans::N, qb, a.dim_v, kb, T(1), s, KB, a.v + k0 * a.ldv, a.ldv,
              first ? T(0) : T(1), o, a.ldo, {}, 1);
      first = false;
    }

    for (Index i = 0; i < qb; ++i) {
      T* row = o + i * a.ldo;
      if (first || !(l[i] > T(0))) {
        // No visible key (or NaN logits): PyTorch's softmax yields NaN for such a row.
        std::fill(row, row + a.dim_v, std::numeric_limits<T>::quiet_NaN());
      } else {
        scale_row(row, a.dim_v, T(1) / l[i]);
      }
    }
  }
}

// Runs `count` heads, head(i) describing the i-th, split into query blocks spread over the
// thread pool. Each task is one q block of one head, so causal heads (whose late blocks cost
// more) still balance, and the result does not depend on the thread count.
template <class T, class HeadOf>
void attention_heads(Index count, Index n_q, HeadOf&& head, int threads = 0) {
  if (count <= 0 || n_q <= 0) return;
  const Index blocks = (n_q + attention_q_block - 1) / attention_q_block;
  const Index tasks = count * blocks;
  // Below ~1 MFLOP of work per task set, waking helpers costs more than it saves.
  const AttentionHead<T> probe = head(0);
  const double flops = 4.0 * static_cast<double>(tasks) * attention_q_block *
                       static_cast<double>(probe.n_k) * static_cast<double>(probe.dim_qk);
  const int workers = flops < 2e6 ? 1 : num_threads(threads);
  ThreadPool::global().parallel_for(tasks, workers, [&](Index t) {
    AttentionHead<T> a = head(t / blocks);
    const Index q0 = (t % blocks) * attention_q_block;
    const Index rows = std::min(attention_q_block, a.n_q - q0);
    a.q += q0 * a.ldq;
    a.o += q0 * a.ldo;
    a.q_offset += q0;
    a.n_q = rows;
    attention_head(a);
  });
}

}  // namespace detail
}  // namespace tokenmix

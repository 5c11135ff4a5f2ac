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
// key-padding flag hides a key from every query. Causal key blocks past a query block are
// skipped, and in the diagonal block the hidden scores are overwritten (never read) with
// -inf and P V runs over the staircase j <= i only, so no arithmetic of query i touches a
// later token's K or V (a NaN there stays out of earlier rows). A query row that sees no key at all gets
// NaN, as torch's softmax over an all -inf row does (see softmax.hpp); causal masks alone
// never produce one.

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "tokenmix/core/gemm.hpp"
#include "tokenmix/core/isa.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/core/thread_pool.hpp"
#include "tokenmix/core/threads.hpp"
#include "tokenmix/core/workspace.hpp"
#include "tokenmix/layers/causal_product.hpp"
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

// ---------------------------------------------------------------------------------------
// Unpacked tile product for the two per-tile products
// ---------------------------------------------------------------------------------------
// C (m x n) = alpha * A (m x k) * B (k x n) (+ C when accumulate), all row-major with
// leading dimensions. Both tile products have one tiny dimension (k = head width for Q K^T,
// n = head width for P V), where a general GEMM spends as long packing its operands as it
// does multiplying. Here A is broadcast straight from its rows and B loaded straight from
// its rows into a 14 x 2-vector register tile (28 accumulators), so nothing is copied; the
// operands (at most 56 x 256 scores and a 256 x head-width block) sit in L1/L2.
#if defined(TOKENMIX_HAVE_X86_DISPATCH)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

struct TileF32 {
  using T = float;
  using reg = __m512;
  using mask = __mmask16;
  static constexpr Index W = 16;
  TOKENMIX_TARGET_AVX512 static mask head(Index n) {
    return n >= W ? mask(0xffff) : mask((1u << n) - 1u);
  }
  TOKENMIX_TARGET_AVX512 static reg zero() { return _mm512_setzero_ps(); }
  TOKENMIX_TARGET_AVX512 static reg load(mask m, const T* p) { return _mm512_maskz_loadu_ps(m, p); }
  TOKENMIX_TARGET_AVX512 static void store(mask m, T* p, reg v) { _mm512_mask_storeu_ps(p, m, v); }
  TOKENMIX_TARGET_AVX512 static reg bcast(T x) { return _mm512_set1_ps(x); }
  TOKENMIX_TARGET_AVX512 static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  TOKENMIX_TARGET_AVX512 static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  TOKENMIX_TARGET_AVX512 static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
};
struct TileF64 {
  using T = double;
  using reg = __m512d;
  using mask = __mmask8;
  static constexpr Index W = 8;
  TOKENMIX_TARGET_AVX512 static mask head(Index n) {
    return n >= W ? mask(0xff) : mask((1u << n) - 1u);
  }
  TOKENMIX_TARGET_AVX512 static reg zero() { return _mm512_setzero_pd(); }
  TOKENMIX_TARGET_AVX512 static reg load(mask m, const T* p) { return _mm512_maskz_loadu_pd(m, p); }
  TOKENMIX_TARGET_AVX512 static void store(mask m, T* p, reg v) { _mm512_mask_storeu_pd(p, m, v); }
  TOKENMIX_TARGET_AVX512 static reg bcast(T x) { return _mm512_set1_pd(x); }
  TOKENMIX_TARGET_AVX512 static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_pd(a, b, c); }
  TOKENMIX_TARGET_AVX512 static reg mul(reg a, reg b) { return _mm512_mul_pd(a, b); }
  TOKENMIX_TARGET_AVX512 static reg add(reg a, reg b) { return _mm512_add_pd(a, b); }
};

inline constexpr int tile_rows = 14;

// R rows x NV vectors of C; the last vector is masked by `last` (full inside the matrix).
template <class V, int R, int NV>
TOKENMIX_TARGET_AVX512 void tile_nn(Index k, typename V::T alpha, const typename V::T* a,
                                    Index lda, const typename V::T* b, Index ldb,
                                    bool accumulate, typename V::T* c, Index ldc,
                                    typename V::mask last) {
  using reg = typename V::reg;
  const typename V::mask full = V::head(V::W);
  // Fully unrolled so the R x NV accumulators live in registers.
  reg acc[R][NV];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = V::zero();
  for (Index p = 0; p < k; ++p) {
    reg bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = V::load(v + 1 == NV ? last : full, b + p * ldb + v * V::W);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const reg av = V::bcast(a[r * lda + p]);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = V::fma(av, bv[v], acc[r][v]);
    }
  }
  const reg al = V::bcast(alpha);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      const typename V::mask m = v + 1 == NV ? last : full;
      typename V::T* out = c + r * ldc + v * V::W;
      reg y = V::mul(acc[r][v], al);
      if (accumulate) y = V::add(y, V::load(m, out));
      V::store(m, out, y);
    }
}

template <class V, int NV>
TOKENMIX_TARGET_AVX512 void tile_rows_nn(Index rows, Index k, typename V::T alpha,
                                         const typename V::T* a, Index lda,
                                         const typename V::T* b, Index ldb, bool accumulate,
                                         typename V::T* c, Index ldc, typename V::mask last) {
  // Rows in full tiles of 14, then one remainder tile of the exact height.
  Index i = 0;
  for (; i + tile_rows <= rows; i += tile_rows)
    tile_nn<V, tile_rows, NV>(k, alpha, a + i * lda, lda, b, ldb, accumulate, c + i * ldc, ldc,
                              last);
  const Index r = rows - i;
  a += i * lda;
  c += i * ldc;
  switch (r) {
#define TOKENMIX_TILE_CASE(R) \
  case R: tile_nn<V, R, NV>(k, alpha, a, lda, b, ldb, accumulate, c, ldc, last); break;
    TOKENMIX_TILE_CASE(1) TOKENMIX_TILE_CASE(2) TOKENMIX_TILE_CASE(3) TOKENMIX_TILE_CASE(4)
    TOKENMIX_TILE_CASE(5) TOKENMIX_TILE_CASE(6) TOKENMIX_TILE_CASE(7) TOKENMIX_TILE_CASE(8)
    TOKENMIX_TILE_CASE(9) TOKENMIX_TILE_CASE(10) TOKENMIX_TILE_CASE(11) TOKENMIX_TILE_CASE(12)
    TOKENMIX_TILE_CASE(13)
#undef TOKENMIX_TILE_CASE
    default: break;
  }
}

template <class V>
TOKENMIX_TARGET_AVX512 void tile_product_avx512(Index m, Index n, Index k, typename V::T alpha,
                                                const typename V::T* a, Index lda,
                                                const typename V::T* b, Index ldb,
                                                bool accumulate, typename V::T* c, Index ldc) {
  constexpr Index W = V::W;
  for (Index j = 0; j < n; j += 2 * W) {
    const Index w = std::min(2 * W, n - j);
    if (w > W)
      tile_rows_nn<V, 2>(m, k, alpha, a, lda, b + j, ldb, accumulate, c + j, ldc,
                         V::head(w - W));
    else
      tile_rows_nn<V, 1>(m, k, alpha, a, lda, b + j, ldb, accumulate, c + j, ldc, V::head(w));
  }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif  // TOKENMIX_HAVE_X86_DISPATCH

// The tile product on the active ISA: the kernel above on AVX-512, tokenmix::gemm elsewhere.
template <class T>
void tile_product(Index m, Index n, Index k, T alpha, const T* a, Index lda, const T* b,
                  Index ldb, bool accumulate, T* c, Index ldc) {
  if (m == 0 || n == 0) return;
#if defined(TOKENMIX_HAVE_X86_DISPATCH)
  if (active_isa() == Isa::avx512) {
    if constexpr (std::is_same<T, float>::value)
      return tile_product_avx512<TileF32>(m, n, k, alpha, a, lda, b, ldb, accumulate, c, ldc);
    else
      return tile_product_avx512<TileF64>(m, n, k, alpha, a, lda, b, ldb, accumulate, c, ldc);
  }
#endif
  gemm<T>(Trans::N, Trans::N, m, n, k, alpha, a, lda, b, ldb, accumulate ? T(1) : T(0), c, ldc,
          {}, 1);
}

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
      tile_product<T>(qb, kb, a.dim_qk, a.scale, a.q + q0 * a.ldq, a.ldq, a.kt + k0, a.ldkt,
                      false, s, KB);

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
      const T* vk = a.v + k0 * a.ldv;
      if (!a.causal) {
        tile_product<T>(qb, a.dim_v, kb, T(1), s, KB, vk, a.ldv, !first, o, a.ldo);
      } else {
        // Only j <= i enters P V: the hidden p are 0, but 0 x a NaN/Inf value of a later
        // token is NaN, so the staircase skips them (and their rows of V) instead.
        if (first)
          for (Index i = 0; i < qb; ++i) std::fill(o + i * a.ldo, o + i * a.ldo + a.dim_v, T(0));
        causal_product<T>(qb, a.dim_v, kb, first_query - k0, T(1), s, KB, vk, a.ldv, o, a.ldo,
                          [&](Index rows, Index inner, const T* pb, const T* vb, T* ob) {
                            tile_product<T>(rows, a.dim_v, inner, T(1), pb, KB, vb, a.ldv, true,
                                            ob, a.ldo);
                          });
      }
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

// Copies the key columns [0, dim) of k (rows of stride ldk, batch sequences of seq_len rows)
// into the transposed per-sequence layout the kernel reads: kt + b*seq_len*dim holds a
// dim x seq_len block. Blocked by 16 x 16 so both sides stay in L1.
template <class T>
void transpose_keys(Index batch, Index seq_len, Index dim, const T* k, Index ldk, T* kt) {
  constexpr Index tb = 16;
  for (Index b = 0; b < batch; ++b) {
    const T* kb = k + b * seq_len * ldk;
    T* ktb = kt + b * seq_len * dim;
    for (Index i0 = 0; i0 < seq_len; i0 += tb)
      for (Index c0 = 0; c0 < dim; c0 += tb) {
        const Index i1 = std::min(seq_len, i0 + tb), c1 = std::min(dim, c0 + tb);
        for (Index c = c0; c < c1; ++c)
          for (Index i = i0; i < i1; ++i) ktb[c * seq_len + i] = kb[i * ldk + c];
      }
  }
}

}  // namespace detail
}  // namespace tokenmix

// GEMM micro-kernel and fused epilogue, written once over a vector-traits type V and compiled
// once per ISA: gemm_kernels.hpp includes this file several times, each time with
// TOKENMIX_GEMM_TARGET (a target attribute) and TOKENMIX_GEMM_NS (a namespace) defined, in
// the manner of Highway's foreach_target. No include guard on purpose.
//
// V provides: T, reg, mask, width, first(count) (mask of the first `count` lanes), zero(),
// set1(x), loadu(p), load(p, mask) (zero-filled, no fault past the mask), store(p, reg, mask),
// storeu(p, reg), fmadd(a, b, c) = a*b + c, add, mul, and activate(act, reg); and optionally
// vector_gelu.hpp's primitives (V::gelu_ops), with which that file evaluates both GELU forms.

#if !defined(TOKENMIX_GEMM_TARGET) || !defined(TOKENMIX_GEMM_NS)
#error "gemm_microkernel.hpp is included by gemm_kernels.hpp only"
#endif

#include "tokenmix/core/vector_gelu.hpp"

namespace tokenmix {
namespace detail {
namespace TOKENMIX_GEMM_NS {

// v -> (act(v + biases) * scale + residual) * multiplier for one vector of row i, columns j..j+width, in
// the two parts around the activation (gemm_store evaluates several vectors' activations
// together between them).
template <class V>
TOKENMIX_GEMM_TARGET TOKENMIX_GEMM_INLINE typename V::reg gemm_epilogue_pre(
    typename V::reg x, const GemmEpilogueTile<typename V::T>& e, Index i, Index j,
    typename V::mask m) {
  if (e.col_bias) x = V::add(x, V::load(e.col_bias + j, m));
  if (e.row_bias) x = V::add(x, V::set1(e.row_bias[i]));
  return x;
}
template <class V>
TOKENMIX_GEMM_TARGET TOKENMIX_GEMM_INLINE typename V::reg gemm_epilogue_post(
    typename V::reg x, const GemmEpilogueTile<typename V::T>& e, Index i, Index j,
    typename V::mask m) {
  if (e.col_scale) x = V::mul(x, V::load(e.col_scale + j, m));
  if (e.residual) x = V::add(x, V::load(e.residual + i * e.ld_residual + j, m));
  if (e.multiplier) x = V::mul(x, V::load(e.multiplier + i * e.ld_multiplier + j, m));
  return x;
}
template <class V>
TOKENMIX_GEMM_TARGET TOKENMIX_GEMM_INLINE typename V::reg gemm_epilogue(
    typename V::reg x, const GemmEpilogueTile<typename V::T>& e, Index i, Index j,
    typename V::mask m) {
  x = gemm_epilogue_pre<V>(x, e, i, j, m);
  if (e.act != Activation::none) x = activate_vector<V>(e.act, x);
  return gemm_epilogue_post<V>(x, e, i, j, m);
}

// Accumulators of a register tile set to zero.
template <class V, int R, int C>
TOKENMIX_GEMM_TARGET TOKENMIX_GEMM_INLINE void gemm_zero(typename V::reg (&acc)[R][C]) {
#pragma GCC unroll 32
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < C; ++j) acc[i][j] = V::zero();
}

// Rows i0..i0+R of a tile stored by gemm_store: C = alpha * tile + beta * C, then the
// epilogue, with the activations of all R * NV vectors evaluated together.
template <class V, int R, int NV>
TOKENMIX_GEMM_TARGET TOKENMIX_GEMM_INLINE void gemm_store_rows(const GemmTile<typename V::T>& t,
                                                              const typename V::T* tile,
                                                              Index i0,
                                                              const typename V::mask (&cm)[NV]) {
  using reg = typename V::reg;
  constexpr int W = V::width;
  const GemmEpilogueTile<typename V::T>* e = t.epilogue;
  reg x[R * NV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      const Index i = i0 + r;
      reg y = V::mul(V::loadu(tile + (i * NV + v) * W), V::set1(t.alpha));
      if (t.read_c) y = V::fmadd(V::set1(t.beta), V::load(t.c + i * t.ldc + v * W, cm[v]), y);
      if (e) y = gemm_epilogue_pre<V>(y, *e, i, v * W, cm[v]);
      x[r * NV + v] = y;
    }
  if (e && e->act != Activation::none) activate_vectors<V, R * NV>(e->act, x);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      const Index i = i0 + r;
      reg y = x[r * NV + v];
      if (e) y = gemm_epilogue_post<V>(y, *e, i, v * W, cm[v]);
      V::store(t.c + i * t.ldc + v * W, y, cm[v]);
    }
}

// The accumulators of a tile with alpha == 1 and no epilogue, rows [0, mr), straight to C:
// C = acc (overwrite) or C = beta * C + acc (add_c).
enum class GemmStoreForm { overwrite, add_c };
template <class V, int MR, int NV, GemmStoreForm Form>
TOKENMIX_GEMM_TARGET TOKENMIX_GEMM_INLINE void gemm_store_accumulators(
    const typename V::reg (&acc)[MR][NV], typename V::T* c, Index ldc, Index mr,
    const typename V::mask (&cm)[NV], typename V::reg vbeta) {
  constexpr int W = V::width;
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
    if (i < mr) {
      typename V::T* crow = c + i * ldc;
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        typename V::reg x = acc[i][v];
        if constexpr (Form == GemmStoreForm::add_c)
          x = V::fmadd(vbeta, V::load(crow + v * W, cm[v]), x);
        V::store(crow + v * W, x, cm[v]);
      }
    }
  }
}

// C = alpha * tile + beta * C (+ epilogue) for the valid mr x nr part of the tile. Where V
// has the vector GELU, rows go in groups of four vectors (VecGroup interleaves their chains).
// Vectors wholly past nr are masked out: computed, never stored.
template <class V, int MR, int NV>
TOKENMIX_GEMM_TARGET __attribute__((noinline)) void gemm_store(const GemmTile<typename V::T>& t,
                                                               const typename V::T* tile) {
  typename V::mask cm[NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) cm[v] = V::first(t.nr - v * V::width);
  constexpr int R = has_gelu_ops<V>::value && NV < 4 ? 4 / NV : 1;
  Index i = 0;
  if constexpr (R > 1)
    for (; i + R <= t.mr; i += R) gemm_store_rows<V, R, NV>(t, tile, i, cm);
  for (; i < t.mr; ++i) gemm_store_rows<V, 1, NV>(t, tile, i, cm);
}

// One MR x (NV * width) tile of C over one k block: acc = A_sliver * B_sliver, then
//   C = alpha * acc + beta * C (C read only if read_c), then the epilogue if given.
// A is packed (a[p * MR + r], zero rows past mr). B element (p, col) with col = b_off + c
// lives at b + (col / PW) * b_ps + p * b_rs + col % PW. Mode:
//   GemmB::packed   B is packed panels (zero-padded, always readable: no masks);
//   GemmB::in_place B is read where it lies, masked past nr;
//   GemmB::pack     as in_place, and every B row read is also stored into the packed panels
//                   at t.b_pack (panel stride t.b_pack_ps): the first A sliver of a block
//                   packs B while it computes, so packing costs no separate pass.
// DirectA: A is read where it lies, element (r, p) at t.a[r * t.a_rs + p * t.a_ps] (rows past
// mr read row mr - 1 and are never stored), instead of a packed sliver. Scaled (DirectA with
// mr == MR, on traits with broadcast_scaled): row 5q + r is addressed from a base pointer
// per five rows plus the row stride times 1, 2, 4 (r = 1, 2, 4) or three row strides (r = 3),
// so the loop needs ceil(MR / 5) pointers and two strides, not MR row pointers.
// AS is the row count of the packed A sliver (its step per k), MR <= AS the rows computed:
// a last sliver of a few rows runs a shorter tile over the same packed layout.
// Full (GemmB::pack only): nr == NV * width, so B is read and the panels written in whole
// vectors, without masks.
template <class V, int MR, int NV, GemmB Mode, bool DirectA, int AS = MR, bool Scaled = false,
          bool Full = false>
TOKENMIX_GEMM_TARGET void gemm_tile(const GemmTile<typename V::T>& t) {
  using T = typename V::T;
  using reg = typename V::reg;
  using mask = typename V::mask;
  constexpr int W = V::width;
  constexpr Index PW = gemm_panel_width<T>;

  constexpr bool MaskB = Mode != GemmB::packed && !Full;
  const T* bp[NV];
  mask bm[NV];
  T* pp[NV];
  mask pm[NV];
  const Index last_panel = (t.b_off + t.nr - 1) / PW;
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) {
    const Index col = t.b_off + v * W;
    // Vectors wholly past nr read a valid address and are never stored.
    bp[v] = v * W < t.nr ? t.b + (col / PW) * t.b_ps + col % PW : t.b + t.b_off;
    bm[v] = V::first(t.nr - v * W);
    if (Mode == GemmB::pack) {
      // Whole vectors go to every panel the tile touches (zeros past nr pad the last one).
      const bool in_panel = col / PW <= last_panel;
      pp[v] = in_panel ? t.b_pack + (col / PW) * t.b_pack_ps + col % PW : t.b_pack;
      pm[v] = V::first(in_panel ? W : 0);
    }
  }

  // C lines are needed only at the end: they are fetched (write intent) 32 k steps before
  // it (~450 cycles, about one memory latency), when C will be read (beta != 0 or a later k
  // block) or the k loop is long. Fetched at the start of the loop instead, as before, they
  // sat through KC steps of streaming B, presumably partly evicted again before the stores:
  // paired in-process, 9 pairs, bit-identical, 32 steps before the end vs at the start:
  // 1024x768x1024 +2.3%, 2048x768x2048 +1.9%, 512x768x3072 +1.3%, 256x768x768,
  // 512x3072x768 and 1024^3 +0.8..1%, 2048^3 +0.6%, 196x512x2048 +0.1% (16 and 64 steps:
  // the same within 1%; 128: median +0.4%). Skipping them for a short write-only loop
  // measured faster (paired runs, none vs prefetch at k < 256: 4096x64x64 +5..8%, 64x768x64
  // and 128x768x128 +2%), presumably because a k = 64 loop (~900 cycles) runs mostly while
  // the 28 prefetches hold fill buffers the B stream needs; the stores fetch the lines anyway.
  const Index prefetch_c_at = t.read_c || t.k >= 256 ? std::max<Index>(0, t.k - 32) : -1;

  reg acc[MR][NV];
  gemm_zero<V>(acc);

  const T* a = t.a;
  const T* arow[DirectA && !Scaled ? MR : 1];
  if constexpr (DirectA && !Scaled) {
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) arow[i] = t.a + std::min<Index>(i, t.mr - 1) * t.a_rs;
  }
  constexpr int AB = Scaled ? (MR + 4) / 5 : 1;
  const T* abase[AB];
  const Index rs1 = t.a_rs * Index(sizeof(T)), rs3 = 3 * rs1;
  if constexpr (Scaled) {
#pragma GCC unroll 8
    for (int q = 0; q < AB; ++q) abase[q] = t.a + 5 * q * t.a_rs;
  }
  const Index a_ps = t.a_ps;
  Index a_off = 0;
  const Index b_rs = t.b_rs;
  // A packed sliver longer than gemm_l1_sliver_k no longer stays in L1 from tile to tile (see
  // gemm_kc): ask for it 32 steps ahead. Paired in-process, 9 pairs, bit-identical:
  // 2048^3 and 2048x768x2048 +1.3%, 1024^3 +1.2%, 512x768x3072, 1024x768x1024 and
  // 196x512x2048 +0..0.3% (8 and 16 steps ahead: median +0.6% and +0.8%). Shorter slivers,
  // which stay in L1, were not measured to gain and go without. The same for the rows of an
  // A read in place (14 prefetches every 16 steps) lost 0..1.3%.
  const bool prefetch_a = !DirectA && t.k > gemm_l1_sliver_k<T>;
  for (Index p = 0; p < t.k; ++p) {
    if (prefetch_a) __builtin_prefetch(a + 32 * AS, 0, 3);
    if (p == prefetch_c_at)
      for (Index i = 0; i < t.mr; ++i) {
        __builtin_prefetch(t.c + i * t.ldc, 1, 3);
        __builtin_prefetch(t.c + i * t.ldc + (NV * W - 1), 1, 3);
      }
    reg b[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      b[v] = MaskB ? V::load(bp[v], bm[v]) : V::loadu(bp[v]);
      // Rows of B read in place are b_rs apart, a stride the hardware prefetchers do not
      // follow far enough ahead: ask for the row 16 steps ahead (past the end is harmless).
      // Packed panels stream from L2 (the A sliver is the operand that stays in L1): 8 rows
      // ahead there (measured +0.6..7% at 256..512-row shapes, neutral on the largest).
      // prefetchnta instead (to spare the A sliver's lines in L1) and 16 rows ahead were
      // neutral at 512^3, 1024^3 and 512x768x3072 (within 0.6%, 11 pairs).
      __builtin_prefetch(bp[v] + (Mode != GemmB::packed ? 16 : 8) * b_rs, 0, 3);
      bp[v] += b_rs;
      if (Mode == GemmB::pack) {
        if (Full)
          V::storeu(pp[v], b[v]);
        else
          V::store(pp[v], b[v], pm[v]);
        pp[v] += PW;
      }
    }
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      reg ai;
      if constexpr (Scaled) {
        const T* base = abase[i / 5];
        switch (i % 5) {
          case 0: ai = V::template broadcast_scaled<0>(base, 0); break;
          case 1: ai = V::template broadcast_scaled<1>(base, rs1); break;
          case 2: ai = V::template broadcast_scaled<2>(base, rs1); break;
          case 3: ai = V::template broadcast_scaled<1>(base, rs3); break;
          default: ai = V::template broadcast_scaled<4>(base, rs1); break;
        }
      } else {
        ai = V::set1(DirectA ? arow[i][a_off] : a[i]);
      }
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[i][v] = V::fmadd(ai, b[v], acc[i][v]);
    }
    if constexpr (Scaled) {
#pragma GCC unroll 8
      for (int q = 0; q < AB; ++q) abase[q] += a_ps;
    } else if constexpr (DirectA) {
      a_off += a_ps;
    } else {
      a += AS;
    }
  }

  const bool heavy = t.epilogue && (t.epilogue->act == Activation::gelu_erf ||
                                     t.epilogue->act == Activation::gelu_tanh ||
                                     t.epilogue->act == Activation::tanh);
  if (!heavy) {
    // Straight from the registers: multiply-adds, masked loads and stores only.
    const reg valpha = V::set1(t.alpha);
    const reg vbeta = V::set1(t.beta);
    mask cm[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) cm[v] = V::first(t.nr - v * W);
    // The tile's fields in locals: vector stores may alias anything, so fields read through
    // t would be loaded again after every store.
    const Index mr = t.mr, ldc = t.ldc;
    const bool read_c = t.read_c, has_ep = t.epilogue != nullptr;
    const GemmEpilogueTile<T> ep = has_ep ? *t.epilogue : GemmEpilogueTile<T>{};
    T* const c = t.c;
    // alpha == 1 without an epilogue (every k block but the last, and plain products) stores
    // the accumulators as they are: the general form's 28 multiplies by alpha and two tested
    // flags per vector cost a short tile 1..4% (paired in-process, 31 pairs: 4096x64x64
    // +3.7%, 256x256x256 +1.5%, 64x768x64 and 128x768x128 +0.4..1%). x * 1 == x, so results
    // are bit-identical.
    if (!has_ep && t.alpha == T(1)) {
      if (read_c)
        gemm_store_accumulators<V, MR, NV, GemmStoreForm::add_c>(acc, c, ldc, mr, cm, vbeta);
      else
        gemm_store_accumulators<V, MR, NV, GemmStoreForm::overwrite>(acc, c, ldc, mr, cm, vbeta);
      return;
    }
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      if (i < mr) {
        T* crow = c + i * ldc;
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) {
          reg x = V::mul(acc[i][v], valpha);
          if (read_c) x = V::fmadd(vbeta, V::load(crow + v * W, cm[v]), x);
          if (has_ep) x = gemm_epilogue<V>(x, ep, i, v * W, cm[v]);
          V::store(crow + v * W, x, cm[v]);
        }
      }
    }
    return;
  }
  // Activations that may call out (scalar fallbacks) or are long: the accumulators leave
  // registers first, so no call sits where 28 accumulators are live (the register
  // allocator would otherwise spill them inside the FMA loop).
  alignas(64) T tile[MR * NV * W];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) V::storeu(tile + (i * NV + v) * W, acc[i][v]);
  gemm_store<V, MR, NV>(t, tile);
}

// A tile at most NC columns wide (the last columns of C, e.g. n = 196 leaves 4 past six
// 32-column tiles) over packed A and packed B: vectors run along the AS rows of the A sliver
// and B values are broadcast, so each FMA does AS useful lanes instead of nr. The row-vector
// kernel would spend one A broadcast per FMA on such a tile and run bound by loads. Same
// fused multiply-add chain per element as gemm_tile, so results are bit-identical to it.
template <class V, int AS, int NC>
TOKENMIX_GEMM_TARGET void gemm_tile_cols(const GemmTile<typename V::T>& t) {
  using T = typename V::T;
  using reg = typename V::reg;
  using mask = typename V::mask;
  constexpr int W = V::width;
  constexpr int RV = (AS + W - 1) / W;  // vectors per A column
  mask am[RV];
#pragma GCC unroll 4
  for (int v = 0; v < RV; ++v) am[v] = V::first(AS - v * W);
  reg acc[RV][NC];
  gemm_zero<V>(acc);
  const T* a = t.a;
  const T* b = t.b + t.b_off;
  const Index b_rs = t.b_rs;
  for (Index p = 0; p < t.k; ++p) {
    reg av[RV];
#pragma GCC unroll 4
    for (int v = 0; v < RV; ++v) av[v] = V::load(a + v * W, am[v]);
#pragma GCC unroll 8
    for (int j = 0; j < NC; ++j) {
      const reg bj = V::set1(b[j]);
#pragma GCC unroll 4
      for (int v = 0; v < RV; ++v) acc[v][j] = V::fmadd(av[v], bj, acc[v][j]);
    }
    a += AS;
    b += b_rs;
  }
  // Back to the row-major tile layout gemm_store reads (row i at tile + i * W).
  alignas(64) T cols[NC * RV * W];
#pragma GCC unroll 8
  for (int j = 0; j < NC; ++j)
#pragma GCC unroll 4
    for (int v = 0; v < RV; ++v) V::storeu(cols + (j * RV + v) * W, acc[v][j]);
  alignas(64) T tile[AS * W] = {};
  for (Index i = 0; i < t.mr; ++i)
    for (int j = 0; j < NC; ++j) tile[i * W + j] = cols[j * RV * W + i];
  gemm_store<V, AS, 1>(t, tile);
}

// Packs op(A) rows [0, mr) x columns [0, kc) (a points at the first element) into an
// MR-row sliver: dst[p * MR + r], rows mr..MR zero.
template <class V, int MR>
TOKENMIX_GEMM_TARGET void gemm_pack_a(bool trans_a, const typename V::T* a, Index lda, Index mr,
                                      Index kc, typename V::T* dst) {
  using T = typename V::T;
  if (trans_a) {  // op(A) column p is contiguous: plain copies
    // Constant-size copies inline to a few vector moves; a sized memcpy call would not.
    if (mr == MR) {
      for (Index p = 0; p < kc; ++p) std::memcpy(dst + p * MR, a + p * lda, sizeof(T) * MR);
      return;
    }
    for (Index p = 0; p < kc; ++p) {
      for (Index r = 0; r < mr; ++r) dst[p * MR + r] = a[p * lda + r];
      for (Index r = mr; r < MR; ++r) dst[p * MR + r] = T(0);
    }
    return;
  }
  if constexpr (V::has_transpose) {
    constexpr Index W = V::width;
    for (Index p0 = 0; p0 < kc; p0 += W)
      for (Index r0 = 0; r0 < MR; r0 += W)
        V::transpose_block(a + r0 * lda + p0, lda, std::max<Index>(0, std::min(W, mr - r0)),
                           std::min(W, kc - p0), dst + p0 * MR + r0, MR,
                           std::min<Index>(W, MR - r0));
  } else {
    for (Index r = 0; r < mr; ++r) {
      const T* row = a + r * lda;
      for (Index p = 0; p < kc; ++p) dst[p * MR + r] = row[p];
    }
    for (Index p = 0; p < kc; ++p)
      for (Index r = mr; r < MR; ++r) dst[p * MR + r] = T(0);
  }
}

// Packs op(B) rows [0, kc) x columns [0, nc) into kc x PW panels (the last zero-padded), as
// detail::pack_b_block, with the transposing case done by in-register transposes.
template <class V>
TOKENMIX_GEMM_TARGET void gemm_pack_b(bool trans_b, Index kc, Index nc, const typename V::T* src,
                                      Index ldb, typename V::T* dst) {
  using T = typename V::T;
  constexpr Index PW = gemm_panel_width<T>;
  if constexpr (V::has_transpose && V::width == PW) {
    if (trans_b) {
      for (Index j0 = 0; j0 < nc; j0 += PW, dst += kc * PW)
        for (Index p0 = 0; p0 < kc; p0 += PW)
          V::transpose_block(src + j0 * ldb + p0, ldb, std::min(PW, nc - j0),
                             std::min(PW, kc - p0), dst + p0 * PW, PW, PW);
      return;
    }
  }
  if (!trans_b) {
    // Bands of 8 rows: reads stay sequential along each row and each panel receives 512
    // contiguous bytes, whereas row-at-a-time writes land KC * 64 bytes apart (one L1 set).
    const Index full = nc / PW;
    const Index w = nc - full * PW;
    for (Index p0 = 0; p0 < kc; p0 += 8) {
      const Index rows = std::min<Index>(8, kc - p0);
      for (Index j = 0; j < full; ++j) {
        T* out = dst + j * kc * PW + p0 * PW;
        const T* in = src + p0 * ldb + j * PW;
        for (Index p = 0; p < rows; ++p)
          std::memcpy(out + p * PW, in + p * ldb, sizeof(T) * PW);  // one cache line
      }
      if (w > 0)
        for (Index p = p0; p < p0 + rows; ++p) {
          T* last = dst + full * kc * PW + p * PW;
          const T* row = src + p * ldb + full * PW;
          for (Index j = 0; j < w; ++j) last[j] = row[j];
          for (Index j = w; j < PW; ++j) last[j] = T(0);
        }
    }
    return;
  }
  pack_b_block(trans_b, kc, nc, src, ldb, dst);
}

// x[0, n) = act(x) with this ISA's vector activation (the one the epilogue uses).
template <class V>
TOKENMIX_GEMM_TARGET void activate_span(Activation act, typename V::T* x, Index n) {
  constexpr int W = V::width;
  Index i = 0;
  if constexpr (has_gelu_ops<V>::value) {
    // Four vectors at a time, their chains interleaved (VecGroup).
    for (; i + 4 * W <= n; i += 4 * W) {
      typename V::reg group[4];
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) group[j] = V::loadu(x + i + j * W);
      activate_vectors<V, 4>(act, group);
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) V::storeu(x + i + j * W, group[j]);
    }
  }
  for (; i < n; i += W) {
    const typename V::mask m = V::first(n - i);
    V::store(x + i, activate_vector<V>(act, V::load(x + i, m)), m);
  }
}

// Whether V can broadcast from a scaled-index address (see gemm_tile's Scaled).
template <class V, class = void>
struct has_broadcast_scaled : std::false_type {};
template <class V>
struct has_broadcast_scaled<
    V, decltype(void(V::template broadcast_scaled<1>(static_cast<const typename V::T*>(nullptr), 0)))>
    : std::true_type {};

template <class V, int MR_, int NV_>
struct GemmKernel {
  using T = typename V::T;
  static constexpr int MR = MR_;
  static constexpr int NR = NV_ * V::width;
  using Vec = V;
  static void activate(Activation act, T* x, Index n) { activate_span<V>(act, x, n); }
  static void pack_a(bool trans_a, const T* a, Index lda, Index mr, Index kc, T* dst) {
    gemm_pack_a<V, MR_>(trans_a, a, lda, mr, kc, dst);
  }
  static void pack_b(bool trans_b, Index kc, Index nc, const T* src, Index ldb, T* dst) {
    gemm_pack_b<V>(trans_b, kc, nc, src, ldb, dst);
  }
  // Columns per tile for a sliver of `rows` rows over B read in place (direct B): wider than
  // NR for slivers of at most 4 rows. Such a sliver does only 2 * rows FMAs per B row an NR
  // tile reads, and rows of B read in place lie ldb apart (often on another page): the
  // row-by-row fetch, not the FMAs, set the pace. Wider tiles do more FMAs per B row fetched
  // (20 and 16 accumulators; 12 B pointers for two rows ran out of general registers).
  // The wide forms are 2- and 4-row tiles; wide_nv gives their vectors, for the driver's
  // step (wide_cols) and the tile dispatch alike.
  static constexpr int wide_nv(Index rows) {
    if constexpr (MR_ > 8 && NV_ == 2) {
      if (rows <= 2) return 8;
      if (rows <= 4) return 5;
    }
    return NV_;
  }
  static constexpr Index wide_cols(Index rows) { return wide_nv(rows) * V::width; }
  // Rows the tile computes for a sliver of `rows` rows (all MR but the last): kernels with
  // MR > 8 run a sliver of at most 8 or 4 rows as an 8- or 4-row tile (m = 64 is 4 slivers
  // of 14 and 8 rows: the full tile would spend 9% of its FMAs on padding). The driver's
  // sliver heights (GemmBlocking::sliver_rows) and the dispatch in rows() both read it.
  static constexpr int tile_rows(Index rows) {
    if constexpr (MR_ > 8) {
      if (rows <= 4) return 4;
      if (rows <= 8) return 8;
    }
    return MR_;
  }
  static void tile(const GemmTile<T>& t, GemmB mode, bool direct_a = false) {
    if constexpr (wide_nv(4) != NV_) {
      if (t.nr > NR && mode != GemmB::pack) {  // a wide tile (wide_cols)
        if (t.mr <= 2) return run_wide<wide_nv(2), 2>(t, mode, direct_a);
        return run_wide<wide_nv(4), 4>(t, mode, direct_a);
      }
    }
    // The narrowest last tiles of packed operands run with vectors along the rows.
    if constexpr (V::width >= 4 && NV_ * V::width >= 16) {
      if (mode == GemmB::packed && !direct_a && t.nr <= 8 &&
          t.b_off + 8 <= gemm_panel_width<T>) {
        if (t.nr <= 4) return gemm_tile_cols<V, MR_, 4>(t);
        return gemm_tile_cols<V, MR_, 8>(t);
      }
    }
    // A last tile no wider than one vector runs the one-vector kernel: same arithmetic per
    // element, half the wasted lanes (n = 196 is 6 tiles of 32 and 4 columns).
    if (NV_ > 1 && t.nr <= V::width)
      rows<1>(t, mode, direct_a);
    else
      rows<NV_>(t, mode, direct_a);
  }

 private:
  // The tile of tile_rows(t.mr) rows.
  template <int NV>
  static void rows(const GemmTile<T>& t, GemmB mode, bool direct_a) {
    if constexpr (MR_ > 8) {
      switch (tile_rows(t.mr)) {
        case 4: return run<NV, 4>(t, mode, direct_a);
        case 8: return run<NV, 8>(t, mode, direct_a);
        default: break;
      }
    }
    run<NV, MR_>(t, mode, direct_a);
  }
  template <int NV, int R>
  static void run(const GemmTile<T>& t, GemmB mode, bool direct_a) {
    switch (mode) {
      case GemmB::packed: return run_mode<NV, R, GemmB::packed, false>(t, direct_a);
      case GemmB::in_place: return run_mode<NV, R, GemmB::in_place, false>(t, direct_a);
      case GemmB::pack:
        // A whole tile that packs B needs no masks: masked loads and stores measured
        // 1.3..3.4% slower over the whole call at 196..512-row shapes (the packing sliver
        // is one in 14..37).
        if (t.nr == NV * V::width) return run_mode<NV, R, GemmB::pack, true>(t, direct_a);
        return run_mode<NV, R, GemmB::pack, false>(t, direct_a);
    }
  }
  template <int NV, int R>
  static void run_wide(const GemmTile<T>& t, GemmB mode, bool direct_a) {
    if (mode == GemmB::packed) {  // whole tiles: B read without masks
      if (direct_a) return gemm_tile<V, R, NV, GemmB::packed, true, MR_>(t);
      return gemm_tile<V, R, NV, GemmB::packed, false, MR_>(t);
    }
    if (direct_a) return gemm_tile<V, R, NV, GemmB::in_place, true, MR_>(t);
    gemm_tile<V, R, NV, GemmB::in_place, false, MR_>(t);
  }
  template <int NV, int R, GemmB Mode, bool Full>
  static void run_mode(const GemmTile<T>& t, bool direct_a) {
    // Scaled addressing for whole slivers in the two common modes only (in_place tiles are
    // the few last ones of a direct-B call): each instantiation costs compile time.
    if constexpr (has_broadcast_scaled<V>::value && R == MR_ && Mode != GemmB::in_place) {
      if (direct_a && t.mr == R) return gemm_tile<V, R, NV, Mode, true, MR_, true, Full>(t);
    }
    if (direct_a) return gemm_tile<V, R, NV, Mode, true, MR_, false, Full>(t);
    gemm_tile<V, R, NV, Mode, false, MR_, false, Full>(t);
  }
};

// A kernel for C 49..64 floats wide (ViT's 64-wide heads, 4096x64x64): a 7 x 4-vector
// tile covers the whole width, so each A row is read once and each C row written once,
// where 14 x 2 tiles read every A sliver in place twice, the second time from L1 but the
// first from L2 with only two tiles to spread it over. A is always read in place (C is
// never wider than 8 tiles), so only those tile forms are instantiated.
template <class V>
struct GemmNarrowKernel {
  using T = typename V::T;
  static constexpr int MR = 7;
  static constexpr int NR = 4 * V::width;
  using Vec = V;
  static void pack_a(bool trans_a, const T* a, Index lda, Index mr, Index kc, T* dst) {
    gemm_pack_a<V, MR>(trans_a, a, lda, mr, kc, dst);
  }
  static void pack_b(bool trans_b, Index kc, Index nc, const T* src, Index ldb, T* dst) {
    gemm_pack_b<V>(trans_b, kc, nc, src, ldb, dst);
  }
  static constexpr Index wide_cols(Index) { return NR; }
  static constexpr int tile_rows(Index) { return MR; }
  static void tile(const GemmTile<T>& t, GemmB mode, bool) {
    if constexpr (has_broadcast_scaled<V>::value) {
      if (t.mr == MR && mode != GemmB::in_place) {
        if (mode == GemmB::packed) return gemm_tile<V, MR, 4, GemmB::packed, true, MR, true>(t);
        if (t.nr == NR) return gemm_tile<V, MR, 4, GemmB::pack, true, MR, true, true>(t);
        return gemm_tile<V, MR, 4, GemmB::pack, true, MR, true>(t);
      }
    }
    switch (mode) {
      case GemmB::packed: return gemm_tile<V, MR, 4, GemmB::packed, true>(t);
      case GemmB::in_place: return gemm_tile<V, MR, 4, GemmB::in_place, true>(t);
      case GemmB::pack: return gemm_tile<V, MR, 4, GemmB::pack, true>(t);
    }
  }
};

}  // namespace TOKENMIX_GEMM_NS
}  // namespace detail
}  // namespace tokenmix

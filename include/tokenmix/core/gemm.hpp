#pragma once
// General matrix multiply with fused epilogues: the one compute core every layer runs on.
//
//   C (m x n) = epilogue(alpha * op(A) * op(B) + beta * C)
//
// All operands are row-major with a leading dimension; op(X) is X or X^T, so column-major
// operands are handled as transposes of row-major ones. beta == 0 never reads C.
//
// Structure (BLIS-style, with the roles of the caches chosen for row-major C):
//   pc (KC rows of op(B))   -> ic (MC rows of A: packed once per pc into MR-row slivers)
//   -> jc (NC columns: a KC x NC block of B, packed into 64-byte panels, in L2 or L3)
//   -> ir (MR rows: one KC x MR sliver of packed A reused across the jr sweep, in L1 or L2)
//   -> jr (NR columns: the micro-kernel streams a KC x NR sliver of B from L2).
// Vectors run along n (C's contiguous dimension); A values are broadcast. The micro-kernels
// and per-ISA vector code are in gemm_kernels.hpp / gemm_microkernel.hpp.
//
// Light paths, so small problems are not dominated by packing:
//  - B row-major and few rows of C (<= 4 slivers): B is read in place, never packed, and
//    slivers of at most 4 rows take tiles 5 or 8 vectors wide instead of 2;
//  - B row-major otherwise: the first A sliver's kernels read B in place and store it into
//    the packed panels as they go (no separate packing pass);
//  - narrow C (<= 8 tiles wide), and a row-major A whose rows are not a multiple of 4 KB
//    apart unless B is a pre-packed weight: A is read in place instead of packed;
//  - a weight packed once with pack_b() skips B packing altogether.
// Threads split C into whole-tile row or column ranges (no barriers); below ~4 MFLOP per
// thread the call stays on the calling thread. Scratch comes from ScratchFrame, so a warm
// call allocates nothing.
//
// Determinism: every element of C is computed by the same chain of fused multiply-adds in
// the same k order whatever the tiling, the thread count or whether B was packed ahead of
// time, so results are bit-identical across thread counts and between gemm and gemm_packed.
// They differ between ISAs (the scalar path does not fuse multiply and add).

#include <algorithm>
#include <cstdint>
#include <functional>
#include <type_traits>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/gemm_kernels.hpp"
#include "tokenmix/core/isa.hpp"
#include "tokenmix/core/packed_matrix.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/core/thread_pool.hpp"
#include "tokenmix/core/threads.hpp"
#include "tokenmix/core/workspace.hpp"

namespace tokenmix {
namespace detail {

inline const char* trans_name(Trans t) { return t == Trans::N ? "N" : "T"; }

constexpr Index round_up_index(Index x, Index to) { return (x + to - 1) / to * to; }

// Cache blocking for one kernel K (MR x NR register tile over scalar T). Cache sizes are
// those of the machine it is tuned on (AMD Zen 5: 48 KB L1d and 1 MB L2 per core).
template <class K>
struct GemmBlocking {
  using T = typename K::T;
  static constexpr Index MR = K::MR;
  static constexpr Index NR = K::NR;
  static constexpr Index PW = gemm_panel_width<T>;
  static constexpr Index KC = gemm_kc<T>;
  // Column unit of the N loops: tiles never straddle a packed panel boundary.
  static constexpr Index NU = NR > PW ? NR : PW;
  static constexpr Index NC = round_up_index(std::is_same<T, float>::value ? 512 : 512, NU);
  // Rows of A packed per ic block: m up to 2048 in one block (rounded up, not down: with
  // MR = 14, 2044 left m = 2048 a 4-row block that packed all of B a second time).
  static constexpr Index MC = round_up_index(2048, MR);

  static constexpr std::size_t l2 = 1024 * 1024;
  static_assert(NR % PW == 0 || PW % NR == 0, "a tile must cover whole panels or divide one");
  static_assert(NC % NR == 0 && NC % PW == 0, "NC must be a whole number of tiles and panels");
  static_assert(MC % MR == 0, "MC must be a whole number of slivers");

  // Rows of the A sliver that starts where `rem` rows of a block remain: MR, except that with
  // B packed (tail_in_eights) the last MR + 1..16 rows go as two 8-row slivers where the
  // kernel has an 8-row tile and its tiles would otherwise compute more than 16 rows
  // (K::tile_rows): for MR = 14, 15..16 rows, not 14 and a 4-row tile computing 18.
  // Paired in-process, 15 pairs: 128x768x128 +1.6%,
  // 128x512x512 +1.5%, 197x1536x384 +0.8%, 197x384x1536 +0.7%, 197x768x384 +0.1% (a first
  // run: +1.9%, +2.0%, 197x768x384 +1.4%). With B read in place (few rows of C) each sliver
  // streams B from where it lies, and the split lost (two binaries alternated): 30x768x768
  // (14 + 8 + 8 instead of 14 + 14 + 2) -8.5%. Three 8-row slivers for 23..24 rows instead
  // of two of 14 lost too, one more pass over B: 24x768x768 -15%.
  static constexpr Index sliver_rows(Index rem, bool tail_in_eights) {
    if (tail_in_eights && rem > MR && rem <= 16 && K::tile_rows(8) == 8 &&
        MR + K::tile_rows(rem - MR) > 16)
      return 8;
    return rem < MR ? rem : MR;
  }
  // The A sliver the jr loop reuses stays in L1 at k <= gemm_l1_sliver_k; longer slivers stream
  // from L2 with the B sliver (see gemm_kc). The B block swept once per A sliver: KC x NC
  // floats, 2 MB at KC 1024, streams from L3 then. NC = 256 (a 1 MB block) was no better at
  // KC 1024: against KC 512 it gave a median +0.8% over eight shapes (2048^3 +0.8%,
  // 196x512x2048 -3.5%) where NC 512 gave +1.5% (+2.7%, -0.6%), 13 pairs each. At KC 512, a
  // 512 x 512 block filled the 1 MB L2, and NC = 256 was no faster there: in-process A/B,
  // 101 pairs, bit-identical, -2.1% (1024x768x1024) .. +0.8% (512x3072x768) on the eleven
  // shapes with n > 256 tried, so the wider block and its fewer B passes stay. NC = 384 was
  // no better either (-0.9..+1.3% on six shapes from 512^3 to 2048^3, 11-15 pairs), nor were
  // smaller A blocks at 2048^3, which pack B once per block (MC = 1022 -2.5%, 518 -1.3%).
};

template <class T>
struct GemmCall {
  bool trans_a, trans_b;
  Index m, n, k;
  T alpha;
  const T* a;
  Index lda;
  const T* b;  // null when packed is set
  Index ldb;
  const PackedMatrix<T>* packed;
  T beta;
  T* c;
  Index ldc;
  Epilogue<T> epilogue;
};

// Whole computation restricted to C rows [i0, i1) and columns [j0, j1); j0 is a multiple of
// NU. Runs on one thread with its own scratch.
template <class K>
void gemm_chunk(const GemmCall<typename K::T>& g, Index i0, Index i1, Index j0, Index j1) {
  using T = typename K::T;
  using Bk = GemmBlocking<K>;
  constexpr Index MR = Bk::MR, NR = Bk::NR, PW = Bk::PW, KC = Bk::KC, NC = Bk::NC, MC = Bk::MC;
  if (i0 >= i1 || j0 >= j1) return;

  // Few A slivers would not repay packing B: read B in place when it is row-major.
  const bool direct_b = g.packed == nullptr && !g.trans_b && (i1 - i0) <= 4 * MR;
  const bool pack_b_here = g.packed == nullptr && !direct_b;
  // Narrow C reuses each A sliver for only a few tiles, too few to repay packing it: read A
  // in place then. Measured on a loaded machine: the A transposes take ~8% of the time at
  // n = 196..256 and reading A in place there gained mostly 4..12% (k = 196..1024); at
  // n = 1536 it lost then, on an earlier kernel. Rows a multiple of 4 KB apart share L1 sets,
  // yet for narrow C reading them in place still beats the transposes (best of paired runs:
  // 256x64x1024 143 vs 112 GFLOP/s, 512x128x2048 141 vs 121, 512x256x1024 145 vs 137,
  // k = 4096 and 1024x256x1024 even).
  // Wider C reads a row-major A in place too, unless B is a pre-packed weight (column order
  // below wants packed A) or A's rows are a multiple of 4 KB apart. Paired in-process, one
  // thread, 11-21 pairs, bit-identical: 256x768x256 +3.7%, 256x768x768 +3.8%, 512x1536x256
  // +3.4%, 512^3 +2.8%, 196x768x384 +1.9%, 196x1536x256 +1.4%, 196x2048x512 +1.4%, 512x768x512
  // +1.4%, 64x768x64, 128x768x128 and 512x3072x768 +0.3..0.7%; doubles 512^3 +2.2%. Two
  // threads: 196x768x384 +3%, 1536^3 +3.8%, 512^3 -1.7%. Rows 4 KB apart all fall in one L1 set:
  // in place, two threads at 1024^3 and 2048x2040x2048 ran at 240 instead of 370 GFLOP/s (one
  // thread: -1.5..+2%), so those keep the transposes, as does a transposed A (its k steps are
  // lda apart, where a packed sliver is contiguous). Packing A inside each sliver's first tile
  // instead (that tile reads A in place and stores every broadcast into the sliver) was
  // neutral over 17 shapes (median 1.002; 64x768x64 -6%): reading 14 strided rows from memory
  // made that tile cost what the transposes saved (3x a normal tile at 2048^3), and
  // prefetching those rows ahead did not change that.
  const bool direct_a =
      (j1 - j0) <= 8 * NR ||
      (g.packed == nullptr && !g.trans_a && (g.lda * Index(sizeof(T))) % 4096 != 0);
  const Index k = g.alpha == T(0) ? 0 : g.k;  // alpha == 0 reads neither A nor B
  const Index kc_step = gemm_kc_for<T>(k);  // the same cut as PackedMatrix's
  const Index kc_max = std::max<Index>(1, std::min(kc_step, k));
  // Row-major B is packed in a pass of its own (copies by bands of rows) when B's rows are
  // a multiple of 4 KB apart, or when k spans several blocks and C is wider than one NC
  // block; otherwise the first A sliver's kernels pack it as they read it (GemmB::pack).
  // Measured: reading B in place row by row is slow when the rows share L1 sets. With
  // several k blocks the fused packing gained where one block spans C (paired in-process,
  // bit-identical: 196x256x768 +4.5%, 196x512x2048 +3.6%, 768x384x1536 +2%, 256x512x768
  // and 512x256x2048 +1%) but lost on wider C (512x768x3072 -3%, 2048x768x2048 -1.5%).
  const bool separate_pack =
      (g.k > KC && j1 - j0 > NC) || (g.ldb * Index(sizeof(T))) % 4096 == 0;
  ScratchFrame frame;
  // Packed slivers lie MR * kc apart whatever their rows (sliver s at a_buf + s * MR * kc).
  T* a_buf = direct_a ? nullptr
                      : frame.take<T>(static_cast<std::size_t>(
                            std::min(MC, round_up_index(i1 - i0, MR)) * kc_max));
  T* b_buf = pack_b_here ? frame.take<T>(static_cast<std::size_t>(
                               kc_max * round_up_index(std::min(NC, j1 - j0), PW)))
                         : nullptr;
  const Epilogue<T>& e = g.epilogue;
  // No epilogue work: the tiles get none, so their stores skip the per-vector field tests.
  const bool has_epilogue = e.col_bias || e.row_bias || e.act != Activation::none ||
                            e.col_scale || e.residual || e.multiplier;
  GemmEpilogueTile<T> ep{};
  GemmTile<T> t{};
  t.a_rs = g.trans_a ? 1 : g.lda;
  t.a_ps = g.trans_a ? g.lda : 1;
  t.alpha = g.alpha;
  t.ldc = g.ldc;

  // Sweep a block column by column (each B panel through every A sliver) instead of sliver by
  // sliver when B is a pre-packed weight and the packed A block fits in L2 (half of it until
  // KC went from 512 to 1024 floats: at half, 196-row blocks of k = 768..1024 no longer
  // qualified and forward at batch 1 lost 1..5%; at all of L2, 5 alternating runs, speed is
  // 0.995..1.011 of the code before (KC 512, C fetched at a tile's start): mixer_s16_224
  // 1.011, resmlp_12_224 0.995, vit_small_patch16_224 1.008, gmlp_s16_224 and fnet-base_n512
  // 1.009). A weight
  // used for a few hundred rows (batch 1 of the image models) comes from DRAM; sliver by
  // sliver, the first sliver reads the whole B block at the kernel's pace, faster than DRAM
  // delivers, while column by column each panel is read once per ~15 tiles and the hardware
  // prefetcher keeps ahead of it. Paired in-process A/B (31 pairs, same binary, medians):
  // 197x1536x384 +4.9% with weights cycling through 120 copies (cold), +2.4% on one (warm);
  // 196x512x2048 cold +3.7%; 128x768x128 warm +6.9%; other b1 shapes -1..+2% (noise there is
  // about 2%); forward at batch 1 (21 pairs): vit_small_patch16_224 +4.3%, mixer_s16_224
  // +2.2%, resmlp_12_224 +1.7%, gmlp_s16_224 +0.6% (batch 8 does not qualify: +0.5%, noise).
  // Not taken: A read in place (narrow C, measured neutral), B packed in the call (warm by
  // construction; 512x1536x256 -2%), and a software prefetch of the next sliver into L2, a
  // slice before each tile of the column (-3.5% cold and -2.5% warm at 197x1536x384 and
  // 196x512x2048, 11-15 pairs; presumably the hardware prefetcher already streams it).
  auto column_order = [&](Index mc, Index kc) {
    return g.packed != nullptr && !direct_a && mc > MR &&
           static_cast<std::size_t>(mc * kc) * sizeof(T) <= Bk::l2;
  };
  const Index k_blocks = std::max<Index>(1, (k + kc_step - 1) / kc_step);
  for (Index kb = 0; kb < k_blocks; ++kb) {
    const Index pc = kb * kc_step;
    const Index kc = std::min(kc_step, k - pc);
    const bool first = kb == 0, last = kb + 1 == k_blocks;
    t.k = kc;
    t.beta = first ? g.beta : T(1);
    t.read_c = !first || g.beta != T(0);
    t.epilogue = last && has_epilogue ? &ep : nullptr;

    for (Index ic = i0; ic < i1; ic += MC) {
      const Index mc = std::min(MC, i1 - ic);
      // f(ir, s, rows) for each sliver s of the block, its first row ir and its rows.
      const auto for_each_sliver = [mc, direct_b](auto&& f) {
        for (Index ir = 0, s = 0; ir < mc; ++s) {
          const Index rows = Bk::sliver_rows(mc - ir, !direct_b);
          f(ir, s, rows);
          ir += rows;
        }
      };
      if (!direct_a)
        for_each_sliver([&](Index ir, Index s, Index rows) {
          const Index row = ic + ir;
          const T* src = g.trans_a ? g.a + pc * g.lda + row : g.a + row * g.lda + pc;
          K::pack_a(g.trans_a, src, g.lda, rows, kc, a_buf + s * MR * kc);
        });
      for (Index jc = j0; jc < j1; jc += NC) {
        const Index nc = std::min(NC, j1 - jc);
        const T* bb;
        Index b_rs, b_ps;
        // Row-major B not packed yet is packed by the first A sliver's kernels as they
        // read it (GemmB::pack); a transposed B is packed up front with transposes.
        bool fuse_pack = false;
        if (g.packed) {
          bb = g.packed->block(pc) + (jc / PW) * kc * PW;
          b_rs = PW;
          b_ps = kc * PW;
        } else if (direct_b) {
          bb = g.b + pc * g.ldb + jc;
          b_rs = g.ldb;
          b_ps = PW;
        } else if (!g.trans_b && !separate_pack) {
          fuse_pack = true;
          bb = g.b + pc * g.ldb + jc;
          b_rs = g.ldb;
          b_ps = PW;
        } else {
          K::pack_b(g.trans_b, kc, nc, g.trans_b ? g.b + jc * g.ldb + pc : g.b + pc * g.ldb + jc, g.ldb, b_buf);
          bb = b_buf;
          b_rs = PW;
          b_ps = kc * PW;
        }
        t.b_pack_ps = kc * PW;
        // The first A sliver reads B as set above; the later ones read the panels it packed
        // when it packed them.
        const T* const b_later = fuse_pack ? b_buf : bb;
        const Index b_later_rs = fuse_pack ? PW : b_rs, b_later_ps = fuse_pack ? kc * PW : b_ps;
        auto run_tile = [&](Index ir, Index s, Index rows, Index jr, Index width) {
          const Index row = ic + ir, col = jc + jr;
          const bool packing = fuse_pack && ir == 0;
          t.a = direct_a ? (g.trans_a ? g.a + pc * g.lda + row : g.a + row * g.lda + pc)
                         : a_buf + s * MR * kc;
          t.mr = rows;
          t.b_rs = ir == 0 ? b_rs : b_later_rs;
          t.b_ps = ir == 0 ? b_ps : b_later_ps;
          t.nr = std::min<Index>(width, nc - jr);
          t.b = (ir == 0 ? bb : b_later) + (jr / PW) * t.b_ps;
          t.b_off = jr % PW;
          if (fuse_pack) t.b_pack = b_buf + (jr / PW) * kc * PW;
          t.c = g.c + row * g.ldc + col;
          if (last && has_epilogue) {
            ep.col_bias = e.col_bias ? e.col_bias + col : nullptr;
            ep.row_bias = e.row_bias ? e.row_bias + row : nullptr;
            ep.act = e.act;
            ep.col_scale = e.col_scale ? e.col_scale + col : nullptr;
            ep.residual = e.residual ? e.residual + row * e.ld_residual + col : nullptr;
            ep.ld_residual = e.ld_residual;
            ep.multiplier = e.multiplier ? e.multiplier + row * e.ld_multiplier + col : nullptr;
            ep.ld_multiplier = e.ld_multiplier;
          }
          K::tile(t, packing ? GemmB::pack
                     : direct_b && t.nr < width ? GemmB::in_place
                                             : GemmB::packed,  // full rows need no mask
                  direct_a);
        };
        if (column_order(mc, kc)) {
          for (Index jr = 0; jr < nc; jr += NR)
            for_each_sliver([&](Index ir, Index s, Index rows) { run_tile(ir, s, rows, jr, NR); });
        } else {
          for_each_sliver([&](Index ir, Index s, Index rows) {
            // Few-row slivers over B read in place take wider tiles (K::wide_cols).
            const Index width = direct_b ? K::wide_cols(rows) : NR;
            for (Index jr = 0; jr < nc; jr += width) run_tile(ir, s, rows, jr, width);
          });
        }
      }
    }
  }
}

template <class K>
void gemm_driver(GemmCall<typename K::T> g, int threads) {
  using T = typename K::T;
  using Bk = GemmBlocking<K>;
  constexpr Index MR = Bk::MR, NU = Bk::NU;
  if (g.m == 0 || g.n == 0) return;

  ScratchFrame frame;
  // A residual or multiplier overlapping C would be read after earlier k blocks overwrote
  // it with partial sums (or, if offset, after a neighbouring tile wrote it): work from a
  // copy then.
  const auto copy_if_overlapping = [&](const T*& operand, Index& ld) {
    if (!operand) return;
    const auto lo = [](const T* p) { return reinterpret_cast<std::uintptr_t>(p); };
    const bool overlap = lo(operand) < lo(g.c + (g.m - 1) * g.ldc + g.n) &&
                         lo(g.c) < lo(operand + (g.m - 1) * ld + g.n);
    const bool same = operand == g.c && ld == g.ldc;
    const bool one_block = g.alpha == T(0) || g.k <= gemm_kc<T>;
    if (overlap && !(same && one_block)) {
      T* copy = frame.take<T>(static_cast<std::size_t>(g.m * g.n));
      for (Index i = 0; i < g.m; ++i)
        std::copy(operand + i * ld, operand + i * ld + g.n, copy + i * g.n);
      operand = copy;
      ld = g.n;
    }
  };
  copy_if_overlapping(g.epilogue.residual, g.epilogue.ld_residual);
  copy_if_overlapping(g.epilogue.multiplier, g.epilogue.ld_multiplier);

  // Waking a helper costs microseconds: below ~4 MFLOP per thread it does not pay.
  const double flops = 2.0 * double(g.m) * double(g.n) * double(std::max<Index>(g.k, 1));
  int workers = num_threads(threads);
  workers = static_cast<int>(std::min<double>(workers, std::max(1.0, flops / 4e6)));
  if (workers <= 1) {
    gemm_chunk<K>(g, 0, g.m, 0, g.n);
    return;
  }
  // Split C into `workers` row or column ranges of whole tiles, whichever costs a thread
  // less: its share of the flops over the balance of the split, plus the packing the split
  // repeats. With columns every thread packs all of A (unless its columns are few enough to
  // read A in place), with rows all of B (unless B is packed ahead or read in place). Costs
  // per packed element in flops, from a single-thread profile at 1024^3 (A transposes 4.5%
  // of the time, B copies 2.7%): ~90 for a transpose, ~55 for a copy. Columns used to win
  // every tie; at 1024^3 (now rows) the pair of threads spent less CPU time per call with
  // rows: one-thread CPU time / (two-thread CPU time / 2) was 1.83..2.15 in 5 runs, against
  // 1.70..1.86 in 9 with columns. The model changes the split only for large square-ish
  // shapes (1024^3, 2048^3, 1024x768x1024, 2048x768x2048 of the benchmark). It still charges
  // the transposes where gemm_chunk now reads A in place: its splits there measured level with
  // columns always (two threads, 5 pairs: 1536^3 405 vs 409 GFLOP/s, 512x3072x768 409 vs 404,
  // 196x768x384 434 vs 435, 512^3 432 vs 441).
  const Index tiles_n = (g.n + NU - 1) / NU, tiles_m = (g.m + MR - 1) / MR;
  const auto balance = [&](Index tiles) {
    const Index per = (tiles + workers - 1) / workers;
    return double(tiles) / double(per * workers);
  };
  const Index n_part = (tiles_n + workers - 1) / workers * NU;
  const Index m_part = (tiles_m + workers - 1) / workers * MR;
  const double pack_a = 90.0 * double(g.m) * double(g.k);
  const double pack_b = (g.trans_b ? 90.0 : 55.0) * double(g.k) * double(g.n);
  const auto b_packed = [&](Index rows) { return !g.packed && (g.trans_b || rows > 4 * MR); };
  const double share = flops / workers;
  const double cost_n = share / balance(tiles_n) + (n_part > 8 * Bk::NR ? pack_a : 0.0) +
                        (b_packed(g.m) ? pack_b / workers : 0.0);
  const double cost_m = share / balance(tiles_m) + (g.n > 8 * Bk::NR ? pack_a / workers : 0.0) +
                        (b_packed(m_part) ? pack_b : 0.0);
  const bool split_n = cost_n <= cost_m;
  const Index tiles = split_n ? tiles_n : tiles_m;
  const Index unit = split_n ? NU : MR;
  const Index extent = split_n ? g.n : g.m;
  const int chunks = static_cast<int>(std::min<Index>(workers, tiles));
  ThreadPool::global().parallel_for(chunks, chunks, [&](Index chunk) {
    const Index lo = std::min(extent, (tiles * chunk / chunks) * unit);
    const Index hi = std::min(extent, (tiles * (chunk + 1) / chunks) * unit);
    if (split_n)
      gemm_chunk<K>(g, 0, g.m, lo, hi);
    else
      gemm_chunk<K>(g, lo, hi, 0, g.n);
  });
}

template <class T>
void gemm_dispatch(const GemmCall<T>& g, int threads) {
#if defined(TOKENMIX_HAVE_X86_DISPATCH)
  // C 49..64 floats wide: one 7 x 4-vector tile spans it (see GemmNarrowKernel; measured for
  // float only). The choice depends on n and the ISA only, so results stay identical across
  // thread counts and between gemm and gemm_packed.
  if constexpr (std::is_same<T, float>::value) {
    using Narrow = avx512::GemmNarrowKernel<Avx512F32>;
    if (active_isa() == Isa::avx512 && g.n > 3 * Narrow::NR / 4 && g.n <= Narrow::NR)
      return gemm_driver<Narrow>(g, threads);
  }
#endif
  with_gemm_kernel<T>(active_isa(),
                      [&](auto kernel) { gemm_driver<decltype(kernel)>(g, threads); });
}

template <class T>
void check_gemm_sizes(const char* what, Index m, Index n, Index k) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                "gemm: T must be float or double");
  if (m < 0 || n < 0 || k < 0)
    fail<ArgumentError>(what, ": expected non-negative m, n, k, got ", m, ", ", n, ", ", k);
}

}  // namespace detail

// C (m x n, row-major, leading dim ldc) = epilogue(alpha * op(A) * op(B) + beta * C).
// threads: 0 = num_threads() setting.
template <class T>
void gemm(Trans trans_a, Trans trans_b, Index m, Index n, Index k, T alpha, const T* a,
          Index lda, const T* b, Index ldb, T beta, T* c, Index ldc,
          const Epilogue<T>& epilogue = {}, int threads = 0) {
  detail::check_gemm_sizes<T>("gemm", m, n, k);
  detail::GemmCall<T> g{trans_a == Trans::T, trans_b == Trans::T, m, n, k, alpha, a, lda, b,
                        ldb, nullptr, beta, c, ldc, epilogue};
  detail::gemm_dispatch(g, threads);
}

// Eigen-view convenience; checks that op(A), op(B) and C agree and throws ShapeError if not.
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
                             k, "] (trans ", detail::trans_name(trans_a),
                             detail::trans_name(trans_b), "), got op(B) [", kb, ", ", n, "]");
  detail::expect_shape("gemm", "C", m, n, c.rows(), c.cols());
  gemm<T>(trans_a, trans_b, m, n, k, alpha, a.data(), a.outerStride(), b.data(),
          b.outerStride(), beta, c.data(), c.outerStride(), epilogue, threads);
}

// Packs op(B) (k x n) once, e.g. a weight at load time, for any number of gemm_packed calls.
template <class T>
PackedMatrix<T> pack_b(Trans trans_b, Index k, Index n, const T* b, Index ldb) {
  if (k < 0 || n < 0)
    detail::fail<ArgumentError>("pack_b: expected non-negative k, n, got ", k, ", ", n);
  return PackedMatrix<T>(trans_b == Trans::T, k, n, b, ldb);
}

// C (m x n) = epilogue(op(A) * B + beta * C) with B packed by pack_b (alpha is 1).
template <class T>
void gemm_packed(Trans trans_a, Index m, const T* a, Index lda, const PackedMatrix<T>& b,
                 T beta, T* c, Index ldc, const Epilogue<T>& epilogue = {}, int threads = 0) {
  detail::check_gemm_sizes<T>("gemm_packed", m, b.cols(), b.rows());
  detail::GemmCall<T> g{trans_a == Trans::T, false, m, b.cols(), b.rows(), T(1), a, lda,
                        nullptr, 0, &b, beta, c, ldc, epilogue};
  detail::gemm_dispatch(g, threads);
}

#if defined(TOKENMIX_SEPARATE_KERNELS)
// The dispatched kernels are compiled in the one translation unit that includes
// tokenmix/instantiate_kernels.hpp, not in every one that calls gemm (see that header).
namespace detail {
extern template void gemm_dispatch<float>(const GemmCall<float>&, int);
extern template void gemm_dispatch<double>(const GemmCall<double>&, int);
}  // namespace detail
#endif

}  // namespace tokenmix

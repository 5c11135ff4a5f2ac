#pragma once
// FFT kernels, written once over a "lanes" type and compiled for every ISA.
//
// The unit of work is a lane vector: W independent transforms side by side, one per SIMD lane
// (16 floats in a zmm register, 8 in a ymm, 1 for the scalar path). A lane element is stored
// as W real parts followed, at a fixed offset, by W imaginary parts (split complex), so every
// butterfly is plain vertical arithmetic with no shuffles. Batches of transforms fill the
// lanes directly (columns of a row-major matrix are already lane vectors); one long transform
// fills them with the four-step split n = m*W.
//
// The vectors are GCC/Clang vector extensions, not intrinsics: the generic code has no target
// of its own and is force-inlined into the small per-ISA entry points in fft.hpp, which carry
// TOKENMIX_TARGET_AVX512 / TOKENMIX_TARGET_AVX2, so one source yields zmm, ymm and scalar
// code from a build without -march. Entry points take only pointers and integers (passing
// vector values across a target boundary would change the ABI).

#include <cstring>
#include <utility>

#include "tokenmix/core/fft_plan.hpp"

#define TOKENMIX_FFT_INLINE __attribute__((always_inline)) inline
// The out-of-line Stockham entry points are called with constant strides from a few places;
// GCC's -O3 (-fipa-cp-clone) then specialises a copy for those constants that ran 4099-point
// Bluestein transforms ~15% slower than the generic one (AVX-512, float). Keep one copy.
#if defined(__GNUC__) && !defined(__clang__)
#define TOKENMIX_FFT_NOCLONE __attribute__((noclone))
#else
#define TOKENMIX_FFT_NOCLONE
#endif
// Loops over a butterfly's points or a block's lanes must be fully unrolled so the lane
// vectors stay in registers; -O2 alone does not do it (half the speed of -O3).
#define TOKENMIX_FFT_UNROLL _Pragma("GCC unroll 32")

// Vector values only ever travel between force-inlined functions, so GCC's note that their
// ABI depends on -mavx512f does not concern any real call; keep it out of users' builds.
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wpsabi"
#elif defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace tokenmix {
namespace detail {
namespace fft {

template <class T, int W>
struct VectorOf {
  typedef T type __attribute__((vector_size(sizeof(T) * W)));
};
template <class T>
struct VectorOf<T, 1> {
  using type = T;
};

template <class T, int W>
struct Lanes {
  using Scalar = T;
  using V = typename VectorOf<T, W>::type;
  static constexpr int width = W;

  TOKENMIX_FFT_INLINE static V load(const T* p) {
    V v;
    std::memcpy(&v, p, sizeof(V));
    return v;
  }
  TOKENMIX_FFT_INLINE static void store(T* p, const V& v) { std::memcpy(p, &v, sizeof(V)); }
  TOKENMIX_FFT_INLINE static T lane(const V& v, int i) {
    T out[W];
    std::memcpy(out, &v, sizeof(V));
    return out[i];
  }
};

template <class O>
struct Engine {
  using T = typename O::Scalar;
  using V = typename O::V;
  static constexpr int W = O::width;
  static constexpr Index E = 2 * W;  // scalars per lane element in scratch buffers

  struct C {
    V re, im;
  };

  TOKENMIX_FFT_INLINE static C ld(const T* p, Index im) { return {O::load(p), O::load(p + im)}; }
  TOKENMIX_FFT_INLINE static void st(T* p, Index im, const C& c) {
    O::store(p, c.re);
    O::store(p + im, c.im);
  }
  TOKENMIX_FFT_INLINE static C add(const C& a, const C& b) { return {a.re + b.re, a.im + b.im}; }
  TOKENMIX_FFT_INLINE static C sub(const C& a, const C& b) { return {a.re - b.re, a.im - b.im}; }
  // a * (wr + i wi) with broadcast twiddle
  TOKENMIX_FFT_INLINE static C mulw(const C& a, const V& wr, const V& wi) {
    return {a.re * wr - a.im * wi, a.re * wi + a.im * wr};
  }
  TOKENMIX_FFT_INLINE static C mul(const C& a, const C& w) {
    return {a.re * w.re - a.im * w.im, a.re * w.im + a.im * w.re};
  }

  // ---- shuffles (identity for W == 1) -------------------------------------------------
  template <int H, int... I>
  TOKENMIX_FFT_INLINE static void transpose_stage(V* r, std::integer_sequence<int, I...>) {
    TOKENMIX_FFT_UNROLL
    for (int i = 0; i < W; ++i) {
      if (i & H) continue;
      const V a = r[i], b = r[i | H];
      // Swapping bit H of the row index with bit H of the column index; doing it for every
      // bit transposes the W x W block.
      r[i] = __builtin_shufflevector(a, b, ((I & H) ? W + (I ^ H) : I)...);
      r[i | H] = __builtin_shufflevector(a, b, ((I & H) ? W + I : (I ^ H))...);
    }
  }
  template <int H>
  TOKENMIX_FFT_INLINE static void transpose_from(V* r) {
    if constexpr (H >= 1) {
      transpose_stage<H>(r, std::make_integer_sequence<int, W>());
      transpose_from<H / 2>(r);
    }
  }
  // r[i] lane j <-> r[j] lane i
  TOKENMIX_FFT_INLINE static void transpose(V* r) {
    if constexpr (W > 1) transpose_from<W / 2>(r);
  }
  template <int... I>
  TOKENMIX_FFT_INLINE static void reverse_impl(V& out, const V& a,
                                               std::integer_sequence<int, I...>) {
    out = __builtin_shufflevector(a, a, (W - 1 - I)...);
  }
  TOKENMIX_FFT_INLINE static V reverse(const V& a) {
    V out = a;
    if constexpr (W > 1) reverse_impl(out, a, std::make_integer_sequence<int, W>());
    return out;
  }
  // Interleaved (re, im) pairs at p (2W scalars) -> split lane element.
  template <int... I>
  TOKENMIX_FFT_INLINE static C deinterleave_impl(const V& a, const V& b,
                                                 std::integer_sequence<int, I...>) {
    return {__builtin_shufflevector(a, b, (2 * I)...), __builtin_shufflevector(a, b, (2 * I + 1)...)};
  }
  TOKENMIX_FFT_INLINE static C load_interleaved(const T* p) {
    if constexpr (W > 1)
      return deinterleave_impl(O::load(p), O::load(p + W), std::make_integer_sequence<int, W>());
    else
      return {p[0], p[1]};
  }
  template <int... I>
  TOKENMIX_FFT_INLINE static void interleave_impl(T* p, const C& c,
                                                  std::integer_sequence<int, I...>) {
    O::store(p, __builtin_shufflevector(c.re, c.im, ((I & 1) ? W + I / 2 : I / 2)...));
    O::store(p + W,
             __builtin_shufflevector(c.re, c.im, ((I & 1) ? W + W / 2 + I / 2 : W / 2 + I / 2)...));
  }
  TOKENMIX_FFT_INLINE static void store_interleaved(T* p, const C& c) {
    if constexpr (W > 1) {
      interleave_impl(p, c, std::make_integer_sequence<int, W>());
    } else {
      p[0] = c.re;
      p[1] = c.im;
    }
  }

  // ---- butterflies (forward, exp(-2 pi i / p)) ---------------------------------------
  template <int P>
  TOKENMIX_FFT_INLINE static void butterfly(C* a) {
    if constexpr (P == 2) {
      const C t = a[1];
      a[1] = sub(a[0], t);
      a[0] = add(a[0], t);
    } else if constexpr (P == 3) {
      const V c = (V{} + static_cast<T>(static_cast<T>(0.86602540378443864676372317075294)));
      const V half = (V{} + static_cast<T>(static_cast<T>(0.5)));
      const C t = add(a[1], a[2]);
      const C d = sub(a[1], a[2]);
      const C mid = {a[0].re - half * t.re, a[0].im - half * t.im};
      a[0] = add(a[0], t);
      a[1] = {mid.re + c * d.im, mid.im - c * d.re};
      a[2] = {mid.re - c * d.im, mid.im + c * d.re};
    } else if constexpr (P == 4) {
      const C t0 = add(a[0], a[2]), t1 = sub(a[0], a[2]);
      const C t2 = add(a[1], a[3]), t3 = sub(a[1], a[3]);
      a[0] = add(t0, t2);
      a[2] = sub(t0, t2);
      a[1] = {t1.re + t3.im, t1.im - t3.re};  // t1 - i t3
      a[3] = {t1.re - t3.im, t1.im + t3.re};  // t1 + i t3
    } else if constexpr (P == 8) {
      // Two radix-4 halves: even outputs from a_k + a_(k+4), odd ones from
      // (a_k - a_(k+4)) w_8^k.
      const V r = (V{} + static_cast<T>(0.70710678118654752440084436210485));
      C e[4], o[4];
      TOKENMIX_FFT_UNROLL
      for (int k = 0; k < 4; ++k) {
        e[k] = add(a[k], a[k + 4]);
        o[k] = sub(a[k], a[k + 4]);
      }
      o[1] = {r * (o[1].re + o[1].im), r * (o[1].im - o[1].re)};  // * (1 - i)/sqrt2
      o[2] = {o[2].im, -o[2].re};                                  // * -i
      o[3] = {r * (o[3].im - o[3].re), -r * (o[3].re + o[3].im)};  // * (-1 - i)/sqrt2
      butterfly<4>(e);
      butterfly<4>(o);
      TOKENMIX_FFT_UNROLL
      for (int k = 0; k < 4; ++k) {
        a[2 * k] = e[k];
        a[2 * k + 1] = o[k];
      }
    } else if constexpr (P == 16) {
      dft_in_registers<16>(a);
    } else if constexpr (P == 5) {
      const V c1 = (V{} + static_cast<T>(static_cast<T>(0.30901699437494742410229341718282)));
      const V c2 = (V{} + static_cast<T>(static_cast<T>(-0.80901699437494742410229341718282)));
      const V s1 = (V{} + static_cast<T>(static_cast<T>(0.95105651629515357211643933337938)));
      const V s2 = (V{} + static_cast<T>(static_cast<T>(0.58778525229247312916870595463907)));
      const C t1 = add(a[1], a[4]), d1 = sub(a[1], a[4]);
      const C t2 = add(a[2], a[3]), d2 = sub(a[2], a[3]);
      const C m1 = {a[0].re + c1 * t1.re + c2 * t2.re, a[0].im + c1 * t1.im + c2 * t2.im};
      const C m2 = {a[0].re + c2 * t1.re + c1 * t2.re, a[0].im + c2 * t1.im + c1 * t2.im};
      const C n1 = {s1 * d1.re + s2 * d2.re, s1 * d1.im + s2 * d2.im};
      const C n2 = {s2 * d1.re - s1 * d2.re, s2 * d1.im - s1 * d2.im};
      a[0] = {a[0].re + t1.re + t2.re, a[0].im + t1.im + t2.im};
      a[1] = {m1.re + n1.im, m1.im - n1.re};
      a[4] = {m1.re - n1.im, m1.im + n1.re};
      a[2] = {m2.re + n2.im, m2.im - n2.re};
      a[3] = {m2.re - n2.im, m2.im + n2.re};
    }
  }

  // DFT of length P over P lane elements held in registers (P = 2, 4, 8, 16, 32).
  // 16 and 32 split as 4 x P/4: DFTs of 4 on stride-P/4 groups, twiddles w_P^(n2 k1),
  // then DFTs of P/4 across the groups; output k1 + 4 k2 lands at index k1 + 4 k2.
  template <int P>
  TOKENMIX_FFT_INLINE static void dft_in_registers(C* a) {
    if constexpr (P == 1) {
      return;
    } else if constexpr (P <= 8) {
      butterfly<P>(a);

    } else {
      constexpr int Q = P / 4;
      C g[Q][4];
      TOKENMIX_FFT_UNROLL
      for (int n2 = 0; n2 < Q; ++n2) {
        TOKENMIX_FFT_UNROLL
        for (int n1 = 0; n1 < 4; ++n1) g[n2][n1] = a[Q * n1 + n2];
        butterfly<4>(g[n2]);
        TOKENMIX_FFT_UNROLL
        for (int k1 = 1; k1 < 4; ++k1) {
          if (n2 == 0) continue;
          // w_P^(n2 k1) from the constant table below (exact in the type's precision)
          const int e = (n2 * k1) % P;
          g[n2][k1] = mulw(g[n2][k1], (V{} + static_cast<T>(root_re<P>(e))),
                           (V{} + static_cast<T>(root_im<P>(e))));
        }
      }
      TOKENMIX_FFT_UNROLL
      for (int k1 = 0; k1 < 4; ++k1) {
        C h[Q];
        TOKENMIX_FFT_UNROLL
        for (int n2 = 0; n2 < Q; ++n2) h[n2] = g[n2][k1];
        dft_in_registers<Q>(h);
        TOKENMIX_FFT_UNROLL
        for (int k2 = 0; k2 < Q; ++k2) a[k1 + 4 * k2] = h[k2];
      }
    }
  }
  // cos / -sin of 2 pi e / P for P | 32, from long-double constants folded at compile time.
  template <int P>
  static constexpr long double root_re(int e) {
    return root32_cos((e * (32 / P)) % 32);
  }
  template <int P>
  static constexpr long double root_im(int e) {
    return -root32_cos(((e * (32 / P)) + 24) % 32);  // -sin x = -cos(x - pi/2)
  }
  static constexpr long double root32_cos(int e) {
    // cos(2 pi e / 32), e = 0..31, by symmetry from the first quadrant.
    constexpr long double q[9] = {1.0L,
                                  0.98078528040323044912618223613424L,
                                  0.92387953251128675612818318939679L,
                                  0.83146961230254523707878837761791L,
                                  0.70710678118654752440084436210485L,
                                  0.55557023301960222474283081394853L,
                                  0.38268343236508977172845998403040L,
                                  0.19509032201612826784828486847702L,
                                  0.0L};
    return e <= 8 ? q[e] : e <= 16 ? -q[16 - e] : e <= 24 ? -q[e - 16] : q[32 - e];
  }

  // Source layouts a pass can read: split lane elements (Src 0), or interleaved (re, im)
  // pairs, W complex values per lane element, as they come from the caller (Src 1), with
  // real and imaginary parts swapped for an inverse transform (Src 2). Reading the caller's
  // array directly saves a copy pass over memory.
  template <int Src>
  TOKENMIX_FFT_INLINE static C ld_src(const T* p, Index sim) {
    if constexpr (Src == 0) {
      return ld(p, sim);
    } else if constexpr (Src == 1) {
      return load_interleaved(p);
    } else {
      const C c = load_interleaved(p);
      return {c.im, c.re};
    }
  }

  template <int P, int Src = 0>
  TOKENMIX_FFT_INLINE static void pass_small(const Stage& sg, const T* tw, const T* src, Index ss,
                                             Index sim, T* dst, Index ds, Index dim) {
    const Index l1 = sg.l1, m = sg.m;
    for (Index j = 0; j < m; ++j) {
      const T* srcj = src + j * l1 * ss;
      T* dstj = dst + j * P * l1 * ds;
      if (j == 0) {
        for (Index s = 0; s < l1; ++s) {
          C a[P];
          TOKENMIX_FFT_UNROLL
          for (int q = 0; q < P; ++q) a[q] = ld_src<Src>(srcj + (m * q * l1 + s) * ss, sim);
          butterfly<P>(a);
          TOKENMIX_FFT_UNROLL
          for (int r = 0; r < P; ++r) st(dstj + (r * l1 + s) * ds, dim, a[r]);
        }
        continue;
      }
      V wr[P - 1], wi[P - 1];
      TOKENMIX_FFT_UNROLL
      for (int r = 1; r < P; ++r) {
        wr[r - 1] = (V{} + static_cast<T>(tw[2 * (j * (P - 1) + r - 1)]));
        wi[r - 1] = (V{} + static_cast<T>(tw[2 * (j * (P - 1) + r - 1) + 1]));
      }
      for (Index s = 0; s < l1; ++s) {
        C a[P];
        TOKENMIX_FFT_UNROLL
        for (int q = 0; q < P; ++q) a[q] = ld_src<Src>(srcj + (m * q * l1 + s) * ss, sim);
        butterfly<P>(a);
        st(dstj + s * ds, dim, a[0]);
        TOKENMIX_FFT_UNROLL
        for (int r = 1; r < P; ++r)
          st(dstj + (r * l1 + s) * ds, dim, mulw(a[r], wr[r - 1], wi[r - 1]));
      }
    }
  }

  template <int Src = 0>
  TOKENMIX_FFT_INLINE static void pass_generic(const Stage& sg, const T* tw, const T* coef,
                                               const T* src, Index ss, Index sim, T* dst, Index ds,
                                               Index dim) {
    const Index l1 = sg.l1, m = sg.m;
    const int p = sg.radix, h = (p - 1) / 2;
    C a[max_generic_radix];
    for (Index j = 0; j < m; ++j) {
      const T* srcj = src + j * l1 * ss;
      T* dstj = dst + j * p * l1 * ds;
      for (Index s = 0; s < l1; ++s) {
        for (int q = 0; q < p; ++q) a[q] = ld_src<Src>(srcj + (m * q * l1 + s) * ss, sim);
        C y0 = a[0];
        for (int q = 1; q <= h; ++q) {
          const C t = add(a[q], a[p - q]), d = sub(a[q], a[p - q]);
          a[q] = t;
          a[p - q] = d;
          y0 = add(y0, t);
        }
        st(dstj + s * ds, dim, y0);
        for (int r = 1; r <= h; ++r) {
          C mr = a[0], nr = {V{}, V{}};
          const T* cs = coef + 2 * (r - 1) * h;
          for (int q = 1; q <= h; ++q) {
            const V c = (V{} + static_cast<T>(cs[2 * (q - 1)])), sn = (V{} + static_cast<T>(cs[2 * (q - 1) + 1]));
            mr.re += c * a[q].re;
            mr.im += c * a[q].im;
            nr.re += sn * a[p - q].re;
            nr.im += sn * a[p - q].im;
          }
          C yr = {mr.re + nr.im, mr.im - nr.re};   // m - i n
          C yp = {mr.re - nr.im, mr.im + nr.re};   // m + i n
          if (j != 0) {
            const T* w1 = tw + 2 * (j * (p - 1) + r - 1);
            const T* w2 = tw + 2 * (j * (p - 1) + (p - r) - 1);
            yr = mulw(yr, (V{} + static_cast<T>(w1[0])), (V{} + static_cast<T>(w1[1])));
            yp = mulw(yp, (V{} + static_cast<T>(w2[0])), (V{} + static_cast<T>(w2[1])));
          }
          st(dstj + (r * l1 + s) * ds, dim, yr);
          st(dstj + ((p - r) * l1 + s) * ds, dim, yp);
        }
      }
    }
  }

  template <int Src = 0>
  TOKENMIX_FFT_INLINE static void run_stage(const Plan<T>& plan, const Stage& sg, const T* src,
                                            Index ss, Index sim, T* dst, Index ds, Index dim) {
    const T* tw = plan.twiddle.data() + sg.twiddle;
    switch (sg.radix) {
      case 2: pass_small<2, Src>(sg, tw, src, ss, sim, dst, ds, dim); break;
      case 3: pass_small<3, Src>(sg, tw, src, ss, sim, dst, ds, dim); break;
      case 4: pass_small<4, Src>(sg, tw, src, ss, sim, dst, ds, dim); break;
      case 5: pass_small<5, Src>(sg, tw, src, ss, sim, dst, ds, dim); break;
      case 8: pass_small<8, Src>(sg, tw, src, ss, sim, dst, ds, dim); break;
      case 16: pass_small<16, Src>(sg, tw, src, ss, sim, dst, ds, dim); break;
      default:
        pass_generic<Src>(sg, tw, plan.coef.data() + sg.coef, src, ss, sim, dst, ds, dim);
        break;
    }
  }

  // The second ping-pong buffer starts half a page (mod 4 KiB) after the first: a pass
  // that reads one and writes the other at nearby indices would otherwise put loads at the
  // same page offset as stores issued a few iterations earlier (false store-to-load
  // aliasing stalls the loads). Half a page keeps any such store >= 2 KiB of stream back.
  static constexpr Index buffer_gap = 4096 / (E * static_cast<Index>(sizeof(T))) + 1;

  // p advanced (by less than 4 KiB) to the page offset `offset` relative to ref.
  TOKENMIX_FFT_INLINE static T* at_page_offset(const void* ref, T* p, Index offset) {
    const auto r = reinterpret_cast<std::uintptr_t>(ref);
    const auto q = reinterpret_cast<std::uintptr_t>(p);
    const std::uintptr_t shift =
        (r + static_cast<std::uintptr_t>(offset) - q) & 4095 & ~std::uintptr_t(63);
    return p + shift / sizeof(T);
  }

  static Index scratch_elements(const Plan<T>& plan) {
    if (plan.bluestein()) return plan.conv + scratch_elements(*plan.sub);
    return 2 * plan.n + buffer_gap;
  }

  TOKENMIX_FFT_INLINE static void copy(const T* src, Index ss, Index sim, T* dst, Index ds,
                                       Index dim, Index n) {
    for (Index i = 0; i < n; ++i) st(dst + i * ds, dim, ld(src + i * ss, sim));
  }

  // W forward transforms at once (direct plans; Bluestein is built on top in fft.hpp). Element i of the input is at in + i*is (real parts) and
  // in + i*is + iim (imaginary parts), likewise for the output; in == out is allowed.
  // An inverse transform is the forward one with real and imaginary parts swapped on both
  // sides (pass re/im pointers the other way round).
  // Src != 0: the input is interleaved (see ld_src), element i at in + i*is; in != out.
  template <int Src = 0>
  TOKENMIX_FFT_INLINE static void direct(const Plan<T>& plan, const T* in, Index is,
                                               Index iim, T* out, Index os, Index oim,
                                               T* scratch) {
    const Index n = plan.n;
    const std::size_t count = plan.stages.size();
    if (count == 0) {
      if (in != out || Src != 0)
        for (Index i = 0; i < n; ++i) st(out + i * os, oim, ld_src<Src>(in + i * is, iim));
      return;
    }
    T* buf[2] = {scratch, at_page_offset(scratch, scratch + n * E, 2048)};
    if (count == 1 && in == out) {
      run_stage<Src>(plan, plan.stages[0], in, is, iim, buf[0], E, W);
      copy(buf[0], E, W, out, os, oim, n);
      return;
    }
    const T* src = in;
    Index ss = is, sim = iim;
    for (std::size_t k = 0; k < count; ++k) {
      T* dst;
      Index ds, dim;
      if (k + 1 == count) {
        dst = out;
        ds = os;
        dim = oim;
      } else {
        dst = buf[(count - 1 - k) % 2 == 1 ? 0 : 1];
        ds = E;
        dim = W;
      }
      if (k == 0)
        run_stage<Src>(plan, plan.stages[k], src, ss, sim, dst, ds, dim);
      else
        run_stage(plan, plan.stages[k], src, ss, sim, dst, ds, dim);
      src = dst;
      ss = ds;
      sim = dim;
    }
  }

};

}  // namespace fft
}  // namespace detail
}  // namespace tokenmix

#if defined(__clang__)
#pragma clang diagnostic pop
#elif defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#pragma once
// Fast Fourier transforms for any length, float and double.
//
//   ComplexFft<T>  complex <-> complex, one transform or a strided batch
//   RealFft<T>     real -> half spectrum (r2c), half spectrum -> real (c2r), Hartley (DHT)
//   fft2_real_part Re(F_n X F_d^T) for a real n x d matrix (FNet's token mixing)
//
// Conventions: forward uses exp(-2 pi i jk/n); nothing is normalised (inverse(forward(x)) is
// n*x), as in FFTW. Lengths made of 2, 3, 5 and small odd primes run mixed-radix Stockham
// passes; lengths with a large prime factor run Bluestein's algorithm, chosen by an operation
// count estimate, so every length costs O(n log n).
//
// Plans are built once per (length, scalar type) and cached process-wide; a mutex guards only
// the cache lookup. A plan is immutable and shared by all threads. Executing needs scratch:
// the calls without a scratch argument take it from the calling thread's ScratchFrame arena
// (no heap allocation once warm), or pass `scratch_size()` scalars yourself.
//
// Kernels are dispatched at run time on active_isa(): AVX-512 (16 float / 8 double lanes),
// AVX2 (8 / 4), NEON on aarch64 (4 / 2) or scalar. Batches are vectorised across transforms
// (one transform per SIMD lane); a single long transform is split four-step (n = m*W) so the
// lanes hold W interleaved sub-transforms.

#include <complex>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <type_traits>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/fft_kernels.hpp"
#include "tokenmix/core/fft_plan.hpp"
#include "tokenmix/core/isa.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/core/workspace.hpp"

namespace tokenmix {

enum class FftDirection { forward, inverse };

namespace detail {
namespace fft {

template <class T>
std::shared_ptr<const Plan<T>> cached_plan(Index n);

// exp(-i pi j^2 / n) = w_{2n}^(j^2), with j^2 reduced mod 2n exactly in integers.
inline void bluestein_chirp(Index j, Index n, double& re, double& im) {
  const auto k = static_cast<Index>((static_cast<unsigned long long>(j) * j) %
                                    static_cast<unsigned long long>(2 * n));
  unit_root(k, 2 * n, re, im);
}

// Bluestein spectrum FFT(conj chirp)/conv, computed in double whatever T is.
template <class T>
void build_bluestein(Plan<T>& plan) {
  const Index n = plan.n;
  const Index conv = bluestein_size(n);
  const Index overlap = bluestein_overlap(n, conv);
  plan.conv = conv;
  plan.overlap = overlap;
  plan.sub = cached_plan<T>(conv);
  plan.chirp.resize(2 * n);
  std::vector<double> b(2 * conv, 0.0);
  for (Index j = 0; j < n; ++j) {
    double re, im;
    bluestein_chirp(j, n, re, im);
    plan.chirp[2 * j] = static_cast<T>(re);
    plan.chirp[2 * j + 1] = static_cast<T>(im);
    b[2 * j] = re;
    b[2 * j + 1] = -im;
    // Negative lags from conv - 1 down; the shared slots n - overlap .. n - 1 keep the
    // positive ones.
    if (j > 0 && j < n - overlap) {
      b[2 * (conv - j)] = re;
      b[2 * (conv - j) + 1] = -im;
    }
  }
  std::shared_ptr<const Plan<double>> dplan = cached_plan<double>(conv);
  using E1 = Engine<Lanes<double, 1>>;
  std::vector<double> scratch(2 * E1::scratch_elements(*dplan));
  E1::direct(*dplan, b.data(), 2, 1, b.data(), 2, 1, scratch.data());
  plan.kernel.resize(2 * conv);
  for (Index k = 0; k < 2 * conv; ++k) plan.kernel[k] = static_cast<T>(b[k] / conv);
  plan.wrap.resize(2 * overlap);
  for (Index t = 0; t < overlap; ++t) {
    double nre, nim, pre, pim;
    bluestein_chirp(n - overlap + t, n, nre, nim);
    bluestein_chirp(conv - n + overlap - t, n, pre, pim);
    plan.wrap[2 * t] = static_cast<T>(nre - pre);
    plan.wrap[2 * t + 1] = static_cast<T>(pim - nim);
  }
}

template <class T>
std::shared_ptr<const Plan<T>> make_plan(Index n) {
  auto plan = std::make_shared<Plan<T>>();
  plan->n = n;
  if (prefer_bluestein(n))
    build_bluestein(*plan);
  else
    build_direct(*plan);
  return plan;
}

// Process-wide cache keyed by length. Plans are built outside the lock (a Bluestein plan
// asks the cache for its sub-plan); if two threads race, the first one stored wins.
template <class P>
struct PlanCache {
  std::mutex mutex;
  std::map<Index, std::shared_ptr<const P>> plans;
};

template <class P>
PlanCache<P>& plan_cache() {
  static PlanCache<P> cache;
  return cache;
}

template <class P, class Make>
std::shared_ptr<const P> cache_lookup(Index n, Make make) {
  PlanCache<P>& cache = plan_cache<P>();
  {
    std::lock_guard<std::mutex> lock(cache.mutex);
    auto it = cache.plans.find(n);
    if (it != cache.plans.end()) return it->second;
  }
  std::shared_ptr<const P> built = make(n);
  std::lock_guard<std::mutex> lock(cache.mutex);
  auto inserted = cache.plans.emplace(n, std::move(built));
  return inserted.first->second;
}

template <class T>
std::shared_ptr<const Plan<T>> cached_plan(Index n) {
  if (n < 1) fail<ArgumentError>("fft: expected a length >= 1, got ", n);
  return cache_lookup<Plan<T>>(n, [](Index len) { return make_plan<T>(len); });
}

template <class T>
std::shared_ptr<const Plan<T>> cached_narrow_plan(Index n) {
  return cache_lookup<NarrowPlan<T>>(n, [](Index len) {
    auto plan = std::make_shared<NarrowPlan<T>>();
    plan->n = len;
    build_direct(*plan, 3);
    return std::shared_ptr<const NarrowPlan<T>>(std::move(plan));
  });
}

inline int lane_slot(int w) {
  int slot = -1;
  while (w > 1) {
    w >>= 1;
    ++slot;
  }
  return slot;
}

// The plan for transforms of length m run across w lanes. Narrow passes only while the lane
// buffer (m elements of 2w scalars) stays in L1: at m = 640 (a 10240-point four-step) the
// extra pass over L2 cost ~12%.
template <class T>
std::shared_ptr<const Plan<T>> lane_sub_plan(Index m, int w) {
  if (sizeof(T) * w >= 64 && m * 2 * w * static_cast<Index>(sizeof(T)) <= 32 * 1024)
    return cached_narrow_plan<T>(m);
  return cached_plan<T>(m);
}

// Four-step tables for lane width w, or null when n is not m*w with w | m.
template <class T>
const FourStep<T>* four_step(const Plan<T>& plan, int w) {
  if (w < 2 || plan.bluestein() || plan.n % (static_cast<Index>(w) * w) != 0) return nullptr;
  const int slot = lane_slot(w);
  std::call_once(plan.four_step_once[slot], [&] {
    const Index n = plan.n, m = n / w;
    // single_scratch() assumes a direct sub-transform of n/w; otherwise leave m = 0
    // (decided once here: the cost model is far too slow to run per call).
    if (prefer_bluestein(m)) return;
    FourStep<T>& fs = plan.four_step[slot];
    fs.sub_m = lane_sub_plan<T>(m, w);
    fs.sub_w = cached_plan<T>(w);
    fs.twiddle.resize(2 * n);
    for (Index k1 = 0; k1 < m; ++k1)
      for (int j2 = 0; j2 < w; ++j2) {
        double re, im;
        unit_root(k1 * j2, n, re, im);
        fs.twiddle[k1 * 2 * w + j2] = static_cast<T>(re);
        fs.twiddle[k1 * 2 * w + w + j2] = static_cast<T>(im);
      }
    fs.m = m;
  });
  const FourStep<T>& fs = plan.four_step[slot];
  return fs.m > 0 ? &fs : nullptr;
}

// Lane tables for a Bluestein plan whose convolution length splits four-step with width w
// (conv = m*w, w | m), or null. The lane rows (k1 of the four-step) are kept even rows first,
// then odd (see Ent::bluestein_four_step), so twiddles and kernel are permuted to match.
template <class T>
const FourStep<T>* bluestein_lanes(const Plan<T>& plan, int w) {
  if (w < 2 || !plan.bluestein()) return nullptr;
  const FourStep<T>* sub = four_step(*plan.sub, w);
  if (sub == nullptr) return nullptr;
  const int slot = lane_slot(w);
  std::call_once(plan.four_step_once[slot], [&] {
    FourStep<T>& fs = plan.four_step[slot];
    const Index m = sub->m, conv = plan.conv, n = plan.n;
    fs.chirp.assign(2 * conv, T(0));
    for (Index j = 0; j < n; ++j) {
      fs.chirp[(j / w) * 2 * w + j % w] = plan.chirp[2 * j];
      fs.chirp[(j / w) * 2 * w + w + j % w] = plan.chirp[2 * j + 1];
    }
    const Index half = m / 2;
    const auto row = [half](Index p) { return p < half ? 2 * p : 2 * (p - half) + 1; };
    fs.kernel.resize(2 * conv);
    for (Index b = 0; b < m; b += w)
      for (Index k2 = 0; k2 < w; ++k2)
        for (Index t = 0; t < w; ++t) {
          const Index k = row(b + t) + m * k2;
          fs.kernel[(b + k2) * 2 * w + t] = plan.kernel[2 * k];
          fs.kernel[(b + k2) * 2 * w + w + t] = plan.kernel[2 * k + 1];
        }
    fs.twiddle.resize(2 * conv);
    for (Index p = 0; p < m; ++p)
      std::copy_n(sub->twiddle.begin() + row(p) * 2 * w, 2 * w, fs.twiddle.begin() + p * 2 * w);
    fs.fold.resize(2 * half);
    for (Index j1 = 0; j1 < half; ++j1) {
      double re, im;
      unit_root(j1, m, re, im);
      fs.fold[2 * j1] = static_cast<T>(re);
      fs.fold[2 * j1 + 1] = static_cast<T>(im);
    }
    fs.sub_m = lane_sub_plan<T>(half, w);
    fs.m = m;
  });
  const FourStep<T>& fs = plan.four_step[slot];
  return fs.m > 0 ? &fs : nullptr;
}

inline constexpr int max_lanes = 16;

// Scalars of scratch one single transform needs, for any lane width up to max_lanes.
template <class T>
Index single_scratch(const Plan<T>& plan) {
  if (plan.bluestein()) return 2 * plan.conv + single_scratch(*plan.sub);
  // Scalar lanes: two buffers of n complex values. Four-step (n = m*W): lane buffers of m,
  // 2m (sub-transform scratch), W and 2W elements of 2W scalars each.
  // Each lane buffer may be followed by a gap of a few elements (see Engine::direct).
  const Index w = max_lanes;
  return std::max<Index>(4 * plan.n, 6 * plan.n + 6 * w * w) + 16 * 2 * w +
         static_cast<Index>(4 * 4096 / sizeof(T));
}

// `p` rounded up to a cache line. Callers' scratch (a std::vector, say) may be only 16-byte
// aligned, and then every full-width vector load and store of the lane buffers straddles two
// lines (4096 points, AVX-512: ~40% slower). Every scratch size includes 64 bytes of slack
// for this.
template <class T>
T* line_aligned(T* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  return p + (detail::round_up(a, detail::scratch_alignment) - a) / sizeof(T);
}

// The part of `scratch` (which has 4 KiB of slack) whose address is half a page away from
// `ref` modulo 4 KiB: streaming a buffer into scratch at the same page offset makes every
// load look like it depends on the store just issued (4K aliasing), halving throughput.
template <class T>
T* away_from(const void* ref, T* scratch) {
  const auto r = reinterpret_cast<std::uintptr_t>(ref);
  const auto s = reinterpret_cast<std::uintptr_t>(scratch);
  const std::uintptr_t shift = (r + 2048 - s) & 4095 & ~std::uintptr_t(63);
  return scratch + shift / sizeof(T);
}

template <class T>
Index lanes_scratch(const Plan<T>& plan, Index w) {
  return 2 * w * Engine<Lanes<T, 1>>::scratch_elements(plan);
}

// Scratch for fft2_real_part.
struct Mix2dLayout {
  Index dh, dc, dhp, bs, b, l, rs, total;
};

template <class T>
Mix2dLayout mix2d_layout(const Plan<T>& pn, const Plan<T>& pd, Index n, Index d, Index w) {
  Mix2dLayout s;
  s.dh = d / 2 + 1;
  // Columns transformed along n: for even d the real Nyquist column rides in the imaginary
  // part of the real DC column (d/2 columns, a whole number of lane groups for d = 768).
  s.dc = d % 2 == 0 ? d / 2 : s.dh;
  s.dhp = (s.dc + w - 1) / w * w;
  s.bs = s.dhp;
  // A row stride of an even number of cache lines (1 KiB at d = 512) crowds the strided
  // column reads and writes into a fraction of the cache sets; make it odd.
  const Index line = 64 / static_cast<Index>(sizeof(T));
  if (s.bs % line == 0 && (s.bs / line) % 2 == 0) s.bs += w;
  s.b = 0;
  s.l = s.b + 2 * n * s.bs;
  s.rs = s.l + d * 2 * w;  // the row transforms' lane buffer; columns run in place in B
  s.total = s.rs + std::max(lanes_scratch(pn, w), lanes_scratch(pd, w)) + 64;
  return s;
}

#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wpsabi"
#elif defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"  // see fft_kernels.hpp
#endif

// All algorithms for one lane width W; force-inlined into the per-ISA entry points below.
// The Stockham passes themselves stay out of line (Ent<T, W>::direct, one copy per ISA and
// width) so the glue can call them from many places without multiplying code.
template <class T, int W, template <class, int> class Ent>
struct Algorithms {
  using O = Lanes<T, W>;
  using En = Engine<O>;
  using V = typename O::V;
  using C = typename En::C;
  static constexpr Index E = 2 * W;

  // One transform, interleaved complex, unit stride.
  // W transforms in lanes (see Engine::direct for the layout); Bluestein or direct.
  TOKENMIX_FFT_INLINE static void lanes(const Plan<T>& plan, const T* in, Index is, Index iim,
                                        T* out, Index os, Index oim, T* scratch) {
    if (!plan.bluestein()) {
      Ent<T, W>::direct(plan, in, is, iim, out, os, oim, scratch);
      return;
    }
    const Index n = plan.n, conv = plan.conv, overlap = plan.overlap;
    const Plan<T>& sub = *plan.sub;
    T* a = scratch;
    T* rest = scratch + conv * E;
    const T* chirp = plan.chirp.data();
    const T* ker = plan.kernel.data();
    const auto chirp_at = [chirp](Index j) {
      return C{V{} + chirp[2 * j], V{} + chirp[2 * j + 1]};
    };
    for (Index j = 0; j < n; ++j) En::st(a + j * E, W, En::mul(En::ld(in + j * is, iim), chirp_at(j)));
    for (Index j = n; j < conv; ++j) En::st(a + j * E, W, C{V{}, V{}});
    C late[max_bluestein_overlap];  // the chirped last inputs, before the transform overwrites a
    for (Index i = 0; i < overlap; ++i) late[i] = En::ld(a + (n - overlap + i) * E, W);
    Ent<T, W>::direct(sub, a, E, W, a, E, W, rest);
    for (Index k = 0; k < conv; ++k)
      En::st(a + k * E, W,
             En::mulw(En::ld(a + k * E, W), (V{} + static_cast<T>(ker[2 * k])), (V{} + static_cast<T>(ker[2 * k + 1]))));
    Ent<T, W>::direct(sub, a + W, E, -W, a + W, E, -W, rest);  // inverse: re and im swapped
    for (Index k = 0; k < n; ++k) {
      C z = En::ld(a + k * E, W);
      if (k < overlap) z = En::add(z, wrap_fix<En>(late, overlap, plan.wrap.data(), k));
      En::st(out + k * os, oim, En::mul(z, chirp_at(k)));
    }
  }

  // The part of convolution output k < overlap that the shared slots got wrong: the products
  // of chirped inputs n - overlap + i (late[i], i >= k) with the negative lags their slots do
  // not hold, minus those with the positive lags they do.
  template <class EN>
  TOKENMIX_FFT_INLINE static typename EN::C wrap_fix(const typename EN::C* late, Index overlap,
                                                     const T* wrap, Index k) {
    using VN = typename EN::V;
    typename EN::C acc{VN{}, VN{}};
    for (Index i = k; i < overlap; ++i)
      acc = EN::add(acc, EN::mulw(late[i], VN{} + wrap[2 * (i - k)], VN{} + wrap[2 * (i - k) + 1]));
    return acc;
  }

  TOKENMIX_FFT_INLINE static void single(const Plan<T>& plan, bool inverse, const T* in, T* out,
                                         T* scratch) {
    scratch = line_aligned(scratch);
    if (plan.bluestein()) {
      if constexpr (W > 1) {
        if (const FourStep<T>* bl = bluestein_lanes(plan, W)) {
          bluestein_four_step<O>(plan, *bl, inverse, in, out, away_from(in, scratch));
          return;
        }
        if constexpr (W > 2) {
          if (const FourStep<T>* bl = bluestein_lanes(plan, W / 2)) {
            bluestein_four_step<Lanes<T, W / 2>>(plan, *bl, inverse, in, out,
                                                 away_from(in, scratch));
            return;
          }
        }
      }
      single_bluestein(plan, inverse, in, out, scratch);
      return;
    }
    single_direct(plan, inverse, in, out, scratch);
  }

  // The middle of a four-step split, for the w x w block of lane elements a[0..w): multiply
  // by the twiddles tw, transpose so each register holds one length-w transform across
  // elements, and run those w DFTs in registers.
  template <class OW>
  TOKENMIX_FFT_INLINE static void twiddle_transpose_dft(const T* a, const T* tw,
                                                        typename Engine<OW>::C* v) {
    using EW = Engine<OW>;
    constexpr int w = OW::width;
    constexpr Index ew = 2 * w;
    typename OW::V re[w], im[w];
    TOKENMIX_FFT_UNROLL
    for (int t = 0; t < w; ++t) {
      const typename EW::C x = EW::mul(EW::ld(a + t * ew, w), EW::ld(tw + t * ew, w));
      re[t] = x.re;
      im[t] = x.im;
    }
    EW::transpose(re);
    EW::transpose(im);
    TOKENMIX_FFT_UNROLL
    for (int t = 0; t < w; ++t) v[t] = typename EW::C{re[t], im[t]};
    EW::template dft_in_registers<w>(v);
  }

  // Bluestein with its convolution kept in the four-step lane layout throughout: the chirped
  // input goes straight into lanes (x[W*j1 + j2] is lane j2 of element j1), the forward
  // DFTs of W, the kernel product, the inverse DFTs of W and both twiddle products happen in
  // registers in one pass, and the inverse length-m transforms bring the samples back to
  // natural order. The frequency bins are never put in natural order (the convolution does
  // not need them to be). The chirped input fills the first m/2 rows and at most a few
  // more, so each length-m transform runs as two of m/2, even bins from x and odd bins from
  // x w_m^j1 (one pass fewer, none over zeros), and the inverse ones are folded back on the
  // way out.
  template <class OW>
  TOKENMIX_FFT_INLINE static void bluestein_four_step(const Plan<T>& plan, const FourStep<T>& bl,
                                                      bool inverse, const T* in, T* out,
                                                      T* scratch) {
    using EW = Engine<OW>;
    constexpr int w = OW::width;
    constexpr Index ew = 2 * w;
    using CW = typename EW::C;
    using VW = typename OW::V;
    const Index n = plan.n, m = bl.m, half = m / 2;
    T* a = scratch;
    T* odd = a + half * ew;
    // Page offsets: a at +2 KiB from in, the sub-transform buffers at +1 and +3 KiB.
    T* rest = EW::at_page_offset(in, a + m * ew, 1024);
    const T* ch = bl.chirp.data();
    const T* fold = bl.fold.data();
    // Inverse = forward with real and imaginary parts swapped on the way in and out.
    C1 late[max_bluestein_overlap];
    save_late(plan, in, inverse, late);
    // Row j1 + m/2 of the input (the few inputs past conv / 2, if any) folds into row j1:
    // even bins transform x[j1] + x[j1 + m/2], odd bins (x[j1] - x[j1 + m/2]) w_m^j1.
    const Index full = n / w, rows = (n + w - 1) / w;
    const auto input_row = [&](Index j1) {
      CW x{VW{}, VW{}};
      if (j1 < full) {
        x = EW::load_interleaved(in + j1 * ew);
        if (inverse) x = CW{x.im, x.re};
      } else if (j1 < rows) {
        x = load_partial<EW>(in + full * ew, n - full * w, inverse);
      }
      return EW::mul(x, EW::ld(ch + j1 * ew, w));
    };
    for (Index j1 = 0; j1 < half; ++j1) {
      CW c = input_row(j1), d = c;
      if (j1 + half < rows) {
        const CW hi = input_row(j1 + half);
        c = EW::add(c, hi);
        d = EW::sub(d, hi);
      }
      EW::st(a + j1 * ew, w, c);
      EW::st(odd + j1 * ew, w, EW::mulw(d, VW{} + fold[2 * j1], VW{} + fold[2 * j1 + 1]));
    }
    Ent<T, w>::direct(*bl.sub_m, a, ew, w, a, ew, w, rest);
    Ent<T, w>::direct(*bl.sub_m, odd, ew, w, odd, ew, w, rest);
    const T* tw = bl.twiddle.data();
    const T* ker = bl.kernel.data();
    for (Index b = 0; b < m; b += w) {
      CW v[w];
      twiddle_transpose_dft<OW>(a + b * ew, tw + b * ew, v);
      VW re[w], im[w];
      // Kernel product, then the inverse DFT over k2 as a forward one on swapped parts.
      TOKENMIX_FFT_UNROLL
      for (int k2 = 0; k2 < w; ++k2) {
        const CW p = EW::mul(v[k2], EW::ld(ker + (b + k2) * ew, w));
        v[k2] = CW{p.im, p.re};
      }
      EW::template dft_in_registers<w>(v);
      TOKENMIX_FFT_UNROLL
      for (int t = 0; t < w; ++t) {
        re[t] = v[t].im;
        im[t] = v[t].re;
      }
      EW::transpose(re);
      EW::transpose(im);
      TOKENMIX_FFT_UNROLL
      for (int t = 0; t < w; ++t) {
        const CW wt = EW::ld(tw + (b + t) * ew, w);
        EW::st(a + (b + t) * ew, w, EW::mul(CW{re[t], im[t]}, CW{wt.re, -wt.im}));
      }
    }
    // Inverse transforms, in place.
    Ent<T, w>::direct(*bl.sub_m, a + w, ew, -w, a + w, ew, -w, rest);
    Ent<T, w>::direct(*bl.sub_m, odd + w, ew, -w, odd + w, ew, -w, rest);
    for (Index j1 = 0; j1 < full; ++j1) {
      CW y = EW::mul(unfold<EW>(a, odd, fold, j1, half), EW::ld(ch + j1 * ew, w));
      if (inverse) y = CW{y.im, y.re};
      EW::store_interleaved(out + j1 * ew, y);
    }
    if (full < rows)
      store_partial<EW>(out + full * ew, n - full * w, inverse,
                        EW::mul(unfold<EW>(a, odd, fold, full, half), EW::ld(ch + full * ew, w)));
    add_wrap_fix(plan, late, inverse, out);
  }

  using C1 = typename Engine<Lanes<T, 1>>::C;

  // The last `overlap` inputs, chirped (parts swapped for the inverse), for wrap_fix; saved
  // before an in-place output overwrites them. The four-step's input buffer holds them
  // folded, so they are recomputed from the input.
  TOKENMIX_FFT_INLINE static void save_late(const Plan<T>& plan, const T* in, bool inverse,
                                            C1* late) {
    const Index first = plan.n - plan.overlap;
    for (Index i = 0; i < plan.overlap; ++i) {
      const Index j = first + i;
      const C1 x = inverse ? C1{in[2 * j + 1], in[2 * j]} : C1{in[2 * j], in[2 * j + 1]};
      late[i] = Engine<Lanes<T, 1>>::mul(x, C1{plan.chirp[2 * j], plan.chirp[2 * j + 1]});
    }
  }

  // Adds chirp[k] wrap_fix(k) to the interleaved outputs k < overlap.
  TOKENMIX_FFT_INLINE static void add_wrap_fix(const Plan<T>& plan, const C1* late, bool inverse,
                                               T* out) {
    for (Index k = 0; k < plan.overlap; ++k) {
      const C1 f = Engine<Lanes<T, 1>>::mul(
          wrap_fix<Engine<Lanes<T, 1>>>(late, plan.overlap, plan.wrap.data(), k),
          C1{plan.chirp[2 * k], plan.chirp[2 * k + 1]});
      out[2 * k] += inverse ? f.im : f.re;
      out[2 * k + 1] += inverse ? f.re : f.im;
    }
  }

  // The first `count` (< W) interleaved complex values at p as one lane vector, zero beyond;
  // real and imaginary parts swapped when `swap` (the inverse-by-forward trick).
  template <class EW>
  TOKENMIX_FFT_INLINE static typename EW::C load_partial(const T* p, Index count, bool swap) {
    constexpr int w = EW::W;
    T lanes[2 * w] = {};
    for (Index t = 0; t < count; ++t) {
      lanes[t] = p[2 * t + (swap ? 1 : 0)];
      lanes[w + t] = p[2 * t + (swap ? 0 : 1)];
    }
    return EW::ld(lanes, w);
  }

  // The first `count` (< W) lanes of y to interleaved complex values at p (the inverse of
  // load_partial).
  template <class EW>
  TOKENMIX_FFT_INLINE static void store_partial(T* p, Index count, bool swap,
                                                const typename EW::C& y) {
    constexpr int w = EW::W;
    T lanes[2 * w];
    EW::st(lanes, w, y);
    for (Index t = 0; t < count; ++t) {
      p[2 * t + (swap ? 1 : 0)] = lanes[t];
      p[2 * t + (swap ? 0 : 1)] = lanes[w + t];
    }
  }

  // Sample j1 of an inverse length-m transform from the inverse transforms of its even and
  // odd bins: even[j1 mod h] + w_m^-j1 odd[j1 mod h], h = m/2 (w_m^-j1 = -w_m^-(j1-h)).
  template <class EW>
  TOKENMIX_FFT_INLINE static typename EW::C unfold(const T* even, const T* odd, const T* fold,
                                                   Index j1, Index half) {
    using VW = typename EW::V;
    constexpr int w = EW::W;
    const Index r = j1 < half ? j1 : j1 - half;
    const T sign = j1 < half ? T(1) : T(-1);
    return EW::add(EW::ld(even + r * 2 * w, w),
                   EW::mulw(EW::ld(odd + r * 2 * w, w), VW{} + sign * fold[2 * r],
                            VW{} - sign * fold[2 * r + 1]));
  }

  TOKENMIX_FFT_INLINE static void single_direct(const Plan<T>& plan, bool inverse, const T* in,
                                                T* out, T* scratch) {
    scratch = away_from(in, scratch);
    if constexpr (W > 1) {
      if (const FourStep<T>* fs = four_step(plan, W)) {
        four_step_run<O>(*fs, inverse, in, out, scratch);
        return;
      }
      if constexpr (W > 2) {
        if (const FourStep<T>* fs = four_step(plan, W / 2)) {
          four_step_run<Lanes<T, W / 2>>(*fs, inverse, in, out, scratch);
          return;
        }
      }
    }
    if (inverse)
      Ent<T, 1>::direct(plan, in + 1, 2, -1, out + 1, 2, -1, scratch);
    else
      Ent<T, 1>::direct(plan, in, 2, 1, out, 2, 1, scratch);
  }

  template <class OW>
  TOKENMIX_FFT_INLINE static void four_step_run(const FourStep<T>& fs, bool inverse, const T* in,
                                                T* out, T* scratch) {
    using EW = Engine<OW>;
    constexpr int w = OW::width;
    constexpr Index ew = 2 * w;
    using CW = typename EW::C;
    const Index m = fs.m;
    T* a = scratch;
    // Page offsets: a at +2 KiB from in, the sub-transform buffers at +1 and +3 KiB.
    T* rest = EW::at_page_offset(in, a + m * ew, 1024);
    // Inverse = forward with real and imaginary parts swapped on the way in and out. The
    // first pass reads the caller's interleaved array directly.
    Ent<T, w>::direct_interleaved(*fs.sub_m, inverse, in, ew, a, ew, w, rest);
    const T* tw = fs.twiddle.data();
    for (Index b = 0; b < m; b += w) {
      CW v[w];
      twiddle_transpose_dft<OW>(a + b * ew, tw + b * ew, v);
      TOKENMIX_FFT_UNROLL
      for (int k2 = 0; k2 < w; ++k2) {
        if (inverse) v[k2] = CW{v[k2].im, v[k2].re};
        EW::store_interleaved(out + 2 * (b + m * k2), v[k2]);
      }
    }
  }

  TOKENMIX_FFT_INLINE static void single_bluestein(const Plan<T>& plan, bool inverse,
                                                   const T* in, T* out, T* scratch) {
    using E1 = Engine<Lanes<T, 1>>;
    const Index n = plan.n, conv = plan.conv;
    T* a = scratch;
    T* rest = scratch + 2 * conv;
    const T* ch = plan.chirp.data();
    const T* ker = plan.kernel.data();
    for (Index j = 0; j < n; ++j) {
      const C1 x = inverse ? C1{in[2 * j + 1], in[2 * j]} : C1{in[2 * j], in[2 * j + 1]};
      E1::st(a + 2 * j, 1, E1::mul(x, C1{ch[2 * j], ch[2 * j + 1]}));
    }
    for (Index j = 2 * n; j < 2 * conv; ++j) a[j] = T(0);
    C1 late[max_bluestein_overlap];
    for (Index i = 0; i < plan.overlap; ++i) late[i] = E1::ld(a + 2 * (n - plan.overlap + i), 1);
    single_direct(*plan.sub, false, a, a, rest);
    for (Index k = 0; k < conv; ++k)
      E1::st(a + 2 * k, 1, E1::mul(E1::ld(a + 2 * k, 1), C1{ker[2 * k], ker[2 * k + 1]}));
    single_direct(*plan.sub, true, a, a, rest);
    for (Index k = 0; k < n; ++k) {
      const C1 y = E1::mul(E1::ld(a + 2 * k, 1), C1{ch[2 * k], ch[2 * k + 1]});
      out[2 * k] = inverse ? y.im : y.re;
      out[2 * k + 1] = inverse ? y.re : y.im;
    }
    add_wrap_fix(plan, late, inverse, out);
  }

  // `count` transforms; element i of transform b at in + 2*(b*idist + i*istride).
  TOKENMIX_FFT_INLINE static void batch(const Plan<T>& plan, bool inverse, Index count,
                                        const T* in, Index istride, Index idist, T* out,
                                        Index ostride, Index odist, T* scratch) {
    scratch = line_aligned(scratch);
    const Index n = plan.n;
    T* l = scratch;
    T* rest = scratch + n * E;
    T* re0 = inverse ? l + W : l;
    const Index im0 = inverse ? -W : W;
    for (Index b = 0; b < count; b += W) {
      const Index lanes_used = std::min<Index>(W, count - b);
      if (lanes_used == W && idist == 1) {
        for (Index i = 0; i < n; ++i)
          En::st(l + i * E, W, En::load_interleaved(in + 2 * (b + i * istride)));
      } else {
        for (Index i = 0; i < n; ++i)
          for (Index t = 0; t < W; ++t) {
            const bool ok = t < lanes_used;
            const T* p = in + 2 * ((b + t) * idist + i * istride);
            l[i * E + t] = ok ? p[0] : T(0);
            l[i * E + W + t] = ok ? p[1] : T(0);
          }
      }
      lanes(plan, re0, E, im0, re0, E, im0, rest);
      if (lanes_used == W && odist == 1) {
        for (Index i = 0; i < n; ++i)
          En::store_interleaved(out + 2 * (b + i * ostride), En::ld(l + i * E, W));
      } else {
        for (Index i = 0; i < n; ++i)
          for (Index t = 0; t < lanes_used; ++t) {
            T* p = out + 2 * ((b + t) * odist + i * ostride);
            p[0] = l[i * E + t];
            p[1] = l[i * E + W + t];
          }
      }
    }
  }

  // Re(F_n X F_d^T), X real n x d (row stride xs), into y (row stride ys; may equal x).
  // Rows: real transforms along d, two rows per complex lane transform (row r in the real
  // parts, row r+W in the imaginary parts), W row pairs per lane vector. The half spectrum
  // (d/2+1 columns) goes to B. Columns: complex transforms along n over B's columns, W per
  // lane vector; Y[k,l] = Re B'[k,l] and, by Hermitian symmetry, Y[-k,-l] = Re B'[k,l].
  TOKENMIX_FFT_INLINE static void mix2d(const Plan<T>& pn, const Plan<T>& pd, const T* x,
                                        Index xs, Index n, Index d, T* y, Index ys, T* scratch) {
    const Mix2dLayout s = mix2d_layout(pn, pd, n, d, W);
    scratch = line_aligned(scratch);
    T* bre = scratch + s.b;
    T* bim = bre + n * s.bs;
    T* l = scratch + s.l;
    T* rs = scratch + s.rs;
    const Index dh = s.dh, dc = s.dc, dhp = s.dhp, bs = s.bs;
    const bool nyquist_in_dc = dc < dh;
    const V half = (V{} + static_cast<T>(T(0.5)));
    for (Index g0 = 0; g0 < n; g0 += 2 * W) {
      const bool full = g0 + 2 * W <= n;
      for (Index part = 0; part < 2; ++part) {
        const Index r0 = g0 + part * W;
        const Index off = part * W;  // real or imaginary half of the lane element
        Index c = 0;
        for (; c + W <= d; c += W) {
          V blk[W];
          TOKENMIX_FFT_UNROLL
          for (int t = 0; t < W; ++t)
            blk[t] = (full || r0 + t < n) ? O::load(x + (r0 + t) * xs + c) : V{};
          En::transpose(blk);
          TOKENMIX_FFT_UNROLL
          for (int u = 0; u < W; ++u) O::store(l + (c + u) * E + off, blk[u]);
        }
        for (; c < d; ++c)
          TOKENMIX_FFT_UNROLL
          for (int t = 0; t < W; ++t)
            l[c * E + off + t] = (r0 + t < n) ? x[(r0 + t) * xs + c] : T(0);
      }
      lanes(pd, l, E, W, l, E, W, rs);
      // Untangle the two rows' half spectra and transpose them into B in one pass:
      // row r: (Z[k] + conj Z[d-k]) / 2, row r+W: (Z[k] - conj Z[d-k]) / 2i.
      for (Index part = 0; part < 2; ++part) {
        const Index r0 = g0 + part * W;
        for (Index c = 0; c < dhp; c += W) {
          V re[W], im[W];
          TOKENMIX_FFT_UNROLL
          for (int u = 0; u < W; ++u) {
            const Index k = c + u;
            if (k >= dc) {
              re[u] = V{};
              im[u] = V{};
              continue;
            }
            if (k == 0 && nyquist_in_dc) {
              // Both spectra are real at 0 and d/2: row r's in the real parts, row r+W's in
              // the imaginary parts.
              const C z0 = En::ld(l, W), zh = En::ld(l + (d / 2) * E, W);
              re[u] = part == 0 ? z0.re : z0.im;
              im[u] = part == 0 ? zh.re : zh.im;
              continue;
            }
            const C z = En::ld(l + k * E, W);
            const C zc = En::ld(l + (k == 0 ? 0 : d - k) * E, W);
            if (part == 0) {
              re[u] = half * (z.re + zc.re);
              im[u] = half * (z.im - zc.im);
            } else {
              re[u] = half * (z.im + zc.im);
              im[u] = half * (zc.re - z.re);
            }
          }
          En::transpose(re);
          En::transpose(im);
          TOKENMIX_FFT_UNROLL
          for (int t = 0; t < W; ++t) {
            if (!full && r0 + t >= n) break;
            O::store(bre + (r0 + t) * bs + c, re[t]);
            O::store(bim + (r0 + t) * bs + c, im[t]);
          }
        }
      }
    }
    // The columns are transformed in place in B (the packed Nyquist column's real parts go
    // into the imaginary part of B's column 0, free once transformed); one pass over whole
    // rows then fills y. Writing y a lane group of columns at a time touched two partial cache
    // lines per row at a power-of-two stride, which cost about as much as the column transforms.
    for (Index c = 0; c < dhp; c += W) {
      lanes(pn, bre + c, bs, n * bs, bre + c, bs, n * bs, rs);
      if (c == 0 && nyquist_in_dc) {
        // Lane 0 holds G = F_n(b_0 + i b_h) of the real columns b_0, b_h:
        // Re F_n b_0 [k] = (Re G[k] + Re G[-k]) / 2, Re F_n b_h [k] = (Im G[k] + Im G[-k]) / 2.
        for (Index k = 0; k <= n / 2; ++k) {
          const Index mk = (n - k) % n;
          const T r = T(0.5) * (bre[k * bs] + bre[mk * bs]);
          const T i = T(0.5) * (bim[k * bs] + bim[mk * bs]);
          bre[k * bs] = bre[mk * bs] = r;
          bim[k * bs] = bim[mk * bs] = i;
        }
      }
    }
    // Rows k and n-k together: each fills the other's mirrored half (Y[k, d-u] = Y[-k, u]),
    // so every row of B is read once.
    const Index mirror_end = d - dh + 1;  // columns u in [1, mirror_end) also fill d - u
    const auto fill_row = [&](Index k, const T* bk, const T* bm) {
      T* yk = y + k * ys;
      Index u = 0;
      for (; u + W <= dc; u += W) O::store(yk + u, O::load(bk + u));
      for (; u < dc; ++u) yk[u] = bk[u];
      if (nyquist_in_dc) yk[d / 2] = bim[k * bs];
      u = 1;
      for (; u + W <= mirror_end; u += W) O::store(yk + d - u - W + 1, En::reverse(O::load(bm + u)));
      for (; u < mirror_end; ++u) yk[d - u] = bm[u];
    };
    for (Index k = 0; k <= n / 2; ++k) {
      const Index mk = (n - k) % n;
      const T* bk = bre + k * bs;
      const T* bm = bre + mk * bs;
      fill_row(k, bk, bm);
      if (mk != k) fill_row(mk, bm, bk);
    }
  }
};

#if defined(__clang__)
#pragma clang diagnostic pop
#elif defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

// Function table for one ISA and scalar type.
template <class T>
struct Kernels {
  int width;
  void (*single)(const Plan<T>&, bool, const T*, T*, T*);
  void (*batch)(const Plan<T>&, bool, Index, const T*, Index, Index, T*, Index, Index, T*);
  void (*mix2d)(const Plan<T>&, const Plan<T>&, const T*, Index, Index, Index, T*, Index, T*);
};

template <class T, int W>
struct ScalarEntries {
  TOKENMIX_FFT_NOCLONE static void direct(const Plan<T>& p, const T* in, Index is, Index iim, T* out, Index os,
                     Index oim, T* s) {
    Engine<Lanes<T, W>>::direct(p, in, is, iim, out, os, oim, s);
  }
  TOKENMIX_FFT_NOCLONE static void direct_interleaved(const Plan<T>& p, bool inv, const T* in, Index is,
                                  T* out, Index os, Index oim, T* s) {
    if (inv)
      Engine<Lanes<T, W>>::template direct<2>(p, in, is, 0, out, os, oim, s);
    else
      Engine<Lanes<T, W>>::template direct<1>(p, in, is, 0, out, os, oim, s);
  }
  static void single(const Plan<T>& p, bool inv, const T* in, T* out, T* s) {
    Algorithms<T, W, ScalarEntries>::single(p, inv, in, out, s);
  }
  static void batch(const Plan<T>& p, bool inv, Index count, const T* in, Index is,
                    Index id, T* out, Index os, Index od, T* s) {
    Algorithms<T, W, ScalarEntries>::batch(p, inv, count, in, is, id, out, os, od, s);
  }
  static void mix2d(const Plan<T>& pn, const Plan<T>& pd, const T* x, Index xs, Index n,
                    Index d, T* y, Index ys, T* s) {
    Algorithms<T, W, ScalarEntries>::mix2d(pn, pd, x, xs, n, d, y, ys, s);
  }
};

#if defined(TOKENMIX_HAVE_X86_DISPATCH)
template <class T, int W>
struct Avx2Entries {
  TOKENMIX_TARGET_AVX2 TOKENMIX_FFT_NOCLONE static void direct(const Plan<T>& p, const T* in, Index is, Index iim, T* out, Index os,
                     Index oim, T* s) {
    Engine<Lanes<T, W>>::direct(p, in, is, iim, out, os, oim, s);
  }
  TOKENMIX_TARGET_AVX2 TOKENMIX_FFT_NOCLONE static void direct_interleaved(const Plan<T>& p, bool inv, const T* in, Index is,
                                  T* out, Index os, Index oim, T* s) {
    if (inv)
      Engine<Lanes<T, W>>::template direct<2>(p, in, is, 0, out, os, oim, s);
    else
      Engine<Lanes<T, W>>::template direct<1>(p, in, is, 0, out, os, oim, s);
  }
  TOKENMIX_TARGET_AVX2 static void single(const Plan<T>& p, bool inv, const T* in, T* out, T* s) {
    Algorithms<T, W, Avx2Entries>::single(p, inv, in, out, s);
  }
  TOKENMIX_TARGET_AVX2 static void batch(const Plan<T>& p, bool inv, Index count, const T* in, Index is,
                    Index id, T* out, Index os, Index od, T* s) {
    Algorithms<T, W, Avx2Entries>::batch(p, inv, count, in, is, id, out, os, od, s);
  }
  TOKENMIX_TARGET_AVX2 static void mix2d(const Plan<T>& pn, const Plan<T>& pd, const T* x, Index xs, Index n,
                    Index d, T* y, Index ys, T* s) {
    Algorithms<T, W, Avx2Entries>::mix2d(pn, pd, x, xs, n, d, y, ys, s);
  }
};

template <class T, int W>
struct Avx512Entries {
  TOKENMIX_TARGET_AVX512 TOKENMIX_FFT_NOCLONE static void direct(const Plan<T>& p, const T* in, Index is, Index iim, T* out, Index os,
                     Index oim, T* s) {
    Engine<Lanes<T, W>>::direct(p, in, is, iim, out, os, oim, s);
  }
  TOKENMIX_TARGET_AVX512 TOKENMIX_FFT_NOCLONE static void direct_interleaved(const Plan<T>& p, bool inv, const T* in, Index is,
                                  T* out, Index os, Index oim, T* s) {
    if (inv)
      Engine<Lanes<T, W>>::template direct<2>(p, in, is, 0, out, os, oim, s);
    else
      Engine<Lanes<T, W>>::template direct<1>(p, in, is, 0, out, os, oim, s);
  }
  TOKENMIX_TARGET_AVX512 static void single(const Plan<T>& p, bool inv, const T* in, T* out, T* s) {
    Algorithms<T, W, Avx512Entries>::single(p, inv, in, out, s);
  }
  TOKENMIX_TARGET_AVX512 static void batch(const Plan<T>& p, bool inv, Index count, const T* in, Index is,
                    Index id, T* out, Index os, Index od, T* s) {
    Algorithms<T, W, Avx512Entries>::batch(p, inv, count, in, is, id, out, os, od, s);
  }
  TOKENMIX_TARGET_AVX512 static void mix2d(const Plan<T>& pn, const Plan<T>& pd, const T* x, Index xs, Index n,
                    Index d, T* y, Index ys, T* s) {
    Algorithms<T, W, Avx512Entries>::mix2d(pn, pd, x, xs, n, d, y, ys, s);
  }
};
#endif

template <class T, template <class, int> class Entries, int W>
Kernels<T> make_kernels() {
  return Kernels<T>{W, &Entries<T, W>::single, &Entries<T, W>::batch, &Entries<T, W>::mix2d};
}

template <class T>
const Kernels<T>& kernels(Isa isa) {
  static const Kernels<T> scalar = make_kernels<T, ScalarEntries, 1>();
#if defined(TOKENMIX_HAVE_X86_DISPATCH)
  static const Kernels<T> avx2 = make_kernels<T, Avx2Entries, 32 / sizeof(T)>();
  static const Kernels<T> avx512 = make_kernels<T, Avx512Entries, 64 / sizeof(T)>();
  if (isa == Isa::avx512) return avx512;
  if (isa == Isa::avx2) return avx2;
#elif defined(TOKENMIX_ARM_NEON)
  // NEON is the aarch64 baseline: 16-byte vector extensions compile to it without attributes.
  static const Kernels<T> neon = make_kernels<T, ScalarEntries, 16 / sizeof(T)>();
  if (isa == Isa::neon) return neon;
#endif
  return scalar;
}

template <class T>
const Kernels<T>& kernels() {
  return kernels<T>(active_isa());
}

template <class T>
void check_scalar() {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                "tokenmix FFT: T must be float or double");
}

}  // namespace fft
}  // namespace detail

// Complex-to-complex transform of one length. Cheap to construct (the plan is cached) and to
// copy; const member functions are thread-safe.
template <class T>
class ComplexFft {
 public:
  explicit ComplexFft(Index n) : plan_(detail::fft::cached_plan<T>(n)) {
    detail::fft::check_scalar<T>();
  }

  Index size() const { return plan_->n; }
  // Uses Bluestein's algorithm (large prime factor) rather than mixed-radix passes.
  bool uses_bluestein() const { return plan_->bluestein(); }

  // Scalars of scratch transform(..., scratch) needs.
  std::size_t scratch_size() const {
    return static_cast<std::size_t>(detail::fft::single_scratch(*plan_)) + 64;
  }
  // Scalars of scratch transform_batch(..., scratch) needs (any ISA).
  std::size_t batch_scratch_size() const {
    return static_cast<std::size_t>(detail::fft::lanes_scratch(*plan_, detail::fft::max_lanes) +
                                    2 * detail::fft::max_lanes * plan_->n) + 64;
  }

  // out[k] = sum_j in[j] exp(-+2 pi i jk/n); in == out is allowed.
  void transform(FftDirection dir, const std::complex<T>* in, std::complex<T>* out,
                 T* scratch) const {
    detail::fft::kernels<T>().single(*plan_, dir == FftDirection::inverse,
                                     reinterpret_cast<const T*>(in), reinterpret_cast<T*>(out),
                                     scratch);
  }
  void transform(FftDirection dir, const std::complex<T>* in, std::complex<T>* out) const {
    ScratchFrame frame;
    transform(dir, in, out, frame.take<T>(scratch_size()));
  }
  void forward(const std::complex<T>* in, std::complex<T>* out) const {
    transform(FftDirection::forward, in, out);
  }
  void inverse(const std::complex<T>* in, std::complex<T>* out) const {
    transform(FftDirection::inverse, in, out);
  }

  // `count` transforms; element i of transform b is in[b*in_dist + i*in_stride] (complex
  // elements, not bytes). Vectorised across transforms, fastest when in_dist == 1 (columns of
  // a row-major matrix). in == out is allowed when the layouts are the same.
  void transform_batch(FftDirection dir, Index count, const std::complex<T>* in, Index in_stride,
                       Index in_dist, std::complex<T>* out, Index out_stride, Index out_dist,
                       T* scratch) const {
    if (count < 0)
      detail::fail<ArgumentError>("ComplexFft: expected a non-negative batch count, got ",
                                  count);
    detail::fft::kernels<T>().batch(*plan_, dir == FftDirection::inverse, count,
                                    reinterpret_cast<const T*>(in), in_stride, in_dist,
                                    reinterpret_cast<T*>(out), out_stride, out_dist, scratch);
  }
  void transform_batch(FftDirection dir, Index count, const std::complex<T>* in, Index in_stride,
                       Index in_dist, std::complex<T>* out, Index out_stride,
                       Index out_dist) const {
    ScratchFrame frame;
    transform_batch(dir, count, in, in_stride, in_dist, out, out_stride, out_dist,
                    frame.take<T>(batch_scratch_size()));
  }

 private:
  std::shared_ptr<const detail::fft::Plan<T>> plan_;
};

namespace detail {
namespace fft {
// Real transforms of even length n run one complex transform of n/2 (even samples in the
// real parts, odd in the imaginary parts) and untangle the two spectra with w_n^k; odd
// lengths run a complex transform of n.
template <class T>
struct RealPlan {
  Index n = 0;
  std::shared_ptr<const Plan<T>> complex;  // n/2 (even n) or n (odd n)
  std::vector<T> twiddle;                  // w_n^k, k = 0..n/2 (even n)
};

template <class T>
std::shared_ptr<const RealPlan<T>> cached_real_plan(Index n) {
  if (n < 1) fail<ArgumentError>("RealFft: expected a length >= 1, got ", n);
  return cache_lookup<RealPlan<T>>(n, [](Index len) {
    auto p = std::make_shared<RealPlan<T>>();
    p->n = len;
    const bool even = len % 2 == 0;
    p->complex = cached_plan<T>(even ? len / 2 : len);
    if (even) {
      p->twiddle.resize(2 * (len / 2 + 1));
      for (Index k = 0; k <= len / 2; ++k) {
        double re, im;
        unit_root(k, len, re, im);
        p->twiddle[2 * k] = static_cast<T>(re);
        p->twiddle[2 * k + 1] = static_cast<T>(im);
      }
    }
    return std::shared_ptr<const RealPlan<T>>(std::move(p));
  });
}
}  // namespace fft
}  // namespace detail

// Real-input transforms of one length.
template <class T>
class RealFft {
 public:
  explicit RealFft(Index n) : plan_(detail::fft::cached_real_plan<T>(n)) {
    detail::fft::check_scalar<T>();
  }

  Index size() const { return plan_->n; }
  // Complex bins of the half spectrum: n/2 + 1.
  Index spectrum_size() const { return plan_->n / 2 + 1; }
  std::size_t scratch_size() const {
    return static_cast<std::size_t>(core_scratch() + 2 * plan_->n + 8);
  }

  // out[k] = sum_j in[j] exp(-2 pi i jk/n), k = 0..n/2.
  void forward(const T* in, std::complex<T>* out, T* scratch) const {
    const Index n = plan_->n;
    const auto& k = detail::fft::kernels<T>();
    T* z = detail::fft::line_aligned(scratch);
    T* rest = z + 2 * n + 4;
    if (n % 2 != 0) {
      for (Index j = 0; j < n; ++j) {
        z[2 * j] = in[j];
        z[2 * j + 1] = T(0);
      }
      k.single(*plan_->complex, false, z, z, rest);
      std::memcpy(static_cast<void*>(out), z, sizeof(T) * 2 * static_cast<std::size_t>(n / 2 + 1));
      return;
    }
    const Index h = n / 2;
    k.single(*plan_->complex, false, in, z, rest);  // even/odd samples as (re, im)
    z[2 * h] = z[0];
    z[2 * h + 1] = z[1];
    const T* w = plan_->twiddle.data();
    T* o = reinterpret_cast<T*>(out);
    // Bins k and h-k share the two spectra values they need.
    for (Index i = 0; i <= h / 2; ++i) {
      const Index j = h - i;
      const T ar = z[2 * i], ai = z[2 * i + 1], br = z[2 * j], bi = z[2 * j + 1];
      for (int pass = 0; pass < 2; ++pass) {
        const Index kk = pass == 0 ? i : j;
        const T zr = pass == 0 ? ar : br, zi = pass == 0 ? ai : bi;
        const T cr = pass == 0 ? br : ar, ci = pass == 0 ? -bi : -ai;  // conj Z[h-k]
        const T er = T(0.5) * (zr + cr), ei = T(0.5) * (zi + ci);        // even spectrum
        const T dr = T(0.5) * (zr - cr), di = T(0.5) * (zi - ci);
        const T odr = di, odi = -dr;  // odd spectrum = (Z - conj Z')/(2i)
        const T wr = w[2 * kk], wi = w[2 * kk + 1];
        o[2 * kk] = er + odr * wr - odi * wi;
        o[2 * kk + 1] = ei + odr * wi + odi * wr;
      }
    }
  }
  void forward(const T* in, std::complex<T>* out) const {
    ScratchFrame frame;
    forward(in, out, frame.take<T>(scratch_size()));
  }

  // out[j] = sum_{k<n} X[k] exp(+2 pi i jk/n) with X[n-k] = conj X[k]: n times the inverse.
  // Only in[0..n/2] is read; the imaginary parts of in[0] (and in[n/2], n even) are ignored.
  void inverse(const std::complex<T>* in, T* out, T* scratch) const {
    const Index n = plan_->n;
    const auto& k = detail::fft::kernels<T>();
    const T* x = reinterpret_cast<const T*>(in);
    T* z = detail::fft::line_aligned(scratch);
    T* rest = z + 2 * n + 4;
    if (n % 2 != 0) {
      for (Index i = 0; i <= n / 2; ++i) {
        z[2 * i] = x[2 * i];
        z[2 * i + 1] = i == 0 ? T(0) : x[2 * i + 1];
      }
      for (Index i = n / 2 + 1; i < n; ++i) {
        z[2 * i] = x[2 * (n - i)];
        z[2 * i + 1] = -x[2 * (n - i) + 1];
      }
      k.single(*plan_->complex, true, z, z, rest);
      for (Index j = 0; j < n; ++j) out[j] = z[2 * j];
      return;
    }
    const Index h = n / 2;
    const T* w = plan_->twiddle.data();
    for (Index i = 0; i < h; ++i) {
      const Index j = h - i;
      const T ar = x[2 * i], ai = i == 0 ? T(0) : x[2 * i + 1];
      const T br = x[2 * j], bi = j == h ? T(0) : x[2 * j + 1];
      // Fe = X[k] + conj X[h-k], Fo = (X[k] - conj X[h-k]) * conj(w^k), Z = Fe + i Fo
      const T er = ar + br, ei = ai - bi;
      const T dr = ar - br, di = ai + bi;
      const T wr = w[2 * i], wi = -w[2 * i + 1];
      const T fr = dr * wr - di * wi, fi = dr * wi + di * wr;
      z[2 * i] = er - fi;
      z[2 * i + 1] = ei + fr;
    }
    k.single(*plan_->complex, true, z, out, rest);  // out holds n reals = h complex
  }
  void inverse(const std::complex<T>* in, T* out) const {
    ScratchFrame frame;
    inverse(in, out, frame.take<T>(scratch_size()));
  }

  // Discrete Hartley transform: out[k] = sum_j in[j] (cos + sin)(2 pi jk/n) = Re X - Im X.
  void hartley(const T* in, T* out, T* scratch) const {
    const Index n = plan_->n, h = n / 2;
    std::complex<T>* spec = reinterpret_cast<std::complex<T>*>(scratch);  // h+1 bins
    forward(in, spec, scratch + 2 * n + 8);
    // Bins above n/2 are conjugates: H[n-k] = Re X[k] + Im X[k].
    for (Index k = 1; k < n - h; ++k) out[n - k] = spec[k].real() + spec[k].imag();
    for (Index k = 0; k <= h; ++k) out[k] = spec[k].real() - spec[k].imag();
  }
  void hartley(const T* in, T* out) const {
    ScratchFrame frame;
    hartley(in, out, frame.take<T>(scratch_size()));
  }

 private:
  // forward()/inverse() use the first core_scratch() scalars; hartley() the rest.
  Index core_scratch() const {
    return 2 * plan_->n + 4 + detail::fft::single_scratch(*plan_->complex) + 64;
  }

  std::shared_ptr<const detail::fft::RealPlan<T>> plan_;
};

// Scalars of scratch fft2_real_part needs for an n x d input (any ISA).
template <class T>
std::size_t fft2_real_part_scratch(Index n, Index d) {
  const auto pn = detail::fft::cached_plan<T>(n);
  const auto pd = detail::fft::cached_plan<T>(d);
  return static_cast<std::size_t>(
      detail::fft::mix2d_layout(*pn, *pd, n, d, detail::fft::max_lanes).total);
}

// y = Re(F_n x F_d^T) = Re(fft2(x)) for real x (n x d), computed from a real-input transform
// along d and complex transforms along n on half the columns, never a full complex 2D
// transform. y may be x. No normalisation.
template <class T>
void fft2_real_part(const ConstMatrixRef<T>& x, MatrixRef<T> y, T* scratch) {
  detail::fft::check_scalar<T>();
  detail::expect_shape("fft2_real_part", "output", x.rows(), x.cols(), y.rows(), y.cols());
  const Index n = x.rows(), d = x.cols();
  if (n == 0 || d == 0) return;
  const auto pn = detail::fft::cached_plan<T>(n);
  const auto pd = detail::fft::cached_plan<T>(d);
  detail::fft::kernels<T>().mix2d(*pn, *pd, x.data(), x.outerStride(), n, d, y.data(),
                                  y.outerStride(), scratch);
}

template <class T>
void fft2_real_part(const ConstMatrixRef<T>& x, MatrixRef<T> y) {
  ScratchFrame frame;
  fft2_real_part<T>(x, y, frame.take<T>(fft2_real_part_scratch<T>(x.rows(), x.cols())));
}

#if defined(TOKENMIX_SEPARATE_KERNELS)
// Compiled in the translation unit that includes tokenmix/instantiate_kernels.hpp.
namespace detail {
namespace fft {
extern template const Kernels<float>& kernels<float>(Isa);
extern template const Kernels<double>& kernels<double>(Isa);
}  // namespace fft
}  // namespace detail
#endif

}  // namespace tokenmix

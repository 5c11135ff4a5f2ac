#pragma once
// FFT plan data: factorisation, twiddle tables and Bluestein parameters for one length and
// one scalar type. Plans are built once (tokenmix/core/fft.hpp caches them) and never change
// afterwards, so any number of threads may execute one plan at the same time.
//
// The transform is a Stockham autosort, decimation in frequency: a stage of radix p splits
// each of the l1 current sub-transforms of length L = p*m into p of length m,
//   b[(j*p + r)*l1 + s] = w_L^(j*r) * sum_q a[(j + m*q)*l1 + s] * w_p^(q*r),
// with s (the sub-transform) innermost. After the last stage element k sits at index k, so no
// bit reversal is needed and every stage streams through memory.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/tensor.hpp"

namespace tokenmix {
namespace detail {
namespace fft {

// Odd prime factors up to this size get a direct O(p^2) butterfly; a length with a larger
// prime factor always goes through Bluestein.
inline constexpr int max_generic_radix = 61;

struct Stage {
  int radix;
  Index l1;        // sub-transforms already split off (product of earlier radices)
  Index m;         // length of each sub-transform after this stage
  Index twiddle;   // offset (in scalars) of this stage's (m x (radix-1)) twiddles
  Index coef;      // offset of the (h x h) cos/sin table of a generic odd radix, h=(p-1)/2
};

// exp(-2 pi i k / n) with k reduced mod n first and evaluated in double (accurate to ~1 ulp
// of double; repeated multiplication would accumulate O(n) rounding).
inline void unit_root(Index k, Index n, double& re, double& im) {
  k %= n;
  if (k < 0) k += n;
  // Fold into the first octant so sin/cos get small arguments; exact symmetries only.
  const double two_pi = 6.283185307179586476925286766559;
  // 8k vs n comparisons keep the folding exact in integers.
  const Index k8 = 8 * k;
  if (k8 <= n) {
    const double a = two_pi * static_cast<double>(k) / static_cast<double>(n);
    re = std::cos(a);
    im = -std::sin(a);
    return;
  }
  if (2 * k <= n) {  // (n/8, n/2]: use the complement n/4 - k or n/2 - k
    if (4 * k <= n) {
      const double a = two_pi * static_cast<double>(n - 4 * k) / (4.0 * static_cast<double>(n));
      re = std::sin(a);
      im = -std::cos(a);
    } else {
      const double a = two_pi * static_cast<double>(n - 2 * k) / (2.0 * static_cast<double>(n));
      re = -std::cos(a);
      im = -std::sin(a);
    }
    return;
  }
  // (n/2, n): conjugate of the root for n - k.
  unit_root(n - k, n, re, im);
  im = -im;
}

// Factorisation into the passes this library implements, 8s first: each pass streams the
// whole array through the cache once, so fewer, larger radices win once data leaves L1.
// max_bits caps the power-of-two radix at 2^max_bits.
inline std::vector<int> factorize(Index n, int max_bits = 4) {
  std::vector<int> f;
  // 2^k in ceil(k/max_bits) passes of radix 16, 8, 4 or 2, as balanced as possible (16 x 16
  // beats 8 x 8 x 4; 8 x 8 x 8 beats 16 x 16 x 2).
  int k = 0;
  while (n % 2 == 0) {
    ++k;
    n /= 2;
  }
  const int passes = (k + max_bits - 1) / max_bits;
  for (int i = 0; i < passes; ++i) {
    const int bits = (k + (passes - i) - 1) / (passes - i);  // ceil of the remaining share
    f.push_back(1 << bits);
    k -= bits;
  }
  for (Index p = 3; p * p <= n; p += 2) {
    while (n % p == 0) {
      f.push_back(static_cast<int>(p));
      n /= p;
    }
  }
  if (n > 1) f.push_back(static_cast<int>(n));
  return f;
}

inline Index largest_prime_factor(Index n) {
  Index best = 1;
  for (Index p = 2; p * p <= n; ++p)
    while (n % p == 0) {
      best = p;
      n /= p;
    }
  return std::max(best, n);
}

// Rough operation count of a direct mixed-radix transform: small radices cost about
// p-1 complex additions per element per pass, generic odd radices about p (O(p^2) butterfly
// over p elements); the log factor is implicit in the number of passes.
inline double direct_cost(Index n) {
  double per_element = 0;
  for (int f : factorize(n)) per_element += f == 16 ? 6.0 : f == 8 ? 4.5 : f <= 5 ? f - 1 : 1.1 * f;
  return static_cast<double>(n) * per_element;
}

// Smallest 2^a 3^b 5^c >= n: the convolution length Bluestein pads to.
inline Index smooth_size(Index n) {
  if (n <= 6) return n;
  Index best = 2 * n;
  for (Index f5 = 1; f5 < best; f5 *= 5)
    for (Index f35 = f5; f35 < best; f35 *= 3) {
      Index x = f35;
      while (x < n) x *= 2;
      best = std::min(best, x);
    }
  return best;
}

// Passes over memory a transform of the 2-3-5 smooth length n makes, weighted by what they
// cost relative to a power-of-two pass (measured, AVX-512 float, 8K-10K points: a length
// with two radix-3 passes ran 1.3x slower than a 10% longer one with a radix-5 pass).
inline double smooth_pass_cost(Index n) {
  double c = 0;
  for (int f : factorize(n)) c += f == 3 ? 1.5 : f == 5 ? 1.2 : 1.0;
  return c;
}

// Bluestein's circular convolution holds the chirp lags -(n-1) .. n-1 in 2n - 1 slots; it may
// run on up to this many slots fewer, so that a length just past a smooth size convolves over
// that size (4099, 2n - 1 = 8197, on 8192 points, not 10240). The shared slots hold the
// positive lags; the few products that needed the negative lag of a shared slot (outputs
// k < overlap, each from the last overlap - k inputs) are corrected directly afterwards.
inline constexpr Index max_bluestein_overlap = 16;

// Slots shared by a positive and a negative chirp lag when convolving n points over conv.
inline Index bluestein_overlap(Index n, Index conv) {
  return std::max<Index>(0, 2 * n - 1 - conv);
}

// Relative cost of convolving n points over conv: its passes, plus the overlap corrections
// (overlap (overlap + 1) / 2 scalar complex multiply-adds, each costing about as much as six
// elements of a vectorised pass).
inline double bluestein_cost(Index n, Index conv) {
  const auto overlap = static_cast<double>(bluestein_overlap(n, conv));
  return static_cast<double>(conv) * (1.0 + smooth_pass_cost(conv)) +
         3.0 * overlap * (overlap + 1.0);
}

// Bluestein's convolution length: 2^a 3^b 5^c >= 2n - 1 - max_bluestein_overlap, and from
// 512 on a multiple of 256 so that single transforms of it take the four-step path with 16
// lanes; among those up to twice the smallest, the cheapest by bluestein_cost.
inline Index bluestein_size(Index n) {
  const Index need = 2 * n - 1;
  if (need < 512) return smooth_size(need);
  Index best = smooth_size(need - max_bluestein_overlap);
  while (best % 256 != 0) best = smooth_size(best + 1);
  double best_cost = bluestein_cost(n, best);
  for (Index c = smooth_size(best + 1); c <= 2 * best; c = smooth_size(c + 1)) {
    if (c % 256 != 0) continue;
    const double cost = bluestein_cost(n, c);
    if (cost < best_cost) {
      best = c;
      best_cost = cost;
    }
  }
  return best;
}

// Bluestein: two transforms of the convolution length plus three pointwise products.
inline bool prefer_bluestein(Index n) {
  if (n < 8) return false;
  if (largest_prime_factor(n) > max_generic_radix) return true;
  const Index conv = bluestein_size(n);
  const auto overlap = static_cast<double>(bluestein_overlap(n, conv));
  return 2.0 * direct_cost(conv) * 1.5 + 6.0 * static_cast<double>(conv) +
             3.0 * overlap * (overlap + 1.0) <
         direct_cost(n);
}

template <class T>
struct Plan;

// Tables for executing one long transform with its work spread over the W lanes of a SIMD
// register ("four-step": n = m*W, W interleaved transforms of length m, twiddles, then m
// transforms of length W across lanes). Built lazily per lane width.
template <class T>
struct FourStep {
  Index m = 0;
  std::shared_ptr<const Plan<T>> sub_m, sub_w;
  std::vector<T> twiddle;  // [k1][re x W][im x W] = w_n^(j2*k1)
  // Bluestein plans only (their own n is never split four-step): the chirp and the kernel
  // spectrum in lane layout for a four-step convolution of length conv = m*W.
  std::vector<T> chirp;   // [j1][re x W][im x W] = chirp[W*j1 + j2], zero from n on
  std::vector<T> kernel;  // [b + k2][re x W][im x W] = kernel[row(b + t) + m*k2], b = 0, W, ..
  // Bluestein: rows in the order row(p) = even k1 then odd k1, the twiddles permuted alike,
  // fold[j1] = w_m^j1 for j1 < m/2, and sub_m of length m/2.
  std::vector<T> fold;
};

template <class T>
struct Plan {
  Index n = 0;
  std::vector<Stage> stages;
  std::vector<T> twiddle;  // (re, im) pairs
  std::vector<T> coef;     // (cos, sin) pairs
  // Bluestein (when conv > 0): x -> chirp * (conv-length circular convolution with chirp*).
  // `overlap` slots of the convolution hold both a positive and a negative chirp lag.
  Index conv = 0, overlap = 0;
  std::shared_ptr<const Plan<T>> sub;
  std::vector<T> chirp;   // n pairs exp(-i pi j^2 / n)
  std::vector<T> kernel;  // conv pairs: FFT(conj chirp, wrapped) / conv
  // overlap pairs conj chirp[n - overlap + t] - conj chirp[conv - n + overlap - t]: the lag a
  // product needed minus the one its shared slot holds.
  std::vector<T> wrap;

  // Four-step tables for lane widths 2, 4, 8, 16, 32 (slot log2(W) - 1).
  mutable std::array<std::once_flag, 5> four_step_once;
  mutable std::array<FourStep<T>, 5> four_step;

  bool bluestein() const { return conv > 0; }
};

// A direct plan whose power-of-two passes have radix <= 8, for the sub-transforms of a
// four-step split with 512-bit lane vectors: a radix-16 pass holds 16 lane elements (32
// vectors) plus twiddles and spills on 32 registers; in those sub-transforms the data sits
// in L1, so the extra pass costs less (AVX-512 float, 2048 and 4096 points: ~15% faster).
template <class T>
struct NarrowPlan : Plan<T> {};

// Fills stages, twiddles and generic-radix tables of a direct plan.
template <class T>
void build_direct(Plan<T>& plan, int max_bits = 4) {
  const Index n = plan.n;
  plan.stages.clear();
  plan.twiddle.clear();
  plan.coef.clear();
  if (n <= 1) return;
  Index l1 = 1;
  for (int p : factorize(n, max_bits)) {
    if (p > max_generic_radix)
      fail<ArgumentError>("fft plan: expected prime factors <= ", max_generic_radix,
                          " for a direct plan, got ", p, " in ", n);
    Stage st;
    st.radix = p;
    st.l1 = l1;
    st.m = n / (l1 * p);
    st.twiddle = static_cast<Index>(plan.twiddle.size());
    st.coef = static_cast<Index>(plan.coef.size());
    for (Index j = 0; j < st.m; ++j)
      for (int r = 1; r < p; ++r) {
        double re, im;
        unit_root(j * r * l1, n, re, im);  // w_L^(j r) with L = n / l1
        plan.twiddle.push_back(static_cast<T>(re));
        plan.twiddle.push_back(static_cast<T>(im));
      }
    if (p > 5 && p % 2 == 1) {
      const int h = (p - 1) / 2;
      for (int r = 1; r <= h; ++r)
        for (int q = 1; q <= h; ++q) {
          double re, im;
          unit_root(static_cast<Index>(q) * r, p, re, im);
          plan.coef.push_back(static_cast<T>(re));
          plan.coef.push_back(static_cast<T>(-im));  // +sin(2 pi q r / p)
        }
    }
    plan.stages.push_back(st);
    l1 *= p;
  }
}

}  // namespace fft
}  // namespace detail
}  // namespace tokenmix

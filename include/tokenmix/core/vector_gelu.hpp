// Both GELU forms and tanh for float vectors, written once over vector traits V and compiled
// once per ISA: gemm_microkernel.hpp includes this file, under the TOKENMIX_GEMM_TARGET (a
// target attribute) and TOKENMIX_GEMM_NS (a namespace) it is itself compiled with. No include
// guard on purpose. Traits that have the primitives below say so with V::gelu_ops (AVX-512
// and AVX2 floats); activate_vectors at the end (activate_vector: a group of one) routes GELU
// and tanh there and everything else to V::activate.
//
// V provides, besides the micro-kernel's set1, zero, add, mul and fmadd: min and max (the
// second operand where either is NaN, as on x86), abs, sub, fmsub (a b - c), fnmadd (c - a b),
// fnmsub (-a b - c), round (to nearest); less (ordered a < b), not_greater / not_less_equal
// (unordered-or: NaN lanes set), select(pred, a, b) (a where set); for float lanes recip
// (1 / d to ~1 float ulp), scale_or(keep, v, n, other) (v 2^n for integral n in [-252, 0]
// where keep is set, with no subnormal step, else other), scale_small (v 2^n for n in
// [-40, 0]); and Wide, the double traits of the same ISA, which widen(x, lo, hi) and
// narrow(lo, hi) convert to and from (the tanh form's reduction).
//
// Accuracy: within 1e-6 relative everywhere the result is a normal float (measured worst on
// 1.9M points: 5.8e-7 erf, 2.3e-7 tanh), NaN in NaN out, GELU(-inf) = NaN and
// GELU(+inf) = +inf as in the scalar path and PyTorch. Below FLT_MIN the erf form flushes to
// -0 and the tanh form rounds once from a value within that accuracy (off by one 2^-149 step
// next to midpoints, ~2% of its subnormal band). No intermediate step is subnormal (each
// costs a microcode assist of ~100 cycles, which made a first erf version slower than double
// code on GEMM outputs). tests/core/test_vector_gelu.cpp checks all of it on every ISA.

#if !defined(TOKENMIX_GEMM_TARGET) || !defined(TOKENMIX_GEMM_NS)
#error "vector_gelu.hpp is included by gemm_microkernel.hpp only"
#endif

namespace tokenmix {
namespace detail {
namespace TOKENMIX_GEMM_NS {

// e^r for |r| <= ~0.35: Taylor to r^7 (the r^8 term is below float rounding).
template <class V>
TOKENMIX_GEMM_TARGET TOKENMIX_GEMM_INLINE typename V::reg exp_reduced_f32(typename V::reg r) {
  typename V::reg p = V::set1(1.0f / 5040.0f);
#pragma GCC unroll 16
  for (float c : {1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f, 1.0f / 6.0f, 0.5f, 1.0f, 1.0f})
    p = V::fmadd(p, r, V::set1(c));
  return p;
}

// GELU (erf form) in float arithmetic. The form carries no cancellation: with
// Q = Phi(-|x|) = erfc(z) / 2, z = |x| / sqrt 2, GELU(x) = x Q for x < 0 and x (1 - Q) for
// x >= 0 (Q <= 1/2). erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2), is the Numerical Recipes
// fit (relative error < 1.2e-7 for every z, so no separate series is needed near 0 at float
// precision). z^2 reaches ~86, so it is carried as x^2 / 2 split into a float and its exact
// FMA rounding error: rounding z first would cost z^2 * eps (~40 ulp). The power of two 2^n
// of the exp is applied last, to x Q itself, and below x = -13.1463 where |GELU| < FLT_MIN
// the result is x * 0; on the positive side Q < 2^-40 leaves 1 - Q = 1 anyway.
template <class V>
TOKENMIX_GEMM_TARGET TOKENMIX_GEMM_INLINE typename V::reg gelu_erf_f32(typename V::reg x) {
  using reg = typename V::reg;
  const reg ax = V::abs(x);
  const reg lim = V::set1(13.1463f);
  const reg a = V::min(V::max(ax, V::set1(1e-10f)), lim);
  const reg one = V::set1(1.0f), half = V::set1(0.5f);
  const reg t = V::recip(V::fmadd(half, V::mul(a, V::set1(0.70710678118654752440f)), one));
  // P(t) = c0 + c1 t + ... + c9 t^9 in Estrin's scheme: a dependency chain 4 operations deep
  // instead of Horner's 9. Each vector's GELU is one long chain and the out-of-order window
  // holds only a few, so chain depth, not operation count, sets the throughput (11% faster
  // than Horner; Estrin for exp_reduced_f32 too gained nothing more for this form and lost 2%
  // for the tanh form).
  const reg t2 = V::mul(t, t);
  const reg t4 = V::mul(t2, t2);
  const reg p01 = V::fmadd(t, V::set1(1.00002368f), V::set1(-1.26551223f));
  const reg p23 = V::fmadd(t, V::set1(0.09678418f), V::set1(0.37409196f));
  const reg p45 = V::fmadd(t, V::set1(0.27886807f), V::set1(-0.18628806f));
  const reg p67 = V::fmadd(t, V::set1(1.48851587f), V::set1(-1.13520398f));
  const reg p89 = V::fmadd(t, V::set1(0.17087277f), V::set1(-0.82215223f));
  const reg p0_3 = V::fmadd(p23, t2, p01);
  const reg p4_7 = V::fmadd(p67, t2, p45);
  const reg q = V::fmadd(V::fmadd(p89, t4, p4_7), t4, p0_3);
  // -z^2 = -(h + l) / 2 exactly; the exponent is -h/2 + s with s = q - l/2 small.
  const reg h = V::mul(a, a);
  const reg l = V::fmsub(a, a, h);
  const reg hh = V::mul(h, half);
  const reg s = V::fnmadd(half, l, q);
  const reg n = V::round(V::mul(V::sub(s, hh), V::set1(1.44269504088896341f)));
  // r = -h/2 - n ln2 + s, ln2 in two parts; the first FMA rounds only its small result.
  reg r = V::fnmadd(n, V::set1(0.693145751953125f), V::sub(V::zero(), hh));
  r = V::fnmadd(n, V::set1(1.428606765330187045e-6f), r);
  const reg m = V::mul(V::mul(t, half), exp_reduced_f32<V>(V::add(r, s)));  // Q = m 2^n
  // x < 0: x m 2^n, and x * 0 past the limit: -0, or NaN for x = -inf. NaN lanes compare
  // unordered and are kept.
  const reg neg = V::scale_or(V::not_greater(ax, lim), V::mul(x, m), n, V::mul(x, V::zero()));
  const reg pos = V::mul(x, V::sub(one, V::scale_small(m, V::max(n, V::set1(-40.0f)))));
  return V::select(V::less(x, V::zero()), neg, pos);
}

// The tanh form's v = x (c1 + c2 x^2) reduced as -|v| = n ln2 + r (n integral,
// |r| <= ln2 / 2), in double lanes of traits D. |v| is capped at 200 (e^-200 is far below
// any float), which also keeps x = +-inf from producing inf - inf; a NaN v becomes 200 there,
// harmlessly, since the result is x times a finite factor. The sign of -|v| is folded into
// the rounding step's factor and the final fnmsub.
template <class D>
TOKENMIX_GEMM_TARGET TOKENMIX_GEMM_INLINE void gelu_tanh_reduce(typename D::reg x,
                                                                typename D::reg& r,
                                                                typename D::reg& n) {
  using reg = typename D::reg;
  const reg v = D::mul(x, D::fmadd(D::mul(x, x), D::set1(0.071354816272600249),
                                   D::set1(1.5957691216057308)));
  const reg a = D::min(D::abs(v), D::set1(200.0));
  n = D::round(D::mul(a, D::set1(-1.4426950408889634)));
  r = D::fnmsub(n, D::set1(0.69314718055994531), a);
}

// GELU (tanh form): x sigmoid(v) with v = x (c1 + c2 x^2), c1 = 2 sqrt(2/pi),
// c2 = 0.044715 c1, i.e. with w = exp(-|v|), x / (1 + w) for x >= 0 and x w / (1 + w) for
// x < 0, with no cancellation on either side. In the negative tail the result is
// ~ x exp(-|v|) and |v| reaches ~88 before it leaves the normal range, so an error in v passes
// straight into the result: v in float would carry |v| eps ~ 5e-6. v and its reduction
// -|v| = n ln2 + r therefore run in double (gelu_tanh_reduce), r and n return as floats, and
// e^r and the rest run in float.
template <class V>
TOKENMIX_GEMM_TARGET TOKENMIX_GEMM_INLINE typename V::reg gelu_tanh_f32(typename V::reg x) {
  using reg = typename V::reg;
  using D = typename V::Wide;
  typename D::reg lo, hi, r_lo, n_lo, r_hi, n_hi;
  V::widen(x, lo, hi);
  gelu_tanh_reduce<D>(lo, r_lo, n_lo);
  gelu_tanh_reduce<D>(hi, r_hi, n_hi);
  const reg n = V::narrow(n_lo, n_hi);
  const reg p = exp_reduced_f32<V>(V::narrow(r_lo, r_hi));
  // w = p 2^n; below 2^-40 it no longer changes 1 + w, and the clamp keeps w normal.
  const reg q = V::recip(V::fmadd(p, V::scale_small(V::set1(1.0f), V::max(n, V::set1(-40.0f))),
                                  V::set1(1.0f)));
  // x < 0: (x p q) 2^n, the power of two applied last, so that only the result itself can be
  // subnormal (from x = -10.1006 down its exact value is, and it is returned rounded, as by
  // the scalar path); at or below x = -10.7708683, where |GELU| < 2^-150 rounds to zero,
  // x * 0: -0, or NaN for x = -inf. NaN lanes take the positive form. The test is on |x| so
  // that positive x past 10.77 (positive form) skip the subnormal step too.
  const reg neg = V::scale_or(V::less(V::abs(x), V::set1(10.7708683f)),
                              V::mul(V::mul(x, p), q), n, V::mul(x, V::zero()));
  return V::select(V::less(x, V::zero()), neg, V::mul(x, q));
}

// tanh in float arithmetic: tanh(x) = -sign(x) e / (2 + e) with e = expm1(-2|x|) in (-1, 0],
// which cancels nowhere (1 - exp(-2|x|) would near 0). expm1(y) = 2^n expm1(r) + (2^n - 1)
// with y = n ln2 + r: for n = 0 that is expm1(r) itself, for n < 0 both terms are negative.
// |x| is capped at 10, where tanh rounds to 1; below 2^-12, tanh(x) = x to float precision
// (x^3 / 3 is below 2^-25 of it), which also keeps -0 and subnormal x. NaN passes through:
// the cap is min(10, |x|), which returns its second operand when one is NaN. The FNet pooler
// is its user; before, AVX-512 evaluated float tanh in double vectors and AVX2 lane by lane.
template <class V>
TOKENMIX_GEMM_TARGET TOKENMIX_GEMM_INLINE typename V::reg tanh_f32(typename V::reg x) {
  using reg = typename V::reg;
  const reg ax = V::abs(x);
  const reg y = V::mul(V::min(V::set1(10.0f), ax), V::set1(-2.0f));
  const reg n = V::round(V::mul(y, V::set1(1.44269504088896341f)));
  reg r = V::fnmadd(n, V::set1(0.693145751953125f), y);
  r = V::fnmadd(n, V::set1(1.428606765330187045e-6f), r);
  // expm1(r) = r + r^2 (1/2 + r/6 + ... + r^7/9!) for |r| <= ln2 / 2.
  reg q = V::set1(1.0f / 362880.0f);
#pragma GCC unroll 16
  for (float c : {1.0f / 40320.0f, 1.0f / 5040.0f, 1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f,
                  1.0f / 6.0f, 0.5f})
    q = V::fmadd(q, r, V::set1(c));
  const reg p = V::fmadd(V::mul(r, r), q, r);
  const reg s = V::scale_small(V::set1(1.0f), n);  // 2^n, n in [-29, 0]
  const reg e = V::fmadd(s, p, V::sub(s, V::set1(1.0f)));
  const reg t = V::mul(e, V::recip(V::add(e, V::set1(2.0f))));  // -tanh |x|
  const reg signed_t = V::select(V::less(x, V::zero()), t, V::sub(V::zero(), t));
  return V::select(V::less(ax, V::set1(0x1p-12f)), x, signed_t);
}

// N vectors of traits V as one: each operation applies to the N in turn, so one call of the
// functions above evaluates N independent vectors with their instructions interleaved in
// program order. Each vector's GELU is a single dependency chain ~100 cycles long, and the
// scheduler holds too few instructions to overlap the chains of vectors evaluated one after
// the other: interleaved, the chains run side by side.
template <class V, int N>
struct VecGroup {
  using T = typename V::T;
  using Wide = VecGroup<typename V::Wide, N>;
  struct reg {
    typename V::reg v[N];
  };
  // What the comparisons return: a mask register on AVX-512, a vector of lane masks on AVX2.
  struct mask {
    decltype(V::less(std::declval<typename V::reg>(), std::declval<typename V::reg>())) v[N];
  };
#define TOKENMIX_GROUP_FN static TOKENMIX_GEMM_TARGET TOKENMIX_GEMM_INLINE
#define TOKENMIX_GROUP_EACH(R, expr) \
  R r;                               \
  _Pragma("GCC unroll 8") for (int j = 0; j < N; ++j) r.v[j] = expr; \
  return r
  TOKENMIX_GROUP_FN reg zero() { TOKENMIX_GROUP_EACH(reg, V::zero()); }
  TOKENMIX_GROUP_FN reg set1(T x) { TOKENMIX_GROUP_EACH(reg, V::set1(x)); }
#define TOKENMIX_GROUP_UNARY(name) \
  TOKENMIX_GROUP_FN reg name(reg a) { TOKENMIX_GROUP_EACH(reg, V::name(a.v[j])); }
#define TOKENMIX_GROUP_BINARY(R, name) \
  TOKENMIX_GROUP_FN R name(reg a, reg b) { TOKENMIX_GROUP_EACH(R, V::name(a.v[j], b.v[j])); }
#define TOKENMIX_GROUP_TERNARY(name)                   \
  TOKENMIX_GROUP_FN reg name(reg a, reg b, reg c) {    \
    TOKENMIX_GROUP_EACH(reg, V::name(a.v[j], b.v[j], c.v[j])); \
  }
  TOKENMIX_GROUP_UNARY(abs)
  TOKENMIX_GROUP_UNARY(round)
  TOKENMIX_GROUP_UNARY(recip)
  TOKENMIX_GROUP_BINARY(reg, min)
  TOKENMIX_GROUP_BINARY(reg, max)
  TOKENMIX_GROUP_BINARY(reg, add)
  TOKENMIX_GROUP_BINARY(reg, sub)
  TOKENMIX_GROUP_BINARY(reg, mul)
  TOKENMIX_GROUP_BINARY(reg, scale_small)
  TOKENMIX_GROUP_BINARY(mask, less)
  TOKENMIX_GROUP_BINARY(mask, not_greater)
  TOKENMIX_GROUP_TERNARY(fmadd)
  TOKENMIX_GROUP_TERNARY(fmsub)
  TOKENMIX_GROUP_TERNARY(fnmadd)
  TOKENMIX_GROUP_TERNARY(fnmsub)
  TOKENMIX_GROUP_FN reg select(mask m, reg a, reg b) {
    TOKENMIX_GROUP_EACH(reg, V::select(m.v[j], a.v[j], b.v[j]));
  }
  TOKENMIX_GROUP_FN reg scale_or(mask keep, reg v, reg n, reg other) {
    TOKENMIX_GROUP_EACH(reg, V::scale_or(keep.v[j], v.v[j], n.v[j], other.v[j]));
  }
  TOKENMIX_GROUP_FN reg narrow(typename Wide::reg lo, typename Wide::reg hi) {
    TOKENMIX_GROUP_EACH(reg, V::narrow(lo.v[j], hi.v[j]));
  }
  TOKENMIX_GROUP_FN void widen(reg x, typename Wide::reg& lo, typename Wide::reg& hi) {
    _Pragma("GCC unroll 8") for (int j = 0; j < N; ++j) V::widen(x.v[j], lo.v[j], hi.v[j]);
  }
#undef TOKENMIX_GROUP_TERNARY
#undef TOKENMIX_GROUP_BINARY
#undef TOKENMIX_GROUP_UNARY
#undef TOKENMIX_GROUP_EACH
#undef TOKENMIX_GROUP_FN
};

// act(x[j]) for N vectors of traits V at once: the functions above where V has their
// primitives, the N vectors interleaved (VecGroup); V::activate otherwise.
template <class V, int N>
TOKENMIX_GEMM_TARGET TOKENMIX_GEMM_INLINE void activate_vectors(Activation act,
                                                                typename V::reg (&x)[N]) {
  if constexpr (has_gelu_ops<V>::value) {
    if (act == Activation::gelu_erf || act == Activation::gelu_tanh ||
        act == Activation::tanh) {
      using G = VecGroup<V, N>;
      typename G::reg g;
#pragma GCC unroll 8
      for (int j = 0; j < N; ++j) g.v[j] = x[j];
      g = act == Activation::gelu_erf    ? gelu_erf_f32<G>(g)
          : act == Activation::gelu_tanh ? gelu_tanh_f32<G>(g)
                                         : tanh_f32<G>(g);
#pragma GCC unroll 8
      for (int j = 0; j < N; ++j) x[j] = g.v[j];
      return;
    }
  }
#pragma GCC unroll 8
  for (int j = 0; j < N; ++j) x[j] = V::activate(act, x[j]);
}

// act(x) for one vector: activate_vectors on a group of one.
template <class V>
TOKENMIX_GEMM_TARGET TOKENMIX_GEMM_INLINE typename V::reg activate_vector(Activation act,
                                                                          typename V::reg x) {
  typename V::reg one[1] = {x};
  activate_vectors<V, 1>(act, one);
  return one[0];
}

}  // namespace TOKENMIX_GEMM_NS
}  // namespace detail
}  // namespace tokenmix

// Both GELU forms for float vectors, written once over a primitives type M and compiled once
// per ISA: gemm_microkernel.hpp includes this file, under the TOKENMIX_GEMM_TARGET (a target
// attribute) and TOKENMIX_GEMM_NS (a namespace) it is itself compiled with. No include guard
// on purpose. Vector traits with such primitives name them V::GeluOps (AVX-512 and AVX2
// floats); activate_vector at the end routes GELU there and everything else to V::activate.
//
// M provides: reg, mask, set1, zero, abs, min, max, add, sub, mul, fmadd, fmsub, fnmadd,
// round (to nearest), recip (1 / d to ~1 float ulp), scale_or(keep, v, n, other) (v 2^n for
// integral n in [-252, 0] where keep is set, with no subnormal step, else other),
// scale_small (v 2^n for n in [-40, 0]), less (ordered a < b),
// not_greater / not_less_equal (unordered-or: NaN lanes set), select(mask, a, b) (a where
// set), and gelu_tanh_reduce(x, r, n) (see gelu_tanh).
//
// Accuracy: within 1e-6 relative everywhere the result is a normal float (measured worst:
// 4.8e-7 erf, 2.5e-7 tanh), NaN in NaN out, GELU(-inf) = NaN and GELU(+inf) = +inf as in the
// scalar path and PyTorch. No intermediate step is subnormal (each costs a microcode assist
// of ~100 cycles, which made a first erf version slower than double code on GEMM outputs).

#if !defined(TOKENMIX_GEMM_TARGET) || !defined(TOKENMIX_GEMM_NS)
#error "vector_gelu.hpp is included by gemm_microkernel.hpp only"
#endif

namespace tokenmix {
namespace detail {
namespace TOKENMIX_GEMM_NS {

// e^r for |r| <= ~0.35: Taylor to r^7 (the r^8 term is below float rounding).
template <class M>
TOKENMIX_GEMM_TARGET TOKENMIX_GEMM_INLINE typename M::reg exp_reduced_f32(typename M::reg r) {
  typename M::reg p = M::set1(1.0f / 5040.0f);
#pragma GCC unroll 16
  for (float c : {1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f, 1.0f / 6.0f, 0.5f, 1.0f, 1.0f})
    p = M::fmadd(p, r, M::set1(c));
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
template <class M>
TOKENMIX_GEMM_TARGET TOKENMIX_GEMM_INLINE typename M::reg gelu_erf_f32(typename M::reg x) {
  using reg = typename M::reg;
  const reg ax = M::abs(x);
  const reg lim = M::set1(13.1463f);
  const reg a = M::min(M::max(ax, M::set1(1e-10f)), lim);
  const reg one = M::set1(1.0f), half = M::set1(0.5f);
  const reg t = M::recip(M::fmadd(half, M::mul(a, M::set1(0.70710678118654752440f)), one));
  reg q = M::set1(0.17087277f);
#pragma GCC unroll 16
  for (float c : {-0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f, -0.18628806f,
                  0.09678418f, 0.37409196f, 1.00002368f, -1.26551223f})
    q = M::fmadd(q, t, M::set1(c));
  // -z^2 = -(h + l) / 2 exactly; the exponent is -h/2 + s with s = q - l/2 small.
  const reg h = M::mul(a, a);
  const reg l = M::fmsub(a, a, h);
  const reg hh = M::mul(h, half);
  const reg s = M::fnmadd(half, l, q);
  const reg n = M::round(M::mul(M::sub(s, hh), M::set1(1.44269504088896341f)));
  // r = -h/2 - n ln2 + s, ln2 in two parts; the first FMA rounds only its small result.
  reg r = M::fnmadd(n, M::set1(0.693145751953125f), M::sub(M::zero(), hh));
  r = M::fnmadd(n, M::set1(1.428606765330187045e-6f), r);
  const reg m = M::mul(M::mul(t, half), exp_reduced_f32<M>(M::add(r, s)));  // Q = m 2^n
  // x < 0: x m 2^n, and x * 0 past the limit: -0, or NaN for x = -inf. NaN lanes compare
  // unordered and are kept.
  const reg neg = M::scale_or(M::not_greater(ax, lim), M::mul(x, m), n, M::mul(x, M::zero()));
  const reg pos = M::mul(x, M::sub(one, M::scale_small(m, M::max(n, M::set1(-40.0f)))));
  return M::select(M::less(x, M::zero()), neg, pos);
}

// GELU (tanh form): x sigmoid(v) with v = x (c1 + c2 x^2), c1 = 2 sqrt(2/pi),
// c2 = 0.044715 c1, i.e. with w = exp(-|v|), x / (1 + w) for x >= 0 and x w / (1 + w) for
// x < 0, with no cancellation on either side. In the negative tail the result is
// ~ x exp(-|v|) and |v| reaches ~88 before it leaves the normal range, so an error in v passes
// straight into the result: v in float would carry |v| eps ~ 5e-6. M::gelu_tanh_reduce
// therefore computes v and its reduction -|v| = n ln2 + r in double and returns r and n as
// floats; e^r and the rest run in float.
template <class M>
TOKENMIX_GEMM_TARGET TOKENMIX_GEMM_INLINE typename M::reg gelu_tanh_f32(typename M::reg x) {
  using reg = typename M::reg;
  reg r, n;
  M::gelu_tanh_reduce(x, r, n);
  const reg p = exp_reduced_f32<M>(r);
  // w = p 2^n; below 2^-40 it no longer changes 1 + w, and the clamp keeps w normal.
  const reg q = M::recip(M::fmadd(p, M::scale_small(M::set1(1.0f), M::max(n, M::set1(-40.0f))),
                                  M::set1(1.0f)));
  // x < 0: (x p q) 2^n, the power of two applied last, so that only the result itself can be
  // subnormal (from x = -10.1006 down its exact value is, and it is returned rounded, as by
  // the scalar path); at or below x = -10.7708683, where |GELU| < 2^-150 rounds to zero,
  // x * 0: -0, or NaN for x = -inf. NaN lanes take the positive form.
  const reg neg = M::scale_or(M::not_less_equal(x, M::set1(-10.7708683f)),
                              M::mul(M::mul(x, p), q), n, M::mul(x, M::zero()));
  return M::select(M::less(x, M::zero()), neg, M::mul(x, q));
}

// act(x) for one vector of traits V: the GELUs above where V has their primitives.
template <class V>
TOKENMIX_GEMM_TARGET TOKENMIX_GEMM_INLINE typename V::reg activate_vector(Activation act,
                                                                          typename V::reg x) {
  if constexpr (has_gelu_ops<V>::value) {
    if (act == Activation::gelu_erf) return gelu_erf_f32<typename V::GeluOps>(x);
    if (act == Activation::gelu_tanh) return gelu_tanh_f32<typename V::GeluOps>(x);
  }
  return V::activate(act, x);
}

}  // namespace TOKENMIX_GEMM_NS
}  // namespace detail
}  // namespace tokenmix

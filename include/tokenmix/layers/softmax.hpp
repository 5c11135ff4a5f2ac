#pragma once
// Row softmax, plain and masked, and the vectorised exp every attention-style layer runs on.
//
// Numerics follow PyTorch: subtract the row maximum, exponentiate, divide by the sum. A masked
// entry is a logit of -inf. A row whose entries are all masked has max = -inf, so x - max is
// NaN and the whole row comes out NaN — exactly what torch.softmax returns for such a row
// (and what nn.MultiheadAttention propagates). We keep that rather than inventing zeros: a
// fully masked query is a caller bug that should stay visible. NaN inputs make their row NaN.
//
// The exp kernels are compiled for AVX-512 and AVX2 through target attributes and chosen at
// run time (core/isa.hpp), so a plain -O2 build still gets 16-wide exp on AVX-512 machines.
// Both use Cody-Waite range reduction x = n ln2 + r, |r| <= ln2/2, and a polynomial for
// exp(r): Cephes' minimax degree 7 for float (~1 ulp), Taylor to degree 13 for double
// (truncation < 5e-18 relative, so rounding dominates: ~1-2 ulp).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/isa.hpp"
#include "tokenmix/core/simd_reduce.hpp"
#include "tokenmix/core/tensor.hpp"

#if defined(TOKENMIX_HAVE_X86_DISPATCH)
#include <immintrin.h>
#endif

namespace tokenmix {

// Masks: true hides an entry (PyTorch's bool-mask convention).
using BoolMatrix = Eigen::Matrix<bool, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstBoolMatrixRef = Eigen::Ref<const BoolMatrix, 0, Eigen::OuterStride<>>;

namespace detail {

// ---------------------------------------------------------------------------------------
// exp constants
// ---------------------------------------------------------------------------------------
// Clamp bounds: below lo, exp underflows to zero (2^-150 and less); above hi it overflows to
// +inf (log(FLT_MAX) = 88.72, log(DBL_MAX) = 709.78). Clamping keeps -inf inputs from
// producing inf - inf = NaN inside the range reduction.
inline constexpr float exp_lo_f = -104.0f;
inline constexpr float exp_hi_f = 89.0f;
inline constexpr double exp_lo_d = -746.0;
inline constexpr double exp_hi_d = 710.0;

#if defined(TOKENMIX_HAVE_X86_DISPATCH)

// GCC 12 reports its own intrinsics' deliberately undefined pass-through operands
// (`__m512 __Y = __Y;`) as uninitialised once they are inlined into target-attributed code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

// ---------------------------------------------------------------------------------------
// AVX-512 kernels
// ---------------------------------------------------------------------------------------
// Operand order of max/min matters: they return the second operand when either is NaN, so
// clamping as max(lo, x) keeps a NaN x NaN instead of turning it into exp(lo) = 0.
TOKENMIX_TARGET_AVX512 inline __m512 exp_avx512(__m512 x) {
  x = _mm512_min_ps(_mm512_set1_ps(exp_hi_f), x);
  x = _mm512_max_ps(_mm512_set1_ps(exp_lo_f), x);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  // scalef computes p * 2^n with correct gradual underflow, so no range split is needed.
  return _mm512_scalef_ps(p, n);
}

TOKENMIX_TARGET_AVX512 inline __m512d exp_avx512(__m512d x) {
  x = _mm512_min_pd(_mm512_set1_pd(exp_hi_d), x);
  x = _mm512_max_pd(_mm512_set1_pd(exp_lo_d), x);
  const __m512d n = _mm512_roundscale_pd(_mm512_mul_pd(x, _mm512_set1_pd(1.4426950408889634074)),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512d r = _mm512_fnmadd_pd(n, _mm512_set1_pd(6.93145751953125e-1), x);
  r = _mm512_fnmadd_pd(n, _mm512_set1_pd(1.42860682030941723212e-6), r);
  // Taylor coefficients 1/k!, k = 13 down to 2.
  __m512d p = _mm512_set1_pd(1.0 / 6227020800.0);
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 479001600.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 39916800.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 3628800.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 362880.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 40320.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 5040.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 720.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 120.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 24.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 6.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(0.5));
  p = _mm512_fmadd_pd(p, _mm512_mul_pd(r, r), _mm512_add_pd(r, _mm512_set1_pd(1.0)));
  return _mm512_scalef_pd(p, n);
}

// x[i] = exp(x[i] - shift); returns the sum. Tails use a masked load so every element takes
// the same vector path (results do not depend on alignment or length).
TOKENMIX_TARGET_AVX512 inline float exp_shift_sum_avx512(float* x, Index n, float shift) {
  const __m512 s = _mm512_set1_ps(shift);
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  Index i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 e0 = exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + i), s));
    const __m512 e1 = exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), s));
    _mm512_storeu_ps(x + i, e0);
    _mm512_storeu_ps(x + i + 16, e1);
    acc0 = _mm512_add_ps(acc0, e0);
    acc1 = _mm512_add_ps(acc1, e1);
  }
  for (; i < n; i += 16) {
    const Index left = n - i;
    const __mmask16 m = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1u);
    const __m512 e = exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), s));
    _mm512_mask_storeu_ps(x + i, m, e);
    acc0 = _mm512_add_ps(acc0, _mm512_maskz_mov_ps(m, e));
  }
  return detail::reduce_add(_mm512_add_ps(acc0, acc1));
}

TOKENMIX_TARGET_AVX512 inline double exp_shift_sum_avx512(double* x, Index n, double shift) {
  const __m512d s = _mm512_set1_pd(shift);
  __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
  Index i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512d e0 = exp_avx512(_mm512_sub_pd(_mm512_loadu_pd(x + i), s));
    const __m512d e1 = exp_avx512(_mm512_sub_pd(_mm512_loadu_pd(x + i + 8), s));
    _mm512_storeu_pd(x + i, e0);
    _mm512_storeu_pd(x + i + 8, e1);
    acc0 = _mm512_add_pd(acc0, e0);
    acc1 = _mm512_add_pd(acc1, e1);
  }
  for (; i < n; i += 8) {
    const Index left = n - i;
    const __mmask8 m = left >= 8 ? __mmask8(0xff) : __mmask8((1u << left) - 1u);
    const __m512d e = exp_avx512(_mm512_sub_pd(_mm512_maskz_loadu_pd(m, x + i), s));
    _mm512_mask_storeu_pd(x + i, m, e);
    acc0 = _mm512_add_pd(acc0, _mm512_maskz_mov_pd(m, e));
  }
  return detail::reduce_add(_mm512_add_pd(acc0, acc1));
}

// Max that lets NaN through (the scalar tail and the final reduction re-check with isnan).
TOKENMIX_TARGET_AVX512 inline float max_avx512(const float* x, Index n) {
  __m512 m = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 nan_seen = _mm512_setzero_ps();
  Index i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    m = _mm512_max_ps(m, v);
    nan_seen = _mm512_add_ps(nan_seen, _mm512_sub_ps(v, v));  // 0 unless v is NaN or inf
  }
  float best = detail::reduce_max(m);
  float probe = detail::reduce_add(nan_seen);
  for (; i < n; ++i) {
    best = x[i] > best ? x[i] : best;
    probe += x[i] - x[i];
  }
  // probe is NaN iff some entry was NaN or +-inf; only a NaN entry may make the max NaN
  // (an inf is ordered and already accounted for by max).
  if (probe != probe)
    for (Index j = 0; j < n; ++j)
      if (x[j] != x[j]) return x[j];
  return best;
}

TOKENMIX_TARGET_AVX512 inline double max_avx512(const double* x, Index n) {
  __m512d m = _mm512_set1_pd(-std::numeric_limits<double>::infinity());
  __m512d nan_seen = _mm512_setzero_pd();
  Index i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m512d v = _mm512_loadu_pd(x + i);
    m = _mm512_max_pd(m, v);
    nan_seen = _mm512_add_pd(nan_seen, _mm512_sub_pd(v, v));
  }
  double best = detail::reduce_max(m);
  double probe = detail::reduce_add(nan_seen);
  for (; i < n; ++i) {
    best = x[i] > best ? x[i] : best;
    probe += x[i] - x[i];
  }
  if (probe != probe)
    for (Index j = 0; j < n; ++j)
      if (x[j] != x[j]) return x[j];
  return best;
}

TOKENMIX_TARGET_AVX512 inline void scale_avx512(float* x, Index n, float s) {
  const __m512 v = _mm512_set1_ps(s);
  Index i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), v));
  if (i < n) {
    const __mmask16 m = __mmask16((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), v));
  }
}

TOKENMIX_TARGET_AVX512 inline void scale_avx512(double* x, Index n, double s) {
  const __m512d v = _mm512_set1_pd(s);
  Index i = 0;
  for (; i + 8 <= n; i += 8) _mm512_storeu_pd(x + i, _mm512_mul_pd(_mm512_loadu_pd(x + i), v));
  if (i < n) {
    const __mmask8 m = __mmask8((1u << (n - i)) - 1u);
    _mm512_mask_storeu_pd(x + i, m, _mm512_mul_pd(_mm512_maskz_loadu_pd(m, x + i), v));
  }
}

// ---------------------------------------------------------------------------------------
// AVX2 kernels
// ---------------------------------------------------------------------------------------
// No scalef here: 2^n is built in the exponent field as 2^h * 2^(n-h), h = n/2, so both
// factors stay normal over the whole clamped range and results underflow gradually and
// overflow to +inf just as the AVX-512 path does.
TOKENMIX_TARGET_AVX2 inline __m256 exp_avx2(__m256 x) {
  x = _mm256_min_ps(_mm256_set1_ps(exp_hi_f), x);
  x = _mm256_max_ps(_mm256_set1_ps(exp_lo_f), x);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i h = _mm256_srai_epi32(ni, 1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 e1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h, bias), 23));
  const __m256 e2 = _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, h), bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, e1), e2);
}

TOKENMIX_TARGET_AVX2 inline __m256d exp_avx2(__m256d x) {
  x = _mm256_min_pd(_mm256_set1_pd(exp_hi_d), x);
  x = _mm256_max_pd(_mm256_set1_pd(exp_lo_d), x);
  const __m256d n = _mm256_round_pd(_mm256_mul_pd(x, _mm256_set1_pd(1.4426950408889634074)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(6.93145751953125e-1), x);
  r = _mm256_fnmadd_pd(n, _mm256_set1_pd(1.42860682030941723212e-6), r);
  __m256d p = _mm256_set1_pd(1.0 / 6227020800.0);
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 479001600.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 39916800.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 3628800.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 362880.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 40320.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 5040.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 720.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 120.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 24.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 6.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(0.5));
  p = _mm256_fmadd_pd(p, _mm256_mul_pd(r, r), _mm256_add_pd(r, _mm256_set1_pd(1.0)));
  const __m128i ni = _mm256_cvtpd_epi32(n);
  const __m128i h = _mm_srai_epi32(ni, 1);
  const __m128i bias = _mm_set1_epi32(1023);
  const __m256d e1 = _mm256_castsi256_pd(
      _mm256_slli_epi64(_mm256_cvtepi32_epi64(_mm_add_epi32(h, bias)), 52));
  const __m256d e2 = _mm256_castsi256_pd(_mm256_slli_epi64(
      _mm256_cvtepi32_epi64(_mm_add_epi32(_mm_sub_epi32(ni, h), bias)), 52));
  return _mm256_mul_pd(_mm256_mul_pd(p, e1), e2);
}

TOKENMIX_TARGET_AVX2 inline float exp_shift_sum_avx2(float* x, Index n, float shift) {
  const __m256 s = _mm256_set1_ps(shift);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  Index i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 e0 = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
    const __m256 e1 = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), s));
    _mm256_storeu_ps(x + i, e0);
    _mm256_storeu_ps(x + i + 8, e1);
    acc0 = _mm256_add_ps(acc0, e0);
    acc1 = _mm256_add_ps(acc1, e1);
  }
  alignas(32) float buf[8];
  for (; i < n; i += 8) {
    const Index left = n - i < 8 ? n - i : 8;
    for (Index j = 0; j < 8; ++j) buf[j] = j < left ? x[i + j] - shift : -INFINITY;
    const __m256 e = exp_avx2(_mm256_load_ps(buf));
    _mm256_store_ps(buf, e);
    for (Index j = 0; j < left; ++j) x[i + j] = buf[j];
    acc0 = _mm256_add_ps(acc0, e);  // padding lanes are exp(-inf) = 0
  }
  _mm256_store_ps(buf, _mm256_add_ps(acc0, acc1));
  return ((buf[0] + buf[4]) + (buf[1] + buf[5])) + ((buf[2] + buf[6]) + (buf[3] + buf[7]));
}

TOKENMIX_TARGET_AVX2 inline double exp_shift_sum_avx2(double* x, Index n, double shift) {
  const __m256d s = _mm256_set1_pd(shift);
  __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
  Index i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256d e0 = exp_avx2(_mm256_sub_pd(_mm256_loadu_pd(x + i), s));
    const __m256d e1 = exp_avx2(_mm256_sub_pd(_mm256_loadu_pd(x + i + 4), s));
    _mm256_storeu_pd(x + i, e0);
    _mm256_storeu_pd(x + i + 4, e1);
    acc0 = _mm256_add_pd(acc0, e0);
    acc1 = _mm256_add_pd(acc1, e1);
  }
  alignas(32) double buf[4];
  for (; i < n; i += 4) {
    const Index left = n - i < 4 ? n - i : 4;
    for (Index j = 0; j < 4; ++j) buf[j] = j < left ? x[i + j] - shift : -INFINITY;
    const __m256d e = exp_avx2(_mm256_load_pd(buf));
    _mm256_store_pd(buf, e);
    for (Index j = 0; j < left; ++j) x[i + j] = buf[j];
    acc0 = _mm256_add_pd(acc0, e);
  }
  _mm256_store_pd(buf, _mm256_add_pd(acc0, acc1));
  return (buf[0] + buf[2]) + (buf[1] + buf[3]);
}

// x[j] = exp(x[j] - shift[j]); sum[j] += x[j]: one row of a softmax taken down columns.
TOKENMIX_TARGET_AVX512 inline void exp_columns_avx512(float* x, const float* shift, float* sum,
                                                      Index n) {
  for (Index j = 0; j < n; j += 16) {
    const Index left = n - j;
    const __mmask16 m = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1u);
    const __m512 e = exp_avx512(
        _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + j), _mm512_maskz_loadu_ps(m, shift + j)));
    _mm512_mask_storeu_ps(x + j, m, e);
    _mm512_mask_storeu_ps(sum + j, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, sum + j), e));
  }
}
TOKENMIX_TARGET_AVX512 inline void exp_columns_avx512(double* x, const double* shift,
                                                      double* sum, Index n) {
  for (Index j = 0; j < n; j += 8) {
    const Index left = n - j;
    const __mmask8 m = left >= 8 ? __mmask8(0xff) : __mmask8((1u << left) - 1u);
    const __m512d e = exp_avx512(
        _mm512_sub_pd(_mm512_maskz_loadu_pd(m, x + j), _mm512_maskz_loadu_pd(m, shift + j)));
    _mm512_mask_storeu_pd(x + j, m, e);
    _mm512_mask_storeu_pd(sum + j, m, _mm512_add_pd(_mm512_maskz_loadu_pd(m, sum + j), e));
  }
}
TOKENMIX_TARGET_AVX2 inline void exp_columns_avx2(float* x, const float* shift, float* sum,
                                                  Index n) {
  Index j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 e =
        exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + j), _mm256_loadu_ps(shift + j)));
    _mm256_storeu_ps(x + j, e);
    _mm256_storeu_ps(sum + j, _mm256_add_ps(_mm256_loadu_ps(sum + j), e));
  }
  for (; j < n; ++j) sum[j] += x[j] = std::exp(x[j] - shift[j]);
}
TOKENMIX_TARGET_AVX2 inline void exp_columns_avx2(double* x, const double* shift, double* sum,
                                                  Index n) {
  Index j = 0;
  for (; j + 4 <= n; j += 4) {
    const __m256d e =
        exp_avx2(_mm256_sub_pd(_mm256_loadu_pd(x + j), _mm256_loadu_pd(shift + j)));
    _mm256_storeu_pd(x + j, e);
    _mm256_storeu_pd(sum + j, _mm256_add_pd(_mm256_loadu_pd(sum + j), e));
  }
  for (; j < n; ++j) sum[j] += x[j] = std::exp(x[j] - shift[j]);
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif  // TOKENMIX_HAVE_X86_DISPATCH

// ---------------------------------------------------------------------------------------
// Dispatching entry points (scalar fallback: std::exp, correctly rounded or close to it)
// ---------------------------------------------------------------------------------------

// x[i] = exp(x[i] - shift) for i < n; returns sum_i x[i] afterwards.
template <class T>
T exp_shift_sum(T* x, Index n, T shift) {
#if defined(TOKENMIX_HAVE_X86_DISPATCH)
  const Isa isa = active_isa();
  if (isa == Isa::avx512) return exp_shift_sum_avx512(x, n, shift);
  if (isa == Isa::avx2) return exp_shift_sum_avx2(x, n, shift);
#endif
  T sum = 0;
  for (Index i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    sum += x[i];
  }
  return sum;
}

// x[j] = exp(x[j] - shift[j]) and sum[j] += x[j] for j < n (column-wise softmax rows).
template <class T>
void exp_columns(T* x, const T* shift, T* sum, Index n) {
#if defined(TOKENMIX_HAVE_X86_DISPATCH)
  const Isa isa = active_isa();
  if (isa == Isa::avx512) return exp_columns_avx512(x, shift, sum, n);
  if (isa == Isa::avx2) return exp_columns_avx2(x, shift, sum, n);
#endif
  for (Index j = 0; j < n; ++j) sum[j] += x[j] = std::exp(x[j] - shift[j]);
}

// exp(x[i]) into y[i] (may alias), used by tests of the exp kernels and by callers with no
// shift to apply.
template <class T>
void exp_vector(const T* x, T* y, Index n) {
  if (y != x)
    for (Index i = 0; i < n; ++i) y[i] = x[i];
  exp_shift_sum(y, n, T(0));
}

// Largest entry; NaN if any entry is NaN; -inf for an empty or all -inf row.
template <class T>
T row_max(const T* x, Index n) {
#if defined(TOKENMIX_HAVE_X86_DISPATCH)
  if (active_isa() == Isa::avx512) return max_avx512(x, n);
#endif
  T best = -std::numeric_limits<T>::infinity();
  for (Index i = 0; i < n; ++i) {
    if (x[i] != x[i]) return x[i];
    best = x[i] > best ? x[i] : best;
  }
  return best;
}

template <class T>
void scale_row(T* x, Index n, T s) {
#if defined(TOKENMIX_HAVE_X86_DISPATCH)
  if (active_isa() == Isa::avx512) return scale_avx512(x, n, s);
#endif
  for (Index i = 0; i < n; ++i) x[i] *= s;
}

// In-place softmax of one row of n logits (masked entries already -inf).
template <class T>
void softmax_row_inplace(T* x, Index n) {
  if (n == 0) return;
  const T m = row_max(x, n);
  // m = -inf (all masked): x - m is NaN everywhere, the row becomes NaN as in PyTorch.
  const T sum = exp_shift_sum(x, n, m);
  scale_row(x, n, T(1) / sum);
}

// Softmax of an n x n block (leading dimension ld) in place; causal rows see keys 0..i only and
// their hidden tail is set to exactly 0 (what exp(-inf) gives) without spending exps on it.
template <class T>
void softmax_block(T* p, Index n, Index ld, bool causal) {
  for (Index i = 0; i < n; ++i) {
    T* row = p + i * ld;
    const Index visible = causal ? i + 1 : n;
    softmax_row_inplace(row, visible);
    std::fill(row + visible, row + n, T(0));
  }
}

}  // namespace detail

// Softmax over the last axis of stacked score rows, optionally masked.
//
// x is (B*n) x m: B blocks of n rows, row r being query r mod n of its block over m keys.
// Causal hides key j from query i when j > i (PyTorch's upper-triangular bool mask, aligned
// at the top left). A mask, when given, has x's shape and true hides the entry (PyTorch's
// bool attn_mask convention). y may be x itself.
template <class T>
class Softmax {
 public:
  struct Config {
    bool causal = false;
  };

  Softmax() = default;
  explicit Softmax(const Config& config) : config_(config) {}
  const Config& config() const { return config_; }

  // seq_len only matters for causal (it defines each row's query index); rows must be a
  // multiple of it.
  void forward(const ConstMatrixRef<T>& x, Index seq_len, MatrixRef<T> y) const {
    check(x, seq_len, y);
    run(x, seq_len, nullptr, y);
  }
  void forward(const ConstMatrixRef<T>& x, MatrixRef<T> y) const {
    forward(x, x.rows() > 0 ? x.rows() : 1, y);
  }
  void forward(const ConstMatrixRef<T>& x, Index seq_len, const ConstBoolMatrixRef& mask,
               MatrixRef<T> y) const {
    check(x, seq_len, y);
    detail::expect_shape("Softmax", "mask", x.rows(), x.cols(), mask.rows(), mask.cols());
    run(x, seq_len, &mask, y);
  }

  Matrix<T> forward(const ConstMatrixRef<T>& x, Index seq_len) const {
    Matrix<T> y(x.rows(), x.cols());
    forward(x, seq_len, y);
    return y;
  }
  Matrix<T> forward(const ConstMatrixRef<T>& x) const {
    return forward(x, x.rows() > 0 ? x.rows() : 1);
  }

 private:
  void check(const ConstMatrixRef<T>& x, Index seq_len, const MatrixRef<T>& y) const {
    detail::expect_shape("Softmax", "output", x.rows(), x.cols(), y.rows(), y.cols());
    if (x.rows() == 0) return;
    detail::batch_count("Softmax", x.rows(), seq_len);
  }

  void run(const ConstMatrixRef<T>& x, Index seq_len, const ConstBoolMatrixRef* mask,
           MatrixRef<T>& y) const {
    const T neg_inf = -std::numeric_limits<T>::infinity();
    const Index m = x.cols();
    for (Index r = 0; r < x.rows(); ++r) {
      const T* in = x.data() + r * x.outerStride();
      T* out = y.data() + r * y.outerStride();
      const Index visible = config_.causal ? std::min(m, r % seq_len + 1) : m;
      for (Index j = 0; j < visible; ++j) out[j] = in[j];
      for (Index j = visible; j < m; ++j) out[j] = neg_inf;
      if (mask != nullptr) {
        const bool* hide = mask->data() + r * mask->outerStride();
        for (Index j = 0; j < visible; ++j)
          if (hide[j]) out[j] = neg_inf;
      }
      detail::softmax_row_inplace(out, m);
    }
  }

  Config config_{};
};

// Plain softmax of every row of x into y (y may alias x).
template <class T>
void softmax_rows(const ConstMatrixRef<T>& x, MatrixRef<T> y) {
  Softmax<T>().forward(x, y);
}

}  // namespace tokenmix

#pragma once
// Horizontal sums and maxima of AVX-512 registers. GCC 12's own _mm512_reduce_* (and even
// its 512->256-bit casts) build on _mm256_undefined_* and trip -W(maybe-)uninitialized
// wherever they are inlined, which would put warnings into users' builds. These spill the
// register once and fold it as a pairwise tree: the reductions run once per row, so the store
// costs nothing measurable, and the summation order is fixed (lanes i and i+8, then i+4, ...).

#include "tokenmix/core/isa.hpp"

#if defined(TOKENMIX_HAVE_X86_DISPATCH)
#include <immintrin.h>

namespace tokenmix {
namespace detail {

template <class T, int Lanes, class Op>
inline T fold_lanes(T* lane, Op op) {
  for (int width = Lanes / 2; width >= 1; width /= 2)
    for (int i = 0; i < width; ++i) lane[i] = op(lane[i], lane[i + width]);
  return lane[0];
}

// NaN-propagating, unlike std::max: a NaN lane must poison the result like a sum would.
template <class T>
inline T nan_max(T a, T b) {
  return (a != a || a > b) ? a : b;
}

TOKENMIX_TARGET_AVX512 inline float reduce_add(__m512 v) {
  alignas(64) float lane[16];
  _mm512_store_ps(lane, v);
  return fold_lanes<float, 16>(lane, [](float a, float b) { return a + b; });
}
TOKENMIX_TARGET_AVX512 inline double reduce_add(__m512d v) {
  alignas(64) double lane[8];
  _mm512_store_pd(lane, v);
  return fold_lanes<double, 8>(lane, [](double a, double b) { return a + b; });
}
TOKENMIX_TARGET_AVX512 inline float reduce_max(__m512 v) {
  alignas(64) float lane[16];
  _mm512_store_ps(lane, v);
  return fold_lanes<float, 16>(lane, nan_max<float>);
}
TOKENMIX_TARGET_AVX512 inline double reduce_max(__m512d v) {
  alignas(64) double lane[8];
  _mm512_store_pd(lane, v);
  return fold_lanes<double, 8>(lane, nan_max<double>);
}

}  // namespace detail
}  // namespace tokenmix
#endif

#include "tokenmix/core/simd_reduce.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "tokenmix/core/isa.hpp"

namespace test_core_simd_reduce {

#if defined(TOKENMIX_HAVE_X86_DISPATCH)
namespace {
TOKENMIX_TARGET_AVX512 void reduce_floats(const float* in, float* sum, float* max) {
  const __m512 v = _mm512_loadu_ps(in);
  *sum = tokenmix::detail::reduce_add(v);
  *max = tokenmix::detail::reduce_max(v);
}
TOKENMIX_TARGET_AVX512 void reduce_doubles(const double* in, double* sum, double* max) {
  const __m512d v = _mm512_loadu_pd(in);
  *sum = tokenmix::detail::reduce_add(v);
  *max = tokenmix::detail::reduce_max(v);
}
}  // namespace

TEST_CASE("AVX-512 horizontal sum and max see every lane", "[core][simd]") {
  if (!tokenmix::isa_supported(tokenmix::Isa::avx512)) {
    WARN("no AVX-512 on this CPU; reductions not exercised");
    return;
  }
  for (int hot = 0; hot < 16; ++hot) {  // the maximum in every lane in turn
    float f[16];
    double dbl[8];
    for (int i = 0; i < 16; ++i) f[i] = float(i) - 7.5f;
    f[hot] = 100.0f;
    for (int i = 0; i < 8; ++i) dbl[i] = 0.25 * i - 1.0;
    dbl[hot % 8] = -0.5 + 1e3;
    float fs, fm;
    double ds, dm;
    reduce_floats(f, &fs, &fm);
    reduce_doubles(dbl, &ds, &dm);
    double f_expected = 0, d_expected = 0;
    for (float v : f) f_expected += v;
    for (double v : dbl) d_expected += v;
    CHECK(fs == Approx(f_expected).margin(1e-4));
    CHECK(fm == 100.0f);
    CHECK(ds == Approx(d_expected).margin(1e-12));
    CHECK(dm == Approx(999.5));
  }
  float nan_lane[16] = {};
  nan_lane[9] = std::numeric_limits<float>::quiet_NaN();
  float s, m;
  reduce_floats(nan_lane, &s, &m);
  CHECK(std::isnan(s));  // a NaN anywhere poisons the sum
}
#endif

}  // namespace test_core_simd_reduce

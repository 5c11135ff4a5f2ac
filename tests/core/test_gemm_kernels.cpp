#include "tokenmix/core/gemm_kernels.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "isa_paths.hpp"

namespace test_core_gemm_kernels {

using namespace tokenmix;

namespace {

long double exact(Activation act, long double x) {
  switch (act) {
    case Activation::none: return x;
    case Activation::relu: return x < 0 ? 0 : x;
    case Activation::tanh: return std::tanh(x);
    case Activation::gelu_erf: return 0.5L * x * std::erfc(-x / std::sqrt(2.0L));
    case Activation::gelu_tanh: {
      const long double u = std::sqrt(2.0L / 3.14159265358979323846264338327950288L) *
                            (x + 0.044715L * x * x * x);
      return x / (1.0L + std::exp(-2.0L * u));
    }
  }
  return x;
}

}  // namespace

TEMPLATE_TEST_CASE("activate matches the exact functions on every ISA path", "[core][gemm]",
                   float, double) {
  using T = TestType;
  std::vector<T> x;
  for (double v = -15.0; v <= 15.0; v += 0.00731) x.push_back(static_cast<T>(v));
  for (double v : {0.0, -0.0, 1e-38, -1e-38, 1e-12, -1e-12, 5e-4, -5e-4, 0.5, -0.5, 30.0, -30.0,
                   88.0, -88.0, 1e4, -1e4})
    x.push_back(static_cast<T>(v));
  // 1e-6 relative (float) and 1e-12 (double); or the exact value rounded to T. Results below
  // the normal range carry only absolute rounding. Float GELU and tanh are vector_gelu.hpp's
  // code, with tests of its own (test_vector_gelu.cpp); here it is relu and double.
  const bool f32 = std::is_same<T, float>::value;
  const double rel = f32 ? 1e-6 : 1e-12;
  const auto vector_gelu_code = [f32](Activation act) { return f32 && act != Activation::relu; };
  for (Isa isa : tokenmix_test::supported_isa_paths("activate")) {
    ScopedIsa scoped(isa);
    for (Activation act : {Activation::relu, Activation::tanh, Activation::gelu_erf,
                           Activation::gelu_tanh}) {
      if (vector_gelu_code(act)) continue;
      std::vector<T> y = x;
      // Odd length and an unaligned start exercise the masked tail.
      activate<T>(act, y.data() + 1, static_cast<Index>(y.size()) - 1);
      CHECK(y[0] == x[0]);
      Index bad = 0;
      for (std::size_t i = 1; i < x.size(); ++i) {
        const long double want = exact(act, x[i]);
        const long double err = std::fabs(y[i] - want);
        const bool ok = err <= rel * std::fabs(want) + std::numeric_limits<T>::min() ||
                        y[i] == static_cast<T>(want);
        if (!ok && ++bad <= 3)
          FAIL_CHECK(isa_name(isa) << " act " << int(act) << " x=" << x[i] << " got " << y[i]
                                   << " want " << static_cast<double>(want));
      }
      CHECK(bad == 0);
    }
    // NaN propagates through every activation, in vector lanes as well as the tail (the
    // vector exp clamps its argument, which once turned NaN into tanh = 1); tanh saturates Inf.
    const T nan_value = std::numeric_limits<T>::quiet_NaN();
    const T inf = std::numeric_limits<T>::infinity();
    for (Activation act : {Activation::relu, Activation::tanh, Activation::gelu_erf,
                           Activation::gelu_tanh}) {
      if (vector_gelu_code(act)) continue;
      std::vector<T> y(37, T(0.25));
      for (std::size_t i : {0u, 5u, 17u, 36u}) y[i] = nan_value;
      y[3] = inf;
      y[20] = -inf;
      activate<T>(act, y.data(), static_cast<Index>(y.size()));
      for (std::size_t i : {0u, 5u, 17u, 36u}) {
        INFO(isa_name(isa) << " act " << int(act) << " lane " << i);
        CHECK(std::isnan(y[i]));
      }
      CHECK(std::isfinite(y[1]));
      if (act == Activation::tanh) {
        CHECK(y[3] == T(1));
        CHECK(y[20] == T(-1));
      }
    }
  }
}

TEST_CASE("activate with none or an empty span leaves data alone", "[core][gemm]") {
  std::vector<float> x{-1.0f, 2.0f};
  activate<float>(Activation::none, x.data(), 2);
  activate<float>(Activation::relu, x.data(), 0);
  CHECK(x[0] == -1.0f);
  CHECK(x[1] == 2.0f);
}

}  // namespace test_core_gemm_kernels

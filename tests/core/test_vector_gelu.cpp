// core/vector_gelu.hpp: both float GELU forms and float tanh, checked on every ISA this CPU
// has through activate() and the GEMM epilogue (the header is compiled only inside
// gemm_kernels.hpp, once per ISA, so that is where its functions are reached). The scalar
// path (activate_scalar, in double) is checked against the same bounds.
#include "tokenmix/core/gemm_kernels.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "isa_paths.hpp"
#include "tokenmix/core/gemm.hpp"

namespace test_core_vector_gelu {

using namespace tokenmix;
using limits = std::numeric_limits<float>;

namespace {

long double exact_gelu(Activation act, long double x) {
  if (act == Activation::gelu_erf) return 0.5L * x * std::erfc(-x / std::sqrt(2.0L));
  const long double u =
      std::sqrt(2.0L / 3.14159265358979323846264338327950288L) * (x + 0.044715L * x * x * x);
  return x / (1.0L + std::exp(-2.0L * u));
}

float from_bits(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Every 2^-12 over [-20, 20] (both tails, well past where either form leaves the normal
// range), every float of the tanh form's subnormal band (x in [-10.78, -10.09]), and every
// 4099th bit pattern of the finite floats of each sign (huge, tiny and subnormal inputs).
std::vector<float> dense_grid() {
  std::vector<float> x;
  for (int i = -20 * 4096; i <= 20 * 4096; ++i) x.push_back(static_cast<float>(i) / 4096.0f);
  for (float v = -10.78f; v < -10.09f; v = std::nextafter(v, 0.0f)) x.push_back(v);
  for (std::uint32_t u = 0; u < 0x7f800000u; u += 4099u) {
    x.push_back(from_bits(u));
    x.push_back(-from_bits(u));
  }
  return x;
}

// GELU over x with the active ISA: activate() on an unaligned start and an odd length, so
// that full vectors and the masked tail both take part.
std::vector<float> run_activate(Activation act, const std::vector<float>& x) {
  std::vector<float> y(x.size() + 1, 0.0f);
  std::copy(x.begin(), x.end(), y.begin() + 1);
  activate<float>(act, y.data() + 1, static_cast<Index>(x.size()));
  return std::vector<float>(y.begin() + 1, y.end());
}

const Activation kForms[] = {Activation::gelu_erf, Activation::gelu_tanh};

const char* activation_code(Activation act) {
  return act == Activation::gelu_erf ? "erf" : act == Activation::gelu_tanh ? "gelu tanh" : "tanh";
}

}  // namespace

// The accuracy target: 1e-6 relative wherever the result is a normal float. Below that, the
// tanh form rounds its result once into the subnormal range from a value within that
// accuracy (so it is off by one step, 2^-149, next to midpoints: ~2% of its band, where the
// scalar path is correctly rounded), and the erf form, which flushes, stays within FLT_MIN.
TEST_CASE("vector GELU is within 1e-6 of the exact function on a dense grid", "[core][gelu]") {
  const std::vector<float> x = dense_grid();
  for (Activation act : kForms) {
    std::vector<long double> want(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) want[i] = exact_gelu(act, x[i]);
    for (Isa isa : tokenmix_test::supported_isa_paths("vector GELU")) {
      ScopedIsa scoped(isa);
      const std::vector<float> y = run_activate(act, x);
      double worst = 0;
      Index bad = 0, subnormal = 0, misrounded = 0;
      for (std::size_t i = 0; i < x.size(); ++i) {
        const long double w = want[i];
        // The tanh form rounds x p q 2^n once, from a value within the float accuracy; the erf
        // form flushes below FLT_MIN.
        const long double tanh_below = 1e-6L * std::fabs(w) + 0.5L * limits::denorm_min();
        const long double erf_below = limits::min();
        const float w_rounded = static_cast<float>(w);
        bool ok;
        if (std::fabs(w_rounded) >= limits::min()) {
          const double rel = static_cast<double>(std::fabs((y[i] - w) / w));
          worst = std::max(worst, rel);
          ok = rel < 1e-6;
        } else {
          ++subnormal;
          ok = std::fabs(y[i] - w) <= (act == Activation::gelu_tanh ? tanh_below : erf_below) &&
               !(y[i] > 0 && w < 0) && !(y[i] < 0 && w > 0);
          if (act == Activation::gelu_tanh) misrounded += y[i] != w_rounded;
        }
        if (!ok && ++bad <= 5)
          FAIL_CHECK(isa_name(isa) << " " << activation_code(act)
                                   << " x=" << x[i] << " (" << std::hexfloat << x[i]
                                   << std::defaultfloat << ") got " << y[i] << " want "
                                   << static_cast<double>(w));
      }
      INFO(isa_name(isa) << " " << activation_code(act) << ": "
                         << x.size() << " values, " << subnormal << " results below FLT_MIN, "
                         << misrounded << " of them not correctly rounded");
      CHECK(worst < 1e-6);
      CHECK(bad == 0);
    }
  }
}

TEST_CASE("vector GELU special values", "[core][gelu]") {
  const float inf = limits::infinity(), nan = limits::quiet_NaN();
  for (Isa isa : tokenmix_test::supported_isa_paths("vector GELU")) {
    ScopedIsa scoped(isa);
    for (Activation act : kForms) {
      INFO(isa_name(isa) << " " << activation_code(act));
      // Each value once in a full vector and once in the masked tail (37 = 2 x 16 + 5).
      // `deep` lies below where the form's result leaves the normal range (erf: x < -13.15,
      // tanh: x < -10.10), where the vector code flushes or rounds to subnormal.
      const float deep = act == Activation::gelu_erf ? -14.0f : -11.0f;
      const std::vector<float> specials = {nan,  -nan,          inf,           -inf,   0.0f,
                                           -0.0f, limits::max(), -limits::max(), 1e30f, -1e30f,
                                           30.0f, deep};
      for (std::size_t slot : {std::size_t(3), std::size_t(34)}) {
        for (float s : specials) {
          std::vector<float> x(37, 0.25f);
          x[slot] = s;
          const std::vector<float> y_all = run_activate(act, x);
          const float y = y_all[slot];
          INFO("x = " << s << " in lane " << slot);
          if (std::isnan(s) || s == -inf) {
            CHECK(std::isnan(y));  // NaN in, NaN out; GELU(-inf) = -inf * 0 as in PyTorch
          } else if (s >= 30.0f) {
            CHECK(y == s);  // Phi(x) rounds to 1 (also at +inf and FLT_MAX)
          } else if (s == 0.0f || s <= -1e30f) {
            CHECK(y == 0.0f);  // zero keeps its sign; huge negative x gives -0
            CHECK(std::signbit(y) == std::signbit(s));
          } else {  // deep
            CHECK(y > -limits::min());
            CHECK(y <= 0.0f);
            CHECK(std::signbit(y));
          }
          // The neighbouring lane is untouched by it.
          const float quarter = static_cast<float>(exact_gelu(act, 0.25f));
          CHECK(std::fabs(y_all[slot == 3 ? 4 : 33] - quarter) <= 1e-6f * quarter);
        }
      }
      // Subnormal inputs: GELU(x) = x / 2 to far below float precision.
      for (float s : {limits::denorm_min(), -limits::denorm_min(), 1e-40f, -1e-40f,
                      limits::min(), -limits::min(), 1e-30f, -1e-30f}) {
        INFO("x = " << s);
        const float want = static_cast<float>(exact_gelu(act, s));
        CHECK(std::fabs(run_activate(act, std::vector<float>(19, s))[17] - want) <=
              limits::denorm_min() + 1e-6f * std::fabs(want));
      }
    }
  }
}

// Float tanh (tanh_f32, the FNet pooler's activation) has the same accuracy target. Its
// results are normal or zero except for subnormal x, where tanh(x) = x.
TEST_CASE("vector tanh is within 1e-6 of the exact function on a dense grid", "[core][gelu]") {
  const std::vector<float> x = dense_grid();
  std::vector<long double> want(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) want[i] = std::tanh(static_cast<long double>(x[i]));
  for (Isa isa : tokenmix_test::supported_isa_paths("vector GELU")) {
    ScopedIsa scoped(isa);
    const std::vector<float> y = run_activate(Activation::tanh, x);
    double worst = 0;
    Index bad = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const long double w = want[i];
      const bool ok = std::fabs(x[i]) < limits::min()
                          ? y[i] == x[i] && std::signbit(y[i]) == std::signbit(x[i])
                          : std::fabs(y[i] - w) <= 1e-6L * std::fabs(w);
      if (std::fabs(x[i]) >= limits::min())
        worst = std::max(worst, static_cast<double>(std::fabs((y[i] - w) / w)));
      if (!ok && ++bad <= 5)
        FAIL_CHECK(isa_name(isa) << " x=" << x[i] << " got " << y[i] << " want "
                                 << static_cast<double>(w));
    }
    INFO(isa_name(isa) << ": " << x.size() << " values");
    CHECK(worst < 1e-6);
    CHECK(bad == 0);
    // NaN in, NaN out; +-inf and the far tails give +-1; zero keeps its sign.
    const float inf = limits::infinity();
    const std::vector<float> specials = {limits::quiet_NaN(), inf, -inf, 10.0f, -10.0f, 1e30f,
                                         -limits::max(), 0.0f, -0.0f};
    const std::vector<float> expected = {0.0f, 1.0f, -1.0f, 1.0f, -1.0f, 1.0f, -1.0f, 0.0f, -0.0f};
    std::vector<float> lanes(37, 0.5f);
    for (std::size_t k = 0; k < specials.size(); ++k) {
      lanes[k] = specials[k];
      lanes[28 + k] = specials[k];  // again in the masked tail
    }
    const std::vector<float> got = run_activate(Activation::tanh, lanes);
    for (std::size_t slot : {std::size_t(0), std::size_t(28)})
      for (std::size_t k = 0; k < specials.size(); ++k) {
        INFO(isa_name(isa) << " x = " << specials[k] << " in lane " << slot + k);
        const float v = got[slot + k];
        if (k == 0) {
          CHECK(std::isnan(v));
        } else {
          CHECK(v == expected[k]);
          CHECK(std::signbit(v) == std::signbit(expected[k]));
        }
      }
  }
}

// The GEMM epilogue and activate() run the same per-ISA function: identical bits.
TEST_CASE("vector GELU and tanh in the GEMM epilogue match activate() bit for bit", "[core][gelu]") {
  std::vector<float> x;
  for (int i = -4000; i <= 4000; ++i) x.push_back(static_cast<float>(i) * 0.00377f);
  const Index n = static_cast<Index>(x.size());
  const float one = 1.0f;
  for (Isa isa : tokenmix_test::supported_isa_paths("vector GELU")) {
    ScopedIsa scoped(isa);
    for (Activation act : {Activation::gelu_erf, Activation::gelu_tanh, Activation::tanh}) {
      INFO(isa_name(isa) << " " << activation_code(act));
      Epilogue<float> e;
      e.act = act;
      std::vector<float> out(x.size());
      gemm<float>(Trans::N, Trans::N, 1, n, 1, one, &one, 1, x.data(), n, 0.0f, out.data(), n, e);
      const std::vector<float> y = run_activate(act, x);
      CHECK(std::memcmp(out.data(), y.data(), y.size() * sizeof(float)) == 0);
    }
  }
}

}  // namespace test_core_vector_gelu

#include "tokenmix/core/random.hpp"

#include <catch2/catch.hpp>
#include <cmath>

namespace test_core_random {

using namespace tokenmix;

TEST_CASE("Random is reproducible from its seed and seeds differ", "[core][random]") {
  Random a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) {
    const auto va = a.next_u64();
    CHECK(va == b.next_u64());
    CHECK(va != c.next_u64());
  }
}

TEST_CASE("uniform and normal have the expected moments", "[core][random]") {
  Random rng(7);
  const int count = 200000;
  double sum = 0, sum_sq = 0, nsum = 0, nsum_sq = 0;
  for (int i = 0; i < count; ++i) {
    const double u = rng.uniform();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    sum += u;
    sum_sq += u * u;
    const double z = rng.normal();
    nsum += z;
    nsum_sq += z * z;
  }
  CHECK(sum / count == Approx(0.5).margin(0.005));
  CHECK(sum_sq / count - std::pow(sum / count, 2) == Approx(1.0 / 12).margin(0.002));
  CHECK(nsum / count == Approx(0.0).margin(0.01));
  CHECK(nsum_sq / count == Approx(1.0).margin(0.02));
}

TEST_CASE("xavier and truncated fills stay inside their bounds", "[core][random]") {
  Random rng(1);
  Matrix<float> w(30, 70);
  rng.fill_xavier_uniform(w);
  const double bound = std::sqrt(6.0 / 100.0);
  CHECK(w.cwiseAbs().maxCoeff() <= bound);
  CHECK(w.cwiseAbs().maxCoeff() > 0.9 * bound);
  for (int i = 0; i < 1000; ++i) {
    const double v = rng.truncated_normal(0.0, 1.0, -2.0, 2.0);
    REQUIRE(std::abs(v) <= 2.0);
  }
}

}  // namespace test_core_random

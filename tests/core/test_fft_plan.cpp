#include "tokenmix/core/fft_plan.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>

namespace test_core_fft_plan {

using namespace tokenmix;
using namespace tokenmix::detail::fft;

namespace {
bool smooth(Index n) {
  for (Index p : {2, 3, 5})
    while (n % p == 0) n /= p;
  return n == 1;
}
}  // namespace

TEST_CASE("factorize: powers of two in the fewest balanced radix-2..16 passes, then odd primes",
          "[core][fft_plan]") {
  for (Index n = 1; n <= 3000; ++n) {
    const auto f = factorize(n);
    Index product = 1, two_part = 1;
    int even_passes = 0, smallest = 16, largest = 1;
    bool seen_odd = false;
    for (int p : f) {
      product *= p;
      if (p % 2 == 1) seen_odd = true;
      if (p % 2 == 0) {
        REQUIRE_FALSE(seen_odd);  // even radices first
        REQUIRE((p & (p - 1)) == 0);
        REQUIRE(p <= 16);
        two_part *= p;
        ++even_passes;
        smallest = std::min(smallest, p);
        largest = std::max(largest, p);
      }
    }
    REQUIRE(product == n);
    int bits = 0;
    while ((Index(1) << bits) < two_part) ++bits;
    REQUIRE(even_passes == (bits + 3) / 4);             // fewest passes
    if (even_passes > 1) REQUIRE(largest <= 2 * smallest);  // balanced
  }
  CHECK(factorize(1024) == std::vector<int>{16, 8, 8});
  CHECK(factorize(4096) == std::vector<int>{16, 16, 16});
  CHECK(factorize(512) == std::vector<int>{8, 8, 8});
  CHECK(factorize(768) == std::vector<int>{16, 16, 3});
  CHECK(factorize(510) == std::vector<int>{2, 3, 5, 17});
  CHECK(largest_prime_factor(4099) == 4099);
  CHECK(largest_prime_factor(3072) == 3);
}

TEST_CASE("factorize with radix-8 passes at most (four-step sub-transforms on 512-bit lanes)",
          "[core][fft_plan]") {
  CHECK(factorize(256, 3) == std::vector<int>{8, 8, 4});
  CHECK(factorize(128, 3) == std::vector<int>{8, 4, 4});
  CHECK(factorize(640, 3) == std::vector<int>{8, 4, 4, 5});
  CHECK(factorize(24, 3) == std::vector<int>{8, 3});
  for (Index n = 1; n <= 3000; ++n) {
    Index product = 1;
    for (int f : factorize(n, 3)) {
      REQUIRE(f != 16);
      product *= f;
    }
    REQUIRE(product == n);
  }
}

TEST_CASE("Bluestein sizes: smooth lengths that fit, the cheapest by pass count", "[core][fft_plan]") {
  for (Index n = 1; n <= 700; ++n) {
    const Index s = smooth_size(n);
    REQUIRE(s >= n);
    REQUIRE(smooth(s));
    for (Index m = n; m < s; ++m) REQUIRE_FALSE(smooth(m));
  }
  for (Index n : {300, 1009, 1031, 2053, 4099, 5000}) {
    INFO("n = " << n);
    const Index c = bluestein_size(n);
    CHECK(c >= 2 * n - 1 - max_bluestein_overlap);
    CHECK(c % 256 == 0);
    CHECK(smooth(c));
    // No cheaper admissible length up to twice the smallest.
    for (Index m = 2 * n - 1 - max_bluestein_overlap; m <= 2 * c; ++m)
      if (smooth(m) && m % 256 == 0) CHECK(bluestein_cost(n, c) <= bluestein_cost(n, m));
  }
  CHECK(bluestein_size(1009) == 2048);
  // Just past a power of two: a few corrected outputs instead of a 25% longer length.
  CHECK(bluestein_size(4099) == 8192);
  CHECK(bluestein_overlap(4099, 8192) == 5);
  CHECK(bluestein_size(2053) == 4096);
  // Below 512 points the length always holds every lag.
  for (Index n = 1; n <= 256; ++n) REQUIRE(bluestein_overlap(n, bluestein_size(n)) == 0);
}

TEST_CASE("Bluestein is chosen for large prime factors only", "[core][fft_plan]") {
  CHECK(prefer_bluestein(1009));
  CHECK(prefer_bluestein(4099));
  CHECK(prefer_bluestein(2 * 67));
  for (Index n : {1, 7, 61, 64, 96, 100, 243, 510, 768, 1000, 1024, 3072, 8192})
    CHECK_FALSE(prefer_bluestein(n));
}

TEST_CASE("unit roots are accurate to double rounding for any k", "[core][fft_plan]") {
  const long double two_pi = 6.283185307179586476925286766559L;
  double worst = 0;
  for (Index n : {1, 2, 3, 7, 8, 12, 100, 1009, 4096, 8192, 123457})
    for (Index k = -3 * n; k < 3 * n; k += std::max<Index>(1, n / 97)) {
      double re, im;
      unit_root(k, n, re, im);
      const long double kk = ((k % n) + n) % n;
      worst = std::max<double>(worst, std::abs(re - std::cos(two_pi * kk / n)));
      worst = std::max<double>(worst, std::abs(im + std::sin(two_pi * kk / n)));
    }
  CHECK(worst < 2.5e-16);
}

TEST_CASE("direct plans chain their stages over the whole length", "[core][fft_plan]") {
  for (Index n : {1, 2, 6, 49, 60, 510, 768, 4096}) {
    Plan<double> plan;
    plan.n = n;
    build_direct(plan);
    Index l1 = 1;
    std::size_t tw = 0;
    for (const Stage& st : plan.stages) {
      CHECK(st.l1 == l1);
      CHECK(st.l1 * st.radix * st.m == n);
      CHECK(st.twiddle == static_cast<Index>(tw));
      tw += 2 * static_cast<std::size_t>(st.m * (st.radix - 1));
      l1 *= st.radix;
    }
    CHECK(l1 == n);
    CHECK(plan.twiddle.size() == tw);
  }
  Plan<float> bad;
  bad.n = 2 * 67;
  CHECK_THROWS_AS(build_direct(bad), ArgumentError);
}

}  // namespace test_core_fft_plan

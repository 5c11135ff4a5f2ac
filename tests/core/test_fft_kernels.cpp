#include "tokenmix/core/fft_kernels.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <complex>
#include <vector>

#include "tokenmix/core/random.hpp"

namespace test_core_fft_kernels {

// The generic kernels compiled without any target attribute (the vector extensions lower to
// whatever the build allows): checks the algorithms; test_fft.cpp checks every ISA entry.

using namespace tokenmix;
using namespace tokenmix::detail::fft;

namespace {
std::vector<std::complex<double>> dft(const std::vector<std::complex<double>>& x) {
  const Index n = static_cast<Index>(x.size());
  std::vector<std::complex<double>> y(n);
  for (Index k = 0; k < n; ++k)
    for (Index j = 0; j < n; ++j) {
      double re, im;
      unit_root(j * k, n, re, im);
      y[k] += x[j] * std::complex<double>(re, im);
    }
  return y;
}

template <int W>
void check_shuffles() {
  using En = Engine<Lanes<float, W>>;
  using V = typename Lanes<float, W>::V;
  float m[2 * W * W], back[2 * W * W];
  for (int i = 0; i < 2 * W * W; ++i) m[i] = static_cast<float>(i);
  V rows[W];
  for (int r = 0; r < W; ++r) rows[r] = Lanes<float, W>::load(m + r * W);
  En::transpose(rows);
  for (int r = 0; r < W; ++r) Lanes<float, W>::store(back + r * W, rows[r]);
  for (int r = 0; r < W; ++r)
    for (int c = 0; c < W; ++c) REQUIRE(back[r * W + c] == m[c * W + r]);

  Lanes<float, W>::store(back, En::reverse(Lanes<float, W>::load(m)));
  for (int i = 0; i < W; ++i) REQUIRE(back[i] == m[W - 1 - i]);

  // (re, im) pairs -> split lanes -> pairs
  const auto c = En::load_interleaved(m);
  for (int i = 0; i < W; ++i) {
    REQUIRE(Lanes<float, W>::lane(c.re, i) == m[2 * i]);
    REQUIRE(Lanes<float, W>::lane(c.im, i) == m[2 * i + 1]);
  }
  En::store_interleaved(back, c);
  for (int i = 0; i < 2 * W; ++i) REQUIRE(back[i] == m[i]);
}

template <int P>
void check_butterfly() {
  using En = Engine<Lanes<double, 1>>;
  Random rng(P);
  std::vector<std::complex<double>> x(P);
  typename En::C a[P];
  for (int q = 0; q < P; ++q) {
    x[q] = {rng.uniform(-1, 1), rng.uniform(-1, 1)};
    a[q] = {x[q].real(), x[q].imag()};
  }
  typename En::C b[P];
  for (int q = 0; q < P; ++q) b[q] = a[q];
  En::template butterfly<P>(a);
  const auto y = dft(x);
  for (int r = 0; r < P; ++r) {
    CHECK(a[r].re == Approx(y[r].real()).margin(1e-14));
    CHECK(a[r].im == Approx(y[r].imag()).margin(1e-14));
  }
  if constexpr (P == 2 || P == 4 || P == 8 || P == 16) {
    En::template dft_in_registers<P>(b);
    for (int r = 0; r < P; ++r) {
      CHECK(b[r].re == Approx(y[r].real()).margin(1e-14));
      CHECK(b[r].im == Approx(y[r].imag()).margin(1e-14));
    }
  }
}
}  // namespace

TEST_CASE("lane shuffles: transpose, reverse, (de)interleave", "[core][fft_kernels]") {
  check_shuffles<1>();
  check_shuffles<2>();
  check_shuffles<4>();
  check_shuffles<8>();
  check_shuffles<16>();
}

TEST_CASE("radix 2, 3, 4, 5, 8, 16 butterflies and in-register DFTs are DFTs",
          "[core][fft_kernels]") {
  check_butterfly<16>();
  check_butterfly<8>();
  check_butterfly<2>();
  check_butterfly<3>();
  check_butterfly<4>();
  check_butterfly<5>();
}

TEST_CASE("lane engine: W independent transforms, strided and in place", "[core][fft_kernels]") {
  constexpr int W = 4;
  using En = Engine<Lanes<double, W>>;
  for (Index n : {1, 2, 3, 4, 5, 7, 8, 11, 12, 16, 30, 49, 59, 60, 64, 77, 120, 256, 512, 2048}) {
    INFO("n = " << n);
    Plan<double> plan;
    plan.n = n;
    build_direct(plan);
    Random rng(n);
    std::vector<std::vector<std::complex<double>>> x(W, std::vector<std::complex<double>>(n));
    // Input with element stride 3 lane elements and real/imag planes far apart.
    const Index stride = 3 * W, im = 3 * W * n;
    std::vector<double> in(2 * im, 0.0), out(2 * W * n), scratch(2 * W * En::scratch_elements(plan));
    for (int t = 0; t < W; ++t)
      for (Index i = 0; i < n; ++i) {
        x[t][i] = {rng.uniform(-1, 1), rng.uniform(-1, 1)};
        in[i * stride + t] = x[t][i].real();
        in[i * stride + t + im] = x[t][i].imag();
      }
    En::direct(plan, in.data(), stride, im, out.data(), 2 * W, W, scratch.data());
    // In place, same layout as out.
    std::vector<double> inplace(2 * W * n);
    for (Index i = 0; i < n; ++i)
      for (int t = 0; t < W; ++t) {
        inplace[i * 2 * W + t] = x[t][i].real();
        inplace[i * 2 * W + W + t] = x[t][i].imag();
      }
    En::direct(plan, inplace.data(), 2 * W, W, inplace.data(), 2 * W, W, scratch.data());
    for (int t = 0; t < W; ++t) {
      const auto y = dft(x[t]);
      for (Index k = 0; k < n; ++k) {
        CHECK(out[k * 2 * W + t] == Approx(y[k].real()).margin(1e-12));
        CHECK(out[k * 2 * W + W + t] == Approx(y[k].imag()).margin(1e-12));
      }
    }
    CHECK(inplace == out);
    // Interleaved (re, im) source read by the first pass (Src 1), and swapped (Src 2: the
    // inverse transform, output swapped back).
    std::vector<double> pairs(2 * W * n), out1(2 * W * n), out2(2 * W * n);
    for (Index i = 0; i < n; ++i)
      for (int t = 0; t < W; ++t) {
        pairs[i * 2 * W + 2 * t] = x[t][i].real();
        pairs[i * 2 * W + 2 * t + 1] = x[t][i].imag();
      }
    En::template direct<1>(plan, pairs.data(), 2 * W, 0, out1.data(), 2 * W, W, scratch.data());
    CHECK(out1 == out);
    En::template direct<2>(plan, pairs.data(), 2 * W, 0, out2.data() + W, 2 * W, -W,
                           scratch.data());
    for (int t = 0; t < W; ++t) {
      std::vector<std::complex<double>> xc(n);
      for (Index i = 0; i < n; ++i) xc[i] = std::conj(x[t][i]);
      const auto yc = dft(xc);  // inverse DFT = conj(DFT(conj x))
      for (Index k = 0; k < n; ++k) {
        CHECK(out2[k * 2 * W + t] == Approx(yc[k].real()).margin(1e-12));
        CHECK(out2[k * 2 * W + W + t] == Approx(-yc[k].imag()).margin(1e-12));
      }
    }
  }
}

}  // namespace test_core_fft_kernels

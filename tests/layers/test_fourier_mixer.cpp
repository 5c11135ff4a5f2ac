#include "tokenmix/layers/fourier_mixer.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "isa_paths.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/io/npy.hpp"

namespace test_layers_fourier_mixer {

using namespace tokenmix;

namespace {

template <class T>
constexpr double rtol() {
  return std::is_same<T, float>::value ? 1e-5 : 1e-10;
}

// SPEC.md's criterion: |y - ref| <= atol + rtol |ref| with atol = rtol * max|ref|.
template <class T>
void check_close(const Matrix<T>& y, const Matrix<double>& ref) {
  REQUIRE(y.rows() == ref.rows());
  REQUIRE(y.cols() == ref.cols());
  const double atol = rtol<T>() * ref.cwiseAbs().maxCoeff();
  Index bad = 0;
  double worst = 0;
  for (Index i = 0; i < ref.rows(); ++i)
    for (Index j = 0; j < ref.cols(); ++j) {
      const double err = std::abs(static_cast<double>(y(i, j)) - ref(i, j));
      const double allowed = atol + rtol<T>() * std::abs(ref(i, j));
      if (err > allowed) ++bad;
      worst = std::max(worst, err / allowed);
    }
  INFO("worst error / allowed = " << worst);
  CHECK(bad == 0);
}

// Direct evaluation of Y[k,l] = sum_m sum_j X[m,j] cos(2 pi (km/n + jl/d)) in long double.
template <class T>
Matrix<double> direct_mix(const Matrix<T>& x, Index n) {
  const Index d = x.cols(), batch = x.rows() / n;
  const long double two_pi = 6.283185307179586476925286766559L;
  Matrix<double> y(x.rows(), d);
  for (Index b = 0; b < batch; ++b)
    for (Index k = 0; k < n; ++k)
      for (Index l = 0; l < d; ++l) {
        long double acc = 0;
        for (Index m = 0; m < n; ++m)
          for (Index j = 0; j < d; ++j) {
            const Index phase = ((k * m) % n) * d + ((l * j) % d) * n;
            acc += x(b * n + m, j) * std::cos(two_pi * (phase % (n * d)) / (n * d));
          }
        y(b * n + k, l) = static_cast<double>(acc);
      }
  return y;
}

}  // namespace

TEMPLATE_TEST_CASE("FourierMixer equals numpy.fft.fftn(x).real on the fixtures",
                   "[layers][fourier_mixer]", float, double) {
  const std::vector<std::string> tags = {"1x7x12", "1x33x64", "1x196x160", "2x16x24", "3x5x1",
                                         "1x1x9"};
  const std::vector<Index> seq = {7, 33, 196, 16, 5, 1};
  for (FourierMethod method : {FourierMethod::automatic, FourierMethod::fft,
                               FourierMethod::matmul}) {
    for (Isa isa : tokenmix_test::supported_isa_paths("FourierMixer")) {
      ScopedIsa scoped(isa);
      for (std::size_t c = 0; c < tags.size(); ++c) {
        INFO("shape " << tags[c] << ", isa " << isa_name(isa) << ", method "
                      << static_cast<int>(method));
        const std::string base = std::string(TOKENMIX_TEST_DATA_DIR) + "/fft/mix_" + tags[c];
        const Matrix<TestType> x =
            read_npy(base + "_input.npy").to_matrix<float>().template cast<TestType>();
        const Matrix<double> ref = read_npy(base + "_output.npy").to_matrix<double>();
        FourierMixer<TestType> mixer({method, 1});
        check_close<TestType>(mixer.forward(x, seq[c]), ref);
      }
    }
  }
}

TEMPLATE_TEST_CASE("FourierMixer matches a direct double sum for odd shapes, both methods",
                   "[layers][fourier_mixer]", float, double) {
  for (auto [b, n, d] : std::vector<std::tuple<Index, Index, Index>>{
           {1, 3, 3}, {2, 9, 10}, {1, 13, 17}, {3, 8, 8}, {1, 61, 5}}) {
    Random rng(b * 100 + n * 10 + d);
    Matrix<TestType> x(b * n, d);
    for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<TestType>(rng.normal());
    const Matrix<double> ref = direct_mix(x, n);
    for (FourierMethod method : {FourierMethod::fft, FourierMethod::matmul}) {
      INFO(b << " x " << n << " x " << d << ", method " << static_cast<int>(method));
      check_close<TestType>(FourierMixer<TestType>({method, 1}).forward(x, n), ref);
    }
  }
}

TEST_CASE("FourierMixer: in place, threads, views and allocation-free once warm",
          "[layers][fourier_mixer][threads]") {
  Random rng(5);
  const Index n = 24, d = 40, batch = 5;
  Matrix<float> x(batch * n, d);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(rng.normal());
  const FourierMixer<float> one({FourierMethod::fft, 1});
  const Matrix<float> expected = one.forward(x, n);

  // Several threads over the batch give the same bits as one.
  const FourierMixer<float> two({FourierMethod::fft, 2});
  CHECK(two.forward(x, n) == expected);

  Matrix<float> inplace = x;
  one.forward(inplace, n, inplace);
  CHECK(inplace == expected);

  // A strided view (every sequence taken from a wider buffer).
  Matrix<float> wide = Matrix<float>::Zero(batch * n, d + 7);
  wide.leftCols(d) = x;
  Matrix<float> out(batch * n, d);
  one.forward(wide.leftCols(d), n, out);
  CHECK(out == expected);

  one.forward(x, n, out);
  const std::size_t warm = detail::thread_scratch_arena().capacity();
  one.forward(x, n, out);
  CHECK(detail::thread_scratch_arena().capacity() == warm);
  CHECK(out == expected);

  CHECK(FourierMixer<float>::choose(4, 4) == FourierMethod::fft);
  CHECK(FourierMixer<float>::choose(128, 768) == FourierMethod::fft);
}

TEST_CASE("FourierMixer rejects bad shapes with its name in the message",
          "[layers][fourier_mixer]") {
  const FourierMixer<double> mixer;
  Matrix<double> x(10, 4), y(10, 5);
  CHECK_THROWS_AS(mixer.forward(x, 3), ShapeError);
  CHECK_THROWS_WITH(mixer.forward(x, 3), Catch::Contains("FourierMixer"));
  CHECK_THROWS_AS(mixer.forward(x, 5, y), ShapeError);
  CHECK_THROWS_WITH(mixer.forward(x, 5, y), Catch::Contains("FourierMixer"));
  CHECK_THROWS_AS(mixer.forward(x, 0), ShapeError);
  CHECK_THROWS_AS(FourierMixer<float>({FourierMethod::fft, -1}), ArgumentError);
}

}  // namespace test_layers_fourier_mixer

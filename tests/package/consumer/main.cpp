// Built against tokenmix as a user's project builds it (find_package, or add_subdirectory with
// the kernels compiled once, see kernels.cpp): proves the umbrella header, the target's include
// path, C++17 and the Eigen dependency arrive, and that the dispatched GEMM and FFT kernels link
// and compute, each checked against a plain loop.
#include <tokenmix/tokenmix.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>

namespace {

template <class T>
double linear_error() {
  tokenmix::Linear<T> linear({/*in_features=*/37, /*out_features=*/29, /*bias=*/true});
  linear.init_random(/*seed=*/3);
  tokenmix::Matrix<T> x = tokenmix::Matrix<T>::Random(11, 37);
  tokenmix::Matrix<T> y = linear.forward(x);
  const tokenmix::Matrix<T> w = linear.weight.value();
  double worst = 0;
  for (int i = 0; i < 11; ++i)
    for (int o = 0; o < 29; ++o) {
      double expected = linear.bias(o);
      for (int k = 0; k < 37; ++k) expected += double(x(i, k)) * double(w(o, k));
      worst = std::fmax(worst, std::fabs(double(y(i, o)) - expected));
    }
  return worst;
}

// FNet's mixing: the real part of the 2D DFT over tokens and channels.
template <class T>
double fourier_error() {
  const int n = 6, d = 10;
  tokenmix::FourierMixer<T> mixer;
  tokenmix::Matrix<T> x = tokenmix::Matrix<T>::Random(n, d);
  tokenmix::Matrix<T> y = mixer.forward(x, n);
  const double two_pi = 2 * std::acos(-1.0);
  double worst = 0;
  for (int p = 0; p < n; ++p)
    for (int q = 0; q < d; ++q) {
      double expected = 0;
      for (int t = 0; t < n; ++t)
        for (int c = 0; c < d; ++c)
          expected += double(x(t, c)) * std::cos(two_pi * (double(p * t) / n + double(q * c) / d));
      worst = std::fmax(worst, std::fabs(double(y(p, q)) - expected));
    }
  return worst;
}

}  // namespace

int main() {
  if (std::strcmp(tokenmix::version_string, TOKENMIX_VERSION_STRING) != 0) return 1;
  tokenmix::Matrix<float> x = tokenmix::Matrix<float>::Ones(4, 3);
  tokenmix::SequenceBatch<float> batch(x.data(), 2, 2, 3);
  if (batch.sequence(1).sum() != 6.0f) return 2;
  const double errors[] = {linear_error<float>(), linear_error<double>(), fourier_error<float>(),
                           fourier_error<double>()};
  const double tolerances[] = {1e-5, 1e-12, 1e-4, 1e-11};  // absolute; the DFT sums 60 terms
  for (int i = 0; i < 4; ++i) {
    if (!(errors[i] <= tolerances[i])) {
      std::printf("kernel check %d: error %g above %g\n", i, errors[i], tolerances[i]);
      return 4;
    }
  }
  try {
    tokenmix::StateDict empty("consumer");
    empty.at("missing.weight");
    return 3;
  } catch (const tokenmix::KeyError& e) {
    std::printf("tokenmix %s consumer ok (%s)\n", tokenmix::version_string, e.what());
  }
  return 0;
}

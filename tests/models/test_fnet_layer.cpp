#include <catch2/catch.hpp>

#include <cmath>

#include "model_test_util.hpp"
#include "tokenmix/models/fnet_layer.hpp"

namespace test_models_fnet_layer {

using namespace tokenmix;

namespace {

// The layer's equations with a direct O(n^2 d^2) DFT in long double: an independent check of
// the FFT path, the residual, both LayerNorms and the activation.
Matrix<double> reference_layer(const FNetLayer<double>& l, const Matrix<double>& x, Index n) {
  const Index d = x.cols(), batch = x.rows() / n;
  const double eps = l.config().layer_norm_eps;
  auto layer_norm = [&](Matrix<double> m, const Vector<double>& g, const Vector<double>& b) {
    for (Index r = 0; r < m.rows(); ++r) {
      const double mean = m.row(r).mean();
      const double var = (m.row(r).array() - mean).square().mean();
      m.row(r) = (((m.row(r).array() - mean) / std::sqrt(var + eps)) * g.transpose().array() +
                  b.transpose().array()).matrix();
    }
    return m;
  };
  Matrix<double> f(x.rows(), d);
  const long double two_pi = 6.283185307179586476925286766559L;
  for (Index b = 0; b < batch; ++b)
    for (Index i = 0; i < n; ++i)
      for (Index k = 0; k < d; ++k) {
        long double s = 0;
        for (Index m = 0; m < n; ++m)
          for (Index c = 0; c < d; ++c)
            s += x(b * n + m, c) *
                 std::cos(two_pi * (static_cast<long double>((i * m) % n) / n +
                                    static_cast<long double>((k * c) % d) / d));
        f(b * n + i, k) = static_cast<double>(s);
      }
  const Matrix<double> F = layer_norm(x + f, l.fourier_norm.weight, l.fourier_norm.bias);
  Matrix<double> h = (F * l.ffn.fc1.weight.value().transpose()).rowwise() + l.ffn.fc1.bias.transpose();
  const bool exact = l.config().hidden_act == Activation::gelu_erf;
  for (Index i = 0; i < h.size(); ++i) {
    const double v = h.data()[i];
    h.data()[i] = exact ? 0.5 * v * std::erfc(-v / std::sqrt(2.0))
                        : 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
  }
  const Matrix<double> o = (h * l.ffn.fc2.weight.value().transpose()).rowwise() + l.ffn.fc2.bias.transpose();
  return layer_norm(F + o, l.output_norm.weight, l.output_norm.bias);
}

}  // namespace

TEST_CASE("FNetLayer matches its equations (direct DFT) for odd sizes and both GELUs",
          "[models]") {
  for (const auto act : {Activation::gelu_tanh, Activation::gelu_erf}) {
    FNetLayer<double> layer({12, 20, act, 1e-12});
    Random rng(11);
    layer.init_random(rng);
    layer.fourier_norm.init_random(rng);
    layer.output_norm.init_random(rng);
    layer.ffn.fc1.weight.update([&](auto& w) { rng.fill_normal(w, 0.0, 0.3); });
    rng.fill_normal(layer.ffn.fc2.bias, 0.0, 0.3);
    const Index n = 7;
    Matrix<double> x(3 * n, 12);
    rng.fill_normal(x, 0.0, 1.0);
    const Matrix<double> y = layer.forward(x, n);
    tokenmix_test::require_close(y, reference_layer(layer, x, n), 1e-10);

    // In place, and fp32 against the same reference.
    Matrix<double> z = x;
    layer.forward(z, n, z);
    CHECK(z == y);
    FNetLayer<float> lf({12, 20, act, 1e-12});
    StateDict sd;
    layer.save(sd);
    lf.load(sd);
    const Matrix<float> yf = lf.forward(x.cast<float>(), n);
    tokenmix_test::require_close(yf, y, 1e-4);
  }
}

TEST_CASE("FNetLayer keys, shapes and large inputs", "[models]") {
  FNetLayer<float> layer({8, 16, Activation::gelu_tanh, 1e-12});
  layer.init_random(3);
  StateDict sd;
  layer.save(sd, "encoder.layer.0.");
  CHECK(sd.contains("encoder.layer.0.fourier.output.LayerNorm.weight"));
  CHECK(sd.contains("encoder.layer.0.intermediate.dense.weight"));
  CHECK(sd.contains("encoder.layer.0.output.dense.bias"));
  CHECK(sd.contains("encoder.layer.0.output.LayerNorm.bias"));
  CHECK(sd.size() == 8);
  sd.erase("encoder.layer.0.output.dense.bias");
  CHECK_THROWS_AS(layer.load(sd, "encoder.layer.0."), KeyError);

  Matrix<float> x(10, 8);
  x.setConstant(1e4f);
  x(3, 2) = -1e4f;
  CHECK(layer.forward(x, 5).allFinite());
  CHECK(layer.forward(x.topRows(1), 1).allFinite());  // n = 1
  CHECK_THROWS_AS(layer.forward(x, 3), ShapeError);
  Matrix<float> wrong(10, 7);
  CHECK_THROWS_AS(layer.forward(wrong, 5), ShapeError);
  CHECK_THROWS_AS(FNetLayer<float>({0, 16, Activation::gelu_tanh, 1e-12}), ArgumentError);
}

}  // namespace test_models_fnet_layer

// Compose a custom model from tokenmix layers: a hybrid that mixes tokens cheaply with FNet
// layers first and spends attention only at the end (in the spirit of FNet's hybrid models).
// Random weights; the point is the composition, about 20 lines in main().

#include <iostream>
#include <vector>

#include "tokenmix/models/fnet_layer.hpp"
#include "tokenmix/models/transformer_block.hpp"

int main() {
  using namespace tokenmix;
  const Index batch = 4, n = 128, d = 256;

  std::vector<FNetLayer<float>> fourier;  // 4 parameter-free token mixers + FFN each
  for (int i = 0; i < 4; ++i) {
    fourier.emplace_back(FNetLayer<float>::Config{d, 4 * d, Activation::gelu_tanh, 1e-12});
    fourier.back().init_random(100 + i);
  }
  TransformerBlock<float>::Config tc;
  tc.channels = d;
  tc.heads = 4;
  TransformerBlock<float> attention(tc);  // one attention block on top
  attention.init_random(7);

  Matrix<float> x(batch * n, d);
  Random(1).fill_normal(x, 0.0, 1.0);
  for (const auto& layer : fourier) layer.forward(x, n, x);  // in place
  attention.forward(x, n, x);

  std::cout << "hybrid output: " << x.rows() << " x " << x.cols() << ", first values " << x(0, 0)
            << " " << x(0, 1) << " " << x(1, 0) << ", finite: " << std::boolalpha << x.allFinite()
            << '\n';
  return 0;
}

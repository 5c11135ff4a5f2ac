// The README's code example, built with the examples so it cannot rot.
#include <tokenmix/tokenmix.hpp>
#include <iostream>

int main() {
  using namespace tokenmix;
  SpatialGatingUnit<float>::Config config;       // gMLP's gate: 196 tokens, 1536 channels in
  config.seq_len = 196;
  config.channels = 1536;
  SpatialGatingUnit<float> gate(config);
  gate.init_random(/*seed=*/7);                  // or gate.load(read_safetensors("gmlp.safetensors"),
                                                 //   "blocks.0.mlp_channels.gate.")
  Matrix<float> x = Matrix<float>::Random(2 * 196, 1536);  // a batch of 2 sequences, one token per row
  Matrix<float> y = gate.forward(x, /*seq_len=*/196);      // 392 x 768: U * proj(LayerNorm(V))
  std::cout << "output " << y.rows() << " x " << y.cols() << ", mean " << y.mean() << "\n";
}

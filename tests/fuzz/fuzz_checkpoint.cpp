// libFuzzer harness: a fuzzed safetensors checkpoint loaded into a layer. A load either
// succeeds (and forward then runs) or throws tokenmix::Error naming the offending keys.
#include <cstddef>
#include <cstdint>

#include "tokenmix/io/safetensors.hpp"
#include "tokenmix/layers/self_attention.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const tokenmix::SafetensorsFile file = tokenmix::parse_safetensors(data, size, "fuzz");
    tokenmix::SelfAttention<float>::Config config;
    config.channels = 8;
    config.heads = 2;
    tokenmix::SelfAttention<float> attention(config);
    attention.load(file.tensors);
    const tokenmix::Matrix<float> x = tokenmix::Matrix<float>::Ones(6, 8);
    const tokenmix::Matrix<float> y = attention.forward(x, 3);
    if (y.rows() != 6 || y.cols() != 8) __builtin_trap();
  } catch (const tokenmix::Error&) {
  }
  return 0;
}

// libFuzzer harness: any byte string given to the safetensors parser either parses or throws
// tokenmix::Error; it must never crash, read out of bounds or allocate unboundedly.
#include <cstddef>
#include <cstdint>

#include "tokenmix/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const tokenmix::SafetensorsFile file = tokenmix::parse_safetensors(data, size, "fuzz");
    // Touch every tensor so lazily wrong offsets would show up under ASan.
    for (const auto& kv : file.tensors) {
      const tokenmix::Tensor& t = kv.second;
      if (t.numel() > 0 && t.raw() == nullptr) __builtin_trap();
      volatile unsigned char sink = 0;
      for (std::size_t i = 0; i < t.byte_size(); i += 61) sink = sink ^ t.raw()[i];
      (void)sink;
    }
  } catch (const tokenmix::Error&) {
  }
  return 0;
}

// libFuzzer harness for the .npy parser: parse or throw tokenmix::Error, nothing else.
#include <cstddef>
#include <cstdint>

#include "tokenmix/io/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const tokenmix::Tensor t = tokenmix::parse_npy(data, size, "fuzz.npy");
    if (t.numel() > 0) {
      volatile unsigned char sink = t.raw()[t.byte_size() - 1];
      (void)sink;
    }
  } catch (const tokenmix::Error&) {
  }
  return 0;
}

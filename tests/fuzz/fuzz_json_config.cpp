// libFuzzer harness for JSON configs: text in, a config or tokenmix::Error out.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tokenmix/io/json_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const nlohmann::json j =
        tokenmix::parse_json_text(std::string(reinterpret_cast<const char*>(data), size),
                                  "fuzz.json");
    (void)j.dump();
  } catch (const tokenmix::Error&) {
  }
  return 0;
}

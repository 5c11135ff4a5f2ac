#pragma once
// The runtime ISA paths a test forces in turn (ScopedIsa) to cover every one: those this CPU
// supports, with one Catch2 warning per path skipped, naming the code that skipped it.

#include <catch2/catch.hpp>

#include <vector>

#include "tokenmix/core/isa.hpp"

namespace tokenmix_test {

inline std::vector<tokenmix::Isa> supported_isa_paths(const char* what) {
  using tokenmix::Isa;
  std::vector<Isa> paths;
  for (Isa isa : {Isa::scalar, Isa::neon, Isa::avx2, Isa::avx512}) {
    if (tokenmix::isa_supported(isa))
      paths.push_back(isa);
    else
      WARN(what << ": skipping the " << tokenmix::isa_name(isa) << " path, which this CPU lacks");
  }
  return paths;
}

}  // namespace tokenmix_test

#include "tokenmix/core/isa.hpp"

#include <catch2/catch.hpp>

namespace test_core_isa {

using namespace tokenmix;

TEST_CASE("ISA names round-trip and unknown names are rejected", "[core][isa]") {
  for (Isa isa : {Isa::scalar, Isa::neon, Isa::avx2, Isa::avx512})
    CHECK(parse_isa(isa_name(isa)) == isa);
  CHECK_THROWS_AS(parse_isa("sse9"), ArgumentError);
  CHECK_THROWS_WITH(parse_isa("sse9"), Catch::Contains("sse9"));
}

TEST_CASE("scalar is always available and forcing is scoped", "[core][isa]") {
  const Isa before = active_isa();
  CHECK(isa_supported(Isa::scalar));
  CHECK(isa_supported(detected_isa()));
  {
    ScopedIsa scalar(Isa::scalar);
    CHECK(active_isa() == Isa::scalar);
  }
  CHECK(active_isa() == before);
}

TEST_CASE("forcing an ISA the CPU lacks is an error, not a silent fallback", "[core][isa]") {
  const Isa best = detected_isa();
  if (best == Isa::neon) {
    CHECK_THROWS_AS(force_isa(Isa::avx2), ArgumentError);
  } else {
    CHECK_THROWS_AS(force_isa(Isa::neon), ArgumentError);
    if (best != Isa::avx512) CHECK_THROWS_AS(force_isa(Isa::avx512), ArgumentError);
  }
}

}  // namespace test_core_isa

#include "tokenmix/core/workspace.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>

namespace test_core_workspace {

using namespace tokenmix;

TEST_CASE("scratch buffers are aligned, disjoint and survive arena growth", "[core][workspace]") {
  ScratchFrame outer;
  float* a = outer.take<float>(1000);
  std::memset(a, 0x11, 1000 * sizeof(float));
  {
    ScratchFrame inner;
    double* big = inner.take<double>(1 << 20);  // forces a new block
    CHECK(reinterpret_cast<std::uintptr_t>(big) % 64 == 0);
    big[0] = 1.0;
    big[(1 << 20) - 1] = 2.0;
  }
  CHECK(reinterpret_cast<std::uintptr_t>(a) % 64 == 0);
  unsigned char expected[4] = {0x11, 0x11, 0x11, 0x11};
  CHECK(std::memcmp(a + 999, expected, 4) == 0);
}

TEST_CASE("once warm, the same frame sizes reuse the arena without growing", "[core][workspace]") {
  auto run = [] {
    ScratchFrame frame;
    frame.take<float>(5000);
    ScratchFrame nested;
    return nested.take<float>(300000);
  };
  run();
  const std::size_t warm = detail::thread_scratch_arena().capacity();
  float* first = run();
  CHECK(detail::thread_scratch_arena().capacity() == warm);
  CHECK(run() == first);
}

}  // namespace test_core_workspace

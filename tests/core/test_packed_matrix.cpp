#include "tokenmix/core/packed_matrix.hpp"

#include <catch2/catch.hpp>
#include <utility>
#include <vector>

#include "tokenmix/core/gemm.hpp"

namespace test_core_packed_matrix {

using namespace tokenmix;

TEMPLATE_TEST_CASE("PackedMatrix holds op(B) in either layout of B", "[core][packed]", float,
                   double) {
  using T = TestType;
  const Index k = 2 * detail::gemm_kc<T> + 3, n = 3 * detail::gemm_panel_width<T> + 5;
  std::vector<T> b(static_cast<std::size_t>(k * (n + 2)));
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<T>(i % 1009) - T(500);
  const PackedMatrix<T> plain = pack_b<T>(Trans::N, k, n, b.data(), n + 2);
  // The same values stored transposed (n x k, leading dimension k + 1).
  std::vector<T> bt(static_cast<std::size_t>(n * (k + 1)));
  for (Index p = 0; p < k; ++p)
    for (Index j = 0; j < n; ++j) bt[j * (k + 1) + p] = b[p * (n + 2) + j];
  const PackedMatrix<T> trans = pack_b<T>(Trans::T, k, n, bt.data(), k + 1);
  REQUIRE(plain.rows() == k);
  REQUIRE(plain.cols() == n);
  for (Index p = 0; p < k; ++p)
    for (Index j = 0; j < n; ++j) {
      REQUIRE(plain.at(p, j) == b[p * (n + 2) + j]);
      REQUIRE(trans.at(p, j) == b[p * (n + 2) + j]);
    }
  // Panels are 64-byte aligned and padded with zeros past column n.
  CHECK(reinterpret_cast<std::uintptr_t>(plain.data()) % 64 == 0);
  const Index pw = detail::gemm_panel_width<T>;
  const Index padded = (n + pw - 1) / pw * pw;
  CHECK(plain.size() == static_cast<std::size_t>(k * padded));
  // k = 2 KC + 3 is cut into three equal blocks (rounded up to 8 rows), not 2 KC and 3.
  const Index kc = detail::gemm_kc_for<T>(k);
  REQUIRE(kc < detail::gemm_kc<T>);
  REQUIRE(3 * kc >= k);
  const Index tail = k - 2 * kc;
  const T* last_block = plain.block(2 * kc);
  const T* last_panel = last_block + (padded / pw - 1) * tail * pw;
  for (Index r = 0; r < tail; ++r)
    for (Index j = n % pw; j < pw; ++j) CHECK(last_panel[r * pw + j] == T(0));
}

TEST_CASE("PackedMatrix is empty by default and cheap to move", "[core][packed]") {
  PackedMatrix<float> none;
  CHECK(none.empty());
  CHECK(none.rows() == 0);
  std::vector<float> b(12, 1.0f);
  PackedMatrix<float> packed = pack_b<float>(Trans::N, 3, 4, b.data(), 4);
  const float* data = packed.data();
  PackedMatrix<float> moved = std::move(packed);
  CHECK(moved.data() == data);  // the buffer moved, nothing was copied
  CHECK(moved.at(2, 3) == 1.0f);
  CHECK_THROWS_AS(pack_b<float>(Trans::N, -1, 4, b.data(), 4), ArgumentError);
}

TEMPLATE_TEST_CASE("gemm_kc_for cuts k into equal blocks of at most KC rows", "[core][packed]",
                   float, double) {
  using T = TestType;
  constexpr Index KC = detail::gemm_kc<T>;
  CHECK(detail::gemm_kc_for<T>(0) == 1);
  CHECK(detail::gemm_kc_for<T>(1) == 1);
  CHECK(detail::gemm_kc_for<T>(KC) == KC);
  CHECK(detail::gemm_kc_for<T>(KC + 1) == (KC / 2 + 1 + 7) / 8 * 8);
  for (Index k = 1; k <= 5 * KC + 17; k += 13) {
    const Index kc = detail::gemm_kc_for<T>(k);
    const Index blocks = (k + kc - 1) / kc;
    INFO("k " << k << " kc " << kc);
    CHECK(kc <= KC);
    CHECK(blocks == (k + KC - 1) / KC);  // no more blocks than KC itself would give
    if (k > KC) {
      CHECK(kc % 8 == 0);
      CHECK(k - (blocks - 1) * kc > kc - 8 * blocks);  // the last block is not a stub
    }
  }
}

}  // namespace test_core_packed_matrix

// The micro-kernel contract, checked per ISA on single tiles: packed A sliver (zero rows past
// mr), B in panels or read in place with masked loads, C written only inside mr x nr.
#include "tokenmix/core/gemm_kernels.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace test_core_gemm_microkernel {

using namespace tokenmix;

namespace {

template <class T, class K>
void check_tiles(const char* isa) {
  constexpr Index MR = K::MR, NR = K::NR, PW = detail::gemm_panel_width<T>;
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  const Index k = 37;
  // Every row count the shorter tiles take over at (8 and 4 rows below MR = 14) is covered,
  // and every width class of the column tiles (nr <= 4, nr <= 8).
  for (Index mr : {MR, MR - 1, Index(9), Index(8), Index(5), Index(4), Index(1)})
    for (Index nr : {NR, NR - 1, Index(8), Index(5), Index(4), Index(1)})
      for (detail::GemmB mode :
           {detail::GemmB::packed, detail::GemmB::in_place, detail::GemmB::pack})
        for (bool with_beta : {false, true}) {
          if (mr < 1 || nr < 1 || mr > MR || nr > NR) continue;
          const bool in_place = mode != detail::GemmB::packed;
          INFO(isa << " mr " << mr << " nr " << nr << " mode " << int(mode) << " beta "
                   << with_beta);
          std::vector<T> a(static_cast<std::size_t>(k * MR), T(0));
          for (Index p = 0; p < k; ++p)
            for (Index r = 0; r < mr; ++r) a[p * MR + r] = static_cast<T>(dist(rng));
          // Logical B is k x nr. In place: row-major with ld nr + 2 in a buffer that ends
          // right after the last element, so an unmasked load would read past it.
          std::vector<T> logical(static_cast<std::size_t>(k * nr));
          for (auto& v : logical) v = static_cast<T>(dist(rng));
          std::vector<T> b;
          Index b_rs, b_ps;
          if (in_place) {
            const Index ldb = nr + 2;
            b.assign(static_cast<std::size_t>((k - 1) * ldb + nr), T(0));
            for (Index p = 0; p < k; ++p)
              for (Index j = 0; j < nr; ++j) b[p * ldb + j] = logical[p * nr + j];
            b_rs = ldb;
            b_ps = PW;
          } else {
            const Index panels = (NR + PW - 1) / PW;
            b.assign(static_cast<std::size_t>(panels * k * PW), T(0));
            for (Index p = 0; p < k; ++p)
              for (Index j = 0; j < nr; ++j) b[(j / PW) * k * PW + p * PW + j % PW] = logical[p * nr + j];
            b_rs = PW;
            b_ps = k * PW;
          }
          const Index ldc = NR + 5;
          const T sentinel = T(12345);
          std::vector<T> c(static_cast<std::size_t>((MR + 1) * ldc), sentinel);
          std::vector<T> c_old(c.size());
          for (Index i = 0; i < mr; ++i)
            for (Index j = 0; j < nr; ++j) c[i * ldc + j] = static_cast<T>(dist(rng));
          c_old = c;
          std::vector<T> bias(static_cast<std::size_t>(nr), T(0.25));
          detail::GemmEpilogueTile<T> ep{bias.data(), nullptr, Activation::relu, nullptr, nullptr, 0,
                                       nullptr, 0};
          detail::GemmTile<T> t{};
          t.k = k;
          t.a = a.data();
          t.b = b.data();
          t.b_rs = b_rs;
          t.b_ps = b_ps;
          t.b_off = 0;
          t.c = c.data();
          t.ldc = ldc;
          t.mr = mr;
          t.nr = nr;
          t.alpha = T(2);
          t.beta = with_beta ? T(-1) : T(0);
          t.read_c = with_beta;
          t.epilogue = with_beta ? &ep : nullptr;
          const Index panels = (nr + PW - 1) / PW;
          std::vector<T> pack_store(static_cast<std::size_t>(panels * k * PW + 1), sentinel);
          t.b_pack = pack_store.data();
          t.b_pack_ps = k * PW;
          // A full tile read in place needs no masks: the kernel runs it as `packed`.
          K::tile(t, mode == detail::GemmB::in_place && nr == NR ? detail::GemmB::packed : mode);
          if (mode == detail::GemmB::pack) {
            // The panels hold B, zero-padded over the columns the tile's kernel covers (the
            // only ones later kernels read: a tile of one vector or less runs a one-vector
            // kernel), and nothing is written past the panels.
            const Index covered = nr <= K::Vec::width ? Index(K::Vec::width) : NR;
            for (Index q = 0; q < panels; ++q)
              for (Index p = 0; p < k; ++p)
                for (Index j = 0; j < PW; ++j) {
                  const Index col = q * PW + j;
                  if (col >= covered) continue;
                  const T want = col < nr ? logical[p * nr + col] : T(0);
                  REQUIRE(pack_store[q * k * PW + p * PW + j] == want);
                }
            REQUIRE(pack_store.back() == sentinel);
          }
          const double eps = std::numeric_limits<T>::epsilon();
          for (Index i = 0; i <= MR; ++i)
            for (Index j = 0; j < ldc; ++j) {
              const T got = c[i * ldc + j];
              if (i >= mr || j >= nr) {
                REQUIRE(got == sentinel);
                continue;
              }
              long double acc = 0;
              for (Index p = 0; p < k; ++p)
                acc += static_cast<long double>(a[p * MR + i]) * logical[p * nr + j];
              long double want = 2 * acc;
              if (with_beta) {
                want = want - c_old[i * ldc + j] + 0.25L;
                want = want < 0 ? 0 : want;
              }
              REQUIRE(std::fabs(got - want) <= 64 * eps * (1 + std::fabs(want)));
            }
        }
}

}  // namespace

TEMPLATE_TEST_CASE("micro-kernels honour the tile contract on every ISA", "[core][gemm]", float,
                   double) {
  using T = TestType;
  check_tiles<T, typename detail::GemmKernelFor<T, Isa::scalar>::type>("scalar");
#if defined(TOKENMIX_HAVE_X86_DISPATCH)
  if (isa_supported(Isa::avx2))
    check_tiles<T, typename detail::GemmKernelFor<T, Isa::avx2>::type>("avx2");
  else
    WARN("micro-kernel: skipping avx2, which this CPU lacks");
  if (isa_supported(Isa::avx512))
    check_tiles<T, typename detail::GemmKernelFor<T, Isa::avx512>::type>("avx512");
  else
    WARN("micro-kernel: skipping avx512, which this CPU lacks");
#endif
#if defined(TOKENMIX_GEMM_HAVE_NEON)
  check_tiles<T, typename detail::GemmKernelFor<T, Isa::neon>::type>("neon");
#endif
}

}  // namespace test_core_gemm_microkernel

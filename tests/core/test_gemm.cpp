#include "tokenmix/core/gemm.hpp"

#include <catch2/catch.hpp>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <thread>
#include <vector>

#include "isa_paths.hpp"
#include "tokenmix/core/isa.hpp"
#include "tokenmix/core/threads.hpp"

namespace test_core_gemm {

using namespace tokenmix;

namespace {

// One GEMM problem with its operands stored in padded, deliberately misaligned buffers:
// leading dimensions exceed the logical widths and every operand starts one element past a
// 64-byte boundary, so aligned-load assumptions and ld/cols mix-ups both show up.
template <class T>
struct Problem {
  Trans ta, tb;
  Index m, n, k;
  Index lda, ldb, ldc;
  std::vector<T> a_store, b_store, c_store;
  T* a;
  T* b;
  T* c;

  Problem(Trans ta_, Trans tb_, Index m_, Index n_, Index k_, unsigned seed, Index pad = 3,
          Index offset = 1)
      : ta(ta_), tb(tb_), m(m_), n(n_), k(k_) {
    const Index a_rows = ta == Trans::N ? m : k, a_cols = ta == Trans::N ? k : m;
    const Index b_rows = tb == Trans::N ? k : n, b_cols = tb == Trans::N ? n : k;
    lda = a_cols + pad;
    ldb = b_cols + pad;
    ldc = n + pad;
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> dist(-1.0, 1.0);
    auto fill = [&](std::vector<T>& store, Index rows, Index ld, T*& ptr) {
      store.assign(static_cast<std::size_t>(std::max<Index>(rows, 1) * ld + offset + 16), T(0));
      for (auto& v : store) v = static_cast<T>(dist(rng));
      ptr = store.data() + offset;
    };
    fill(a_store, a_rows, lda, a);
    fill(b_store, b_rows, ldb, b);
    fill(c_store, m, ldc, c);
  }
  T A(Index i, Index p) const { return ta == Trans::N ? a[i * lda + p] : a[p * lda + i]; }
  T B(Index p, Index j) const { return tb == Trans::N ? b[p * ldb + j] : b[j * ldb + p]; }
};

long double act_exact(Activation act, long double x) {
  switch (act) {
    case Activation::none: return x;
    case Activation::relu: return x > 0 ? x : 0;
    case Activation::tanh: return std::tanh(x);
    case Activation::gelu_erf: return 0.5L * x * std::erfc(-x / std::sqrt(2.0L));
    case Activation::gelu_tanh: {
      const long double u = std::sqrt(2.0L / 3.14159265358979323846264338327950288L) *
                            (x + 0.044715L * x * x * x);
      return x / (1.0L + std::exp(-2.0L * u));  // == 0.5x(1 + tanh(u)), no cancellation
    }
  }
  return x;
}

// Reference result in long double plus a per-element error bound:
//   |err| <= c * sqrt(k) * eps * (|alpha| (|A||B|)_ij + |beta C_ij| + |biases|) * scale + ...
template <class T>
void reference(const Problem<T>& p, T alpha, T beta, const std::vector<T>& c_old,
               const Epilogue<T>& e, std::vector<long double>& ref, std::vector<double>& bound) {
  ref.assign(static_cast<std::size_t>(p.m * p.n), 0);
  bound.assign(ref.size(), 0);
  const double eps = std::numeric_limits<T>::epsilon();
  for (Index i = 0; i < p.m; ++i)
    for (Index j = 0; j < p.n; ++j) {
      long double acc = 0, mag = 0;
      for (Index q = 0; q < p.k; ++q) {
        const long double prod = static_cast<long double>(p.A(i, q)) * p.B(q, j);
        acc += prod;
        mag += std::fabs(prod);
      }
      long double v = alpha * acc;
      mag *= std::fabs(alpha);
      if (beta != T(0)) {
        v += beta * static_cast<long double>(c_old[i * p.ldc + j]);
        mag += std::fabs(beta * static_cast<long double>(c_old[i * p.ldc + j]));
      }
      if (e.col_bias) { v += e.col_bias[j]; mag += std::fabs(e.col_bias[j]); }
      if (e.row_bias) { v += e.row_bias[i]; mag += std::fabs(e.row_bias[i]); }
      v = act_exact(e.act, v);
      mag += std::fabs(v);
      if (e.col_scale) { v *= e.col_scale[j]; mag *= std::fabs(e.col_scale[j]); }
      if (e.residual) {
        v += e.residual[i * e.ld_residual + j];
        mag += std::fabs(e.residual[i * e.ld_residual + j]) + std::fabs(v);
      }
      if (e.multiplier) {
        v *= e.multiplier[i * e.ld_multiplier + j];
        mag = (mag + std::fabs(v)) * std::fabs(e.multiplier[i * e.ld_multiplier + j]);
      }
      ref[i * p.n + j] = v;
      bound[i * p.n + j] = 4.0 * (std::sqrt(static_cast<double>(p.k)) + 2.0) * eps *
                               static_cast<double>(mag) +
                           std::numeric_limits<T>::denorm_min();
    }
}

template <class T>
void check_against_reference(const Problem<T>& p, const std::vector<long double>& ref,
                             const std::vector<double>& bound) {
  Index bad = 0;
  for (Index i = 0; i < p.m; ++i)
    for (Index j = 0; j < p.n; ++j) {
      const long double got = p.c[i * p.ldc + j];
      const long double err = std::fabs(got - ref[i * p.n + j]);
      if (!(err <= bound[i * p.n + j])) {
        if (++bad <= 3)
          FAIL_CHECK("C(" << i << ", " << j << ") = " << static_cast<double>(got) << ", expected "
                          << static_cast<double>(ref[i * p.n + j]) << " +- " << bound[i * p.n + j]);
      }
    }
  CHECK(bad == 0);
}

struct Shape {
  Index m, n, k;
};

// Sizes around every blocking boundary (MR 14/7/6/8/4, NR 64 for n 49..64 / 32/16/8, panel
// 16/8, KC 1024/256, MC and NC multiples), primes, empty and degenerate shapes, tall-skinny
// and short-wide. 150x100x1100 and 150x300x1100 (A read in place / packed): B packed by the
// first A sliver's kernels over several k blocks (later blocks read C). 16 and 72 rows end
// in two 8-row slivers where B is packed (72 rows, or B transposed), packed too where A is
// transposed (C wider than 256). 2, 4, 18 and 31 rows over B read in place end in slivers
// of at most 4 rows, which take wide tiles (2 x 8 and 4 x 5 vectors): whole, partial and
// normal-width last tiles, several k blocks (2x300x1100), A packed where it is transposed;
// 8 and 22 rows end in an 8-row sliver, which keeps the 8 x 2 tile.
const std::vector<Shape>& edge_shapes() {
  static const std::vector<Shape> shapes = {
      {0, 5, 7},     {5, 0, 7},     {5, 7, 0},      {1, 1, 1},      {1, 17, 3},
      {13, 1, 29},   {2, 3, 5},     {7, 11, 13},    {13, 31, 33},   {14, 32, 16},
      {15, 33, 17},  {12, 16, 9},   {11, 15, 255},  {6, 48, 257},   {27, 63, 385},
      {29, 65, 383}, {31, 97, 384}, {64, 64, 64},   {97, 131, 130}, {200, 48, 9},
      {3, 300, 40},  {257, 5, 70},  {130, 130, 130}, {43, 47, 769}, {1, 200, 61},
      {300, 2, 31},  {9, 40, 511},   {17, 33, 513},  {15, 29, 1025}, {60, 800, 40},
      {48, 49, 520}, {101, 57, 70},  {9, 40, 1023},  {17, 33, 1024}, {5, 70, 2049},
      {150, 100, 1100}, {150, 300, 1100}, {16, 270, 70},  {72, 270, 40},
      {2, 300, 1100},   {4, 333, 129},    {18, 161, 50},  {31, 417, 33},
      {8, 113, 1030},   {22, 200, 90}};
  return shapes;
}

}  // namespace

TEMPLATE_TEST_CASE("gemm matches a long-double reference for every transpose, shape and ISA",
                   "[core][gemm]", float, double) {
  using T = TestType;
  const auto paths = tokenmix_test::supported_isa_paths("gemm");
  unsigned seed = 1;
  for (const Shape& s : edge_shapes())
    for (Trans ta : {Trans::N, Trans::T})
      for (Trans tb : {Trans::N, Trans::T}) {
        Problem<T> p(ta, tb, s.m, s.n, s.k, seed++);
        const std::vector<T> c_old = p.c_store;
        std::vector<long double> ref;
        std::vector<double> bound;
        const T alpha = T(0.75), beta = T(-0.5);
        reference(p, alpha, beta, std::vector<T>(c_old.begin() + 1, c_old.end()), {}, ref,
                  bound);
        for (Isa isa : paths) {
          INFO("isa " << isa_name(isa) << " shape " << s.m << "x" << s.n << "x" << s.k
                      << " trans " << (ta == Trans::N ? 'N' : 'T') << (tb == Trans::N ? 'N' : 'T'));
          ScopedIsa scoped(isa);
          p.c_store = c_old;
          gemm<T>(ta, tb, p.m, p.n, p.k, alpha, p.a, p.lda, p.b, p.ldb, beta, p.c, p.ldc);
          check_against_reference(p, ref, bound);
          // The padding between rows of C is never written.
          for (Index i = 0; i < p.m; ++i)
            for (Index j = p.n; j < p.ldc && i * p.ldc + j + 1 < Index(c_old.size()); ++j)
              REQUIRE(p.c_store[i * p.ldc + j + 1] == c_old[i * p.ldc + j + 1]);
        }
      }
}

TEMPLATE_TEST_CASE("gemm with beta == 0 never reads C, alpha and beta variants",
                   "[core][gemm]", float, double) {
  using T = TestType;
  for (Isa isa : tokenmix_test::supported_isa_paths("gemm")) {
    ScopedIsa scoped(isa);
    for (const Shape& s : {Shape{37, 53, 41}, Shape{5, 300, 400}}) {
      Problem<T> p(Trans::N, Trans::N, s.m, s.n, s.k, 77);
      for (auto ab : {std::pair<T, T>{1, 0}, {-2, 0}, {0, 0}, {1, 1}, {0, 3}, {T(0.5), T(2)}}) {
        INFO("isa " << isa_name(isa) << " alpha " << ab.first << " beta " << ab.second);
        std::vector<T> c_old = p.c_store;
        if (ab.second == T(0))
          for (auto& v : p.c_store) v = std::numeric_limits<T>::quiet_NaN();
        std::vector<long double> ref;
        std::vector<double> bound;
        reference(p, ab.first, ab.second, std::vector<T>(c_old.begin() + 1, c_old.end()), {},
                  ref, bound);
        gemm<T>(p.ta, p.tb, p.m, p.n, p.k, ab.first, p.a, p.lda, p.b, p.ldb, ab.second, p.c,
                p.ldc);
        check_against_reference(p, ref, bound);
        p.c_store = c_old;
      }
    }
  }
}

TEMPLATE_TEST_CASE("gemm epilogues: biases, activations, scale, residual, multiplier, aliasing C",
                   "[core][gemm]", float, double) {
  using T = TestType;
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> dist(-2.0, 2.0);
  const Index m = 45, n = 70, k = 800;  // k spans several KC blocks
  std::vector<T> col_bias(n), row_bias(m), col_scale(n);
  for (auto* v : {&col_bias, &row_bias, &col_scale})
    for (auto& x : *v) x = static_cast<T>(dist(rng));
  for (Isa isa : tokenmix_test::supported_isa_paths("gemm")) {
    ScopedIsa scoped(isa);
    for (Activation act : {Activation::none, Activation::gelu_erf, Activation::gelu_tanh,
                           Activation::relu, Activation::tanh})
      for (int options = 0; options < 32; ++options)
        for (bool alias : {false, true}) {
          if (alias && !(options & 24)) continue;
          Problem<T> p(Trans::N, Trans::T, m, n, k, 100 + options);
          for (auto& v : p.a_store) v = static_cast<T>(v * T(0.1));  // keep acc near act's knee
          std::vector<T> residual_store(p.c_store.size()), multiplier_store(p.c_store.size());
          for (auto& v : residual_store) v = static_cast<T>(dist(rng));
          for (auto& v : multiplier_store) v = static_cast<T>(dist(rng));
          // Aliased, residual and multiplier both are C (its old values, beta = 0).
          if (alias) p.c_store = residual_store;
          Epilogue<T> e;
          e.act = act;
          if (options & 1) e.col_bias = col_bias.data();
          if (options & 2) e.row_bias = row_bias.data();
          if (options & 4) e.col_scale = col_scale.data();
          if (options & 8) {
            e.residual = alias ? p.c : residual_store.data() + 1;
            e.ld_residual = p.ldc;
          }
          if (options & 16) {
            e.multiplier = alias ? p.c : multiplier_store.data() + 1;
            e.ld_multiplier = p.ldc;
          }
          std::vector<long double> ref;
          std::vector<double> bound;
          const std::vector<T> res_copy(residual_store.begin() + 1, residual_store.end());
          Epilogue<T> e_ref = e;
          if (options & 8) e_ref.residual = res_copy.data();
          const std::vector<T> mul_copy(alias ? residual_store.begin() + 1
                                              : multiplier_store.begin() + 1,
                                        alias ? residual_store.end() : multiplier_store.end());
          if (options & 16) e_ref.multiplier = mul_copy.data();
          const T beta = alias ? T(0) : T(0.25);
          reference(p, T(1), beta, std::vector<T>(p.c_store.begin() + 1, p.c_store.end()),
                    e_ref, ref, bound);
          INFO("isa " << isa_name(isa) << " act " << int(act) << " options " << options
                      << " alias " << alias);
          gemm<T>(p.ta, p.tb, m, n, k, T(1), p.a, p.lda, p.b, p.ldb, beta, p.c, p.ldc, e);
          check_against_reference(p, ref, bound);
        }
  }
}

TEMPLATE_TEST_CASE("gemm activations are accurate to ~1e-6 (float) / 1e-12 (double) relative",
                   "[core][gemm]", float, double) {
  using T = TestType;
  // C = act(x * 1): the product is exact, so C isolates the activation's own error.
  std::vector<T> x;
  for (double v = -12.0; v <= 12.0; v += 0.0137) x.push_back(static_cast<T>(v));
  for (double v : {1e-30, -1e-30, 1e-7, -1e-7, 3e-4, -3e-4, 0.0, 40.0, -40.0, 80.0})
    x.push_back(static_cast<T>(v));
  const Index m = static_cast<Index>(x.size());
  const T one = 1;
  const double tol = std::is_same<T, float>::value ? 1e-6 : 1e-12;
  for (Isa isa : tokenmix_test::supported_isa_paths("gemm")) {
    ScopedIsa scoped(isa);
    for (Activation act : {Activation::gelu_erf, Activation::gelu_tanh, Activation::relu,
                           Activation::tanh}) {
      std::vector<T> out(x.size());
      Epilogue<T> e;
      e.act = act;
      gemm<T>(Trans::N, Trans::N, m, 1, 1, one, x.data(), 1, &one, 1, T(0), out.data(), 1, e);
      Index bad = 0;
      for (Index i = 0; i < m; ++i) {
        const long double exact = act_exact(act, x[i]);
        const long double rounded = static_cast<T>(exact);
        // A denormal result carries only its absolute rounding.
        const long double allowed = tol * std::fabs(exact) + std::numeric_limits<T>::denorm_min();
        if (!(std::fabs(out[i] - exact) <= allowed) && out[i] != rounded && ++bad <= 3)
          FAIL_CHECK("isa " << isa_name(isa) << " act " << int(act) << " x " << x[i] << " got "
                            << out[i] << " exact " << static_cast<double>(exact));
      }
      CHECK(bad == 0);
    }
  }
}

// The vector activations clamp and cut off their arguments (exp's range, GELU's underflow
// limit); none of that may change what infinite, NaN or huge inputs give. The scalar path is
// the reference, and it agrees with PyTorch 1.13 (F.gelu of -inf is NaN for both forms, as
// 0.5 * -inf * erfc(inf) = -inf * 0 is; relu(-inf) = 0, tanh(+-inf) = +-1).
TEMPLATE_TEST_CASE("gemm activations of infinite, NaN and huge inputs match the scalar path",
                   "[core][gemm]", float, double) {
  using T = TestType;
  using limits = std::numeric_limits<T>;
  const T inf = limits::infinity();
  std::vector<T> x = {-inf, inf, limits::quiet_NaN(), T(-20), T(-14), T(20), T(-13.2), T(-13.1),
                      T(-1e4), T(1e4), T(-1e30), T(1e30), -limits::max(), limits::max(), T(-0.0)};
  if (std::is_same<T, double>::value) x.insert(x.end(), {T(-1e300), T(1e300)});
  // Repeated so that every value also sits in full vector lanes, not only in a masked tail.
  for (std::size_t i = 0, n0 = x.size(); i < 3 * n0; ++i) x.push_back(x[i % n0]);
  const Index count = static_cast<Index>(x.size());
  const T one = 1;
  const double tol = std::is_same<T, float>::value ? 1e-6 : 1e-12;
  CHECK(std::isnan(detail::activate_scalar(Activation::gelu_erf, -inf)));
  CHECK(std::isnan(detail::activate_scalar(Activation::gelu_tanh, -inf)));
  for (Isa isa : tokenmix_test::supported_isa_paths("gemm")) {
    ScopedIsa scoped(isa);
    for (Activation act : {Activation::gelu_erf, Activation::gelu_tanh, Activation::relu,
                           Activation::tanh}) {
      // C = act(x) as one row (values along the vector lanes) and as one column.
      for (bool row : {true, false}) {
        std::vector<T> out(x.size());
        Epilogue<T> e;
        e.act = act;
        const Index m = row ? 1 : count, n = row ? count : 1;
        gemm<T>(Trans::N, Trans::N, m, n, 1, one, row ? &one : x.data(), 1, row ? x.data() : &one,
                n, T(0), out.data(), n, e);
        Index bad = 0;
        for (Index i = 0; i < count; ++i) {
          const T want = static_cast<T>(detail::activate_scalar(act, x[i]));
          const bool ok = std::isnan(want) ? std::isnan(out[i])
                          : std::isinf(want) ? out[i] == want
                          : std::fabs(out[i] - want) <= tol * std::fabs(want) + limits::min();
          if (!ok && ++bad <= 3)
            FAIL_CHECK("isa " << isa_name(isa) << " act " << int(act) << (row ? " row" : " column")
                              << " x " << x[i] << " got " << out[i] << " want " << want);
        }
        CHECK(bad == 0);
      }
    }
  }
}

TEMPLATE_TEST_CASE("gemm is bit-identical across thread counts and concurrent callers",
                   "[core][gemm][threads]", float, double) {
  using T = TestType;
  // The second shape is narrow enough for the 7-row kernel (float, AVX-512).
  for (const Shape& s : {Shape{190, 530, 420}, Shape{300, 60, 300}}) {
    INFO("shape " << s.m << "x" << s.n << "x" << s.k);
    Problem<T> p(Trans::N, Trans::T, s.m, s.n, s.k, 9);
    const std::vector<T> c_old = p.c_store;
    Epilogue<T> e;
    e.act = Activation::gelu_erf;
    auto run = [&](int threads, std::vector<T>& out) {
      out = c_old;
      gemm<T>(p.ta, p.tb, p.m, p.n, p.k, T(1), p.a, p.lda, p.b, p.ldb, T(0.5), out.data() + 1,
              p.ldc, e, threads);
    };
    std::vector<T> one, two;
    run(1, one);
    run(hardware_threads() >= 2 ? 2 : 1, two);
    CHECK(std::memcmp(one.data(), two.data(), one.size() * sizeof(T)) == 0);

    std::vector<std::vector<T>> outs(4);
    std::vector<std::thread> callers;
    for (int t = 0; t < 4; ++t)
      callers.emplace_back([&, t] {
        for (int rep = 0; rep < 3; ++rep) run(t % 2 + 1, outs[t]);
      });
    for (auto& th : callers) th.join();
    for (const auto& out : outs)
      CHECK(std::memcmp(out.data(), one.data(), one.size() * sizeof(T)) == 0);
  }
}

TEMPLATE_TEST_CASE("gemm_packed equals gemm bit for bit, for both layouts of B",
                   "[core][gemm]", float, double) {
  using T = TestType;
  for (Isa isa : tokenmix_test::supported_isa_paths("gemm")) {
    ScopedIsa scoped(isa);
    // 60x290x1100 on one thread is swept column by column (packed B, A block within L2, C
    // wider than A is read in place for), over two k blocks and a last sliver of 4 rows;
    // 30x290x1100 likewise, its last 16 rows in two 8-row slivers.
    for (const Shape& s : {Shape{1, 1, 1}, Shape{33, 70, 390}, Shape{200, 17, 5},
                           Shape{4, 1030, 1100}, Shape{130, 60, 1100}, Shape{60, 290, 1100},
                           Shape{30, 290, 1100}})
      for (Trans ta : {Trans::N, Trans::T})
        for (Trans tb : {Trans::N, Trans::T})
          for (int threads : {1, std::min(2, hardware_threads())}) {
            Problem<T> p(ta, tb, s.m, s.n, s.k, 3);
            const PackedMatrix<T> packed = pack_b<T>(tb, s.k, s.n, p.b, p.ldb);
            REQUIRE(packed.rows() == s.k);
            REQUIRE(packed.cols() == s.n);
            std::vector<T> bias(s.n, T(0.5));
            Epilogue<T> e;
            e.col_bias = bias.data();
            e.act = Activation::relu;
            const std::vector<T> c_old = p.c_store;
            gemm<T>(ta, tb, s.m, s.n, s.k, T(1), p.a, p.lda, p.b, p.ldb, T(1), p.c, p.ldc, e,
                    threads);
            const std::vector<T> direct = p.c_store;
            p.c_store = c_old;
            gemm_packed<T>(ta, s.m, p.a, p.lda, packed, T(1), p.c, p.ldc, e, threads);
            INFO("isa " << isa_name(isa) << " shape " << s.m << "x" << s.n << "x" << s.k
                        << " threads " << threads);
            CHECK(std::memcmp(direct.data(), p.c_store.data(), direct.size() * sizeof(T)) == 0);
          }
  }
}

TEST_CASE("gemm Eigen-view overload checks shapes", "[core][gemm]") {
  Matrix<float> a = Matrix<float>::Random(4, 6), b = Matrix<float>::Random(6, 5);
  Matrix<float> c(4, 5);
  gemm<float>(Trans::N, Trans::N, 1.0f, a, b, 0.0f, c);
  Matrix<float> expected = a * b;
  CHECK(c.isApprox(expected, 1e-5f));
  Matrix<float> bt = b.transpose();
  gemm<float>(Trans::N, Trans::T, 1.0f, a, bt, 0.0f, c);
  CHECK(c.isApprox(expected, 1e-5f));
  // A strided block view of a larger matrix as C.
  Matrix<float> big = Matrix<float>::Zero(10, 12);
  gemm<float>(Trans::N, Trans::N, 1.0f, a, b, 0.0f, big.block(2, 3, 4, 5));
  CHECK(big.block(2, 3, 4, 5).isApprox(expected, 1e-5f));
  CHECK(big.block(0, 0, 2, 12).isZero());

  CHECK_THROWS_AS(gemm<float>(Trans::N, Trans::N, 1.0f, a, a, 0.0f, c), ShapeError);
  CHECK_THROWS_WITH(gemm<float>(Trans::N, Trans::N, 1.0f, a, a, 0.0f, c),
                    Catch::Contains("gemm"));
  Matrix<float> wrong(5, 5);
  CHECK_THROWS_AS(gemm<float>(Trans::N, Trans::N, 1.0f, a, b, 0.0f, wrong), ShapeError);
  CHECK_THROWS_AS(gemm<float>(Trans::N, Trans::N, -1, 2, 2, 1.0f, a.data(), 6, b.data(), 5,
                              0.0f, c.data(), 5),
                  ArgumentError);
}

}  // namespace test_core_gemm

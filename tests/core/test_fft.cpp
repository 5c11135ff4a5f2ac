#include "tokenmix/core/fft.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <complex>
#include <map>
#include <thread>
#include <vector>

#include "tokenmix/core/random.hpp"
#include "tokenmix/io/npy.hpp"

namespace test_core_fft {

using namespace tokenmix;

namespace {

using cld = std::complex<long double>;

// Every ISA this machine can run, so each dispatched path is exercised.
std::vector<Isa> runnable_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::scalar, Isa::neon, Isa::avx2, Isa::avx512})
    if (isa_supported(isa)) out.push_back(isa);
  return out;
}

std::vector<std::complex<double>> random_complex(Index n, std::uint64_t seed) {
  Random rng(seed);
  std::vector<std::complex<double>> x(n);
  for (auto& v : x) v = {rng.uniform(-1, 1), rng.uniform(-1, 1)};
  return x;
}

// O(n^2) DFT in long double with exact integer angle reduction.
std::vector<cld> naive_dft(const std::vector<std::complex<double>>& x, int sign) {
  const Index n = static_cast<Index>(x.size());
  std::vector<cld> root(n);
  const long double two_pi = 6.283185307179586476925286766559L;
  for (Index k = 0; k < n; ++k)
    root[k] = {std::cos(two_pi * k / n), sign * std::sin(two_pi * k / n)};
  std::vector<cld> y(n);
  for (Index k = 0; k < n; ++k) {
    cld acc = 0;
    for (Index j = 0; j < n; ++j) acc += cld(x[j].real(), x[j].imag()) * root[(j * k) % n];
    y[k] = acc;
  }
  return y;
}

template <class T>
double tolerance(Index n) {
  const double lg = std::max(1.0, std::log2(static_cast<double>(n)));
  return (std::is_same<T, float>::value ? 2e-7 : 1e-14) * lg;
}

template <class C>
double rel_rms(const std::vector<C>& got, const std::vector<cld>& ref) {
  long double num = 0, den = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const cld g(got[i].real(), got[i].imag());
    num += std::norm(g - ref[i]);
    den += std::norm(ref[i]);
  }
  return den == 0 ? static_cast<double>(std::sqrt(num)) : static_cast<double>(std::sqrt(num / den));
}

// Re(F_n X F_d^T) = C_n X C_d - S_n X S_d in long double, O(nd(n+d)).
template <class T>
std::vector<long double> re_fft2(const Matrix<T>& x) {
  const Index n = x.rows(), d = x.cols();
  const long double two_pi = 6.283185307179586476925286766559L;
  auto table = [&](Index len, bool sine) {
    std::vector<long double> t(len * len);
    for (Index i = 0; i < len; ++i)
      for (Index j = 0; j < len; ++j) {
        const long double a = two_pi * ((i * j) % len) / len;
        t[i * len + j] = sine ? std::sin(a) : std::cos(a);
      }
    return t;
  };
  const auto cn = table(n, false), sn = table(n, true), cd = table(d, false), sd = table(d, true);
  std::vector<long double> p(n * d, 0), q(n * d, 0), y(n * d, 0);
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < d; ++j)
      for (Index l = 0; l < d; ++l) {
        p[i * d + l] += x(i, j) * cd[j * d + l];
        q[i * d + l] += x(i, j) * sd[j * d + l];
      }
  for (Index k = 0; k < n; ++k)
    for (Index i = 0; i < n; ++i)
      for (Index l = 0; l < d; ++l)
        y[k * d + l] += cn[k * n + i] * p[i * d + l] - sn[k * n + i] * q[i * d + l];
  return y;
}

const std::vector<Index>& test_lengths() {
  static const std::vector<Index> lengths = [] {
    std::vector<Index> v;
    for (Index n = 1; n <= 64; ++n) v.push_back(n);
    // 257, 1031, 2053 and 4099 convolve with 1, 13, 9 and 5 slots shared by two chirp lags.
    for (Index n : {96, 100, 128, 243, 256, 257, 510, 512, 768, 1000, 1009, 1024, 1031, 2053,
                    3072, 4096, 4099, 8192})
      v.push_back(n);
    return v;
  }();
  return lengths;
}

struct Case {
  std::vector<std::complex<double>> x;
  std::vector<cld> fwd, inv;
};

const Case& reference(Index n) {
  static std::map<Index, Case> cache;
  auto it = cache.find(n);
  if (it != cache.end()) return it->second;
  Case c;
  c.x = random_complex(n, 1000 + n);
  c.fwd = naive_dft(c.x, -1);
  c.inv = naive_dft(c.x, +1);
  return cache.emplace(n, std::move(c)).first->second;
}

template <class T>
std::vector<std::complex<T>> cast(const std::vector<std::complex<double>>& x) {
  std::vector<std::complex<T>> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    out[i] = {static_cast<T>(x[i].real()), static_cast<T>(x[i].imag())};
  return out;
}

}  // namespace

TEMPLATE_TEST_CASE("complex FFT matches a long-double DFT at every test length and ISA",
                   "[core][fft]", float, double) {
  for (Isa isa : runnable_isas()) {
    ScopedIsa scoped(isa);
    for (Index n : test_lengths()) {
      INFO("isa " << isa_name(isa) << ", n = " << n);
      const Case& ref = reference(n);
      const auto x = cast<TestType>(ref.x);
      ComplexFft<TestType> fft(n);
      std::vector<std::complex<TestType>> y(n), z(n);
      fft.forward(x.data(), y.data());
      CHECK(rel_rms(y, ref.fwd) <= tolerance<TestType>(n));
      fft.inverse(x.data(), z.data());
      CHECK(rel_rms(z, ref.inv) <= tolerance<TestType>(n));
      // Round trip, in place: inverse(forward(x)) = n x.
      fft.inverse(y.data(), y.data());
      std::vector<cld> scaled(n);
      for (Index i = 0; i < n; ++i)
        scaled[i] = cld(x[i].real(), x[i].imag()) * static_cast<long double>(n);
      CHECK(rel_rms(y, scaled) <= 2 * tolerance<TestType>(n));
    }
  }
}

TEMPLATE_TEST_CASE("batched transforms match single ones and are independent of lane position",
                   "[core][fft]", float, double) {
  for (Index n : {1, 5, 12, 16, 17, 64, 96, 243, 256, 257, 510, 1009, 1031}) {
    const Index count = 37;  // not a multiple of any lane width
    const auto data = cast<TestType>(random_complex(n * count, 7 * n));
    std::vector<std::vector<cld>> refs[2];
    for (int dir = 0; dir < 2; ++dir)
      for (Index b = 0; b < count; ++b) {
        std::vector<std::complex<double>> xb(data.begin() + b * n, data.begin() + (b + 1) * n);
        refs[dir].push_back(naive_dft(xb, dir == 0 ? -1 : 1));
      }
    for (Isa isa : runnable_isas()) {
      ScopedIsa scoped(isa);
      INFO("isa " << isa_name(isa) << ", n = " << n);
      ComplexFft<TestType> fft(n);
      // Rows layout (dist n, stride 1) and columns layout (dist 1, stride count).
      std::vector<std::complex<TestType>> rows(n * count), cols(n * count), one(n);
      for (FftDirection dir : {FftDirection::forward, FftDirection::inverse}) {
        fft.transform_batch(dir, count, data.data(), 1, n, rows.data(), 1, n);
        std::vector<std::complex<TestType>> colin(n * count);
        for (Index b = 0; b < count; ++b)
          for (Index i = 0; i < n; ++i) colin[i * count + b] = data[b * n + i];
        fft.transform_batch(dir, count, colin.data(), count, 1, cols.data(), count, 1);
        for (Index b = 0; b < count; ++b) {
          fft.transform(dir, data.data() + b * n, one.data());
          const auto& ref = refs[dir == FftDirection::forward ? 0 : 1][b];
          std::vector<std::complex<TestType>> rb(rows.begin() + b * n,
                                                 rows.begin() + (b + 1) * n);
          CHECK(rel_rms(rb, ref) <= tolerance<TestType>(n));
          CHECK(rel_rms(one, ref) <= tolerance<TestType>(n));
          for (Index i = 0; i < n; ++i) REQUIRE(cols[i * count + b] == rb[i]);
        }
        // A transform alone in a batch of one gives bit-identical results to its lane in 37.
        std::vector<std::complex<TestType>> alone(n);
        fft.transform_batch(dir, 1, data.data() + 20 * n, 1, n, alone.data(), 1, n);
        for (Index i = 0; i < n; ++i) REQUIRE(alone[i] == rows[20 * n + i]);
      }
    }
  }
}

TEMPLATE_TEST_CASE("real FFT, inverse real FFT and Hartley transform", "[core][fft]", float,
                   double) {
  for (Isa isa : runnable_isas()) {
    ScopedIsa scoped(isa);
    for (Index n :
         {1, 2, 3, 7, 8, 12, 15, 16, 33, 64, 100, 243, 256, 257, 510, 768, 1009, 1024, 1031}) {
      INFO("isa " << isa_name(isa) << ", n = " << n);
      Random rng(77 + n);
      std::vector<std::complex<double>> xc(n);
      std::vector<TestType> x(n);
      for (Index i = 0; i < n; ++i) {
        x[i] = static_cast<TestType>(rng.uniform(-1, 1));
        xc[i] = {static_cast<double>(x[i]), 0.0};
      }
      const auto ref = naive_dft(xc, -1);
      RealFft<TestType> rfft(n);
      REQUIRE(rfft.spectrum_size() == n / 2 + 1);
      std::vector<std::complex<TestType>> spec(n / 2 + 1);
      rfft.forward(x.data(), spec.data());
      const std::vector<cld> half(ref.begin(), ref.begin() + n / 2 + 1);
      CHECK(rel_rms(spec, half) <= tolerance<TestType>(n));

      std::vector<TestType> back(n);
      rfft.inverse(spec.data(), back.data());
      long double num = 0, den = 0;
      for (Index i = 0; i < n; ++i) {
        const long double want = static_cast<long double>(x[i]) * n;
        num += (back[i] - want) * (back[i] - want);
        den += want * want;
      }
      CHECK(std::sqrt(num / den) <= 2 * tolerance<TestType>(n));

      std::vector<TestType> h(n);
      rfft.hartley(x.data(), h.data());
      num = den = 0;
      for (Index k = 0; k < n; ++k) {
        const long double want = ref[k].real() - ref[k].imag();
        num += (h[k] - want) * (h[k] - want);
        den += want * want;
      }
      CHECK(std::sqrt(num / den) <= tolerance<TestType>(n));
    }
  }
}

TEMPLATE_TEST_CASE("fft2_real_part equals Re(fft2(x)) from a direct 2D DFT", "[core][fft]",
                   float, double) {
  const std::vector<std::pair<Index, Index>> shapes = {
      {1, 1}, {1, 8}, {5, 1}, {2, 2}, {5, 2}, {3, 5}, {7, 12}, {16, 16}, {17, 33}, {33, 64},
      {40, 100}, {64, 31}, {96, 48}, {20, 32}, {36, 256},
      // Bluestein lengths (prime > 61) along n, along d and both: the column transforms run
      // in place in the scratch matrix.
      {67, 6}, {131, 10}, {4, 71}, {67, 71}};
  for (Isa isa : runnable_isas()) {
    ScopedIsa scoped(isa);
    for (auto [n, d] : shapes) {
      INFO("isa " << isa_name(isa) << ", " << n << " x " << d);
      Random rng(n * 1000 + d);
      Matrix<TestType> x(n, d);
      for (Index i = 0; i < n; ++i)
        for (Index j = 0; j < d; ++j) x(i, j) = static_cast<TestType>(rng.uniform(-1, 1));
      const auto ref = re_fft2(x);
      long double num = 0, den = 0;
      Matrix<TestType> y(n, d);
      fft2_real_part<TestType>(x, y);
      for (Index k = 0; k < n; ++k)
        for (Index l = 0; l < d; ++l) {
          const long double want = ref[k * d + l];
          num += (y(k, l) - want) * (y(k, l) - want);
          den += want * want;
        }
      CHECK(std::sqrt(num / den) <= tolerance<TestType>(n * d));
      // In place gives the same result.
      Matrix<TestType> inplace = x;
      fft2_real_part<TestType>(inplace, inplace);
      CHECK(inplace == y);
    }
  }
}

TEST_CASE("FFT plans are cached, shared and usable from many threads at once", "[core][fft][threads]") {
  ComplexFft<float> a(1000), b(1000);
  CHECK(a.size() == 1000);
  CHECK_FALSE(a.uses_bluestein());
  CHECK(ComplexFft<double>(4099).uses_bluestein());
  const auto x = cast<float>(random_complex(1000, 3));
  std::vector<std::complex<float>> expected(1000);
  a.forward(x.data(), expected.data());
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      ComplexFft<float> local(1000);
      std::vector<std::complex<float>> y(1000);
      bool same = true;
      for (int rep = 0; rep < 20; ++rep) {
        local.forward(x.data(), y.data());
        same = same && y == expected;
      }
      ok[t] = same ? 1 : 0;
    });
  for (auto& th : threads) th.join();
  CHECK(ok == std::vector<int>(4, 1));
}

TEST_CASE("FFT execution allocates no scratch once warm", "[core][fft]") {
  ComplexFft<float> fft(3072), batched(1024);
  RealFft<double> rfft(1000);
  const auto x = cast<float>(random_complex(3072, 5));
  std::vector<std::complex<float>> y(3072);
  std::vector<double> r(1000, 1.0), h(1000);
  Matrix<float> m = Matrix<float>::Ones(33, 64), out(33, 64);
  auto run = [&] {
    fft.forward(x.data(), y.data());
    batched.transform_batch(FftDirection::forward, 3, x.data(), 1, 1024, y.data(), 1, 1024);
    rfft.hartley(r.data(), h.data());
    fft2_real_part<float>(m, out);
  };
  run();
  const std::size_t warm = detail::thread_scratch_arena().capacity();
  run();
  CHECK(detail::thread_scratch_arena().capacity() == warm);
}

TEMPLATE_TEST_CASE("caller scratch of exactly scratch_size() at any alignment is enough",
                   "[core][fft]", float, double) {
  // The kernels round scratch up to a cache line: that must stay within the advertised size
  // (guard values after it must survive) and must not change the result.
  const TestType guard = TestType(-12345);
  for (Isa isa : runnable_isas()) {
    ScopedIsa scoped(isa);
    for (Index n : {16, 256, 1000, 1009, 4096, 4099}) {
      INFO("isa " << isa_name(isa) << ", n = " << n);
      const auto x = cast<TestType>(random_complex(n, 3 * n));
      ComplexFft<TestType> fft(n);
      RealFft<TestType> rfft(n);
      std::vector<TestType> xr(n);
      for (Index i = 0; i < n; ++i) xr[i] = x[i].real();
      std::vector<std::complex<TestType>> want(n), got(n), rwant(n / 2 + 1), rgot(n / 2 + 1);
      fft.forward(x.data(), want.data());
      rfft.forward(xr.data(), rwant.data());
      const std::size_t cs = fft.scratch_size(), rs = rfft.scratch_size();
      for (std::size_t shift = 0; shift < 64 / sizeof(TestType); ++shift) {
        INFO("shift " << shift);
        std::vector<TestType> buf(shift + std::max(cs, rs) + 64, guard);
        fft.transform(FftDirection::forward, x.data(), got.data(), buf.data() + shift);
        CHECK(got == want);
        auto intact = [&](std::size_t used) {
          return std::all_of(buf.begin() + shift + used, buf.end(),
                             [&](TestType v) { return v == guard; });
        };
        CHECK(intact(cs));
        std::fill(buf.begin(), buf.end(), guard);
        rfft.forward(xr.data(), rgot.data(), buf.data() + shift);
        CHECK(rgot == rwant);
        CHECK(intact(rs));
      }
    }
  }
}

TEST_CASE("FFT rejects bad lengths and shapes", "[core][fft]") {
  CHECK_THROWS_AS(ComplexFft<float>(0), ArgumentError);
  CHECK_THROWS_AS(RealFft<double>(-3), ArgumentError);
  Matrix<float> x(4, 6), y(4, 5);
  CHECK_THROWS_AS(fft2_real_part<float>(x, y), ShapeError);
}

namespace {
std::string fixture(const std::string& name) {
  return std::string(TOKENMIX_TEST_DATA_DIR) + "/fft/" + name + ".npy";
}

// Relative RMS of got (pairs of T) against a float64 reference of pairs.
template <class T>
double rel_rms_pairs(const T* got, const double* ref, Index count) {
  long double num = 0, den = 0;
  for (Index i = 0; i < count; ++i) {
    const long double diff = static_cast<long double>(got[i]) - ref[i];
    num += diff * diff;
    den += static_cast<long double>(ref[i]) * ref[i];
  }
  return den == 0 ? static_cast<double>(std::sqrt(num)) : static_cast<double>(std::sqrt(num / den));
}
}  // namespace

TEMPLATE_TEST_CASE("complex and real FFTs match numpy.fft fixtures", "[core][fft][fixtures]",
                   float, double) {
  const auto lengths = read_npy(fixture("c2c_lengths")).values<std::int64_t>();
  const auto input = read_npy(fixture("c2c_input")).values<float>();
  const auto forward = read_npy(fixture("c2c_forward")).values<double>();
  const auto inverse = read_npy(fixture("c2c_inverse")).values<double>();
  const auto rlengths = read_npy(fixture("r2c_lengths")).values<std::int64_t>();
  const auto rinput = read_npy(fixture("r2c_input")).values<float>();
  const auto rforward = read_npy(fixture("r2c_forward")).values<double>();
  const auto dht = read_npy(fixture("dht_forward")).values<double>();
  REQUIRE(lengths.size() == 75);
  for (Isa isa : runnable_isas()) {
    ScopedIsa scoped(isa);
    Index offset = 0;
    for (std::int64_t n : lengths) {
      INFO("isa " << isa_name(isa) << ", complex n = " << n);
      std::vector<std::complex<TestType>> x(n), y(n);
      for (Index i = 0; i < n; ++i) x[i] = {input[2 * (offset + i)], input[2 * (offset + i) + 1]};
      ComplexFft<TestType> fft(n);
      fft.forward(x.data(), y.data());
      CHECK(rel_rms_pairs(reinterpret_cast<TestType*>(y.data()), forward.data() + 2 * offset,
                          2 * n) <= tolerance<TestType>(n));
      fft.inverse(x.data(), y.data());
      CHECK(rel_rms_pairs(reinterpret_cast<TestType*>(y.data()), inverse.data() + 2 * offset,
                          2 * n) <= tolerance<TestType>(n));
      offset += n;
    }
    Index roff = 0, soff = 0;
    for (std::int64_t n : rlengths) {
      INFO("isa " << isa_name(isa) << ", real n = " << n);
      std::vector<TestType> x(rinput.begin() + roff, rinput.begin() + roff + n), h(n);
      std::vector<std::complex<TestType>> spec(n / 2 + 1);
      RealFft<TestType> rfft(n);
      rfft.forward(x.data(), spec.data());
      CHECK(rel_rms_pairs(reinterpret_cast<TestType*>(spec.data()), rforward.data() + 2 * soff,
                          2 * (n / 2 + 1)) <= tolerance<TestType>(n));
      rfft.hartley(x.data(), h.data());
      CHECK(rel_rms_pairs(h.data(), dht.data() + roff, n) <= tolerance<TestType>(n));
      roff += n;
      soff += n / 2 + 1;
    }
  }
}

}  // namespace test_core_fft

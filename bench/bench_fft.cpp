// FFT benchmarks: FNet mixing Re(fft2(X)) and 1D transforms, single thread.
//   fft/<impl>/mix/<n>x<d>       FourierMixer vs FFTW r2c 2D (bare execute, MEASURE), FFTW
//                                complex 2D, Eigen::FFT (kissfft) rows then columns
//   fft/<impl>/c2c/<N>, r2c/<N>  1D throughput, counter GFLOPS = 5 N log2 N / t (c2c) and
//                                2.5 N log2 N / t (r2c)
// Compare medians of ratios from one run (--benchmark_repetitions=5).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <complex>
#include <memory>
#include <new>
#include <string>
#include <unsupported/Eigen/FFT>
#include <vector>

#include "bench_common.hpp"
#include "tokenmix/core/fft.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/core/threads.hpp"
#include "tokenmix/layers/fourier_mixer.hpp"

#if defined(TOKENMIX_HAVE_FFTW)
#include <fftw3.h>
#endif

namespace {

using tokenmix::Index;
using tokenmix::Matrix;

Matrix<float> random_matrix(Index rows, Index cols, std::uint64_t seed) {
  tokenmix::Random rng(seed);
  Matrix<float> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<float>(rng.uniform(-1, 1));
  return m;
}

// 64-byte aligned buffers, as fftwf_malloc gives FFTW: the 1D rows compare both libraries
// on the same kind of memory (std::vector's is only 16-byte aligned).
template <class T>
struct Aligned {
  explicit Aligned(Index count) {
    using tokenmix::detail::round_up, tokenmix::detail::scratch_alignment;
    const std::size_t bytes = static_cast<std::size_t>(count) * sizeof(T);
    void* raw = std::aligned_alloc(scratch_alignment, round_up(bytes, scratch_alignment));
    if (raw == nullptr) throw std::bad_alloc();
    p.reset(static_cast<T*>(raw));
    std::fill(p.get(), p.get() + count, T{});
  }
  T* data() const { return p.get(); }
  T& operator[](Index i) const { return p[i]; }
  std::unique_ptr<T[], tokenmix::detail::AlignedFree> p;
};

std::string mix_shape(Index batch, Index n, Index d) {
  std::string s = std::to_string(n) + "x" + std::to_string(d);
  return batch > 1 ? std::to_string(batch) + "x" + s : s;
}

void set_bytes(benchmark::State& state, Index elements) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * elements * 4 * 2);
}

void register_mix(Index batch, Index n, Index d) {
  const std::string shape = mix_shape(batch, n, d);
  benchmark::RegisterBenchmark(("fft/tokenmix/mix/" + shape).c_str(),
                               [=](benchmark::State& state) {
    tokenmix::FourierMixer<float> mixer({tokenmix::FourierMethod::automatic, 1});
    const Matrix<float> x = random_matrix(batch * n, d, 1);
    Matrix<float> y(batch * n, d);
    mixer.forward(x, n, y);
    for (auto _ : state) {
      mixer.forward(x, n, y);
      benchmark::DoNotOptimize(y.data());
      benchmark::ClobberMemory();
    }
    set_bytes(state, batch * n * d);
  });
#if defined(TOKENMIX_HAVE_FFTW)
  benchmark::RegisterBenchmark(("fft/fftw_r2c_2d/mix/" + shape).c_str(),
                               [=](benchmark::State& state) {
    // A batch is one plan over `batch` distinct sequences, like the mixer's input.
    const Index dh = d / 2 + 1;
    float* in = fftwf_alloc_real(batch * n * d);
    fftwf_complex* out = fftwf_alloc_complex(batch * n * dh);
    const int dims[2] = {static_cast<int>(n), static_cast<int>(d)};
    fftwf_plan plan = fftwf_plan_many_dft_r2c(2, dims, static_cast<int>(batch), in, nullptr, 1,
                                              static_cast<int>(n * d), out, nullptr, 1,
                                              static_cast<int>(n * dh), FFTW_MEASURE);
    const Matrix<float> x = random_matrix(batch * n, d, 1);
    std::copy(x.data(), x.data() + batch * n * d, in);
    for (auto _ : state) {
      fftwf_execute(plan);
      benchmark::DoNotOptimize(out);
      benchmark::ClobberMemory();
    }
    set_bytes(state, batch * n * d);
    fftwf_destroy_plan(plan);
    fftwf_free(in);
    fftwf_free(out);
  });
  benchmark::RegisterBenchmark(("fft/fftw_c2c_2d/mix/" + shape).c_str(),
                               [=](benchmark::State& state) {
    fftwf_complex* in = fftwf_alloc_complex(batch * n * d);
    fftwf_complex* out = fftwf_alloc_complex(batch * n * d);
    const int dims[2] = {static_cast<int>(n), static_cast<int>(d)};
    fftwf_plan plan = fftwf_plan_many_dft(2, dims, static_cast<int>(batch), in, nullptr, 1,
                                          static_cast<int>(n * d), out, nullptr, 1,
                                          static_cast<int>(n * d), FFTW_FORWARD, FFTW_MEASURE);
    const Matrix<float> x = random_matrix(batch * n, d, 1);
    for (Index i = 0; i < batch * n * d; ++i) {
      in[i][0] = x.data()[i];
      in[i][1] = 0;
    }
    for (auto _ : state) {
      fftwf_execute(plan);
      benchmark::DoNotOptimize(out);
      benchmark::ClobberMemory();
    }
    set_bytes(state, batch * n * d);
    fftwf_destroy_plan(plan);
    fftwf_free(in);
    fftwf_free(out);
  });
#endif
  benchmark::RegisterBenchmark(("fft/eigen/mix/" + shape).c_str(), [=](benchmark::State& state) {
    Eigen::FFT<float> fft;
    const Matrix<float> x = random_matrix(n, d, 1);
    Matrix<float> y(n, d);
    std::vector<float> row(d);
    std::vector<std::complex<float>> rowf(d), col(n), colf(n);
    Eigen::Matrix<std::complex<float>, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> z(n, d);
    for (auto _ : state) {
      for (Index b = 0; b < batch; ++b) {
        for (Index i = 0; i < n; ++i) {
          std::copy(x.data() + i * d, x.data() + (i + 1) * d, row.begin());
          fft.fwd(rowf, row);
          for (Index j = 0; j < d; ++j) z(i, j) = rowf[j];
        }
        for (Index j = 0; j < d; ++j) {
          for (Index i = 0; i < n; ++i) col[i] = z(i, j);
          fft.fwd(colf, col);
          for (Index i = 0; i < n; ++i) y(i, j) = colf[i].real();
        }
      }
      benchmark::DoNotOptimize(y.data());
      benchmark::ClobberMemory();
    }
    set_bytes(state, batch * n * d);
  });
}

void set_1d_counters(benchmark::State& state, Index n, double factor) {
  const double flops = factor * static_cast<double>(n) * std::log2(static_cast<double>(n));
  state.counters["GFLOPS"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void register_1d(Index n) {
  const std::string shape = std::to_string(n);
  benchmark::RegisterBenchmark(("fft/tokenmix/c2c/" + shape).c_str(),
                               [=](benchmark::State& state) {
    tokenmix::ComplexFft<float> fft(n);
    Aligned<std::complex<float>> x(n), y(n);
    const Matrix<float> r = random_matrix(2, n, 2);
    for (Index i = 0; i < n; ++i) x[i] = {r(0, i), r(1, i)};
    Aligned<float> scratch(static_cast<Index>(fft.scratch_size()));
    fft.forward(x.data(), y.data());
    for (auto _ : state) {
      fft.transform(tokenmix::FftDirection::forward, x.data(), y.data(), scratch.data());
      benchmark::DoNotOptimize(y.data());
      benchmark::ClobberMemory();
    }
    set_1d_counters(state, n, 5.0);
  });
  benchmark::RegisterBenchmark(("fft/tokenmix/r2c/" + shape).c_str(),
                               [=](benchmark::State& state) {
    tokenmix::RealFft<float> fft(n);
    const Matrix<float> r = random_matrix(1, n, 3);
    Aligned<float> x(n);
    std::copy(r.data(), r.data() + n, x.data());
    Aligned<std::complex<float>> y(n / 2 + 1);
    Aligned<float> scratch(static_cast<Index>(fft.scratch_size()));
    fft.forward(x.data(), y.data());
    for (auto _ : state) {
      fft.forward(x.data(), y.data(), scratch.data());
      benchmark::DoNotOptimize(y.data());
      benchmark::ClobberMemory();
    }
    set_1d_counters(state, n, 2.5);
  });
#if defined(TOKENMIX_HAVE_FFTW)
  benchmark::RegisterBenchmark(("fft/fftw/c2c/" + shape).c_str(), [=](benchmark::State& state) {
    fftwf_complex* in = fftwf_alloc_complex(n);
    fftwf_complex* out = fftwf_alloc_complex(n);
    fftwf_plan plan =
        fftwf_plan_dft_1d(static_cast<int>(n), in, out, FFTW_FORWARD, FFTW_MEASURE);
    const Matrix<float> r = random_matrix(2, n, 2);
    for (Index i = 0; i < n; ++i) {
      in[i][0] = r(0, i);
      in[i][1] = r(1, i);
    }
    for (auto _ : state) {
      fftwf_execute(plan);
      benchmark::DoNotOptimize(out);
      benchmark::ClobberMemory();
    }
    set_1d_counters(state, n, 5.0);
    fftwf_destroy_plan(plan);
    fftwf_free(in);
    fftwf_free(out);
  });
  benchmark::RegisterBenchmark(("fft/fftw/r2c/" + shape).c_str(), [=](benchmark::State& state) {
    float* in = fftwf_alloc_real(n);
    fftwf_complex* out = fftwf_alloc_complex(n / 2 + 1);
    fftwf_plan plan = fftwf_plan_dft_r2c_1d(static_cast<int>(n), in, out, FFTW_MEASURE);
    const Matrix<float> r = random_matrix(1, n, 3);
    std::copy(r.data(), r.data() + n, in);
    for (auto _ : state) {
      fftwf_execute(plan);
      benchmark::DoNotOptimize(out);
      benchmark::ClobberMemory();
    }
    set_1d_counters(state, n, 2.5);
    fftwf_destroy_plan(plan);
    fftwf_free(in);
    fftwf_free(out);
  });
#endif
}

}  // namespace

int main(int argc, char** argv) {
  tokenmix::ScopedThreads one(1);
  for (auto [n, d] : std::vector<std::pair<Index, Index>>{
           {128, 768}, {512, 768}, {1024, 1024}, {4096, 256}, {8192, 512}, {2048, 768}})
    register_mix(1, n, d);
  register_mix(8, 512, 768);
  for (Index n = 64; n <= 8192; n *= 2) register_1d(n);
  for (Index n : {1009, 4099}) register_1d(n);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("tokenmix_isa", tokenmix::isa_name(tokenmix::active_isa()));
  benchmark::AddCustomContext("anchor_notes",
                              "fftw = FFTW 3 single precision, FFTW_MEASURE plans, one thread, "
                              "bare execute; eigen = Eigen::FFT (kissfft) rows then columns");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

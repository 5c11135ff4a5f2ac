#pragma once
// FNet's token mixer (Lee-Thorp et al. 2021; HF FNetBasicFourierTransform):
//   Y = Re(fft2(X)) over (tokens, channels), Y[k,l] = sum_m sum_j X[m,j] cos(2 pi (km/n + jl/d)),
// unnormalised, for every sequence of a (B*n) x d batch. No parameters.
//
// Two ways to compute it:
//  - fft: a real-input transform along the channels and complex transforms along the tokens
//    on half the columns (tokenmix::fft2_real_part), O(nd log nd);
//  - matmul: the DFT as matrix products, Y = C_n X C_d - S_n X S_d with precomputed cos/sin
//    matrices (what FNet does on TPUs for short sequences), O(nd(n+d)).
// Method::automatic runs the FFT at every size: measured on the project machine (AVX-512,
// float, one thread, -O2) there is no crossover. n x d = 4x4: fft 0.26 us, matmul 0.96 us;
// 8x8: 0.35 vs 0.51; 16x16: 0.57 vs 0.97; 32x32: 1.3 vs 4.9; 64x64: 8.6 vs 33;
// 16x768: 45 us vs 1.5 ms. The matmul path stays available (Method::matmul) as an
// independent check and for experiments.

#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/fft.hpp"
#include "tokenmix/core/gemm.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/core/thread_pool.hpp"
#include "tokenmix/core/threads.hpp"
#include "tokenmix/core/workspace.hpp"

namespace tokenmix {

enum class FourierMethod { automatic, fft, matmul };

namespace detail {
// cos and sin of 2 pi jk/n (n x n, symmetric), angle reduced mod n in integers, built once
// per (n, T) and shared.
template <class T>
struct DftMatrices {
  Matrix<T> cos, sin;
};

template <class T>
std::shared_ptr<const DftMatrices<T>> dft_matrices(Index n) {
  static std::mutex mutex;
  static std::map<Index, std::shared_ptr<const DftMatrices<T>>> cache;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = cache.find(n);
    if (it != cache.end()) return it->second;
  }
  auto m = std::make_shared<DftMatrices<T>>();
  m->cos.resize(n, n);
  m->sin.resize(n, n);
  for (Index j = 0; j < n; ++j)
    for (Index k = 0; k < n; ++k) {
      double re, im;
      fft::unit_root(j * k % n, n, re, im);
      m->cos(j, k) = static_cast<T>(re);
      m->sin(j, k) = static_cast<T>(-im);
    }
  std::lock_guard<std::mutex> lock(mutex);
  return cache.emplace(n, std::move(m)).first->second;
}
}  // namespace detail

template <class T>
class FourierMixer {
 public:
  using Scalar = T;
  using Method = FourierMethod;
  struct Config {
    Method method = Method::automatic;
    int threads = 0;  // 0: tokenmix::num_threads()
  };

  explicit FourierMixer(Config config = {}) : config_(config) {
    static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                  "FourierMixer: T must be float or double");
    if (config.threads < 0)
      detail::fail<ArgumentError>("FourierMixer: expected threads >= 0, got ", config.threads);
  }

  const Config& config() const { return config_; }

  // What Method::automatic runs for n tokens x d channels (see the measurements above).
  static Method choose(Index /*n*/, Index /*d*/) { return Method::fft; }

  // x: (B*seq_len) x d; y: same shape (may be x itself).
  void forward(const ConstMatrixRef<T>& x, Index seq_len, MatrixRef<T> y) const {
    const Index batch = detail::batch_count("FourierMixer", x.rows(), seq_len);
    detail::expect_shape("FourierMixer", "output", x.rows(), x.cols(), y.rows(), y.cols());
    const Index n = seq_len, d = x.cols();
    if (d == 0 || batch == 0) return;
    const Method method = config_.method == Method::automatic ? choose(n, d) : config_.method;
    // Sequences are independent; the pool's workers keep their scratch arenas, so the
    // threaded path is allocation-free once warm too.
    auto one = [&](Index b) {
      ScratchFrame frame;
      auto xb = x.middleRows(b * n, n);
      auto yb = y.middleRows(b * n, n);
      if (method == Method::fft) {
        fft2_real_part<T>(xb, yb, frame.take<T>(fft2_real_part_scratch<T>(n, d)));
      } else {
        matmul(xb, yb, frame.take<T>(static_cast<std::size_t>(2 * n * d)));
      }
    };
    ThreadPool::global().parallel_for(batch, num_threads(config_.threads), one);
  }

  Matrix<T> forward(const ConstMatrixRef<T>& x, Index seq_len) const {
    Matrix<T> y(x.rows(), x.cols());
    forward(x, seq_len, y);
    return y;
  }

 private:
  // Y = C_n X C_d - S_n X S_d (C, S symmetric). The products go through scratch first, so
  // y may alias x.
  static void matmul(const ConstMatrixRef<T>& x, MatrixRef<T> y, T* scratch) {
    const Index n = x.rows(), d = x.cols();
    const auto mn = detail::dft_matrices<T>(n);
    const auto md = detail::dft_matrices<T>(d);
    T* p = scratch;
    T* q = scratch + n * d;
    const Index xs = x.outerStride(), ys = y.outerStride();
    // One thread per product: the batch is what forward() spreads over threads.
    gemm<T>(Trans::N, Trans::N, n, d, d, T(1), x.data(), xs, md->cos.data(), d, T(0), p, d, {}, 1);
    gemm<T>(Trans::N, Trans::N, n, d, d, T(1), x.data(), xs, md->sin.data(), d, T(0), q, d, {}, 1);
    gemm<T>(Trans::N, Trans::N, n, d, n, T(1), mn->cos.data(), n, p, d, T(0), y.data(), ys, {}, 1);
    gemm<T>(Trans::N, Trans::N, n, d, n, T(-1), mn->sin.data(), n, q, d, T(1), y.data(), ys, {},
            1);
  }

  Config config_;
};

}  // namespace tokenmix

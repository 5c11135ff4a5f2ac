#include "anchors/eigen_native.hpp"

#include <Eigen/Core>

namespace tokenmix_bench {
namespace {

template <class T>
void run(long m, long n, long k, const T* a, const T* b, T* c) {
  using M = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::Map<const M> A(a, m, k), B(b, k, n);
  Eigen::Map<M> C(c, m, n);
  C.noalias() = A * B;
}

}  // namespace

void eigen_native_gemm(long m, long n, long k, const float* a, const float* b, float* c) {
  run(m, n, k, a, b, c);
}
void eigen_native_gemm(long m, long n, long k, const double* a, const double* b, double* c) {
  run(m, n, k, a, b, c);
}

}  // namespace tokenmix_bench

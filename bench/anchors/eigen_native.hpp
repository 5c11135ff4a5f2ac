#pragma once
// Eigen's own GEMM compiled with -march=native (this directory is built so): the "Eigen at
// its best" anchor. Plain functions, so the benchmark programs themselves need no -march.

namespace tokenmix_bench {

// C (m x n) = A (m x k) * B (k x n), all row-major and contiguous; Eigen's single thread.
void eigen_native_gemm(long m, long n, long k, const float* a, const float* b, float* c);
void eigen_native_gemm(long m, long n, long k, const double* a, const double* b, double* c);

}  // namespace tokenmix_bench

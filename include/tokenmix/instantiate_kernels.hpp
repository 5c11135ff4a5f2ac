#pragma once
// Compiles tokenmix's dispatched SIMD kernels (GEMM and the activations that share its vector
// code, FFT; float and double; every ISA of the target) in the translation unit that includes
// this header.
//
// Header-only means every translation unit that calls a layer compiles those kernels again:
// ~50 s of g++ -O2 and ~5 MB of object code per file (test_linear.cpp: 61 s and 5.9 MB
// with them, 12 s and 0.9 MB without). A project with many such files can compile them once:
//   1. define TOKENMIX_SEPARATE_KERNELS for every translation unit that includes tokenmix
//      (e.g. target_compile_definitions(app PRIVATE TOKENMIX_SEPARATE_KERNELS)); the headers
//      then declare the kernel entry points `extern template` and do not instantiate them;
//   2. include this header in exactly one .cpp file of the program (with or without the
//      macro); leaving it out fails at link time with undefined tokenmix::detail symbols.
// Results are identical either way: the same code, instantiated in one place.
//
// The float and double kernels can also compile in parallel, from two files: one that defines
// TOKENMIX_INSTANTIATE_KERNELS_FOR as float before including this header, one as double.

#include "tokenmix/tokenmix.hpp"

// The explicit instantiation definitions matching the `extern template` declarations at the end
// of core/gemm.hpp, core/gemm_kernels.hpp and core/fft.hpp.
#define TOKENMIX_DETAIL_INSTANTIATE_KERNELS(T)              \
  namespace tokenmix {                                     \
  template void activate<T>(Activation, T*, Index);        \
  namespace detail {                                       \
  template void gemm_dispatch<T>(const GemmCall<T>&, int); \
  namespace fft {                                          \
  template const Kernels<T>& kernels<T>(Isa);              \
  }                                                        \
  }                                                        \
  }

#if defined(TOKENMIX_INSTANTIATE_KERNELS_FOR)
TOKENMIX_DETAIL_INSTANTIATE_KERNELS(TOKENMIX_INSTANTIATE_KERNELS_FOR)
#else
TOKENMIX_DETAIL_INSTANTIATE_KERNELS(float)
TOKENMIX_DETAIL_INSTANTIATE_KERNELS(double)
#endif
#undef TOKENMIX_DETAIL_INSTANTIATE_KERNELS

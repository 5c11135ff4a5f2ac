#pragma once
// The per-ISA half of the GEMM: vector traits for AVX-512, AVX2+FMA, NEON and portable
// scalar code, and the micro-kernel of gemm_microkernel.hpp instantiated for each under the
// matching target attribute (no -march needed). gemm.hpp holds the blocking loops that call
// these kernels and the public API; the public enums and Epilogue are defined here, first,
// because the kernels consume them.

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <type_traits>

#include "tokenmix/core/isa.hpp"
#include "tokenmix/core/packed_matrix.hpp"
#include "tokenmix/core/tensor.hpp"

#if defined(TOKENMIX_HAVE_X86_DISPATCH)
#include <immintrin.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#define TOKENMIX_GEMM_HAVE_NEON 1
#endif

#if defined(__GNUC__) || defined(__clang__)
#define TOKENMIX_GEMM_INLINE inline __attribute__((always_inline))
#else
#define TOKENMIX_GEMM_INLINE inline
#endif

namespace tokenmix {

enum class Trans { N, T };
enum class Activation { none, gelu_erf, gelu_tanh, relu, tanh };

// Applied per element of the m x n result, in this order, while the tile is hot:
//   v = alpha*acc + beta*C_old; v += col_bias[j] (if set) + row_bias[i] (if set);
//   v = act(v); v *= col_scale[j] (if set); v += residual[i*ld_residual + j] (if set);
//   v *= multiplier[i*ld_multiplier + j] (if set).
template <class T>
struct Epilogue {
  const T* col_bias = nullptr;   // length n  (nn.Linear bias)
  const T* row_bias = nullptr;   // length m  (token-mixing bias per output token)
  Activation act = Activation::none;
  const T* col_scale = nullptr;  // length n  (LayerScale)
  const T* residual = nullptr;   // may alias C (in-place residual)
  Index ld_residual = 0;
  const T* multiplier = nullptr;  // m x n, elementwise (gMLP's gate u * v); may alias C
  Index ld_multiplier = 0;
};

namespace detail {

// Scalar activations evaluated in double: correctly rounded for float results in practice
// and within ~1 ulp for double. GELU is x * Phi(x) with Phi through erfc and GELU-tanh is
// x * sigmoid(2u), so relative accuracy holds for large negative x where 1 + erf(.) or
// 1 + tanh(.) would cancel. relu propagates NaN like torch.relu.
inline double activate_scalar(Activation act, double x) {
  switch (act) {
    case Activation::none: return x;
    case Activation::relu: return x < 0 ? 0.0 : x;
    case Activation::tanh: return std::tanh(x);
    case Activation::gelu_erf: return 0.5 * x * std::erfc(-x * 0.70710678118654752440);
    case Activation::gelu_tanh: {
      const double u = 0.79788456080286535588 * (x + 0.044715 * x * x * x);
      return x / (1.0 + std::exp(-2.0 * u));
    }
  }
  return x;
}

// The epilogue as one tile sees it: pointers already offset to the tile's first row/column.
template <class T>
struct GemmEpilogueTile {
  const T* col_bias;
  const T* row_bias;
  Activation act;
  const T* col_scale;
  const T* residual;
  Index ld_residual;
  const T* multiplier;
  Index ld_multiplier;
};

// Where a micro-kernel reads B from (see gemm_tile in gemm_microkernel.hpp).
enum class GemmB { packed, in_place, pack };

// Arguments of one micro-kernel call (see gemm_tile in gemm_microkernel.hpp).
template <class T>
struct GemmTile {
  Index k;
  const T* a;                  // packed A sliver, k x MR (or A itself, see a_rs)
  Index a_rs, a_ps;            // direct A: row stride and k stride
  const T* b;                  // B panels
  Index b_rs, b_ps, b_off;     // row stride, panel stride, first column inside the panel
  T* b_pack;                   // GemmB::pack: panels receiving B (same b_off)
  Index b_pack_ps;             // their panel stride
  T* c;
  Index ldc;
  Index mr, nr;                // valid rows and columns of the tile
  T alpha, beta;
  bool read_c;
  const GemmEpilogueTile<T>* epilogue;  // null except on the last k block
};

// Whether vector traits V have the primitives vector_gelu.hpp's float GELUs are written over
// (V::gelu_ops).
template <class V, class = void>
struct has_gelu_ops : std::false_type {};
template <class V>
struct has_gelu_ops<V, std::enable_if_t<V::gelu_ops>> : std::true_type {};

// ---------------------------------------------------------------------------------------
// Portable scalar traits: one lane, plain multiply-add (no fma() call, which would be a slow
// library routine on CPUs without FMA).
template <class Tp>
struct ScalarVec {
  using T = Tp;
  using reg = T;
  using mask = bool;
  static constexpr int width = 1;
  static constexpr bool has_transpose = false;
  static TOKENMIX_GEMM_INLINE mask first(Index count) { return count > 0; }
  static TOKENMIX_GEMM_INLINE reg zero() { return T(0); }
  static TOKENMIX_GEMM_INLINE reg set1(T x) { return x; }
  static TOKENMIX_GEMM_INLINE reg loadu(const T* p) { return *p; }
  static TOKENMIX_GEMM_INLINE reg load(const T* p, mask m) { return m ? *p : T(0); }
  static TOKENMIX_GEMM_INLINE void store(T* p, reg x, mask m) {
    if (m) *p = x;
  }
  static TOKENMIX_GEMM_INLINE void storeu(T* p, reg x) { *p = x; }
  static TOKENMIX_GEMM_INLINE reg fmadd(reg a, reg b, reg c) { return a * b + c; }
  static TOKENMIX_GEMM_INLINE reg add(reg a, reg b) { return a + b; }
  static TOKENMIX_GEMM_INLINE reg mul(reg a, reg b) { return a * b; }
  static TOKENMIX_GEMM_INLINE reg activate(Activation act, reg x) {
    return static_cast<T>(activate_scalar(act, x));
  }
};

}  // namespace detail
}  // namespace tokenmix

#define TOKENMIX_GEMM_TARGET
#define TOKENMIX_GEMM_NS scalar
#include "tokenmix/core/gemm_microkernel.hpp"
#undef TOKENMIX_GEMM_TARGET
#undef TOKENMIX_GEMM_NS

// ---------------------------------------------------------------------------------------
#if defined(TOKENMIX_HAVE_X86_DISPATCH)
// GCC 12 reports "'__Y' may be used uninitialized" inside many AVX-512 intrinsics (their
// _mm512_undefined_* pass-through operand) once they are inlined; it is a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#define TOKENMIX_AVX512_FN TOKENMIX_TARGET_AVX512 TOKENMIX_GEMM_INLINE
#define TOKENMIX_AVX2_FN TOKENMIX_TARGET_AVX2 TOKENMIX_GEMM_INLINE

namespace tokenmix {
namespace detail {

// Lanes the vector code cannot evaluate itself go through activate_scalar, lane by lane.
template <class T, int W>
TOKENMIX_GEMM_INLINE void activate_lanes(Activation act, T* lanes) {
  for (int l = 0; l < W; ++l) lanes[l] = static_cast<T>(activate_scalar(act, lanes[l]));
}

// r = broadcast of the element at byte address base + index * S (S = 1, 2, 4, 8; S = 0:
// base). Written as an instruction so that the address stays in scaled-index form: from
// pointer arithmetic the compiler hoists one offset register per A row read in place and,
// with 14 rows, spills them (one extra load per broadcast). The unsized-array operand tells
// the compiler that memory from base on is read; %0 is the trait's ymm or zmm register. The
// float and double forms differ only in the mnemonic.
#define TOKENMIX_GEMM_BROADCAST_ASM(insn)                                              \
  if constexpr (S == 0)                                                               \
    __asm__(insn " (%1), %0" : "=v"(r) : "r"(base), "m"(*(const T(*)[])base));        \
  else                                                                                \
    __asm__(insn " (%1,%2,%c3), %0"                                                   \
            : "=v"(r)                                                                 \
            : "r"(base), "r"(index), "n"(S), "m"(*(const T(*)[])base))
// The body of the traits' broadcast_scaled. Clang rejects the unsized-array memory operand,
// so there the broadcast is written as a load (correct, but the row offsets may spill).
#if defined(__clang__)
#define TOKENMIX_GEMM_BROADCAST_SCALED                                                 \
  static_assert(S == 0 || S == 1 || S == 2 || S == 4 || S == 8, "x86 scales are 1, 2, 4, 8"); \
  return set1(*reinterpret_cast<const T*>(reinterpret_cast<const char*>(base) + index * S))
#else
#define TOKENMIX_GEMM_BROADCAST_SCALED                                                 \
  static_assert(S == 0 || S == 1 || S == 2 || S == 4 || S == 8, "x86 scales are 1, 2, 4, 8"); \
  reg r;                                                                               \
  if constexpr (sizeof(T) == 4) {                                                      \
    TOKENMIX_GEMM_BROADCAST_ASM("vbroadcastss");                                       \
  } else {                                                                             \
    TOKENMIX_GEMM_BROADCAST_ASM("vbroadcastsd");                                       \
  }                                                                                    \
  return r
#endif

// The first `count` of W lanes as an AVX-512 mask.
template <class Mask, int W>
TOKENMIX_GEMM_INLINE Mask lanes_mask(Index count) {
  return count >= W ? Mask(~0u) : count <= 0 ? Mask(0) : Mask((1u << count) - 1u);
}

// Register types by element type (vector types passed through std::conditional would lose
// their attributes).
template <class T> struct X86Regs;
template <> struct X86Regs<float> {
  using zmm = __m512;
  using ymm = __m256;
  using kmask = __mmask16;
};
template <> struct X86Regs<double> {
  using zmm = __m512d;
  using ymm = __m256d;
  using kmask = __mmask8;
};

// AVX-512 traits for float and double: one template, the _ps / _pd spelling chosen per call.
template <class Tp>
struct Avx512Vec {
  using T = Tp;
  static constexpr bool f32 = std::is_same<T, float>::value;
  using reg = typename X86Regs<T>::zmm;
  using mask = typename X86Regs<T>::kmask;
  static constexpr int width = 64 / sizeof(T);
  static constexpr bool has_transpose = true;
  // Float lanes have all of vector_gelu.hpp's primitives (its header lists them).
  static constexpr bool gelu_ops = f32;
  using Wide = Avx512Vec<double>;
  template <int S>
  static TOKENMIX_AVX512_FN reg broadcast_scaled(const T* base, Index index) {
    TOKENMIX_GEMM_BROADCAST_SCALED;
  }
  static TOKENMIX_AVX512_FN mask first(Index count) { return lanes_mask<mask, width>(count); }
  static TOKENMIX_AVX512_FN reg zero() {
    if constexpr (f32) return _mm512_setzero_ps(); else return _mm512_setzero_pd();
  }
  static TOKENMIX_AVX512_FN reg set1(T x) {
    if constexpr (f32) return _mm512_set1_ps(x); else return _mm512_set1_pd(x);
  }
  static TOKENMIX_AVX512_FN reg loadu(const T* p) {
    if constexpr (f32) return _mm512_loadu_ps(p); else return _mm512_loadu_pd(p);
  }
  static TOKENMIX_AVX512_FN reg load(const T* p, mask m) {
    if constexpr (f32) return _mm512_maskz_loadu_ps(m, p); else return _mm512_maskz_loadu_pd(m, p);
  }
  static TOKENMIX_AVX512_FN void store(T* p, reg x, mask m) {
    if constexpr (f32) _mm512_mask_storeu_ps(p, m, x); else _mm512_mask_storeu_pd(p, m, x);
  }
  static TOKENMIX_AVX512_FN void storeu(T* p, reg x) {
    if constexpr (f32) _mm512_storeu_ps(p, x); else _mm512_storeu_pd(p, x);
  }
  static TOKENMIX_AVX512_FN reg fmadd(reg a, reg b, reg c) {
    if constexpr (f32) return _mm512_fmadd_ps(a, b, c); else return _mm512_fmadd_pd(a, b, c);
  }
  static TOKENMIX_AVX512_FN reg add(reg a, reg b) {
    if constexpr (f32) return _mm512_add_ps(a, b); else return _mm512_add_pd(a, b);
  }
  static TOKENMIX_AVX512_FN reg mul(reg a, reg b) {
    if constexpr (f32) return _mm512_mul_ps(a, b); else return _mm512_mul_pd(a, b);
  }
  static TOKENMIX_AVX512_FN reg sub(reg a, reg b) {
    if constexpr (f32) return _mm512_sub_ps(a, b); else return _mm512_sub_pd(a, b);
  }
  static TOKENMIX_AVX512_FN reg min(reg a, reg b) {
    if constexpr (f32) return _mm512_min_ps(a, b); else return _mm512_min_pd(a, b);
  }
  static TOKENMIX_AVX512_FN reg max(reg a, reg b) {
    if constexpr (f32) return _mm512_max_ps(a, b); else return _mm512_max_pd(a, b);
  }
  static TOKENMIX_AVX512_FN reg abs(reg x) {
    if constexpr (f32) return _mm512_abs_ps(x); else return _mm512_abs_pd(x);
  }
  static TOKENMIX_AVX512_FN reg fmsub(reg a, reg b, reg c) {
    if constexpr (f32) return _mm512_fmsub_ps(a, b, c); else return _mm512_fmsub_pd(a, b, c);
  }
  static TOKENMIX_AVX512_FN reg fnmadd(reg a, reg b, reg c) {
    if constexpr (f32) return _mm512_fnmadd_ps(a, b, c); else return _mm512_fnmadd_pd(a, b, c);
  }
  static TOKENMIX_AVX512_FN reg fnmsub(reg a, reg b, reg c) {
    if constexpr (f32) return _mm512_fnmsub_ps(a, b, c); else return _mm512_fnmsub_pd(a, b, c);
  }
  static TOKENMIX_AVX512_FN reg round(reg x) {
    constexpr int nearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    if constexpr (f32)
      return _mm512_roundscale_ps(x, nearest);
    else
      return _mm512_roundscale_pd(x, nearest);
  }
  template <int Predicate>
  static TOKENMIX_AVX512_FN mask compare(reg a, reg b) {
    if constexpr (f32)
      return _mm512_cmp_ps_mask(a, b, Predicate);
    else
      return _mm512_cmp_pd_mask(a, b, Predicate);
  }
  static TOKENMIX_AVX512_FN mask less(reg a, reg b) { return compare<_CMP_LT_OQ>(a, b); }
  static TOKENMIX_AVX512_FN mask not_greater(reg a, reg b) { return compare<_CMP_NGT_UQ>(a, b); }
  static TOKENMIX_AVX512_FN mask not_less_equal(reg a, reg b) { return compare<_CMP_NLE_UQ>(a, b); }
  static TOKENMIX_AVX512_FN reg select(mask m, reg a, reg b) {
    if constexpr (f32)
      return _mm512_mask_blend_ps(m, b, a);
    else
      return _mm512_mask_blend_pd(m, b, a);
  }
  // Float lanes only. 1 / d: the 14-bit estimate and one Newton step (~2^-28). 2^n: scalef,
  // which never steps through a subnormal; lanes scale_or does not keep are not computed.
  static TOKENMIX_AVX512_FN reg recip(reg d) {
    const reg t = _mm512_rcp14_ps(d);
    return _mm512_mul_ps(t, _mm512_fnmadd_ps(d, t, _mm512_set1_ps(2.0f)));
  }
  static TOKENMIX_AVX512_FN reg scale_small(reg v, reg n) { return _mm512_scalef_ps(v, n); }
  static TOKENMIX_AVX512_FN reg scale_or(mask keep, reg v, reg n, reg other) {
    return _mm512_mask_scalef_ps(other, keep, v, n);
  }
  static TOKENMIX_AVX512_FN void widen(reg x, __m512d& lo, __m512d& hi) {
    lo = _mm512_cvtps_pd(_mm512_castps512_ps256(x));
    hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1));
  }
  static TOKENMIX_AVX512_FN reg narrow(__m512d lo, __m512d hi) {
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo)), _mm512_cvtpd_ps(hi), 1);
  }
  // relu: x < 0 ? 0 : x, keeping NaN (and not max, which trips a GCC 12 warning). Float GELU
  // and tanh never get here (activate_vector, the only caller, runs vector_gelu.hpp); double
  // GELU and tanh go through activate_scalar lane by lane.
  static TOKENMIX_AVX512_FN reg activate(Activation act, reg x) {
    if (act == Activation::relu) {
      if constexpr (f32)
        return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_NLT_UQ), x);
      else
        return _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_NLT_UQ), x);
    }
    alignas(64) T lanes[width];
    storeu(lanes, x);
    activate_lanes<T, width>(act, lanes);
    return loadu(lanes);
  }
  // dst[c * ld_out + r] = r < rows ? src[r * ld + c] : 0 for r < lanes, c < cols, with
  // rows <= lanes <= 16 and cols <= width.
  static TOKENMIX_TARGET_AVX512 void transpose_block(const T* src, Index ld, Index rows,
                                                     Index cols, T* dst, Index ld_out,
                                                     Index lanes) {
    if constexpr (f32)
      transpose_f32(src, ld, rows, cols, dst, ld_out, lanes);
    else
      transpose_f64(src, ld, rows, cols, dst, ld_out, lanes);
  }

 private:
  // A 16 x 16 in-register transpose (64 shuffles).
  static TOKENMIX_TARGET_AVX512 void transpose_f32(const float* src, Index ld, Index rows,
                                                   Index cols, float* dst, Index ld_out,
                                                   Index lanes) {
    // The maskz forms with an all-ones mask avoid a GCC 12 false -Wmaybe-uninitialized in
    // the plain intrinsics; they compile to the same unmasked instructions.
    const __mmask16 cm = lanes_mask<__mmask16, 16>(cols), lm = lanes_mask<__mmask16, 16>(lanes), all = 0xFFFF;
    __m512 r[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i)
      r[i] = i < rows ? _mm512_maskz_loadu_ps(cm, src + i * ld) : _mm512_setzero_ps();
    __m512 t[16], u[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
      t[2 * i] = _mm512_maskz_unpacklo_ps(all, r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm512_maskz_unpackhi_ps(all, r[2 * i], r[2 * i + 1]);
    }
    // u[4g + q]: column 4L + q of rows 4g..4g+3, in 128-bit lane L.
#pragma GCC unroll 4
    for (int g = 0; g < 4; ++g) {
      u[4 * g + 0] = _mm512_maskz_shuffle_ps(all, t[4 * g], t[4 * g + 2], 0x44);
      u[4 * g + 1] = _mm512_maskz_shuffle_ps(all, t[4 * g], t[4 * g + 2], 0xEE);
      u[4 * g + 2] = _mm512_maskz_shuffle_ps(all, t[4 * g + 1], t[4 * g + 3], 0x44);
      u[4 * g + 3] = _mm512_maskz_shuffle_ps(all, t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
    __m512 col[16];
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      const __m512 x = _mm512_maskz_shuffle_f32x4(all, u[q], u[4 + q], 0x88);
      const __m512 y = _mm512_maskz_shuffle_f32x4(all, u[q], u[4 + q], 0xDD);
      const __m512 x2 = _mm512_maskz_shuffle_f32x4(all, u[8 + q], u[12 + q], 0x88);
      const __m512 y2 = _mm512_maskz_shuffle_f32x4(all, u[8 + q], u[12 + q], 0xDD);
      col[q] = _mm512_maskz_shuffle_f32x4(all, x, x2, 0x88);
      col[4 + q] = _mm512_maskz_shuffle_f32x4(all, y, y2, 0x88);
      col[8 + q] = _mm512_maskz_shuffle_f32x4(all, x, x2, 0xDD);
      col[12 + q] = _mm512_maskz_shuffle_f32x4(all, y, y2, 0xDD);
    }
    // Packing an A sliver (lanes == ld_out, 14 for MR = 14) puts the columns back to back.
    // Masked stores of 14 lanes at a 56-byte stride, most of them split across two cache
    // lines, took ~60% of the transpose time (perf at 512x768x512). Whole-vector stores in
    // column order cost less: each spills its zero lanes into the following column, which a
    // later store overwrites; a store that would reach past the last column stays masked.
    // Paired in-process: transposes 1.96% -> 1.66% of the cycles at 512x768x512.
    const bool back_to_back = lanes == ld_out;
#pragma GCC unroll 16
    for (int c = 0; c < 16; ++c) {
      if (c >= cols) break;
      if (back_to_back && c * ld_out + 16 <= cols * ld_out)
        _mm512_storeu_ps(dst + c * ld_out, col[c]);
      else
        _mm512_mask_storeu_ps(dst + c * ld_out, lm, col[c]);
    }
  }

  // As transpose_f32 with 8 x 8 blocks; lanes up to 16 take two row groups.
  static TOKENMIX_TARGET_AVX512 void transpose_f64(const double* src, Index ld, Index rows,
                                                   Index cols, double* dst, Index ld_out,
                                                   Index lanes) {
    const __mmask8 cm = lanes_mask<__mmask8, 8>(cols), all = 0xFF;
    for (Index g0 = 0; g0 < lanes; g0 += 8, src += 8 * ld, dst += 8, rows -= 8) {
      const __mmask8 lm = lanes_mask<__mmask8, 8>(std::min<Index>(8, lanes - g0));
      __m512d r[8], t[8];
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i)
        r[i] = i < rows ? _mm512_maskz_loadu_pd(cm, src + i * ld) : _mm512_setzero_pd();
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        t[2 * i] = _mm512_maskz_unpacklo_pd(all, r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_maskz_unpackhi_pd(all, r[2 * i], r[2 * i + 1]);
      }
      // t[2g + q]: column 2L + q of rows 2g, 2g+1, in 128-bit lane L.
#pragma GCC unroll 2
      for (int q = 0; q < 2; ++q) {
        const __m512d x = _mm512_maskz_shuffle_f64x2(all, t[q], t[2 + q], 0x88);
        const __m512d y = _mm512_maskz_shuffle_f64x2(all, t[q], t[2 + q], 0xDD);
        const __m512d x2 = _mm512_maskz_shuffle_f64x2(all, t[4 + q], t[6 + q], 0x88);
        const __m512d y2 = _mm512_maskz_shuffle_f64x2(all, t[4 + q], t[6 + q], 0xDD);
        const __m512d col[4] = {
            _mm512_maskz_shuffle_f64x2(all, x, x2, 0x88), _mm512_maskz_shuffle_f64x2(all, y, y2, 0x88),
            _mm512_maskz_shuffle_f64x2(all, x, x2, 0xDD), _mm512_maskz_shuffle_f64x2(all, y, y2, 0xDD)};
#pragma GCC unroll 4
        for (int l = 0; l < 4; ++l)
          if (2 * l + q < cols) _mm512_mask_storeu_pd(dst + (2 * l + q) * ld_out, lm, col[l]);
      }
    }
  }
};
using Avx512F32 = Avx512Vec<float>;
using Avx512F64 = Avx512Vec<double>;

// AVX2 + FMA traits for float and double, likewise one template.
template <class Tp>
struct Avx2Vec {
  using T = Tp;
  static constexpr bool f32 = std::is_same<T, float>::value;
  using reg = typename X86Regs<T>::ymm;
  using mask = __m256i;
  static constexpr int width = 32 / sizeof(T);
  static constexpr bool has_transpose = false;
  // Float lanes have all of vector_gelu.hpp's primitives (its header lists them).
  static constexpr bool gelu_ops = f32;
  using Wide = Avx2Vec<double>;
  template <int S>
  static TOKENMIX_AVX2_FN reg broadcast_scaled(const T* base, Index index) {
    TOKENMIX_GEMM_BROADCAST_SCALED;
  }
  static TOKENMIX_AVX2_FN mask first(Index count) {
    const int n = static_cast<int>(count < 0 ? 0 : count > width ? width : count);
    if constexpr (f32)
      return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    else
      return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static TOKENMIX_AVX2_FN reg zero() {
    if constexpr (f32) return _mm256_setzero_ps(); else return _mm256_setzero_pd();
  }
  static TOKENMIX_AVX2_FN reg set1(T x) {
    if constexpr (f32) return _mm256_set1_ps(x); else return _mm256_set1_pd(x);
  }
  static TOKENMIX_AVX2_FN reg loadu(const T* p) {
    if constexpr (f32) return _mm256_loadu_ps(p); else return _mm256_loadu_pd(p);
  }
  static TOKENMIX_AVX2_FN reg load(const T* p, mask m) {
    if constexpr (f32) return _mm256_maskload_ps(p, m); else return _mm256_maskload_pd(p, m);
  }
  static TOKENMIX_AVX2_FN void store(T* p, reg x, mask m) {
    if constexpr (f32) _mm256_maskstore_ps(p, m, x); else _mm256_maskstore_pd(p, m, x);
  }
  static TOKENMIX_AVX2_FN void storeu(T* p, reg x) {
    if constexpr (f32) _mm256_storeu_ps(p, x); else _mm256_storeu_pd(p, x);
  }
  static TOKENMIX_AVX2_FN reg fmadd(reg a, reg b, reg c) {
    if constexpr (f32) return _mm256_fmadd_ps(a, b, c); else return _mm256_fmadd_pd(a, b, c);
  }
  static TOKENMIX_AVX2_FN reg add(reg a, reg b) {
    if constexpr (f32) return _mm256_add_ps(a, b); else return _mm256_add_pd(a, b);
  }
  static TOKENMIX_AVX2_FN reg mul(reg a, reg b) {
    if constexpr (f32) return _mm256_mul_ps(a, b); else return _mm256_mul_pd(a, b);
  }
  static TOKENMIX_AVX2_FN reg sub(reg a, reg b) {
    if constexpr (f32) return _mm256_sub_ps(a, b); else return _mm256_sub_pd(a, b);
  }
  static TOKENMIX_AVX2_FN reg min(reg a, reg b) {
    if constexpr (f32) return _mm256_min_ps(a, b); else return _mm256_min_pd(a, b);
  }
  static TOKENMIX_AVX2_FN reg max(reg a, reg b) {
    if constexpr (f32) return _mm256_max_ps(a, b); else return _mm256_max_pd(a, b);
  }
  static TOKENMIX_AVX2_FN reg abs(reg x) {
    if constexpr (f32) return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    else return _mm256_andnot_pd(_mm256_set1_pd(-0.0), x);
  }
  static TOKENMIX_AVX2_FN reg fmsub(reg a, reg b, reg c) {
    if constexpr (f32) return _mm256_fmsub_ps(a, b, c); else return _mm256_fmsub_pd(a, b, c);
  }
  static TOKENMIX_AVX2_FN reg fnmadd(reg a, reg b, reg c) {
    if constexpr (f32) return _mm256_fnmadd_ps(a, b, c); else return _mm256_fnmadd_pd(a, b, c);
  }
  static TOKENMIX_AVX2_FN reg fnmsub(reg a, reg b, reg c) {
    if constexpr (f32) return _mm256_fnmsub_ps(a, b, c); else return _mm256_fnmsub_pd(a, b, c);
  }
  static TOKENMIX_AVX2_FN reg round(reg x) {
    constexpr int nearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    if constexpr (f32) return _mm256_round_ps(x, nearest); else return _mm256_round_pd(x, nearest);
  }
  // Comparisons give all-ones lanes in a vector (select's blendv reads their sign bits).
  template <int Predicate>
  static TOKENMIX_AVX2_FN reg compare(reg a, reg b) {
    if constexpr (f32)
      return _mm256_cmp_ps(a, b, Predicate);
    else
      return _mm256_cmp_pd(a, b, Predicate);
  }
  static TOKENMIX_AVX2_FN reg less(reg a, reg b) { return compare<_CMP_LT_OQ>(a, b); }
  static TOKENMIX_AVX2_FN reg not_greater(reg a, reg b) { return compare<_CMP_NGT_UQ>(a, b); }
  static TOKENMIX_AVX2_FN reg not_less_equal(reg a, reg b) { return compare<_CMP_NLE_UQ>(a, b); }
  static TOKENMIX_AVX2_FN reg select(reg m, reg a, reg b) {
    if constexpr (f32) return _mm256_blendv_ps(b, a, m); else return _mm256_blendv_pd(b, a, m);
  }
  // Float lanes only. 1 / d is a division (the 12-bit estimate would need two Newton steps).
  // 2^n is built in the exponent field, in two halves where n may reach -252, so that neither
  // factor is subnormal. Before these, every AVX2 lane went through the scalar double code
  // (activate_scalar): 11.4 ns (erf) and 5.1 ns (tanh) a value, ~40% of an MLP-Mixer forward.
  static TOKENMIX_AVX2_FN reg recip(reg d) { return _mm256_div_ps(_mm256_set1_ps(1.0f), d); }
  static TOKENMIX_AVX2_FN reg scale_small(reg v, reg n) { return _mm256_mul_ps(v, pow2(n)); }
  static TOKENMIX_AVX2_FN reg scale_or(reg keep, reg v, reg n, reg other) {
    // Lanes not kept are computed too (blendv comes after): n = 0 there, or a subnormal
    // product would cost a microcode assist (5.2 vs 1.45 ns a value, gelu_tanh at x > 10.8).
    n = _mm256_blendv_ps(_mm256_setzero_ps(), _mm256_max_ps(n, _mm256_set1_ps(-252.0f)), keep);
    const reg n1 = round(_mm256_mul_ps(n, _mm256_set1_ps(0.5f)));
    return _mm256_blendv_ps(
        other, _mm256_mul_ps(_mm256_mul_ps(v, pow2(_mm256_sub_ps(n, n1))), pow2(n1)), keep);
  }
  static TOKENMIX_AVX2_FN void widen(reg x, __m256d& lo, __m256d& hi) {
    lo = _mm256_cvtps_pd(_mm256_castps256_ps128(x));
    hi = _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
  }
  static TOKENMIX_AVX2_FN reg narrow(__m256d lo, __m256d hi) {
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm256_cvtpd_ps(lo)), _mm256_cvtpd_ps(hi),
                                1);
  }
  // relu keeps NaN: max returns its second operand when one is NaN. Float GELU and tanh never
  // get here (see Avx512Vec::activate).
  static TOKENMIX_AVX2_FN reg activate(Activation act, reg x) {
    if (act == Activation::relu) return max(zero(), x);
    alignas(32) T lanes[width];
    storeu(lanes, x);
    activate_lanes<T, width>(act, lanes);
    return loadu(lanes);
  }

 private:
  // 2^n for integral n in [-126, 127], float lanes.
  static TOKENMIX_AVX2_FN reg pow2(reg n) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
  }
};
using Avx2F32 = Avx2Vec<float>;
using Avx2F64 = Avx2Vec<double>;

}  // namespace detail
}  // namespace tokenmix

#define TOKENMIX_GEMM_TARGET TOKENMIX_TARGET_AVX512
#define TOKENMIX_GEMM_NS avx512
#include "tokenmix/core/gemm_microkernel.hpp"
#undef TOKENMIX_GEMM_TARGET
#undef TOKENMIX_GEMM_NS

#define TOKENMIX_GEMM_TARGET TOKENMIX_TARGET_AVX2
#define TOKENMIX_GEMM_NS avx2
#include "tokenmix/core/gemm_microkernel.hpp"
#undef TOKENMIX_GEMM_TARGET
#undef TOKENMIX_GEMM_NS

#undef TOKENMIX_AVX512_FN
#undef TOKENMIX_AVX2_FN
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif  // TOKENMIX_HAVE_X86_DISPATCH

// ---------------------------------------------------------------------------------------
#if defined(TOKENMIX_GEMM_HAVE_NEON)
namespace tokenmix {
namespace detail {

// NEON has no masked loads: partial vectors go through a small stack buffer. `mask` is the
// number of valid lanes.
struct NeonF32 {
  using T = float;
  using reg = float32x4_t;
  using mask = int;
  static constexpr int width = 4;
  static constexpr bool has_transpose = false;
  static TOKENMIX_GEMM_INLINE mask first(Index count) {
    return static_cast<int>(count < 0 ? 0 : count > 4 ? 4 : count);
  }
  static TOKENMIX_GEMM_INLINE reg zero() { return vdupq_n_f32(0.0f); }
  static TOKENMIX_GEMM_INLINE reg set1(T x) { return vdupq_n_f32(x); }
  static TOKENMIX_GEMM_INLINE reg loadu(const T* p) { return vld1q_f32(p); }
  static TOKENMIX_GEMM_INLINE reg load(const T* p, mask m) {
    if (m == 4) return vld1q_f32(p);
    T lanes[4] = {0, 0, 0, 0};
    for (int l = 0; l < m; ++l) lanes[l] = p[l];
    return vld1q_f32(lanes);
  }
  static TOKENMIX_GEMM_INLINE void store(T* p, reg x, mask m) {
    if (m == 4) return vst1q_f32(p, x);
    T lanes[4];
    vst1q_f32(lanes, x);
    for (int l = 0; l < m; ++l) p[l] = lanes[l];
  }
  static TOKENMIX_GEMM_INLINE void storeu(T* p, reg x) { vst1q_f32(p, x); }
  static TOKENMIX_GEMM_INLINE reg fmadd(reg a, reg b, reg c) { return vfmaq_f32(c, a, b); }
  static TOKENMIX_GEMM_INLINE reg add(reg a, reg b) { return vaddq_f32(a, b); }
  static TOKENMIX_GEMM_INLINE reg mul(reg a, reg b) { return vmulq_f32(a, b); }
  static TOKENMIX_GEMM_INLINE reg activate(Activation act, reg x) {
    T lanes[4];
    vst1q_f32(lanes, x);
    for (int l = 0; l < 4; ++l) lanes[l] = static_cast<T>(activate_scalar(act, lanes[l]));
    return vld1q_f32(lanes);
  }
};

struct NeonF64 {
  using T = double;
  using reg = float64x2_t;
  using mask = int;
  static constexpr int width = 2;
  static constexpr bool has_transpose = false;
  static TOKENMIX_GEMM_INLINE mask first(Index count) {
    return static_cast<int>(count < 0 ? 0 : count > 2 ? 2 : count);
  }
  static TOKENMIX_GEMM_INLINE reg zero() { return vdupq_n_f64(0.0); }
  static TOKENMIX_GEMM_INLINE reg set1(T x) { return vdupq_n_f64(x); }
  static TOKENMIX_GEMM_INLINE reg loadu(const T* p) { return vld1q_f64(p); }
  static TOKENMIX_GEMM_INLINE reg load(const T* p, mask m) {
    if (m == 2) return vld1q_f64(p);
    T lanes[2] = {0, 0};
    if (m == 1) lanes[0] = p[0];
    return vld1q_f64(lanes);
  }
  static TOKENMIX_GEMM_INLINE void store(T* p, reg x, mask m) {
    if (m == 2) return vst1q_f64(p, x);
    if (m == 1) p[0] = vgetq_lane_f64(x, 0);
  }
  static TOKENMIX_GEMM_INLINE void storeu(T* p, reg x) { vst1q_f64(p, x); }
  static TOKENMIX_GEMM_INLINE reg fmadd(reg a, reg b, reg c) { return vfmaq_f64(c, a, b); }
  static TOKENMIX_GEMM_INLINE reg add(reg a, reg b) { return vaddq_f64(a, b); }
  static TOKENMIX_GEMM_INLINE reg mul(reg a, reg b) { return vmulq_f64(a, b); }
  static TOKENMIX_GEMM_INLINE reg activate(Activation act, reg x) {
    T lanes[2];
    vst1q_f64(lanes, x);
    for (int l = 0; l < 2; ++l) lanes[l] = activate_scalar(act, lanes[l]);
    return vld1q_f64(lanes);
  }
};

}  // namespace detail
}  // namespace tokenmix

#define TOKENMIX_GEMM_TARGET
#define TOKENMIX_GEMM_NS neon
#include "tokenmix/core/gemm_microkernel.hpp"
#undef TOKENMIX_GEMM_TARGET
#undef TOKENMIX_GEMM_NS
#endif  // TOKENMIX_GEMM_HAVE_NEON


namespace tokenmix {
namespace detail {

// The register tile each ISA runs. AVX-512: 14 x 2 zmm accumulators (28 of 32 registers;
// two more hold the B vectors and one the A broadcast), i.e. 14 x 32 floats or 14 x 16
// doubles. AVX2: 6 x 2 ymm (12 of 16). NEON: 8 x 2 q registers. Scalar: 4 x 4.
template <class T, Isa isa>
struct GemmKernelFor {
  using type = scalar::GemmKernel<ScalarVec<T>, 4, 4>;
};
#if defined(TOKENMIX_HAVE_X86_DISPATCH)
template <class T>
struct GemmKernelFor<T, Isa::avx512> {
  using type = avx512::GemmKernel<Avx512Vec<T>, 14, 2>;
};
template <class T>
struct GemmKernelFor<T, Isa::avx2> {
  using type = avx2::GemmKernel<Avx2Vec<T>, 6, 2>;
};
#endif
#if defined(TOKENMIX_GEMM_HAVE_NEON)
template <class T>
struct GemmKernelFor<T, Isa::neon> {
  using type =
      neon::GemmKernel<std::conditional_t<std::is_same<T, float>::value, NeonF32, NeonF64>, 8, 2>;
};
#endif

// Calls f.template operator()<Kernel>() with the kernel type of the active ISA: the one
// place that resolves the dispatch (one relaxed atomic load per call).
template <class T, class F>
decltype(auto) with_gemm_kernel(Isa isa, F&& f) {
  switch (isa) {
#if defined(TOKENMIX_HAVE_X86_DISPATCH)
    case Isa::avx512: return f(typename GemmKernelFor<T, Isa::avx512>::type{});
    case Isa::avx2: return f(typename GemmKernelFor<T, Isa::avx2>::type{});
#endif
#if defined(TOKENMIX_GEMM_HAVE_NEON)
    case Isa::neon: return f(typename GemmKernelFor<T, Isa::neon>::type{});
#endif
    default: return f(typename GemmKernelFor<T, Isa::scalar>::type{});
  }
}

}  // namespace detail

// x[0, n) = act(x[0, n)) in place, with the same vector code (and results) as the GEMM
// epilogue; for activations that do not follow a GEMM.
template <class T>
void activate(Activation act, T* x, Index n) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                "activate: T must be float or double");
  if (act == Activation::none || n <= 0) return;
  detail::with_gemm_kernel<T>(active_isa(), [&](auto kernel) { decltype(kernel)::activate(act, x, n); });
}

#if defined(TOKENMIX_SEPARATE_KERNELS)
// Compiled in the translation unit that includes tokenmix/instantiate_kernels.hpp.
extern template void activate<float>(Activation, float*, Index);
extern template void activate<double>(Activation, double*, Index);
#endif

#undef TOKENMIX_GEMM_BROADCAST_SCALED
#undef TOKENMIX_GEMM_BROADCAST_ASM

}  // namespace tokenmix

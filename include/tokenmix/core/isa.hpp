#pragma once
// Runtime instruction-set selection. Kernels are compiled for every ISA inside the headers
// (GCC/Clang `target` attributes), so a program built with plain -O2 still runs AVX-512 code
// on an AVX-512 machine. The active ISA is the best one the CPU and OS support, lowered by the
// environment variable TOKENMIX_ISA=scalar|avx2|avx512|neon or by force_isa() so that every
// path can be tested on one machine. Asking for an ISA the machine lacks is an error rather
// than a silent fallback: a test that forces AVX-512 must not quietly run scalar code.

#include <atomic>
#include <cstdlib>
#include <string>

#include "tokenmix/core/error.hpp"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#define TOKENMIX_X86 1
#endif
#if defined(__aarch64__) || defined(__ARM_NEON)
#define TOKENMIX_ARM_NEON 1
#endif

#if defined(TOKENMIX_X86) && (defined(__GNUC__) || defined(__clang__))
#define TOKENMIX_HAVE_X86_DISPATCH 1
// Attributes for kernels compiled for one ISA regardless of the global -march.
#define TOKENMIX_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define TOKENMIX_TARGET_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
#else
#define TOKENMIX_TARGET_AVX2
#define TOKENMIX_TARGET_AVX512
#endif

namespace tokenmix {

// Ordered: a higher value can run every lower path (on its own architecture).
enum class Isa : int { scalar = 0, neon = 1, avx2 = 2, avx512 = 3 };

inline const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::neon: return "neon";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "unknown";
}

inline Isa parse_isa(const std::string& name) {
  if (name == "scalar") return Isa::scalar;
  if (name == "neon") return Isa::neon;
  if (name == "avx2") return Isa::avx2;
  if (name == "avx512") return Isa::avx512;
  detail::fail<ArgumentError>("tokenmix ISA: expected one of scalar|neon|avx2|avx512, got '",
                              name, "'");
}

// What the CPU (and, through __builtin_cpu_supports, the OS) can run.
inline Isa detected_isa() {
  static const Isa detected = [] {
#if defined(TOKENMIX_HAVE_X86_DISPATCH)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
      return Isa::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
    return Isa::scalar;
#elif defined(TOKENMIX_ARM_NEON)
    return Isa::neon;
#else
    return Isa::scalar;
#endif
  }();
  return detected;
}

inline bool isa_supported(Isa isa) {
  const Isa best = detected_isa();
  if (isa == Isa::scalar) return true;
  if (isa == Isa::neon) return best == Isa::neon;
  return best != Isa::neon && static_cast<int>(isa) <= static_cast<int>(best);
}

namespace detail {
inline std::atomic<int>& forced_isa_slot() {
  static std::atomic<int> slot{-1};
  return slot;
}

inline Isa checked_isa(Isa isa, const char* origin) {
  if (!isa_supported(isa))
    fail<ArgumentError>(origin, ": expected an ISA this CPU supports (best is ",
                        isa_name(detected_isa()), "), got ", isa_name(isa));
  return isa;
}

inline Isa environment_isa() {
  static const Isa from_env = [] {
    const char* value = std::getenv("TOKENMIX_ISA");
    if (value == nullptr || *value == '\0') return detected_isa();
    return checked_isa(parse_isa(value), "TOKENMIX_ISA");
  }();
  return from_env;
}
}  // namespace detail

// Forces every dispatched kernel onto `isa` (must be supported); used by tests and benchmarks.
inline void force_isa(Isa isa) {
  detail::forced_isa_slot().store(static_cast<int>(detail::checked_isa(isa, "force_isa")),
                                  std::memory_order_relaxed);
}

// Returns to the environment's choice (TOKENMIX_ISA or the detected best).
inline void reset_isa() { detail::forced_isa_slot().store(-1, std::memory_order_relaxed); }

// The ISA kernels dispatch on now. Cheap: one relaxed atomic load after the first call.
inline Isa active_isa() {
  const int forced = detail::forced_isa_slot().load(std::memory_order_relaxed);
  if (forced >= 0) return static_cast<Isa>(forced);
  return detail::environment_isa();
}

// RAII form of force_isa for tests: restores the previous setting on scope exit.
class ScopedIsa {
 public:
  explicit ScopedIsa(Isa isa) : previous_(detail::forced_isa_slot().load()) { force_isa(isa); }
  ~ScopedIsa() { detail::forced_isa_slot().store(previous_); }
  ScopedIsa(const ScopedIsa&) = delete;
  ScopedIsa& operator=(const ScopedIsa&) = delete;

 private:
  int previous_;
};

}  // namespace tokenmix

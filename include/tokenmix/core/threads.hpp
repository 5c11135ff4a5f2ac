#pragma once
// The thread-count setting every parallel kernel honours. The global default is the hardware
// concurrency; set_num_threads() changes it for the process, ScopedThreads for the calling
// thread only (so one model can run single-threaded beside another that uses every core),
// and an explicit count passed to a call wins over both.

#include <algorithm>
#include <atomic>
#include <thread>

#include "tokenmix/core/error.hpp"

namespace tokenmix {

inline int hardware_threads() {
  static const int count = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  return count;
}

namespace detail {
inline std::atomic<int>& global_thread_slot() {
  static std::atomic<int> slot{0};  // 0: use hardware_threads()
  return slot;
}
inline int& local_thread_slot() {
  thread_local int slot = 0;  // 0: defer to the global setting
  return slot;
}
inline int checked_threads(int count, const char* origin) {
  if (count < 1 || count > hardware_threads())
    fail<ArgumentError>(origin, ": expected a thread count in 1..", hardware_threads(),
                        ", got ", count);
  return count;
}
}  // namespace detail

inline void set_num_threads(int count) {
  detail::global_thread_slot().store(detail::checked_threads(count, "set_num_threads"));
}

// Threads a kernel called from this thread may use: per-call override > thread-local
// ScopedThreads > process-wide setting > hardware concurrency.
inline int num_threads(int per_call = 0) {
  if (per_call > 0) return std::min(per_call, hardware_threads());
  if (detail::local_thread_slot() > 0) return detail::local_thread_slot();
  const int global = detail::global_thread_slot().load(std::memory_order_relaxed);
  return global > 0 ? global : hardware_threads();
}

class ScopedThreads {
 public:
  explicit ScopedThreads(int count) : previous_(detail::local_thread_slot()) {
    detail::local_thread_slot() = detail::checked_threads(count, "ScopedThreads");
  }
  ~ScopedThreads() { detail::local_thread_slot() = previous_; }
  ScopedThreads(const ScopedThreads&) = delete;
  ScopedThreads& operator=(const ScopedThreads&) = delete;

 private:
  int previous_;
};

}  // namespace tokenmix

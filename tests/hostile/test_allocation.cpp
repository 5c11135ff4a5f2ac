// Steady-state forward allocates nothing: a counting global operator new (every thread,
// including the pool's workers) watches two calls of every layer and model after warm-up
// calls, at 1 and 2 threads.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <new>
#include <thread>

#include "hostile/alloc_counter.hpp"
#include "hostile/hostile_subjects.hpp"
#include "tokenmix/core/threads.hpp"
#include "tokenmix/core/workspace.hpp"

namespace {

std::atomic<bool> counting{false};
std::atomic<std::uint64_t> calls{0};
std::atomic<std::size_t> largest{0};

void note(std::size_t size) {
  if (!counting.load(std::memory_order_relaxed)) return;
  calls.fetch_add(1, std::memory_order_relaxed);
  std::size_t seen = largest.load(std::memory_order_relaxed);
  while (size > seen && !largest.compare_exchange_weak(seen, size, std::memory_order_relaxed)) {
  }
}

void* allocate(std::size_t size) {
  note(size);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}

void* allocate_aligned(std::size_t size, std::align_val_t align) {
  note(size);
  const std::size_t a = static_cast<std::size_t>(align);
  if (void* p = std::aligned_alloc(a, (size + a - 1) / a * a == 0 ? a : (size + a - 1) / a * a))
    return p;
  throw std::bad_alloc();
}

}  // namespace

void* operator new(std::size_t size) { return allocate(size); }
void* operator new[](std::size_t size) { return allocate(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  note(size);
  return std::malloc(size == 0 ? 1 : size);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  note(size);
  return std::malloc(size == 0 ? 1 : size);
}
void* operator new(std::size_t size, std::align_val_t a) { return allocate_aligned(size, a); }
void* operator new[](std::size_t size, std::align_val_t a) { return allocate_aligned(size, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace hostile {

void start_counting() {
  calls = 0;
  largest = 0;
  counting = true;
}

AllocationStats stop_counting() {
  counting = false;
  AllocationStats s;
  s.calls = calls.load();
  s.largest = largest.load();
  return s;
}

}  // namespace hostile

TEST_CASE("allocation: the counter sees new, new[] and other threads", "[hostile]") {
  // Direct operator calls: a new-expression whose result is unused may be elided (clang
  // does), a call to the replaceable function itself may not.
  hostile::start_counting();
  void* one = ::operator new(24);
  void* many = ::operator new[](1000 * sizeof(double));
  std::thread other([] { ::operator delete(::operator new(40)); });
  other.join();
  ::operator delete(one);
  ::operator delete[](many);
  const hostile::AllocationStats s = hostile::stop_counting();
  CHECK(s.calls >= 3);  // std::thread's start may allocate its state too
  CHECK(s.largest == 1000 * sizeof(double));
  hostile::start_counting();
  CHECK(hostile::stop_counting().calls == 0);
}

TEST_CASE("allocation: steady-state forward of every layer and model allocates nothing",
          "[hostile]") {
  for (int threads : {1, 2}) {
    tokenmix::ScopedThreads scope(threads);
    for (const hostile::Subject& s : hostile::subjects()) {
      DYNAMIC_SECTION(s.name << ", " << threads << " thread(s)") {
        const hostile::Input in = hostile::make_input(s, 3, s.n, 21);
        hostile::Mat y(s.out_rows(3, s.n), s.d_out);
        s.forward(in, y);  // first call: arenas and plans grow
        s.forward(in, y);  // the arena folds into one block after growth
        // Pool workers keep their own thread-local arenas, which grow (through aligned_alloc,
        // never operator new: see the arena test below) on a worker's first share. With 3
        // small sequences the calling thread can take every item before a worker wakes, so
        // calls with many sequences give every worker its share first.
        const hostile::Input wide = hostile::make_input(s, 32, s.n, 22);
        hostile::Mat y_wide(s.out_rows(32, s.n), s.d_out);
        for (int i = 0; i < 4; ++i) s.forward(wide, y_wide);
        s.forward(in, y);
        const std::size_t arena = tokenmix::detail::thread_scratch_arena().capacity();
        hostile::start_counting();
        s.forward(in, y);
        s.forward(in, y);
        const hostile::AllocationStats stats = hostile::stop_counting();
        CHECK(stats.calls == 0);
        CHECK(stats.largest == 0);
        // The arena takes its blocks from aligned_alloc, which operator new does not see.
        CHECK(tokenmix::detail::thread_scratch_arena().capacity() == arena);
      }
    }
  }
}

TEST_CASE("allocation: a thread's scratch arena never calls operator new", "[hostile]") {
  // A pool worker may receive its first share of work long after warm-up; its arena's first
  // blocks must then not go through operator new (its block table once was a std::vector,
  // whose first push_back allocated 16 bytes in a steady-state forward).
  hostile::AllocationStats stats;
  std::size_t capacity = 0;
  std::thread fresh([&] {
    hostile::start_counting();
    {
      tokenmix::ScratchFrame outer;
      float* a = outer.take<float>(100);
      {
        tokenmix::ScratchFrame inner;
        for (std::size_t count : {std::size_t(1) << 15, std::size_t(1) << 18, std::size_t(1) << 21})
          inner.take<double>(count);  // several blocks inside one frame
      }
      a[0] = 1.0f;
    }
    tokenmix::ScratchFrame again;  // after the fold into one block
    again.take<char>(std::size_t(1) << 22);
    stats = hostile::stop_counting();
    capacity = tokenmix::detail::thread_scratch_arena().capacity();
  });
  fresh.join();
  CHECK(stats.calls == 0);
  CHECK(capacity >= (std::size_t(1) << 24));
}

#include "tokenmix/core/thread_pool.hpp"

#include <catch2/catch.hpp>
#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

namespace test_core_thread_pool {

using namespace tokenmix;

TEST_CASE("parallel_for runs every index exactly once", "[core][thread_pool]") {
  ThreadPool pool(3);
  for (int threads : {1, 2, 4, 8}) {
    std::vector<std::atomic<int>> hits(1000);
    pool.parallel_for(1000, threads, [&](Index i) { hits[i].fetch_add(1); });
    for (auto& h : hits) REQUIRE(h.load() == 1);
  }
  int calls = 0;
  pool.parallel_for(0, 4, [&](Index) { ++calls; });
  CHECK(calls == 0);
}

TEST_CASE("parallel_for with one thread, or an empty pool, runs inline", "[core][thread_pool]") {
  ThreadPool none(0);
  const auto me = std::this_thread::get_id();
  bool all_here = true;
  none.parallel_for(50, 4, [&](Index) { all_here = all_here && std::this_thread::get_id() == me; });
  CHECK(all_here);
  ThreadPool pool(2);
  pool.parallel_for(50, 1, [&](Index) { all_here = all_here && std::this_thread::get_id() == me; });
  CHECK(all_here);
}

TEST_CASE("parallel_for uses idle workers and the caller", "[core][thread_pool]") {
  ThreadPool pool(1);
  std::atomic<int> seen_other{0};
  const auto me = std::this_thread::get_id();
  // Each task waits until both threads have started one, so both must take part.
  std::atomic<int> started{0};
  pool.parallel_for(2, 2, [&](Index) {
    started.fetch_add(1);
    while (started.load() < 2) std::this_thread::yield();
    if (std::this_thread::get_id() != me) seen_other.fetch_add(1);
  });
  CHECK(seen_other.load() == 1);
}

TEST_CASE("nested parallel_for inside a task completes without deadlock", "[core][thread_pool][threads]") {
  ThreadPool pool(2);
  std::atomic<long> total{0};
  pool.parallel_for(8, 3, [&](Index i) {
    pool.parallel_for(16, 3, [&](Index j) { total.fetch_add(i * 16 + j); });
  });
  CHECK(total.load() == 127 * 128 / 2);
}

TEST_CASE("many user threads share the pool safely", "[core][thread_pool][threads]") {
  ThreadPool pool(2);
  std::vector<std::thread> users;
  std::vector<long> sums(6, 0);
  for (int u = 0; u < 6; ++u)
    users.emplace_back([&, u] {
      for (int rep = 0; rep < 200; ++rep) {
        std::atomic<long> sum{0};
        pool.parallel_for(64, 3, [&](Index i) { sum.fetch_add(i); });
        sums[u] += sum.load();
      }
    });
  for (auto& t : users) t.join();
  for (long s : sums) CHECK(s == 200L * (63 * 64 / 2));
}

TEST_CASE("a task's exception reaches the caller after all indices ran", "[core][thread_pool]") {
  ThreadPool pool(2);
  std::atomic<int> ran{0};
  CHECK_THROWS_WITH(pool.parallel_for(100, 3,
                                      [&](Index i) {
                                        ran.fetch_add(1);
                                        if (i == 37) throw std::runtime_error("task 37 failed");
                                      }),
                    "task 37 failed");
  CHECK(ran.load() == 100);
  // The pool is still usable afterwards.
  std::atomic<int> again{0};
  pool.parallel_for(10, 3, [&](Index) { again.fetch_add(1); });
  CHECK(again.load() == 10);
}

}  // namespace test_core_thread_pool

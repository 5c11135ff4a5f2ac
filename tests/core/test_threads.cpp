#include "tokenmix/core/threads.hpp"

#include <catch2/catch.hpp>
#include <thread>

namespace test_core_threads {

using namespace tokenmix;

TEST_CASE("thread count defaults to hardware and honours overrides in order", "[core][threads]") {
  CHECK(hardware_threads() >= 1);
  CHECK(num_threads() >= 1);
  CHECK(num_threads(1) == 1);
  {
    ScopedThreads one(1);
    CHECK(num_threads() == 1);
    CHECK(num_threads(hardware_threads()) == hardware_threads());  // per call wins
    int seen_elsewhere = 0;
    std::thread other([&] { seen_elsewhere = num_threads(); });
    other.join();
    CHECK(seen_elsewhere == hardware_threads());  // scoped setting is per thread
  }
  set_num_threads(1);
  CHECK(num_threads() == 1);
  set_num_threads(hardware_threads());
}

TEST_CASE("thread counts outside 1..hardware are rejected", "[core][threads]") {
  CHECK_THROWS_AS(set_num_threads(0), ArgumentError);
  CHECK_THROWS_AS(set_num_threads(hardware_threads() + 1), ArgumentError);
  CHECK_THROWS_WITH(ScopedThreads(-3), Catch::Contains("-3"));
}

}  // namespace test_core_threads

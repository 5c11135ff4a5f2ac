#pragma once
// The hostile test binary replaces the global operator new (test_allocation.cpp) with one that
// counts calls and remembers the largest request, so any test in this area can ask how much a
// piece of code allocated.

#include <cstddef>
#include <cstdint>

namespace hostile {

struct AllocationStats {
  std::uint64_t calls = 0;     // operator new / new[] calls, every thread
  std::size_t largest = 0;     // the largest single request
};

// Resets the counters and starts counting; stop_counting() returns what was seen meanwhile.
void start_counting();
AllocationStats stop_counting();

}  // namespace hostile

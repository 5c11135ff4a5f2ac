// forward() is const and thread-safe: several threads calling one shared layer or model get
// bit-identical results to serial calls; repeated calls with the same thread count are
// bit-identical; and (documented in README.md) the result does not depend on the thread
// count either, because no reduction is ever split across threads.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "hostile/hostile_subjects.hpp"
#include "tokenmix/core/threads.hpp"

namespace {

bool bit_identical(const hostile::Mat& a, const hostile::Mat& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.size())) == 0;
}

// batch 4 so the pool has sequences to split; several inputs so threads do different work.
constexpr hostile::Index kBatch = 4;

}  // namespace

TEST_CASE("concurrency: shared layers and models from several threads match serial calls",
          "[hostile][threads]") {
  constexpr int kCallers = 4, kRounds = 3;
  for (int inner : {1, 2}) {
    for (const hostile::Subject& s : hostile::subjects()) {
      DYNAMIC_SECTION(s.name << ", " << inner << " thread(s) per call") {
        std::vector<hostile::Input> inputs;
        std::vector<hostile::Mat> serial;
        {
          tokenmix::ScopedThreads scope(inner);
          for (int c = 0; c < kCallers; ++c) {
            inputs.push_back(hostile::make_input(s, kBatch, s.n, 40 + static_cast<unsigned>(c)));
            serial.push_back(hostile::run(s, inputs.back()));
          }
        }
        std::vector<std::vector<hostile::Mat>> got(kCallers);
        std::vector<std::thread> callers;
        for (int c = 0; c < kCallers; ++c)
          callers.emplace_back([&, c] {
            tokenmix::ScopedThreads scope(inner);
            for (int r = 0; r < kRounds; ++r) got[c].push_back(hostile::run(s, inputs[c]));
          });
        for (auto& t : callers) t.join();
        for (int c = 0; c < kCallers; ++c)
          for (int r = 0; r < kRounds; ++r) CHECK(bit_identical(got[c][r], serial[c]));
      }
    }
  }
}

TEST_CASE("concurrency: same input and thread count give bit-identical output; so does any "
          "thread count", "[hostile][threads]") {
  for (const hostile::Subject& s : hostile::subjects()) {
    DYNAMIC_SECTION(s.name) {
      const hostile::Input in = hostile::make_input(s, kBatch, s.n, 50);
      std::vector<hostile::Mat> by_threads;
      for (int threads = 1; threads <= std::max(2, tokenmix::hardware_threads()); ++threads) {
        tokenmix::ScopedThreads scope(std::min(threads, tokenmix::hardware_threads()));
        const hostile::Mat first = hostile::run(s, in);
        for (int r = 0; r < 3; ++r) CHECK(bit_identical(hostile::run(s, in), first));
        by_threads.push_back(first);
      }
      for (std::size_t i = 1; i < by_threads.size(); ++i)
        CHECK(bit_identical(by_threads[i], by_threads[0]));
    }
  }
}

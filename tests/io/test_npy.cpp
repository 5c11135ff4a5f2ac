#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include "tokenmix/io/npy.hpp"

using namespace tokenmix;

TEST_CASE("npy round trip of a matrix", "[io][npy]") {
  Matrix<float> m(2, 3);
  m << 1, 2, 3, 4, 5, 6;
  const std::string path = "tokenmix_test_roundtrip.npy";
  write_npy(path, m);
  const Tensor t = read_npy(path);
  std::remove(path.c_str());
  CHECK(t.dtype() == DType::F32);
  CHECK(t.shape() == std::vector<std::int64_t>{2, 3});
  CHECK(t.to_matrix<float>() == m);
}

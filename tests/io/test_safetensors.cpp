#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include "tokenmix/io/safetensors.hpp"

using namespace tokenmix;

TEST_CASE("safetensors round trip keeps tensors and metadata", "[io][safetensors]") {
  StateDict sd;
  Matrix<float> w(2, 3);
  w << 1, 2, 3, 4, 5, 6;
  Vector<double> b(3);
  b << -1.5, 0.25, 8;
  sd.insert("layer.weight", w);
  sd.insert("layer.bias", b);
  const std::int64_t ids[4] = {1, -2, 3, 1LL << 40};
  sd.insert("ids", Tensor::from_values<std::int64_t>({4}, ids));
  const std::string path = "tokenmix_test_roundtrip.safetensors";
  write_safetensors(path, sd, {{"format", "pt"}});
  const SafetensorsFile f = read_safetensors_file(path);
  std::remove(path.c_str());
  REQUIRE(f.tensors.size() == 3);
  CHECK(f.metadata.at("format") == "pt");
  CHECK(f.tensors.at("layer.weight").to_matrix<float>() == w);
  CHECK(f.tensors.at("layer.bias").values<double>() == std::vector<double>{-1.5, 0.25, 8});
  CHECK(f.tensors.at("ids").values<std::int64_t>() ==
        std::vector<std::int64_t>{1, -2, 3, 1LL << 40});
}

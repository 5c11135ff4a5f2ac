#include "tokenmix/core/error.hpp"

#include <catch2/catch.hpp>
#include <vector>

namespace test_core_error {

using namespace tokenmix;

TEST_CASE("every tokenmix error is a tokenmix::Error and a std::runtime_error", "[core][error]") {
  CHECK_THROWS_AS(detail::fail<ShapeError>("Layer: expected ", 3, ", got ", 4), Error);
  CHECK_THROWS_AS(detail::fail<FormatError>("f.npy: bad"), IoError);
  CHECK_THROWS_AS(detail::fail<ArgumentError>("x"), std::runtime_error);
  CHECK_THROWS_WITH(detail::fail<ShapeError>("Layer: expected ", 3, ", got ", 4),
                    "Layer: expected 3, got 4");
}

TEST_CASE("KeyError carries the offending keys", "[core][error]") {
  const KeyError e("model: missing keys", {"a.weight", "b.bias"});
  CHECK(e.keys() == std::vector<std::string>{"a.weight", "b.bias"});
  CHECK(std::string(e.what()) == "model: missing keys");
  CHECK(KeyError("plain").keys().empty());
}

TEST_CASE("shape_string prints dimensions like PyTorch", "[core][error]") {
  CHECK(detail::shape_string(std::vector<long>{2, 3, 4}) == "[2, 3, 4]");
  CHECK(detail::shape_string(std::vector<long>{}) == "[]");
}

}  // namespace test_core_error

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "tokenmix/io/state_dict.hpp"

namespace test_io_state_dict {

using namespace tokenmix;
using Catch::Matchers::Contains;

namespace {
bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

Matrix<float> counting(Index rows, Index cols) {
  Matrix<float> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<float>(i);
  return m;
}
}  // namespace

TEST_CASE("StateDict stores tensors by name", "[io][state_dict]") {
  StateDict sd("ckpt.safetensors");
  sd.insert("b.weight", counting(2, 3));
  Vector<double> bias(3);
  bias << 1, 2, 3;
  sd.insert("a.bias", bias);
  CHECK(sd.size() == 2);
  CHECK(sd.keys() == std::vector<std::string>{"a.bias", "b.weight"});
  CHECK(sd.at("b.weight").shape() == std::vector<std::int64_t>{2, 3});
  CHECK(sd.at("a.bias").dtype() == DType::F64);
  CHECK(sd.contains("a.bias"));
  CHECK_FALSE(sd.contains("c"));
  try {
    sd.at("c");
    FAIL("expected KeyError");
  } catch (const KeyError& e) {
    CHECK(e.keys() == std::vector<std::string>{"c"});
    CHECK_THAT(e.what(), Contains("state dict 'ckpt.safetensors': expected key 'c'"));
  }
  CHECK(sd.erase("a.bias"));
  CHECK_FALSE(sd.erase("a.bias"));
  CHECK(sd.size() == 1);
}

TEST_CASE("with_prefix_removed keeps only the prefixed keys, renamed", "[io][state_dict]") {
  StateDict sd("task.safetensors");
  sd.insert("fnet.embed.weight", counting(2, 2));
  sd.insert("fnet.layer.0.w", counting(1, 2));
  sd.insert("classifier.weight", counting(3, 2));
  const StateDict inner = sd.with_prefix_removed("fnet.");
  CHECK(inner.keys() == std::vector<std::string>{"embed.weight", "layer.0.w"});
  CHECK(inner.source() == "task.safetensors");
  CHECK(inner.at("embed.weight").to_matrix<float>() == counting(2, 2));
  CHECK(sd.with_prefix_removed("none.").empty());
}

TEST_CASE("StateDictLoader loads matching parameters", "[io][state_dict]") {
  StateDict sd;
  sd.insert("w", counting(2, 3));
  Vector<float> b(3);
  b << 7, 8, 9;
  sd.insert("b", b);
  sd.insert("flat", counting(1, 6));
  Tensor half(DType::F16, {2});
  const std::uint16_t hb[2] = {0x3c00, 0xc000};  // 1, -2
  std::memcpy(half.raw(), hb, 4);
  sd.insert("half", half);

  StateDictLoader loader(sd);
  Matrix<double> w, flat;
  Vector<double> bias, h;
  loader.matrix("w", w, 2, 3);
  loader.vector("b", bias, 3);
  loader.matrix_as("flat", flat, 2, 3, {1, 6});  // stored flat, used as 2 x 3
  loader.vector("half", h, 2);
  CHECK_NOTHROW(loader.finish("Test"));
  CHECK(w == counting(2, 3).cast<double>());
  CHECK(bias == Vector<double>::LinSpaced(3, 7, 9));
  CHECK(flat == counting(2, 3).cast<double>());
  CHECK(h(0) == 1.0);
  CHECK(h(1) == -2.0);
}

TEST_CASE("StateDictLoader reports missing, mis-shaped and unused keys in one KeyError",
          "[io][state_dict]") {
  StateDict sd("model.safetensors");
  sd.insert("mix.weight", counting(3, 2));  // wants [2, 3]
  sd.insert("norm.weight", Vector<float>(Vector<float>::Ones(4)));
  const std::int64_t ids[4] = {1, 2, 3, 4};
  sd.insert("norm.bias", Tensor::from_values<std::int64_t>({4}, ids));
  sd.insert("extra.thing", counting(1, 1));
  sd.insert("head.weight", counting(2, 2));
  sd.insert("other.scope", counting(1, 1));

  StateDictLoader loader(sd);
  loader.ignore_prefix("head.");
  Matrix<float> mix, proj;
  Vector<float> nw, nb;
  loader.matrix("mix.weight", mix, 2, 3);
  loader.matrix("proj.weight", proj, 4, 4);
  loader.vector("norm.weight", nw, 4);
  loader.vector("norm.bias", nb, 4);  // I64: wrong dtype for a parameter
  CHECK(loader.unused_keys() == std::vector<std::string>{"extra.thing [1, 1]", "other.scope [1, 1]"});
  CHECK(loader.unused_keys("extra.") == std::vector<std::string>{"extra.thing [1, 1]"});

  try {
    loader.finish("TestModel");
    FAIL("expected KeyError");
  } catch (const KeyError& e) {
    const std::string msg = e.what();
    CHECK_THAT(msg, Contains("TestModel: state dict 'model.safetensors' does not match"));
    CHECK_THAT(msg, Contains("missing keys (1): proj.weight [4, 4]"));
    CHECK_THAT(msg, Contains("wrong shape or dtype (2): mix.weight: expected [2, 3], got [3, 2]"));
    CHECK_THAT(msg, Contains("norm.bias: expected a floating dtype, got I64"));
    CHECK_THAT(msg, Contains("unused keys (2): extra.thing [1, 1] other.scope [1, 1]"));
    CHECK(msg.find("head.weight") == std::string::npos);  // ignored prefix
    CHECK(e.keys().size() == 5);
    CHECK(has(e.keys(), "proj.weight [4, 4]"));
    CHECK(has(e.keys(), "extra.thing [1, 1]"));
  }
  // Scoped to "extra.", the out-of-scope leftover is not this loader's business.
  CHECK_THROWS_WITH(loader.finish("TestModel", "extra."),
                    Contains("unused keys (1): extra.thing [1, 1]"));
  // Failed parameters still come out with the requested size, so loading can go on.
  CHECK(mix.rows() == 2);
  CHECK(mix.cols() == 3);
  CHECK(proj.size() == 16);
}

TEST_CASE("StateDictLoader refuses file shapes that would overrun the destination",
          "[io][state_dict]") {
  StateDict sd;
  sd.insert("w", counting(3, 3));
  StateDictLoader loader(sd);
  Matrix<float> w;
  Vector<float> v;
  CHECK_THROWS_AS(loader.matrix_as("w", w, 2, 3, {3, 3}), ShapeError);
  CHECK_THROWS_WITH(loader.vector_as("w", v, 4, {3, 3}),
                    Contains("'w': expected a file shape of 4 elements, got [3, 3]"));
}

}  // namespace test_io_state_dict

#include "tokenmix/layers/packed_weight.hpp"

#include <catch2/catch.hpp>

#include <stdexcept>
#include <type_traits>
#include <utility>

#include "layers/mlp_layers_testing.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/layers/linear.hpp"
#include "tokenmix/layers/patch_embed.hpp"
#include "tokenmix/layers/self_attention.hpp"

namespace test_layers_packed_weight {

using namespace tokenmix;
using namespace tokenmix_test;

namespace {

// Every element of the packed form against the matrix: op(B)(p, j) = W(j, p).
template <class T>
void check_packed_matches(const PackedWeight<T>& w) {
  REQUIRE(w.packed().rows() == w.cols());
  REQUIRE(w.packed().cols() == w.rows());
  Index bad = 0;
  for (Index p = 0; p < w.cols(); ++p)
    for (Index j = 0; j < w.rows(); ++j)
      if (w.packed().at(p, j) != w(j, p)) ++bad;
  CHECK(bad == 0);
}

// x W^T through the packed form against Eigen on the matrix.
template <class T>
void check_product(const PackedWeight<T>& w, Index rows = 9) {
  Matrix<T> x(rows, w.cols());
  Random(11).fill_normal(x, 0.0, 1.0);
  Matrix<T> y(rows, w.rows());
  w.multiply(rows, x.data(), x.cols(), T(0), y.data(), y.cols());
  const Matrix<T> ref = x * w.value().transpose();
  CHECK((y - ref).cwiseAbs().maxCoeff() <= 1e-4 * (1.0 + ref.cwiseAbs().maxCoeff()));
}

}  // namespace

// Mutable access is only through the class: element, data and matrix reads are const.
static_assert(!std::is_assignable<decltype(std::declval<PackedWeight<float>&>()(0, 0)),
                                  float>::value,
              "operator() must not hand out a writable element");
static_assert(std::is_same<decltype(std::declval<PackedWeight<float>&>().data()),
                           const float*>::value,
              "data() must be read-only");
static_assert(std::is_same<decltype(std::declval<PackedWeight<float>&>().value()),
                           const Matrix<float>&>::value,
              "value() must be read-only");

TEMPLATE_TEST_CASE("PackedWeight packs W^T on every change", "[layers][packed_weight]", float,
                   double) {
  PackedWeight<TestType> w(37, 21);  // neither dimension a multiple of a panel
  CHECK(w.rows() == 37);
  CHECK(w.cols() == 21);
  CHECK(w.value().isZero());
  check_packed_matches(w);

  Matrix<TestType> m(37, 21);
  Random(1).fill_normal(m, 0.0, 1.0);
  w = m;
  CHECK(w.value() == m);
  check_packed_matches(w);
  check_product(w);

  w.update([](Matrix<TestType>& v) { v(3, 5) = TestType(100); });
  CHECK(w(3, 5) == TestType(100));
  check_packed_matches(w);
  check_product(w);

  // k beyond one packed k block (gemm_kc rows) exercises the block layout.
  PackedWeight<TestType> tall(5, 1100);
  tall.update([](Matrix<TestType>& v) { Random(2).fill_normal(v, 0.0, 1.0); });
  check_packed_matches(tall);
  check_product(tall);
}

TEST_CASE("PackedWeight rejects shape changes and never leaves a stale pack",
          "[layers][packed_weight]") {
  PackedWeight<double> w(4, 6);
  w.update([](Matrix<double>& v) { v.setConstant(2.0); });

  // Assignment of another shape: ShapeError, the weight is untouched.
  try {
    w = Matrix<double>::Ones(6, 4);
    FAIL("expected ShapeError");
  } catch (const ShapeError& e) {
    CHECK(std::string(e.what()) == "PackedWeight: expected a [4, 6] matrix, got [6, 4]");
  }
  CHECK(w.value() == Matrix<double>::Constant(4, 6, 2.0));
  check_packed_matches(w);

  // An update that resizes: ShapeError, zeros of the old shape, packed accordingly.
  CHECK_THROWS_AS(w.update([](Matrix<double>& v) { v.resize(2, 2); }), ShapeError);
  CHECK(w.rows() == 4);
  CHECK(w.cols() == 6);
  CHECK(w.value().isZero());
  check_packed_matches(w);

  // An update that throws half-way: what it wrote is kept and packed.
  w.update([](Matrix<double>& v) { v.setConstant(1.0); });
  CHECK_THROWS_AS(w.update([](Matrix<double>& v) {
                    v(0, 0) = 5.0;
                    throw std::runtime_error("stop");
                  }),
                  std::runtime_error);
  CHECK(w(0, 0) == 5.0);
  check_packed_matches(w);

  w.reset(3, 2);
  CHECK(w.rows() == 3);
  check_packed_matches(w);
  CHECK_THROWS_AS(w.reset(-1, 2), ArgumentError);
}

TEST_CASE("PackedWeight copies carry their own pack; load repacks", "[layers][packed_weight]") {
  PackedWeight<float> a(8, 5);
  a.update([](Matrix<float>& v) { Random(3).fill_normal(v, 0.0, 1.0); });
  PackedWeight<float> b = a;
  a.update([](Matrix<float>& v) { v.setZero(); });
  CHECK_FALSE(b.value().isZero());
  check_packed_matches(b);
  check_product(b);
  PackedWeight<float> c(8, 5);
  c = b;
  check_packed_matches(c);
  PackedWeight<float> moved = std::move(c);
  check_packed_matches(moved);

  StateDict dict;
  dict.insert("w", b.value());
  StateDictLoader loader(dict);
  a.load(loader, "w");
  loader.finish("test", "");
  CHECK(a.value() == b.value());
  check_packed_matches(a);

  // A missing key leaves the weight as it was (still consistent) and finish() reports it.
  const StateDict empty;
  StateDictLoader missing(empty);
  a.load(missing, "w");
  CHECK(a.value() == b.value());
  check_packed_matches(a);
  CHECK_THROWS_AS(missing.finish("test", ""), KeyError);
}

TEST_CASE("layers see weight changes made through the public API",
          "[layers][packed_weight]") {
  Matrix<double> x(6, 5);
  Random(4).fill_normal(x, 0.0, 1.0);

  Linear<double> lin({5, 3});
  lin.init_random(1);
  const Matrix<double> y0 = lin.forward(x);
  lin.weight.update([](Matrix<double>& w) { w.col(2) *= 3.0; });
  Matrix<double> ref = x * lin.weight.value().transpose();
  ref.rowwise() += lin.bias.transpose();
  check_close(lin.forward(x), ref, 1e-12);
  CHECK((lin.forward(x) - y0).cwiseAbs().maxCoeff() > 1e-3);
  lin.weight = Matrix<double>::Zero(3, 5);
  check_close(lin.forward(x), Matrix<double>(lin.bias.transpose().replicate(6, 1)), 1e-12);
  // Re-initialising and loading repack too.
  lin.init_random(1);
  check_close(lin.forward(x), y0, 1e-12);
  StateDict saved;
  Linear<double> other({5, 3});
  other.init_random(9);
  other.save(saved);
  lin.load(saved);
  check_close(lin.forward(x), other.forward(x), 1e-12);

  // A layer with a split weight: zeroing the V rows of in_proj zeroes the attention output
  // before out_proj, leaving out_proj's bias.
  SelfAttention<double> attn({4, 2});
  attn.init_random(2);
  attn.out_proj_bias.setConstant(0.5);
  Matrix<double> xs(6, 4);
  Random(5).fill_normal(xs, 0.0, 1.0);
  CHECK((attn.forward(xs, 3).array() - 0.5).abs().maxCoeff() > 1e-3);
  attn.in_proj_weight.update([](Matrix<double>& w) { w.bottomRows(4).setZero(); });
  check_close(attn.forward(xs, 3), Matrix<double>::Constant(6, 4, 0.5), 1e-12);

  PatchEmbed<double> stem({1, 4, 4, 2, 3});
  stem.init_random(3);
  Matrix<double> img(1, 16);
  Random(6).fill_normal(img, 0.0, 1.0);
  stem.weight = Matrix<double>::Ones(3, 4);
  // Every patch sums its four pixels into every channel.
  const Matrix<double> tokens = stem.forward(img);
  CHECK(tokens(0, 0) == Approx(img(0, 0) + img(0, 1) + img(0, 4) + img(0, 5)));
  CHECK(tokens(3, 2) == Approx(img(0, 10) + img(0, 11) + img(0, 14) + img(0, 15)));
}

}  // namespace test_layers_packed_weight

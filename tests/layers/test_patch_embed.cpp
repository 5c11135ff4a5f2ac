#include "tokenmix/layers/patch_embed.hpp"

#include <catch2/catch.hpp>

#include "layers/mlp_layers_testing.hpp"

namespace test_layers_patch_embed {

using namespace tokenmix;
using namespace tokenmix_test;

TEMPLATE_TEST_CASE("PatchEmbed matches Conv2d + flatten + transpose", "[layers][patch_embed]",
                   float, double) {
  struct Case {
    const char* name;
    Index C, H, W, p, D, B;
  };
  for (const Case& c : {Case{"patch_embed_a", 3, 8, 12, 4, 5, 2},
                        Case{"patch_embed_b", 2, 9, 6, 3, 7, 3}}) {
    INFO(c.name);
    const StateDict dict = layer_fixture(c.name);
    PatchEmbed<TestType> stem({c.C, c.H, c.W, c.p, c.D});
    stem.load(fixture_weights(dict), "");
    const Matrix<TestType> images = fixture_matrix<TestType>(dict, "input", c.C * c.H * c.W);
    REQUIRE(images.rows() == c.B);
    const Matrix<double> ref = fixture_matrix<double>(dict, "output");
    check_close(stem.forward(images), ref, layer_rtol<TestType>());
    // Pointer form, and images that are rows of a wider (strided) buffer.
    Matrix<TestType> y(c.B * stem.num_patches(), c.D);
    stem.forward(images.data(), c.B, c.H, c.W, y.data(), c.D);
    check_close(y, ref, layer_rtol<TestType>());
    Matrix<TestType> wide = Matrix<TestType>::Zero(c.B, images.cols() + 3);
    wide.leftCols(images.cols()) = images;
    check_close(stem.forward(wide.leftCols(images.cols())), ref, layer_rtol<TestType>());
  }
}

TEST_CASE("PatchEmbed keys, shapes and errors", "[layers][patch_embed]") {
  PatchEmbed<float> stem({3, 224, 224, 16, 768});
  CHECK(stem.num_patches() == 196);
  CHECK(stem.patch_features() == 768);
  stem.init_random(1);
  StateDict saved;
  stem.save(saved, "stem.");
  CHECK(saved.at("stem.proj.weight").shape() == std::vector<std::int64_t>{768, 3, 16, 16});
  PatchEmbed<float> copy({3, 224, 224, 16, 768});
  copy.load(saved, "stem.");
  CHECK(copy.weight.value() == stem.weight.value());
  PatchEmbed<float> p8({3, 224, 224, 8, 768});
  check_key_error_mentions([&] { p8.load(saved, "stem."); }, "stem.proj.weight");

  Matrix<float> bad(2, 3 * 224 * 223);
  CHECK_THROWS_AS(stem.forward(bad), ShapeError);
  Matrix<float> y(196, 768);
  std::vector<float> img(3 * 220 * 224);
  CHECK_THROWS_AS(stem.forward(img.data(), 1, 220, 224, y.data(), 768), ShapeError);
  CHECK_THROWS_AS(PatchEmbed<float>({3, 224, 224, 15, 768}), ArgumentError);
  CHECK_THROWS_AS(PatchEmbed<float>({3, 224, 224, 16, 0}), ArgumentError);
}

TEST_CASE("PatchEmbed tokens are in raster order", "[layers][patch_embed]") {
  // One channel, 2x3 grid of 2x2 patches, weight = sum of the patch: token t = row * 3 + col.
  PatchEmbed<double> stem({1, 4, 6, 2, 1});
  stem.weight.update([](auto& w) { w.setOnes(); });
  Matrix<double> image(1, 24);
  for (Index r = 0; r < 4; ++r)
    for (Index c = 0; c < 6; ++c) image(0, r * 6 + c) = static_cast<double>((r / 2) * 3 + c / 2);
  const Matrix<double> y = stem.forward(image);
  for (Index t = 0; t < 6; ++t) CHECK(y(t, 0) == 4.0 * static_cast<double>(t));
}

TEST_CASE("PatchEmbed forward is thread-safe", "[layers][patch_embed][threads]") {
  PatchEmbed<float> stem({3, 32, 32, 8, 24});
  stem.init_random(2);
  Matrix<float> images(3, 3 * 32 * 32);
  Random rng(3);
  rng.fill_normal(images, 0.0, 1.0);
  check_concurrent_identical([&] { return Matrix<float>(stem.forward(images)); });
}

}  // namespace test_layers_patch_embed

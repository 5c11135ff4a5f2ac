#include "tokenmix/core/tensor.hpp"

#include <catch2/catch.hpp>

namespace test_core_tensor {

using namespace tokenmix;

TEST_CASE("SequenceBatch views rows of one buffer without copies", "[core][tensor]") {
  Matrix<float> storage(6, 5);
  for (Index i = 0; i < storage.size(); ++i) storage.data()[i] = float(i);
  SequenceBatch<float> batch(storage.data(), 2, 3, 4, 5);  // 4 channels in rows of stride 5
  CHECK(batch.rows() == 6);
  CHECK(batch.all().cols() == 4);
  CHECK(batch.sequence(1)(0, 0) == storage(3, 0));
  CHECK(batch.sequence(1).data() == storage.data() + 15);
  batch.sequence(0)(2, 3) = -1.0f;
  CHECK(storage(2, 3) == -1.0f);
  CHECK_THROWS_AS(SequenceBatch<float>(storage.data(), 2, 3, 6, 5), ShapeError);
}

TEST_CASE("batch and shape checks name the layer, expected and got", "[core][tensor]") {
  CHECK(detail::batch_count("L", 12, 4) == 3);
  CHECK_THROWS_WITH(detail::batch_count("Mixer", 10, 4),
                    Catch::Contains("Mixer") && Catch::Contains("10") && Catch::Contains("4"));
  CHECK_THROWS_AS(detail::batch_count("L", 4, 0), ShapeError);
  CHECK_THROWS_WITH(detail::expect_cols("SGU", "input", 8, 6),
                    "SGU: expected input with 8 channels, got 6");
  CHECK_THROWS_WITH(detail::expect_shape("Linear", "weight", 2, 3, 3, 2),
                    "Linear: expected weight of shape [2, 3], got [3, 2]");
}

TEST_CASE("ConstMatrixRef accepts strided blocks without copying", "[core][tensor]") {
  Matrix<double> m = Matrix<double>::Random(5, 7);
  auto block = m.block(1, 2, 3, 4);
  ConstMatrixRef<double> ref(block);
  CHECK(ref.data() == &m(1, 2));
  CHECK(ref.outerStride() == 7);
}

}  // namespace test_core_tensor

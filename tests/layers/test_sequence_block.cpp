#include "tokenmix/layers/sequence_block.hpp"

#include <catch2/catch.hpp>

#include <string>

#include "layers/mlp_layers_testing.hpp"
#include "tokenmix/core/error.hpp"
#include "tokenmix/layers/gmlp_block.hpp"
#include "tokenmix/layers/mlp_mixer_block.hpp"
#include "tokenmix/layers/resmlp_block.hpp"

namespace test_layers_sequence_block {

using namespace tokenmix;
using namespace tokenmix_test;

namespace {

// The smallest block honouring the contract: y = x + shift (per channel, per token index).
template <class T>
class ShiftBlock : public SequenceBlock<ShiftBlock<T>, T> {
 public:
  static constexpr const char* layer_name = "ShiftBlock";
  using SequenceBlock<ShiftBlock<T>, T>::load;
  using SequenceBlock<ShiftBlock<T>, T>::init_random;
  using SequenceBlock<ShiftBlock<T>, T>::forward;

  explicit ShiftBlock(Index channels) : shift(Vector<T>::Zero(channels)) {}
  Index channels() const { return shift.size(); }
  void load(StateDictLoader& loader, const std::string& prefix) {
    loader.vector(prefix + "shift", shift, shift.size());
  }
  void init_random(Random& rng) { rng.fill_normal(shift, 0.0, 1.0); }
  void forward(Index rows, Index seq_len, const T* x, Index ldx, T* y, Index ldy) const {
    detail::batch_count(layer_name, rows, seq_len);
    const T* s = shift.data();
    for (Index r = 0; r < rows; ++r)
      for (Index c = 0; c < channels(); ++c) y[r * ldy + c] = x[r * ldx + c] + s[c];
  }

  Vector<T> shift;
};

}  // namespace

TEST_CASE("SequenceBlock supplies strict load, seeded init and checked forwards",
          "[layers][sequence_block]") {
  ShiftBlock<double> block(3);
  block.init_random(7);
  ShiftBlock<double> again(3);
  again.init_random(7);
  CHECK(again.shift == block.shift);
  again.init_random(8);
  CHECK(again.shift != block.shift);

  Matrix<double> x(4, 3);
  Random(1).fill_normal(x, 0.0, 1.0);
  const Matrix<double> y = block.forward(x, 2);
  CHECK(y.row(3) == (x.row(3) + block.shift.transpose()));
  Matrix<double> in_place = x;
  block.forward(in_place, 2, in_place);
  CHECK(in_place == y);

  const Matrix<double> narrow = Matrix<double>::Zero(4, 2);
  Matrix<double> wrong_out = Matrix<double>::Zero(3, 3);
  try {
    block.forward(narrow, 2);
    FAIL("expected ShapeError");
  } catch (const ShapeError& e) {
    CHECK(std::string(e.what()) == "ShiftBlock: expected input with 3 channels, got 2");
  }
  CHECK_THROWS_AS(block.forward(x, 2, wrong_out), ShapeError);

  StateDict dict;
  dict.insert("b.shift", Vector<double>(Vector<double>::Ones(3)));
  block.load(dict, "b.");
  CHECK(block.shift == Vector<double>::Ones(3));
  dict.insert("b.extra", Vector<double>(Vector<double>::Ones(3)));
  CHECK_THROWS_AS(block.load(dict, "b."), KeyError);
}

TEST_CASE("the MLP blocks share the SequenceBlock wrappers", "[layers][sequence_block]") {
  // Seeded init through the wrapper equals init from a generator with that seed.
  MLPMixerBlock<float> a({6, 8}), b({6, 8});
  a.init_random(3);
  Random rng(3);
  b.init_random(rng);
  CHECK(a.mlp_channels.fc1.weight.value() == b.mlp_channels.fc1.weight.value());
  ResMLPBlock<float> r({6, 8});
  GMLPBlock<float> g({6, 8});
  Matrix<float> x(12, 7);
  CHECK_THROWS_WITH(a.forward(x, 6), "MLPMixerBlock: expected input with 8 channels, got 7");
  CHECK_THROWS_WITH(r.forward(x, 6), "ResMLPBlock: expected input with 8 channels, got 7");
  CHECK_THROWS_WITH(g.forward(x, 6), "GMLPBlock: expected input with 8 channels, got 7");
}

}  // namespace test_layers_sequence_block

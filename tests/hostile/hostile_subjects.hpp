#pragma once
// Every public layer and model of tokenmix behind one type-erased interface, so the hostile,
// allocation and concurrency tables can walk all of them with one loop. The catalogue is built
// (and every template instantiated) once, in test_hostile_inputs.cpp; the other test files
// only see std::function calls, which keeps the sanitizer builds of this area short.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tokenmix/core/tensor.hpp"
#include "tokenmix/io/state_dict.hpp"

namespace hostile {

using tokenmix::Index;
using Mat = tokenmix::Matrix<float>;
using Ids = tokenmix::Matrix<std::int64_t>;

enum class Kind {
  tokens,  // (B*n) x d activations plus seq_len
  images,  // B rows of C*H*W pixels
  ids,     // B x n token ids
};

struct Input {
  Mat x;    // tokens / images
  Ids ids;  // ids
  Index batch = 0, n = 0;
};

struct Subject {
  std::string name;
  Kind kind = Kind::tokens;
  Index d_in = 0;   // tokens: channels; images: values per image; ids: vocabulary size
  Index d_out = 0;  // channels of an output row
  Index n = 0;      // the sequence length the tables use (tied layers: their N)
  Index max_len = 0;     // > 0: the longest sequence it accepts (length-tied weights)
  bool uses_seq = true;  // forward takes seq_len (false: channel-only layers, images)
  bool causal = false;   // output row i depends on rows <= i of its sequence only
  bool output_checked = true;  // the output is a MatrixRef whose shape the layer can check
  bool has_weights = true;
  // Output rows for a batch of `batch` sequences of length n.
  std::function<Index(Index batch, Index n)> out_rows;
  // The non-allocating entry point: y presized to out_rows x d_out.
  std::function<void(const Input&, Mat& y)> forward;
  std::function<tokenmix::StateDict()> save;
  // A fresh instance of the same configuration loaded (strictly) from `dict`.
  std::function<std::shared_ptr<Subject>(const tokenmix::StateDict&)> reload;
};

// The catalogue with length-tied layers built for sequences of `n` tokens (image models get
// the largest square token grid <= n). Cached per n; safe to call from one thread at a time.
const std::vector<Subject>& subjects(Index n = 6);

// A valid input: tokens/images uniform in [-1, 1), ids uniform over the vocabulary.
Input make_input(const Subject& s, Index batch, Index n, std::uint64_t seed);
// forward into a freshly sized output.
Mat run(const Subject& s, const Input& in);
// Rows of the output that belong to sequence (or image) b.
std::vector<Index> output_rows_of(const Subject& s, Index batch, Index n, Index b);

}  // namespace hostile

#pragma once
// Activation and weight conventions shared by every layer.
//
// A sequence is an n x d row-major matrix: one token per row, channels along the row, the
// memory layout of a PyTorch (batch, tokens, channels) tensor. A batch of B sequences is the
// same thing with B*n rows plus the sequence length; channel-mixing work (Linear, LayerNorm,
// FeedForward) treats all B*n rows as one matrix, token-mixing work walks the B blocks.
// Weights keep PyTorch's layout: nn.Linear's weight is [out, in].

#include <Eigen/Core>
#include <cstdint>
#include <string>

#include "tokenmix/core/error.hpp"

namespace tokenmix {

using Index = Eigen::Index;

template <class T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

// Zero-copy views over any row-major storage with unit inner stride: Matrix, Map, blocks.
template <class T>
using MatrixRef = Eigen::Ref<Matrix<T>, 0, Eigen::OuterStride<>>;
template <class T>
using ConstMatrixRef = Eigen::Ref<const Matrix<T>, 0, Eigen::OuterStride<>>;
template <class T>
using MatrixMap = Eigen::Map<Matrix<T>, 0, Eigen::OuterStride<>>;
template <class T>
using ConstMatrixMap = Eigen::Map<const Matrix<T>, 0, Eigen::OuterStride<>>;
template <class T>
using VectorRef = Eigen::Ref<Vector<T>>;
template <class T>
using ConstVectorRef = Eigen::Ref<const Vector<T>>;

// A batch of equal-length sequences stacked as (batch * seq_len) x channels rows.
template <class T>
class SequenceBatch {
 public:
  SequenceBatch(T* data, Index batch, Index seq_len, Index channels, Index row_stride = -1)
      : data_(data), batch_(batch), seq_len_(seq_len), channels_(channels),
        row_stride_(row_stride < 0 ? channels : row_stride) {
    if (batch < 0 || seq_len < 0 || channels < 0 || row_stride_ < channels)
      detail::fail<ShapeError>("SequenceBatch: expected non-negative extents and row stride >= ",
                               channels, ", got batch ", batch, ", seq_len ", seq_len,
                               ", channels ", channels, ", stride ", row_stride_);
  }

  Index batch() const { return batch_; }
  Index seq_len() const { return seq_len_; }
  Index channels() const { return channels_; }
  Index rows() const { return batch_ * seq_len_; }
  Index row_stride() const { return row_stride_; }
  T* data() const { return data_; }

  // All B*n rows as one matrix: what channel-mixing work sees.
  MatrixMap<T> all() const {
    return MatrixMap<T>(data_, rows(), channels_, Eigen::OuterStride<>(row_stride_));
  }
  // Sequence b alone: what token-mixing work sees.
  MatrixMap<T> sequence(Index b) const {
    return MatrixMap<T>(data_ + b * seq_len_ * row_stride_, seq_len_, channels_,
                        Eigen::OuterStride<>(row_stride_));
  }

 private:
  T* data_;
  Index batch_, seq_len_, channels_, row_stride_;
};

namespace detail {

// Validates a (B*n) x d activation block against its sequence length; returns B.
inline Index batch_count(const char* layer, Index rows, Index seq_len) {
  if (seq_len <= 0 || rows % seq_len != 0)
    fail<ShapeError>(layer, ": expected rows to be a multiple of seq_len ", seq_len, ", got ",
                     rows, " rows");
  return rows / seq_len;
}

inline void expect_cols(const char* layer, const char* what, Index expected, Index got) {
  if (expected != got)
    fail<ShapeError>(layer, ": expected ", what, " with ", expected, " channels, got ", got);
}

inline void expect_shape(const char* layer, const char* what, Index rows, Index cols,
                         Index got_rows, Index got_cols) {
  if (rows != got_rows || cols != got_cols)
    fail<ShapeError>(layer, ": expected ", what, " of shape [", rows, ", ", cols, "], got [",
                     got_rows, ", ", got_cols, "]");
}

}  // namespace detail
}  // namespace tokenmix

#pragma once
// A layer weight W [out, in] (PyTorch layout) that is used as the right-hand GEMM operand
// of y = x W^T, kept together with W^T packed once for gemm_packed (core/packed_matrix.hpp).
// Packing per forward call costs a strided transpose of the whole weight, 10-13% of a
// Mixer / ViT forward at batch 1 (perf); packed once, forward only streams the panels.
//
// Stale-cache rule: the matrix can only be changed through this class, and every way of
// changing it repacks before returning, so the packed form can never be out of date:
//   w = matrix;                  // same shape only (ShapeError otherwise)
//   w.update([](Matrix<T>& m) { m(0, 0) = 1; });   // in-place edit, then repack
//   w.load(loader, "fc1.weight");                   // from a checkpoint, then repack
//   w.reset(rows, cols);                            // new shape, zeros
// Read access (value(), data(), operator(), rows(), cols()) is const. An update whose
// callback throws still repacks whatever the matrix holds. A callback that resizes the
// matrix is rejected with a ShapeError and the matrix becomes zeros of its old shape: the
// owning layer's shape checks rely on that shape.
//
// Memory: W is stored twice (as loaded, for save() and inspection, and packed), plus the
// packed padding to whole 64-byte panels.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/gemm.hpp"
#include "tokenmix/core/packed_matrix.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/io/state_dict.hpp"

namespace tokenmix {

template <class T>
class PackedWeight {
 public:
  PackedWeight() = default;
  PackedWeight(Index rows, Index cols) { reset(rows, cols); }
  PackedWeight(const PackedWeight& other) : value_(other.value_) { repack(); }
  PackedWeight(PackedWeight&&) noexcept = default;
  PackedWeight& operator=(const PackedWeight& other) {
    if (this != &other) assign(other.value_);
    return *this;
  }
  PackedWeight& operator=(PackedWeight&& other) noexcept {
    value_ = std::move(other.value_);
    packed_ = std::move(other.packed_);
    return *this;
  }

  // Same-shape assignment from any Eigen expression; repacks.
  template <class Derived>
  PackedWeight& operator=(const Eigen::EigenBase<Derived>& m) {
    assign(m);
    return *this;
  }

  // Zeros of a new shape (the only way to change the shape).
  void reset(Index rows, Index cols) {
    if (rows < 0 || cols < 0)
      detail::fail<ArgumentError>("PackedWeight: expected a non-negative shape, got ",
                                  shape(rows, cols));
    value_ = Matrix<T>::Zero(rows, cols);
    repack();
  }

  // Edits the matrix in place through f(Matrix<T>&), then repacks (also when f throws).
  template <class F>
  void update(F&& f) {
    const Index rows = value_.rows(), cols = value_.cols();
    try {
      f(value_);
    } catch (...) {
      restore_shape(rows, cols);
      repack();
      throw;
    }
    if (value_.rows() != rows || value_.cols() != cols) {
      const std::string got = shape(value_.rows(), value_.cols());
      restore_shape(rows, cols);
      repack();
      detail::fail<ShapeError>("PackedWeight: an update must keep the shape ",
                               shape(rows, cols), ", got ", got);
    }
    repack();
  }

  // Reads `key` with the current shape (a loader error leaves the matrix unchanged and is
  // reported by the loader's finish()); repacks.
  void load(StateDictLoader& loader, const std::string& key) {
    update([&](Matrix<T>& m) { loader.matrix(key, m, m.rows(), m.cols()); });
  }
  // The same for a tensor stored with another shape of the same size (e.g. a conv weight
  // [D, C, p, p] read as [D, C*p*p]).
  void load_as(StateDictLoader& loader, const std::string& key,
               const std::vector<std::int64_t>& stored_shape) {
    update([&](Matrix<T>& m) { loader.matrix_as(key, m, m.rows(), m.cols(), stored_shape); });
  }

  const Matrix<T>& value() const { return value_; }
  operator const Matrix<T>&() const { return value_; }  // NOLINT: read access
  Index rows() const { return value_.rows(); }
  Index cols() const { return value_.cols(); }
  Index size() const { return value_.size(); }
  const T* data() const { return value_.data(); }
  T operator()(Index i, Index j) const { return value_(i, j); }

  // op(B) = W^T: k = cols() (in features) x n = rows() (out features).
  const PackedMatrix<T>& packed() const { return packed_; }

  // y (m x rows()) = epilogue(x (m x cols()) W^T + beta y).
  void multiply(Index m, const T* x, Index ldx, T beta, T* y, Index ldy,
                const Epilogue<T>& epilogue = {}, int threads = 0) const {
    gemm_packed<T>(Trans::N, m, x, ldx, packed_, beta, y, ldy, epilogue, threads);
  }

 private:
  template <class Derived>
  void assign(const Eigen::EigenBase<Derived>& m) {
    if (m.rows() != value_.rows() || m.cols() != value_.cols())
      detail::fail<ShapeError>("PackedWeight: expected a ",
                               shape(value_.rows(), value_.cols()),
                               " matrix, got ", shape(m.rows(), m.cols()));
    value_ = m;
    repack();
  }
  static std::string shape(Index rows, Index cols) {
    return detail::shape_string(std::vector<Index>{rows, cols});
  }
  void restore_shape(Index rows, Index cols) {
    if (value_.rows() != rows || value_.cols() != cols) value_ = Matrix<T>::Zero(rows, cols);
  }
  void repack() {
    packed_ = pack_b<T>(Trans::T, value_.cols(), value_.rows(), value_.data(), value_.cols());
  }

  Matrix<T> value_;
  PackedMatrix<T> packed_;
};

}  // namespace tokenmix

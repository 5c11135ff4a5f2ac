#pragma once
// A name -> tensor map in PyTorch's state_dict sense, and the strict loader layers and models
// read their parameters through. The loader records every problem (missing key, wrong shape,
// wrong dtype) instead of throwing at the first, and finish() reports them together with the
// keys nothing consumed, so one failed load lists everything that is wrong with a checkpoint.

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/io/tensor.hpp"

namespace tokenmix {

class StateDict {
 public:
  using Map = std::map<std::string, Tensor>;

  StateDict() = default;
  explicit StateDict(std::string source) : source_(std::move(source)) {}

  // Where the tensors came from (a file name), used in error messages.
  const std::string& source() const { return source_; }
  void set_source(std::string source) { source_ = std::move(source); }

  bool contains(const std::string& key) const { return tensors_.count(key) != 0; }
  std::size_t size() const { return tensors_.size(); }
  bool empty() const { return tensors_.empty(); }

  const Tensor& at(const std::string& key) const {
    auto it = tensors_.find(key);
    if (it == tensors_.end())
      throw KeyError(detail::concat(describe(), ": expected key '", key, "', not present"),
                     {key});
    return it->second;
  }

  void insert(const std::string& key, Tensor tensor) { tensors_[key] = std::move(tensor); }
  template <class T>
  void insert(const std::string& key, const Matrix<T>& m) {
    insert(key, Tensor::from_values<T>({m.rows(), m.cols()}, m.data()));
  }
  template <class T>
  void insert(const std::string& key, const Vector<T>& v) {
    insert(key, Tensor::from_values<T>({v.size()}, v.data()));
  }
  bool erase(const std::string& key) { return tensors_.erase(key) != 0; }

  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    out.reserve(tensors_.size());
    for (const auto& kv : tensors_) out.push_back(kv.first);
    return out;
  }

  const Map& tensors() const { return tensors_; }
  Map::const_iterator begin() const { return tensors_.begin(); }
  Map::const_iterator end() const { return tensors_.end(); }

  // Keys under `prefix` with the prefix removed (e.g. "fnet." of a task checkpoint).
  StateDict with_prefix_removed(const std::string& prefix) const {
    StateDict out(source_);
    for (const auto& kv : tensors_)
      if (kv.first.compare(0, prefix.size(), prefix) == 0)
        out.tensors_[kv.first.substr(prefix.size())] = kv.second;
    return out;
  }

  std::string describe() const {
    return source_.empty() ? std::string("state dict") : "state dict '" + source_ + "'";
  }

 private:
  std::string source_;
  Map tensors_;
};

class StateDictLoader {
 public:
  explicit StateDictLoader(const StateDict& dict) : dict_(dict) {}

  // Keys starting with `prefix` count as used without being read (opt-in, e.g. a head).
  void ignore_prefix(const std::string& prefix) { ignored_prefixes_.push_back(prefix); }

  bool contains(const std::string& key) const { return dict_.contains(key); }

  // The tensor under `key`, checked against `shape`; on a problem it is recorded and an
  // empty tensor returned, so loading goes on and finish() reports everything at once.
  const Tensor* take(const std::string& key, const std::vector<std::int64_t>& shape) {
    used_.insert(key);
    if (!dict_.contains(key)) {
      missing_.push_back(key + " " + detail::shape_string(shape));
      return nullptr;
    }
    const Tensor& t = dict_.at(key);
    if (t.shape() != shape) {
      mismatched_.push_back(key + ": expected " + detail::shape_string(shape) + ", got " +
                            t.shape_string());
      return nullptr;
    }
    if (t.dtype() != DType::F32 && t.dtype() != DType::F64 && t.dtype() != DType::F16 &&
        t.dtype() != DType::BF16) {
      mismatched_.push_back(key + ": expected a floating dtype, got " + dtype_name(t.dtype()));
      return nullptr;
    }
    return &t;
  }

  // A parameter of any listed shape whose element count is rows*cols, read as a matrix.
  template <class T>
  void matrix(const std::string& key, Matrix<T>& out, Index rows, Index cols) {
    matrix_as(key, out, rows, cols, {rows, cols});
  }
  template <class T>
  void matrix_as(const std::string& key, Matrix<T>& out, Index rows, Index cols,
                 const std::vector<std::int64_t>& file_shape) {
    check_count(key, file_shape, rows * cols);
    out.resize(rows, cols);
    if (const Tensor* t = take(key, file_shape)) t->copy_to(out.data());
  }
  template <class T>
  void vector(const std::string& key, Vector<T>& out, Index size) {
    vector_as(key, out, size, {size});
  }
  template <class T>
  void vector_as(const std::string& key, Vector<T>& out, Index size,
                 const std::vector<std::int64_t>& file_shape) {
    check_count(key, file_shape, size);
    out.resize(size);
    if (const Tensor* t = take(key, file_shape)) t->copy_to(out.data());
  }

  std::vector<std::string> unused_keys(const std::string& scope = "") const {
    std::vector<std::string> out;
    for (const auto& kv : dict_) {
      const std::string& key = kv.first;
      if (key.compare(0, scope.size(), scope) != 0 || used_.count(key)) continue;
      const bool ignored = std::any_of(
          ignored_prefixes_.begin(), ignored_prefixes_.end(),
          [&](const std::string& p) { return key.compare(0, p.size(), p) == 0; });
      if (!ignored) out.push_back(key + " " + kv.second.shape_string());
    }
    return out;
  }

  // Throws KeyError listing missing, mis-shaped and (under `scope`) unused keys, if any.
  void finish(const std::string& what, const std::string& scope = "") const {
    const auto unused = unused_keys(scope);
    if (missing_.empty() && mismatched_.empty() && unused.empty()) return;
    std::ostringstream msg;
    std::vector<std::string> all;
    msg << what << ": " << dict_.describe() << " does not match";
    auto section = [&](const char* title, const std::vector<std::string>& items) {
      if (items.empty()) return;
      msg << "; " << title << " (" << items.size() << "):";
      for (const auto& k : items) {
        msg << ' ' << k;
        all.push_back(k);
      }
    };
    section("missing keys", missing_);
    section("wrong shape or dtype", mismatched_);
    section("unused keys", unused);
    throw KeyError(msg.str(), all);
  }

 private:
  // A file shape whose element count differs from the destination would overrun it: that
  // is a bug in the calling layer, not in the checkpoint, so it throws at once.
  static void check_count(const std::string& key, const std::vector<std::int64_t>& file_shape,
                          Index count) {
    Index n = 1;
    for (auto d : file_shape) n *= static_cast<Index>(d);
    if (n != count || count < 0)
      detail::fail<ShapeError>("StateDictLoader: '", key, "': expected a file shape of ", count,
                               " elements, got ", detail::shape_string(file_shape));
  }

  const StateDict& dict_;
  std::set<std::string> used_;
  std::vector<std::string> missing_, mismatched_, ignored_prefixes_;
};

}  // namespace tokenmix

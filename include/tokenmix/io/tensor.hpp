#pragma once
// A dense host tensor as files carry it: element type, shape (PyTorch order) and the
// little-endian bytes. Half-precision files are widened to F32 by the readers, so layers see
// F32, F64, I64 or I32 only.

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/tensor.hpp"

namespace tokenmix {

enum class DType { F32, F64, F16, BF16, I64, I32 };

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
  }
  return "?";
}

inline std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::I64: return 8;
    case DType::I32: return 4;
  }
  return 0;
}

template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DType::F32;
  else if constexpr (std::is_same_v<T, double>) return DType::F64;
  else if constexpr (std::is_same_v<T, std::int64_t>) return DType::I64;
  else if constexpr (std::is_same_v<T, std::int32_t>) return DType::I32;
  else static_assert(sizeof(T) == 0, "tokenmix::dtype_of: unsupported element type");
}

namespace detail {
// IEEE binary16 -> binary32, exact (every half is a float), subnormals and NaN payloads kept.
inline float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exponent = (h >> 10) & 0x1fu;
  std::uint32_t mantissa = h & 0x3ffu;
  std::uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {
    exponent = 113;  // renormalise the subnormal
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    bits = sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline float bfloat16_to_float(std::uint16_t b) {
  const std::uint32_t bits = static_cast<std::uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Shared by the file writers (safetensors, .npy).
// Writes through a temporary file renamed over `path` at the end, so a failed or
// interrupted write never leaves a truncated file under the real name.
template <class WriteBody>
void write_file_atomically(const std::string& path, WriteBody&& body) {
  const std::string tmp = path + ".tokenmix-partial";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail<IoError>(path, ": expected a writable file, got an open failure for '", tmp, "'");
    body(out);
    out.flush();
    if (!out) {
      out.close();
      std::remove(tmp.c_str());
      fail<IoError>(path, ": expected to write the whole file, got a write error");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail<IoError>(path, ": expected to replace the file, got a rename failure");
  }
}

}  // namespace detail

class Tensor {
 public:
  // An empty tensor: no storage, numel() 0.
  Tensor() = default;
  Tensor(DType dtype, std::vector<std::int64_t> shape)
      : dtype_(dtype), shape_(std::move(shape)),
        bytes_(std::make_shared<std::vector<unsigned char>>(checked_byte_size(dtype_, shape_))) {}

  template <class T>
  static Tensor from_values(std::vector<std::int64_t> shape, const T* values) {
    Tensor t(dtype_of<T>(), std::move(shape));
    if (t.numel() > 0) std::memcpy(t.raw(), values, t.byte_size());
    return t;
  }

  DType dtype() const { return dtype_; }
  const std::vector<std::int64_t>& shape() const { return shape_; }
  Index dim() const { return static_cast<Index>(shape_.size()); }
  std::size_t numel() const {
    if (!bytes_) return 0;
    std::size_t n = 1;
    for (auto s : shape_) n *= static_cast<std::size_t>(s);
    return n;
  }
  std::size_t byte_size() const { return bytes_ ? bytes_->size() : 0; }
  const unsigned char* raw() const { return bytes_ ? bytes_->data() : nullptr; }
  unsigned char* raw() { return bytes_ ? bytes_->data() : nullptr; }
  std::string shape_string() const { return detail::shape_string(shape_); }

  // Typed view without conversion; the dtype must match exactly.
  template <class T>
  const T* data() const {
    if (dtype_ != dtype_of<T>())
      detail::fail<FormatError>("Tensor::data: expected dtype ", dtype_name(dtype_of<T>()),
                                ", got ", dtype_name(dtype_));
    return reinterpret_cast<const T*>(raw());
  }

  // Values converted to T (floating <-> floating, integer -> either); row-major order.
  template <class T>
  std::vector<T> values() const {
    std::vector<T> out(numel());
    copy_to(out.data());
    return out;
  }

  template <class T>
  void copy_to(T* out) const {
    const std::size_t n = numel();
    const unsigned char* p = raw();
    auto load = [p](std::size_t i, auto tag) {
      decltype(tag) v;
      std::memcpy(&v, p + i * sizeof(v), sizeof(v));
      return v;
    };
    for (std::size_t i = 0; i < n; ++i) {
      switch (dtype_) {
        case DType::F32: out[i] = static_cast<T>(load(i, float{})); break;
        case DType::F64: out[i] = static_cast<T>(load(i, double{})); break;
        case DType::I64: out[i] = static_cast<T>(load(i, std::int64_t{})); break;
        case DType::I32: out[i] = static_cast<T>(load(i, std::int32_t{})); break;
        case DType::F16: out[i] = static_cast<T>(detail::half_to_float(load(i, std::uint16_t{}))); break;
        case DType::BF16: out[i] = static_cast<T>(detail::bfloat16_to_float(load(i, std::uint16_t{}))); break;
      }
    }
  }

  // A 2-D (or 1 x n) floating tensor as a row-major matrix of T.
  template <class T>
  Matrix<T> to_matrix() const {
    if (dim() > 2)
      detail::fail<ShapeError>("Tensor::to_matrix: expected at most 2 dimensions, got ",
                               shape_string());
    const Index rows = dim() == 2 ? shape_[0] : 1;
    const Index cols = dim() == 0 ? 1 : shape_[dim() - 1];
    Matrix<T> m(rows, cols);
    copy_to(m.data());
    return m;
  }

 private:
  // Negative extents or a byte count beyond size_t would otherwise wrap into a bogus
  // allocation; readers validate first, this guards hand-built shapes.
  static std::size_t checked_byte_size(DType dtype, const std::vector<std::int64_t>& shape) {
    std::size_t bytes = dtype_size(dtype);
    bool zero = false, overflow = false;
    for (auto s : shape) {
      if (s < 0)
        detail::fail<ShapeError>("Tensor: expected non-negative extents, got ",
                                 detail::shape_string(shape));
      const auto u = static_cast<std::size_t>(s);
      if (u == 0) zero = true;
      else if (bytes > static_cast<std::size_t>(-1) / u) overflow = true;
      else bytes *= u;
    }
    if (zero) return 0;
    if (overflow)
      detail::fail<ShapeError>("Tensor: expected a byte size that fits in memory, got shape ",
                               detail::shape_string(shape), " of ", dtype_name(dtype));
    return bytes;
  }

  DType dtype_ = DType::F32;
  std::vector<std::int64_t> shape_;
  std::shared_ptr<std::vector<unsigned char>> bytes_;
};

}  // namespace tokenmix

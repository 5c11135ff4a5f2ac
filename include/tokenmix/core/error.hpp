#pragma once
// One exception hierarchy for the whole library. Callers catch tokenmix::Error for
// everything, or a subclass when they must tell failures apart. Messages follow one form:
// "<where>: expected <what>, got <what came>", where <where> names the layer or file.

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace tokenmix {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// A tensor or argument has the wrong shape (layer inputs, weights, views).
class ShapeError : public Error {
 public:
  using Error::Error;
};

// A file could not be read or written, or its bytes do not follow the format.
class IoError : public Error {
 public:
  using Error::Error;
};

class FormatError : public IoError {
 public:
  using IoError::IoError;
};

// A checkpoint / state dict lacks keys the model needs, or has keys nothing uses.
class KeyError : public Error {
 public:
  KeyError(const std::string& message, std::vector<std::string> keys)
      : Error(message), keys_(std::move(keys)) {}
  explicit KeyError(const std::string& message) : Error(message) {}
  const std::vector<std::string>& keys() const noexcept { return keys_; }

 private:
  std::vector<std::string> keys_;
};

// An argument outside its documented range (thread count, ISA name, config field).
class ArgumentError : public Error {
 public:
  using Error::Error;
};

namespace detail {

template <class... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

template <class Dims>
std::string shape_string(const Dims& dims) {
  std::ostringstream out;
  out << '[';
  bool first = true;
  for (const auto& d : dims) {
    if (!first) out << ", ";
    out << d;
    first = false;
  }
  out << ']';
  return out.str();
}

template <class ErrorType = Error, class... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  throw ErrorType(concat(std::forward<Parts>(parts)...));
}

}  // namespace detail
}  // namespace tokenmix

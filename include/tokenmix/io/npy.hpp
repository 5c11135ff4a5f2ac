#pragma once
// NumPy .npy files (format versions 1.0, 2.0, 3.0): magic "\x93NUMPY", version bytes, a
// little-endian header length (2 bytes in 1.0, 4 in 2.0 / 3.0), a Python-literal dict
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } padded with spaces and ended
// by '\n', then the raw array.
//
//   Tensor t = tokenmix::read_npy("x.npy");
//   tokenmix::write_npy("y.npy", matrix);         // Matrix<float> / Matrix<double>
//
// Supported element types: '<f4', '<f8', '<i8', '<i4', and '<f2' (widened to F32 unless
// asked otherwise). Fortran-order arrays are read and reordered into C order. Big-endian and
// every other type are rejected as FormatError, as is anything malformed: bad magic, unknown
// version, a header dict with missing, extra, duplicate or ill-typed keys, or a file whose
// size does not match the declared shape.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "tokenmix/core/error.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/io/tensor.hpp"

#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "tokenmix file I/O assumes a little-endian host (the formats store little-endian data)"
#endif

namespace tokenmix {

struct NpyReadOptions {
  bool widen_half = true;  // '<f2' becomes F32 (exact); off keeps DType::F16
};

namespace detail {

struct NpyHeader {
  DType dtype = DType::F32;
  bool fortran_order = false;
  std::vector<std::int64_t> shape;
  std::size_t data_offset = 0;  // bytes before the array data
};

// Strict reader of the one Python literal numpy writes: a dict of exactly descr (str),
// fortran_order (bool) and shape (tuple of ints).
class NpyDictParser {
 public:
  NpyDictParser(const std::string& text, const std::string& where) : s_(text), where_(where) {}

  NpyHeader parse() {
    NpyHeader h;
    bool have_descr = false, have_fortran = false, have_shape = false;
    std::string descr;
    skip_ws();
    expect('{', "'{' opening the header dict");
    skip_ws();
    while (!peek('}')) {
      const std::string key = parse_string("a quoted key");
      skip_ws();
      expect(':', "':' after key '" + key + "'");
      skip_ws();
      auto once = [&](bool& have) {
        if (have) fail<FormatError>(where_, ": expected header key '", key, "' once, got a duplicate key");
        have = true;
      };
      if (key == "descr") {
        once(have_descr);
        descr = parse_string("descr as a quoted string");
      } else if (key == "fortran_order") {
        once(have_fortran);
        h.fortran_order = parse_bool();
      } else if (key == "shape") {
        once(have_shape);
        h.shape = parse_shape();
      } else {
        fail<FormatError>(where_, ": expected header keys descr, fortran_order and shape, got '",
                          key, "'");
      }
      skip_ws();
      if (peek(',')) {
        ++i_;
        skip_ws();
      } else if (!peek('}')) {
        error("',' or '}' in the header dict");
      }
    }
    ++i_;
    skip_ws();
    if (i_ != s_.size()) error("the end of the header after the dict");
    if (!have_descr || !have_fortran || !have_shape)
      fail<FormatError>(where_, ": expected header keys descr, fortran_order and shape, got ",
                        have_descr ? "" : "no descr ", have_fortran ? "" : "no fortran_order ",
                        have_shape ? "" : "no shape");
    h.dtype = parse_descr(descr);
    return h;
  }

 private:
  [[noreturn]] void error(const std::string& expected) const {
    std::string got = i_ < s_.size() ? "'" + s_.substr(i_, 12) + "'" : "end of header";
    fail<FormatError>(where_, ": expected ", expected, " at header byte ", i_, ", got ", got);
  }
  bool peek(char c) const { return i_ < s_.size() && s_[i_] == c; }
  void expect(char c, const std::string& what) {
    if (!peek(c)) error(what);
    ++i_;
  }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }

  std::string parse_string(const std::string& what) {
    if (!peek('\'') && !peek('"')) error(what);
    const char quote = s_[i_++];
    const std::size_t start = i_;
    while (i_ < s_.size() && s_[i_] != quote) {
      // numpy's keys and descrs never need escapes; refusing them keeps the parser exact.
      if (s_[i_] == '\\' || s_[i_] == '\n') error("a plain string without escapes");
      ++i_;
    }
    if (i_ >= s_.size()) error("a closing quote");
    return s_.substr(start, i_++ - start);
  }

  bool parse_bool() {
    if (s_.compare(i_, 4, "True") == 0) {
      i_ += 4;
      return true;
    }
    if (s_.compare(i_, 5, "False") == 0) {
      i_ += 5;
      return false;
    }
    error("fortran_order True or False");
  }

  std::vector<std::int64_t> parse_shape() {
    expect('(', "shape as a tuple '('");
    std::vector<std::int64_t> shape;
    skip_ws();
    bool trailing_comma = false;
    while (!peek(')')) {
      if (!(i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9'))
        error("a non-negative integer in the shape");
      std::uint64_t v = 0;
      const std::uint64_t limit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
        const auto digit = static_cast<std::uint64_t>(s_[i_] - '0');
        if (v > (limit - digit) / 10) error("a shape entry below 2^63");
        v = v * 10 + digit;
        ++i_;
      }
      if (i_ < s_.size() && s_[i_] == 'L') ++i_;  // Python 2 long suffix, written by old numpy
      shape.push_back(static_cast<std::int64_t>(v));
      skip_ws();
      trailing_comma = false;
      if (peek(',')) {
        ++i_;
        trailing_comma = true;
        skip_ws();
      } else if (!peek(')')) {
        error("',' or ')' in the shape");
      }
    }
    // "(3)" is an int in Python, not a tuple: a one-element tuple needs its comma.
    if (shape.size() == 1 && !trailing_comma) error("a one-element shape written '(n,)'");
    ++i_;
    return shape;
  }

  DType parse_descr(const std::string& d) const {
    if (d.size() >= 2 && d[0] == '>' && d != ">u1" && d != ">i1" && d != ">b1")
      fail<FormatError>(where_, ": expected a little-endian descr ('<f4', '<f8', '<i8', '<i4', "
                        "'<f2'), got big-endian '", d, "'");
    if (d == "<f4") return DType::F32;
    if (d == "<f8") return DType::F64;
    if (d == "<i8") return DType::I64;
    if (d == "<i4") return DType::I32;
    if (d == "<f2") return DType::F16;
    fail<FormatError>(where_, ": expected descr '<f4', '<f8', '<i8', '<i4' or '<f2', got '", d,
                      "'");
  }

  const std::string& s_;
  std::string where_;
  std::size_t i_ = 0;
};

// Parses magic, version and header dict from the first bytes of a file of `file_size`
// bytes and checks that the data that follows has exactly the declared size.
inline NpyHeader parse_npy_header(const unsigned char* bytes, std::size_t available,
                                  std::uint64_t file_size, const std::string& where) {
  static const unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (available < 6 || std::memcmp(bytes, magic, 6) != 0)
    fail<FormatError>(where, ": expected the .npy magic \"\\x93NUMPY\", got ",
                      available < 6 ? "a file shorter than the magic" : "other bytes");
  if (available < 10)
    fail<FormatError>(where, ": expected a 10-byte preamble, got ", available, " bytes");
  const unsigned major = bytes[6], minor = bytes[7];
  if (!((major == 1 || major == 2 || major == 3) && minor == 0))
    fail<FormatError>(where, ": expected .npy format version 1.0, 2.0 or 3.0, got ", major, ".",
                      minor);
  std::size_t prefix = major == 1 ? 10 : 12;
  if (available < prefix)
    fail<FormatError>(where, ": expected a ", prefix, "-byte preamble, got ", available, " bytes");
  std::uint64_t header_len = 0;
  if (major == 1) {
    header_len = static_cast<std::uint64_t>(bytes[8]) | (static_cast<std::uint64_t>(bytes[9]) << 8);
  } else {
    std::uint32_t v;
    std::memcpy(&v, bytes + 8, 4);
    header_len = v;
  }
  if (header_len > file_size - prefix || header_len > available - prefix)
    fail<FormatError>(where, ": expected a header length within the file (", file_size - prefix,
                      " bytes left), got ", header_len);
  std::string text(reinterpret_cast<const char*>(bytes + prefix), static_cast<std::size_t>(header_len));
  if (text.empty() || text.back() != '\n')
    fail<FormatError>(where, ": expected the header to end with '\\n', got ",
                      text.empty() ? std::string("an empty header") : "no newline");
  text.pop_back();
  NpyHeader h = NpyDictParser(text, where).parse();
  h.data_offset = prefix + static_cast<std::size_t>(header_len);

  const std::uint64_t data_size = file_size - h.data_offset;
  const std::uint64_t item = dtype_size(h.dtype);
  std::uint64_t numel = 1;
  bool too_big = false;
  for (const auto d : h.shape) {
    const auto u = static_cast<std::uint64_t>(d);
    if (u == 0) {
      numel = 0;
      too_big = false;
      break;
    }
    if (numel > data_size / u) too_big = true;  // larger than the file could hold
    else numel *= u;
  }
  if (too_big || numel * item != data_size)
    fail<FormatError>(where, ": expected ", too_big ? std::string("more than the file holds") :
                      concat(numel * item, " data bytes"), " for shape ", shape_string(h.shape),
                      " of ", dtype_name(h.dtype), ", got ", data_size,
                      too_big || numel * item > data_size ? " (file truncated)" : " (trailing bytes)");
  return h;
}

// Reorders a Fortran-order array of `item`-byte elements into C order.
inline void fortran_to_c_order(const unsigned char* src, unsigned char* dst,
                               const std::vector<std::int64_t>& shape, std::size_t item) {
  const std::size_t rank = shape.size();
  std::size_t numel = 1;
  for (auto d : shape) numel *= static_cast<std::size_t>(d);
  if (numel == 0) return;
  std::vector<std::size_t> f_stride(rank), index(rank, 0);
  std::size_t s = 1;
  for (std::size_t k = 0; k < rank; ++k) {
    f_stride[k] = s;
    s *= static_cast<std::size_t>(shape[k]);
  }
  std::size_t offset = 0;  // Fortran-order element offset of `index`
  for (std::size_t i = 0; i < numel; ++i) {
    std::memcpy(dst + i * item, src + offset * item, item);
    for (std::size_t k = rank; k-- > 0;) {  // C order: last index fastest
      if (++index[k] < static_cast<std::size_t>(shape[k])) {
        offset += f_stride[k];
        break;
      }
      offset -= f_stride[k] * (index[k] - 1);
      index[k] = 0;
    }
  }
}

inline Tensor npy_tensor_from(const NpyHeader& h, const unsigned char* data,
                              const NpyReadOptions& options) {
  Tensor raw(h.dtype, h.shape);
  if (raw.byte_size() > 0) {
    if (h.fortran_order)
      fortran_to_c_order(data, raw.raw(), h.shape, dtype_size(h.dtype));
    else
      std::memcpy(raw.raw(), data, raw.byte_size());
  }
  if (h.dtype != DType::F16 || !options.widen_half) return raw;
  Tensor out(DType::F32, h.shape);
  float* dst = reinterpret_cast<float*>(out.raw());
  for (std::size_t i = 0; i < out.numel(); ++i) {
    std::uint16_t bits;
    std::memcpy(&bits, raw.raw() + 2 * i, 2);
    dst[i] = half_to_float(bits);
  }
  return out;
}

inline const char* npy_descr(DType t) {
  switch (t) {
    case DType::F32: return "<f4";
    case DType::F64: return "<f8";
    case DType::I64: return "<i8";
    case DType::I32: return "<i4";
    case DType::F16: return "<f2";
    case DType::BF16: return nullptr;
  }
  return nullptr;
}

}  // namespace detail

// Parses a whole .npy image already in memory; `name` is used in error messages.
inline Tensor parse_npy(const unsigned char* bytes, std::size_t size, const std::string& name,
                        const NpyReadOptions& options = {}) {
  const detail::NpyHeader h = detail::parse_npy_header(bytes, size, size, name);
  return detail::npy_tensor_from(h, bytes + h.data_offset, options);
}

inline Tensor read_npy(const std::string& path, const NpyReadOptions& options = {}) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) detail::fail<IoError>(path, ": expected a readable .npy file, got an open failure");
  const std::streamoff end = in.tellg();
  if (end < 0) detail::fail<IoError>(path, ": expected a seekable file, got tellg failure");
  const auto file_size = static_cast<std::uint64_t>(end);
  in.seekg(0);
  // The preamble is small; read it first so the declared sizes are checked against the
  // file before any allocation the size of the array.
  std::vector<unsigned char> head(static_cast<std::size_t>(std::min<std::uint64_t>(file_size, 12)));
  in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
  std::size_t prefix_len = 10;
  if (head.size() >= 12 && head[6] != 1) prefix_len = 12;
  std::uint64_t header_len = 0;
  if (head.size() >= prefix_len) {
    if (prefix_len == 10) {
      header_len = static_cast<std::uint64_t>(head[8]) | (static_cast<std::uint64_t>(head[9]) << 8);
    } else {
      std::uint32_t v;
      std::memcpy(&v, head.data() + 8, 4);
      header_len = v;
    }
  }
  const std::uint64_t want = std::min<std::uint64_t>(file_size, prefix_len + header_len);
  if (want > head.size()) {
    const std::size_t old = head.size();
    head.resize(static_cast<std::size_t>(want));
    in.read(reinterpret_cast<char*>(head.data() + old), static_cast<std::streamsize>(want - old));
  }
  if (!in) detail::fail<IoError>(path, ": expected ", want, " header bytes, got a read error");
  const detail::NpyHeader h = detail::parse_npy_header(head.data(), head.size(), file_size, path);
  in.seekg(static_cast<std::streamoff>(h.data_offset));
  const auto bytes = static_cast<std::size_t>(file_size - h.data_offset);
  auto read_into = [&](unsigned char* dst) {
    if (bytes > 0 && !in.read(reinterpret_cast<char*>(dst), static_cast<std::streamsize>(bytes)))
      detail::fail<IoError>(path, ": expected ", bytes, " data bytes, got a read error");
  };
  // The common case (C order, no widening) reads straight into the tensor: no second copy.
  if (!h.fortran_order && !(h.dtype == DType::F16 && options.widen_half)) {
    Tensor t(h.dtype, h.shape);
    read_into(t.raw());
    return t;
  }
  std::vector<unsigned char> data(bytes);
  read_into(data.data());
  return detail::npy_tensor_from(h, data.data(), options);
}

namespace detail {
// Magic, version, length and padded header dict of the .npy file for `t`: version 1.0
// (2.0 if the header needs it), C order, data starting on a 64-byte boundary as numpy
// writes it.
inline std::string npy_preamble(const Tensor& t) {
  const char* descr = npy_descr(t.dtype());
  if (!descr)
    fail<ArgumentError>("write_npy: expected dtype F32, F64, F16, I64 or I32, got ",
                        dtype_name(t.dtype()), " (.npy has no bfloat16)");
  std::string dict = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (";
  for (std::size_t i = 0; i < t.shape().size(); ++i) {
    if (i) dict += ", ";
    dict += std::to_string(t.shape()[i]);
  }
  if (t.shape().size() == 1) dict += ',';
  dict += "), }";
  std::size_t prefix = 10;
  unsigned major = 1;
  if (dict.size() + 1 + 63 > 65535) {  // padded length must fit version 1.0's 16 bits
    prefix = 12;
    major = 2;
  }
  const std::size_t total = prefix + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::string out(prefix, '\0');
  const char magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};
  std::memcpy(&out[0], magic, 6);
  out[6] = static_cast<char>(major);
  out[7] = 0;
  const auto len = static_cast<std::uint32_t>(dict.size());
  for (std::size_t i = 0; i + 8 < prefix; ++i) out[8 + i] = static_cast<char>((len >> (8 * i)) & 0xff);
  return out + dict;
}
}  // namespace detail

// The bytes write_npy stores.
inline std::vector<unsigned char> serialize_npy(const Tensor& t) {
  const std::string pre = detail::npy_preamble(t);
  std::vector<unsigned char> out(pre.size() + t.byte_size());
  std::memcpy(out.data(), pre.data(), pre.size());
  if (t.byte_size() > 0) std::memcpy(out.data() + pre.size(), t.raw(), t.byte_size());
  return out;
}

inline void write_npy(const std::string& path, const Tensor& t) {
  const std::string pre = detail::npy_preamble(t);
  detail::write_file_atomically(path, [&](std::ofstream& out) {
    out.write(pre.data(), static_cast<std::streamsize>(pre.size()));
    if (t.byte_size() > 0)
      out.write(reinterpret_cast<const char*>(t.raw()), static_cast<std::streamsize>(t.byte_size()));
  });
}

// A row-major matrix as a 2-D array (rows, cols).
template <class T, int R, int C, int O, int MR, int MC>
void write_npy(const std::string& path, const Eigen::Matrix<T, R, C, O, MR, MC>& m) {
  const Matrix<T> rm = m;  // row-major copy: the file is C order
  write_npy(path, Tensor::from_values<T>({rm.rows(), rm.cols()}, rm.data()));
}

// A vector as a 1-D array (n,).
template <class T>
void write_npy(const std::string& path, const Vector<T>& v) {
  write_npy(path, Tensor::from_values<T>({v.size()}, v.data()));
}

}  // namespace tokenmix

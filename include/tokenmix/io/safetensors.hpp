#pragma once
// Hugging Face safetensors files: an 8-byte little-endian header length N, N bytes of JSON
// header {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
// then the raw little-endian tensor bytes (offsets count from the first byte after the
// header).
//
//   StateDict sd = tokenmix::read_safetensors("model.safetensors");
//   SafetensorsFile f = tokenmix::read_safetensors_file("model.safetensors");  // + metadata
//   auto meta = tokenmix::read_safetensors_metadata("model.safetensors");    // header only
//   tokenmix::write_safetensors("out.safetensors", sd, {{"format", "pt"}});
//   parse_safetensors(bytes, size, name) / serialize_safetensors(sd): the same in memory.
//
// Files are streamed (header first, then each tensor straight into its storage), so this
// works on any platform with no mmap and peak memory is the tensors themselves.
//
// Reading is strict, because a checkpoint is untrusted input: every structural problem the
// reference implementation rejects is rejected here too, as a FormatError naming the file,
// the tensor key, what was expected and what came. All sizes are checked against the file
// size before anything is allocated, so a forged header cannot trigger a huge allocation or
// an out-of-bounds read. F16 and BF16 tensors are widened to F32 unless asked otherwise.
//
// The header is parsed by a small JSON reader of our own rather than nlohmann-json: it keeps
// this header dependency-free and, unlike a DOM library, it sees duplicate keys.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenmix/core/error.hpp"
#include "tokenmix/io/state_dict.hpp"
#include "tokenmix/io/tensor.hpp"

#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "tokenmix file I/O assumes a little-endian host (the formats store little-endian data)"
#endif

namespace tokenmix {

struct SafetensorsReadOptions {
  // F16 / BF16 tensors become F32 (exactly: every half value is a float). Off keeps the raw
  // half bits, e.g. to copy a checkpoint through unchanged.
  bool widen_half = true;
};

struct SafetensorsFile {
  StateDict tensors;
  std::map<std::string, std::string> metadata;  // the "__metadata__" object, if any
};

namespace detail {

// The HF reference implementation's limit; a real header is kilobytes.
constexpr std::uint64_t kSafetensorsMaxHeader = 100u * 1000u * 1000u;

// Minimal strict JSON DOM: objects keep members in file order (duplicates stay visible),
// numbers keep their source text so integer checks can be exact.
struct JsonValue {
  enum class Kind { null, boolean, number, string, array, object };
  Kind kind = Kind::null;
  bool boolean = false;
  std::string text;  // string contents or number token
  std::vector<JsonValue> items;
  std::vector<std::pair<std::string, JsonValue>> members;

  const char* kind_name() const {
    switch (kind) {
      case Kind::null: return "null";
      case Kind::boolean: return "a boolean";
      case Kind::number: return "a number";
      case Kind::string: return "a string";
      case Kind::array: return "an array";
      case Kind::object: return "an object";
    }
    return "?";
  }
};

class JsonParser {
 public:
  JsonParser(const char* data, std::size_t size, std::string where)
      : p_(data), begin_(data), end_(data + size), where_(std::move(where)) {}

  JsonValue parse_document() {
    skip_ws();
    JsonValue v = parse_value(0);
    skip_ws();
    if (p_ != end_) error("end of the header", describe_here());
    return v;
  }

 private:
  static constexpr int kMaxDepth = 64;

  [[noreturn]] void error(const std::string& expected, const std::string& got) const {
    fail<FormatError>(where_, ": expected ", expected, " in the JSON header at byte ",
                      static_cast<std::size_t>(p_ - begin_), ", got ", got);
  }
  std::string describe_here() const {
    if (p_ >= end_) return "end of header";
    const unsigned char c = static_cast<unsigned char>(*p_);
    if (c >= 0x20 && c < 0x7f) return std::string("'") + static_cast<char>(c) + "'";
    return concat("byte 0x", std::hex, static_cast<unsigned>(c));
  }

  void skip_ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }

  bool consume_literal(const char* lit) {
    const std::size_t n = std::strlen(lit);
    if (static_cast<std::size_t>(end_ - p_) >= n && std::memcmp(p_, lit, n) == 0) {
      p_ += n;
      return true;
    }
    return false;
  }

  JsonValue parse_value(int depth) {
    if (depth > kMaxDepth) error("nesting at most 64 deep", "deeper nesting");
    if (p_ >= end_) error("a value", "end of header");
    JsonValue v;
    switch (*p_) {
      case '{': parse_object(v, depth); break;
      case '[': parse_array(v, depth); break;
      case '"':
        v.kind = JsonValue::Kind::string;
        v.text = parse_string();
        break;
      case 't':
      case 'f':
      case 'n':
        if (consume_literal("true")) {
          v.kind = JsonValue::Kind::boolean;
          v.boolean = true;
        } else if (consume_literal("false")) {
          v.kind = JsonValue::Kind::boolean;
        } else if (consume_literal("null")) {
          v.kind = JsonValue::Kind::null;
        } else {
          error("a value", describe_here());
        }
        break;
      default:
        if (*p_ == '-' || (*p_ >= '0' && *p_ <= '9')) {
          v.kind = JsonValue::Kind::number;
          v.text = parse_number();
        } else {
          error("a value", describe_here());
        }
    }
    return v;
  }

  void parse_object(JsonValue& v, int depth) {
    v.kind = JsonValue::Kind::object;
    ++p_;  // '{'
    skip_ws();
    if (p_ < end_ && *p_ == '}') {
      ++p_;
      return;
    }
    for (;;) {
      skip_ws();
      if (p_ >= end_ || *p_ != '"') error("a member name string", describe_here());
      std::string key = parse_string();
      skip_ws();
      if (p_ >= end_ || *p_ != ':') error("':'", describe_here());
      ++p_;
      skip_ws();
      JsonValue member = parse_value(depth + 1);
      v.members.emplace_back(std::move(key), std::move(member));
      skip_ws();
      if (p_ < end_ && *p_ == ',') {
        ++p_;
        continue;
      }
      if (p_ < end_ && *p_ == '}') {
        ++p_;
        return;
      }
      error("',' or '}'", describe_here());
    }
  }

  void parse_array(JsonValue& v, int depth) {
    v.kind = JsonValue::Kind::array;
    ++p_;  // '['
    skip_ws();
    if (p_ < end_ && *p_ == ']') {
      ++p_;
      return;
    }
    for (;;) {
      skip_ws();
      v.items.push_back(parse_value(depth + 1));
      skip_ws();
      if (p_ < end_ && *p_ == ',') {
        ++p_;
        continue;
      }
      if (p_ < end_ && *p_ == ']') {
        ++p_;
        return;
      }
      error("',' or ']'", describe_here());
    }
  }

  std::string parse_number() {
    const char* start = p_;
    if (*p_ == '-') ++p_;
    if (p_ >= end_ || !(*p_ >= '0' && *p_ <= '9')) error("a digit", describe_here());
    if (*p_ == '0') {
      ++p_;
    } else {
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    if (p_ < end_ && *p_ == '.') {
      ++p_;
      if (p_ >= end_ || !(*p_ >= '0' && *p_ <= '9')) error("a digit after '.'", describe_here());
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ >= end_ || !(*p_ >= '0' && *p_ <= '9')) error("an exponent digit", describe_here());
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    return std::string(start, p_);
  }

  unsigned hex4() {
    if (end_ - p_ < 4) error("4 hex digits after \\u", "end of header");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i, ++p_) {
      const char c = *p_;
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned>(c - 'A' + 10);
      else error("a hex digit in \\u escape", describe_here());
    }
    return v;
  }

  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  // Length of the valid UTF-8 sequence at p_, or 0 (overlongs and surrogates are invalid).
  std::size_t utf8_length() const {
    const auto* s = reinterpret_cast<const unsigned char*>(p_);
    const std::size_t left = static_cast<std::size_t>(end_ - p_);
    const unsigned c = s[0];
    std::size_t n;
    unsigned lo = 0x80, hi = 0xbf;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 3;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 4;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return 0;
    }
    if (left < n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (std::size_t i = 2; i < n; ++i)
      if (s[i] < 0x80 || s[i] > 0xbf) return 0;
    return n;
  }

  std::string parse_string() {
    ++p_;  // opening quote
    std::string out;
    for (;;) {
      if (p_ >= end_) error("a closing '\"'", "end of header");
      const char c = *p_;
      if (c == '"') {
        ++p_;
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20)
        error("no raw control characters in strings", describe_here());
      if (c == '\\') {
        ++p_;
        if (p_ >= end_) error("an escape character", "end of header");
        const char e = *p_++;
        switch (e) {
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          case '/': out += '/'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'n': out += '\n'; break;
          case 'r': out += '\r'; break;
          case 't': out += '\t'; break;
          case 'u': {
            unsigned cp = hex4();
            if (cp >= 0xd800 && cp <= 0xdbff) {
              if (!(end_ - p_ >= 2 && p_[0] == '\\' && p_[1] == 'u'))
                error("a low surrogate after a high surrogate", describe_here());
              p_ += 2;
              const unsigned low = hex4();
              if (low < 0xdc00 || low > 0xdfff) error("a low surrogate", "another code unit");
              cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
              error("a high surrogate first", "a lone low surrogate");
            }
            append_utf8(out, cp);
            break;
          }
          default:
            --p_;
            error("a valid escape", describe_here());
        }
        continue;
      }
      const std::size_t n = utf8_length();
      if (n == 0) error("valid UTF-8", describe_here());
      out.append(p_, n);
      p_ += n;
    }
  }

  const char* p_;
  const char* begin_;
  const char* end_;
  std::string where_;
};

// Text of a JSON string literal for `s` (UTF-8 passes through; controls are escaped).
inline void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          static const char* hex = "0123456789abcdef";
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

inline bool safetensors_dtype_from_name(const std::string& name, DType& out) {
  static const std::pair<const char*, DType> table[] = {
      {"F32", DType::F32}, {"F64", DType::F64}, {"F16", DType::F16},
      {"BF16", DType::BF16}, {"I64", DType::I64}, {"I32", DType::I32}};
  for (const auto& e : table)
    if (name == e.first) {
      out = e.second;
      return true;
    }
  return false;
}

// A JSON number token as a non-negative integer that fits in `limit`, or false.
inline bool json_to_u64(const JsonValue& v, std::uint64_t limit, std::uint64_t& out) {
  if (v.kind != JsonValue::Kind::number || v.text.empty() || v.text[0] == '-') return false;
  std::uint64_t value = 0;
  for (const char c : v.text) {
    if (c < '0' || c > '9') return false;  // fraction or exponent: not an integer
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (limit - digit) / 10) return false;
    value = value * 10 + digit;
  }
  out = value;
  return true;
}

// An F32 tensor holding the exact values of F16 / BF16 `bits`.
inline Tensor widen_half_tensor(DType dtype, const std::vector<std::int64_t>& shape,
                                const unsigned char* bits) {
  Tensor out(DType::F32, shape);
  const std::size_t n = out.numel();
  float* dst = reinterpret_cast<float*>(out.raw());
  for (std::size_t i = 0; i < n; ++i) {
    std::uint16_t h;
    std::memcpy(&h, bits + 2 * i, 2);
    dst[i] = dtype == DType::F16 ? half_to_float(h) : bfloat16_to_float(h);
  }
  return out;
}

struct SafetensorsEntry {
  std::string key;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0, end = 0;
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;  // in data order
  std::map<std::string, std::string> metadata;
};

// Validates a parsed header against a data region of `data_size` bytes.
inline SafetensorsHeader validate_safetensors_header(const JsonValue& root,
                                                     std::uint64_t data_size,
                                                     const std::string& file) {
  if (root.kind != JsonValue::Kind::object)
    fail<FormatError>(file, ": expected the safetensors header to be a JSON object, got ",
                      root.kind_name());
  SafetensorsHeader header;
  std::map<std::string, int> seen;
  for (const auto& member : root.members) {
    const std::string& key = member.first;
    const JsonValue& value = member.second;
    if (++seen[key] > 1)
      fail<FormatError>(file, ": tensor '", key,
                        "': expected each key once in the header, got a duplicate key");
    if (key == "__metadata__") {
      if (value.kind != JsonValue::Kind::object)
        fail<FormatError>(file, ": '__metadata__': expected an object of strings, got ",
                          value.kind_name());
      for (const auto& m : value.members) {
        if (m.second.kind != JsonValue::Kind::string)
          fail<FormatError>(file, ": '__metadata__' entry '", m.first,
                            "': expected a string value, got ", m.second.kind_name());
        if (!header.metadata.emplace(m.first, m.second.text).second)
          fail<FormatError>(file, ": '__metadata__' entry '", m.first,
                            "': expected each key once, got a duplicate key");
      }
      continue;
    }
    auto bad = [&](const std::string& expected, const std::string& got) {
      fail<FormatError>(file, ": tensor '", key, "': expected ", expected, ", got ", got);
    };
    if (value.kind != JsonValue::Kind::object)
      bad("an object with dtype, shape and data_offsets", value.kind_name());
    const JsonValue* dtype = nullptr;
    const JsonValue* shape = nullptr;
    const JsonValue* offsets = nullptr;
    for (const auto& f : value.members) {
      const JsonValue** slot = f.first == "dtype"          ? &dtype
                               : f.first == "shape"        ? &shape
                               : f.first == "data_offsets" ? &offsets
                                                           : nullptr;
      if (!slot) bad("only the fields dtype, shape and data_offsets", "field '" + f.first + "'");
      if (*slot) bad("field '" + f.first + "' once", "it twice");
      *slot = &f.second;
    }
    if (!dtype) bad("a 'dtype' field", "none");
    if (!shape) bad("a 'shape' field", "none");
    if (!offsets) bad("a 'data_offsets' field", "none");

    SafetensorsEntry e;
    e.key = key;
    if (dtype->kind != JsonValue::Kind::string) bad("dtype as a string", dtype->kind_name());
    if (!safetensors_dtype_from_name(dtype->text, e.dtype))
      bad("dtype one of F32, F64, F16, BF16, I64, I32", "'" + dtype->text + "'");

    if (shape->kind != JsonValue::Kind::array) bad("shape as an array", shape->kind_name());
    // Like the reference implementation, a product that overflows is rejected even if a
    // later dimension is zero.
    const std::uint64_t limit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    std::uint64_t numel = 1;
    for (const auto& d : shape->items) {
      std::uint64_t dim = 0;
      if (!json_to_u64(d, limit, dim))
        bad("shape of non-negative integers below 2^63",
            d.kind == JsonValue::Kind::number ? d.text : std::string(d.kind_name()));
      e.shape.push_back(static_cast<std::int64_t>(dim));
      if (dim != 0 && numel > limit / dim)
        bad("a shape whose element count fits in 64 bits", shape_string(e.shape) + "...");
      numel *= dim;
    }

    if (offsets->kind != JsonValue::Kind::array || offsets->items.size() != 2)
      bad("data_offsets as an array [begin, end]",
          offsets->kind == JsonValue::Kind::array
              ? concat("an array of ", offsets->items.size(), " values")
              : std::string(offsets->kind_name()));
    if (!json_to_u64(offsets->items[0], std::numeric_limits<std::uint64_t>::max(), e.begin) ||
        !json_to_u64(offsets->items[1], std::numeric_limits<std::uint64_t>::max(), e.end))
      bad("data_offsets of non-negative integers",
          concat(offsets->items[0].kind == JsonValue::Kind::number ? offsets->items[0].text
                                                                   : offsets->items[0].kind_name(),
                 ", ",
                 offsets->items[1].kind == JsonValue::Kind::number ? offsets->items[1].text
                                                                   : offsets->items[1].kind_name()));
    if (e.end < e.begin) bad("data_offsets begin <= end", concat("[", e.begin, ", ", e.end, "]"));
    if (e.end > data_size)
      bad(concat("data_offsets within the data region of ", data_size, " bytes"),
          concat("[", e.begin, ", ", e.end, "]"));
    // numel * size can exceed 64 bits only for a tensor far larger than any file.
    const std::uint64_t size = dtype_size(e.dtype);
    const bool fits = numel <= std::numeric_limits<std::uint64_t>::max() / size;
    if (!fits || numel * size != e.end - e.begin)
      bad(concat(fits ? concat(numel * size, " bytes") : std::string("more than 2^64 bytes"),
                 " for ", dtype_name(e.dtype), " ", shape_string(e.shape)),
          concat(e.end - e.begin, " bytes at data_offsets [", e.begin, ", ", e.end, "]"));
    header.entries.push_back(std::move(e));
  }

  // The reference implementation requires the tensors to tile the data region exactly:
  // sorted by offset, each starts where the previous ended, the last ends at the file's end.
  std::sort(header.entries.begin(), header.entries.end(),
            [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
              return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
            });
  std::uint64_t cursor = 0;
  const SafetensorsEntry* previous = nullptr;
  for (const auto& e : header.entries) {
    if (e.begin < cursor)
      fail<FormatError>(file, ": tensor '", e.key, "': expected data_offsets not overlapping '",
                        previous->key, "' (which ends at ", cursor, "), got [", e.begin, ", ",
                        e.end, "]");
    if (e.begin > cursor)
      fail<FormatError>(file, ": tensor '", e.key,
                        "': expected data to start where the previous tensor ends (byte ", cursor,
                        "), got a gap: data_offsets [", e.begin, ", ", e.end, "]");
    cursor = e.end;
    previous = &e;
  }
  if (cursor != data_size)
    fail<FormatError>(file, ": expected the tensors to cover the ", data_size,
                      "-byte data region, got ", data_size - cursor,
                      " trailing bytes no tensor uses (data ends at ", cursor, ")");
  return header;
}

// The header length from the 8-byte prefix, checked against the file size and the cap.
inline std::uint64_t safetensors_header_length(const unsigned char* first8, std::uint64_t file_size,
                                               const std::string& name) {
  if (file_size < 8)
    fail<FormatError>(name, ": expected at least 8 bytes (the header length), got ", file_size,
                      " bytes");
  std::uint64_t n = 0;
  std::memcpy(&n, first8, 8);
  if (n < 2 || n > kSafetensorsMaxHeader || n > file_size - 8)
    fail<FormatError>(name, ": expected a header length between 2 and ",
                      std::min<std::uint64_t>(kSafetensorsMaxHeader, file_size - 8),
                      " bytes (file size ", file_size, "), got ", n);
  return n;
}

// Parses and validates the `n` header bytes of a file of `file_size` bytes; the entries
// come back in data order.
inline SafetensorsHeader parse_safetensors_header(const char* header_text, std::uint64_t n,
                                                  std::uint64_t file_size,
                                                  const std::string& name) {
  if (header_text[0] != '{')
    fail<FormatError>(name, ": expected the header to start with '{', got byte 0x", std::hex,
                      static_cast<unsigned>(static_cast<unsigned char>(header_text[0])));
  const JsonValue root = JsonParser(header_text, static_cast<std::size_t>(n), name).parse_document();
  return validate_safetensors_header(root, file_size - 8 - n, name);
}

inline Tensor safetensors_tensor(const SafetensorsEntry& e, const unsigned char* src,
                                 const SafetensorsReadOptions& options) {
  if (options.widen_half && (e.dtype == DType::F16 || e.dtype == DType::BF16))
    return widen_half_tensor(e.dtype, e.shape, src);
  Tensor t(e.dtype, e.shape);
  if (t.byte_size() > 0) std::memcpy(t.raw(), src, t.byte_size());
  return t;
}

}  // namespace detail

// Parses a whole safetensors image already in memory; `name` is used in error messages.
inline SafetensorsFile parse_safetensors(const unsigned char* bytes, std::size_t size,
                                         const std::string& name,
                                         const SafetensorsReadOptions& options = {}) {
  const std::uint64_t n = detail::safetensors_header_length(bytes, size, name);
  detail::SafetensorsHeader header = detail::parse_safetensors_header(
      reinterpret_cast<const char*>(bytes + 8), n, size, name);
  SafetensorsFile out;
  out.tensors.set_source(name);
  out.metadata = std::move(header.metadata);
  const unsigned char* data = bytes + 8 + n;
  for (const auto& e : header.entries)
    out.tensors.insert(e.key, detail::safetensors_tensor(e, data + e.begin, options));
  return out;
}

namespace detail {
// Opens `path`, reads and validates the header; leaves `in` at the first data byte.
inline SafetensorsHeader open_safetensors(std::ifstream& in, const std::string& path) {
  in.open(path, std::ios::binary | std::ios::ate);
  if (!in) fail<IoError>(path, ": expected a readable safetensors file, got an open failure");
  const std::streamoff end = in.tellg();
  if (end < 0) fail<IoError>(path, ": expected a seekable file, got tellg failure");
  const auto file_size = static_cast<std::uint64_t>(end);
  in.seekg(0);
  unsigned char first8[8] = {};
  if (file_size >= 8 && !in.read(reinterpret_cast<char*>(first8), 8))
    fail<IoError>(path, ": expected to read the header length, got a read error");
  const std::uint64_t n = safetensors_header_length(first8, file_size, path);
  std::string text(static_cast<std::size_t>(n), '\0');
  if (!in.read(&text[0], static_cast<std::streamsize>(n)))
    fail<IoError>(path, ": expected ", n, " header bytes, got a read error");
  return parse_safetensors_header(text.data(), n, file_size, path);
}
}  // namespace detail

// Tensors and metadata of a safetensors file. The file is streamed: the header is read and
// validated against the file size first, then each tensor's bytes go straight into its
// storage, so peak memory is the tensors themselves (plus one tensor when widening halves).
inline SafetensorsFile read_safetensors_file(const std::string& path,
                                             const SafetensorsReadOptions& options = {}) {
  std::ifstream in;
  detail::SafetensorsHeader header = detail::open_safetensors(in, path);
  SafetensorsFile out;
  out.tensors.set_source(path);
  out.metadata = std::move(header.metadata);
  std::vector<unsigned char> half;
  for (const auto& e : header.entries) {  // contiguous and in data order: no seeking
    const auto bytes = static_cast<std::streamsize>(e.end - e.begin);
    const bool widen = options.widen_half && (e.dtype == DType::F16 || e.dtype == DType::BF16);
    Tensor t = widen ? Tensor() : Tensor(e.dtype, e.shape);
    unsigned char* dst = t.raw();
    if (widen) {
      half.resize(static_cast<std::size_t>(bytes));
      dst = half.data();
    }
    if (bytes > 0 && !in.read(reinterpret_cast<char*>(dst), bytes))
      detail::fail<IoError>(path, ": tensor '", e.key, "': expected ", bytes,
                            " bytes, got a read error (file changed while reading?)");
    if (widen) t = detail::widen_half_tensor(e.dtype, e.shape, half.data());
    out.tensors.insert(e.key, std::move(t));
  }
  return out;
}

inline StateDict read_safetensors(const std::string& path,
                                  const SafetensorsReadOptions& options = {}) {
  return read_safetensors_file(path, options).tensors;
}

// Only the "__metadata__" strings; reads just the header (the whole header is validated).
inline std::map<std::string, std::string> read_safetensors_metadata(const std::string& path) {
  std::ifstream in;
  return detail::open_safetensors(in, path).metadata;
}

namespace detail {

// What write_safetensors stores: keys sorted in the header, data ordered by element size
// (largest first) then name so every tensor stays aligned to its element size once the
// header is padded with spaces to a multiple of 8 bytes, as the HF writer does.
struct SafetensorsLayout {
  std::string header;                   // JSON plus padding
  std::vector<const Tensor*> data_order;
  std::uint64_t data_size = 0;
};

inline SafetensorsLayout safetensors_layout(const StateDict& dict,
                                            const std::map<std::string, std::string>& metadata) {
  struct Item {
    const std::string* key;
    const Tensor* tensor;
    std::uint64_t begin, end;
  };
  std::vector<Item> order;
  for (const auto& kv : dict) {
    if (kv.first == "__metadata__")
      fail<ArgumentError>("write_safetensors: expected tensor names other than '__metadata__', got it");
    order.push_back({&kv.first, &kv.second, 0, 0});
  }
  std::stable_sort(order.begin(), order.end(), [](const Item& a, const Item& b) {
    return dtype_size(a.tensor->dtype()) > dtype_size(b.tensor->dtype());
  });
  SafetensorsLayout layout;
  for (auto& it : order) {
    it.begin = layout.data_size;
    layout.data_size += it.tensor->byte_size();
    it.end = layout.data_size;
    layout.data_order.push_back(it.tensor);
  }
  std::map<std::string, const Item*> by_name;
  for (const auto& it : order) by_name[*it.key] = &it;

  std::string& json = layout.header;
  json = "{";
  bool first = true;
  if (!metadata.empty()) {
    json += "\"__metadata__\":{";
    for (const auto& kv : metadata) {
      if (!first) json += ',';
      first = false;
      append_json_string(json, kv.first);
      json += ':';
      append_json_string(json, kv.second);
    }
    json += '}';
    first = false;
  }
  for (const auto& kv : by_name) {
    const Item& it = *kv.second;
    if (!first) json += ',';
    first = false;
    append_json_string(json, kv.first);
    json += ":{\"dtype\":\"";
    json += dtype_name(it.tensor->dtype());
    json += "\",\"shape\":[";
    for (std::size_t i = 0; i < it.tensor->shape().size(); ++i) {
      if (i) json += ',';
      json += std::to_string(it.tensor->shape()[i]);
    }
    json += "],\"data_offsets\":[" + std::to_string(it.begin) + "," + std::to_string(it.end) + "]}";
  }
  json += '}';
  json.append((8 - json.size() % 8) % 8, ' ');
  return layout;
}

}  // namespace detail

// The bytes write_safetensors stores (e.g. for an in-memory round trip).
inline std::vector<unsigned char> serialize_safetensors(
    const StateDict& dict, const std::map<std::string, std::string>& metadata = {}) {
  const detail::SafetensorsLayout layout = detail::safetensors_layout(dict, metadata);
  std::vector<unsigned char> out(8 + layout.header.size() + layout.data_size);
  const std::uint64_t n = layout.header.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, layout.header.data(), layout.header.size());
  std::size_t at = 8 + layout.header.size();
  for (const Tensor* t : layout.data_order) {
    if (t->byte_size() > 0) std::memcpy(out.data() + at, t->raw(), t->byte_size());
    at += t->byte_size();
  }
  return out;
}

// Tensors are streamed to the file (no second copy of the checkpoint in memory).
inline void write_safetensors(const std::string& path, const StateDict& dict,
                              const std::map<std::string, std::string>& metadata = {}) {
  const detail::SafetensorsLayout layout = detail::safetensors_layout(dict, metadata);
  detail::write_file_atomically(path, [&](std::ofstream& out) {
    const std::uint64_t n = layout.header.size();
    char len[8];
    std::memcpy(len, &n, 8);
    out.write(len, 8);
    out.write(layout.header.data(), static_cast<std::streamsize>(layout.header.size()));
    for (const Tensor* t : layout.data_order)
      if (t->byte_size() > 0)
        out.write(reinterpret_cast<const char*>(t->raw()), static_cast<std::streamsize>(t->byte_size()));
  });
}

}  // namespace tokenmix

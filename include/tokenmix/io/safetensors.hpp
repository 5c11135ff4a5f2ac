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
// The header's JSON goes through nlohmann-json via parse_json_text (io/json_config.hpp), which
// also rejects what nlohmann alone accepts but the reference implementation does not: duplicate
// keys and text after a NUL byte. Nesting is capped at 64 levels (a real header has 3).
// The writer builds its header with nlohmann too.

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
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
#include "tokenmix/io/json_config.hpp"
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

// Nesting the header may have: a real one is 3 deep (header, tensor entry, shape).
constexpr std::size_t kSafetensorsMaxDepth = 64;

// A JSON value's kind for messages ("got an array").
inline const char* json_kind(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::boolean: return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float: return "a number";
    case nlohmann::json::value_t::string: return "a string";
    case nlohmann::json::value_t::array: return "an array";
    case nlohmann::json::value_t::object: return "an object";
    default: return "binary data";
  }
}

// A number as its JSON text, anything else by kind.
inline std::string json_got(const nlohmann::json& v) {
  return v.is_number() ? v.dump() : std::string(json_kind(v));
}

// What the header should have held where nlohmann found a syntax error, keyed by a phrase of
// nlohmann's description (which becomes the "got" part). Order matters: a trailing token is
// also an "invalid literal", and a bad string in a key also says "expected string literal".
// Wording nlohmann does not use (any more) falls back to "valid JSON".
inline const char* safetensors_json_expectation(const std::string& detail) {
  static const std::pair<const char*, const char*> table[] = {
      {"; expected end of input", "end of the header"},
      {"ill-formed UTF-8", "valid UTF-8"},
      {"missing closing quote", "a closing '\"'"},
      {"surrogate U+DC00..U+DFFF must follow", "no lone low surrogate"},
      {"must be followed by U+DC00..U+DFFF", "a low surrogate after a high surrogate"},
      {"control character", "no raw control characters in strings"},
      {"forbidden character after backslash", "a valid escape"},
      {"must be followed by 4 hex digits", "4 hex digits after \\u"},
      {"NUL byte", "no NUL bytes"},
      {"number overflow", "numbers within the range of double"},
      {"invalid number", "a well-formed number"},
      {"invalid literal", "a value"},
      {"expected '[', '{', or a literal", "a value"},
      {"expected string literal", "a member name string"},
      {"expected ':'", "':'"},
      {"expected '}'", "',' or '}'"},
      {"expected ']'", "',' or ']'"},
  };
  for (const auto& e : table)
    if (detail.find(e.first) != std::string::npos) return e.second;
  return "valid JSON";
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

// A JSON value as a non-negative integer that fits in `limit`, or false. (Fractions,
// exponents and integers beyond 64 bits are floats to nlohmann: all rejected.)
inline bool json_to_u64(const nlohmann::json& v, std::uint64_t limit, std::uint64_t& out) {
  if (!v.is_number_unsigned()) return false;
  const auto value = v.get<std::uint64_t>();
  if (value > limit) return false;
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

// Validates a parsed header against a data region of `data_size` bytes. (Duplicate keys were
// rejected while parsing: nlohmann's objects could not hold them.)
inline SafetensorsHeader validate_safetensors_header(const nlohmann::json& root,
                                                     std::uint64_t data_size,
                                                     const std::string& file) {
  if (!root.is_object())
    fail<FormatError>(file, ": expected the safetensors header to be a JSON object, got ",
                      json_kind(root));
  SafetensorsHeader header;
  for (const auto& member : root.items()) {
    const std::string& key = member.key();
    const nlohmann::json& value = member.value();
    if (key == "__metadata__") {
      if (!value.is_object())
        fail<FormatError>(file, ": '__metadata__': expected an object of strings, got ",
                          json_kind(value));
      for (const auto& m : value.items()) {
        if (!m.value().is_string())
          fail<FormatError>(file, ": '__metadata__' entry '", m.key(),
                            "': expected a string value, got ", json_kind(m.value()));
        header.metadata.emplace(m.key(), m.value().get<std::string>());
      }
      continue;
    }
    auto bad = [&](const std::string& expected, const std::string& got) {
      fail<FormatError>(file, ": tensor '", key, "': expected ", expected, ", got ", got);
    };
    if (!value.is_object()) bad("an object with dtype, shape and data_offsets", json_kind(value));
    for (const auto& f : value.items())
      if (f.key() != "dtype" && f.key() != "shape" && f.key() != "data_offsets")
        bad("only the fields dtype, shape and data_offsets", "field '" + f.key() + "'");
    const auto dtype = value.find("dtype");
    const auto shape = value.find("shape");
    const auto offsets = value.find("data_offsets");
    if (dtype == value.end()) bad("a 'dtype' field", "none");
    if (shape == value.end()) bad("a 'shape' field", "none");
    if (offsets == value.end()) bad("a 'data_offsets' field", "none");

    SafetensorsEntry e;
    e.key = key;
    if (!dtype->is_string()) bad("dtype as a string", json_kind(*dtype));
    const std::string& dtype_text = dtype->get_ref<const std::string&>();
    if (!safetensors_dtype_from_name(dtype_text, e.dtype))
      bad("dtype one of F32, F64, F16, BF16, I64, I32", "'" + dtype_text + "'");

    if (!shape->is_array()) bad("shape as an array", json_kind(*shape));
    // Like the reference implementation, a product that overflows is rejected even if a
    // later dimension is zero.
    const std::uint64_t limit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    std::uint64_t numel = 1;
    for (const auto& d : *shape) {
      std::uint64_t dim = 0;
      if (!json_to_u64(d, limit, dim)) bad("shape of non-negative integers below 2^63", json_got(d));
      e.shape.push_back(static_cast<std::int64_t>(dim));
      if (dim != 0 && numel > limit / dim)
        bad("a shape whose element count fits in 64 bits", shape_string(e.shape) + "...");
      numel *= dim;
    }

    if (!offsets->is_array() || offsets->size() != 2)
      bad("data_offsets as an array [begin, end]",
          offsets->is_array() ? concat("an array of ", offsets->size(), " values")
                              : std::string(json_kind(*offsets)));
    const nlohmann::json& first = (*offsets)[0];
    const nlohmann::json& last = (*offsets)[1];
    if (!json_to_u64(first, std::numeric_limits<std::uint64_t>::max(), e.begin) ||
        !json_to_u64(last, std::numeric_limits<std::uint64_t>::max(), e.end))
      bad("data_offsets of non-negative integers", concat(json_got(first), ", ", json_got(last)));
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
  nlohmann::json root;
  JsonParseOptions options;
  options.max_depth = kSafetensorsMaxDepth;
  try {
    root = parse_json_text(header_text, static_cast<std::size_t>(n), name, options);
  } catch (const JsonParseError& e) {
    fail<FormatError>(name, ": expected ", safetensors_json_expectation(e.detail()),
                      " in the JSON header at byte ", e.byte(), ", got ", e.detail());
  } catch (const JsonDuplicateKeyError& e) {
    // The same wording as every other problem with a tensor entry or the metadata.
    const auto& path = e.path();
    if (path.empty())
      fail<FormatError>(name, ": tensor '", e.key(),
                        "': expected each key once in the header, got a duplicate key");
    if (path.size() == 1 && path[0] == "__metadata__")
      fail<FormatError>(name, ": '__metadata__' entry '", e.key(),
                        "': expected each key once, got a duplicate key");
    if (path.size() == 1)
      fail<FormatError>(name, ": tensor '", path[0], "': expected field '", e.key(),
                        "' once, got it twice");
    throw;  // deeper down, where no valid header has objects: the generic message will do
  }
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

  // ordered_json keeps "__metadata__" first, as the HF writer does, whatever the tensor
  // names sort like; both maps are already in key order.
  nlohmann::ordered_json json = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json& meta = json["__metadata__"] = nlohmann::ordered_json::object();
    for (const auto& kv : metadata) meta[kv.first] = kv.second;
  }
  for (const auto& kv : by_name) {
    const Item& it = *kv.second;
    nlohmann::ordered_json& entry = json[kv.first] = nlohmann::ordered_json::object();
    entry["dtype"] = dtype_name(it.tensor->dtype());
    entry["shape"] = it.tensor->shape();
    entry["data_offsets"] = {it.begin, it.end};
  }
  try {
    layout.header = json.dump();
  } catch (const nlohmann::json::type_error& e) {
    // Names and metadata are copied into the header as they are; readers require UTF-8.
    fail<ArgumentError>("write_safetensors: expected tensor names and metadata in valid UTF-8, "
                        "got ", e.what());
  }
  layout.header.append((8 - layout.header.size() % 8) % 8, ' ');
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

#pragma once
// JSON configuration files (model configs, fixture manifests) and JSON embedded in other
// formats (the safetensors header), on nlohmann-json.
//
//   JsonConfig cfg = JsonConfig::read("config.json");
//   const auto dim = cfg.get<Index>("hidden_size");          // required
//   const double eps = cfg.get<double>("layer_norm_eps", 1e-5);  // optional (absent or null)
//   cfg.warn_unknown_fields({"hidden_size", "layer_norm_eps"});  // one line on std::cerr
//
// Syntax errors become FormatError (JsonParseError) naming the file, line, column and byte;
// duplicate keys (which nlohmann would silently collapse to the last one), nesting deeper
// than JsonParseOptions::max_depth and fields of the wrong type are FormatErrors too.
// Typed access is strict: an integer field must hold an integer (not 3.0 or "3") and must
// fit the requested type; a floating field accepts any number.

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tokenmix/core/error.hpp"

namespace tokenmix {

namespace detail {

// Short text of a JSON value for error messages.
inline std::string json_excerpt(const nlohmann::json& j) {
  std::string s = j.dump();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return concat(j.type_name(), " ", s);
}

template <class T>
struct is_std_vector : std::false_type {};
template <class T, class A>
struct is_std_vector<std::vector<T, A>> : std::true_type {};

template <class T>
T json_as(const nlohmann::json& j, const std::string& where) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!j.is_boolean()) fail<FormatError>(where, ": expected a boolean, got ", json_excerpt(j));
    return j.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    if (!j.is_number_integer())
      fail<FormatError>(where, ": expected an integer, got ", json_excerpt(j));
    if (j.is_number_unsigned()) {
      const auto v = j.get<std::uint64_t>();
      if (v > static_cast<std::uint64_t>(std::numeric_limits<T>::max()))
        fail<FormatError>(where, ": expected an integer at most ",
                          +std::numeric_limits<T>::max(), ", got ", v);
      return static_cast<T>(v);
    }
    const auto v = j.get<std::int64_t>();
    if ((std::is_unsigned_v<T> && v < 0) ||
        (std::is_signed_v<T> &&
         (v < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
          v > static_cast<std::int64_t>(std::numeric_limits<T>::max()))))
      fail<FormatError>(where, ": expected an integer in [", +std::numeric_limits<T>::min(), ", ",
                        +std::numeric_limits<T>::max(), "], got ", v);
    return static_cast<T>(v);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!j.is_number()) fail<FormatError>(where, ": expected a number, got ", json_excerpt(j));
    const double v = j.get<double>();
    if (std::abs(v) > static_cast<double>(std::numeric_limits<T>::max()))
      fail<FormatError>(where, ": expected a number within the range of ",
                        sizeof(T) == 4 ? "float" : "the requested type", ", got ", j.dump());
    return static_cast<T>(v);
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!j.is_string()) fail<FormatError>(where, ": expected a string, got ", json_excerpt(j));
    return j.get<std::string>();
  } else if constexpr (is_std_vector<T>::value) {
    if (!j.is_array()) fail<FormatError>(where, ": expected an array, got ", json_excerpt(j));
    T out;
    out.reserve(j.size());
    for (std::size_t i = 0; i < j.size(); ++i)
      out.push_back(json_as<typename T::value_type>(j[i], concat(where, "[", i, "]")));
    return out;
  } else {
    static_assert(sizeof(T) == 0, "tokenmix::JsonConfig: unsupported field type");
  }
}

}  // namespace detail

struct JsonParseOptions {
  // Deepest nesting of arrays and objects accepted; 0 means no limit. nlohmann parses
  // without recursion, but dump() and any walk over the result recurse, so text from an
  // untrusted source must not choose the depth. No config comes near the default.
  std::size_t max_depth = 256;
};

// Text that is not valid JSON (syntax, encoding, a number beyond double). what() is the
// full message; the parts let a caller with its own wording (e.g. a file format that embeds
// JSON) rephrase it.
class JsonParseError : public FormatError {
 public:
  JsonParseError(const std::string& message, std::size_t byte, std::size_t line,
                 std::size_t column, std::string detail)
      : FormatError(message), byte_(byte), line_(line), column_(column),
        detail_(std::move(detail)) {}
  std::size_t byte() const noexcept { return byte_; }      // 0-based offset of the bad byte
  std::size_t line() const noexcept { return line_; }      // 1-based
  std::size_t column() const noexcept { return column_; }  // 1-based, counted in bytes
  const std::string& detail() const noexcept { return detail_; }  // nlohmann's description

 private:
  std::size_t byte_, line_, column_;
  std::string detail_;
};

// A key repeated within one object; nlohmann would keep only the last value.
class JsonDuplicateKeyError : public FormatError {
 public:
  JsonDuplicateKeyError(const std::string& message, std::string key, std::vector<std::string> path)
      : FormatError(message), key_(std::move(key)), path_(std::move(path)) {}
  const std::string& key() const noexcept { return key_; }
  // Where the object holding the duplicate sits: a member name per enclosing object, an
  // element index (in decimal) per enclosing array; empty for the top-level value.
  const std::vector<std::string>& path() const noexcept { return path_; }

 private:
  std::string key_;
  std::vector<std::string> path_;
};

namespace detail {

// Builds the DOM from nlohmann's SAX events, which is where duplicate keys and nesting depth
// can be seen. (json::parse with a parser callback could see them too, but in nlohmann 3.11
// it rescans the parent container at every closing '}', which is quadratic in the number of
// members: 0.5 MB of {"k":{}, ...} takes seconds.) Only the public basic_json interface is
// used, so JSON_DIAGNOSTICS builds keep their parent links.
class JsonDomBuilder final : public nlohmann::json_sax<nlohmann::json> {
 public:
  using json = nlohmann::json;

  explicit JsonDomBuilder(std::size_t max_depth) : max_depth_(max_depth) {}

  bool null() override { return add(json(nullptr)); }
  bool boolean(bool v) override { return add(json(v)); }
  bool number_integer(number_integer_t v) override { return add(json(v)); }
  bool number_unsigned(number_unsigned_t v) override { return add(json(v)); }
  bool number_float(number_float_t v, const string_t&) override { return add(json(v)); }
  bool string(string_t& v) override { return add(json(v)); }
  bool binary(binary_t& v) override { return add(json(v)); }

  bool start_object(std::size_t) override { return open(json::value_t::object); }
  bool start_array(std::size_t) override { return open(json::value_t::array); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }

  bool key(string_t& k) override {
    const auto placed = stack_.back()->emplace(k, nullptr);
    if (!placed.second) {
      duplicate_ = k;
      return false;
    }
    slot_ = &placed.first.value();
    return true;
  }

  bool parse_error(std::size_t position, const std::string& last_token,
                   const json::exception& ex) override {
    failed_ = true;
    error_position_ = position;
    error_token_ = last_token;
    error_what_ = ex.what();
    syntax_error_ = dynamic_cast<const json::parse_error*>(&ex) != nullptr;
    return false;
  }

  json& result() { return root_; }
  bool too_deep() const { return too_deep_; }
  bool failed() const { return failed_; }
  const std::string& duplicate() const { return duplicate_; }
  std::size_t error_position() const { return error_position_; }
  const std::string& error_token() const { return error_token_; }
  const std::string& error_what() const { return error_what_; }
  bool syntax_error() const { return syntax_error_; }

  // Member names and element indices leading to the innermost open container.
  std::vector<std::string> open_path() const {
    std::vector<std::string> path;
    for (std::size_t i = 0; i + 1 < stack_.size(); ++i) {
      const json& parent = *stack_[i];
      const json* child = stack_[i + 1];
      if (parent.is_array()) {
        path.push_back(std::to_string(parent.size() - 1));  // an open child is the last one
      } else {
        for (auto it = parent.begin(); it != parent.end(); ++it)
          if (&*it == child) path.push_back(it.key());
      }
    }
    return path;
  }

 private:
  json* place(json&& value) {
    if (stack_.empty()) {
      root_ = std::move(value);
      return &root_;
    }
    json& parent = *stack_.back();
    if (parent.is_array()) return &parent.emplace_back(std::move(value));
    *slot_ = std::move(value);
    return slot_;
  }
  bool add(json&& value) {
    place(std::move(value));
    return true;
  }
  bool open(json::value_t type) {
    if (max_depth_ != 0 && stack_.size() >= max_depth_) {
      too_deep_ = true;
      return false;
    }
    stack_.push_back(place(json(type)));
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }

  std::size_t max_depth_;
  json root_;
  std::vector<json*> stack_;  // open containers, outermost first
  json* slot_ = nullptr;      // the value of the key just read in the innermost object
  bool too_deep_ = false;
  bool failed_ = false;
  std::string duplicate_;
  std::size_t error_position_ = 0;
  std::string error_token_;
  std::string error_what_;
  bool syntax_error_ = false;
};

inline void json_line_column(const char* data, std::size_t size, std::size_t byte,
                             std::size_t& line, std::size_t& column) {
  line = 1;
  column = 1;
  for (std::size_t i = 0; i < byte && i < size; ++i) {
    if (data[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
}

// nlohmann's description without its "[json.exception...] parse error at ...: " prefix, and
// with a long offending token (nlohmann quotes all of it, up to the whole text) cut to its end.
inline std::string json_error_detail(std::string what, const std::string& token) {
  auto pos = what.find("parse error");
  pos = pos != std::string::npos ? what.find(": ", pos) : what.find("] ");
  if (pos != std::string::npos) what = what.substr(pos + 2);
  constexpr std::size_t kKeep = 48;
  if (token.size() > kKeep + 16) {
    const auto at = what.find(token);
    if (at != std::string::npos) {
      std::size_t from = token.size() - kKeep;
      while (from < token.size() && (static_cast<unsigned char>(token[from]) & 0xc0) == 0x80)
        ++from;  // do not start inside a UTF-8 sequence
      what.replace(at, token.size(), "..." + token.substr(from));
    }
  }
  return what;
}

}  // namespace detail

// Parses the JSON text data[0, size); `name` (a file name) is used in error messages.
// Besides syntax, this rejects what nlohmann alone would let through: a key repeated in one
// object (JsonDuplicateKeyError), nesting beyond options.max_depth, and a NUL byte (nlohmann
// treats it as the end of the input and would ignore everything after it).
inline nlohmann::json parse_json_text(const char* data, std::size_t size, const std::string& name,
                                      const JsonParseOptions& options = {}) {
  detail::JsonDomBuilder builder(options.max_depth);
  const bool ok = nlohmann::json::sax_parse(data, data + size, &builder);
  const void* nul = std::memchr(data, 0, size);
  if (builder.failed() || (ok && nul)) {
    std::size_t byte;
    std::string what;
    if (builder.failed()) {
      // nlohmann counts the offending byte 1-based.
      byte = builder.error_position() == 0 ? 0 : builder.error_position() - 1;
      what = detail::json_error_detail(builder.error_what(), builder.error_token());
      if (byte < size && data[byte] == '\0') what = "a NUL byte (" + what + ")";
    } else {
      byte = static_cast<std::size_t>(static_cast<const char*>(nul) - data);
      what = "a NUL byte after the JSON value";
    }
    std::size_t line, column;
    detail::json_line_column(data, size, byte, line, column);
    // A number out of range has a well-formed token; the message then says just what it is.
    const std::string message =
        builder.failed() && !builder.syntax_error()
            ? detail::concat(name, ": expected valid JSON, got ", what, " (byte offset ", byte, ")")
            : detail::concat(name, ":", line, ":", column, ": expected valid JSON, got ", what,
                             " (byte offset ", byte, ")");
    throw JsonParseError(message, byte, line, column, what);
  }
  if (builder.too_deep())
    detail::fail<FormatError>(name, ": expected JSON nesting at most ", options.max_depth,
                              " deep, got deeper nesting");
  if (!builder.duplicate().empty()) {
    std::vector<std::string> path = builder.open_path();
    nlohmann::json::json_pointer where;
    for (const auto& part : path) where /= part;
    const std::string message =
        detail::concat(name, ": expected each key once per object, got duplicate key '",
                       builder.duplicate(), "'",
                       path.empty() ? std::string() : " in " + where.to_string());
    throw JsonDuplicateKeyError(message, builder.duplicate(), std::move(path));
  }
  return std::move(builder.result());
}

inline nlohmann::json parse_json_text(const std::string& text, const std::string& name,
                                      const JsonParseOptions& options = {}) {
  return parse_json_text(text.data(), text.size(), name, options);
}

inline nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) detail::fail<IoError>(path, ": expected a readable JSON file, got an open failure");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) detail::fail<IoError>(path, ": expected to read the file, got a read error");
  return parse_json_text(text, path);
}

// A JSON object with typed, strict field access.
class JsonConfig {
 public:
  JsonConfig(nlohmann::json object, std::string source)
      : json_(std::move(object)), source_(std::move(source)) {
    if (!json_.is_object())
      detail::fail<FormatError>(source_, ": expected a JSON object, got ",
                                detail::json_excerpt(json_));
  }

  static JsonConfig read(const std::string& path) { return JsonConfig(read_json_file(path), path); }
  static JsonConfig parse(const std::string& text, const std::string& name) {
    return JsonConfig(parse_json_text(text, name), name);
  }

  const nlohmann::json& json() const { return json_; }
  const std::string& source() const { return source_; }
  bool has(const std::string& key) const { return json_.contains(key); }

  // A required field; absent -> FormatError.
  template <class T>
  T get(const std::string& key) const {
    const auto it = json_.find(key);
    if (it == json_.end())
      detail::fail<FormatError>(source_, ": expected field '", key, "', got none");
    return detail::json_as<T>(*it, where(key));
  }

  // An optional field; absent or null gives `fallback`, a present value must have the type.
  template <class T>
  T get(const std::string& key, const T& fallback) const {
    const auto it = json_.find(key);
    if (it == json_.end() || it->is_null()) return fallback;
    return detail::json_as<T>(*it, where(key));
  }
  std::string get(const std::string& key, const char* fallback) const {
    return get<std::string>(key, std::string(fallback));
  }

  // A nested object as its own config (e.g. "text_config"); its messages name the path.
  JsonConfig object(const std::string& key) const {
    const auto it = json_.find(key);
    if (it == json_.end())
      detail::fail<FormatError>(source_, ": expected field '", key, "', got none");
    if (!it->is_object())
      detail::fail<FormatError>(where(key), ": expected an object, got ", detail::json_excerpt(*it));
    return JsonConfig(*it, source_ + ": '" + key + "'");
  }

  // Fields not in `known`, in file order.
  std::vector<std::string> unknown_fields(const std::vector<std::string>& known) const {
    const std::set<std::string> k(known.begin(), known.end());
    std::vector<std::string> out;
    for (const auto& item : json_.items())
      if (!k.count(item.key())) out.push_back(item.key());
    return out;
  }

  // Writes one line naming the unknown fields, if there are any; returns whether it did.
  bool warn_unknown_fields(const std::vector<std::string>& known,
                           std::ostream& out = std::cerr) const {
    const auto unknown = unknown_fields(known);
    if (unknown.empty()) return false;
    std::ostringstream line;
    line << "tokenmix: warning: " << source_ << ": ignoring " << unknown.size()
         << (unknown.size() == 1 ? " unknown field:" : " unknown fields:");
    for (std::size_t i = 0; i < unknown.size(); ++i) line << (i ? ", " : " ") << unknown[i];
    out << line.str() << '\n';
    return true;
  }

 private:
  std::string where(const std::string& key) const { return source_ + ": field '" + key + "'"; }

  nlohmann::json json_;
  std::string source_;
};

}  // namespace tokenmix

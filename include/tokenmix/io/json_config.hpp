#pragma once
// JSON configuration files (model configs, fixture manifests) on nlohmann-json. Only code
// that includes this header needs nlohmann-json; the rest of tokenmix does not.
//
//   JsonConfig cfg = JsonConfig::read("config.json");
//   const auto dim = cfg.get<Index>("hidden_size");          // required
//   const double eps = cfg.get<double>("layer_norm_eps", 1e-5);  // optional (absent or null)
//   cfg.warn_unknown_fields({"hidden_size", "layer_norm_eps"});  // one line on std::cerr
//
// Syntax errors become FormatError naming the file, line, column and byte; so do duplicate
// keys (which nlohmann would silently collapse to the last one) and fields of the wrong
// type. Typed access is strict: an integer field must hold an integer (not 3.0 or "3") and
// must fit the requested type; a floating field accepts any number.

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
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

// Parses JSON text; `name` (a file name) is used in error messages.
inline nlohmann::json parse_json_text(const std::string& text, const std::string& name) {
  // Track the keys of every open object so a repeated key is an error, not a silent overwrite.
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto callback = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start) {
      open_objects.emplace_back();
    } else if (event == E::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == E::key && !open_objects.empty() && duplicate.empty()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second) duplicate = key;
    }
    return true;
  };
  nlohmann::json out;
  try {
    out = nlohmann::json::parse(text, callback);
  } catch (const nlohmann::json::parse_error& e) {
    // nlohmann's byte is 1-based and points at the offending character.
    const std::size_t byte = e.byte == 0 ? 0 : e.byte - 1;
    std::size_t line = 1, column = 1;
    for (std::size_t i = 0; i < byte && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    std::string what = e.what();
    const auto pos = what.find(": ", what.find("parse error"));
    if (pos != std::string::npos) what = what.substr(pos + 2);
    detail::fail<FormatError>(name, ":", line, ":", column, ": expected valid JSON, got ", what,
                              " (byte offset ", byte, ")");
  } catch (const nlohmann::json::exception& e) {
    // e.g. out_of_range 406 for a number literal beyond double ("1e999"): no position given.
    std::string what = e.what();
    const auto pos = what.find("] ");
    if (pos != std::string::npos) what = what.substr(pos + 2);
    detail::fail<FormatError>(name, ": expected valid JSON, got ", what);
  }
  if (!duplicate.empty())
    detail::fail<FormatError>(name, ": expected each key once per object, got duplicate key '",
                              duplicate, "'");
  return out;
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

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "tokenmix/io/npy.hpp"
#include "tokenmix/io/safetensors.hpp"

namespace test_io_safetensors {

using namespace tokenmix;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

const std::string kDataDir = std::string(TOKENMIX_TEST_DATA_DIR) + "/io/";

nlohmann::json expected_json() {
  std::ifstream in(kDataDir + "expected.json");
  REQUIRE(in);
  return nlohmann::json::parse(in);
}

// Stored bits of element i, in the tensor's own width, as lower-case hex.
std::string element_hex(const Tensor& t, std::size_t i) {
  const std::size_t width = dtype_size(t.dtype());
  std::uint64_t bits = 0;
  std::memcpy(&bits, t.raw() + i * width, width);
  char buf[24];
  std::snprintf(buf, sizeof buf, "%0*llx", static_cast<int>(2 * width),
                static_cast<unsigned long long>(bits));
  return buf;
}

std::vector<std::string> all_hex(const Tensor& t) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < t.numel(); ++i) out.push_back(element_hex(t, i));
  return out;
}

std::vector<unsigned char> bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<unsigned char>(std::istreambuf_iterator<char>(in), {});
}

// A scratch directory per test binary run, removed at exit.
struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("tokenmix_io_" + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors image from a literal header and `data_size` data bytes (0, 1, 2, ...).
std::vector<unsigned char> image(const std::string& header, std::size_t data_size,
                                 std::uint64_t declared_length = ~0ull) {
  const std::uint64_t n = declared_length == ~0ull ? header.size() : declared_length;
  std::vector<unsigned char> out(8 + header.size() + data_size);
  std::memcpy(out.data(), &n, 8);
  if (!header.empty()) std::memcpy(out.data() + 8, header.data(), header.size());
  for (std::size_t i = 0; i < data_size; ++i)
    out[8 + header.size() + i] = static_cast<unsigned char>(i);
  return out;
}

StateDict sample_dict() {
  StateDict sd;
  Matrix<float> w(2, 3);
  w << 1, 2, 3, 4, 5, 6;
  Vector<double> b(3);
  b << -1.5, 0.25, 8;
  sd.insert("layer.weight", w);
  sd.insert("layer.bias", b);
  const std::int64_t ids[4] = {1, -2, 3, 1LL << 40};
  sd.insert("ids", Tensor::from_values<std::int64_t>({4}, ids));
  const std::int32_t small[2] = {-7, 9};
  sd.insert("small", Tensor::from_values<std::int32_t>({2, 1}, small));
  return sd;
}

}  // namespace

TEST_CASE("safetensors fixture written from torch reads back bit-exactly", "[io][safetensors]") {
  const nlohmann::json expected = expected_json().at("all_dtypes.safetensors");
  const std::string path = kDataDir + "all_dtypes.safetensors";

  SECTION("default read widens F16/BF16 to F32") {
    const SafetensorsFile f = read_safetensors_file(path);
    CHECK(f.metadata == expected.at("metadata").get<std::map<std::string, std::string>>());
    REQUIRE(f.tensors.size() == expected.at("tensors").size());
    for (const auto& item : expected.at("tensors").items()) {
      INFO("tensor " << item.key());
      const Tensor& t = f.tensors.at(item.key());
      const auto& e = item.value();
      CHECK(t.shape() == e.at("shape").get<std::vector<std::int64_t>>());
      const std::string dtype = e.at("dtype");
      if (dtype == "F16" || dtype == "BF16") {
        CHECK(t.dtype() == DType::F32);
        CHECK(all_hex(t) == e.at("f32_bits").get<std::vector<std::string>>());
      } else {
        CHECK(dtype_name(t.dtype()) == dtype);
        CHECK(all_hex(t) == e.at("bits").get<std::vector<std::string>>());
      }
    }
  }

  SECTION("widen_half off keeps the stored bits") {
    SafetensorsReadOptions keep;
    keep.widen_half = false;
    const StateDict sd = read_safetensors(path, keep);
    for (const auto& item : expected.at("tensors").items()) {
      INFO("tensor " << item.key());
      const Tensor& t = sd.at(item.key());
      CHECK(dtype_name(t.dtype()) == item.value().at("dtype").get<std::string>());
      CHECK(all_hex(t) == item.value().at("bits").get<std::vector<std::string>>());
    }
  }

  SECTION("file and in-memory readers agree; metadata alone reads the header") {
    const auto bytes = bytes_of(path);
    const SafetensorsFile a = parse_safetensors(bytes.data(), bytes.size(), "mem");
    const SafetensorsFile b = read_safetensors_file(path);
    CHECK(a.tensors.keys() == b.tensors.keys());
    for (const auto& key : a.tensors.keys())
      CHECK(all_hex(a.tensors.at(key)) == all_hex(b.tensors.at(key)));
    CHECK(read_safetensors_metadata(path) == b.metadata);
    CHECK(b.tensors.source() == path);
  }

  SECTION("rewriting the raw tensors reproduces every tensor") {
    SafetensorsReadOptions keep;
    keep.widen_half = false;
    const SafetensorsFile f = read_safetensors_file(path, keep);
    const auto image_bytes = serialize_safetensors(f.tensors, f.metadata);
    const SafetensorsFile g = parse_safetensors(image_bytes.data(), image_bytes.size(), "re", keep);
    CHECK(g.metadata == f.metadata);
    REQUIRE(g.tensors.keys() == f.tensors.keys());
    for (const auto& key : f.tensors.keys()) {
      CHECK(g.tensors.at(key).dtype() == f.tensors.at(key).dtype());
      CHECK(g.tensors.at(key).shape() == f.tensors.at(key).shape());
      CHECK(all_hex(g.tensors.at(key)) == all_hex(f.tensors.at(key)));
    }
  }
}

TEST_CASE("safetensors writer round-trips and lays the file out like the HF writer",
          "[io][safetensors]") {
  TempDir dir;
  const StateDict sd = sample_dict();
  const std::string path = dir.file("roundtrip.safetensors");
  write_safetensors(path, sd, {{"format", "pt"}, {"quote\"and\\slash", "line\nbreak \xe2\x9c\x93"}});

  const SafetensorsFile f = read_safetensors_file(path);
  CHECK(f.metadata.at("format") == "pt");
  CHECK(f.metadata.at("quote\"and\\slash") == "line\nbreak \xe2\x9c\x93");
  REQUIRE(f.tensors.keys() == sd.keys());
  for (const auto& key : sd.keys()) {
    CHECK(f.tensors.at(key).dtype() == sd.at(key).dtype());
    CHECK(f.tensors.at(key).shape() == sd.at(key).shape());
    CHECK(all_hex(f.tensors.at(key)) == all_hex(sd.at(key)));
  }

  const auto bytes = bytes_of(path);
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK((8 + n) % 8 == 0);
  const std::string header(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  CHECK(header.find_last_not_of(' ') == header.find_last_of('}'));
  // Keys in sorted order, metadata first.
  const auto meta = header.find("\"__metadata__\"");
  const auto ids = header.find("\"ids\"");
  const auto bias = header.find("\"layer.bias\"");
  const auto weight = header.find("\"layer.weight\"");
  const auto small = header.find("\"small\"");
  CHECK(meta < ids);
  CHECK(ids < bias);
  CHECK(bias < weight);
  CHECK(weight < small);
  // Data ordered by element size: every tensor starts aligned to its element size.
  const auto parsed = nlohmann::json::parse(header);
  for (const auto& key : sd.keys()) {
    const std::uint64_t begin = parsed.at(key).at("data_offsets").at(0);
    CHECK((8 + n + begin) % dtype_size(sd.at(key).dtype()) == 0);
  }
}

TEST_CASE("safetensors writer handles half tensors, empty and 0-d tensors, empty dicts",
          "[io][safetensors]") {
  StateDict sd;
  Tensor h(DType::F16, {3});
  const std::uint16_t hbits[3] = {0x3c00, 0x0001, 0x7c00};  // 1, smallest subnormal, inf
  std::memcpy(h.raw(), hbits, sizeof hbits);
  Tensor bf(DType::BF16, {1, 2});
  const std::uint16_t bbits[2] = {0x3f80, 0xff80};  // 1, -inf
  std::memcpy(bf.raw(), bbits, sizeof bbits);
  const double scalar = 2.5;
  sd.insert("h", h);
  sd.insert("bf", bf);
  sd.insert("scalar", Tensor::from_values<double>({}, &scalar));
  sd.insert("empty", Tensor(DType::F32, {0, 4}));

  const auto bytes = serialize_safetensors(sd);
  SafetensorsReadOptions keep;
  keep.widen_half = false;
  const SafetensorsFile raw = parse_safetensors(bytes.data(), bytes.size(), "mem", keep);
  CHECK(raw.metadata.empty());
  CHECK(raw.tensors.at("h").dtype() == DType::F16);
  CHECK(all_hex(raw.tensors.at("h")) == std::vector<std::string>{"3c00", "0001", "7c00"});
  CHECK(all_hex(raw.tensors.at("bf")) == std::vector<std::string>{"3f80", "ff80"});
  CHECK(raw.tensors.at("scalar").shape().empty());
  CHECK(raw.tensors.at("scalar").values<double>() == std::vector<double>{2.5});
  CHECK(raw.tensors.at("empty").shape() == std::vector<std::int64_t>{0, 4});
  CHECK(raw.tensors.at("empty").numel() == 0);

  const SafetensorsFile wide = parse_safetensors(bytes.data(), bytes.size(), "mem");
  const auto hv = wide.tensors.at("h").values<float>();
  CHECK(hv[0] == 1.0f);
  CHECK(hv[1] == std::ldexp(1.0f, -24));
  CHECK(std::isinf(hv[2]));
  CHECK(wide.tensors.at("bf").values<float>()[1] == -std::numeric_limits<float>::infinity());

  const auto empty = serialize_safetensors(StateDict());
  CHECK(empty.size() == 16);  // "{}" padded to 8 bytes
  CHECK(parse_safetensors(empty.data(), empty.size(), "empty").tensors.empty());

  StateDict bad;
  bad.insert("__metadata__", Tensor(DType::F32, {1}));
  CHECK_THROWS_AS(serialize_safetensors(bad), ArgumentError);
}

TEST_CASE("safetensors writer replaces files whole and reports unwritable paths",
          "[io][safetensors]") {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  write_safetensors(path, sample_dict());
  StateDict small;
  small.insert("only", Tensor(DType::F32, {1}));
  write_safetensors(path, small);
  CHECK(read_safetensors(path).keys() == std::vector<std::string>{"only"});
  std::size_t entries = 0;
  for (const auto& entry : fs::directory_iterator(dir.path)) {
    ++entries;
    CHECK(entry.path().filename() == "model.safetensors");  // no temporary left behind
  }
  CHECK(entries == 1);
  CHECK_THROWS_AS(write_safetensors(dir.file("no/such/dir/x.safetensors"), sample_dict()), IoError);
  CHECK_THROWS_AS(read_safetensors(dir.file("missing.safetensors")), IoError);
}

namespace {
struct BadCase {
  const char* name;
  std::vector<unsigned char> bytes;
  const char* phrase;
};

const char* kGood = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";

std::vector<BadCase> malformed_safetensors() {
  std::vector<BadCase> c;
  const auto valid = image(kGood, 8);
  c.push_back({"truncated below 8 bytes", std::vector<unsigned char>(valid.begin(), valid.begin() + 5),
               "expected at least 8 bytes"});
  c.push_back({"truncated data", std::vector<unsigned char>(valid.begin(), valid.end() - 3),
               "within the data region"});
  c.push_back({"header length beyond file", image(kGood, 8, 4096), "expected a header length"});
  c.push_back({"header length over the 100 MB cap", image(kGood, 8, 200000000ull),
               "expected a header length"});
  c.push_back({"header length 1", image("{", 0), "expected a header length between 2"});
  c.push_back({"offsets out of range",
               image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 8),
               "expected data_offsets within the data region of 8 bytes"});
  c.push_back({"overlapping offsets",
               image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                     R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
               "not overlapping 'a'"});
  c.push_back({"gap between tensors",
               image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                     R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", 12),
               "got a gap"});
  c.push_back({"trailing data no tensor uses", image(kGood, 12), "4 trailing bytes"});
  c.push_back({"shape/size mismatch",
               image(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
               "expected 12 bytes for F32 [3]"});
  c.push_back({"unknown dtype",
               image(R"({"a":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}})", 8),
               "expected dtype one of F32, F64, F16, BF16, I64, I32, got 'F8_E4M3'"});
  c.push_back({"dtype not a string",
               image(R"({"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", 8),
               "expected dtype as a string, got a number"});
  c.push_back({"bad JSON", image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 8),
               "in the JSON header"});
  c.push_back({"bad JSON token", image(R"({"a":{"dtype":F32,"shape":[2],"data_offsets":[0,8]}})", 8),
               "expected a value in the JSON header"});
  c.push_back({"trailing garbage after the object", image(std::string(kGood) + "x", 8),
               "expected end of the header"});
  c.push_back({"JSON not an object", image("[1, 2, 3]", 0), "expected the header to start with '{'"});
  c.push_back({"entry not an object", image(R"({"a":[1,2]})", 0),
               "tensor 'a': expected an object with dtype, shape and data_offsets, got an array"});
  c.push_back({"missing field", image(R"({"a":{"dtype":"F32","shape":[2]}})", 8),
               "tensor 'a': expected a 'data_offsets' field, got none"});
  c.push_back({"extra field",
               image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", 8),
               "expected only the fields dtype, shape and data_offsets, got field 'x'"});
  c.push_back({"field twice",
               image(R"({"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8),
               "expected field 'dtype' once"});
  c.push_back({"negative shape",
               image(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
               "expected shape of non-negative integers below 2^63, got -2"});
  c.push_back({"fractional shape",
               image(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", 8),
               "expected shape of non-negative integers below 2^63, got 2.0"});
  c.push_back({"shape entry beyond 64 bits",
               image(R"({"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,8]}})", 8),
               "non-negative integers below 2^63"});
  c.push_back({"overflowing shape product",
               image(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}})", 8),
               "expected a shape whose element count fits in 64 bits"});
  c.push_back({"huge shape that does not overflow",
               image(R"({"a":{"dtype":"F64","shape":[1099511627776],"data_offsets":[0,8]}})", 8),
               "expected 8796093022208 bytes for F64 [1099511627776], got 8 bytes"});
  c.push_back({"element count fits, byte count does not",
               image(R"({"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}})", 8),
               "expected more than 2^64 bytes for F64 [4611686018427387904]"});
  c.push_back({"overflow before a zero dimension",
               image(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]},)"
                     R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8),
               "expected a shape whose element count fits in 64 bits"});
  c.push_back({"duplicate key",
               image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                     R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
               "tensor 'a': expected each key once in the header, got a duplicate key"});
  c.push_back({"offsets begin after end",
               image(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8),
               "expected data_offsets begin <= end"});
  c.push_back({"offsets not a pair",
               image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}})", 8),
               "expected data_offsets as an array [begin, end], got an array of 3 values"});
  c.push_back({"negative offset",
               image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[-1,7]}})", 8),
               "expected data_offsets of non-negative integers"});
  c.push_back({"metadata not strings",
               image(R"({"__metadata__":{"epoch":3},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8),
               "'__metadata__' entry 'epoch': expected a string value, got a number"});
  c.push_back({"metadata not an object", image(R"({"__metadata__":"x"})", 0),
               "'__metadata__': expected an object of strings, got a string"});
  c.push_back({"invalid UTF-8 in a key",
               image("{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
               "expected valid UTF-8"});
  c.push_back({"lone surrogate escape", image(R"({"\udc00":{}})", 0), "lone low surrogate"});
  c.push_back({"unterminated string", image(R"({"a)", 0), "expected a closing '\"'"});
  c.push_back({"nesting too deep", image("{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}", 0),
               "nesting at most 64 deep"});
  return c;
}
}  // namespace

TEST_CASE("malformed safetensors files are rejected with a FormatError naming the problem",
          "[io][safetensors][malformed]") {
  TempDir dir;
  // Every case is one corruption of the small valid file, so its baseline must load.
  const auto valid = image(kGood, 8);
  REQUIRE(parse_safetensors(valid.data(), valid.size(), "valid").tensors.size() == 1);
  const auto cases = malformed_safetensors();
  REQUIRE(cases.size() >= 30);
  for (const auto& c : cases) {
    INFO("case: " << c.name);
    CHECK_THROWS_AS(parse_safetensors(c.bytes.data(), c.bytes.size(), "mem.safetensors"),
                    FormatError);
    CHECK_THROWS_WITH(parse_safetensors(c.bytes.data(), c.bytes.size(), "mem.safetensors"),
                      Contains(c.phrase) && Contains("mem.safetensors"));
    const std::string path = dir.file("bad.safetensors");
    write_bytes(path, c.bytes);
    CHECK_THROWS_AS(read_safetensors(path), FormatError);
    CHECK_THROWS_WITH(read_safetensors(path), Contains(c.phrase) && Contains(path));
  }
}

TEST_CASE("safetensors headers: what nlohmann alone would let through is still rejected",
          "[io][safetensors][malformed]") {
  const std::vector<BadCase> cases = {
      {"NUL byte in the padding", image(std::string(kGood) + std::string(" \0 x", 4), 8),
       "expected no NUL bytes in the JSON header"},
      {"NUL byte between tokens",
       image(std::string(R"({"a":{"dtype":"F32",)") + std::string(1, '\0') +
                 R"("shape":[2],"data_offsets":[0,8]}})", 8),
       "expected no NUL bytes in the JSON header"},
      {"duplicate metadata key",
       image(R"({"__metadata__":{"k":"1","k":"2"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8),
       "'__metadata__' entry 'k': expected each key once, got a duplicate key"},
      {"duplicate key deep inside", image(R"({"a":{"dtype":"F32","shape":[{"x":1,"x":2}],"data_offsets":[0,8]}})", 8),
       "got duplicate key 'x' in /a/shape/0"},
      {"number beyond double", image(R"({"a":{"dtype":"F32","shape":[1e999],"data_offsets":[0,8]}})", 8),
       "expected numbers within the range of double in the JSON header"},
      {"missing closing brace", image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 8),
       "expected ',' or '}' in the JSON header at byte 53"},
      {"nesting one level too deep", image("{\"a\":" + std::string(64, '[') + std::string(64, ']') + "}", 0),
       "nesting at most 64 deep"},
      {"invalid UTF-8 in metadata",
       image("{\"__metadata__\":{\"k\":\"\xc0\x80\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
       "expected valid UTF-8"},
  };
  for (const auto& c : cases) {
    INFO("case: " << c.name);
    CHECK_THROWS_AS(parse_safetensors(c.bytes.data(), c.bytes.size(), "mem.safetensors"),
                    FormatError);
    CHECK_THROWS_WITH(parse_safetensors(c.bytes.data(), c.bytes.size(), "mem.safetensors"),
                      Contains(c.phrase) && Contains("mem.safetensors"));
  }
  // 64 levels (the header object and 63 arrays) are still fine for the parser.
  const auto deep = image("{\"a\":" + std::string(63, '[') + std::string(63, ']') + "}", 0);
  CHECK_THROWS_WITH(parse_safetensors(deep.data(), deep.size(), "mem"),
                    Contains("tensor 'a': expected an object with dtype, shape and data_offsets"));
  // Whitespace other than spaces around and inside the header is legal JSON.
  const auto spaced = image(" \t\n{ \"a\" :\r\n{\"dtype\":\"F32\",\"shape\":[ 2 ],\"data_offsets\":[0,8]} }\n", 8);
  CHECK_THROWS_WITH(parse_safetensors(spaced.data(), spaced.size(), "mem"),
                    Contains("expected the header to start with '{'"));
  const auto trailing_ws = image(std::string(kGood) + " \t\r\n", 8);
  CHECK(parse_safetensors(trailing_ws.data(), trailing_ws.size(), "mem").tensors.size() == 1);
}

TEST_CASE("safetensors header with many tensors parses in linear time", "[io][safetensors]") {
  std::string header = "{";
  const int n = 50000;
  for (int i = 0; i < n; ++i) {
    if (i) header += ',';
    header += "\"t" + std::to_string(i) + "\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[" +
              std::to_string(4 * i) + "," + std::to_string(4 * i + 4) + "]}";
  }
  header += "}";
  const auto bytes = image(header, 4 * static_cast<std::size_t>(n));
  const auto start = std::chrono::steady_clock::now();
  const SafetensorsFile f = parse_safetensors(bytes.data(), bytes.size(), "many");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  REQUIRE(f.tensors.size() == static_cast<std::size_t>(n));
  // image() fills data byte j with j mod 256.
  const unsigned char expected[4] = {static_cast<unsigned char>(4 * 12345),
                                     static_cast<unsigned char>(4 * 12345 + 1),
                                     static_cast<unsigned char>(4 * 12345 + 2),
                                     static_cast<unsigned char>(4 * 12345 + 3)};
  CHECK(std::memcmp(f.tensors.at("t12345").raw(), expected, 4) == 0);
  CHECK(seconds < 10.0);  // a quadratic parser would take minutes here
}

TEST_CASE("safetensors writer rejects names it could not store as UTF-8", "[io][safetensors]") {
  StateDict bad_name;
  bad_name.insert("w\xff", Tensor(DType::F32, {1}));
  CHECK_THROWS_AS(serialize_safetensors(bad_name), ArgumentError);
  CHECK_THROWS_WITH(serialize_safetensors(bad_name),
                    Contains("write_safetensors: expected tensor names and metadata in valid UTF-8"));
  StateDict ok;
  ok.insert("w", Tensor(DType::F32, {1}));
  CHECK_THROWS_AS(serialize_safetensors(ok, {{"note", "\xe2\x28\xa1"}}), ArgumentError);
  // The exact bytes of a small header: sorted keys, compact, metadata first, space padding.
  StateDict two;
  two.insert("b", Tensor(DType::F32, {1}));
  two.insert("B", Tensor(DType::F64, {}));
  const auto bytes = serialize_safetensors(two, {{"format", "pt"}});
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  const std::string header(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  CHECK(header ==
        R"({"__metadata__":{"format":"pt"},"B":{"dtype":"F64","shape":[],"data_offsets":[0,8]},)"
        R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})"
        "      ");  // 138 + 6 = 144 bytes
}

TEST_CASE("every truncation and single-byte corruption of a file fails cleanly",
          "[io][safetensors][malformed]") {
  const auto valid = serialize_safetensors(sample_dict(), {{"format", "pt"}});
  for (std::size_t len = 0; len < valid.size(); ++len) {
    INFO("truncated to " << len);
    CHECK_THROWS_AS(parse_safetensors(valid.data(), len, "cut"), FormatError);
  }
  std::uint64_t n = 0;
  std::memcpy(&n, valid.data(), 8);
  std::size_t accepted = 0;
  const unsigned char replacements[] = {0x00, '"', '9', '-', '{', ']', 0xff, ' '};
  for (std::size_t pos = 0; pos < 8 + n; ++pos) {
    for (const unsigned char r : replacements) {
      auto bytes = valid;
      if (bytes[pos] == r) continue;
      bytes[pos] = r;
      try {
        const auto f = parse_safetensors(bytes.data(), bytes.size(), "flip");
        ++accepted;  // e.g. a changed metadata character: still a valid file
        for (const auto& kv : f.tensors) CHECK(kv.second.byte_size() <= bytes.size());
      } catch (const FormatError&) {
      }
    }
  }
  // Most corruptions of structure must be caught; a handful land in strings and are legal.
  CHECK(accepted < 8 * (8 + n) / 4);
}

namespace {
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The interpreter for the cross-check: $TOKENMIX_PYTHON, else Debian's /usr/bin/python3
// (where python3-numpy lives), else whatever python3 is on PATH.
std::string python_interpreter() {
  if (const char* env = std::getenv("TOKENMIX_PYTHON")) return env;
  if (fs::exists("/usr/bin/python3")) return "/usr/bin/python3";
  return "python3";
}

nlohmann::json manifest_tensor(const Tensor& t) {
  return {{"dtype", dtype_name(t.dtype())}, {"shape", t.shape()}, {"bits", all_hex(t)}};
}
}  // namespace

TEST_CASE("files tokenmix writes read back correctly with numpy", "[io][safetensors][npy][python]") {
  if (!std::system(nullptr)) {
    WARN("no command processor: skipping the numpy cross-check");
    return;
  }
  const std::string python = python_interpreter();
  if (std::system((shell_quote(python) + " -c 'import numpy' >/dev/null 2>&1").c_str()) != 0) {
    WARN("numpy not available to " << python << ": skipping the numpy cross-check");
    return;
  }
  TempDir dir;
  nlohmann::json files = nlohmann::json::array();

  // safetensors: every dtype, a 0-d and an empty tensor, metadata.
  StateDict sd = sample_dict();
  Tensor h(DType::F16, {2, 2});
  const std::uint16_t hb[4] = {0x3c00, 0x0001, 0xfc00, 0x7e00};
  std::memcpy(h.raw(), hb, sizeof hb);
  Tensor bf(DType::BF16, {3});
  const std::uint16_t bb[3] = {0x3f80, 0x0001, 0x7f80};
  std::memcpy(bf.raw(), bb, sizeof bb);
  const float scalar = -0.0f;
  sd.insert("half", h);
  sd.insert("brain", bf);
  sd.insert("scalar", Tensor::from_values<float>({}, &scalar));
  sd.insert("empty", Tensor(DType::F64, {0, 3}));
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"by", "tokenmix \"test\""}};
  write_safetensors(dir.file("all.safetensors"), sd, meta);
  nlohmann::json tensors = nlohmann::json::object();
  for (const auto& kv : sd) tensors[kv.first] = manifest_tensor(kv.second);
  files.push_back({{"file", "all.safetensors"}, {"format", "safetensors"}, {"metadata", meta},
                   {"tensors", tensors}});
  write_safetensors(dir.file("empty.safetensors"), StateDict());
  files.push_back({{"file", "empty.safetensors"}, {"format", "safetensors"},
                   {"tensors", nlohmann::json::object()}});

  // .npy: every dtype, scalar, empty, 1-D. (The version-2.0 writer path needs a header over
  // 64 KiB, i.e. thousands of dimensions, beyond numpy's 32/64: tested in test_npy only.)
  auto add_npy = [&](const std::string& name, const Tensor& t, const char* version) {
    write_npy(dir.file(name), t);
    files.push_back({{"file", name}, {"format", "npy"}, {"descr", detail::npy_descr(t.dtype())},
                     {"shape", t.shape()}, {"bits", all_hex(t)}, {"version", version}});
  };
  for (const auto& kv : sd)
    if (kv.second.dtype() != DType::BF16) add_npy(kv.first + ".npy", kv.second, "1.0");
  Matrix<double> m(2, 3);
  m << 1, -2, 3.5, 1e-310, -0.0, 6;  // a subnormal and a negative zero
  write_npy(dir.file("matrix.npy"), m);
  files.push_back({{"file", "matrix.npy"}, {"format", "npy"}, {"descr", "<f8"},
                   {"shape", {2, 3}}, {"bits", all_hex(Tensor::from_values<double>({2, 3}, m.data()))}});

  std::ofstream(dir.file("manifest.json")) << nlohmann::json{{"files", files}}.dump(1);
  const std::string script =
      std::string(TOKENMIX_TEST_DATA_DIR) + "/../reference/check_written_files.py";
  const std::string log = dir.file("check.log");
  const int rc = std::system((shell_quote(python) + " " + shell_quote(script) + " " +
                              shell_quote(dir.path.string()) + " >" + shell_quote(log) + " 2>&1")
                                 .c_str());
  std::ifstream in(log);
  const std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  INFO(output);
  CHECK(rc == 0);
  CHECK(output.find(std::to_string(files.size()) + " files, 0 problems") != std::string::npos);
}

}  // namespace test_io_safetensors

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "tokenmix/io/npy.hpp"

namespace test_io_npy {

using namespace tokenmix;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

const std::string kDataDir = std::string(TOKENMIX_TEST_DATA_DIR) + "/io/";

std::string hex_at(const Tensor& t, std::size_t i) {
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
  for (std::size_t i = 0; i < t.numel(); ++i) out.push_back(hex_at(t, i));
  return out;
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("tokenmix_npy_" + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::vector<unsigned char> bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<unsigned char>(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// A version-1.0 .npy image from a literal header dict (newline added) and raw data bytes.
std::vector<unsigned char> npy_image(const std::string& dict, std::size_t data_bytes,
                                     unsigned major = 1, unsigned minor = 0) {
  const std::string header = dict + "\n";
  const std::size_t prefix = major == 1 ? 10 : 12;
  std::vector<unsigned char> out(prefix + header.size() + data_bytes, 0);
  const unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  std::memcpy(out.data(), magic, 6);
  out[6] = static_cast<unsigned char>(major);
  out[7] = static_cast<unsigned char>(minor);
  const auto len = static_cast<std::uint32_t>(header.size());
  std::memcpy(out.data() + 8, &len, prefix - 8);
  std::memcpy(out.data() + prefix, header.data(), header.size());
  return out;
}

}  // namespace

TEST_CASE("npy fixtures written by numpy read back bit-exactly", "[io][npy]") {
  std::ifstream in(kDataDir + "expected.json");
  REQUIRE(in);
  const nlohmann::json expected = nlohmann::json::parse(in);
  int checked = 0;
  for (const auto& item : expected.items()) {
    const std::string& name = item.key();
    if (name.rfind("npy_", 0) != 0 || name.find("bigendian") != std::string::npos) continue;
    INFO("fixture " << name);
    const auto& e = item.value();
    const std::string descr = e.at("descr");
    const Tensor t = read_npy(kDataDir + name);
    CHECK(t.shape() == e.at("shape").get<std::vector<std::int64_t>>());
    if (descr == "<f2") {
      CHECK(t.dtype() == DType::F32);
      CHECK(all_hex(t) == e.at("f32_bits").get<std::vector<std::string>>());
      NpyReadOptions keep;
      keep.widen_half = false;
      const Tensor raw = read_npy(kDataDir + name, keep);
      CHECK(raw.dtype() == DType::F16);
      CHECK(all_hex(raw) == e.at("bits").get<std::vector<std::string>>());
    } else {
      CHECK(std::string(detail::npy_descr(t.dtype())) == descr);
      CHECK(all_hex(t) == e.at("bits").get<std::vector<std::string>>());
    }
    const auto bytes = bytes_of(kDataDir + name);
    CHECK(all_hex(parse_npy(bytes.data(), bytes.size(), name)) == all_hex(t));
    ++checked;
  }
  CHECK(checked == 20);  // 5 dtypes x 3 versions + 2 Fortran + scalar, empty, vector
}

TEST_CASE("npy version fixtures carry the versions they claim", "[io][npy]") {
  for (int v = 1; v <= 3; ++v) {
    const auto bytes = bytes_of(kDataDir + "npy_f8_v" + std::to_string(v) + ".npy");
    REQUIRE(bytes.size() > 8);
    CHECK(bytes[6] == v);
  }
}

TEST_CASE("npy big-endian fixture is rejected clearly", "[io][npy]") {
  const std::string path = kDataDir + "npy_f4_bigendian.npy";
  CHECK_THROWS_AS(read_npy(path), FormatError);
  CHECK_THROWS_WITH(read_npy(path), Contains("big-endian '>f4'") && Contains(path));
}

TEMPLATE_TEST_CASE("npy writer round-trips matrices and vectors", "[io][npy]", float, double) {
  TempDir dir;
  Matrix<TestType> m(3, 4);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<TestType>(0.5 * i - 2.25);
  write_npy(dir.file("m.npy"), m);
  const Tensor t = read_npy(dir.file("m.npy"));
  CHECK(t.dtype() == dtype_of<TestType>());
  CHECK(t.shape() == std::vector<std::int64_t>{3, 4});
  CHECK(t.to_matrix<TestType>() == m);

  // A column-major source is written in C order all the same.
  Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic> cm = m;
  write_npy(dir.file("cm.npy"), cm);
  CHECK(read_npy(dir.file("cm.npy")).to_matrix<TestType>() == m);

  Vector<TestType> v(5);
  v << 1, -2, 3, -4, 5;
  write_npy(dir.file("v.npy"), v);
  const Tensor tv = read_npy(dir.file("v.npy"));
  CHECK(tv.shape() == std::vector<std::int64_t>{5});
  CHECK(tv.values<TestType>() == std::vector<TestType>{1, -2, 3, -4, 5});
}

TEST_CASE("npy writer produces numpy's header layout", "[io][npy]") {
  const float values[6] = {1, 2, 3, 4, 5, 6};
  const auto bytes = serialize_npy(Tensor::from_values<float>({2, 3}, values));
  REQUIRE(bytes.size() == 128 + 24);
  CHECK(bytes[6] == 1);
  CHECK(bytes[7] == 0);
  const std::string header(bytes.begin() + 10, bytes.begin() + 128);
  CHECK(header.rfind("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 0) == 0);
  CHECK(header.back() == '\n');

  const std::int32_t one = 7;
  const auto vec = serialize_npy(Tensor::from_values<std::int32_t>({1}, &one));
  CHECK(std::string(vec.begin() + 10, vec.end() - 4).find("'shape': (1,), }") != std::string::npos);
  const double scalar = -0.5;
  const auto sc = serialize_npy(Tensor::from_values<double>({}, &scalar));
  CHECK(std::string(sc.begin() + 10, sc.end() - 8).find("'shape': (), }") != std::string::npos);
  const Tensor back = parse_npy(sc.data(), sc.size(), "scalar");
  CHECK(back.shape().empty());
  CHECK(back.values<double>() == std::vector<double>{-0.5});
}

TEST_CASE("npy writer output is byte-identical to numpy.save for C-order arrays", "[io][npy]") {
  NpyReadOptions keep;
  keep.widen_half = false;
  for (const char* name : {"npy_f4_v1.npy", "npy_f8_v1.npy", "npy_i8_v1.npy", "npy_i4_v1.npy",
                           "npy_f2_v1.npy", "npy_f8_scalar.npy", "npy_i4_empty.npy",
                           "npy_f4_vector.npy"}) {
    INFO("fixture " << name);
    const auto original = bytes_of(kDataDir + name);
    CHECK(serialize_npy(read_npy(kDataDir + name, keep)) == original);
  }
}

TEST_CASE("npy writer covers every dtype and switches to version 2.0 for huge headers",
          "[io][npy]") {
  const std::int64_t i64[3] = {-1, 1LL << 50, 3};
  const std::int32_t i32[2] = {-(1 << 30), 5};
  Tensor f16(DType::F16, {2});
  const std::uint16_t hb[2] = {0x0001, 0xfc00};
  std::memcpy(f16.raw(), hb, 4);
  for (const Tensor& t : {Tensor::from_values<std::int64_t>({3}, i64),
                          Tensor::from_values<std::int32_t>({1, 2}, i32), f16}) {
    const auto bytes = serialize_npy(t);
    NpyReadOptions keep;
    keep.widen_half = false;
    const Tensor back = parse_npy(bytes.data(), bytes.size(), "mem", keep);
    CHECK(back.dtype() == t.dtype());
    CHECK(back.shape() == t.shape());
    CHECK(all_hex(back) == all_hex(t));
  }
  CHECK_THROWS_AS(serialize_npy(Tensor(DType::BF16, {2})), ArgumentError);

  // 30000 unit dimensions need a header longer than version 1.0's 16-bit length.
  const float x = 4.0f;
  const Tensor many = Tensor::from_values<float>(std::vector<std::int64_t>(30000, 1), &x);
  const auto bytes = serialize_npy(many);
  CHECK(bytes[6] == 2);
  CHECK(bytes.size() % 64 == 4);  // 64-byte aligned header, then one float
  const Tensor back = parse_npy(bytes.data(), bytes.size(), "many");
  CHECK(back.dim() == 30000);
  CHECK(back.values<float>() == std::vector<float>{4.0f});
}

TEST_CASE("npy Fortran-order arrays are reordered into C order", "[io][npy]") {
  // shape (2, 3, 2) in Fortran order: element (i, j, k) at i + 2*j + 6*k.
  std::vector<unsigned char> img =
      npy_image("{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3, 2), }", 48);
  const std::size_t data = img.size() - 48;
  for (std::int32_t i = 0; i < 2; ++i)
    for (std::int32_t j = 0; j < 3; ++j)
      for (std::int32_t k = 0; k < 2; ++k) {
        const std::int32_t value = 100 * i + 10 * j + k;
        std::memcpy(img.data() + data + 4 * (i + 2 * j + 6 * k), &value, 4);
      }
  const Tensor t = parse_npy(img.data(), img.size(), "fortran");
  std::vector<std::int32_t> want;
  for (std::int32_t i = 0; i < 2; ++i)
    for (std::int32_t j = 0; j < 3; ++j)
      for (std::int32_t k = 0; k < 2; ++k) want.push_back(100 * i + 10 * j + k);
  CHECK(t.values<std::int32_t>() == want);
}

TEST_CASE("npy header dict parsing accepts numpy's spellings", "[io][npy]") {
  // Key order, double quotes, no trailing comma, old numpy's 'L' suffix, spaces.
  const auto a = npy_image("{\"shape\": (2L, 1L), \"fortran_order\": False, \"descr\": \"<f8\"}   ", 16);
  CHECK(parse_npy(a.data(), a.size(), "a").shape() == std::vector<std::int64_t>{2, 1});
  const auto b = npy_image("{'descr':'<f4','fortran_order':False,'shape':(0,)}", 0);
  CHECK(parse_npy(b.data(), b.size(), "b").numel() == 0);
  const auto c = npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0, 4), }", 0);
  CHECK(parse_npy(c.data(), c.size(), "c").shape() == std::vector<std::int64_t>{3, 0, 4});
}

namespace {
struct BadNpy {
  const char* name;
  std::vector<unsigned char> bytes;
  const char* phrase;
};

std::vector<BadNpy> malformed_npy() {
  const std::string good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  std::vector<BadNpy> c;
  auto valid = npy_image(good, 8);
  auto bad_magic = valid;
  bad_magic[1] = 'X';
  c.push_back({"bad magic", bad_magic, "expected the .npy magic"});
  c.push_back({"shorter than the magic", std::vector<unsigned char>(valid.begin(), valid.begin() + 4),
               "expected the .npy magic"});
  c.push_back({"unsupported version 4.0", npy_image(good, 8, 4), "expected .npy format version 1.0, 2.0 or 3.0, got 4.0"});
  c.push_back({"unsupported version 1.1", npy_image(good, 8, 1, 1), "got 1.1"});
  auto long_header = valid;
  long_header[8] = 0xff;
  long_header[9] = 0x7f;
  c.push_back({"header length beyond file", long_header, "expected a header length within the file"});
  c.push_back({"data truncated", std::vector<unsigned char>(valid.begin(), valid.end() - 1),
               "expected 8 data bytes for shape [2] of F32, got 7 (file truncated)"});
  c.push_back({"trailing bytes", npy_image(good, 12), "got 12 (trailing bytes)"});
  c.push_back({"big-endian", npy_image("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8),
               "got big-endian '>f4'"});
  c.push_back({"unsupported descr", npy_image("{'descr': '|u1', 'fortran_order': False, 'shape': (8,), }", 8),
               "expected descr '<f4', '<f8', '<i8', '<i4' or '<f2', got '|u1'"});
  c.push_back({"structured descr", npy_image("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8),
               "expected descr as a quoted string"});
  c.push_back({"header not a dict", npy_image("['descr', '<f4']", 8), "expected '{' opening the header dict"});
  c.push_back({"missing key", npy_image("{'descr': '<f4', 'shape': (2,), }", 8), "got no fortran_order"});
  c.push_back({"extra key", npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8),
               "expected header keys descr, fortran_order and shape, got 'x'"});
  c.push_back({"duplicate key", npy_image("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 8),
               "expected header key 'descr' once, got a duplicate key"});
  c.push_back({"bad bool", npy_image("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", 8),
               "expected fortran_order True or False"});
  c.push_back({"shape is an int, not a tuple", npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", 8),
               "expected a one-element shape written '(n,)'"});
  c.push_back({"shape as a list", npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", 8),
               "expected shape as a tuple"});
  c.push_back({"negative shape", npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8),
               "expected a non-negative integer in the shape"});
  c.push_back({"shape beyond 2^63", npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 8),
               "expected a shape entry below 2^63"});
  c.push_back({"shape larger than the file", npy_image("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 8),
               "expected more than the file holds"});
  c.push_back({"junk after the dict", npy_image(good + " junk", 8), "expected the end of the header after the dict"});
  auto empty_header = npy_image("", 0);
  empty_header.pop_back();  // drop the newline: header length 0
  empty_header[8] = 0;
  c.push_back({"empty header", empty_header, "expected the header to end with '\\n', got an empty header"});
  c.push_back({"preamble cut after the magic", std::vector<unsigned char>(valid.begin(), valid.begin() + 8),
               "expected a 10-byte preamble, got 8 bytes"});
  c.push_back({"unterminated key", npy_image("{'descr", 0), "expected a closing quote"});
  c.push_back({"unterminated shape", npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (2, ", 8),
               "expected a non-negative integer in the shape"});
  auto no_newline = valid;
  no_newline[no_newline.size() - 9] = ' ';
  c.push_back({"header without newline", no_newline, "expected the header to end with '\\n'"});
  return c;
}
}  // namespace

TEST_CASE("malformed .npy files are rejected with a FormatError naming the problem",
          "[io][npy][malformed]") {
  TempDir dir;
  const auto valid = npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8);
  REQUIRE(parse_npy(valid.data(), valid.size(), "valid").numel() == 2);
  const auto cases = malformed_npy();
  for (const auto& c : cases) {
    INFO("case: " << c.name);
    CHECK_THROWS_AS(parse_npy(c.bytes.data(), c.bytes.size(), "mem.npy"), FormatError);
    CHECK_THROWS_WITH(parse_npy(c.bytes.data(), c.bytes.size(), "mem.npy"),
                      Contains(c.phrase) && Contains("mem.npy"));
    const std::string path = dir.file("bad.npy");
    write_bytes(path, c.bytes);
    CHECK_THROWS_AS(read_npy(path), FormatError);
    CHECK_THROWS_WITH(read_npy(path), Contains(c.phrase) && Contains(path));
  }
  CHECK_THROWS_AS(read_npy(dir.file("missing.npy")), IoError);
}

TEST_CASE("single-byte corruptions of an .npy header fail cleanly or keep a valid file",
          "[io][npy][malformed]") {
  const double values[4] = {1, 2, 3, 4};
  const auto valid = serialize_npy(Tensor::from_values<double>({2, 2}, values));
  const unsigned char replacements[] = {0x00, '\'', '(', ')', ',', '9', '>', 'T', ' ', 0xff};
  std::size_t accepted = 0, total = 0;
  for (std::size_t pos = 0; pos < valid.size() - 32; ++pos) {
    for (const unsigned char r : replacements) {
      auto bytes = valid;
      if (bytes[pos] == r) continue;
      bytes[pos] = r;
      ++total;
      try {
        const Tensor t = parse_npy(bytes.data(), bytes.size(), "flip");
        ++accepted;  // e.g. a space turned into another space-like no-op, or a shape digit
        CHECK(t.byte_size() == 32);
      } catch (const FormatError&) {
      }
    }
  }
  CHECK(accepted < total / 4);
}

TEST_CASE("every truncation of an .npy file fails cleanly", "[io][npy][malformed]") {
  const float values[6] = {1, 2, 3, 4, 5, 6};
  const auto valid = serialize_npy(Tensor::from_values<float>({2, 3}, values));
  TempDir dir;
  for (std::size_t len = 0; len < valid.size(); ++len) {
    INFO("truncated to " << len);
    CHECK_THROWS_AS(parse_npy(valid.data(), len, "cut"), FormatError);
    if (len % 16 == 3) {  // the streamed reader too, on a sample of lengths
      write_bytes(dir.file("cut.npy"), std::vector<unsigned char>(valid.begin(), valid.begin() + static_cast<std::ptrdiff_t>(len)));
      CHECK_THROWS_AS(read_npy(dir.file("cut.npy")), FormatError);
    }
  }
}

}  // namespace test_io_npy

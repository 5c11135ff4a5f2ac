#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tokenmix/core/tensor.hpp"
#include "tokenmix/io/json_config.hpp"

namespace test_io_json_config {

using namespace tokenmix;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {
const char* kConfig = R"({
  "hidden_size": 256,
  "num_layers": 4,
  "layer_norm_eps": 1e-6,
  "dropout": 0,
  "activation": "gelu",
  "use_bias": true,
  "patch_sizes": [16, 8],
  "head": null,
  "text_config": {"vocab_size": 30522},
  "architectures": ["FNetModel"]
})";
}  // namespace

TEST_CASE("JsonConfig reads typed fields strictly", "[io][json_config]") {
  const JsonConfig cfg = JsonConfig::parse(kConfig, "config.json");
  CHECK(cfg.get<Index>("hidden_size") == 256);
  CHECK(cfg.get<int>("num_layers") == 4);
  CHECK(cfg.get<double>("layer_norm_eps") == 1e-6);
  CHECK(cfg.get<float>("dropout") == 0.0f);  // an integer literal is a valid number
  CHECK(cfg.get<std::string>("activation") == "gelu");
  CHECK(cfg.get<bool>("use_bias"));
  CHECK(cfg.get<std::vector<int>>("patch_sizes") == std::vector<int>{16, 8});
  CHECK(cfg.object("text_config").get<std::int64_t>("vocab_size") == 30522);

  // Defaults: absent or null fields give the fallback, present ones must have the type.
  CHECK(cfg.get<int>("missing", 7) == 7);
  CHECK(cfg.get<int>("head", 3) == 3);
  CHECK(cfg.get("missing_name", "relu") == "relu");
  CHECK(cfg.get<double>("layer_norm_eps", 1e-5) == 1e-6);
  CHECK(cfg.has("head"));
  CHECK_FALSE(cfg.has("missing"));

  CHECK_THROWS_AS(cfg.get<int>("missing"), FormatError);
  CHECK_THROWS_WITH(cfg.get<int>("missing"), Contains("config.json: expected field 'missing', got none"));
  CHECK_THROWS_WITH(cfg.get<int>("layer_norm_eps"),
                    Contains("field 'layer_norm_eps': expected an integer, got number"));
  CHECK_THROWS_WITH(cfg.get<int>("activation", 1), Contains("expected an integer, got string \"gelu\""));
  CHECK_THROWS_WITH(cfg.get<bool>("num_layers"), Contains("expected a boolean"));
  CHECK_THROWS_WITH(cfg.get<std::string>("use_bias"), Contains("expected a string, got boolean"));
  CHECK_THROWS_WITH(cfg.get<std::vector<std::string>>("patch_sizes"),
                    Contains("field 'patch_sizes'[0]: expected a string"));
  CHECK_THROWS_WITH(cfg.get<std::uint8_t>("hidden_size"), Contains("expected an integer at most 255, got 256"));
  CHECK_THROWS_WITH(cfg.object("activation"), Contains("field 'activation': expected an object"));
  CHECK_THROWS_WITH(cfg.object("text_config").get<int>("nope"),
                    Contains("config.json: 'text_config': expected field 'nope'"));

  const JsonConfig neg = JsonConfig::parse(R"({"a": -3, "b": 5000000000})", "n.json");
  CHECK(neg.get<int>("a") == -3);
  CHECK_THROWS_WITH(neg.get<unsigned>("a"), Contains("expected an integer in [0, "));
  CHECK_THROWS_WITH(neg.get<std::int32_t>("b"), Contains("expected an integer at most 2147483647"));
  CHECK(neg.get<std::int64_t>("b") == 5000000000LL);
  const JsonConfig big = JsonConfig::parse(R"({"x": 1e300})", "f.json");
  CHECK(big.get<double>("x") == 1e300);
  CHECK_THROWS_WITH(big.get<float>("x"), Contains("field 'x': expected a number within the range of float"));
}

TEST_CASE("JsonConfig lists unknown fields and warns in one line", "[io][json_config]") {
  const JsonConfig cfg = JsonConfig::parse(kConfig, "config.json");
  const std::vector<std::string> known = {"hidden_size", "num_layers", "layer_norm_eps", "dropout",
                                          "activation", "use_bias", "patch_sizes", "head"};
  CHECK(cfg.unknown_fields(known) == std::vector<std::string>{"architectures", "text_config"});
  std::ostringstream out;
  CHECK(cfg.warn_unknown_fields(known, out));
  CHECK(out.str() ==
        "tokenmix: warning: config.json: ignoring 2 unknown fields: architectures, text_config\n");
  std::vector<std::string> all = known;
  all.push_back("architectures");
  all.push_back("text_config");
  std::ostringstream quiet;
  CHECK_FALSE(cfg.warn_unknown_fields(all, quiet));
  CHECK(quiet.str().empty());
}

TEST_CASE("JSON syntax errors name the file, line and column", "[io][json_config]") {
  const std::string text = "{\n  \"a\": 1,\n  \"b\": ,\n}";
  CHECK_THROWS_AS(parse_json_text(text, "bad.json"), FormatError);
  CHECK_THROWS_WITH(parse_json_text(text, "bad.json"),
                    Contains("bad.json:3:8: expected valid JSON, got ") && Contains("(byte offset 19)"));
  CHECK_THROWS_WITH(parse_json_text("", "empty.json"), Contains("empty.json:1:1: expected valid JSON"));
  CHECK_THROWS_WITH(parse_json_text("{\"a\": 1} x", "tail.json"), Contains("tail.json:1:10:"));
  CHECK_THROWS_WITH(parse_json_text("{\"a\": 1, \"b\": {\"c\": 1, \"c\": 2}}", "dup.json"),
                    Contains("dup.json: expected each key once per object, got duplicate key 'c'"));
  // The same key in sibling objects is fine.
  CHECK(parse_json_text("{\"x\": {\"c\": 1}, \"y\": {\"c\": 2}}", "ok.json")["y"]["c"] == 2);
  // nlohmann reports this one as out_of_range, not parse_error: still a FormatError here.
  CHECK_THROWS_AS(parse_json_text("{\"eps\": 1e999}", "big.json"), FormatError);
  CHECK_THROWS_WITH(parse_json_text("{\"eps\": 1e999}", "big.json"),
                    Contains("big.json: expected valid JSON, got number overflow parsing '1e999'"));
  CHECK_THROWS_WITH(JsonConfig::parse("[1, 2]", "list.json"),
                    Contains("list.json: expected a JSON object, got array [1,2]"));
}

TEST_CASE("JSON files are read from disk with I/O errors kept apart", "[io][json_config]") {
  std::random_device rd;
  const fs::path dir = fs::temp_directory_path() / ("tokenmix_json_" + std::to_string(rd()));
  fs::create_directories(dir);
  const std::string good = (dir / "config.json").string();
  const std::string bad = (dir / "broken.json").string();
  std::ofstream(good) << kConfig;
  std::ofstream(bad) << "{\"a\": [1, 2}\n";
  CHECK(JsonConfig::read(good).get<int>("hidden_size") == 256);
  CHECK(JsonConfig::read(good).source() == good);
  CHECK_THROWS_AS(read_json_file(bad), FormatError);
  CHECK_THROWS_WITH(read_json_file(bad), Contains(bad + ":1:12:"));
  CHECK_THROWS_AS(read_json_file((dir / "missing.json").string()), IoError);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

TEST_CASE("JSON nesting is limited, deeper text is a FormatError", "[io][json_config]") {
  auto nested = [](std::size_t levels) {
    return std::string(levels, '[') + std::string(levels, ']');
  };
  CHECK(parse_json_text(nested(256), "deep.json").is_array());  // the default limit
  CHECK_THROWS_AS(parse_json_text(nested(257), "deep.json"), FormatError);
  CHECK_THROWS_WITH(parse_json_text(nested(257), "deep.json"),
                    Contains("deep.json: expected JSON nesting at most 256 deep"));
  JsonParseOptions shallow;
  shallow.max_depth = 3;
  CHECK(parse_json_text("{\"a\": [{}]}", "s.json", shallow)["a"][0].is_object());
  CHECK_THROWS_WITH(parse_json_text("{\"a\": [{\"b\": []}]}", "s.json", shallow),
                    Contains("s.json: expected JSON nesting at most 3 deep"));
  // Scalars do not count as a level.
  CHECK(parse_json_text("[[[1, \"x\", null]]]", "s.json", shallow)[0][0][1] == "x");
  JsonParseOptions unlimited;
  unlimited.max_depth = 0;
  CHECK(parse_json_text(nested(5000), "deep.json", unlimited).is_array());
}

TEST_CASE("JSON errors carry their parts for callers with their own wording", "[io][json_config]") {
  try {
    parse_json_text("{\n  \"a\": tru\n}", "p.json");
    FAIL("no exception");
  } catch (const JsonParseError& e) {
    CHECK(e.line() == 2);
    CHECK(e.column() == 11);
    CHECK(e.byte() == 12);
    CHECK_THAT(e.detail(), Contains("invalid literal"));
    CHECK_THAT(std::string(e.what()), Contains("p.json:2:11: expected valid JSON, got ") &&
                                          Contains(e.detail()));
  }
  try {
    parse_json_text(R"({"x": [1, {"y": {"k": 1, "k": 2}}]})", "d.json");
    FAIL("no exception");
  } catch (const JsonDuplicateKeyError& e) {
    CHECK(e.key() == "k");
    CHECK(e.path() == std::vector<std::string>{"x", "1", "y"});
    CHECK_THAT(std::string(e.what()),
               Contains("d.json: expected each key once per object, got duplicate key 'k' in /x/1/y"));
  }
  try {
    parse_json_text(R"({"k": 1, "k": 2})", "top.json");
    FAIL("no exception");
  } catch (const JsonDuplicateKeyError& e) {
    CHECK(e.path().empty());
  }
  // A key whose value was a container, then repeated: still caught.
  CHECK_THROWS_AS(parse_json_text(R"({"a": {"b": [1]}, "a": 3})", "c.json"), JsonDuplicateKeyError);
  // A very long offending token is quoted by its end only.
  const std::string long_key = "{\"" + std::string(100000, 'k') + "\xff\": 1}";
  try {
    parse_json_text(long_key, "long.json");
    FAIL("no exception");
  } catch (const JsonParseError& e) {
    CHECK(std::string(e.what()).size() < 400);
    CHECK_THAT(e.detail(), Contains("ill-formed UTF-8") && Contains("'...kkkk"));
  }
}

TEST_CASE("a NUL byte never ends JSON text early", "[io][json_config]") {
  // nlohmann alone takes a NUL for the end of the input and ignores what follows.
  const std::string trailing("{\"a\": 1}\0{\"b\": garbage", 22);
  CHECK_THROWS_AS(parse_json_text(trailing, "nul.json"), JsonParseError);
  CHECK_THROWS_WITH(parse_json_text(trailing, "nul.json"),
                    Contains("nul.json:1:9: expected valid JSON, got a NUL byte after the JSON value"));
  const std::string inside("{\"a\": \0 1}", 10);
  CHECK_THROWS_WITH(parse_json_text(inside, "nul.json"), Contains("nul.json:1:7:") && Contains("a NUL byte"));
  CHECK_THROWS_WITH(parse_json_text(std::string("{\"a\0\": 1}", 9), "nul.json"),
                    Contains("control character U+0000"));
  // Escaped, it is an ordinary character.
  CHECK(parse_json_text(R"({"a\u0000": 1})", "ok.json").contains(std::string("a\0", 2)));
}

TEST_CASE("parsing stays linear in the number of members", "[io][json_config]") {
  // nlohmann's parser-callback path rescans the parent at every '}' (quadratic: minutes at
  // this size); parse_json_text must not.
  std::string text = "{";
  for (int i = 0; i < 100000; ++i) {
    if (i) text += ',';
    text += "\"k" + std::to_string(i) + "\":{}";
  }
  text += "}";
  const auto start = std::chrono::steady_clock::now();
  const nlohmann::json j = parse_json_text(text, "wide.json");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(j.size() == 100000);
  CHECK(j["k99999"].is_object());
  CHECK(seconds < 10.0);  // linear: well under a second even on a busy machine
}

}  // namespace test_io_json_config

#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tokenmix/core/tensor.hpp"
#include "tokenmix/io/json_config.hpp"

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

// End-to-end tests of the tokenmix-run program on the model and layer fixtures. The program
// is found through $TOKENMIX_RUN, the TOKENMIX_RUN_PATH compile definition, or next to this
// test binary's build tree (<build>/examples/tokenmix-run).

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "model_test_util.hpp"
#include "program_test_util.hpp"
#include "tokenmix/io/npy.hpp"
#include "tokenmix/io/safetensors.hpp"

namespace test_models_tokenmix_run {

namespace fs = std::filesystem;
using namespace tokenmix;

namespace {

using Run = tokenmix_test::ProgramRun;
using tokenmix_test::shell_quote;

std::string quote(const std::string& s) { return shell_quote(s); }
std::string path(const std::string& name) { return tokenmix_test::scratch_path(name); }
Run run(const std::string& args) {
  return tokenmix_test::run_program(
      tokenmix_test::example_program("TOKENMIX_RUN", TOKENMIX_RUN_PATH, "tokenmix-run"), args);
}

// Writes the fixture's weights (only) and its named io tensors as .npy files.
tokenmix_test::ModelFixture stage(const std::string& fixture) {
  auto f = tokenmix_test::load_model_fixture(fixture);
  write_safetensors(path(fixture + ".safetensors"), f.weights);
  for (const auto& kv : f.io)
    if (kv.first == "input" || kv.first == "input_ids" || kv.first == "token_type_ids")
      write_npy(path(fixture + "_" + kv.first + ".npy"), kv.second);
  std::ofstream(path(fixture + ".json")) << f.config.json().dump();
  return f;
}

template <class T>
Matrix<T> read_output(const std::string& file, Index cols) {
  const Tensor t = read_npy(path(file));
  REQUIRE(t.dtype() == dtype_of<T>());
  return tokenmix_test::as_rows<T>(t, cols);
}

std::string args_for(const std::string& model, const std::string& fixture, const char* input,
                     const std::string& extra = "") {
  return "--model " + model + " --weights " + quote(path(fixture + ".safetensors")) +
         " --input " + quote(path(fixture + "_" + input + ".npy")) + " --output " +
         quote(path(fixture + "_out.npy")) + " " + extra;
}

}  // namespace

TEST_CASE("tokenmix-run runs the image model fixtures", "[models][tokenmix_run]") {
  struct Case {
    const char* model;
    const char* fixture;
    bool config;
    Index classes;
  };
  for (const Case& c : {Case{"mixer", "mixer", false, 10}, Case{"mixer_s16_224", "mixer", false, 10},
                        Case{"gmlp", "gmlp", false, 10}, Case{"amlp", "amlp", false, 10},
                        Case{"resmlp", "resmlp", false, 10}, Case{"vit", "vit", true, 10},
                        Case{"vit_small_patch16_224", "vit_timm", true, 7}}) {
    INFO(c.model << " on " << c.fixture);
    const auto f = stage(c.fixture);
    const std::string cfg = c.config ? "--config " + quote(path(std::string(c.fixture) + ".json")) : "";
    const Matrix<double> ref = tokenmix_test::as_rows<double>(f.io.at("output"), c.classes);
    Run r = run(args_for(c.model, c.fixture, "input", cfg));
    INFO(r.err);
    REQUIRE(r.status == 0);
    tokenmix_test::require_close(read_output<float>(std::string(c.fixture) + "_out.npy", c.classes), ref, 1e-4);
    r = run(args_for(c.model, c.fixture, "input", cfg + " --dtype f64 --threads 1"));
    REQUIRE(r.status == 0);
    tokenmix_test::require_close(read_output<double>(std::string(c.fixture) + "_out.npy", c.classes), ref, 1e-9);
  }
}

TEST_CASE("tokenmix-run runs FNet (both key forms, pooled, logits) and sequence gMLP/aMLP",
          "[models][tokenmix_run]") {
  auto f = stage("fnet");
  Run r = run(args_for("fnet-base", "fnet", "input_ids",
                       "--token-types " + quote(path("fnet_token_type_ids.npy")) +
                           " --config " + quote(path("fnet.json")) + " --output-pooled " +
                           quote(path("fnet_pooled.npy")) + " --dtype f64"));
  INFO(r.err);
  REQUIRE(r.status == 0);
  // The fixture's config.json carries HF fields tokenmix does not use: one warning line.
  CHECK(r.err.find("warning") != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  tokenmix_test::require_close(read_output<double>("fnet_out.npy", 64),
                               tokenmix_test::as_rows<double>(f.io.at("output"), 64), 1e-9);
  tokenmix_test::require_close(read_output<double>("fnet_pooled.npy", 64),
                               tokenmix_test::as_rows<double>(f.io.at("pooled"), 64), 1e-9);

  f = stage("fnet_mlm");
  r = run(args_for("fnet", "fnet_mlm", "input_ids",
                   "--config " + quote(path("fnet_mlm.json")) + " --output-logits " +
                       quote(path("fnet_logits.npy"))));
  INFO(r.err);
  REQUIRE(r.status == 0);
  tokenmix_test::require_close(read_output<float>("fnet_mlm_out.npy", 64),
                               tokenmix_test::as_rows<double>(f.io.at("output"), 64), 1e-4);
  tokenmix_test::require_close(read_output<float>("fnet_logits.npy", 100),
                               tokenmix_test::as_rows<double>(f.io.at("logits"), 100), 1e-4);
  // Without the config, hidden_act defaults to gelu_new: a different model, not an error.
  r = run(args_for("fnet", "fnet_mlm", "input_ids", "--ignore-head --dtype f64"));
  REQUIRE(r.status == 0);
  CHECK(tokenmix_test::worst_violation(read_output<double>("fnet_mlm_out.npy", 64),
                                       tokenmix_test::as_rows<double>(f.io.at("output"), 64),
                                       1e-9) > 1.0);

  f = stage("gmlp_seq");
  r = run(args_for("gmlp", "gmlp_seq", "input_ids", "--dtype f64"));
  INFO(r.err);
  REQUIRE(r.status == 0);
  tokenmix_test::require_close(read_output<double>("gmlp_seq_out.npy", 50),
                               tokenmix_test::as_rows<double>(f.io.at("output"), 50), 1e-9);
  f = stage("amlp_seq_causal");
  r = run(args_for("amlp", "amlp_seq_causal", "input_ids",
                   "--config " + quote(path("amlp_seq_causal.json"))));
  INFO(r.err);
  REQUIRE(r.status == 0);
  tokenmix_test::require_close(read_output<float>("amlp_seq_causal_out.npy", 32),
                               tokenmix_test::as_rows<double>(f.io.at("output"), 32), 1e-4);
}

TEST_CASE("tokenmix-run runs single layers", "[models][tokenmix_run]") {
  struct Case {
    const char* model;
    const char* file;
    const char* config;
    Index out_cols;
  };
  const std::string data = TOKENMIX_TEST_DATA_DIR;
  for (const Case& c : {Case{"MLPMixerBlock", "layers/mlp_mixer_block_a", "", 8},
                        Case{"SpatialGatingUnit", "layers/spatial_gating_unit_causal",
                             R"({"causal": true})", 2},
                        Case{"SynthesizerDense", "attention/synthesizer_dense_causal",
                             R"({"causal": true, "num_heads": 1})", 12},
                        Case{"ExternalAttention", "attention/external_attention_multihead", "",
                             32}}) {
    INFO(c.model);
    const StateDict all = read_safetensors(data + "/" + c.file + ".safetensors");
    StateDict weights;
    for (const auto& kv : all)
      if (kv.first.find("input") != 0 && kv.first.find("output") != 0) weights.insert(kv.first, kv.second);
    write_safetensors(path("layer.safetensors"), weights);
    write_npy(path("layer_in.npy"), all.at("input"));
    std::string extra = "--dtype f64";
    if (*c.config) {
      std::ofstream(path("layer.json")) << c.config;
      extra += " --config " + quote(path("layer.json"));
    }
    const Run r = run("--model " + std::string(c.model) + " --weights " +
                      quote(path("layer.safetensors")) + " --input " + quote(path("layer_in.npy")) +
                      " --output " + quote(path("layer_out.npy")) + " " + extra);
    INFO(r.err);
    REQUIRE(r.status == 0);
    tokenmix_test::require_close(read_output<double>("layer_out.npy", c.out_cols),
                                 tokenmix_test::as_rows<double>(all.at("output"), c.out_cols),
                                 1e-10);
  }

  // FourierMixer has no parameters: Re(FFT2) of each sequence against a direct DFT.
  const Index n = 5, d = 6;
  Matrix<double> x(2 * n, d);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = std::sin(0.7 * static_cast<double>(i)) + 0.1;
  write_npy(path("fm_in.npy"), Tensor::from_values<double>({2, n, d}, x.data()));
  const Run r = run("--model FourierMixer --input " + quote(path("fm_in.npy")) + " --output " +
                    quote(path("fm_out.npy")) + " --dtype f64");
  INFO(r.err);
  REQUIRE(r.status == 0);
  Matrix<double> ref(2 * n, d);
  for (Index b = 0; b < 2; ++b)
    for (Index i = 0; i < n; ++i)
      for (Index k = 0; k < d; ++k) {
        double s = 0;
        for (Index m = 0; m < n; ++m)
          for (Index c = 0; c < d; ++c)
            s += x(b * n + m, c) * std::cos(2 * M_PI * (static_cast<double>((i * m) % n) / n +
                                                        static_cast<double>((k * c) % d) / d));
        ref(b * n + i, k) = s;
      }
  tokenmix_test::require_close(read_output<double>("fm_out.npy", d), ref, 1e-12);
}

TEST_CASE("tokenmix-run reports bad usage (2) and bad input (1) without crashing",
          "[models][tokenmix_run]") {
  stage("mixer");
  stage("gmlp");
  const std::string good = args_for("mixer", "mixer", "input");

  Run r = run("--help");
  CHECK(r.status == 0);
  for (const char* bad : {"", "--model mixer", "--bogus 1", "--model nonsense --weights a --input b --output c",
                          "--model mixer --weights a --input b", "--model mixer --threads",
                          "--model mixer --weights a --input b --output c --dtype f16",
                          "--model mixer --weights a --input b --output c --threads 0"}) {
    INFO("args: " << bad);
    r = run(bad);
    CHECK(r.status == 2);
    CHECK_FALSE(r.err.empty());
  }
  r = run(good + " --token-types " + quote(path("mixer_input.npy")));
  CHECK(r.status == 2);

  // Bad input: missing files, a malformed config, the wrong family, wrong image shape,
  // checkpoint problems (missing / extra / mis-shaped keys listed in the message).
  r = run("--model mixer --weights " + quote(path("absent.safetensors")) + " --input x --output y");
  CHECK(r.status == 1);
  CHECK(r.err.find("absent.safetensors") != std::string::npos);
  std::ofstream(path("broken.json")) << "{\"num_classes\": 10,";
  r = run(good + " --config " + quote(path("broken.json")));
  CHECK(r.status == 1);
  CHECK(r.err.find("broken.json") != std::string::npos);
  r = run(args_for("resmlp", "gmlp", "input"));
  CHECK(r.status == 1);
  CHECK(r.err.find("resmlp") != std::string::npos);
  r = run("--model mixer --weights " + quote(path("mixer.safetensors")) + " --input " +
          quote(path("gmlp_input.npy")) + " --output " + quote(path("o.npy")) + " --config " +
          quote(path("broken.json")));
  CHECK(r.status == 1);
  write_npy(path("small.npy"), Tensor(DType::F32, {1, 3, 16, 16}));
  r = run("--model mixer --weights " + quote(path("mixer.safetensors")) + " --input " +
          quote(path("small.npy")) + " --output " + quote(path("o.npy")));
  CHECK(r.status == 1);
  CHECK(r.err.find("(B, 3, 32, 32)") != std::string::npos);

  StateDict w = read_safetensors(path("mixer.safetensors"));
  w.erase("blocks.1.norm1.weight");
  w.insert("blocks.0.unexpected", Tensor(DType::F32, {2}));
  w.insert("norm.bias", Tensor(DType::F32, {63}));
  write_safetensors(path("bad.safetensors"), w);
  r = run("--model mixer --weights " + quote(path("bad.safetensors")) + " --input " +
          quote(path("mixer_input.npy")) + " --output " + quote(path("o.npy")));
  CHECK(r.status == 1);
  CHECK(r.err.find("blocks.1.norm1.weight") != std::string::npos);
  CHECK(r.err.find("blocks.0.unexpected") != std::string::npos);
  CHECK(r.err.find("norm.bias") != std::string::npos);

  // A checkpoint without its head needs --ignore-head; then the output is the 64 features.
  w = read_safetensors(path("mixer.safetensors"));
  w.erase("head.weight");
  write_safetensors(path("nohead.safetensors"), w);
  const std::string nohead = "--model mixer --weights " + quote(path("nohead.safetensors")) +
                             " --input " + quote(path("mixer_input.npy")) + " --output " +
                             quote(path("o.npy"));
  r = run(nohead + " --config " + quote(path("mixer.json")));
  CHECK(r.status == 1);
  std::ofstream(path("features.json")) << R"({"num_classes": 0})";
  r = run(nohead + " --ignore-head --config " + quote(path("features.json")));
  INFO(r.err);
  CHECK(r.status == 0);
  CHECK(read_npy(path("o.npy")).shape() == std::vector<std::int64_t>{2, 64});

  // Token ids out of range are bad input too.
  stage("fnet");
  Tensor ids = read_npy(path("fnet_input_ids.npy"));
  reinterpret_cast<std::int64_t*>(ids.raw())[3] = 1000;
  write_npy(path("bad_ids.npy"), ids);
  r = run("--model fnet --weights " + quote(path("fnet.safetensors")) + " --input " +
          quote(path("bad_ids.npy")) + " --output " + quote(path("o.npy")));
  CHECK(r.status == 1);
  CHECK(r.err.find("token ids") != std::string::npos);
}

}  // namespace test_models_tokenmix_run

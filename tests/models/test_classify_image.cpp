// End-to-end tests of the classify-image example on the mixer and resmlp model fixtures:
// pictures in PNG, binary PPM and ASCII PPM, against the PyTorch reference of the documented
// preprocessing (tests/reference/make_example_fixtures.py). The program is found through
// $TOKENMIX_CLASSIFY_IMAGE, the TOKENMIX_CLASSIFY_IMAGE_PATH compile definition, or next to this
// test binary's build tree.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model_test_util.hpp"
#include "program_test_util.hpp"
#include "tokenmix/io/safetensors.hpp"

namespace test_models_classify_image {

namespace {

using tokenmix_test::shell_quote;

std::string data(const std::string& name) {
  return std::string(TOKENMIX_TEST_DATA_DIR) + "/examples/" + name;
}

tokenmix_test::ProgramRun classify(const std::string& args) {
  return tokenmix_test::run_program(tokenmix_test::example_program("TOKENMIX_CLASSIFY_IMAGE",
                                                                   TOKENMIX_CLASSIFY_IMAGE_PATH,
                                                                   "classify-image"),
                                    args);
}

// The model fixture's weights alone, as a checkpoint file.
std::string staged_weights(const std::string& model) {
  const std::string file = tokenmix_test::scratch_path(model + "_weights.safetensors");
  tokenmix::write_safetensors(file, tokenmix_test::load_model_fixture(model).weights);
  return file;
}

struct Ranked {
  int cls;
  double probability;
};

// The reference's top five (class, softmax probability), highest first.
std::vector<Ranked> expected_top5(const std::string& picture, const std::string& model) {
  std::ifstream in(data("expected.json"));
  REQUIRE(in);
  const auto logits = nlohmann::json::parse(in).at(picture).at(model).get<std::vector<double>>();
  const double top = *std::max_element(logits.begin(), logits.end());
  double z = 0;
  for (double v : logits) z += std::exp(v - top);
  std::vector<Ranked> ranked;
  for (std::size_t c = 0; c < logits.size(); ++c)
    ranked.push_back({static_cast<int>(c), std::exp(logits[c] - top) / z});
  std::sort(ranked.begin(), ranked.end(),
            [](const Ranked& a, const Ranked& b) { return a.probability > b.probability; });
  ranked.resize(5);
  return ranked;
}

// Lines " 1. 0.1234  class 7[  label]".
std::vector<Ranked> printed_top5(const std::string& out, std::vector<std::string>* labels = nullptr) {
  std::vector<Ranked> ranked;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string rank, word;
    Ranked r{};
    fields >> rank >> r.probability >> word >> r.cls;
    REQUIRE(word == "class");
    ranked.push_back(r);
    if (labels != nullptr) {
      std::string label;
      fields >> label;
      labels->push_back(label);
    }
  }
  return ranked;
}

void check_ranking(const std::vector<Ranked>& got, const std::vector<Ranked>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    INFO("rank " << i + 1);
    CHECK(got[i].cls == want[i].cls);
    // Printed with four decimals; the float32 model is within 1e-5 of the float64 reference.
    CHECK(std::abs(got[i].probability - want[i].probability) <= 0.5e-4 + 1e-5);
  }
}

}  // namespace

TEST_CASE("classify-image matches the reference on PPM pictures (binary and ASCII)",
          "[models][classify_image]") {
  for (const std::string model : {"mixer", "resmlp"})
    for (const std::string picture : {"wide", "tall"}) {
      INFO(model << " on " << picture << ".ppm");
      const auto r = classify("--model " + model + " --weights " + shell_quote(staged_weights(model)) +
                              " --image " + shell_quote(data(picture + ".ppm")));
      INFO(r.err);
      REQUIRE(r.status == 0);
      check_ranking(printed_top5(r.out), expected_top5(picture, model));
    }
}

TEST_CASE("classify-image names the classes from a label file", "[models][classify_image]") {
  const std::string labels = tokenmix_test::scratch_path("labels.txt");
  {
    std::ofstream out(labels);
    for (int c = 0; c < 10; ++c) out << "label_" << c << "\n";
  }
  const auto r = classify("--model mixer --weights " + shell_quote(staged_weights("mixer")) +
                          " --image " + shell_quote(data("wide.ppm")) + " --labels " + shell_quote(labels));
  REQUIRE(r.status == 0);
  std::vector<std::string> names;
  const auto ranked = printed_top5(r.out, &names);
  for (std::size_t i = 0; i < ranked.size(); ++i) CHECK(names[i] == "label_" + std::to_string(ranked[i].cls));
}

#ifdef TOKENMIX_CLASSIFY_IMAGE_HAS_PNG
TEST_CASE("classify-image reads PNG: same answer as the same picture in PPM",
          "[models][classify_image]") {
  for (const std::string model : {"mixer", "resmlp"}) {
    INFO(model);
    const std::string weights = shell_quote(staged_weights(model));
    const auto png = classify("--model " + model + " --weights " + weights + " --image " +
                              shell_quote(data("wide.png")));
    INFO(png.err);
    REQUIRE(png.status == 0);
    check_ranking(printed_top5(png.out), expected_top5("wide", model));
    const auto ppm = classify("--model " + model + " --weights " + weights + " --image " +
                              shell_quote(data("wide.ppm")));
    CHECK(png.out == ppm.out);
  }
}
#endif

TEST_CASE("classify-image rejects bad pictures and usage with a message and an exit code",
          "[models][classify_image]") {
  const std::string weights = shell_quote(staged_weights("mixer"));
  const std::string not_an_image = tokenmix_test::scratch_path("not_an_image.png");
  std::ofstream(not_an_image) << "P6 this is not a PNG";
  auto r = classify("--model mixer --weights " + weights + " --image " + shell_quote(not_an_image));
  CHECK(r.status == 1);
  CHECK(r.err.find("not_an_image.png") != std::string::npos);

  const std::string truncated = tokenmix_test::scratch_path("truncated.ppm");
  std::ofstream(truncated) << "P6\n4 4\n255\nabc";
  r = classify("--model mixer --weights " + weights + " --image " + shell_quote(truncated));
  CHECK(r.status == 1);
  CHECK(r.err.find("truncated.ppm") != std::string::npos);

  r = classify("--model mixer --image " + shell_quote(data("wide.ppm")));  // no weights
  CHECK(r.status == 2);
  r = classify("--model fnet --weights " + weights + " --image " + shell_quote(data("wide.ppm")));
  CHECK(r.status == 2);
}

}  // namespace test_models_classify_image

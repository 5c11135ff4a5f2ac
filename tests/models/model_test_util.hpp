#pragma once
// Shared helpers of the model tests: fixture loading and the SPEC.md §5 criterion.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>

#include "tokenmix/io/safetensors.hpp"
#include "tokenmix/io/state_dict.hpp"
#include "tokenmix/io/json_config.hpp"

namespace tokenmix_test {

inline std::string model_fixture(const std::string& name) {
  return std::string(TOKENMIX_TEST_DATA_DIR) + "/models/" + name + ".safetensors";
}

// The fixture's tensors split into weights (what a checkpoint holds) and the rest.
struct ModelFixture {
  tokenmix::StateDict weights;
  tokenmix::StateDict io;  // input, input_ids, token_type_ids, output, pooled, logits
  tokenmix::JsonConfig config{nlohmann::json::object(), "fixture"};
};

inline ModelFixture load_model_fixture(const std::string& name) {
  const std::string path = model_fixture(name);
  const tokenmix::StateDict all = tokenmix::read_safetensors(path);
  ModelFixture f;
  f.weights.set_source(path);
  for (const auto& kv : all) {
    const std::string& k = kv.first;
    const bool io = k == "input" || k == "input_ids" || k == "token_type_ids" ||
                    k == "output" || k == "pooled" || k == "logits";
    (io ? f.io : f.weights).insert(k, kv.second);
  }
  const auto meta = tokenmix::read_safetensors_metadata(path);
  f.config = tokenmix::JsonConfig::parse(meta.at("config"), path + ": config");
  return f;
}

// |y - ref| <= atol + rtol |ref| with atol = rtol * max|ref| (SPEC.md §5); returns the worst
// ratio of error to allowance (<= 1 passes) so failures print how far off they are.
template <class A, class B>
double worst_violation(const A& y, const B& ref, double rtol) {
  REQUIRE(y.rows() == ref.rows());
  REQUIRE(y.cols() == ref.cols());
  double max_ref = 0;
  for (Eigen::Index i = 0; i < ref.rows(); ++i)
    for (Eigen::Index j = 0; j < ref.cols(); ++j)
      max_ref = std::max(max_ref, std::abs(static_cast<double>(ref(i, j))));
  const double atol = rtol * max_ref;
  double worst = 0;
  for (Eigen::Index i = 0; i < ref.rows(); ++i)
    for (Eigen::Index j = 0; j < ref.cols(); ++j) {
      const double r = static_cast<double>(ref(i, j)), v = static_cast<double>(y(i, j));
      if (!std::isfinite(v)) return INFINITY;
      worst = std::max(worst, std::abs(v - r) / (atol + rtol * std::abs(r)));
    }
  return worst;
}

template <class A, class B>
void require_close(const A& y, const B& ref, double rtol) {
  const double worst = worst_violation(y, ref, rtol);
  INFO("worst |y - ref| / (atol + rtol |ref|) = " << worst << " at rtol " << rtol);
  REQUIRE(worst <= 1.0);
}

// Row-wise argmax agreement (SPEC.md §5: models require identical argmax).
template <class A, class B>
void require_same_argmax(const A& y, const B& ref) {
  for (Eigen::Index i = 0; i < ref.rows(); ++i) {
    Eigen::Index a = 0, b = 0;
    y.row(i).maxCoeff(&a);
    ref.row(i).maxCoeff(&b);
    CHECK(a == b);
  }
}

template <class T>
tokenmix::Matrix<T> as_rows(const tokenmix::Tensor& t, Eigen::Index cols) {
  tokenmix::Matrix<T> m(static_cast<Eigen::Index>(t.numel()) / cols, cols);
  t.copy_to(m.data());
  return m;
}

}  // namespace tokenmix_test

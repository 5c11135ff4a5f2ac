// Built against an installed tokenmix: proves the umbrella header, the target's include
// path, C++17 and the Eigen dependency all arrive through find_package.
#include <tokenmix/tokenmix.hpp>

#include <cstdio>
#include <cstring>

int main() {
  if (std::strcmp(tokenmix::version_string, TOKENMIX_VERSION_STRING) != 0) return 1;
  tokenmix::Matrix<float> x = tokenmix::Matrix<float>::Ones(4, 3);
  tokenmix::SequenceBatch<float> batch(x.data(), 2, 2, 3);
  if (batch.sequence(1).sum() != 6.0f) return 2;
  try {
    tokenmix::StateDict empty("consumer");
    empty.at("missing.weight");
    return 3;
  } catch (const tokenmix::KeyError& e) {
    std::printf("tokenmix %s consumer ok (%s)\n", tokenmix::version_string, e.what());
  }
  return 0;
}

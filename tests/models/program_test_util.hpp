#pragma once
// Shared helpers of the tests that run the example programs (tokenmix-run, classify-image)
// as a user would: through the shell, reading their exit status, stdout and stderr.

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace tokenmix_test {

// A per-process directory under the system temp directory, made on first use.
inline std::filesystem::path program_scratch_dir() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() /
             ("tokenmix_program_test_" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline std::string scratch_path(const std::string& name) {
  return (program_scratch_dir() / name).string();
}

inline std::string shell_quote(const std::string& s) { return "'" + s + "'"; }

// The program given by $env_var, else the compile-time path (empty when CMake did not build
// the program), else <build>/examples/<name> next to this test binary's build tree.
inline std::string example_program(const char* env_var, const char* configured,
                                   const std::string& name) {
  if (const char* env = std::getenv(env_var)) return env;
  if (configured != nullptr && *configured != '\0') return configured;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe");
  return (self.parent_path().parent_path() / "examples" / name).string();
}

struct ProgramRun {
  int status;
  std::string out, err;
};

inline std::string slurp_text(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline ProgramRun run_program(const std::string& exe, const std::string& args) {
  REQUIRE(std::filesystem::exists(exe));
  const auto out = program_scratch_dir() / "stdout.txt", err = program_scratch_dir() / "stderr.txt";
  const std::string cmd = shell_quote(exe) + " " + args + " > " + shell_quote(out.string()) +
                          " 2> " + shell_quote(err.string());
  const int raw = std::system(cmd.c_str());
  REQUIRE(WIFEXITED(raw));
  return {WEXITSTATUS(raw), slurp_text(out), slurp_text(err)};
}

}  // namespace tokenmix_test

// Helpers shared by the tests/test_data_*.cpp suites: scratch directories and small files.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace ember_test {

// A fresh directory under the system temp dir, removed when the object dies.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag) {
    path = std::filesystem::temp_directory_path() / ("ember_" + tag + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

inline void write_text(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

inline std::string shared_dir() { return std::string(EMBER_SOURCE_DIR) + "/../shared"; }

}  // namespace ember_test

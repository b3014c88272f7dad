// Shared helpers for the libFuzzer targets. A target's contract: any input may be rejected with an
// exception (std::exception, in practice ember::Error), but none may crash, hang or leak. An
// exception with an empty message is itself a finding: users must be told what is wrong.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

namespace ember::fuzz {

// Readers that take a path (safetensors maps the file) get the input through one temp file per
// process, rewritten for every input; /dev/shm keeps that off the disk when it exists.
inline std::string write_temp(const uint8_t* data, size_t size, const char* suffix) {
  static std::string path = [&] {
    const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    return std::string(dir) + "/ember_fuzz_" + std::to_string(getpid()) + suffix;
  }();
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

// Runs `body`; an exception is a fine outcome as long as it explains itself.
template <class F>
void expect_no_crash(F&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    if (std::string(e.what()).empty()) {
      std::fprintf(stderr, "exception with an empty message\n");
      std::abort();
    }
  }
}

}  // namespace ember::fuzz

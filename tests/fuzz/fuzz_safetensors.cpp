// Fuzzes the safetensors reader: header validation, then reading every tensor (copy and alias).
#include "fuzz_util.h"
#include "nn/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = ember::fuzz::write_temp(data, size, ".safetensors");
  ember::fuzz::expect_no_crash([&] {
    ember::SafetensorsFile file(path);
    for (const auto& e : file.entries()) {
      (void)file.get(e.name, /*alias=*/false);
      (void)file.get(e.name, /*alias=*/true);
    }
  });
  return 0;
}

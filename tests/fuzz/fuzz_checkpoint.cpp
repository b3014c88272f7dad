// Fuzzes the checkpoint reader (a safetensors file plus JSON metadata: rng, optim, config).
#include "fuzz_util.h"
#include "nn/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = ember::fuzz::write_temp(data, size, ".ckpt.safetensors");
  ember::fuzz::expect_no_crash([&] { (void)ember::load_checkpoint(path); });
  return 0;
}

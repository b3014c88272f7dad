// Fuzzes the dataset config parser (JSON -> DatasetConfig, path resolution under root).
#include "data/config.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  ember::fuzz::expect_no_crash([&] {
    (void)ember::data::parse_dataset_config(text, "/tmp/ember_fuzz_root", "", "fuzz.json");
  });
  return 0;
}

// Fuzzes the experiment config parser. The JSON syntax itself is nlohmann's; what we fuzz is our
// interpretation of the parsed document (types, ranges, fractions, milestone blocks).
#include <nlohmann/json.hpp>

#include "apps/driver/experiment.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  ember::fuzz::expect_no_crash([&] {
    auto j = nlohmann::json::parse(text);
    (void)ember::driver::parse_experiment(j, "/tmp/ember_fuzz_root/experiment.json");
  });
  return 0;
}

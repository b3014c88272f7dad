// Fuzzes the RFC 4180 CSV parser and the column lookup on whatever header it produced.
#include "data/csv.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  ember::fuzz::expect_no_crash([&] {
    auto table = ember::data::parse_csv(text, "fuzz.csv");
    for (const auto& name : table.header) (void)table.column(name);
  });
  return 0;
}

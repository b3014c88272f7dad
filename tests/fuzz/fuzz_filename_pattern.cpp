// Fuzzes the UTKFace file-name label parser with the shipped pattern; the first byte also picks a
// second, separator-heavy pattern so both literal matching paths get exercised.
#include "data/filename_pattern.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ember::data::FilenamePattern utk("<age>_<gender>_<race>_<datetime>", {".jpg.chip.jpg", ".jpg"});
  static const ember::data::FilenamePattern other("id-<id>__<a>.<b>", {".png", ""});
  const std::string name(reinterpret_cast<const char*>(data), size);
  ember::fuzz::expect_no_crash([&] { (void)utk.parse(name); });
  ember::fuzz::expect_no_crash([&] { (void)other.parse(name); });
  // The pattern parser itself reads configs too.
  ember::fuzz::expect_no_crash([&] { (void)ember::data::FilenamePattern(name, {".jpg"}).parse("1_2_3_4.jpg"); });
  return 0;
}

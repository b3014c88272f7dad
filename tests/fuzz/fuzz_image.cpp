// Fuzzes image decoding with the loader's pixel limit, then the resize the loader applies, plus
// the header-only pre-check used by skip_bad.
#include "data/image.h"
#include "fuzz_util.h"

namespace {
// Small enough that the fuzzer cannot exhaust memory through a legitimately huge image; the
// limit itself is what stops decompression bombs.
constexpr int64_t kMaxPixels = 1 << 20;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ember::fuzz::expect_no_crash([&] {
    auto img = ember::data::decode_image_memory(data, size, kMaxPixels, "fuzz.img");
    (void)ember::data::resize(img, 32, 32, ember::data::ResizeMode::Area);
    (void)ember::data::resize(img, 48, 40, ember::data::ResizeMode::Bilinear);
  });
  const std::string path = ember::fuzz::write_temp(data, size, ".jpg");
  ember::fuzz::expect_no_crash([&] { (void)ember::data::check_image_file(path, kMaxPixels); });
  return 0;
}

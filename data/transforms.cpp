#include "data/transforms.h"

#include <sstream>

#include "engine/error.h"
#include "engine/rng.h"

namespace ember::data {

std::string ImagePipeline::describe() const {
  std::ostringstream os;
  os << "stored=" << stored_h() << "x" << stored_w() << ",resize=" << int(resize_mode);
  return os.str();
}

Image to_stored(const Image& decoded, const ImagePipeline& p) {
  return resize(decoded, p.stored_h(), p.stored_w(), p.resize_mode);
}

namespace {
// splitmix64 finaliser: turns (seed, epoch, row) into well-spread Philox keys.
uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
}  // namespace

void stored_to_tensor(const Image& stored, const ImagePipeline& p, bool train, uint64_t seed, int64_t epoch,
                      int64_t row, float* dst) {
  EMBER_CHECK(stored.h >= p.out_h && stored.w >= p.out_w, "image pipeline: stored size ", stored.h, "x", stored.w,
              " is smaller than the output ", p.out_h, "x", p.out_w);
  const bool same_size = stored.h == p.out_h && stored.w == p.out_w;
  if (!train) {
    if (same_size) return to_chw_float(stored, p.normalization, dst);
    return to_chw_float(center_crop(stored, p.out_h, p.out_w), p.normalization, dst);
  }
  Generator gen(mix(seed ^ mix(uint64_t(epoch) * 0x100000001B3ull ^ mix(uint64_t(row)))));
  auto uniform = [&] { return double(gen.next_u64() >> 11) * (1.0 / 9007199254740992.0); };
  // Draw every random number in a fixed order, used or not, so options do not shift each other.
  const double u_top = uniform(), u_left = uniform(), u_flip = uniform(), u_rot = uniform(), u_b = uniform(),
               u_c = uniform();
  Image img;
  if (same_size) img = stored;
  else if (p.random_crop)
    img = crop(stored, int(u_top * (stored.h - p.out_h + 1)), int(u_left * (stored.w - p.out_w + 1)), p.out_h, p.out_w);
  else img = center_crop(stored, p.out_h, p.out_w);
  if (p.hflip && u_flip < 0.5) img = flip_horizontal(img);
  if (p.rotate_degrees > 0) img = rotate(img, float((2 * u_rot - 1) * p.rotate_degrees));
  if (p.brightness > 0 || p.contrast > 0)
    img = adjust_brightness_contrast(img, float(1 + (2 * u_b - 1) * p.brightness),
                                     float(1 + (2 * u_c - 1) * p.contrast));
  to_chw_float(img, p.normalization, dst);
}

}  // namespace ember::data

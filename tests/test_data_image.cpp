// Image transforms against hand-computed references, normalisation presets, bad files, the cache.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "data/image.h"
#include "data/image_cache.h"
#include "engine/error.h"
#include "test_data_util.h"

using namespace ember::data;
using ::testing::HasSubstr;

namespace {
Image gray(int h, int w, std::vector<int> values) {
  Image img(h, w, 1);
  for (size_t i = 0; i < values.size(); ++i) img.px[i] = uint8_t(values[i]);
  return img;
}
std::vector<int> values(const Image& img) { return std::vector<int>(img.px.begin(), img.px.end()); }
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ember::Error& e) {
    return e.what();
  }
  return "";
}
Image gradient(int h, int w) {
  Image img(h, w, 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) img.at(y, x, c) = uint8_t((x * 7 + y * 3 + c * 40) % 256);
  return img;
}
}  // namespace

TEST(DataImage, BilinearUpscaleMatchesHandComputed) {
  // Source [[0, 100], [200, 40]] to 4x4. Sample positions (d + 0.5) / 2 - 0.5 = -0.25 (clamped to
  // 0), 0.25, 0.75, 1.25 (clamped to 1); e.g. row 1, col 1: top 25, bottom 160, 25 + 0.25 * 135.
  Image out = resize_bilinear(gray(2, 2, {0, 100, 200, 40}), 4, 4);
  EXPECT_EQ(values(out), (std::vector<int>{0, 25, 75, 100,      //
                                            50, 59, 76, 85,      // 58.75, 76.25 round to nearest
                                            150, 126, 79, 55,    // 126.25, 78.75
                                            200, 160, 80, 40}));
}

TEST(DataImage, AreaDownscaleMatchesHandComputed) {
  // 4x4 -> 2x2 is the mean of each 2x2 block.
  Image a = resize_area(gray(4, 4, {0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60}), 2, 2);
  EXPECT_EQ(values(a), (std::vector<int>{10, 18, 42, 50}));
  // 3x3 -> 2x2: destination pixel 0 covers source [0, 1.5): weights 2/3 and 1/3 per axis.
  // (0,0) = 4/9*0 + 2/9*30 + 2/9*90 + 1/9*120 = 40, and likewise 80, 160, 200.
  Image b = resize_area(gray(3, 3, {0, 30, 60, 90, 120, 150, 180, 210, 240}), 2, 2);
  EXPECT_EQ(values(b), (std::vector<int>{40, 80, 160, 200}));
  // Area of a constant image is that constant; resize() picks area only when shrinking.
  Image c = resize(gray(5, 7, std::vector<int>(35, 77)), 3, 2, ResizeMode::Area);
  EXPECT_EQ(values(c), std::vector<int>(6, 77));
  EXPECT_EQ(resize(gray(2, 2, {0, 100, 200, 40}), 4, 4, ResizeMode::Area).px, resize_bilinear(gray(2, 2, {0, 100, 200, 40}), 4, 4).px);
}

TEST(DataImage, FlipCropRotate) {
  Image img = gray(2, 3, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(values(flip_horizontal(img)), (std::vector<int>{3, 2, 1, 6, 5, 4}));
  EXPECT_EQ(values(crop(img, 0, 1, 2, 2)), (std::vector<int>{2, 3, 5, 6}));
  EXPECT_EQ(values(center_crop(gray(3, 3, {1, 2, 3, 4, 5, 6, 7, 8, 9}), 1, 1)), (std::vector<int>{5}));
  EXPECT_THAT(error_of([&] { crop(img, 1, 1, 2, 2); }), HasSubstr("does not fit"));
  Image sq = gray(3, 3, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  EXPECT_EQ(values(rotate(sq, 0)), values(sq));
  // 90 degrees counter-clockwise: the right column becomes the top row.
  std::vector<int> want = {3, 6, 9, 2, 5, 8, 1, 4, 7}, got = values(rotate(sq, 90));
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1) << i;
}

TEST(DataImage, BrightnessContrast) {
  Image img = gray(1, 4, {50, 100, 150, 200});
  EXPECT_EQ(values(adjust_brightness_contrast(img, 1.0f, 1.0f)), values(img));
  EXPECT_EQ(values(adjust_brightness_contrast(img, 1.0f, 0.0f)), (std::vector<int>{125, 125, 125, 125}));
  EXPECT_EQ(values(adjust_brightness_contrast(img, 1.2f, 1.0f)), (std::vector<int>{60, 120, 180, 240}));
}

TEST(DataImage, NormalizationPresets) {
  Image img(1, 1, 3);
  img.px = {10, 20, 30};
  float out[3];
  to_chw_float(img, Normalization::ImageNet, out);
  EXPECT_NEAR(out[0], (10 / 255.0 - 0.485) / 0.229, 1e-5);
  EXPECT_NEAR(out[2], (30 / 255.0 - 0.406) / 0.225, 1e-5);
  to_chw_float(img, Normalization::MinusOneOne, out);
  EXPECT_NEAR(out[1], 20 / 127.5 - 1, 1e-6);
  to_chw_float(img, Normalization::Caffe, out);  // BGR planes, mean subtracted, no scaling
  EXPECT_NEAR(out[0], 30 - 103.939, 1e-4);
  EXPECT_NEAR(out[2], 10 - 123.68, 1e-4);
  to_chw_float(img, Normalization::None, out);
  EXPECT_NEAR(out[1], 20 / 255.0, 1e-6);
  EXPECT_EQ(parse_normalization("caffe"), Normalization::Caffe);
  EXPECT_THROW(parse_normalization("vgg"), ember::Error);
  // CHW layout: plane by plane.
  Image two(1, 2, 3);
  two.px = {1, 2, 3, 4, 5, 6};
  float chw[6];
  to_chw_float(two, Normalization::None, chw);
  EXPECT_NEAR(chw[1] * 255, 4, 1e-4);
  EXPECT_NEAR(chw[2] * 255, 2, 1e-4);
}

TEST(DataImage, RoundTripFormats) {
  ember_test::TempDir dir("data_image_rt");
  Image img = gradient(12, 10);
  for (const char* ext : {".png", ".bmp"}) {
    write_image(dir.file(std::string("x") + ext), img);
    EXPECT_EQ(decode_image(dir.file(std::string("x") + ext), 1 << 20).px, img.px) << ext;
  }
  write_image(dir.file("x.jpg"), img);
  Image j = decode_image(dir.file("x.jpg"), 1 << 20);
  ASSERT_EQ(j.h, 12);
  ASSERT_EQ(j.w, 10);
  double err = 0;
  for (size_t i = 0; i < j.px.size(); ++i) err += std::abs(int(j.px[i]) - int(img.px[i]));
  EXPECT_LT(err / double(j.px.size()), 12.0);  // lossy, but close
}

TEST(DataImage, BadFilesAreRefusedNamingTheFile) {
  ember_test::TempDir dir("data_image_bad");
  write_image(dir.file("ok.jpg"), gradient(40, 40));
  const auto size = std::filesystem::file_size(dir.file("ok.jpg"));
  std::filesystem::copy_file(dir.file("ok.jpg"), dir.file("trunc.jpg"));
  std::filesystem::resize_file(dir.file("trunc.jpg"), size / 2);
  ember_test::write_text(dir.file("zero.png"), "");
  ember_test::write_text(dir.file("junk.png"), "this is not an image at all");
  EXPECT_EQ(check_image_file(dir.file("ok.jpg"), 1 << 20), "");
  EXPECT_THAT(check_image_file(dir.file("trunc.jpg"), 1 << 20), HasSubstr("truncated"));
  EXPECT_THAT(check_image_file(dir.file("zero.png"), 1 << 20), HasSubstr("zero-byte"));
  EXPECT_THAT(check_image_file(dir.file("junk.png"), 1 << 20), HasSubstr("not a readable image"));
  EXPECT_THAT(check_image_file(dir.file("nope.png"), 1 << 20), HasSubstr("missing"));
  for (const char* name : {"trunc.jpg", "zero.png", "junk.png", "nope.png"})
    EXPECT_THAT(error_of([&] { decode_image(dir.file(name), 1 << 20); }), HasSubstr(name));
  EXPECT_THAT(error_of([&] { decode_image(dir.file("ok.jpg"), 1000); }), HasSubstr("exceeds"));
}

TEST(DataImage, DecompressionBombRefusedFromHeader) {
  // A PNG header that claims 10000 x 10000 RGB but carries no pixel data: refused from the header,
  // before any allocation, by the max_pixels limit.
  const uint8_t png[] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                         0, 0, 0x27, 0x10, 0, 0, 0x27, 0x10, 8, 2, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_THAT(error_of([&] { decode_image_memory(png, sizeof png, 64LL << 20, "bomb.png"); }),
              HasSubstr("exceeds the limit"));
}

TEST(DataImageCache, InMemoryAndOnDiskReuse) {
  ember_test::TempDir dir("data_cache");
  auto mem = ImageCache::in_memory(3, 4, 5, 3, 99);
  Image img = gradient(4, 5), back;
  EXPECT_FALSE(mem->has(1));
  mem->put(1, img);
  EXPECT_TRUE(mem->has(1));
  mem->get(1, back);
  EXPECT_EQ(back.px, img.px);
  EXPECT_THROW(mem->get(0, back), ember::Error);
  EXPECT_THROW(mem->put(0, gradient(5, 5)), ember::Error);

  const std::string path = dir.file("cache.bin");
  {
    auto disk = ImageCache::on_disk(path, 3, 4, 5, 3, 1234);
    EXPECT_FALSE(disk->reopened());
    disk->put(2, img);
  }
  {
    auto disk = ImageCache::on_disk(path, 3, 4, 5, 3, 1234);  // same key: slots survive
    EXPECT_TRUE(disk->reopened());
    EXPECT_EQ(disk->filled(), 1);
    disk->get(2, back);
    EXPECT_EQ(back.px, img.px);
  }
  auto other = ImageCache::on_disk(path, 3, 4, 5, 3, 4321);  // other data: rebuilt, never stale
  EXPECT_FALSE(other->reopened());
  EXPECT_EQ(other->filled(), 0);
}

TEST(DataImageCache, OnDiskCreatesMissingFolders) {
  // Experiment configs name e.g. ../runs/cache/x.cache, which a fresh clone does not have.
  ember_test::TempDir dir("data_cache_dirs");
  const std::string path = dir.file("runs/cache/deeper/x.cache");
  auto disk = ImageCache::on_disk(path, 2, 4, 5, 3, 7);
  disk->put(0, gradient(4, 5));
  EXPECT_TRUE(std::filesystem::exists(path));
  // A folder that cannot be made (a file is in the way) is named in the error.
  const std::string blocked = dir.file("runs/cache/deeper/x.cache/y.cache");
  try {
    ImageCache::on_disk(blocked, 2, 4, 5, 3, 7);
    FAIL() << "expected an error for " << blocked;
  } catch (const ember::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot create folder"), std::string::npos) << e.what();
  }
}

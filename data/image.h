// 8-bit images (HWC, interleaved RGB) and the transforms the loader applies to them: decoding via
// stb_image with a pixel limit checked before decoding, bilinear / area resize, crops, flip, small
// rotations, brightness/contrast jitter, and conversion to normalised float CHW.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ember::data {

struct Image {
  int h = 0, w = 0, c = 3;
  std::vector<uint8_t> px;  // h * w * c, row-major HWC
  Image() = default;
  Image(int height, int width, int channels = 3) : h(height), w(width), c(channels), px(size_t(height) * width * channels) {}
  uint8_t& at(int y, int x, int ch) { return px[(size_t(y) * w + x) * c + ch]; }
  uint8_t at(int y, int x, int ch) const { return px[(size_t(y) * w + x) * c + ch]; }
  bool empty() const { return px.empty(); }
};

// Returns "" when the file looks decodable: it exists, is not empty, its header parses, its size is
// within max_pixels, and a JPEG ends with the end-of-image marker (stb_image silently pads a
// truncated JPEG with grey, so truncation must be caught here). Otherwise a reason, e.g. "zero-byte file".
std::string check_image_file(const std::string& path, int64_t max_pixels);

// Decodes JPEG/PNG/BMP (anything stb_image reads) to RGB. Throws naming the file when it cannot be
// read, is corrupt, or has more than max_pixels pixels (checked from the header, before decoding,
// so a decompression bomb never allocates).
Image decode_image(const std::string& path, int64_t max_pixels);
Image decode_image_memory(const uint8_t* bytes, size_t size, int64_t max_pixels, const std::string& name);

// Writes PNG (".png"), BMP (".bmp") or JPEG (".jpg", quality 95) by extension.
void write_image(const std::string& path, const Image& img);

// Resizes. Bilinear uses pixel centres (src = (dst + 0.5) * scale - 0.5, clamped at the edges) like
// OpenCV INTER_LINEAR; area averages each source pixel by its exact overlap with the destination
// pixel (OpenCV INTER_AREA), which is the right choice for shrinking. Results round to nearest.
Image resize_bilinear(const Image& src, int out_h, int out_w);
Image resize_area(const Image& src, int out_h, int out_w);
enum class ResizeMode { Bilinear, Area };
// Area when shrinking in both directions, bilinear otherwise.
Image resize(const Image& src, int out_h, int out_w, ResizeMode mode);

Image crop(const Image& src, int top, int left, int h, int w);  // throws when out of bounds
Image center_crop(const Image& src, int h, int w);
Image flip_horizontal(const Image& src);
// Rotates about the centre by `degrees` (counter-clockwise), bilinear sampling, edges replicated.
Image rotate(const Image& src, float degrees);
// v' = ((v * brightness) - m) * contrast + m, with m the mean intensity; clamped to [0, 255].
Image adjust_brightness_contrast(const Image& src, float brightness, float contrast);

// Float normalisation presets for pretrained backbones.
enum class Normalization {
  None,         // v / 255
  ImageNet,     // (v/255 - mean) / std, mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)
  MinusOneOne,  // v / 127.5 - 1 (MobileNet, Inception)
  Caffe,        // BGR order, v - (103.939, 116.779, 123.68) (Keras VGG16 "caffe" mode)
};
Normalization parse_normalization(const std::string& s);  // none|imagenet|minus_one_one|caffe
// Writes the image as normalised float CHW into dst (c * h * w floats).
void to_chw_float(const Image& img, Normalization norm, float* dst);

}  // namespace ember::data

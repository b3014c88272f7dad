#include "data/image.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "data/stb_bridge.h"
#include "engine/error.h"

namespace ember::data {

namespace {

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(detail::cat("image '", path, "': cannot open file"));
  const std::streamsize size = in.tellg();
  std::vector<uint8_t> bytes(size_t(std::max<std::streamsize>(size, 0)));
  in.seekg(0);
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size))
    throw Error(detail::cat("image '", path, "': read error"));
  return bytes;
}

bool is_jpeg(const uint8_t* b, size_t n) { return n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF; }

// A complete JPEG ends with FF D9; allow a little trailing padding some writers append.
bool jpeg_has_end_marker(const uint8_t* b, size_t n) {
  const size_t lo = n > 256 ? n - 256 : 0;
  for (size_t i = n; i-- > lo + 1;)
    if (b[i - 1] == 0xFF && b[i] == 0xD9) return true;
  return false;
}

bool is_png(const uint8_t* b, size_t n) {
  static const uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  return n >= 8 && std::equal(kSignature, kSignature + 8, b);
}

// A complete PNG ends with the IEND chunk (length 0, "IEND", CRC AE 42 60 82); stb reports a cut
// file only when it decodes it, so the header-only check looks at the tail like it does for JPEG
// (allowing some trailing bytes, as for the JPEG end marker).
bool png_has_end_chunk(const uint8_t* b, size_t n) {
  static const uint8_t kIend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
  const uint8_t* lo = b + (n > 256 ? n - 256 : 0);
  return std::search(lo, b + n, kIend, kIend + 12) != b + n;
}

// stb_image 2.27 (Debian's) mishandles two kinds of broken Huffman tables, both found by
// tests/fuzz/fuzz_image (stb 2.28 refuses them):
//  - a DHT segment declaring more than 256 codes makes it write past its tables;
//  - a scan that uses a table no DHT defined makes it decode with uninitialised tables (its decoder
//    struct is malloc'ed, not zeroed) and read far past them.
// We cannot patch the system header, so walk the marker segments first, following stb's own reading
// of a DHT (tables read until the declared length is used up, bytes past the end read as 0) and
// of a scan header (which tables a baseline or progressive scan actually decodes with).
std::string jpeg_huffman_problem(const uint8_t* b, size_t n) {
  auto at = [&](size_t i) -> int { return i < n ? b[i] : 0; };
  bool progressive = false, defined[2][4] = {};  // [DC=0 / AC=1][table id]
  for (size_t i = 0; i + 4 <= n;) {
    const int m = b[i + 1];
    if (b[i] != 0xFF || m == 0xFF || m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD8)) {
      ++i;  // entropy-coded data, fill bytes, stuffed zeros, SOI and restart markers carry no length
      continue;
    }
    if (m == 0xD9) break;  // end of image
    const int64_t len = (int64_t(b[i + 2]) << 8) | b[i + 3];
    if (m == 0xC2) progressive = true;
    if (m == 0xC4) {
      int64_t left = len - 2;
      for (size_t p = i + 4; left > 0;) {
        int codes = 0;
        for (size_t k = 1; k <= 16; ++k) codes += at(p + k);
        if (codes > 256) return detail::cat("corrupt JPEG (a Huffman table at byte ", p, " declares ", codes, " codes; at most 256)");
        const int tc = at(p) >> 4, th = at(p) & 15;
        if (tc <= 1 && th <= 3) defined[tc][th] = true;  // stb rejects other classes and ids itself
        p += 17 + size_t(codes);
        left -= 17 + codes;
      }
      if (left != 0) return "";  // stb stops at this malformed segment itself
    }
    if (m == 0xDA) {
      const int ns = at(i + 4);
      const int spectral_start = at(i + 5 + 2 * size_t(ns)), high_bit = at(i + 7 + 2 * size_t(ns)) >> 4;
      // Baseline scans decode with both tables; progressive DC first scans with the DC table only,
      // DC refinement scans with none, AC scans with the AC table only.
      const bool uses_dc = !progressive || (spectral_start == 0 && high_bit == 0);
      const bool uses_ac = !progressive || spectral_start > 0;
      for (int k = 0; k < ns; ++k) {
        const int ids = at(i + 6 + 2 * size_t(k)), dc = ids >> 4, ac = ids & 15;
        if (uses_dc && dc <= 3 && !defined[0][dc])
          return detail::cat("corrupt JPEG (the scan at byte ", i, " decodes with DC Huffman table ", dc,
                             ", which no DHT segment before it defines)");
        if (uses_ac && ac <= 3 && !defined[1][ac])
          return detail::cat("corrupt JPEG (the scan at byte ", i, " decodes with AC Huffman table ", ac,
                             ", which no DHT segment before it defines)");
      }
    }
    i += 2 + size_t(len);
  }
  return "";
}

// stb_image sizes its IDAT buffer from each chunk's DECLARED length before reading it, so an
// 80-byte PNG can make it allocate 2 GB (found by fuzz_image). Refuse chunks that run past the file.
std::string png_chunk_problem(const uint8_t* b, size_t n) {
  for (size_t i = 8; i + 8 <= n;) {
    const uint64_t len = (uint64_t(b[i]) << 24) | (uint64_t(b[i + 1]) << 16) | (uint64_t(b[i + 2]) << 8) | b[i + 3];
    if (len + 12 > n - i)
      return detail::cat("corrupt PNG (chunk '", std::string(reinterpret_cast<const char*>(b + i + 4), 4), "' at byte ", i,
                         " declares ", len, " bytes, past the end of the file)");
    if (std::equal(b + i + 4, b + i + 8, "IEND")) break;
    i += 12 + size_t(len);
  }
  return "";
}

inline uint8_t to_u8(float v) { return uint8_t(std::clamp(v + 0.5f, 0.0f, 255.0f)); }

}  // namespace

std::string check_image_file(const std::string& path, int64_t max_pixels) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return "missing image file";
  if (std::filesystem::file_size(path, ec) == 0) return "zero-byte image file";
  std::vector<uint8_t> bytes;
  try {
    bytes = read_file(path);
  } catch (const Error&) {
    return "unreadable image file";
  }
  if (is_png(bytes.data(), bytes.size()))
    if (std::string why = png_chunk_problem(bytes.data(), bytes.size()); !why.empty()) return why;
  if (!bytes.empty() && bytes[0] == 0xFF)  // before stb sees it (it skips 0xFF fill before SOI, so not is_jpeg)
    if (std::string why = jpeg_huffman_problem(bytes.data(), bytes.size()); !why.empty()) return why;
  int w = 0, h = 0, c = 0;
  if (!stb::info_from_memory(bytes.data(), bytes.size(), &w, &h, &c))
    return detail::cat("not a readable image (", stb::failure_reason(), ")");
  if (int64_t(w) * h > max_pixels) return detail::cat("image is ", w, "x", h, ", over the limit of ", max_pixels, " pixels");
  if (is_jpeg(bytes.data(), bytes.size()) && !jpeg_has_end_marker(bytes.data(), bytes.size()))
    return "truncated JPEG (no end-of-image marker)";
  if (is_png(bytes.data(), bytes.size()) && !png_has_end_chunk(bytes.data(), bytes.size()))
    return "truncated PNG (no IEND chunk at the end)";
  return "";
}

Image decode_image_memory(const uint8_t* bytes, size_t size, int64_t max_pixels, const std::string& name) {
  if (size == 0) throw Error(detail::cat("image '", name, "': zero-byte file"));
  if (is_png(bytes, size))
    if (std::string why = png_chunk_problem(bytes, size); !why.empty()) throw Error(detail::cat("image '", name, "': ", why));
  if (bytes[0] == 0xFF)  // before stb sees it: its header parser builds the Huffman tables (after any 0xFF fill)
    if (std::string why = jpeg_huffman_problem(bytes, size); !why.empty()) throw Error(detail::cat("image '", name, "': ", why));
  int w = 0, h = 0, c = 0;
  if (!stb::info_from_memory(bytes, size, &w, &h, &c))
    throw Error(detail::cat("image '", name, "': cannot decode (", stb::failure_reason(), ")"));
  // Check the declared size before decoding: a tiny file can claim gigapixels (decompression bomb).
  if (int64_t(w) * h > max_pixels)
    throw Error(detail::cat("image '", name, "': ", w, "x", h, " exceeds the limit of ", max_pixels, " pixels"));
  if (is_jpeg(bytes, size) && !jpeg_has_end_marker(bytes, size))
    throw Error(detail::cat("image '", name, "': truncated JPEG (no end-of-image marker)"));
  uint8_t* p = stb::load_from_memory(bytes, size, &w, &h);
  if (!p) throw Error(detail::cat("image '", name, "': cannot decode (", stb::failure_reason(), ")"));
  Image img(h, w, 3);
  std::copy(p, p + img.px.size(), img.px.begin());
  stb::free_image(p);
  return img;
}

Image decode_image(const std::string& path, int64_t max_pixels) {
  std::vector<uint8_t> bytes = read_file(path);
  return decode_image_memory(bytes.data(), bytes.size(), max_pixels, path);
}

void write_image(const std::string& path, const Image& img) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);  // like any "save as"
  const std::string ext = std::filesystem::path(path).extension().string();
  bool ok = false;
  if (ext == ".png") ok = stb::write_png(path.c_str(), img.w, img.h, img.c, img.px.data());
  else if (ext == ".bmp") ok = stb::write_bmp(path.c_str(), img.w, img.h, img.c, img.px.data());
  else if (ext == ".jpg" || ext == ".jpeg") ok = stb::write_jpg(path.c_str(), img.w, img.h, img.c, img.px.data(), 95);
  else throw Error(detail::cat("write_image '", path, "': only .png, .bmp and .jpg are supported"));
  if (!ok) throw Error(detail::cat("write_image '", path, "': write failed"));
}

Image resize_bilinear(const Image& src, int out_h, int out_w) {
  EMBER_CHECK(out_h > 0 && out_w > 0 && !src.empty(), "resize_bilinear: bad size ", out_h, "x", out_w);
  // Per-axis source indices and weights, computed once.
  auto axis = [](int in, int out, std::vector<int>& i0, std::vector<int>& i1, std::vector<float>& f) {
    const double scale = double(in) / out;
    for (int d = 0; d < out; ++d) {
      double s = std::clamp((d + 0.5) * scale - 0.5, 0.0, double(in - 1));
      int a = int(std::floor(s));
      i0.push_back(a);
      i1.push_back(std::min(a + 1, in - 1));
      f.push_back(float(s - a));
    }
  };
  std::vector<int> y0, y1, x0, x1;
  std::vector<float> fy, fx;
  axis(src.h, out_h, y0, y1, fy);
  axis(src.w, out_w, x0, x1, fx);
  Image dst(out_h, out_w, src.c);
  const int c = src.c;
  for (int y = 0; y < out_h; ++y) {
    const uint8_t* r0 = &src.px[size_t(y0[y]) * src.w * c];
    const uint8_t* r1 = &src.px[size_t(y1[y]) * src.w * c];
    uint8_t* o = &dst.px[size_t(y) * out_w * c];
    for (int x = 0; x < out_w; ++x)
      for (int ch = 0; ch < c; ++ch) {
        float top = r0[x0[x] * c + ch] + fx[x] * (r0[x1[x] * c + ch] - r0[x0[x] * c + ch]);
        float bot = r1[x0[x] * c + ch] + fx[x] * (r1[x1[x] * c + ch] - r1[x0[x] * c + ch]);
        o[x * c + ch] = to_u8(top + fy[y] * (bot - top));
      }
  }
  return dst;
}

namespace {
// Overlap weights of source pixels with each destination pixel along one axis (normalised to 1).
struct AreaTap {
  int src;
  float weight;
};
std::vector<std::vector<AreaTap>> area_axis(int in, int out) {
  std::vector<std::vector<AreaTap>> taps(static_cast<size_t>(out));
  const double scale = double(in) / out;
  for (int d = 0; d < out; ++d) {
    const double lo = d * scale, hi = (d + 1) * scale;
    for (int s = int(std::floor(lo)); s < int(std::ceil(hi)) && s < in; ++s) {
      double overlap = std::min<double>(hi, s + 1) - std::max<double>(lo, s);
      if (overlap > 1e-9) taps[d].push_back({s, float(overlap / scale)});
    }
  }
  return taps;
}
}  // namespace

Image resize_area(const Image& src, int out_h, int out_w) {
  EMBER_CHECK(out_h > 0 && out_w > 0 && !src.empty(), "resize_area: bad size ", out_h, "x", out_w);
  const auto ty = area_axis(src.h, out_h), tx = area_axis(src.w, out_w);
  const int c = src.c;
  // Horizontal pass into floats, then vertical pass (separable box filter).
  std::vector<float> tmp(size_t(src.h) * out_w * c, 0.0f);
  for (int y = 0; y < src.h; ++y) {
    const uint8_t* row = &src.px[size_t(y) * src.w * c];
    float* t = &tmp[size_t(y) * out_w * c];
    for (int x = 0; x < out_w; ++x)
      for (const AreaTap& tap : tx[x])
        for (int ch = 0; ch < c; ++ch) t[x * c + ch] += tap.weight * row[tap.src * c + ch];
  }
  Image dst(out_h, out_w, c);
  std::vector<float> acc(size_t(out_w) * c);
  for (int y = 0; y < out_h; ++y) {
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (const AreaTap& tap : ty[y]) {
      const float* t = &tmp[size_t(tap.src) * out_w * c];
      for (int i = 0; i < out_w * c; ++i) acc[i] += tap.weight * t[i];
    }
    for (int i = 0; i < out_w * c; ++i) dst.px[size_t(y) * out_w * c + i] = to_u8(acc[i]);
  }
  return dst;
}

Image resize(const Image& src, int out_h, int out_w, ResizeMode mode) {
  if (src.h == out_h && src.w == out_w) return src;
  if (mode == ResizeMode::Area && out_h <= src.h && out_w <= src.w) return resize_area(src, out_h, out_w);
  return resize_bilinear(src, out_h, out_w);
}

Image crop(const Image& src, int top, int left, int h, int w) {
  EMBER_CHECK(top >= 0 && left >= 0 && h > 0 && w > 0 && top + h <= src.h && left + w <= src.w, "crop: window ", h,
              "x", w, " at (", top, ", ", left, ") does not fit a ", src.h, "x", src.w, " image");
  Image dst(h, w, src.c);
  const size_t row_bytes = size_t(w) * src.c;
  for (int y = 0; y < h; ++y)
    std::copy_n(&src.px[(size_t(top + y) * src.w + left) * src.c], row_bytes, &dst.px[size_t(y) * row_bytes]);
  return dst;
}

Image center_crop(const Image& src, int h, int w) { return crop(src, (src.h - h) / 2, (src.w - w) / 2, h, w); }

Image flip_horizontal(const Image& src) {
  Image dst(src.h, src.w, src.c);
  for (int y = 0; y < src.h; ++y)
    for (int x = 0; x < src.w; ++x)
      for (int ch = 0; ch < src.c; ++ch) dst.at(y, x, ch) = src.at(y, src.w - 1 - x, ch);
  return dst;
}

Image rotate(const Image& src, float degrees) {
  const double a = degrees * M_PI / 180.0, ca = std::cos(a), sa = std::sin(a);
  const double cx = (src.w - 1) / 2.0, cy = (src.h - 1) / 2.0;
  Image dst(src.h, src.w, src.c);
  for (int y = 0; y < src.h; ++y)
    for (int x = 0; x < src.w; ++x) {
      // Inverse map: where in the source does this destination pixel come from (y axis points down,
      // so a counter-clockwise turn on screen uses +sin here).
      const double dx = x - cx, dy = y - cy;
      const double sx = std::clamp(cx + ca * dx - sa * dy, 0.0, double(src.w - 1));
      const double sy = std::clamp(cy + sa * dx + ca * dy, 0.0, double(src.h - 1));
      const int x0 = int(sx), y0 = int(sy), x1 = std::min(x0 + 1, src.w - 1), y1 = std::min(y0 + 1, src.h - 1);
      const float fx = float(sx - x0), fy = float(sy - y0);
      for (int ch = 0; ch < src.c; ++ch) {
        float top = src.at(y0, x0, ch) + fx * (src.at(y0, x1, ch) - src.at(y0, x0, ch));
        float bot = src.at(y1, x0, ch) + fx * (src.at(y1, x1, ch) - src.at(y1, x0, ch));
        dst.at(y, x, ch) = to_u8(top + fy * (bot - top));
      }
    }
  return dst;
}

Image adjust_brightness_contrast(const Image& src, float brightness, float contrast) {
  double sum = 0;
  for (uint8_t v : src.px) sum += v;
  const float mean = src.px.empty() ? 0.0f : float(sum / double(src.px.size())) * brightness;
  Image dst = src;
  for (auto& v : dst.px) v = to_u8((v * brightness - mean) * contrast + mean);
  return dst;
}

Normalization parse_normalization(const std::string& s) {
  if (s == "none") return Normalization::None;
  if (s == "imagenet") return Normalization::ImageNet;
  if (s == "minus_one_one") return Normalization::MinusOneOne;
  if (s == "caffe") return Normalization::Caffe;
  throw Error(detail::cat("unknown normalization '", s, "' (none, imagenet, minus_one_one, caffe)"));
}

void to_chw_float(const Image& img, Normalization norm, float* dst) {
  EMBER_CHECK(img.c == 3 || norm == Normalization::None || norm == Normalization::MinusOneOne,
              "to_chw_float: preset needs 3 channels, image has ", img.c);
  float scale[4] = {1, 1, 1, 1}, shift[4] = {0, 0, 0, 0};
  int source_channel[4] = {0, 1, 2, 3};
  for (int ch = 0; ch < img.c; ++ch) {
    switch (norm) {
      case Normalization::None: scale[ch] = 1.0f / 255; break;
      case Normalization::ImageNet: {
        static const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
        scale[ch] = 1.0f / (255 * stdv[ch]);
        shift[ch] = -mean[ch] / stdv[ch];
        break;
      }
      case Normalization::MinusOneOne: scale[ch] = 1.0f / 127.5f, shift[ch] = -1.0f; break;
      case Normalization::Caffe: {
        static const float bgr_mean[3] = {103.939f, 116.779f, 123.68f};
        source_channel[ch] = 2 - ch;  // output plane 0 is blue
        shift[ch] = -bgr_mean[ch];
        break;
      }
    }
  }
  const size_t plane = size_t(img.h) * img.w;
  for (int ch = 0; ch < img.c; ++ch) {
    float* o = dst + ch * plane;
    const uint8_t* p = img.px.data() + source_channel[ch];
    for (size_t i = 0; i < plane; ++i) o[i] = p[i * img.c] * scale[ch] + shift[ch];
  }
}

}  // namespace ember::data

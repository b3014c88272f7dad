// Cache of decoded, resized uint8 images (one slot per dataset row), so epochs after the first
// never decode a JPEG again. In memory, or as one flat file that is mmap'ed:
//   [64-byte header: magic "EMBRCACH", version, n, h, w, c, key] [n ready flags, padded to 64]
//   [n * h * w * c pixel bytes]
// The key hashes the image paths (in row order) and the pipeline's stored size, so a cache made for
// other data or another size is detected and rebuilt instead of silently returning wrong pixels.
// Slots are filled by loader workers as they decode (distinct rows -> no lock); a flag is set after
// its pixels, with release ordering, so readers never see a half-written image.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/image.h"
#include "data/transforms.h"

namespace ember::data {

class ImageCache {
 public:
  static std::shared_ptr<ImageCache> in_memory(int64_t n, int h, int w, int c, uint64_t key);
  // Reopens `path` when its header matches (keeping the slots already filled), else recreates it.
  static std::shared_ptr<ImageCache> on_disk(const std::string& path, int64_t n, int h, int w, int c, uint64_t key);
  // Convenience: sized and keyed for a dataset and pipeline; path "" = in memory.
  static std::shared_ptr<ImageCache> for_dataset(const Dataset& ds, const ImagePipeline& p, const std::string& path = "");
  ~ImageCache();
  ImageCache(const ImageCache&) = delete;
  ImageCache& operator=(const ImageCache&) = delete;

  int64_t size() const { return n_; }
  int height() const { return h_; }
  int width() const { return w_; }
  int channels() const { return c_; }
  uint64_t key() const { return key_; }
  bool reopened() const { return reopened_; }  // true when an existing file was reused

  bool has(int64_t i) const;
  // Copies slot i into img (resizing img); throws when the slot is not filled.
  void get(int64_t i, Image& img) const;
  void put(int64_t i, const Image& img);  // img must be h x w x c
  int64_t filled() const;
  // Decodes and stores every row not yet cached, on `threads` threads (throws naming the file on a
  // bad image).
  void fill(const Dataset& ds, const ImagePipeline& p, int threads = 2);

 private:
  ImageCache() = default;
  void check_index(int64_t i) const;
  int64_t n_ = 0;
  int h_ = 0, w_ = 0, c_ = 0;
  uint64_t key_ = 0;
  bool reopened_ = false;
  std::vector<uint8_t> memory_;  // in-memory backing
  uint8_t* base_ = nullptr;      // start of the mapping or of memory_
  size_t mapped_bytes_ = 0;      // > 0 when mmap'ed
  uint8_t* flags_ = nullptr;
  uint8_t* pixels_ = nullptr;
  std::string path_;
};

// FNV-1a hash of the image paths (relative to image_root) and the pipeline's stored size.
uint64_t cache_key(const Dataset& ds, const ImagePipeline& p);

}  // namespace ember::data

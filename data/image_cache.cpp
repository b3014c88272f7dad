#include "data/image_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <thread>

#include "engine/error.h"

namespace ember::data {

namespace {

constexpr char kMagic[8] = {'E', 'M', 'B', 'R', 'C', 'A', 'C', 'H'};
constexpr uint32_t kVersion = 1;

struct Header {
  char magic[8];
  uint32_t version, channels;
  int64_t n;
  int32_t h, w;
  uint64_t key;
  uint8_t reserved[24];
};
static_assert(sizeof(Header) == 64, "cache header must stay 64 bytes");

size_t flags_bytes(int64_t n) { return (size_t(n) + 63) / 64 * 64; }

uint64_t fnv1a(uint64_t h, const std::string& s) {
  for (unsigned char ch : s) h = (h ^ ch) * 0x100000001B3ull;
  return (h ^ 0xFF) * 0x100000001B3ull;  // separator so "ab"+"c" != "a"+"bc"
}

}  // namespace

uint64_t cache_key(const Dataset& ds, const ImagePipeline& p) {
  uint64_t h = 0xCBF29CE484222325ull;
  h = fnv1a(h, p.describe());
  const std::filesystem::path root(ds.config.image_root);
  for (const auto& path : ds.image_paths) h = fnv1a(h, std::filesystem::path(path).lexically_relative(root).string());
  return h;
}

std::shared_ptr<ImageCache> ImageCache::in_memory(int64_t n, int h, int w, int c, uint64_t key) {
  std::shared_ptr<ImageCache> cache(new ImageCache());
  cache->n_ = n, cache->h_ = h, cache->w_ = w, cache->c_ = c, cache->key_ = key;
  cache->memory_.assign(flags_bytes(n) + size_t(n) * h * w * c, 0);
  cache->base_ = cache->memory_.data();
  cache->flags_ = cache->base_;
  cache->pixels_ = cache->base_ + flags_bytes(n);
  return cache;
}

std::shared_ptr<ImageCache> ImageCache::on_disk(const std::string& path, int64_t n, int h, int w, int c, uint64_t key) {
  std::shared_ptr<ImageCache> cache(new ImageCache());
  cache->n_ = n, cache->h_ = h, cache->w_ = w, cache->c_ = c, cache->key_ = key, cache->path_ = path;
  const size_t total = sizeof(Header) + flags_bytes(n) + size_t(n) * h * w * c;
  // A config may name a cache file in a folder that does not exist yet (runs/cache/ on a fresh clone).
  const auto parent = std::filesystem::path(path).parent_path();
  std::error_code mkdir_error;
  if (!parent.empty()) std::filesystem::create_directories(parent, mkdir_error);
  if (mkdir_error)
    throw Error(detail::cat("image cache '", path, "': cannot create folder '", parent.string(), "': ", mkdir_error.message()));
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0644);
  if (fd < 0) throw Error(detail::cat("image cache '", path, "': cannot open: ", std::strerror(errno)));
  struct stat st {};
  ::fstat(fd, &st);
  Header want{};
  std::memcpy(want.magic, kMagic, 8);
  want.version = kVersion, want.channels = uint32_t(c), want.n = n, want.h = h, want.w = w, want.key = key;
  Header have{};
  bool reuse = size_t(st.st_size) == total && ::pread(fd, &have, sizeof have, 0) == ssize_t(sizeof have) &&
               std::memcmp(&have, &want, sizeof(Header)) == 0;
  if (!reuse) {
    if (st.st_size > 0)
      std::cerr << "ember.data: image cache '" << path << "' was made for other data or sizes; rebuilding\n";
    // Truncate to zero first so stale flags never survive into the new layout.
    if (::ftruncate(fd, 0) != 0 || ::ftruncate(fd, off_t(total)) != 0 ||
        ::pwrite(fd, &want, sizeof want, 0) != ssize_t(sizeof want)) {
      ::close(fd);
      throw Error(detail::cat("image cache '", path, "': cannot size file to ", total, " bytes"));
    }
  }
  void* p = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);  // the mapping keeps the file alive
  if (p == MAP_FAILED) throw Error(detail::cat("image cache '", path, "': mmap failed: ", std::strerror(errno)));
  cache->reopened_ = reuse;
  cache->base_ = static_cast<uint8_t*>(p);
  cache->mapped_bytes_ = total;
  cache->flags_ = cache->base_ + sizeof(Header);
  cache->pixels_ = cache->flags_ + flags_bytes(n);
  return cache;
}

std::shared_ptr<ImageCache> ImageCache::for_dataset(const Dataset& ds, const ImagePipeline& p, const std::string& path) {
  EMBER_CHECK(ds.has_images(), "image cache: dataset ", ds.table_path(), " has no images");
  const uint64_t key = cache_key(ds, p);
  if (path.empty()) return in_memory(ds.size(), p.stored_h(), p.stored_w(), 3, key);
  return on_disk(path, ds.size(), p.stored_h(), p.stored_w(), 3, key);
}

ImageCache::~ImageCache() {
  if (mapped_bytes_ > 0) ::munmap(base_, mapped_bytes_);
}

void ImageCache::check_index(int64_t i) const {
  EMBER_CHECK(i >= 0 && i < n_, "image cache: slot ", i, " out of range [0, ", n_, ")");
}

bool ImageCache::has(int64_t i) const {
  check_index(i);
  return std::atomic_ref<uint8_t>(flags_[i]).load(std::memory_order_acquire) != 0;
}

void ImageCache::get(int64_t i, Image& img) const {
  EMBER_CHECK(has(i), "image cache: slot ", i, " is not filled");
  img.h = h_, img.w = w_, img.c = c_;
  const size_t bytes = size_t(h_) * w_ * c_;
  img.px.assign(pixels_ + size_t(i) * bytes, pixels_ + size_t(i + 1) * bytes);
}

void ImageCache::put(int64_t i, const Image& img) {
  check_index(i);
  EMBER_CHECK(img.h == h_ && img.w == w_ && img.c == c_, "image cache: slot ", i, " holds ", h_, "x", w_, "x", c_,
              " images, got ", img.h, "x", img.w, "x", img.c);
  const size_t bytes = size_t(h_) * w_ * c_;
  std::memcpy(pixels_ + size_t(i) * bytes, img.px.data(), bytes);
  std::atomic_ref<uint8_t>(flags_[i]).store(1, std::memory_order_release);
}

int64_t ImageCache::filled() const {
  int64_t count = 0;
  for (int64_t i = 0; i < n_; ++i) count += has(i);
  return count;
}

void ImageCache::fill(const Dataset& ds, const ImagePipeline& p, int threads) {
  EMBER_CHECK(ds.size() == n_, "image cache: ", n_, " slots for a dataset of ", ds.size(), " rows");
  EMBER_CHECK(cache_key(ds, p) == key_, "image cache: key mismatch for ", ds.table_path(),
              " (the cache was made for other images or another size)");
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::atomic<bool> failed{false};
  auto work = [&] {
    try {
      for (int64_t i; !failed && (i = next.fetch_add(1)) < n_;)
        if (!has(i)) put(i, to_stored(decode_image(ds.image_paths[i], ds.config.max_pixels), p));
    } catch (...) {
      if (!failed.exchange(true)) error = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace ember::data

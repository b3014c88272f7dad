// Data pipeline throughput on UTKFace (../shared): images per second for
//   BM_DecodeResizeAugment: JPEG decode -> area resize 200x200 -> 72x72 -> random 64x64 crop, flip,
//     brightness/contrast jitter -> ImageNet-normalised NCHW float batches, loader on 2 threads
//     (target >= 2,000 images/s);
//   BM_CachedBatches: the same batches with the decoded, resized uint8 images served from the cache
//     (target >= 20,000 images/s).
// Both skip with a message when ../shared/data/utkface is absent.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <iostream>
#include <memory>

#include "data/loader.h"

using namespace ember::data;

namespace {

// The repository root: EMBER_SOURCE_DIR when the build defines it, else two levels above this file.
std::string source_dir() {
#ifdef EMBER_SOURCE_DIR
  return EMBER_SOURCE_DIR;
#else
  return std::filesystem::path(__FILE__).parent_path().parent_path().string();
#endif
}
const std::string kShared = source_dir() + "/../shared/data/utkface";

// Loaded once (the image checks of 23k files take a moment and are not what is measured).
const Dataset* utkface() {
  static std::unique_ptr<Dataset> ds = [] {
    if (!std::filesystem::exists(kShared + "/labels.csv")) return std::unique_ptr<Dataset>();
    return std::make_unique<Dataset>(
        load_dataset(source_dir() + "/experiments/datasets/utkface.json", "", {.check_images = false}));
  }();
  return ds.get();
}

LoaderOptions options(int workers) {
  LoaderOptions o;
  o.batch_size = 64;
  o.num_workers = workers;
  o.prefetch_batches = 4;
  o.train = true;
  o.seed = 1;
  o.image.cache_h = o.image.cache_w = 72;
  o.image.out_h = o.image.out_w = 64;
  o.image.random_crop = true;
  o.image.hflip = true;
  o.image.brightness = o.image.contrast = 0.2f;
  o.image.normalization = Normalization::ImageNet;
  return o;
}

std::vector<int64_t> all_rows(const Dataset& ds) {
  std::vector<int64_t> rows(size_t(ds.size()));
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = int64_t(i);
  return rows;
}

void run(benchmark::State& state, DataLoader& loader) {
  int64_t epoch = 0, images = 0;
  loader.start_epoch(epoch);
  Batch batch;
  for (auto _ : state) {
    if (!loader.next(batch)) {
      loader.start_epoch(++epoch);
      loader.next(batch);
    }
    images += batch.size();
    benchmark::DoNotOptimize(batch.images.raw_data());
  }
  state.SetItemsProcessed(images);
}

void BM_DecodeResizeAugment(benchmark::State& state) {
  const Dataset* ds = utkface();
  if (!ds) {
    state.SkipWithError("UTKFace not found at ../shared/data/utkface: benchmark skipped");
    return;
  }
  DataLoader loader(*ds, all_rows(*ds), nullptr, options(int(state.range(0))));
  run(state, loader);
}
BENCHMARK(BM_DecodeResizeAugment)->Arg(2)->Arg(1)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(3.0);

void BM_CachedBatches(benchmark::State& state) {
  const Dataset* ds = utkface();
  if (!ds) {
    state.SkipWithError("UTKFace not found at ../shared/data/utkface: benchmark skipped");
    return;
  }
  const LoaderOptions opt = options(int(state.range(0)));
  static std::shared_ptr<ImageCache> cache;  // filled once, outside the timed loop
  if (!cache) {
    cache = ImageCache::for_dataset(*ds, opt.image);
    cache->fill(*ds, opt.image, 2);
  }
  DataLoader loader(*ds, all_rows(*ds), nullptr, opt, cache);
  run(state, loader);
}
BENCHMARK(BM_CachedBatches)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(2.0);

// The same per-image work on the benchmark's own thread, timed by that thread's CPU time: the cost
// of one core, independent of how busy the rest of the machine is (shared build machines are).
void BM_PerCoreDecodeResizeAugment(benchmark::State& state) {
  const Dataset* ds = utkface();
  if (!ds) {
    state.SkipWithError("UTKFace not found at ../shared/data/utkface: benchmark skipped");
    return;
  }
  const LoaderOptions opt = options(1);
  std::vector<float> out(size_t(3) * opt.image.out_h * opt.image.out_w);
  int64_t row = 0;
  for (auto _ : state) {
    Image stored = to_stored(decode_image(ds->image_paths[size_t(row)], ds->config.max_pixels), opt.image);
    stored_to_tensor(stored, opt.image, true, opt.seed, 0, row, out.data());
    row = (row + 1) % ds->size();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PerCoreDecodeResizeAugment)->Unit(benchmark::kMicrosecond)->MinTime(2.0);

void BM_PerCoreCached(benchmark::State& state) {
  const Dataset* ds = utkface();
  if (!ds) {
    state.SkipWithError("UTKFace not found at ../shared/data/utkface: benchmark skipped");
    return;
  }
  const LoaderOptions opt = options(1);
  auto cache = ImageCache::in_memory(256, opt.image.stored_h(), opt.image.stored_w(), 3, 0);
  for (int64_t i = 0; i < 256; ++i) cache->put(i, to_stored(decode_image(ds->image_paths[size_t(i)], ds->config.max_pixels), opt.image));
  std::vector<float> out(size_t(3) * opt.image.out_h * opt.image.out_w);
  Image stored;
  int64_t row = 0;
  for (auto _ : state) {
    cache->get(row % 256, stored);
    stored_to_tensor(stored, opt.image, true, opt.seed, 0, row, out.data());
    ++row;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PerCoreCached)->Unit(benchmark::kMicrosecond)->MinTime(1.0);

}  // namespace

BENCHMARK_MAIN();

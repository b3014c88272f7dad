// DataLoader: batches of (images NCHW float32, tabular features float32 [B, F], one target tensor
// per configured target: int64 [B] for classification, float32 [B] for regression).
// Worker threads decode / augment whole batches; a bounded reorder queue hands them out in order,
// at most `prefetch_batches` ahead of the consumer. The epoch's order comes from
// Generator(seed, epoch) and each image's augmentation from (seed, epoch, row), so the same seed
// gives identical batches for any number of workers.
// The Dataset, preprocessor and cache must outlive the loader.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "data/dataset.h"
#include "data/image_cache.h"
#include "data/preprocess.h"
#include "data/transforms.h"
#include "engine/tensor.h"

namespace ember::data {

struct LoaderOptions {
  int64_t batch_size = 32;
  bool shuffle = true;
  bool drop_last = false;
  bool train = false;  // apply the pipeline's augmentation
  int num_workers = 2;  // 0: produce batches on the calling thread
  int prefetch_batches = 4;
  uint64_t seed = 0;
  ImagePipeline image;
};

struct Batch {
  int64_t index = 0;          // batch number within the epoch
  std::vector<int64_t> rows;  // dataset rows, in batch order
  Tensor images;              // [B, 3, out_h, out_w] float32; undefined for a table-only dataset
  Tensor features;            // [B, F] float32; F = 0 without a preprocessor
  std::vector<Tensor> targets;  // one per config target, in config order
  int64_t size() const { return int64_t(rows.size()); }
};

class DataLoader {
 public:
  DataLoader(const Dataset& ds, std::vector<int64_t> rows, const TabularPreprocessor* preprocessor,
             LoaderOptions options, std::shared_ptr<ImageCache> cache = nullptr);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t size() const { return int64_t(rows_.size()); }
  int64_t num_batches() const;
  const LoaderOptions& options() const { return options_; }
  // Starts (or restarts) an epoch: fixes its order and launches the workers.
  void start_epoch(int64_t epoch);
  // Next batch of the current epoch; false when the epoch is over. Rethrows a worker's error
  // (e.g. a corrupt image, naming the file).
  bool next(Batch& out);

 private:
  Batch produce(int64_t b) const;
  void worker();
  void stop();

  const Dataset& ds_;
  std::vector<int64_t> rows_;
  LoaderOptions options_;
  std::shared_ptr<ImageCache> cache_;
  std::vector<float> features_;  // [rows_.size(), F], precomputed once
  int64_t num_features_ = 0;
  std::vector<int64_t> position_of_row_;  // dataset row -> index into rows_ (features_)

  // Epoch state.
  int64_t epoch_ = -1;
  std::vector<int64_t> order_;  // dataset rows in this epoch's order
  int64_t next_to_claim_ = 0, next_to_deliver_ = 0;
  std::map<int64_t, Batch> ready_;
  std::exception_ptr error_;
  bool stopping_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::thread> workers_;
};

}  // namespace ember::data

#include "data/loader.h"

#include <algorithm>
#include <cstring>

#include "engine/error.h"
#include "engine/rng.h"

namespace ember::data {

DataLoader::DataLoader(const Dataset& ds, std::vector<int64_t> rows, const TabularPreprocessor* preprocessor,
                       LoaderOptions options, std::shared_ptr<ImageCache> cache)
    : ds_(ds), rows_(std::move(rows)), options_(std::move(options)), cache_(std::move(cache)) {
  EMBER_CHECK(options_.batch_size > 0, "DataLoader: batch_size must be > 0");
  EMBER_CHECK(options_.num_workers >= 0 && options_.prefetch_batches > 0, "DataLoader: bad worker/prefetch counts");
  position_of_row_.assign(size_t(ds.size()), -1);
  for (size_t i = 0; i < rows_.size(); ++i) {
    EMBER_CHECK(rows_[i] >= 0 && rows_[i] < ds.size(), "DataLoader: row ", rows_[i], " out of range for ",
                ds.table_path(), " (", ds.size(), " rows)");
    position_of_row_[rows_[i]] = int64_t(i);
  }
  if (cache_) {
    EMBER_CHECK(cache_->size() == ds.size() && cache_->height() == options_.image.stored_h() &&
                    cache_->width() == options_.image.stored_w(),
                "DataLoader: the image cache (", cache_->size(), " slots of ", cache_->height(), "x", cache_->width(),
                ") does not fit ", ds.table_path(), " with stored size ", options_.image.stored_h(), "x",
                options_.image.stored_w());
    EMBER_CHECK(cache_->key() == cache_key(ds, options_.image), "DataLoader: the image cache key does not match ",
                ds.table_path(), " (made for other images)");
  }
  if (preprocessor) {
    num_features_ = preprocessor->num_features();
    features_.resize(rows_.size() * size_t(num_features_));
    if (!features_.empty()) preprocessor->transform(ds, rows_, features_.data());
  }
}

DataLoader::~DataLoader() { stop(); }

int64_t DataLoader::num_batches() const {
  const int64_t n = size(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

void DataLoader::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void DataLoader::start_epoch(int64_t epoch) {
  stop();
  epoch_ = epoch;
  order_ = rows_;
  if (options_.shuffle) {
    Generator gen(options_.seed);
    gen.set_state(options_.seed, uint64_t(epoch) << 32);  // one counter range per epoch
    const std::vector<int64_t> perm = gen.permutation(int64_t(rows_.size()));
    for (size_t i = 0; i < perm.size(); ++i) order_[i] = rows_[perm[i]];
  }
  next_to_claim_ = next_to_deliver_ = 0;
  ready_.clear();
  error_ = nullptr;
  stopping_ = false;
  for (int w = 0; w < options_.num_workers; ++w) workers_.emplace_back([this] { worker(); });
}

void DataLoader::worker() {
  const int64_t total = num_batches();
  for (;;) {
    int64_t b;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Bounded prefetch: do not run more than prefetch_batches ahead of the consumer.
      cv_.wait(lock, [&] {
        return stopping_ || error_ || next_to_claim_ >= total ||
               next_to_claim_ < next_to_deliver_ + options_.prefetch_batches;
      });
      if (stopping_ || error_ || next_to_claim_ >= total) return;
      b = next_to_claim_++;
    }
    try {
      Batch batch = produce(b);
      std::lock_guard<std::mutex> lock(mu_);
      ready_.emplace(b, std::move(batch));
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::current_exception();
    }
    cv_.notify_all();
  }
}

bool DataLoader::next(Batch& out) {
  EMBER_CHECK(epoch_ >= 0, "DataLoader::next: call start_epoch(epoch) first");
  if (next_to_deliver_ >= num_batches()) return false;
  if (options_.num_workers == 0) {
    out = produce(next_to_deliver_++);
    return true;
  }
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return error_ || ready_.count(next_to_deliver_) > 0; });
  if (error_) std::rethrow_exception(error_);
  auto it = ready_.find(next_to_deliver_);
  out = std::move(it->second);
  ready_.erase(it);
  ++next_to_deliver_;
  lock.unlock();
  cv_.notify_all();
  return true;
}

Batch DataLoader::produce(int64_t b) const {
  const int64_t begin = b * options_.batch_size;
  const int64_t end = std::min<int64_t>(begin + options_.batch_size, int64_t(order_.size()));
  Batch batch;
  batch.index = b;
  batch.rows.assign(order_.begin() + begin, order_.begin() + end);
  const int64_t n = end - begin;
  const ImagePipeline& p = options_.image;
  if (ds_.has_images()) {
    batch.images = Tensor::empty({n, 3, p.out_h, p.out_w});
    float* dst = batch.images.data<float>();
    const size_t per_image = size_t(3) * p.out_h * p.out_w;
    Image stored;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t row = batch.rows[i];
      if (cache_ && cache_->has(row)) {
        cache_->get(row, stored);
      } else {
        stored = to_stored(decode_image(ds_.image_paths[row], ds_.config.max_pixels), p);
        if (cache_) cache_->put(row, stored);
      }
      stored_to_tensor(stored, p, options_.train, options_.seed, epoch_, row, dst + size_t(i) * per_image);
    }
  }
  batch.features = Tensor::empty({n, num_features_});
  if (num_features_ > 0) {
    float* f = batch.features.data<float>();
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(f + i * num_features_, &features_[size_t(position_of_row_[batch.rows[i]]) * num_features_],
                  sizeof(float) * size_t(num_features_));
  }
  for (size_t t = 0; t < ds_.config.targets.size(); ++t) {
    const auto& values = ds_.targets[t];
    if (ds_.config.targets[t].is_classification()) {
      Tensor y = Tensor::empty({n}, DType::Int64);
      int64_t* py = y.data<int64_t>();
      for (int64_t i = 0; i < n; ++i) py[i] = int64_t(values[batch.rows[i]]);
      batch.targets.push_back(y);
    } else {
      Tensor y = Tensor::empty({n});
      float* py = y.data<float>();
      for (int64_t i = 0; i < n; ++i) py[i] = float(values[batch.rows[i]]);
      batch.targets.push_back(y);
    }
  }
  return batch;
}

}  // namespace ember::data
